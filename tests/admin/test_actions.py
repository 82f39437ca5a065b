"""Retry and discard from the admin, and who may do what."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.contrib.messages import get_messages
from django.urls import reverse
from django.utils import timezone

import django_capi
from django_capi.delivery import engine
from django_capi.models import DatasetState, Event
from tests.admin.factories import make_attempt, make_event
from tests.conftest import OTHER_PIXEL, PIXEL

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("locmem_capi")]

CHANGELIST = reverse("admin:django_capi_event_changelist")


def act(client, action: str, events, **extra):
    data = {"action": action, "_selected_action": [e.pk for e in events], **extra}
    return client.post(CHANGELIST, data)


def notes(response) -> list[str]:
    return [str(m) for m in get_messages(response.wsgi_request)]


@pytest.fixture
def queued(monkeypatch):
    """Records delivery tasks queued (instead of talking to a Celery broker)."""
    calls: list[str] = []
    monkeypatch.setattr("django_capi.housekeeping.queue_delivery", calls.append)
    monkeypatch.setattr("django_capi.admin.queue_delivery", calls.append)
    return calls


@pytest.fixture
def mixed():
    """One event of each kind staff may select."""
    now = timezone.now()
    return {
        "failed": make_event(status="failed", attempts=15, last_error_code=2),
        "expired": make_event(status="expired", dataset_id=OTHER_PIXEL),
        "discarded": make_event(status="discarded"),
        "pending": make_event(
            status="pending", attempts=2, next_attempt_at=now + timedelta(hours=1)
        ),
        "sent": make_event(status="sent"),
        "sending": make_event(status="sending", claim_token="x", lease_expires_at=now),
        "invalid": make_event(
            status="failed", validation_errors=[{"field": "event_name", "rule": "missing"}]
        ),
        "too_old": make_event(status="failed", event_time=now - timedelta(days=8)),
    }


def test_retry_requeues_after_commit_and_never_sends_in_the_request(
    admin_client, mixed, queued, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        response = act(admin_client, "retry_now", mixed.values())
    assert response.status_code == 302
    assert django_capi.outbox == []  # nothing was sent during the request
    assert queued == []  # not even queued: that waits for the commit
    assert notes(response) == [
        "4 events queued for retry; 1 already sent was skipped; 1 being sent right now was "
        "skipped; 1 too old for Meta to accept was skipped; 1 invalid event was skipped (fix "
        "the data and record it again)."
    ]
    for name in ("failed", "expired", "discarded", "pending"):
        event = Event.objects.get(pk=mixed[name].pk)
        assert event.status == "pending", name
        assert event.attempts == 0  # a staff retry starts a fresh series of attempts
        assert event.next_attempt_at <= timezone.now()
    for name in ("sent", "sending", "invalid", "too_old"):
        assert Event.objects.get(pk=mixed[name].pk).status == mixed[name].status, name
    # One delivery task per dataset, queued once the transaction commits.
    assert len(callbacks) == 2
    for callback in callbacks:
        callback()
    assert sorted(queued) == sorted([PIXEL, OTHER_PIXEL])
    assert django_capi.outbox == []


def test_the_queued_task_then_delivers_the_retried_events(
    admin_client, queued, django_capture_on_commit_callbacks
):
    event = make_event(status="failed", last_error_code=2)
    with django_capture_on_commit_callbacks(execute=True):
        act(admin_client, "retry_now", [event])
    assert queued == [PIXEL] and django_capi.outbox == []
    engine.deliver_dataset(PIXEL)  # what the queued Celery task runs
    assert [m.events[0]["event_id"] for m in django_capi.outbox] == [event.event_id]
    assert Event.objects.get(pk=event.pk).status == "sent"


def test_retry_warns_when_the_dataset_is_paused(admin_client, queued):
    DatasetState.objects.create(dataset_id=PIXEL, paused_at=timezone.now(), pause_code=190)
    response = act(admin_client, "retry_now", [make_event(status="failed")])
    messages = notes(response)
    assert messages[0] == "1 event queued for retry."
    assert "Dataset 1234567890123456 is paused, so its events wait" in messages[1]
    assert "replace" in messages[1].lower() or "generate a new one" in messages[1]


def test_discard(admin_client, mixed, queued):
    response = act(admin_client, "discard", mixed.values())
    assert notes(response) == [
        "5 events discarded; 1 already sent was skipped; 1 being sent right now was skipped; "
        "1 already discarded was skipped."
    ]
    statuses = dict(Event.objects.values_list("pk", "status"))
    assert statuses[mixed["pending"].pk] == "discarded"
    assert statuses[mixed["sent"].pk] == "sent"
    assert statuses[mixed["sending"].pk] == "sending"
    assert queued == []


def test_buttons_on_the_event_page_come_back_to_it(operator_client, queued):
    event = make_event(status="failed")
    make_attempt([event], outcome="transient", fbtrace_id="TRACE-FOR-OPERATOR")
    page = reverse("admin:django_capi_event_change", args=[event.pk])
    html = operator_client.get(page).content.decode()
    assert 'id="capi-retry"' in html and 'id="capi-discard"' in html
    # The attempt log shows for whoever may see the event (no attempt permission needed).
    assert "TRACE-FOR-OPERATOR" in html
    response = act(operator_client, "retry_now", [event], _capi_next=page)
    assert response.status_code == 302 and response["Location"] == page
    assert Event.objects.get(pk=event.pk).status == "pending"
    # Never to another site.
    response = act(operator_client, "discard", [event], _capi_next="https://evil.example/")
    assert response["Location"] == CHANGELIST


def test_view_only_staff_can_look_but_not_act(viewer_client, queued):
    event = make_event(status="failed")
    page = reverse("admin:django_capi_event_change", args=[event.pk])
    listing = viewer_client.get(CHANGELIST)
    assert listing.status_code == 200
    assert 'name="_selected_action"' not in listing.content.decode()  # no actions offered
    detail = viewer_client.get(page)
    assert detail.status_code == 200
    assert 'id="capi-retry"' not in detail.content.decode()
    assert "delivery attempts" in detail.content.decode().lower()  # the log is visible
    refused = act(viewer_client, "retry_now", [event])
    assert refused.status_code in (200, 302)
    assert viewer_client.post(page, {"status": "pending"}).status_code == 403
    assert Event.objects.get(pk=event.pk).status == "failed"
    assert queued == []


def test_staff_without_permission_get_403(stranger_client):
    event = make_event(status="failed")
    page = reverse("admin:django_capi_event_change", args=[event.pk])
    assert stranger_client.get(CHANGELIST).status_code == 403
    assert stranger_client.get(page).status_code == 403
    assert act(stranger_client, "retry_now", [event]).status_code == 403
    assert (
        stranger_client.get(reverse("admin:django_capi_deliveryattempt_changelist")).status_code
        == 403
    )
    assert Event.objects.get(pk=event.pk).status == "failed"


def test_anonymous_users_are_sent_to_the_login_page(client):
    event = make_event(status="failed")
    for url in (CHANGELIST, reverse("admin:django_capi_event_change", args=[event.pk])):
        response = client.get(url)
        assert response.status_code == 302 and "/login/" in response["Location"]
    assert act(client, "retry_now", [event]).status_code == 302
    assert Event.objects.get(pk=event.pk).status == "failed"


def test_operators_may_act_without_being_superusers(
    operator_client, queued, django_capture_on_commit_callbacks
):
    event = make_event(status="expired")
    with django_capture_on_commit_callbacks(execute=True):
        response = act(operator_client, "retry_now", [event])
    assert notes(response) == ["1 event queued for retry."]
    assert queued == [PIXEL]


def test_probe_paused_datasets_now(admin_client, queued, django_capture_on_commit_callbacks):
    later = timezone.now() + timedelta(minutes=15)
    paused = DatasetState.objects.create(
        dataset_id=PIXEL, paused_at=timezone.now(), pause_code=190, next_probe_at=later
    )
    healthy = DatasetState.objects.create(dataset_id=OTHER_PIXEL)
    with django_capture_on_commit_callbacks(execute=True):
        response = admin_client.post(
            reverse("admin:django_capi_datasetstate_changelist"),
            {"action": "probe_now", "_selected_action": [paused.pk, healthy.pk]},
        )
    assert notes(response) == ["Delivery to 1 paused dataset is queued to be tried again."]
    paused.refresh_from_db()
    assert paused.next_probe_at <= timezone.now()
    assert queued == [PIXEL]
