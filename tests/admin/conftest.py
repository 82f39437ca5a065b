"""Fixtures for the admin, dashboard and operations tests."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from django.contrib import admin
from django.contrib.auth.models import Permission

from django_capi.transports import locmem
from tests.conftest import OTHER_PIXEL, PIXEL, TOKEN
from tests.testapp.models import Order

# The event list links to the source object's admin page: give the test order model one.
# (Django has autodiscovered admin modules by now; the URLconf is built on first use.)
if not admin.site.is_registered(Order):
    admin.site.register(Order)


@pytest.fixture
def locmem_capi(settings: Any) -> Iterator[dict[str, Any]]:
    """CAPI settings that "send" into django_capi.outbox, with two datasets."""
    settings.CAPI = {
        "PIXEL_ID": PIXEL,
        "ACCESS_TOKEN": TOKEN,
        "DATASETS": {
            PIXEL: {"LABEL": "Main shop"},
            OTHER_PIXEL: {"ACCESS_TOKEN": "EAAother", "LABEL": "Outlet"},
        },
        "TRANSPORT": "django_capi.transports.locmem.LocmemTransport",
        "DEFAULT_COUNTRY": "US",
        "QUEUE_ON_COMMIT": False,
    }
    locmem.reset()
    yield settings.CAPI
    locmem.reset()


def _user(django_user_model: Any, username: str, *perms: str, staff: bool = True) -> Any:
    # No password: tests log in with force_login, and hashing one costs a second per user.
    user = django_user_model.objects.create_user(username=username, is_staff=staff)
    for codename in perms:
        user.user_permissions.add(
            Permission.objects.get(content_type__app_label="django_capi", codename=codename)
        )
    return user


@pytest.fixture
def admin_user(django_user_model: Any) -> Any:
    """pytest-django's superuser (used by ``admin_client``), without a costly password."""
    return django_user_model.objects.create_superuser(
        username="admin", email="admin@example.com", password=None
    )


@pytest.fixture
def viewer(django_user_model: Any) -> Any:
    """Staff with only the view permissions of django_capi."""
    return _user(
        django_user_model,
        "viewer",
        "view_event",
        "view_deliveryattempt",
        "view_datasetstate",
    )


@pytest.fixture
def operator(django_user_model: Any) -> Any:
    """Staff who may view and change events (run the actions), nothing else."""
    return _user(django_user_model, "operator", "view_event", "change_event")


@pytest.fixture
def stranger(django_user_model: Any) -> Any:
    """Staff without any django_capi permission."""
    return _user(django_user_model, "stranger")


@pytest.fixture
def viewer_client(client: Any, viewer: Any) -> Any:
    client.force_login(viewer)
    return client


@pytest.fixture
def operator_client(client: Any, operator: Any) -> Any:
    client.force_login(operator)
    return client


@pytest.fixture
def stranger_client(client: Any, stranger: Any) -> Any:
    client.force_login(stranger)
    return client
