"""Signals a shop sends; django_capi's receivers record the events.

::

    from django_capi.shop.signals import checkout_started, order_paid

    # in the checkout view, once the order (or cart) exists:
    checkout_started.send(sender=Order, order=order, request=request)

    # where payment is confirmed (a view, or a payment webhook without a request):
    order_paid.send(sender=Order, order=order)

- ``checkout_started(order, request=None)``: keeps the request's context with the order
  (:meth:`~django_capi.shop.orders.OrderAdapter.save_context`) and records InitiateCheckout.
- ``order_paid(order, request=None)``: records Purchase, once per order however often it
  is sent (a re-save, a revisited thank-you page, a status that flaps).

The receivers never raise (errors are logged; ``CAPI["STRICT"]`` raises them) and record in a
savepoint of the current transaction, so the events are rolled back with the order. Each
receiver returns the stored :class:`~django_capi.models.Event`, or None without consent.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from django.dispatch import Signal, receiver
from django.http import HttpRequest

from django_capi.shop.orders import record_initiate_checkout, record_purchase, record_safely

if TYPE_CHECKING:
    from django_capi.models import Event

__all__ = ["checkout_started", "order_paid"]

checkout_started = Signal()
order_paid = Signal()


@receiver(checkout_started, dispatch_uid="django_capi.shop.checkout_started")
def _record_checkout(
    sender: Any, order: Any, request: HttpRequest | None = None, **kwargs: Any
) -> Event | None:
    return record_safely(record_initiate_checkout, order, request=request)


@receiver(order_paid, dispatch_uid="django_capi.shop.order_paid")
def _record_purchase(
    sender: Any, order: Any, request: HttpRequest | None = None, **kwargs: Any
) -> Event | None:
    return record_safely(record_purchase, order, request=request)
