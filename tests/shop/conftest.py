"""Fixtures for the shop side: an order adapter for tests.testapp.Order, requests, settings."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from decimal import Decimal
from typing import Any

import pytest
from django.test import RequestFactory

from django_capi.shop import orders
from tests.testapp.models import Order

PIXEL = "1234567890123456"
UA = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/130 Safari"


class OrderEvents(orders.OrderAdapter[Order]):
    """A host adapter: the test Order has one line; "paid" and the kept context live here."""

    def __init__(self) -> None:
        self.paid: set[int] = set()
        self.contexts: dict[int, dict[str, Any]] = {}
        self.extra: dict[str, Any] = {}

    def user_data(self, order: Order) -> Mapping[str, Any]:
        return {"em": order.email, "external_id": f"customer-{order.reference}"}

    def contents(self, order: Order) -> list[dict[str, Any]]:
        return [{"id": f"SKU-{order.reference}", "quantity": 2, "item_price": order.total / 2}]

    def currency(self, order: Order) -> str:
        return "EUR"

    def extra_custom_data(self, order: Order, event_name: str) -> Mapping[str, Any]:
        return self.extra

    def is_paid(self, order: Order) -> bool:
        return order.pk in self.paid

    def get_context(self, order: Order) -> Mapping[str, Any] | None:
        return self.contexts.get(order.pk)

    def save_context(self, order: Order, context: Mapping[str, Any]) -> None:
        self.contexts[order.pk] = dict(context)


@pytest.fixture
def adapter() -> Iterator[OrderEvents]:
    instance = OrderEvents()
    orders.register(Order, instance)
    yield instance
    orders.unregister(Order)


@pytest.fixture
def order(db: Any) -> Order:
    return Order.objects.create(reference="A1", email="Buyer@Example.com", total=Decimal("30.00"))


@pytest.fixture
def browser_request(rf: RequestFactory) -> Any:
    """A checkout page request from a browser with Meta cookies."""
    request = rf.get(
        "/checkout/?step=2&email=joe%40example.com",
        HTTP_USER_AGENT=UA,
        HTTP_REFERER="https://shop.example/cart?utm_source=news#frag",
        REMOTE_ADDR="198.51.100.7",
    )
    request.COOKIES["_fbp"] = "fb.1.1596403881668.1116446470"
    request.COOKIES["_fbc"] = "fb.1.1554763741205.AbCdEfGhIjKlMnOpQrStUvWxYz1234567890"
    return request


def set_capi(settings: Any, **changes: Any) -> None:
    settings.CAPI = {**settings.CAPI, **changes}
