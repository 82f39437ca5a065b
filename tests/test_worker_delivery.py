"""Delivery through real Celery worker processes, a real Redis broker and PostgreSQL.

Events are recorded by this test process exactly as a host's request would record them; the
workers deliver them to the fake Graph API on loopback. Worker processes cannot see SQLite's
in-memory test database, so this module needs PostgreSQL (``DATABASE_URL``); CI runs it.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest
from django.db import connection, transaction

from django_capi import track
from django_capi.models import Dataset, DatasetState, Event, EventStatus
from tests.celery_app import app as celery_app
from tests.conftest import OTHER_PIXEL, OTHER_TOKEN, PIXEL, TOKEN
from tests.fake_graph_api import FakeGraphAPI, graph_error, http_error, slow, throttle
from tests.workers import CeleryWorker, RedisServer, wait_for

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(
        connection.vendor != "postgresql",
        reason="worker processes need a shared database: run with DATABASE_URL=postgres://...",
    ),
]

OVERRIDES: dict[str, Any] = {
    "QUEUE_ON_COMMIT": True,
    "BATCH_SIZE": 100,
    "LEASE_SECONDS": 15,
    "READ_TIMEOUT": 2.0,
    "CONNECT_TIMEOUT": 1.0,
    "RETRY_BASE_DELAY": 0.2,
    "RETRY_MAX_DELAY": 1,
    "THROTTLE_BASE_DELAY": 0.5,
    "THROTTLE_MAX_DELAY": 1,
    "PAUSE_PROBE_INTERVAL": 1,
    "MAX_ATTEMPTS": 6,
    "TASK_TIME_BUDGET": 5,
    "DATASETS": {OTHER_PIXEL: {"ACCESS_TOKEN": OTHER_TOKEN}},
    # Tokens of admin-managed datasets: the workers decrypt what this process encrypted.
    "ENCRYPTION_KEYS": ["__dI_359yJ6MrOR9FkAE8pdo1lolCLzTcC9cDEUy3aM="],
}


@pytest.fixture(scope="module")
def broker() -> Iterator[RedisServer]:
    server = RedisServer().start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def api() -> Iterator[FakeGraphAPI]:
    with FakeGraphAPI(tokens={PIXEL: TOKEN, OTHER_PIXEL: OTHER_TOKEN}) as server:
        yield server


@pytest.fixture(scope="module")
def overrides(api: FakeGraphAPI) -> dict[str, Any]:
    return {**OVERRIDES, "API_BASE_URL": api.url}


@pytest.fixture(scope="module")
def worker(
    broker: RedisServer, overrides: dict[str, Any], django_db_setup: Any, django_db_blocker: Any
) -> Iterator[CeleryWorker]:
    with django_db_blocker.unblock():
        process = CeleryWorker(overrides, name="main").start()
    yield process
    process.stop()


# Every test's event ids start with its own name: a late resend from an earlier test (a
# lease taken over on a loaded machine sends again, by design) cannot be mistaken for this
# test's traffic.
_test: dict[str, Any] = {"prefix": ""}


def api_received(dataset_id: str | None) -> list[str]:
    api: FakeGraphAPI = _test["api"]
    return api.received_ids(dataset_id)


def ids_of(prefix: str, n: int) -> list[str]:
    return [f"{_test['prefix']}{prefix}{i}" for i in range(n)]


def received(dataset_id: str | None = None) -> list[str]:
    """Event ids the fake API accepted in this test, duplicates kept."""
    return [i for i in api_received(dataset_id) if i.startswith(_test["prefix"])]


@pytest.fixture(autouse=True)
def capi_here(
    request: Any, settings: Any, overrides: dict[str, Any], api: FakeGraphAPI
) -> Iterator[None]:
    """This process records events with the same settings the workers deliver with.

    Afterwards, tasks still queued are dropped and in-flight sends are waited for, so
    nothing of one test reaches the fake API during the next.
    """
    settings.CAPI = {**settings.CAPI, **overrides}
    api.reset()
    _test["prefix"] = f"{request.node.name}-"
    _test["api"] = api
    yield
    with contextlib.suppress(Exception):  # the broker-down test may leave it restarting
        celery_app.control.purge()
    wait_for(
        lambda: not Event.objects.filter(status=EventStatus.SENDING).exists(),
        what="in-flight sends to finish",
    )


def record(n: int, *, pixel: str = PIXEL, prefix: str = "e") -> list[str]:
    """Record n events, each in its own committed transaction, like n orders."""
    ids = []
    for event_id in ids_of(prefix, n):
        with transaction.atomic():
            event = track(
                "Purchase",
                event_id=event_id,
                pixel_id=pixel,
                action_source="email",
                user_data={"em": f"buyer-{event_id}@example.com"},
                custom_data={"value": 10, "currency": "EUR"},
            )
        ids.append(event.event_id)
    return ids


def bulk_backlog(n: int, *, prefix: str = "b") -> list[str]:
    template = track(
        "Lead",
        event_id=ids_of(f"{prefix}-template", 1)[0],
        action_source="email",
        user_data={"em": "x@y.co"},
    )
    backlog = ids_of(prefix, n)
    Event.objects.bulk_create(
        Event(
            dataset_id=PIXEL,
            event_name="Lead",
            event_id=event_id,
            event_time=template.event_time,
            action_source="email",
            payload={**template.payload, "event_id": event_id},
        )
        for event_id in backlog
    )
    return [template.event_id, *backlog]


_last_sweep = [0.0]


def sweep() -> None:
    """The periodic task, as beat would send it (at most once a second)."""
    if time.monotonic() - _last_sweep[0] >= 1:
        _last_sweep[0] = time.monotonic()
        celery_app.send_task("django_capi.deliver_due")


def all_sent(ids: list[str]) -> bool:
    return Event.objects.filter(event_id__in=ids, status=EventStatus.SENT).count() == len(ids)


def test_committed_events_reach_the_api_through_a_worker(worker, api):
    ids = record(5)
    wait_for(lambda: all_sent(ids), what="5 events sent by the worker")
    assert sorted(received(PIXEL)) == sorted(ids)
    sent = Event.objects.get(event_id=ids[0])
    assert sent.attempts == 1
    assert sent.delivery_attempts.get().outcome == "success"


def test_a_rolled_back_transaction_sends_nothing(worker, api):
    def checkout_that_fails() -> None:
        with transaction.atomic():
            track(
                "Purchase",
                event_id="rolled-back",
                action_source="email",
                user_data={"em": "a@b.co"},
                custom_data={"value": 1, "currency": "EUR"},
            )
            raise RuntimeError("payment declined")

    with pytest.raises(RuntimeError):
        checkout_that_fails()
    barrier = record(1, prefix="after")
    wait_for(lambda: all_sent(barrier), tick=sweep, what="the event recorded afterwards")
    assert not [i for i in api.received_ids() if i == "rolled-back"]
    assert not Event.objects.filter(event_id="rolled-back").exists()


def test_transient_failures_are_retried_by_the_worker(worker, api):
    api.script(http_error(503), graph_error(2, status=503), slow(5))
    ids = record(3)
    wait_for(lambda: all_sent(ids), tick=sweep, what="events sent after transient failures")
    assert sorted(set(received())) == sorted(ids)
    assert max(Event.objects.values_list("attempts", flat=True)) >= 2


def test_throttling_backs_off_one_dataset_while_another_flows(worker, api):
    api.script(throttle(17), throttle(613), dataset_id=PIXEL)
    throttled = record(3)
    other = record(3, pixel=OTHER_PIXEL, prefix="o")
    wait_for(lambda: all_sent(other), tick=sweep, what="the other dataset's events")
    wait_for(lambda: all_sent(throttled), tick=sweep, what="the throttled dataset's events")
    assert DatasetState.objects.get(dataset_id=PIXEL).throttle_count == 0
    assert {e.attempts for e in Event.objects.filter(dataset_id=PIXEL)} == {1}


def test_a_token_error_pauses_the_dataset_and_it_resumes_by_itself(worker, api):
    api.script(graph_error(190, 463), dataset_id=PIXEL)
    ids = record(2)
    wait_for(
        lambda: (
            DatasetState.objects.filter(dataset_id=PIXEL, paused_at__isnull=False).exists()
            or all_sent(ids)
        ),
        what="the dataset to be paused",
    )
    # Pending, not lost; the probe after PAUSE_PROBE_INTERVAL finds the fixed token.
    wait_for(
        lambda: (
            all_sent(ids)
            and not DatasetState.objects.filter(dataset_id=PIXEL, paused_at__isnull=False).exists()
        ),
        tick=sweep,
        what="delivery to resume after the probe",
    )
    assert sorted(received()) == sorted(ids)


def test_a_poisoned_event_fails_alone(worker, api):
    bad = ids_of("e", 8)[4]
    api.poison_event_ids = {bad}
    ids = record(8)
    good = [i for i in ids if i != bad]
    wait_for(lambda: all_sent(good), tick=sweep, what="the 7 good events")
    wait_for(
        lambda: Event.objects.filter(event_id=bad, status=EventStatus.FAILED).exists(),
        what="the poisoned event to fail",
    )
    assert Event.objects.get(event_id=bad).last_error_code == 100
    assert bad not in received()


def test_a_worker_killed_mid_batch_loses_nothing(
    broker, overrides, worker, api, settings, django_db_blocker
):
    settings.CAPI = {**settings.CAPI, "QUEUE_ON_COMMIT": False}
    with django_db_blocker.unblock():
        doomed = CeleryWorker(overrides, name="doomed", concurrency=1, queue="doomed").start()
    try:
        api.script(slow(60))  # the first request hangs: the worker is mid-send when it dies
        ids = bulk_backlog(250)
        celery_app.send_task("django_capi.deliver_dataset", args=[PIXEL], queue="doomed")
        wait_for(
            lambda: Event.objects.filter(status=EventStatus.SENDING).exists(),
            what="the worker to claim a batch",
        )
        doomed.kill()
    finally:
        doomed.stop()
    stuck = Event.objects.filter(status=EventStatus.SENDING).count()
    assert stuck == OVERRIDES["BATCH_SIZE"]  # claimed, leased, and nobody is sending them
    # The main worker, driven by the periodic sweep, takes them over once the lease ends.
    wait_for(lambda: all_sent(ids), tick=sweep, what="another worker to deliver everything")
    counts = Counter(received())
    assert set(counts) == set(ids)
    duplicates = {event_id: n for event_id, n in counts.items() if n > 1}
    # The hung request may still be accepted after its worker died: a duplicate is always a
    # resend of the same event_id (Meta deduplicates it), never a new event, and bounded.
    assert sum(duplicates.values()) - len(duplicates) <= OVERRIDES["BATCH_SIZE"]
    assert Event.objects.filter(event_id__in=ids, attempts__gte=2).count() == stuck


def test_two_workers_drain_one_backlog_without_sending_anything_twice(
    broker, overrides, worker, api, django_db_blocker
):
    ids = bulk_backlog(3000)
    with django_db_blocker.unblock():
        second = CeleryWorker(overrides, name="second").start()
    try:
        for _ in range(8):
            celery_app.send_task("django_capi.deliver_dataset", args=[PIXEL])
        wait_for(lambda: all_sent(ids), tick=sweep, every=1, what="the backlog to drain")
    finally:
        second.stop()
    accepted = received()
    assert len(accepted) == len(ids)
    assert Counter(accepted).most_common(1)[0][1] == 1


def test_events_recorded_while_the_broker_is_down_are_delivered_when_it_is_back(
    worker, broker, api, caplog
):
    broker.stop()
    try:
        with caplog.at_level(logging.WARNING, logger="django_capi.delivery"):
            ids = record(4)  # orders keep working: nothing is raised into the request
        assert "could not queue delivery" in caplog.text
        assert Event.objects.filter(event_id__in=ids, status=EventStatus.PENDING).count() == 4
    finally:
        broker.start()
    wait_for(lambda: all_sent(ids), tick=sweep, every=1, what="delivery after the broker is back")
    assert sorted(received()) == sorted(ids)


def test_an_admin_managed_dataset_pauses_alone_and_a_token_pasted_in_the_admin_resumes_it(
    worker, api, admin_client
):
    organiser = "555000111222333"
    api.set_token(organiser, "EAAthe-token-meta-knows")
    dataset = Dataset(dataset_id=organiser, label="Acme Concerts")
    dataset.set_access_token("EAAa-revoked-token")
    dataset.save()
    paused = record(3, pixel=organiser, prefix="acme")
    flowing = record(3, pixel=OTHER_PIXEL, prefix="o")
    wait_for(lambda: all_sent(flowing), tick=sweep, what="the other dataset's events")
    wait_for(
        lambda: DatasetState.objects.filter(dataset_id=organiser, pause_code=190).exists(),
        tick=sweep,
        what="the organiser's dataset to pause",
    )
    assert Event.objects.filter(event_id__in=paused, status=EventStatus.PENDING).count() == 3

    response = admin_client.post(
        f"/admin/django_capi/dataset/{dataset.pk}/change/",
        {
            "dataset_id": organiser,
            "label": "Acme Concerts",
            "access_token": "EAAthe-token-meta-knows",
            "enabled": "on",
        },
    )
    assert response.status_code == 302
    wait_for(lambda: all_sent(paused), tick=sweep, what="delivery after the new token")
    assert sorted(received(organiser)) == sorted(paused)
    assert not DatasetState.objects.get(dataset_id=organiser).is_paused
