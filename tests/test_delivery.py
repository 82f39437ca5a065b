"""The delivery engine, in-process, against the fake Graph API on loopback.

Every failure class of the contract: what reaches the API, what each event's row says after,
and what staff see in the attempt log. The same engine runs inside real Celery workers in
test_worker_delivery.py.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import call_command
from django.db import transaction
from django.utils import timezone

from django_capi import signals, track
from django_capi.delivery import engine
from django_capi.delivery.scheduling import queue_delivery
from django_capi.models import DatasetState, DeliveryAttempt, Event, EventStatus
from django_capi.transports.graph_api import GraphAPITransport
from tests.conftest import OTHER_PIXEL, PIXEL, TOKEN, set_capi
from tests.fake_graph_api import (
    closed_port,
    drop,
    graph_error,
    http_error,
    reset_mid_response,
    slow,
    throttle,
)

pytestmark = pytest.mark.django_db


def record(n: int, *, pixel: str = PIXEL, prefix: str = "e") -> list[Event]:
    return [
        track(
            "Lead",
            event_id=f"{prefix}{i}",
            pixel_id=pixel,
            action_source="email",
            user_data={"em": f"person{i}@example.com"},
        )
        for i in range(n)
    ]


def statuses() -> dict[str, str]:
    return dict(Event.objects.values_list("event_id", "status"))


def make_due_now() -> None:
    Event.objects.filter(status=EventStatus.PENDING).update(next_attempt_at=timezone.now())


@pytest.fixture
def caught():
    """Collects the delivery signals sent during a test."""
    seen: dict[str, list[dict]] = {"sent": [], "failed": [], "paused": [], "resumed": []}

    def receiver(name):
        def handler(sender, **kwargs):
            seen[name].append(kwargs)

        return handler

    handlers = {name: receiver(name) for name in seen}
    signals.event_sent.connect(handlers["sent"])
    signals.event_failed.connect(handlers["failed"])
    signals.dataset_paused.connect(handlers["paused"])
    signals.dataset_resumed.connect(handlers["resumed"])
    yield seen
    signals.event_sent.disconnect(handlers["sent"])
    signals.event_failed.disconnect(handlers["failed"])
    signals.dataset_paused.disconnect(handlers["paused"])
    signals.dataset_resumed.disconnect(handlers["resumed"])


def test_due_events_are_sent_and_recorded(capi, fake_api, caught):
    events = record(3)
    report = engine.deliver_dataset(PIXEL)
    assert report.sent == 3
    assert report.requests == 1
    assert sorted(fake_api.received_ids(PIXEL)) == ["e0", "e1", "e2"]
    assert set(statuses().values()) == {EventStatus.SENT}
    sent = Event.objects.get(event_id="e0")
    assert sent.sent_at is not None
    assert sent.attempts == 1
    assert sent.claim_token == ""
    attempt = DeliveryAttempt.objects.get()
    assert attempt.outcome == "success"
    assert attempt.http_status == 200
    assert attempt.events_sent == attempt.events_received == 3
    assert attempt.fbtrace_id
    assert sorted(attempt.events.values_list("pk", flat=True)) == sorted(e.pk for e in events)
    assert caught["sent"][0]["event_ids"] == [e.pk for e in events]
    # What reached Meta is exactly the stored payload.
    assert (
        fake_api.received[0] == Event.objects.get(event_id=fake_api.received[0]["event_id"]).payload
    )


def test_batches_respect_the_batch_size(capi, fake_api, settings):
    set_capi(settings, BATCH_SIZE=4)
    record(10)
    report = engine.deliver_dataset(PIXEL)
    assert report.requests == 3
    assert [r.n_events for r in fake_api.requests] == [4, 4, 2]
    assert sorted(fake_api.received_ids()) == sorted(f"e{i}" for i in range(10))


def test_a_full_batch_is_at_most_1000_events(capi, fake_api):
    template = record(1)[0]
    Event.objects.bulk_create(
        Event(
            dataset_id=PIXEL,
            event_name="Lead",
            event_id=f"bulk{i}",
            event_time=template.event_time,
            action_source="email",
            payload={**template.payload, "event_id": f"bulk{i}"},
        )
        for i in range(1500)
    )
    report = engine.deliver_dataset(PIXEL)
    assert [r.n_events for r in fake_api.requests] == [1000, 501]
    assert report.sent == 1501


def test_only_the_requested_dataset_is_sent(capi, fake_api):
    record(2)
    record(2, pixel=OTHER_PIXEL, prefix="o")
    engine.deliver_dataset(OTHER_PIXEL)
    assert sorted(fake_api.received_ids(OTHER_PIXEL)) == ["o0", "o1"]
    assert fake_api.received_ids(PIXEL) == []


TRANSIENT_FAULTS = {
    "http 503 page": lambda: http_error(503),
    "http 500 json": lambda: http_error(500, code=1),
    "code 2": lambda: graph_error(2, status=503),
    "code 341": lambda: graph_error(341),
    "is_transient": lambda: graph_error(100, 1234, is_transient=True),
    "slow reply": lambda: slow(5),
    "dropped connection": drop,
    "reset mid-response": reset_mid_response,
}


@pytest.mark.parametrize("fault", TRANSIENT_FAULTS.values(), ids=TRANSIENT_FAULTS.keys())
def test_transient_failures_are_retried_later_with_backoff(capi, fake_api, settings, fault):
    set_capi(settings, READ_TIMEOUT=0.5, RETRY_BASE_DELAY=60)
    record(3)
    fake_api.script(fault())
    before = timezone.now()
    report = engine.deliver_dataset(PIXEL)
    assert report.retried == 3
    assert report.sent == 0
    rows = Event.objects.all()
    assert {r.status for r in rows} == {EventStatus.PENDING}
    for row in rows:
        assert row.attempts == 1
        # Between half and all of the base delay: exponential back-off with jitter.
        assert (
            before + timedelta(seconds=29)
            <= row.next_attempt_at
            <= timezone.now() + timedelta(seconds=61)
        )
        assert row.last_error_message
    assert DeliveryAttempt.objects.get().outcome == "transient"
    # Not due yet: a second run sends nothing.
    assert engine.deliver_dataset(PIXEL).requests == 0
    make_due_now()
    assert engine.deliver_dataset(PIXEL).sent == 3
    assert Event.objects.get(event_id="e0").attempts == 2


def test_connection_refused_is_transient(capi, settings):
    set_capi(settings, API_BASE_URL=f"http://127.0.0.1:{closed_port()}")
    record(1)
    report = engine.deliver_dataset(PIXEL)
    assert report.retried == 1
    attempt = DeliveryAttempt.objects.get()
    assert attempt.http_status is None
    assert "Connection" in attempt.error_message
    assert TOKEN not in attempt.error_message


def test_out_of_retries_the_event_fails_with_the_reason(capi, fake_api, settings, caught):
    set_capi(settings, MAX_ATTEMPTS=2)
    record(2)
    fake_api.script(http_error(503), http_error(503))
    engine.deliver_dataset(PIXEL)
    make_due_now()
    report = engine.deliver_dataset(PIXEL)
    assert report.failed == 2
    row = Event.objects.get(event_id="e0")
    assert row.status == EventStatus.FAILED
    assert row.attempts == 2
    assert row.last_error_message.startswith("gave up after 2 attempts")
    assert "503" in row.last_error_message
    assert sorted(caught["failed"][0]["event_ids"]) == sorted(
        Event.objects.values_list("pk", flat=True)
    )


@pytest.mark.parametrize("code", [4, 17, 32, 613])
def test_throttling_backs_off_the_whole_dataset(capi, fake_api, code):
    record(3)
    record(2, pixel=OTHER_PIXEL, prefix="o")
    fake_api.script(throttle(code), dataset_id=PIXEL)
    reports = {r.dataset_id: r for r in engine.deliver_all()}
    assert reports[PIXEL].throttled
    # The other dataset is not slowed down.
    assert sorted(fake_api.received_ids(OTHER_PIXEL)) == ["o0", "o1"]
    pending = Event.objects.filter(dataset_id=PIXEL)
    assert {e.status for e in pending} == {EventStatus.PENDING}
    assert {e.attempts for e in pending} == {0}  # throttling is not the events' fault
    state = DatasetState.objects.get(dataset_id=PIXEL)
    assert state.throttle_count == 1
    assert state.throttled_until > timezone.now()
    # While throttled, nothing is sent, not even due events.
    requests_before = len(fake_api.requests)
    assert engine.deliver_dataset(PIXEL).throttled
    assert len(fake_api.requests) == requests_before
    # Once the back-off has passed, delivery resumes and the counter resets.
    DatasetState.objects.filter(dataset_id=PIXEL).update(throttled_until=timezone.now())
    assert engine.deliver_dataset(PIXEL).sent == 3
    assert DatasetState.objects.get(dataset_id=PIXEL).throttle_count == 0


def test_consecutive_throttles_double_the_backoff(capi, fake_api, settings):
    set_capi(settings, THROTTLE_BASE_DELAY=100, THROTTLE_MAX_DELAY=10_000)
    record(1)
    delays = []
    for _ in range(3):
        fake_api.script(throttle())
        start = timezone.now()
        engine.deliver_dataset(PIXEL)
        state = DatasetState.objects.get(dataset_id=PIXEL)
        delays.append((state.throttled_until - start).total_seconds())
        DatasetState.objects.filter(dataset_id=PIXEL).update(throttled_until=timezone.now())
    assert 49 <= delays[0] <= 101
    assert 99 <= delays[1] <= 201
    assert 199 <= delays[2] <= 401


AUTH_FAULTS = {
    "190 expired token": lambda: graph_error(190, 463),
    "102 session": lambda: graph_error(102),
    "10 permission": lambda: graph_error(10, status=403),
    "200 permission": lambda: graph_error(200, status=403),
    "299 permission": lambda: graph_error(299, status=403),
    "100/33 unknown dataset": lambda: graph_error(100, 33),
}


@pytest.mark.parametrize("fault", AUTH_FAULTS.values(), ids=AUTH_FAULTS.keys())
def test_token_or_permission_errors_pause_the_dataset_and_keep_events(
    capi, fake_api, caught, caplog, fault
):
    record(3)
    fake_api.script(fault())
    with caplog.at_level(logging.ERROR, logger="django_capi.delivery"):
        report = engine.deliver_dataset(PIXEL)
    assert report.paused
    assert {e.status for e in Event.objects.all()} == {EventStatus.PENDING}
    assert {e.attempts for e in Event.objects.all()} == {0}
    state = DatasetState.objects.get(dataset_id=PIXEL)
    assert state.is_paused
    assert state.pause_code is not None
    assert len(caught["paused"]) == 1
    assert "paused" in caplog.text
    assert TOKEN not in caplog.text
    # Paused: nothing is tried until the token changes or a probe is due.
    requests_before = len(fake_api.requests)
    assert engine.deliver_dataset(PIXEL).paused
    assert len(fake_api.requests) == requests_before
    # A probe that still fails keeps it paused without a second alarm.
    DatasetState.objects.filter(dataset_id=PIXEL).update(next_probe_at=timezone.now())
    fake_api.script(fault())
    assert engine.deliver_dataset(PIXEL).paused
    assert len(caught["paused"]) == 1
    # Meta-side fix (permission granted): the next probe succeeds and delivery resumes.
    DatasetState.objects.filter(dataset_id=PIXEL).update(next_probe_at=timezone.now())
    report = engine.deliver_dataset(PIXEL)
    assert report.sent == 3
    assert not DatasetState.objects.get(dataset_id=PIXEL).is_paused
    assert len(caught["resumed"]) == 1


def test_a_replaced_token_resumes_a_paused_dataset_at_once(capi, fake_api, settings, caught):
    record(2)
    fake_api.set_token(PIXEL, "EAAnew-token")  # the old token is revoked: code 190
    engine.deliver_dataset(PIXEL)
    assert DatasetState.objects.get(dataset_id=PIXEL).is_paused
    assert fake_api.requests[-1].status == 400
    set_capi(settings, ACCESS_TOKEN="EAAnew-token")
    report = engine.deliver_dataset(PIXEL)
    assert report.resumed
    assert report.sent == 2
    assert len(caught["resumed"]) == 1
    # The fingerprint kept while paused is not the token.
    assert "EAA" not in repr(list(DatasetState.objects.values()))


def test_a_pause_recorded_by_another_worker_during_a_successful_run_is_lifted(
    capi, fake_api, caught
):
    """Two workers at once: one gets 190 and pauses the dataset while the other's request,
    with the same token, succeeds. The dataset must not stay paused until the next probe."""
    record(2)

    class ConcurrentPause(GraphAPITransport):
        def send(self, dataset, events):
            result = super().send(dataset, events)
            # What the other worker records while this request is in flight.
            DatasetState.objects.update_or_create(
                dataset_id=PIXEL,
                defaults={
                    "paused_at": timezone.now() - timedelta(milliseconds=5),
                    "pause_code": 190,
                    "next_probe_at": timezone.now() + timedelta(minutes=15),
                },
            )
            return result

    report = engine.deliver_dataset(PIXEL, transport=ConcurrentPause())
    assert report.sent == 2
    assert report.resumed
    assert not DatasetState.objects.get(dataset_id=PIXEL).is_paused
    assert len(caught["resumed"]) == 1


def test_a_dataset_without_a_token_is_paused_not_lost(capi, settings):
    record(1, pixel="999")
    report = engine.deliver_dataset("999")
    assert report.paused
    assert Event.objects.get().status == EventStatus.PENDING


def test_a_poisoned_event_is_isolated_and_only_it_fails(capi, fake_api, caught):
    record(10)
    fake_api.poison_event_ids = {"e6"}
    report = engine.deliver_dataset(PIXEL)
    assert report.sent == 9
    assert report.failed == 1
    assert statuses()["e6"] == EventStatus.FAILED
    assert sorted(fake_api.received_ids()) == sorted(f"e{i}" for i in range(10) if i != 6)
    bad = Event.objects.get(event_id="e6")
    assert bad.last_error_code == 100
    assert bad.last_error_subcode
    assert bad.last_error_message
    assert caught["failed"][0]["event_ids"] == [bad.pk]
    # Each request left one attempt record.
    assert DeliveryAttempt.objects.count() == report.requests == len(fake_api.requests)


def test_two_poisoned_events_in_a_larger_batch(capi, fake_api):
    record(64)
    fake_api.poison_event_ids = {"e3", "e50"}
    report = engine.deliver_dataset(PIXEL)
    assert report.sent == 62
    assert sorted(e for e, s in statuses().items() if s == EventStatus.FAILED) == ["e3", "e50"]
    assert report.requests < 30  # bisection, not one request per event


def test_throttled_while_splitting_releases_the_rest(capi, fake_api):
    record(8)
    fake_api.poison_event_ids = {"e0"}
    # The batch is rejected; the first half answers with a throttle.
    fake_api.script(graph_error(100, 2804019), throttle())
    engine.deliver_dataset(PIXEL)
    assert {e.status for e in Event.objects.all()} == {EventStatus.PENDING}
    assert DatasetState.objects.get(dataset_id=PIXEL).throttled_until is not None


def test_stale_events_expire_before_sending_and_do_not_sink_the_batch(capi, fake_api, caught):
    fresh = record(2)
    old_time = timezone.now() - timedelta(days=8)
    Event.objects.create(
        dataset_id=PIXEL,
        event_name="Lead",
        event_id="old",
        event_time=old_time,
        action_source="email",
        payload={**fresh[0].payload, "event_id": "old", "event_time": int(old_time.timestamp())},
    )
    store_time = timezone.now() - timedelta(days=30)
    Event.objects.create(
        dataset_id=PIXEL,
        event_name="Purchase",
        event_id="store",
        event_time=store_time,
        action_source="physical_store",
        payload={
            **fresh[0].payload,
            "event_id": "store",
            "action_source": "physical_store",
            "event_time": int(store_time.timestamp()),
        },
    )
    report = engine.deliver_dataset(PIXEL)
    assert report.expired == 1
    old = Event.objects.get(event_id="old")
    assert old.status == EventStatus.EXPIRED
    assert "7 days" in old.last_error_message
    assert sorted(fake_api.received_ids()) == ["e0", "e1", "store"]  # 30 days is fine in store
    assert caught["failed"][0]["event_ids"] == [old.pk]


def test_a_dead_workers_lease_expires_and_another_worker_sends(capi, fake_api):
    record(3)
    claimed = engine.claim_batch(PIXEL, 1000)
    assert claimed is not None
    assert len(claimed.ids) == 3
    # The worker dies here, before sending. Nobody else can take the events meanwhile...
    assert engine.claim_batch(PIXEL, 1000) is None
    assert engine.reclaim_expired_leases() == 0
    # ...until the lease expires.
    Event.objects.update(lease_expires_at=timezone.now() - timedelta(seconds=1))
    assert engine.reclaim_expired_leases() == 3
    report = engine.deliver_dataset(PIXEL)
    assert report.sent == 3
    assert sorted(fake_api.received_ids()) == ["e0", "e1", "e2"]
    assert Event.objects.get(event_id="e0").attempts == 2


def test_a_worker_that_lost_its_lease_records_nothing(capi, fake_api):
    record(2)
    slow_worker = engine.claim_batch(PIXEL, 1000)
    assert slow_worker is not None
    Event.objects.update(lease_expires_at=timezone.now() - timedelta(seconds=1))
    engine.reclaim_expired_leases()
    assert engine.deliver_dataset(PIXEL).sent == 2
    # The slow worker finally hears back from Meta with an error: it must not undo "sent".
    run = engine._Run(PIXEL, engine.get_transport())
    fake_api.script(graph_error(1))
    run.send(slow_worker)
    assert run.report.lease_lost == 2
    assert set(statuses().values()) == {EventStatus.SENT}


def test_claims_never_overlap(capi):
    record(10)
    first = engine.claim_batch(PIXEL, 4)
    second = engine.claim_batch(PIXEL, 4)
    third = engine.claim_batch(PIXEL, 4)
    assert first and second and third
    ids = first.ids + second.ids + third.ids
    assert len(ids) == len(set(ids)) == 10


def test_invalid_and_discarded_events_are_never_sent(capi, fake_api):
    record(1)
    track("Purchase", action_source="email", user_data={"em": "a@b.co"})  # no value: invalid
    Event.objects.filter(event_id="e0").update(status=EventStatus.DISCARDED)
    assert engine.deliver_all() == []
    assert fake_api.requests == []


def test_the_token_is_never_stored_in_events_or_attempts(capi, fake_api):
    record(3)
    fake_api.script(http_error(503), graph_error(190))
    engine.deliver_dataset(PIXEL)
    make_due_now()
    engine.deliver_dataset(PIXEL)
    dump = repr(list(Event.objects.values())) + repr(list(DeliveryAttempt.objects.values()))
    assert TOKEN not in dump
    assert "EAA" not in dump
    assert all(not r.token_in_url for r in fake_api.requests)


def test_capi_deliver_command_runs_the_same_delivery(capi, fake_api):
    record(2)
    record(1, pixel=OTHER_PIXEL, prefix="o")
    out = StringIO()
    call_command("capi_deliver", stdout=out)
    text = out.getvalue()
    assert f"dataset {PIXEL}: 2 sent" in text
    assert f"dataset {OTHER_PIXEL}: 1 sent" in text
    assert sorted(fake_api.received_ids()) == ["e0", "e1", "o0"]
    out = StringIO()
    call_command("capi_deliver", stdout=out)
    assert "No events are due." in out.getvalue()


def test_delivery_is_queued_only_when_the_transaction_commits(
    capi, settings, django_capture_on_commit_callbacks
):
    set_capi(settings, QUEUE_ON_COMMIT=True)
    with django_capture_on_commit_callbacks() as callbacks:
        record(1)
    assert len(callbacks) == 1
    with django_capture_on_commit_callbacks() as callbacks:
        # Recording the same event again queues nothing new.
        record(1)
    assert callbacks == []


def test_rolled_back_events_queue_nothing(capi, settings, django_capture_on_commit_callbacks):
    set_capi(settings, QUEUE_ON_COMMIT=True)
    with django_capture_on_commit_callbacks() as callbacks:
        try:
            with transaction.atomic():
                record(1)
                raise RuntimeError
        except RuntimeError:
            pass
    assert callbacks == []
    assert Event.objects.count() == 0


def test_broker_down_does_not_break_the_callers_request(capi, caplog):
    # tests/settings.py points the broker at a port no broker listens on in this process.
    with caplog.at_level(logging.WARNING, logger="django_capi.delivery"):
        assert queue_delivery(PIXEL) is False
    assert "periodic sweep" in caplog.text
