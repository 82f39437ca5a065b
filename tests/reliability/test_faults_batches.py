"""Large batches under fire: a poisoned event among 1,000, and a big drain through crashes.

A backlog is stored at once (as after a broker outage or a deploy), with payloads exactly
as ``track()`` stores them; real Celery workers drain it through a private Redis broker to
the fake Graph API while the test kills workers, restarts the broker and cuts their database
connections. See ``harness.py`` for the counts.
"""

from __future__ import annotations

import math
import os
import time
from collections import Counter
from functools import partial
from typing import Any

import pytest
from django.db import connection

from django_capi.models import Event, EventStatus
from tests.celery_app import app as celery_app
from tests.fake_graph_api import SUBCODE_INVALID
from tests.reliability.harness import (
    A,
    B,
    Sweeper,
    assert_sound,
    bulk_place,
    terminate_worker_connections,
    unfinished,
)
from tests.workers import wait_for

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(
        connection.vendor != "postgresql",
        reason="worker processes need a shared database: run with DATABASE_URL=postgres://...",
    ),
]

# Size of the drain that workers are killed during (CI default: 50,000 events).
EVENTS = int(os.environ.get("CAPI_RELIABILITY_EVENTS", "50000"))


def test_one_poisoned_event_in_a_full_batch_of_1000(scenario: Any, rel_api, rel_workers):
    api, prefix = rel_api, scenario.prefix
    overrides = scenario.overrides(BATCH_SIZE=1000)
    placed = bulk_place(prefix, A, 1000)
    bad = placed[637]
    api.poison_event_ids = {bad}  # Meta rejects this one event, and with it the whole batch
    rel_workers.start(overrides, concurrency=1)
    celery_app.send_task("django_capi.deliver_dataset", args=[A])
    wait_for(
        lambda: not unfinished(prefix),
        tick=scenario.sweep,
        timeout=180,
        what="the batch to be sent and the bad event isolated",
    )

    requests = api.ledger.snapshot()
    figures = scenario.figures(
        placed,
        notes=(
            f"Meta rejects the whole batch for one event; {len(requests)} requests "
            "(bisection) isolate it"
        ),
    )
    assert_sound(figures)
    first = requests[0]
    assert (first.n_events, first.status, first.error_code) == (1000, 400, 100)
    assert figures.delivered == 999
    assert figures.failed_visibly == 1
    assert figures.duplicates == 0  # bisection re-sends only rejected halves
    assert len(requests) <= 2 * math.ceil(math.log2(1000)) + 1
    assert api.ledger.copies_of([bad]) == {bad: 0}
    # The event row tells staff what Meta said about it.
    event = Event.objects.get(event_id=bad)
    assert event.status == EventStatus.FAILED
    assert (event.last_error_code, event.last_error_subcode) == (100, SUBCODE_INVALID)
    assert "Invalid Parameter" in event.last_error_message
    assert event.last_fbtrace_id
    assert event.delivery_attempts.filter(outcome="rejected").exists()


DISRUPTIONS = ("kill", "terminate", "kill", "broker", "kill", "terminate", "kill")


def test_crashes_during_a_large_drain_lose_nothing(scenario: Any, rel_api, rel_broker, rel_workers):
    api, prefix = rel_api, scenario.prefix
    batch, concurrency, lease = 500, 2, 6
    overrides = scenario.overrides(
        BATCH_SIZE=batch,
        LEASE_SECONDS=lease,
        READ_TIMEOUT=4.0,
        QUEUE_ON_COMMIT=False,
        TASK_TIME_BUDGET=5,
    )
    half = EVENTS // 2
    placed = bulk_place(prefix, A, half) + bulk_place(prefix, B, EVENTS - half)
    loaded = time.monotonic() - scenario.started
    # Every request stays in flight for a moment, so that disruptions land mid-send.
    api.latency = 0.25
    workers = [rel_workers.start(overrides, name="drain", concurrency=concurrency) for _ in "ab"]
    sweep = Sweeper(celery_app, every=2.0)
    for dataset_id in (A, B) * 2:
        celery_app.send_task("django_capi.deliver_dataset", args=[dataset_id])

    def reached(delivered: int) -> bool:
        return bool(api.ledger.distinct(prefix) >= delivered)

    def busy_or_done(requests: int) -> bool:
        return bool(api.in_flight() >= requests or api.ledger.distinct(prefix) == EVENTS)

    done: Counter[str] = Counter()
    terminated = 0
    step = EVENTS // (len(DISRUPTIONS) + 2)
    for number, disruption in enumerate(DISRUPTIONS, start=1):
        wait_for(
            partial(reached, number * step),
            tick=sweep,
            timeout=300,
            every=0.5,
            what=f"progress before disruption {number} ({disruption})",
        )
        # Mid-send: requests are in the fake API's hands. Each worker process sends one at
        # a time, so more than `concurrency` in flight means the victim has one too.
        needed = concurrency + 1 if disruption == "kill" else 1
        wait_for(
            partial(busy_or_done, needed),
            tick=sweep,
            timeout=120,
            every=0.02,
            what=f"{needed} requests in flight",
        )
        if api.ledger.distinct(prefix) == EVENTS:
            break  # a small drain (CAPI_RELIABILITY_EVENTS) ended before every disruption
        if disruption == "kill":
            victim = workers.pop(0)
            rel_workers.kill(victim)
            workers.append(rel_workers.start(overrides, name="drain", concurrency=concurrency))
        elif disruption == "terminate":
            terminated += terminate_worker_connections()
        else:
            rel_broker.stop()
            time.sleep(1)  # beat and the workers find no broker for a moment
            rel_broker.start()
        done[disruption] += 1

    wait_for(
        lambda: api.ledger.distinct(prefix) == EVENTS,
        tick=sweep,
        timeout=600,
        every=0.5,
        what="every event of the drain accepted",
    )
    wait_for(
        lambda: not Event.objects.filter(status__in=["pending", "sending"]).exists(),
        tick=sweep,
        timeout=120,
        what="every event marked sent",
    )

    figures = scenario.figures(
        placed,
        notes=(
            f"2 workers x {concurrency} processes, batches of {batch}, lease {lease} s; "
            f"{done['kill']} SIGKILLs, {done['terminate']} pg_terminate_backend "
            f"({terminated} sessions), {done['broker']} broker restart, each while requests "
            "were in flight; "
            f"backlog stored in {loaded:.0f} s"
        ),
    )
    assert_sound(figures)
    assert figures.delivered == figures.placed == EVENTS
    assert figures.failed_visibly == figures.expired_visibly == 0
    assert Event.objects.filter(status=EventStatus.SENT).count() == EVENTS
    if done["terminate"]:
        assert terminated >= 1  # the workers' sessions were there to be cut
    if done["kill"] or done["terminate"]:
        # A request cut off mid-send had reached Meta: its events were sent again.
        assert figures.duplicates >= 1
    # Duplicates are re-sends after a lease was taken over: at most the batches in flight
    # in the processes that died or lost their database session, plus one spare batch for
    # a lease that ran out on this shared machine.
    in_flight = done["kill"] * concurrency + done["terminate"] * 2 * concurrency + 1
    assert figures.duplicates <= in_flight * batch, figures.duplicates
