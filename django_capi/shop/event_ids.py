"""Deterministic event ids: the same order and event name give the same id, everywhere.

``event_id = hex(HMAC-SHA256(key, event_name + "\\x1f" + order_key))[:32]``

The server event and the pixel call compute it independently (nothing is stored), Meta
deduplicates them by it, and the event store's unique ``(dataset, event_name, event_id)``
makes a second Purchase for the same order impossible. The key is ``CAPI["EVENT_ID_KEY"]``, or
one derived from ``SECRET_KEY``: the id reveals nothing about the order (not its number, not
how many orders there are). Set ``EVENT_ID_KEY`` explicitly if you rotate ``SECRET_KEY``,
otherwise a rotation changes every id (and an order paid again after it could be counted
twice).
"""

from __future__ import annotations

import hashlib
import hmac
from typing import Any

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from django_capi import conf

__all__ = ["event_id_for", "event_id_from_key", "event_id_key"]

_DERIVATION_SALT = b"django_capi.shop.event_ids"


def event_id_key() -> bytes:
    """The HMAC key: ``CAPI["EVENT_ID_KEY"]``, else derived from ``SECRET_KEY``."""
    key = conf.get_setting("EVENT_ID_KEY")
    if key:
        return key if isinstance(key, bytes) else str(key).encode("utf-8")
    secret = getattr(settings, "SECRET_KEY", "")
    if not secret:
        raise ImproperlyConfigured("Set CAPI['EVENT_ID_KEY'] or SECRET_KEY for event ids.")
    secret_bytes = secret if isinstance(secret, bytes) else str(secret).encode("utf-8")
    return hashlib.sha256(_DERIVATION_SALT + b"\x00" + secret_bytes).digest()


def event_id_from_key(key: str, event_name: str) -> str:
    """The event id for an order/checkout key (any stable string) and an event name."""
    # surrogatepass: a key with a lone surrogate (broken text from somewhere) still has an id.
    message = f"{event_name}\x1f{key}".encode("utf-8", "surrogatepass")
    return hmac.new(event_id_key(), message, hashlib.sha256).hexdigest()[:32]


def event_id_for(order: Any, event_name: str) -> str:
    """The event id for ``order`` and ``event_name``.

    ``order`` is a string key (e.g. ``f"cart:{cart.uuid}"``) or an object its registered
    :class:`~django_capi.shop.orders.OrderAdapter` gives a key for.
    """
    if isinstance(order, str):
        return event_id_from_key(order, event_name)
    from django_capi.shop.orders import get_adapter

    return event_id_from_key(get_adapter(order).key(order), event_name)
