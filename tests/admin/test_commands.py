"""The operator commands: send a test event, retry, purge, status; and the purge task."""

from __future__ import annotations

import hashlib
import json
from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.utils import timezone

from django_capi import housekeeping, tasks
from django_capi.models import DatasetState, DeliveryAttempt, Event
from tests.admin.factories import make_attempt, make_event
from tests.conftest import OTHER_PIXEL, PIXEL, TOKEN, set_capi

pytestmark = pytest.mark.django_db

DAY = timedelta(days=1)


def run(*args: str) -> str:
    out = StringIO()
    call_command(*args, stdout=out, stderr=StringIO())
    return out.getvalue()


@pytest.fixture
def queued(monkeypatch):
    calls: list[str] = []
    monkeypatch.setattr("django_capi.housekeeping.queue_delivery", calls.append)
    return calls


# --- capi_send_test_event -------------------------------------------------------------------


def test_send_test_event_reaches_the_api_with_the_test_event_code(capi, fake_api):
    out = run("capi_send_test_event", "--test-event-code", "TEST42")
    request = fake_api.requests[-1]
    assert request.dataset_id == PIXEL and request.test_event_code == "TEST42"
    assert request.status == 200 and request.n_events == 1
    event = fake_api.received[-1]
    assert event["event_id"].startswith("capi-test-")
    assert event["user_data"]["em"] == hashlib.sha256(b"test@example.com").hexdigest()
    assert "events_received=1" in out and "fbtrace_id=" in out
    assert "fbtrace_id=-" not in out
    assert TOKEN not in out
    assert not Event.objects.exists()  # nothing stored: it would be delivered again


def test_send_test_event_uses_the_setting_and_another_dataset(settings, capi, fake_api):
    set_capi(
        settings,
        DATASETS={
            OTHER_PIXEL: {
                "ACCESS_TOKEN": capi["DATASETS"][OTHER_PIXEL]["ACCESS_TOKEN"],
                "TEST_EVENT_CODE": "FROMSETTINGS",
            }
        },
    )
    run("capi_send_test_event", "--dataset", OTHER_PIXEL, "--event-name", "Lead")
    request = fake_api.requests[-1]
    assert (request.dataset_id, request.test_event_code) == (OTHER_PIXEL, "FROMSETTINGS")
    assert fake_api.received[-1]["event_name"] == "Lead"


def test_send_test_event_reports_meta_errors_and_exits_non_zero(capi, fake_api):
    fake_api.set_token(PIXEL, "EAAa-different-token")
    out = StringIO()
    with pytest.raises(CommandError) as raised:
        call_command("capi_send_test_event", "--test-event-code", "T1", stdout=out)
    assert raised.value.returncode == 1
    text = out.getvalue()
    assert "Meta did not accept the test event (HTTP 400" in text
    assert "code: 190" in text and "fbtrace_id:" in text
    assert TOKEN not in text and TOKEN not in str(raised.value)


def test_send_test_event_refuses_to_send_without_a_test_event_code(capi, fake_api):
    with pytest.raises(CommandError, match="No test event code"):
        run("capi_send_test_event")
    with pytest.raises(CommandError, match="not configured"):
        run("capi_send_test_event", "--dataset", "999", "--test-event-code", "T")
    assert fake_api.requests == []


# --- capi_retry ---------------------------------------------------------------------------


@pytest.fixture
def failures(locmem_capi):
    return {
        "transient": make_event(
            "Lead", status="failed", last_error_code=2, age=2 * timedelta(hours=1)
        ),
        "token": make_event(
            "Purchase", status="failed", dataset_id=OTHER_PIXEL, last_error_code=190
        ),
        "expired": make_event("Lead", status="expired"),
        "not_hashed": make_event(
            "Purchase",
            status="failed",
            last_error_code=100,
            last_error_subcode=2804016,
            age=3 * DAY,
            event_time=timezone.now() - timedelta(hours=1),
        ),
        "sent": make_event("Lead", status="sent"),
        "discarded": make_event("Lead", status="discarded"),
    }


def retried(failures) -> set[str]:
    pending = set(Event.objects.filter(status="pending").values_list("pk", flat=True))
    return {name for name, event in failures.items() if event.pk in pending}


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        ((), {"transient", "token", "expired", "not_hashed"}),
        (("--error-code", "2"), {"transient"}),
        (("--error-code", "100/2804016"), {"not_hashed"}),
        (("--error-code", "100/1", "--error-code", "190"), {"token"}),
        (("--dataset", OTHER_PIXEL), {"token"}),
        (("--event-name", "Lead"), {"transient", "expired"}),
        (("--older-than", "1d"), {"not_hashed"}),
        (("--newer-than", "90m"), {"token", "expired"}),
        (("--status", "expired"), {"expired"}),
        (("--status", "discarded", "--event-name", "Lead"), {"discarded"}),
    ],
)
def test_retry_filters(failures, queued, django_capture_on_commit_callbacks, args, expected):
    with django_capture_on_commit_callbacks(execute=True):
        out = run("capi_retry", *args)
    assert retried(failures) == expected
    assert f"{len(expected)} event" in out
    datasets = {failures[name].dataset_id for name in expected}
    assert sorted(queued) == sorted(datasets)  # one delivery task per dataset, after commit


def test_retry_dry_run_changes_and_queues_nothing(
    failures, queued, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        out = run("capi_retry", "--dry-run")
    assert out.startswith("Dry run: nothing was changed.")
    assert "\n4 events queued for retry" in out
    assert retried(failures) == set() and callbacks == [] and queued == []


def test_retry_rejects_bad_filters(locmem_capi):
    with pytest.raises(CommandError, match="not a duration"):
        run("capi_retry", "--older-than", "yesterday")
    with pytest.raises(CommandError, match="not an error code"):
        run("capi_retry", "--error-code", "abc")


def test_parsers():
    assert housekeeping.parse_duration("90") == timedelta(seconds=90)
    assert housekeeping.parse_duration("15m") == timedelta(minutes=15)
    assert housekeeping.parse_duration("1.5h") == timedelta(minutes=90)
    assert housekeeping.parse_duration("2W") == timedelta(days=14)
    assert housekeeping.parse_error_code(" 100/2804016 ") == (100, 2804016)
    assert housekeeping.parse_error_code("190") == (190, None)


# --- capi_purge ---------------------------------------------------------------------------


@pytest.fixture
def old_and_new(locmem_capi):
    old = 91 * DAY
    events = {
        status: make_event(status=status, age=old)
        for status in ("sent", "failed", "expired", "discarded", "pending", "sending")
    }
    events["sent2"] = make_event(status="sent", age=old + DAY)
    events["recent"] = make_event(status="sent", age=10 * DAY)
    attempts = {
        "purged": make_attempt([events["sent"], events["failed"], events["sent2"]], age=old),
        "kept": make_attempt([events["sent"], events["pending"]], age=old),
        "orphan": make_attempt([], age=old),
        "fresh_orphan": make_attempt([]),  # its links may still be on their way
        "recent": make_attempt([events["recent"]], age=10 * DAY),
    }
    return events, attempts


def test_purge_deletes_old_finished_events_in_batches_with_their_attempts(old_and_new):
    events, attempts = old_and_new
    out = run("capi_purge", "--batch-size", "2")
    assert "Deleted 5 events and 2 delivery attempts" in out
    left = set(Event.objects.values_list("status", flat=True))
    assert left == {"pending", "sending", "sent"}
    assert Event.objects.filter(pk=events["recent"].pk).exists()
    assert set(DeliveryAttempt.objects.values_list("pk", flat=True)) == {
        attempts["kept"].pk,
        attempts["fresh_orphan"].pk,
        attempts["recent"].pk,
    }
    through = DeliveryAttempt.events.through.objects
    assert list(
        through.filter(deliveryattempt=attempts["kept"]).values_list("event", flat=True)
    ) == [events["pending"].pk]
    assert "(4 batches)" in out  # sent (2 rows), failed, expired, discarded: at most 2 per batch


def test_purge_retention_override_dry_run_and_off(settings, old_and_new):
    assert "Would delete 5 events and 1 delivery attempts" in run("capi_purge", "--dry-run")
    assert Event.objects.count() == 8
    set_capi(settings, RETENTION_DAYS=None)
    assert "Retention is off" in run("capi_purge")
    assert "Deleted 6 events" in run("capi_purge", "--days", "7")
    assert set(Event.objects.values_list("status", flat=True)) == {"pending", "sending"}
    with pytest.raises(CommandError):
        run("capi_purge", "--days", "-1")


def test_purge_task(settings, old_and_new):
    set_capi(settings, RETENTION_DAYS=30, PURGE_BATCH_SIZE=1)
    result = tasks.purge_old_events()
    assert result == {"events": 5, "attempts": 2, "batches": 5}


# --- capi_status --------------------------------------------------------------------------


def test_status_healthy(locmem_capi):
    make_event("Purchase", status="sent", keys=("em", "ph"))
    out = run("capi_status")
    assert out.splitlines()[2].startswith("HEALTHY")
    assert "Events by status, last 24 hours" in out and "Purchase" in out
    assert "Match keys and estimated match quality" in out


def status_code(*args: str) -> tuple[int, str]:
    out = StringIO()
    try:
        call_command("capi_status", *args, stdout=out)
    except CommandError as exc:
        return exc.returncode, out.getvalue()
    return 0, out.getvalue()


def test_status_exit_codes(locmem_capi):
    now = timezone.now()
    lagging = make_event("Lead", status="pending", next_attempt_at=now - timedelta(minutes=30))
    code, out = status_code()
    assert code == housekeeping.EXIT_LAGGING == 2
    assert "has events due for 30 min" in out
    assert status_code("--max-pending-age", "1h")[0] == 0
    DatasetState.objects.create(
        dataset_id=OTHER_PIXEL, paused_at=now, pause_code=190, pause_reason="[190] expired"
    )
    code, out = status_code()
    assert code == 6
    assert "Dataset 6543210987654321 is paused" in out and "generate a new one" in out
    Event.objects.filter(pk=lagging.pk).update(status="sent")
    assert status_code()[0] == housekeeping.EXIT_PAUSED == 4


def test_status_does_not_count_throttled_datasets_as_lagging(locmem_capi):
    now = timezone.now()
    make_event("Lead", status="pending", next_attempt_at=now - timedelta(minutes=30))
    DatasetState.objects.create(dataset_id=PIXEL, throttled_until=now + timedelta(minutes=5))
    code, out = status_code()
    assert code == 0 and "throttled" in out


def test_status_sees_workers_that_died_mid_send(locmem_capi):
    make_event(
        status="sending", claim_token="t", lease_expires_at=timezone.now() - timedelta(hours=1)
    )
    assert status_code()[0] == housekeeping.EXIT_LAGGING


def test_status_json(locmem_capi):
    make_event("Purchase", status="failed", last_error_code=190)
    DatasetState.objects.create(dataset_id=PIXEL, paused_at=timezone.now(), pause_code=190)
    code, out = status_code("--json")
    data = json.loads(out)
    assert code == data["exit_code"] == 4 and data["healthy"] is False
    assert data["windows"]["24h"]["totals"]["failed"] == 1
    assert data["windows"]["7d"]["top_errors"][0]["label"] == "190 Invalid or expired access token"
    assert data["windows"]["24h"]["match_quality"][0]["score"] == 4.5
    assert data["datasets"][0]["state"] == "paused"
