"""How the demo shop's Order maps to Conversions API data (its order adapter).

Named in ``CAPI["ORDER_ADAPTER"]``; ``django_capi.shop.register(Order, ShopOrderAdapter)``
would do the same.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from django_capi.shop import OrderAdapter

from .models import Order


class ShopOrderAdapter(OrderAdapter[Order]):
    def key(self, order: Order) -> str:
        return f"shop.order:{order.token}"

    def user_data(self, order: Order) -> Mapping[str, Any]:
        return {
            "em": order.email,
            "ph": order.phone,
            "fn": order.first_name,
            "ln": order.last_name,
            "ct": order.city,
            "zp": order.postal_code,
            "country": order.country,
            "external_id": order.email,  # a guest shop: the email is the customer's id
        }

    def contents(self, order: Order) -> Iterable[Mapping[str, Any]]:
        return [
            {"id": line.product.sku, "quantity": line.quantity, "item_price": line.unit_price}
            for line in order.lines.select_related("product")
        ]

    def currency(self, order: Order) -> str:
        return order.currency

    def order_id(self, order: Order) -> str:
        return order.reference  # the public reference, not the database id

    def is_paid(self, order: Order) -> bool:
        return order.status == Order.Status.PAID
