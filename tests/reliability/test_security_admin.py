"""Security: who may use django_capi's admin, and that it escapes hostile stored values.

Every admin URL django_capi registers (each model of the app in the admin site's registry,
each of its named URLs, plus the delivery dashboard) is fetched as an anonymous visitor, a
logged-in non-staff user, staff without permissions and view-only staff. Retry and Discard
are posted by each. tests/admin/test_actions.py and test_dashboard.py check a few of these
pages by hand; this walks all of them.
"""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib import admin
from django.contrib.auth.models import Permission
from django.urls import URLPattern, reverse
from django.utils import timezone

from django_capi.models import Dataset, DatasetState, DeliveryAttempt, Event
from tests.admin.factories import make_attempt, make_event
from tests.reliability.inputs import XSS, parse_html

pytestmark = pytest.mark.django_db

PIXEL = "1234567890123456"
HOSTILE_MESSAGE = "<img src=x onerror=alert(1)>\"'</textarea></pre><!--"


@pytest.fixture
def objects(settings: Any) -> dict[str, Any]:
    settings.CAPI = {
        "PIXEL_ID": PIXEL,
        "ACCESS_TOKEN": "t",
        "DATASETS": {PIXEL: {"LABEL": XSS}},
        "TRANSPORT": "django_capi.transports.locmem.LocmemTransport",
        "QUEUE_ON_COMMIT": False,
    }
    event = make_event(
        XSS,
        status="failed",
        event_id=XSS,
        order_id=XSS,
        last_error_code=100,
        last_error_subcode=2804019,
        last_error_message=HOSTILE_MESSAGE,
        validation_errors=[{"field": XSS, "rule": HOSTILE_MESSAGE}],
        warnings=[{"field": HOSTILE_MESSAGE, "rule": XSS}],
    )
    attempt = make_attempt(
        [event],
        outcome="rejected",
        http_status=400,
        error_code=100,
        error_subcode=2804019,
        error_type=XSS,
        error_message=HOSTILE_MESSAGE,
        error_user_title=XSS,
        error_user_msg=HOSTILE_MESSAGE,
        fbtrace_id=XSS[:64],
        messages=[XSS, {"x": HOSTILE_MESSAGE}],
    )
    state = DatasetState.objects.create(
        dataset_id=PIXEL, paused_at=timezone.now(), pause_code=190, pause_reason=HOSTILE_MESSAGE
    )
    dataset = Dataset(dataset_id="6543210987654321", label=XSS, disabled_reason=HOSTILE_MESSAGE)
    dataset.set_access_token("EAAadmin-managed-token")
    dataset.save()
    return {"event": event, "deliveryattempt": attempt, "datasetstate": state, "dataset": dataset}


def capi_models() -> list[Any]:
    return [m for m in admin.site._registry if m._meta.app_label == "django_capi"]


def capi_urls(objects: dict[str, Any]) -> list[str]:
    """Every named admin URL of every django_capi model, with an object where one is needed."""
    urls = []
    for model, model_admin in admin.site._registry.items():
        if model._meta.app_label != "django_capi":
            continue
        obj = objects[model._meta.model_name]
        for pattern in model_admin.get_urls():
            if not isinstance(pattern, URLPattern) or not pattern.name:
                continue
            needs_object = "object_id" in str(pattern.pattern)
            urls.append(reverse(f"admin:{pattern.name}", args=[obj.pk] if needs_object else []))
    return urls


def test_the_walk_covers_every_model_and_the_dashboard(objects: Any) -> None:
    urls = capi_urls(objects)
    assert set(capi_models()) >= {Event, DeliveryAttempt, DatasetState, Dataset}
    for model in capi_models():
        assert reverse(f"admin:django_capi_{model._meta.model_name}_changelist") in urls
    assert reverse("admin:django_capi_event_dashboard") in urls
    # 5 views per model (list, add, history, delete, change), + the dashboard
    assert len(urls) == 5 * len(capi_models()) + 1


ACTIONS = [
    ("event", "retry_now"),
    ("event", "discard"),
    ("datasetstate", "probe_now"),
    ("dataset", "disable"),
    ("dataset", "send_test_event"),
]


def staff(django_user_model: Any, name: str, *perms: str, is_staff: bool = True) -> Any:
    user = django_user_model.objects.create_user(username=name, is_staff=is_staff)
    for codename in perms:
        user.user_permissions.add(
            Permission.objects.get(content_type__app_label="django_capi", codename=codename)
        )
    return user


def act(client: Any, action: str, obj: Any, changelist: str) -> Any:
    return client.post(changelist, {"action": action, "_selected_action": [obj.pk]})


@pytest.mark.parametrize("who", ["anonymous", "not staff"])
def test_anonymous_and_non_staff_are_sent_to_the_login_page(
    client: Any, django_user_model: Any, objects: Any, who: str
) -> None:
    if who == "not staff":
        client.force_login(staff(django_user_model, "customer", "view_event", is_staff=False))
    for url in capi_urls(objects):
        for method in (client.get, client.post):
            response = method(url)
            assert response.status_code == 302, (who, url)
            assert response["Location"].startswith(reverse("admin:login")), url
    changelist = reverse("admin:django_capi_event_changelist")
    for action in ("retry_now", "discard"):
        assert act(client, action, objects["event"], changelist).status_code == 302
    assert Event.objects.get(pk=objects["event"].pk).status == "failed"


def test_staff_without_permissions_get_403_everywhere(
    client: Any, django_user_model: Any, objects: Any
) -> None:
    client.force_login(staff(django_user_model, "stranger"))
    for url in capi_urls(objects):
        assert client.get(url).status_code == 403, url
        assert client.post(url, {"status": "sent"}).status_code == 403, url
    for name, action in ACTIONS:
        changelist = reverse(f"admin:django_capi_{name}_changelist")
        assert act(client, action, objects[name], changelist).status_code == 403
    assert Event.objects.get(pk=objects["event"].pk).status == "failed"
    assert Dataset.objects.get().enabled
    assert DatasetState.objects.get().next_probe_at is None


def test_view_only_staff_can_read_but_not_act(
    client: Any, django_user_model: Any, objects: Any
) -> None:
    viewer = staff(
        django_user_model,
        "viewer",
        *(f"view_{model._meta.model_name}" for model in capi_models()),
    )
    client.force_login(viewer)
    for url in capi_urls(objects):
        response = client.get(url)
        readable = url.endswith(("/change/", "/history/", "/dashboard/")) or url.count("/") == 4
        assert response.status_code == (200 if readable else 403), url
    for name, action in ACTIONS:
        changelist = reverse(f"admin:django_capi_{name}_changelist")
        response = act(client, action, objects[name], changelist)
        assert response.status_code in (200, 302, 403)  # refused: "no action selected" or 403
    assert Dataset.objects.get().enabled
    event = Event.objects.get(pk=objects["event"].pk)
    assert event.status == "failed" and event.attempts == 0
    assert DatasetState.objects.get().next_probe_at is None
    # Nor by posting the change form of a read-only page.
    for name in ("event", "dataset"):
        change = reverse(f"admin:django_capi_{name}_change", args=[objects[name].pk])
        assert client.post(change, {"status": "pending", "label": "x"}).status_code == 403
    assert Dataset.objects.get().label == XSS


def test_hostile_stored_values_are_escaped_on_every_admin_page(
    admin_client: Any, objects: Any
) -> None:
    pages = [url for url in capi_urls(objects) if not url.endswith(("/add/", "/delete/"))]
    pages.append(reverse("admin:django_capi_event_changelist") + "?q=" + XSS)
    for url in pages:
        response = admin_client.get(url)
        assert response.status_code == 200, url
        html = response.content.decode()
        parsed = parse_html(html)
        assert parsed.handlers == [], url  # no onerror= made it into a tag
        assert XSS not in html and HOSTILE_MESSAGE not in html, url
        assert "EAAadmin-managed-token" not in html, url  # a kept token is never shown
        assert all("alert(1)" not in script for script in parsed.scripts), url
