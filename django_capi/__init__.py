"""django_capi: Meta Conversions API events, stored, normalized, hashed and delivered.

The public entry point is :func:`django_capi.track`. Names are loaded lazily so that importing
the package (e.g. from settings) does not touch Django's app registry.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

__all__ = [
    "Dataset",
    "Event",
    "EventStatus",
    "EventValidationError",
    "outbox",
    "track",
    "track_all",
]

#: What the locmem transport "sent", like ``django.core.mail.outbox``: a list of
#: :class:`django_capi.transports.locmem.OutboxMessage`. Tests may clear or replace it.
outbox: list[Any] = []

if TYPE_CHECKING:
    from django_capi.models import Dataset, Event, EventStatus
    from django_capi.tracking import track, track_all
    from django_capi.validation import EventValidationError

_LAZY = {
    "track": "django_capi.tracking",
    "track_all": "django_capi.tracking",
    "Dataset": "django_capi.models",
    "Event": "django_capi.models",
    "EventStatus": "django_capi.models",
    "EventValidationError": "django_capi.validation",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'django_capi' has no attribute {name!r}")
