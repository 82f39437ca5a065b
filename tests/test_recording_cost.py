"""What recording an event costs the request: no query whose answer is not needed, nothing
looked up twice in one request, and nothing remembered beyond it (no stale data across
transactions or tests)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest
from django.db import connection, transaction
from django.template import Context, Template
from django.test import RequestFactory
from django.test.utils import CaptureQueriesContext

from django_capi import track
from django_capi.models import Dataset
from django_capi.normalization.hashing import sha256_hex
from django_capi.shop import checkout_started, orders
from tests.conftest import PIXEL
from tests.shop.conftest import OrderEvents
from tests.testapp.models import Order

pytestmark = pytest.mark.django_db

UK_PHONE = "020 7946 0958"
US_PHONE = "(650) 555-1212"


def connect(dataset_id: str, **fields: Any) -> Dataset:
    dataset = Dataset(dataset_id=dataset_id, **fields)
    dataset.set_access_token("EAArecording-cost-token")
    dataset.save()
    return dataset


def dataset_queries(queries: CaptureQueriesContext) -> list[str]:
    table = Dataset._meta.db_table
    return [q["sql"] for q in queries.captured_queries if table in q["sql"]]


@pytest.fixture
def capi(settings: Any) -> dict[str, Any]:
    settings.CAPI = {
        "PIXEL_ID": PIXEL,
        "ACCESS_TOKEN": "EAAsettings-token",
        "DEFAULT_COUNTRY": "US",
        "QUEUE_ON_COMMIT": False,
    }
    return settings.CAPI


# --- the dataset's default country: read only when needed, never cached -----------------------


def test_an_event_naming_its_country_reads_no_dataset(capi):
    connect(PIXEL, default_country="GB")
    with CaptureQueriesContext(connection) as queries:
        event = track("Lead", action_source="email", user_data={"ph": US_PHONE, "country": "US"})
    assert event.payload["user_data"]["ph"] == sha256_hex("16505551212")
    assert dataset_queries(queries) == []
    # The insert in its savepoint, nothing else.
    assert len(queries.captured_queries) == 3


def test_an_event_without_country_reads_the_dataset_each_time(capi):
    row = connect(PIXEL, default_country="GB")
    with CaptureQueriesContext(connection) as queries:
        uk = track("Lead", action_source="email", user_data={"ph": UK_PHONE})
    assert uk.payload["user_data"]["ph"] == sha256_hex("442079460958")
    assert len(dataset_queries(queries)) == 1
    # Staff change the dataset in the admin: the very next event uses the new value.
    row.default_country = "US"
    row.save()
    us = track("Lead", action_source="email", user_data={"ph": US_PHONE})
    assert us.payload["user_data"]["ph"] == sha256_hex("16505551212")
    # And without the row, the settings again.
    row.delete()
    capi["DEFAULT_COUNTRY"] = "GB"
    again = track("Lead", action_source="email", user_data={"ph": UK_PHONE})
    assert again.payload["user_data"]["ph"] == sha256_hex("442079460958")


def test_a_dataset_row_rolled_back_is_not_seen_afterwards(capi):
    seen: list[str] = []

    def record_then_roll_back() -> None:
        with transaction.atomic():
            connect(PIXEL, default_country="GB")
            inside = track("Lead", action_source="email", user_data={"ph": UK_PHONE})
            seen.append(inside.payload["user_data"]["ph"])
            raise RuntimeError("roll back")

    with pytest.raises(RuntimeError):
        record_then_roll_back()
    assert seen == [sha256_hex("442079460958")]
    after = track("Lead", action_source="email", user_data={"ph": US_PHONE})
    assert after.payload["user_data"]["ph"] == sha256_hex("16505551212")  # settings: US


def test_a_test_that_creates_a_dataset_row(capi):
    connect(PIXEL, default_country="GB")
    event = track("Lead", action_source="email", user_data={"ph": UK_PHONE})
    assert event.payload["user_data"]["ph"] == sha256_hex("442079460958")


def test_the_next_test_does_not_see_that_row(capi):
    """Runs after the test above (file order): its row was rolled back with its test."""
    assert not Dataset.objects.exists()
    event = track("Lead", action_source="email", user_data={"ph": US_PHONE})
    assert event.payload["user_data"]["ph"] == sha256_hex("16505551212")


# --- the order's custom data: built once for the event and the page of one request -----------


class CountingEvents(OrderEvents):
    def __init__(self) -> None:
        super().__init__()
        self.built = 0

    def contents(self, order: Order) -> list[dict[str, Any]]:
        self.built += 1
        return super().contents(order)


@pytest.fixture
def adapter() -> Iterator[CountingEvents]:
    instance = CountingEvents()
    orders.register(Order, instance)
    yield instance
    orders.unregister(Order)


@pytest.fixture
def order() -> Order:
    return Order.objects.create(reference="C1", email="buyer@example.com", total=Decimal("30.00"))


def page(order: Order, request: Any) -> list[Any]:
    html = Template('{% load capi %}{% capi_track order "InitiateCheckout" script=False %}')
    text = html.render(Context({"order": order, "request": request}))
    return json.loads("[" + text.removeprefix("fbq(").removesuffix(");") + "]")


def test_the_checkout_page_reuses_what_its_event_was_recorded_with(capi, adapter, order, rf):
    request = rf.get("/checkout/", REMOTE_ADDR="198.51.100.7")
    event = checkout_started.send(sender=Order, order=order, request=request)[0][1]
    assert adapter.built == 1
    call = page(order, request)
    assert adapter.built == 1  # not built again
    assert call == [
        "track",
        "InitiateCheckout",
        event.payload["custom_data"],
        {"eventID": event.event_id},
    ]


def test_another_request_or_order_object_builds_it_again(capi, adapter, order, rf):
    request = rf.get("/checkout/", REMOTE_ADDR="198.51.100.7")
    checkout_started.send(sender=Order, order=order, request=request)
    assert adapter.built == 1
    page(order, rf.get("/checkout/"))  # another request
    assert adapter.built == 2
    fresh = Order.objects.get(pk=order.pk)  # the same order, another object
    fresh.total = Decimal("50.00")
    call = page(fresh, request)
    assert adapter.built == 3
    assert call[2]["value"] == 50


def test_custom_data_passed_by_the_caller_is_not_reused(capi, adapter, order, rf):
    request = rf.get("/checkout/", REMOTE_ADDR="198.51.100.7")
    orders.record_order_event(
        order, "InitiateCheckout", request=request, custom_data={"value": 1, "currency": "EUR"}
    )
    call = page(order, request)
    assert call[2]["value"] == 30  # the adapter's, as before


def test_no_memory_without_consent(capi, adapter, order, rf):
    capi["CONSENT"] = False
    request: Any = RequestFactory().get("/checkout/")
    assert checkout_started.send(sender=Order, order=order, request=request)[0][1] is None
    assert adapter.built == 0
    assert getattr(request, "capi", None) is None or not request.capi.recorded_custom_data


def test_an_event_recorded_with_another_adapter_is_not_reused(capi, adapter, order, rf):
    request = rf.get("/checkout/", REMOTE_ADDR="198.51.100.7")
    other = CountingEvents()
    other.extra = {"content_category": "recorded-with-another-adapter"}
    orders.record_initiate_checkout(order, request=request, adapter=other)
    assert (other.built, adapter.built) == (1, 0)
    call = page(order, request)
    assert adapter.built == 1  # the registered adapter's data, as before
    assert "content_category" not in call[2]
