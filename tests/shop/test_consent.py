"""CONSENT and prohibited data: no consent -> no event, no pixel, no cookie; stripped keys."""

from __future__ import annotations

import logging

import pytest
from django.template import Context, Template

from django_capi import Event, EventStatus, track
from django_capi.shop import record_initiate_checkout, record_purchase
from django_capi.shop.consent import has_consent, strip_custom_data
from tests.shop.conftest import UA, set_capi


def always_yes(request):
    return True


def broken(request):
    raise RuntimeError("consent service down")


def test_consent_is_assumed_when_not_configured(rf):
    assert has_consent(rf.get("/"))
    assert has_consent(None)


@pytest.mark.parametrize(
    ("setting", "expected"),
    [
        (True, True),
        (False, False),
        (lambda request: request.GET.get("c") == "1", True),
        ("tests.shop.test_consent.always_yes", True),
    ],
)
def test_consent_setting_forms(rf, settings, setting, expected):
    set_capi(settings, CONSENT=setting)
    assert has_consent(rf.get("/?c=1")) is expected


def test_configured_consent_without_a_request_is_no(settings):
    set_capi(settings, CONSENT="tests.shop.test_consent.always_yes")
    assert not has_consent(None)


def test_a_failing_consent_callable_means_no(rf, settings, caplog):
    set_capi(settings, CONSENT="tests.shop.test_consent.broken")
    with caplog.at_level(logging.ERROR, logger="django_capi"):
        assert not has_consent(rf.get("/"))
    assert "CONSENT" in caplog.text


def test_track_without_consent_stores_nothing(rf, settings, db):
    set_capi(settings, CONSENT=False)
    request = rf.get("/", HTTP_USER_AGENT=UA, REMOTE_ADDR="198.51.100.7")
    event = track("Lead", request=request, event_id="x1", user_data={"em": "a@b.co"})
    assert event.pk is None
    assert event.status == EventStatus.DISCARDED
    assert event.payload == {}
    assert "consent" in event.last_error_message
    assert not Event.objects.exists()


def test_track_without_a_request_is_not_affected(settings, db):
    set_capi(settings, CONSENT=False)
    event = track("Lead", action_source="email", user_data={"em": "a@b.co"})
    assert event.pk is not None


def test_shop_events_without_consent(rf, settings, adapter, order):
    set_capi(settings, CONSENT=lambda request: False)
    request = rf.get("/checkout/", HTTP_USER_AGENT=UA)
    assert record_initiate_checkout(order, request=request) is None
    # The checkout kept "no consent", so the webhook's Purchase is not recorded either.
    assert adapter.contexts[order.pk]["consent"] is False
    assert record_purchase(order) is None
    assert not Event.objects.exists()


def test_purchase_without_any_context_needs_consent_not_configured(settings, adapter, order):
    set_capi(settings, CONSENT="tests.shop.test_consent.always_yes")
    assert record_purchase(order) is None
    set_capi(settings, CONSENT=None)
    assert record_purchase(order, action_source="system_generated") is not None


def test_no_consent_no_pixel(rf, settings, adapter, order):
    set_capi(settings, CONSENT=lambda request: False)
    template = Template(
        '{% load capi %}{% capi_pixel %}{% capi_track order "Purchase" %}'
        '{% capi_track "cart:1" "AddToCart" %}'
    )
    assert template.render(Context({"request": rf.get("/"), "order": order})).strip() == ""
    # Configured consent and no request in the context: nothing either.
    set_capi(settings, CONSENT="tests.shop.test_consent.always_yes")
    assert template.render(Context({"order": order})).strip() == ""


def test_strip_custom_data_keys(settings, db):
    set_capi(settings, STRIP_CUSTOM_DATA_KEYS=["Diagnosis", "card_last4"])
    data = {
        "value": 5,
        "currency": "EUR",
        "diagnosis": "x",
        "contents": [{"id": "a", "quantity": 1, "card_last4": "4242"}],
    }
    assert strip_custom_data(data) == {
        "value": 5,
        "currency": "EUR",
        "contents": [{"id": "a", "quantity": 1}],
    }
    event = track("Purchase", action_source="email", user_data={"em": "a@b.co"}, custom_data=data)
    assert "diagnosis" not in event.payload["custom_data"]
    assert event.payload["custom_data"]["contents"] == [{"id": "a", "quantity": 1}]
    assert "4242" not in str(event.payload)


def test_opt_out_and_limited_data_use_pass_through(rf, settings, adapter, order):
    adapter_options = {"opt_out": True, "data_processing_options": ["LDU"]}
    adapter.track_options = lambda order, event_name: {
        **adapter_options,
        "data_processing_options_country": 1,
        "data_processing_options_state": 1000,
    }
    event = record_initiate_checkout(order, request=rf.get("/checkout/", HTTP_USER_AGENT=UA))
    assert event.payload["opt_out"] is True
    assert event.payload["data_processing_options"] == ["LDU"]
    assert event.payload["data_processing_options_country"] == 1
    assert event.payload["data_processing_options_state"] == 1000


def test_stripping_leaves_odd_custom_data_to_the_normalizer(settings, db):
    set_capi(settings, STRIP_CUSTOM_DATA_KEYS=["x"])
    event = track("Lead", action_source="email", user_data={"em": "a@b.co"}, custom_data=[1, 2])
    assert event.pk is not None
    assert "custom_data" not in event.payload
    assert event.warnings[0]["field"] == "custom_data"
