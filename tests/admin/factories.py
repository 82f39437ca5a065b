"""Build stored events directly (fast, and with any status, age and user_data keys)."""

from __future__ import annotations

import itertools
from datetime import datetime, timedelta
from typing import Any

from django.contrib.contenttypes.models import ContentType
from django.db import models
from django.utils import timezone

from django_capi.models import DeliveryAttempt, Event
from tests.conftest import PIXEL

_ids = itertools.count(1)
HASH = "a" * 64
#: Every match key the dashboard measures coverage of.
ALL_KEYS = (
    "em",
    "ph",
    "fn",
    "ln",
    "external_id",
    "client_ip_address",
    "client_user_agent",
    "fbp",
    "fbc",
)


def payload(
    event_name: str = "Purchase",
    *,
    keys: tuple[str, ...] = ("em", "client_ip_address", "client_user_agent"),
    order_id: str | None = None,
    event_time: datetime | None = None,
    event_id: str = "",
    action_source: str = "website",
) -> dict[str, Any]:
    """A payload shaped like what track() stores; only the user_data keys matter here."""
    user_data: dict[str, Any] = {}
    for key in keys:
        if key == "client_ip_address":
            user_data[key] = "203.0.113.7"
        elif key == "client_user_agent":
            user_data[key] = "Mozilla/5.0"
        elif key in {"fbp", "fbc"}:
            user_data[key] = "fb.1.1700000000000.123"
        else:
            user_data[key] = HASH
    data: dict[str, Any] = {
        "event_name": event_name,
        "event_time": int((event_time or timezone.now()).timestamp()),
        "event_id": event_id,
        "action_source": action_source,
        "user_data": user_data,
    }
    if action_source == "website":
        data["event_source_url"] = "https://shop.example/checkout"
    if order_id is not None:
        data["custom_data"] = {"value": 10.0, "currency": "USD", "order_id": order_id}
    return data


def make_event(
    event_name: str = "Purchase",
    *,
    status: str = "pending",
    dataset_id: str = PIXEL,
    age: timedelta | None = None,
    keys: tuple[str, ...] = ("em", "client_ip_address", "client_user_agent"),
    order_id: str | None = None,
    source: models.Model | None = None,
    event_id: str | None = None,
    event_time: datetime | None = None,
    action_source: str = "website",
    **fields: Any,
) -> Event:
    """Store one event; ``age`` back-dates ``created_at`` (and event_time, unless given)."""
    now = timezone.now()
    event_id = event_id or f"ev-{next(_ids)}"
    created = now - (age or timedelta())
    when = event_time or created
    event = Event(
        dataset_id=dataset_id,
        event_name=event_name,
        event_id=event_id,
        event_time=when,
        action_source=action_source,
        payload=payload(
            event_name,
            keys=keys,
            order_id=order_id,
            event_time=when,
            event_id=event_id,
            action_source=action_source,
        ),
        status=status,
        **fields,
    )
    if source is not None:
        event.source_content_type = ContentType.objects.get_for_model(source)
        event.source_object_id = str(source.pk)
    event.save()
    if age:
        Event.objects.filter(pk=event.pk).update(created_at=created)
        event.created_at = created
    return event


def make_attempt(events: list[Event], *, age: timedelta | None = None, **fields: Any) -> Any:
    """One delivery attempt linked to ``events``."""
    attempt = DeliveryAttempt.objects.create(
        dataset_id=events[0].dataset_id if events else PIXEL,
        started_at=timezone.now() - (age or timedelta()),
        outcome=fields.pop("outcome", "success"),
        events_sent=len(events),
        **fields,
    )
    attempt.events.add(*events)
    return attempt
