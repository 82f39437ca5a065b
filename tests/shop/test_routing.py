"""Routing: one order to several datasets, the same event_id everywhere, the page to match."""

from __future__ import annotations

import logging
from decimal import Decimal
from typing import Any

import pytest

from django_capi import track, track_all
from django_capi.models import Event
from django_capi.shop import checkout_started, order_paid
from django_capi.shop.orders import record_purchase, record_safely
from tests.shop.conftest import PIXEL, set_capi
from tests.shop.test_templatetags import fbq_calls, render
from tests.testapp.models import Order

pytestmark = pytest.mark.django_db

PLATFORM = PIXEL
ORGANISERS = {"ACME": "555000111222333", "BETA": "777000111222333"}
ROUTER = "tests.shop.test_routing.route_by_organiser"
calls: list[dict[str, Any]] = []


def route_by_organiser(*, event_name: str, source: Any, request: Any) -> list[str]:
    """The platform's pixel, plus the organiser's (from the order reference's prefix)."""
    calls.append({"event_name": event_name, "source": source, "request": request})
    ids = [PLATFORM]
    if isinstance(source, Order):
        organiser = ORGANISERS.get(source.reference.split("-")[0])
        if organiser:
            ids.append(organiser)
    return ids


def broken_router(**kwargs: Any) -> list[str]:
    raise RuntimeError("organiser table unavailable")


def no_dataset(**kwargs: Any) -> list[str]:
    return []


@pytest.fixture
def routed(settings):
    set_capi(settings, ROUTER=ROUTER)
    calls.clear()
    return calls


@pytest.fixture
def acme_order():
    return Order.objects.create(reference="ACME-1", email="fan@example.com", total=Decimal("40.00"))


def test_one_order_goes_to_the_platform_and_its_organiser_with_one_event_id(
    routed, adapter, acme_order, browser_request
):
    first = checkout_started.send(sender=Order, order=acme_order, request=browser_request)[0][1]
    order_paid.send(sender=Order, order=acme_order)
    rows = list(Event.objects.order_by("dataset_id", "event_name"))
    assert [(e.dataset_id, e.event_name) for e in rows] == [
        (PLATFORM, "InitiateCheckout"),
        (PLATFORM, "Purchase"),
        (ORGANISERS["ACME"], "InitiateCheckout"),
        (ORGANISERS["ACME"], "Purchase"),
    ]
    by_name: dict[str, set[str]] = {}
    for event in rows:
        by_name.setdefault(event.event_name, set()).add(event.event_id)
        assert event.status == "pending", event.validation_reason
        assert event.source == acme_order
    assert all(len(ids) == 1 for ids in by_name.values())  # one event_id per event, everywhere
    assert first.event_id in by_name["InitiateCheckout"]
    # The router saw the order (the source) and the request.
    assert routed[0]["source"] == acme_order and routed[0]["request"] is browser_request


def test_an_order_without_organiser_goes_to_the_platform_only(routed, adapter):
    order = Order.objects.create(reference="SOLO-9", email="a@example.com", total=Decimal("5.00"))
    record_purchase(order)
    assert list(Event.objects.values_list("dataset_id", flat=True)) == [PLATFORM]


def test_track_all_returns_every_row_and_track_the_first(routed, acme_order):
    events = track_all(
        "Lead", source=acme_order, action_source="email", user_data={"em": "x@example.com"}
    )
    assert [e.dataset_id for e in events] == [PLATFORM, ORGANISERS["ACME"]]
    assert len({e.event_id for e in events}) == 1
    assert {e.payload["event_time"] for e in events} == {events[0].payload["event_time"]}
    again = track(
        "Lead",
        source=acme_order,
        event_id=events[0].event_id,
        action_source="email",
        user_data={"em": "x@example.com"},
    )
    assert again.pk == events[0].pk  # recorded again: the stored rows come back
    assert Event.objects.count() == 2


def test_an_explicit_pixel_id_bypasses_the_router_and_may_be_a_list(routed, acme_order):
    one = track_all("Lead", pixel_id=ORGANISERS["BETA"], source=acme_order, action_source="email")
    assert [e.dataset_id for e in one] == [ORGANISERS["BETA"]]
    both = track_all(
        "Lead", pixel_id=[PLATFORM, ORGANISERS["BETA"], PLATFORM], action_source="email"
    )
    assert [e.dataset_id for e in both] == [PLATFORM, ORGANISERS["BETA"]]
    assert routed == []


def test_a_failing_router_never_breaks_the_order_and_the_event_says_why(
    settings, adapter, acme_order, caplog
):
    set_capi(settings, ROUTER="tests.shop.test_routing.broken_router")
    with caplog.at_level(logging.ERROR, logger="django_capi"):
        event = record_safely(record_purchase, acme_order)
    assert event is not None and event.status == "failed"
    assert event.validation_errors[0] == {
        "field": "pixel_id",
        "rule": "CAPI['ROUTER'] raised RuntimeError: organiser table unavailable",
    }
    assert "organiser table unavailable" in caplog.text
    set_capi(settings, STRICT=True)
    with pytest.raises(Exception, match="CAPI\\['ROUTER'\\] raised RuntimeError"):
        track("Lead", source=acme_order)


def test_a_router_that_chooses_nothing_is_visible(settings, acme_order):
    set_capi(settings, ROUTER="tests.shop.test_routing.no_dataset")
    event = track("Lead", source=acme_order, action_source="email", user_data={"em": "a@b.co"})
    assert event.status == "failed"
    assert event.validation_reason == "pixel_id: CAPI['ROUTER'] chose no dataset"


# --- the page pairs up with the server, dataset by dataset --------------------------------------


def test_the_page_inits_and_tracks_the_same_datasets_as_the_server(rf, routed, adapter, acme_order):
    event = record_purchase(acme_order)
    assert event is not None
    html = render(
        '{% capi_pixel source=order %}{% capi_track order "Purchase" %}',
        rf.get("/"),
        order=acme_order,
    )
    calls_made = fbq_calls(html)
    assert calls_made[:3] == [
        ["init", PLATFORM],
        ["init", ORGANISERS["ACME"]],
        ["track", "PageView"],
    ]
    tracked = calls_made[3:]
    assert [call[:3] for call in tracked] == [
        ["trackSingle", PLATFORM, "Purchase"],
        ["trackSingle", ORGANISERS["ACME"], "Purchase"],
    ]
    stored = {e.dataset_id: e for e in Event.objects.filter(event_name="Purchase")}
    for call in tracked:
        server = stored[call[1]]
        assert call[3] == server.payload["custom_data"]
        assert call[4] == {"eventID": server.event_id}


def test_a_page_without_an_order_inits_what_the_router_gives_for_no_source(rf, routed):
    assert fbq_calls(render("{% capi_pixel %}", rf.get("/"))) == [
        ["init", PLATFORM],
        ["track", "PageView"],
    ]


def test_a_failing_router_renders_no_pixel_rather_than_an_error(rf, settings, adapter, acme_order):
    set_capi(settings, ROUTER="tests.shop.test_routing.broken_router")
    html = render(
        '{% capi_pixel source=order %}{% capi_track order "Purchase" %}',
        rf.get("/"),
        order=acme_order,
    )
    assert fbq_calls(html) == []
