"""The network between django_capi and Meta fails: outages, slow answers, cut connections.

Events are recorded by this process through ``track()``, as a host's checkout would; real
Celery worker processes deliver them through a private Redis broker to the fake Graph API
on loopback. Nothing in the delivery path is mocked. Each test counts what it placed, what
the API accepted, and what is lost (see ``harness.py``); figures go to
``$CAPI_RELIABILITY_REPORT`` when set.
"""

from __future__ import annotations

from typing import Any

import pytest
from django.db import connection

from django_capi.delivery.engine import EXPIRY_MARGIN
from django_capi.models import DeliveryAttempt, Event, EventStatus
from tests.fake_graph_api import (
    SUBCODE_TOO_OLD,
    drop,
    graph_error,
    http_error,
    reset_mid_response,
    slow,
)
from tests.reliability.harness import A, B, aged, assert_sound, place, unfinished
from tests.workers import wait_for

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(
        connection.vendor != "postgresql",
        reason="worker processes need a shared database: run with DATABASE_URL=postgres://...",
    ),
]

# How many times each event recorded during the outage is refused before the API comes back.
# With production delays (RETRY_BASE_DELAY 15 s, doubling) that is an 8-16 minute outage.
REFUSALS = 7


def test_graph_api_down_for_a_long_stretch_then_back(scenario: Any, rel_api, rel_workers):
    api, prefix = rel_api, scenario.prefix
    # Enough attempts for the compressed outage below (production: 15 attempts, ~2-4 h).
    overrides = scenario.overrides(MAX_ATTEMPTS=40)
    rel_workers.start(overrides)

    before = place(prefix, A, 20) + place(prefix, B, 20)
    # Delivered and recorded as sent: no answer is still on its way when the API goes down.
    wait_for(
        lambda: api.ledger.distinct(prefix) == len(before) and not unfinished(prefix),
        tick=scenario.sweep,
        what="the events recorded before the outage",
    )

    api.stop()  # the port is closed: every connection is refused
    during = place(prefix, A, 60, start=20) + place(prefix, B, 60, start=20)
    wait_for(
        lambda: not Event.objects.filter(event_id__in=during, attempts__lt=REFUSALS).exists(),
        tick=scenario.sweep,
        timeout=240,
        what=f"every event to be refused {REFUSALS} times",
    )
    # Visible, waiting, not failed: each row says why it is not sent yet.
    waiting = Event.objects.filter(event_id__in=during)
    assert set(waiting.values_list("status", flat=True)) <= {"pending", "sending"}
    reasons = set(waiting.values_list("last_error_message", flat=True))
    assert reasons and all("refused" in reason.lower() for reason in reasons), reasons

    # The API answers again, but with 503s (an HTML page, then Meta's transient codes) first.
    outage_503 = [http_error(503)] * 6 + [graph_error(2, status=503), graph_error(1, status=500)]
    api.script(*outage_503)
    api.start()
    after = place(prefix, A, 20, start=80)
    placed = before + during + after
    wait_for(
        lambda: api.ledger.distinct(prefix) == len(placed) and not unfinished(prefix),
        tick=scenario.sweep,
        timeout=240,
        what="every event delivered after the outage",
    )

    errors = [r for r in api.ledger.snapshot() if r.status and r.status >= 500]
    attempts = max(Event.objects.filter(event_id__in=during).values_list("attempts", flat=True))
    figures = scenario.figures(
        placed,
        notes=(
            f"connection refused until each event was retried {REFUSALS}x, then "
            f"{len(errors)} HTTP 5xx answers; up to {attempts} attempts per event"
        ),
    )
    assert_sound(figures)
    assert len(errors) == len(outage_503)
    assert figures.delivered == figures.placed
    assert figures.failed_visibly == figures.expired_visibly == 0
    # Nothing the API refused or answered 5xx to was accepted: no reason for any duplicate.
    assert figures.duplicates == 0, figures.duplicated
    assert Event.objects.filter(event_id__in=placed, status=EventStatus.SENT).count() == len(placed)


def test_slow_answers_and_connections_reset_mid_response(scenario: Any, rel_api, rel_workers):
    api, prefix = rel_api, scenario.prefix
    overrides = scenario.overrides(READ_TIMEOUT=1.0)
    # The answer comes after the read timeout, or the connection dies halfway through the
    # answer: the fake processed (accepted) the events, the worker cannot know it.
    faults = [
        slow(3),
        reset_mid_response(),
        slow(3),
        reset_mid_response(),
        drop(),
        slow(4),
        reset_mid_response(),
        reset_mid_response(),
        slow(3),
    ]
    api.script(*faults)
    rel_workers.start(overrides)

    def faulted() -> list[Any]:
        return [r for r in api.ledger.snapshot() if r.fault]

    # Orders keep coming, in rounds, until every fault has hit a request.
    placed: list[str] = []
    for round_ in range(100):
        if len(faulted()) == len(faults):
            break
        placed += place(prefix, A, 30, start=30 * round_) + place(prefix, B, 30, start=30 * round_)
        wait_for(
            lambda: len(faulted()) == len(faults) or not unfinished(prefix),
            tick=scenario.sweep,
            timeout=120,
            what="this round's events delivered or the faults used up",
        )
    wait_for(
        lambda: api.ledger.distinct(prefix) == len(placed) and not unfinished(prefix),
        tick=scenario.sweep,
        timeout=240,
        what="every event delivered despite slow answers and resets",
    )
    unanswered = api.ledger.unanswered_accepted(prefix)
    figures = scenario.figures(
        placed,
        notes=(
            f"{len(faulted())} faulted requests (read timeout 1 s, answers after 3-4 s, resets, "
            f"a drop); {len(unanswered)} events accepted in answers the worker never read"
        ),
    )
    assert_sound(figures)
    assert len(faulted()) == len(faults)  # every fault happened
    assert figures.delivered == figures.placed
    assert figures.failed_visibly == figures.expired_visibly == 0
    # Duplicates exist (a timed-out request still reached Meta) and every one is a re-send
    # of an event whose earlier answer was lost, with the same event_id and payload.
    assert unanswered
    assert figures.duplicates >= 1
    assert set(figures.duplicated) <= set(unanswered)
    assert figures.duplicates <= len(unanswered)
    # The worker saw each fault as a transient failure and logged it.
    transient = DeliveryAttempt.objects.filter(outcome="transient").count()
    assert transient >= len(faults)


def test_events_aging_past_seven_days_while_the_api_is_down(scenario: Any, rel_api, rel_workers):
    api, prefix = rel_api, scenario.prefix
    overrides = scenario.overrides(MAX_ATTEMPTS=40)
    # The fake's clock runs ahead by django_capi's safety margin: an event django_capi has
    # not expired in time is one the fake rejects, with its whole batch (code 100/2804003).
    api.clock_offset = EXPIRY_MARGIN.total_seconds()
    api.stop()
    rel_workers.start(overrides)

    # Events recorded days ago that crossed Meta's 7-day limit during the outage, mixed with
    # fresh ones of the same datasets (in the same batches while they are retried).
    old = place(f"{prefix}old-", A, 40, event_time=aged(10)) + place(
        f"{prefix}old-", B, 10, event_time=aged(10)
    )
    fresh = place(prefix, A, 60) + place(prefix, B, 30)
    wait_for(
        lambda: (
            Event.objects.filter(event_id__in=old, status=EventStatus.EXPIRED).count() == len(old)
        ),
        tick=scenario.sweep,
        timeout=180,
        what="the old events to expire",
    )
    refused = Event.objects.filter(event_id__in=old, attempts__gte=1).count()
    assert set(Event.objects.filter(event_id__in=fresh).values_list("status", flat=True)) <= {
        "pending",
        "sending",
    }

    api.start()
    fresh += place(prefix, A, 30, start=60)
    placed = old + fresh
    wait_for(
        lambda: api.ledger.distinct(prefix) == len(fresh) and not unfinished(prefix),
        tick=scenario.sweep,
        timeout=180,
        what="the fresh events to be delivered",
    )
    figures = scenario.figures(
        placed,
        notes=(
            f"{len(old)} events crossed the 7-day line while the API was down "
            f"({refused} had been tried and refused before); {len(fresh)} fresh ones"
        ),
    )
    assert_sound(figures)
    assert figures.delivered == len(fresh)
    assert figures.expired_visibly == len(old)
    assert figures.failed_visibly == 0
    assert figures.duplicates == 0
    for message in Event.objects.filter(event_id__in=old).values_list(
        "last_error_message", flat=True
    ):
        assert "older than Meta accepts (7 days)" in message
    # No batch was rejected for a stale event: every request that reached the API succeeded.
    requests = api.ledger.snapshot()
    assert requests
    assert not [r for r in requests if r.error_subcode == SUBCODE_TOO_OLD]
    assert {r.status for r in requests} == {200}
