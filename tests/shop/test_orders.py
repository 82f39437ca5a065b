"""Connecting an Order: adapter, registration, signals, the kept context, Purchase once."""

from __future__ import annotations

import logging
from decimal import Decimal
from typing import Any

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.db import transaction

from django_capi import Event, EventStatus
from django_capi.shop import (
    OrderAdapter,
    checkout_started,
    event_id_for,
    get_adapter,
    order_custom_data,
    order_paid,
    record_purchase,
    register,
    unregister,
)
from tests.shop.conftest import UA, OrderEvents, set_capi
from tests.testapp.models import Order


def purchases(order: Order) -> Any:
    return Event.objects.for_source(order).filter(event_name="Purchase")


# --- the adapter --------------------------------------------------------------------------------


def test_custom_data_from_the_adapter(adapter, order):
    assert order_custom_data(order, "Purchase") == {
        "value": 30,
        "currency": "EUR",
        "contents": [{"id": "SKU-A1", "quantity": 2, "item_price": 15}],
        "content_ids": ["SKU-A1"],
        "num_items": 2,
        "content_type": "product",
    }


def test_value_defaults_to_the_sum_of_contents():
    class Lines(OrderAdapter[dict]):
        def key(self, order):
            return "k"

        def contents(self, order):
            return [
                {"id": 1, "quantity": 3, "item_price": Decimal("1.10")},
                {"id": "b", "item_price": "2.05"},
            ]

    data = order_custom_data({}, "InitiateCheckout", adapter=Lines())
    assert data["value"] == pytest.approx(5.35)
    assert data["num_items"] == 4
    assert data["content_ids"] == ["1", "b"]


def test_order_id_is_only_sent_when_the_adapter_gives_one(adapter, order):
    assert "order_id" not in order_custom_data(order, "Purchase")
    adapter.order_id = lambda order: order.reference
    assert order_custom_data(order, "Purchase")["order_id"] == "A1"


def test_adapter_resolution(settings, order):
    with pytest.raises(ImproperlyConfigured, match="ORDER_ADAPTER"):
        get_adapter(order)
    set_capi(settings, ORDER_ADAPTER="tests.shop.conftest.OrderEvents")
    assert isinstance(get_adapter(order), OrderEvents)
    assert get_adapter(order) is get_adapter(Order)  # one instance per setting

    @register(Order)
    class Registered(OrderAdapter[Order]):
        pass

    try:
        assert isinstance(get_adapter(order), Registered)  # registration wins

        class SpecialOrder(Order):
            class Meta:
                proxy = True
                app_label = "testapp"

        assert isinstance(get_adapter(SpecialOrder), Registered)  # subclasses too
    finally:
        unregister(Order)


def test_default_save_context_needs_the_model_field(rf, order, caplog):
    adapter = OrderAdapter[Order]()
    with caplog.at_level(logging.WARNING, logger="django_capi"):
        adapter.save_context(order, {"consent": True})
    assert "capi_context" in caplog.text
    assert adapter.get_context(order) is None


# --- signals -----------------------------------------------------------------------------------


def test_checkout_started_records_initiate_checkout_with_the_request(
    adapter, order, browser_request
):
    results = checkout_started.send(sender=Order, order=order, request=browser_request)
    event = results[0][1]
    assert event.event_name == "InitiateCheckout"
    assert event.event_id == event_id_for(order, "InitiateCheckout")
    assert event.source == order
    user_data = event.payload["user_data"]
    assert user_data["client_ip_address"] == "198.51.100.7"
    assert user_data["fbp"] == "fb.1.1596403881668.1116446470"
    assert {"em", "external_id"} <= set(user_data)
    assert event.payload["event_source_url"] == "http://testserver/checkout/?step=2"
    assert event.payload["custom_data"] == order_custom_data(order, "InitiateCheckout")
    assert adapter.contexts[order.pk]["fbp"] == "fb.1.1596403881668.1116446470"


def test_webhook_purchase_carries_the_checkout_context(adapter, order, browser_request):
    checkout_started.send(sender=Order, order=order, request=browser_request)
    adapter.paid.add(order.pk)
    event = order_paid.send(sender=Order, order=order)[0][1]  # no request: a webhook
    assert event.status == EventStatus.PENDING, event.validation_reason
    user_data = event.payload["user_data"]
    assert user_data["client_ip_address"] == "198.51.100.7"
    assert user_data["client_user_agent"] == UA
    assert user_data["fbp"] == "fb.1.1596403881668.1116446470"
    assert user_data["fbc"] == "fb.1.1554763741205.AbCdEfGhIjKlMnOpQrStUvWxYz1234567890"
    assert event.payload["event_source_url"] == "http://testserver/checkout/?step=2"
    assert event.payload["referrer_url"] == "https://shop.example/cart?utm_source=news"
    assert event.payload["custom_data"]["value"] == 30


def test_purchase_with_a_request_uses_the_request(adapter, order, rf):
    request = rf.get("/thanks/", HTTP_USER_AGENT="Other UA", REMOTE_ADDR="203.0.113.1")
    event = order_paid.send(sender=Order, order=order, request=request)[0][1]
    assert event.payload["user_data"]["client_ip_address"] == "203.0.113.1"
    assert event.payload["event_source_url"] == "http://testserver/thanks/"


def test_receivers_never_break_the_shop(adapter, order, caplog):
    def explode(order):
        raise RuntimeError("adapter bug")

    adapter.user_data = explode
    with caplog.at_level(logging.ERROR, logger="django_capi"):
        assert order_paid.send(sender=Order, order=order)[0][1] is None
    assert "could not record" in caplog.text
    order.save()  # the transaction is still usable


def test_strict_mode_raises_receiver_errors(adapter, order, settings):
    set_capi(settings, STRICT=True)
    adapter.user_data = lambda order: 1 / 0
    with pytest.raises(ZeroDivisionError):
        order_paid.send(sender=Order, order=order)


def test_events_roll_back_with_the_order(adapter, order, browser_request):
    def checkout_then_fail():
        with transaction.atomic():
            checkout_started.send(sender=Order, order=order, request=browser_request)
            raise RuntimeError("payment failed")

    with pytest.raises(RuntimeError):
        checkout_then_fail()
    assert not Event.objects.exists()


# --- Purchase once --------------------------------------------------------------------------------


def test_purchase_is_recorded_once_however_often_it_is_paid(adapter, order, browser_request):
    checkout_started.send(sender=Order, order=order, request=browser_request)
    first = record_purchase(order)
    for _ in range(3):  # webhook retries, a second confirmation, a thank-you page revisit
        again = order_paid.send(sender=Order, order=order)[0][1]
        assert again.pk == first.pk
    record_purchase(order, request=browser_request)
    assert purchases(order).count() == 1


def test_paid_on_save_records_once_through_status_flaps(adapter, order):
    register(Order, adapter, record_paid_on_save=True)
    order.save()
    assert not purchases(order).exists()  # not paid yet
    adapter.paid.add(order.pk)
    order.save()
    first = purchases(order).get()
    for paid in (False, True, False, True):  # refunded, re-paid, ...
        (adapter.paid.add if paid else adapter.paid.discard)(order.pk)
        order.total = order.total + 1  # even the amount changed
        order.save()
    assert purchases(order).get().pk == first.pk
    assert first.payload["custom_data"]["value"] == 30  # the first payment's data


def test_each_order_gets_its_own_purchase(adapter, order):
    other = Order.objects.create(reference="B2", email="b@example.com", total=5)
    for one in (order, other, order, other):
        record_purchase(one, action_source="system_generated")
    assert Event.objects.filter(event_name="Purchase").count() == 2


def test_paid_on_save_ignores_fixture_loading(adapter, order):
    register(Order, adapter, record_paid_on_save=True)
    adapter.paid.add(order.pk)
    from django.db.models.signals import post_save

    post_save.send(sender=Order, instance=order, created=False, raw=True)
    assert not purchases(order).exists()
