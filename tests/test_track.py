"""track(): what a host project sees in the database after recording an event."""

from __future__ import annotations

import hashlib
import logging
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.db import transaction
from django.test import RequestFactory, override_settings
from django.utils import timezone

import django_capi
from django_capi import EventValidationError, track
from django_capi.models import Event, EventStatus
from tests.testapp.models import Order

pytestmark = pytest.mark.django_db

PIXEL = "1234567890123456"
UA = "Mozilla/5.0 (X11; Linux x86_64) Chrome/156.0"


def sha(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


def website_kwargs(**extra):
    kwargs = {
        "user_data": {"em": "Joe@eg.com ", "client_user_agent": UA},
        "event_source_url": "https://shop.example/checkout",
    }
    kwargs.update(extra)
    return kwargs


def test_track_stores_a_hashed_normalized_pending_event():
    event = track(
        "Purchase",
        user_data={
            "em": " Joe@EG.com",
            "ph": "(650) 555-1212",
            "fn": "Valéry",
            "country": "United States",
            "st": "California",
            "client_ip_address": "203.0.113.9",
            "client_user_agent": UA,
        },
        custom_data={"value": Decimal("12.50"), "currency": "usd"},
        event_source_url="https://shop.example/thanks",
    )
    event.refresh_from_db()
    assert event.status == EventStatus.PENDING
    assert event.dataset_id == PIXEL
    assert event.validation_errors == []
    user_data = event.payload["user_data"]
    assert user_data["em"] == "8830eedd6c6b5ea97d181563a349476ca1bb25ace1f94b5c5e48d9cad727941b"
    assert user_data["ph"] == sha("16505551212")
    assert user_data["fn"] == sha("valéry")
    assert user_data["country"] == sha("us")
    assert user_data["st"] == sha("ca")
    assert user_data["client_ip_address"] == "203.0.113.9"
    assert event.payload["custom_data"] == {"value": 12.5, "currency": "USD"}
    assert event.payload["event_name"] == "Purchase"
    assert event.payload["action_source"] == "website"
    assert isinstance(event.payload["event_time"], int)


def test_raw_contact_data_is_never_written_to_the_database():
    track(
        "Lead",
        action_source="phone_call",
        user_data={"em": "secret.person@example.org", "ph": "+44 20 7946 0958", "ln": "Zebedee"},
    )
    row = Event.objects.values().get()
    text = repr(row)
    # Values that cannot occur by chance in the hex hashes and UUIDs the row does hold.
    for raw in ("secret.person", "example.org", "442079460958", "20 7946", "zebedee", "Zebedee"):
        assert raw not in text


def test_event_id_defaults_to_a_new_unique_id_and_event_time_to_now():
    before = timezone.now().replace(microsecond=0)
    first = track("Lead", action_source="email", user_data={"em": "a@b.co"})
    second = track("Lead", action_source="email", user_data={"em": "a@b.co"})
    assert first.event_id and second.event_id and first.event_id != second.event_id
    assert first.event_time >= before
    assert first.payload["event_time"] >= int(before.timestamp())


@pytest.mark.parametrize("kind", ["aware", "naive", "int", "float"])
def test_event_time_accepts_a_datetime_or_unix_seconds(kind):
    when = (timezone.now() - timedelta(days=1)).replace(microsecond=0)
    seconds = int(when.timestamp())
    value = {
        "aware": when,
        "naive": timezone.make_naive(when),
        "int": seconds,
        "float": float(seconds),
    }[kind]
    event = track("Lead", action_source="email", user_data={"em": "a@b.co"}, event_time=value)
    assert event.payload["event_time"] == seconds
    assert event.event_time == datetime.fromtimestamp(seconds, tz=UTC)
    assert event.status == EventStatus.PENDING


def test_event_time_of_another_type_is_an_invalid_event():
    event = track("Lead", action_source="email", user_data={"em": "a@b.co"}, event_time="soon")
    assert event.status == EventStatus.FAILED
    assert event.validation_errors[0]["field"] == "event_time"


def test_same_dataset_event_name_and_event_id_is_stored_once():
    first = track(
        "Purchase",
        event_id="order-1",
        **website_kwargs(custom_data={"value": 1, "currency": "EUR"}),
    )
    again = track(
        "Purchase",
        event_id="order-1",
        **website_kwargs(custom_data={"value": 2, "currency": "EUR"}),
    )
    assert again.pk == first.pk
    assert Event.objects.count() == 1
    assert Event.objects.get().payload["custom_data"]["value"] == 1
    # Another event name or another dataset with the same id is another event.
    track("InitiateCheckout", event_id="order-1", **website_kwargs())
    track(
        "Purchase",
        event_id="order-1",
        pixel_id="999",
        **website_kwargs(custom_data={"value": 1, "currency": "EUR"}),
    )
    assert Event.objects.count() == 3


def test_duplicate_inside_a_transaction_keeps_the_transaction_usable():
    with transaction.atomic():
        track("Lead", event_id="x", action_source="email", user_data={"em": "a@b.co"})
        track("Lead", event_id="x", action_source="email", user_data={"em": "a@b.co"})
        Order.objects.create(reference="R1")
    assert Event.objects.count() == 1
    assert Order.objects.count() == 1


def test_rolled_back_transaction_leaves_no_event():
    def checkout_that_fails_after_recording():
        with transaction.atomic():
            order = Order.objects.create(reference="R2")
            track(
                "Purchase",
                source=order,
                **website_kwargs(custom_data={"value": 5, "currency": "USD"}),
            )
            assert Event.objects.count() == 1
            raise RuntimeError("payment failed")

    with pytest.raises(RuntimeError):
        checkout_that_fails_after_recording()
    assert Event.objects.count() == 0


def test_source_links_the_event_to_an_order_and_back():
    order = Order.objects.create(reference="R3")
    event = track(
        "Purchase", source=order, **website_kwargs(custom_data={"value": 5, "currency": "USD"})
    )
    event.refresh_from_db()
    assert event.source == order
    assert list(Event.objects.for_source(order)) == [event]
    other = Order.objects.create(reference="R4")
    assert not Event.objects.for_source(other).exists()


APP_DATA = {"advertiser_tracking_enabled": True, "extinfo": ["a2"] + [""] * 15}


@pytest.mark.parametrize(
    ("action_source", "extra"),
    [
        ("website", {"event_source_url": "https://shop.example/"}),
        ("app", {"app_data": APP_DATA}),
        ("physical_store", {"event_time": timezone.now() - timedelta(days=30)}),
        ("phone_call", {}),
        ("chat", {}),
        ("email", {}),
        ("system_generated", {}),
        ("business_messaging", {"messaging_channel": "whatsapp"}),
        ("other", {}),
    ],
)
def test_every_action_source_records_a_valid_event(action_source, extra):
    event = track(
        "Purchase",
        action_source=action_source,
        user_data={"em": "joe@eg.com", "client_user_agent": UA},
        custom_data={"value": 10, "currency": "USD"},
        **extra,
    )
    assert event.validation_errors == []
    assert event.status == EventStatus.PENDING
    assert event.payload["action_source"] == action_source
    if action_source == "app":
        assert event.payload["app_data"]["extinfo"][0] == "a2"


def test_custom_event_names_are_allowed():
    event = track("TicketScanned", action_source="physical_store", user_data={"em": "a@b.co"})
    assert event.status == EventStatus.PENDING
    assert event.event_name == "TicketScanned"


def test_opt_out_and_limited_data_use_as_arguments():
    event = track(
        "Lead",
        action_source="email",
        user_data={"em": "a@b.co"},
        opt_out=True,
        data_processing_options=["LDU"],
        data_processing_options_country=1,
        data_processing_options_state=1000,
    )
    assert event.status == EventStatus.PENDING
    assert event.payload["opt_out"] is True
    assert event.payload["data_processing_options"] == ["LDU"]
    assert event.payload["data_processing_options_country"] == 1
    assert event.payload["data_processing_options_state"] == 1000


def test_limited_data_use_from_settings_and_explicit_off():
    capi = {
        "PIXEL_ID": PIXEL,
        "ACCESS_TOKEN": "t",
        "DATA_PROCESSING_OPTIONS": ["LDU"],
        "DATA_PROCESSING_OPTIONS_COUNTRY": 0,
        "DATA_PROCESSING_OPTIONS_STATE": 0,
    }
    with override_settings(CAPI=capi):
        on = track("Lead", action_source="email", user_data={"em": "a@b.co"})
        off = track(
            "Lead",
            action_source="email",
            user_data={"em": "a@b.co"},
            data_processing_options=[],
            data_processing_options_country=None,
            data_processing_options_state=None,
        )
    assert on.payload["data_processing_options"] == ["LDU"]
    assert on.payload["data_processing_options_country"] == 0
    assert off.payload["data_processing_options"] == []
    assert "data_processing_options_country" not in off.payload


def test_ldu_country_without_state_is_invalid():
    event = track(
        "Lead",
        action_source="email",
        user_data={"em": "a@b.co"},
        data_processing_options=["LDU"],
        data_processing_options_country=1,
    )
    assert event.status == EventStatus.FAILED
    assert any(e["field"].startswith("data_processing_options") for e in event.validation_errors)


def test_invalid_event_is_kept_as_failed_with_a_reason_naming_field_and_rule(caplog):
    with caplog.at_level(logging.WARNING, logger="django_capi"):
        event = track(
            "Purchase",
            user_data={"em": "joe@eg.com", "client_user_agent": UA},
            event_source_url="https://shop.example/thanks",
            custom_data={"currency": "usd"},
        )
    event.refresh_from_db()
    assert event.status == EventStatus.FAILED
    fields = {e["field"] for e in event.validation_errors}
    assert "custom_data.value" in fields
    assert "custom_data.value" in event.validation_reason
    assert "custom_data.value" in event.last_error_message
    assert "will not be sent" in caplog.text


def test_website_event_without_url_or_user_agent_is_invalid():
    event = track("ViewContent", user_data={"em": "joe@eg.com"})
    fields = {e["field"] for e in event.validation_errors}
    assert {"event_source_url", "user_data.client_user_agent"} <= fields


def test_strict_raises_and_stores_nothing():
    with pytest.raises(EventValidationError) as info:
        track("Purchase", strict=True, **website_kwargs())
    assert "custom_data.value" in str(info.value)
    assert Event.objects.count() == 0


def test_strict_setting_is_read_at_use_time():
    with (
        override_settings(CAPI={"PIXEL_ID": PIXEL, "ACCESS_TOKEN": "t", "STRICT": True}),
        pytest.raises(EventValidationError),
    ):
        track("Purchase", **website_kwargs())
    assert track("Purchase", **website_kwargs()).status == EventStatus.FAILED


def test_a_bad_value_is_dropped_with_a_warning_and_does_not_sink_the_event(caplog):
    with caplog.at_level(logging.WARNING, logger="django_capi"):
        event = track(
            "Lead",
            action_source="phone_call",
            user_data={"em": "not-an-email", "ph": "call me maybe", "fn": "Joe", "ln": "Smith"},
        )
    assert event.status == EventStatus.PENDING
    assert set(event.payload["user_data"]) == {"fn", "ln"}
    assert {w["field"] for w in event.warnings} == {"em", "ph"}
    assert "not-an-email" not in caplog.text
    assert "call me maybe" not in caplog.text


def test_no_customer_information_at_all_is_invalid():
    event = track("Lead", action_source="email", user_data={"em": "nope"})
    assert event.status == EventStatus.FAILED
    assert "user_data" in {e["field"] for e in event.validation_errors}


def test_request_supplies_ip_user_agent_cookies_url_and_referrer():
    request = RequestFactory().get(
        "/checkout/?step=2",
        HTTP_USER_AGENT=UA,
        HTTP_REFERER="https://shop.example/cart",
        REMOTE_ADDR="198.51.100.7",
        HTTP_X_FORWARDED_FOR="6.6.6.6",
    )
    request.COOKIES["_fbp"] = "fb.1.1596403881668.1116446470"
    request.COOKIES["_fbc"] = "fb.1.1554763741205.AbCdEfGhIjKlMnOpQrStUvWxYz1234567890"
    event = track("InitiateCheckout", request=request, user_data={"em": "a@b.co"})
    assert event.status == EventStatus.PENDING, event.validation_reason
    user_data = event.payload["user_data"]
    assert user_data["client_ip_address"] == "198.51.100.7"  # never the spoofable header
    assert user_data["client_user_agent"] == UA
    assert user_data["fbp"] == "fb.1.1596403881668.1116446470"
    assert user_data["fbc"].endswith("AbCdEfGhIjKlMnOpQrStUvWxYz1234567890")
    assert event.payload["event_source_url"] == "http://testserver/checkout/?step=2"
    assert event.payload["referrer_url"] == "https://shop.example/cart"


def test_explicit_arguments_win_over_the_request():
    request = RequestFactory().get("/x/", HTTP_USER_AGENT=UA, REMOTE_ADDR="198.51.100.7")
    event = track(
        "Lead",
        request=request,
        event_source_url="https://shop.example/landing",
        user_data={"em": "a@b.co", "client_ip_address": "2001:db8::1"},
    )
    assert event.payload["event_source_url"] == "https://shop.example/landing"
    assert event.payload["user_data"]["client_ip_address"] == "2001:db8::1"


def test_pixel_id_chooses_the_dataset():
    event = track("Lead", pixel_id=42, action_source="email", user_data={"em": "a@b.co"})
    assert event.dataset_id == "42"


def test_malformed_pixel_id_is_an_invalid_event():
    event = track("Lead", pixel_id="my-pixel", action_source="email", user_data={"em": "a@b.co"})
    assert event.status == EventStatus.FAILED
    assert event.validation_errors[0]["field"] == "pixel_id"


def test_missing_pixel_is_an_invalid_event_not_an_exception():
    with override_settings(CAPI={}):
        event = track("Lead", action_source="email", user_data={"em": "a@b.co"})
    assert event.status == EventStatus.FAILED
    assert "PIXEL_ID" in event.validation_reason


def test_dataset_default_country_reads_national_phone_numbers():
    capi = {
        "PIXEL_ID": PIXEL,
        "ACCESS_TOKEN": "t",
        "DATASETS": {"777": {"ACCESS_TOKEN": "u", "DEFAULT_COUNTRY": "GB"}},
        "DEFAULT_COUNTRY": "US",
    }
    with override_settings(CAPI=capi):
        uk = track("Lead", pixel_id="777", action_source="email", user_data={"ph": "020 7946 0958"})
        us = track("Lead", action_source="email", user_data={"ph": "(650) 555-1212"})
    assert uk.payload["user_data"]["ph"] == sha("442079460958")
    assert us.payload["user_data"]["ph"] == sha("16505551212")


def test_event_id_longer_than_the_column_is_invalid_not_a_crash():
    event = track("Lead", event_id="x" * 300, action_source="email", user_data={"em": "a@b.co"})
    assert event.status == EventStatus.FAILED
    assert event.validation_errors[0]["field"] == "event_id"


def test_public_names_are_importable_from_the_package():
    assert django_capi.track is track
    assert django_capi.Event is Event
    with pytest.raises(AttributeError):
        _ = django_capi.not_a_name
