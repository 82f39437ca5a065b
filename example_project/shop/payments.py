"""A fake payment provider.

A real shop learns that an order is paid from its payment provider, often through a webhook
that carries no visitor request. :func:`confirm_payment` is what such a webhook handler does:
it marks the order paid and sends ``order_paid`` without a request, so the Purchase event
takes the browser data (IP, user agent, fbp, fbc) kept on the order at checkout.
"""

from __future__ import annotations

from django.db import transaction
from django.utils import timezone

from django_capi.shop.signals import order_paid

from .models import Order


def confirm_payment(order: Order) -> None:
    """Mark ``order`` paid and record its Purchase (once, however often this runs)."""
    with transaction.atomic():
        order = Order.objects.select_for_update().get(pk=order.pk)
        if order.status != Order.Status.PAID:
            order.status = Order.Status.PAID
            order.paid_at = timezone.now()
            order.save(update_fields=["status", "paid_at"])
        order_paid.send(sender=Order, order=order)
