"""Shared fixtures: a fake Graph API on loopback and CAPI settings that point at it."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

import tests.celery_app  # noqa: F401  (the Celery app tasks are published through)
from tests.fake_graph_api import FakeGraphAPI

PIXEL = "1234567890123456"
TOKEN = "EAAtest-token-never-to-be-seen"
OTHER_PIXEL = "6543210987654321"
OTHER_TOKEN = "EAAother-organiser-token-secret"


@pytest.fixture
def fake_api() -> Iterator[FakeGraphAPI]:
    with FakeGraphAPI(tokens={PIXEL: TOKEN, OTHER_PIXEL: OTHER_TOKEN}) as api:
        yield api


@pytest.fixture
def capi(settings: Any, fake_api: FakeGraphAPI) -> dict[str, Any]:
    """CAPI settings that deliver to the fake API through the real Graph API transport."""
    settings.CAPI = {
        "PIXEL_ID": PIXEL,
        "ACCESS_TOKEN": TOKEN,
        "DATASETS": {OTHER_PIXEL: {"ACCESS_TOKEN": OTHER_TOKEN}},
        "API_BASE_URL": fake_api.url,
        "TRANSPORT": "django_capi.transports.graph_api.GraphAPITransport",
        "CONNECT_TIMEOUT": 2.0,
        "READ_TIMEOUT": 2.0,
        "DEFAULT_COUNTRY": "US",
        "QUEUE_ON_COMMIT": False,
    }
    return settings.CAPI


def set_capi(settings: Any, **changes: Any) -> None:
    """Change some CAPI keys for the rest of a test."""
    settings.CAPI = {**settings.CAPI, **changes}
