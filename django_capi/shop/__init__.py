"""The shop side: orders, signals, deterministic event ids, consent, browser ids.

Names are loaded lazily (like :mod:`django_capi`), so importing this package does not touch
the app registry. See :mod:`django_capi.shop.orders` for connecting an Order model.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from django_capi.request_capture import capture_context
    from django_capi.shop.consent import has_consent, strip_custom_data
    from django_capi.shop.event_ids import event_id_for
    from django_capi.shop.orders import (
        OrderAdapter,
        get_adapter,
        order_custom_data,
        record_initiate_checkout,
        record_order_event,
        record_purchase,
        register,
        unregister,
    )
    from django_capi.shop.signals import checkout_started, order_paid

__all__ = [
    "OrderAdapter",
    "capture_context",
    "checkout_started",
    "event_id_for",
    "get_adapter",
    "has_consent",
    "order_custom_data",
    "order_paid",
    "record_initiate_checkout",
    "record_order_event",
    "record_purchase",
    "register",
    "strip_custom_data",
    "unregister",
]

_LAZY = {
    "OrderAdapter": "django_capi.shop.orders",
    "get_adapter": "django_capi.shop.orders",
    "order_custom_data": "django_capi.shop.orders",
    "record_initiate_checkout": "django_capi.shop.orders",
    "record_order_event": "django_capi.shop.orders",
    "record_purchase": "django_capi.shop.orders",
    "register": "django_capi.shop.orders",
    "unregister": "django_capi.shop.orders",
    "checkout_started": "django_capi.shop.signals",
    "order_paid": "django_capi.shop.signals",
    "event_id_for": "django_capi.shop.event_ids",
    "has_consent": "django_capi.shop.consent",
    "strip_custom_data": "django_capi.shop.consent",
    "capture_context": "django_capi.request_capture",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'django_capi.shop' has no attribute {name!r}")
