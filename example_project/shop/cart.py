"""The cart, kept in the session: ``{product id: quantity}``."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from django.http import HttpRequest

from .models import Product

SESSION_KEY = "cart"
MAX_QUANTITY = 99


@dataclass(frozen=True)
class CartLine:
    product: Product
    quantity: int

    @property
    def subtotal(self) -> Decimal:
        return self.product.price * self.quantity


def items(request: HttpRequest) -> dict[int, int]:
    raw = request.session.get(SESSION_KEY) or {}
    return {int(pk): int(qty) for pk, qty in raw.items() if int(qty) > 0}


def save(request: HttpRequest, cart: dict[int, int]) -> None:
    request.session[SESSION_KEY] = {str(pk): qty for pk, qty in cart.items() if qty > 0}


def add(request: HttpRequest, product: Product, quantity: int = 1) -> None:
    cart = items(request)
    cart[product.pk] = min(MAX_QUANTITY, cart.get(product.pk, 0) + max(1, quantity))
    save(request, cart)


def set_quantity(request: HttpRequest, product_id: int, quantity: int) -> None:
    cart = items(request)
    cart[product_id] = max(0, min(MAX_QUANTITY, quantity))
    save(request, cart)


def clear(request: HttpRequest) -> None:
    request.session.pop(SESSION_KEY, None)


def lines(request: HttpRequest) -> list[CartLine]:
    cart = items(request)
    products = Product.objects.in_bulk(list(cart))
    return [CartLine(products[pk], qty) for pk, qty in cart.items() if pk in products]


def total(cart_lines: list[CartLine]) -> Decimal:
    return sum((line.subtotal for line in cart_lines), Decimal("0.00"))
