"""A sample event sent with a dataset's test event code, to check a connection.

Used by ``manage.py capi_send_test_event`` and by the admin's "Send a test event" action
(which queues the ``django_capi.send_test_event`` task instead of waiting on Meta in the
admin request). Each one appends a :class:`~django_capi.models.DeliveryAttempt`, so staff
see Meta's answer in the attempt log.
"""

from __future__ import annotations

import dataclasses
import uuid
from typing import Any

from django.utils import timezone

import django_capi
from django_capi import conf
from django_capi.normalization.user_data import normalize_user_data
from django_capi.transports.base import SendResult, get_transport
from django_capi.validation import validate_event

__all__ = ["TestEventError", "build_test_event", "send_test_event"]

DEFAULT_EMAIL = "test@example.com"
DEFAULT_URL = "https://example.com/django-capi-test"


class TestEventError(Exception):
    """The test event cannot be sent (no dataset, no test event code, invalid event)."""

    __test__ = False  # not a pytest class


def build_test_event(
    dataset: conf.DatasetConfig,
    *,
    event_name: str = "PageView",
    email: str = DEFAULT_EMAIL,
    url: str = DEFAULT_URL,
    user_agent: str | None = None,
) -> dict[str, Any]:
    """A valid website event with a hashed email, ready to send."""
    user_agent = user_agent or f"django-capi/{django_capi.__version__} (test event)"
    user_data = normalize_user_data(
        {"em": email, "client_user_agent": user_agent}, default_country=dataset.default_country
    )
    payload: dict[str, Any] = {
        "event_name": event_name,
        "event_time": int(timezone.now().timestamp()),
        "event_id": f"capi-test-{uuid.uuid4().hex}",
        "action_source": "website",
        "event_source_url": url,
        "user_data": user_data.data,
    }
    issues = validate_event(payload)
    if issues:
        raise TestEventError("The test event is invalid: " + "; ".join(map(str, issues)))
    return payload


def send_test_event(
    dataset_id: str | None = None,
    *,
    test_event_code: str | None = None,
    record: bool = True,
    **payload_options: Any,
) -> tuple[conf.DatasetConfig, dict[str, Any], SendResult]:
    """Send one test event synchronously; returns the dataset, the payload and Meta's answer.

    Raises TestEventError when the dataset is unknown or has no test event code (without
    one the event would count as a real conversion).
    """
    dataset_id = dataset_id or conf.default_dataset_id()
    if not dataset_id:
        raise TestEventError("No dataset: pass one or set CAPI['PIXEL_ID'].")
    dataset = conf.get_dataset(dataset_id)
    if dataset is None:
        raise TestEventError(
            f"Dataset {dataset_id} is not configured (no Dataset in the admin, not in CAPI)."
        )
    code = test_event_code or dataset.test_event_code
    if not code:
        raise TestEventError(
            "No test event code: set the dataset's test event code (Events Manager > your "
            "dataset > Test events). Without one the event would count as real."
        )
    dataset = dataclasses.replace(dataset, test_event_code=code)
    payload = build_test_event(dataset, **payload_options)
    result = get_transport().send(dataset, [payload])
    if record:
        from django_capi.delivery.engine import record_attempt

        record_attempt(dataset.dataset_id, result)
    return dataset, payload, result
