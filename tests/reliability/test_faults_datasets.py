"""Meta pushes back on one dataset (throttling, a revoked token); the others keep flowing.

Four datasets, each with its own token (``harness.DATASETS``). Events are recorded through
``track()`` in rounds, like orders arriving during the incident; real Celery workers deliver
them through a private Redis broker to the fake Graph API. See ``harness.py`` for the counts.
"""

from __future__ import annotations

from functools import partial
from typing import Any

import pytest
from django.db import connection

from django_capi.models import DatasetState, DeliveryAttempt, Event, EventStatus
from tests.fake_graph_api import throttle
from tests.reliability.harness import A, B, C, D, assert_sound, place, unfinished
from tests.workers import wait_for

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(
        connection.vendor != "postgresql",
        reason="worker processes need a shared database: run with DATABASE_URL=postgres://...",
    ),
]

THROTTLE_CODES = (4, 17, 613)
ROUND = 5  # events per dataset per round of orders


def _placer(prefix: str) -> Any:
    """Records one round of orders for the given datasets; returns their event ids."""
    rounds: dict[str, int] = {}

    def place_round(*datasets: str) -> list[str]:
        ids: list[str] = []
        for dataset_id in datasets:
            start = rounds.get(dataset_id, 0)
            ids += place(prefix, dataset_id, ROUND, start=start, per_transaction=ROUND)
            rounds[dataset_id] = start + ROUND
        return ids

    return place_round


def _delivered(api: Any, ids: list[str]) -> bool:
    copies = api.ledger.copies_of(ids)
    return all(copies.values())


def test_throttling_storms_back_off_each_dataset_alone(scenario: Any, rel_api, rel_workers):
    api, prefix = rel_api, scenario.prefix
    overrides = scenario.overrides(THROTTLE_BASE_DELAY=0.3, THROTTLE_MAX_DELAY=1.2)
    # A long storm on A cycling through Meta's throttling codes, a short one on B; C and D
    # are never throttled.
    storm = {A: [throttle(code) for code in THROTTLE_CODES] * 4, B: [throttle(613), throttle(4)]}
    for dataset_id, faults in storm.items():
        api.script(*faults, dataset_id=dataset_id)
    rel_workers.start(overrides)

    def throttled(dataset_id: str) -> list[Any]:
        return [
            r
            for r in api.ledger.snapshot()
            if r.dataset_id == dataset_id and r.error_code in THROTTLE_CODES
        ]

    place_round = _placer(prefix)
    placed: list[str] = []
    for _ in range(400):
        if all(len(throttled(ds)) == len(faults) for ds, faults in storm.items()):
            break
        batch = place_round(A, B, C, D)
        placed += batch
        flowing = [i for i in batch if i.startswith((f"{prefix}{C[0]}", f"{prefix}{D[0]}"))]
        # C and D do not wait for A's storm to end: this round of theirs gets through now.
        wait_for(
            partial(_delivered, api, flowing),
            tick=scenario.sweep,
            timeout=60,
            what="this round of the unthrottled datasets",
        )
    else:
        pytest.fail("the throttling storms were not all answered")
    placed += place_round(A, B, C, D)
    wait_for(
        lambda: api.ledger.distinct(prefix) == len(placed) and not unfinished(prefix),
        tick=scenario.sweep,
        timeout=180,
        what="every event delivered after the storms",
    )

    storm_a = throttled(A)
    start, end = storm_a[0].at, storm_a[-1].at
    during = {ds: api.ledger.accepted_between(ds, start, end) for ds in (C, D)}
    figures = scenario.figures(
        placed,
        notes=(
            f"{len(storm_a)} throttling answers (codes 4/17/613) to one dataset over "
            f"{end - start:.0f} s, {len(throttled(B))} to another; meanwhile the 2 others "
            f"delivered {sum(during.values())} events"
        ),
    )
    assert_sound(figures)
    assert figures.delivered == figures.placed
    assert figures.duplicates == 0
    assert figures.failed_visibly == figures.expired_visibly == 0
    # The unthrottled datasets kept flowing during A's storm.
    assert during[C] > 0, during
    assert during[D] > 0, during
    # Each dataset backed off for its own throttling only, as the attempt log shows.
    by_dataset = {
        ds: DeliveryAttempt.objects.filter(dataset_id=ds, outcome="throttled").count()
        for ds in (A, B, C, D)
    }
    assert by_dataset == {A: len(storm[A]), B: len(storm[B]), C: 0, D: 0}
    # Throttling never counts against an event, and every back-off was lifted.
    assert set(Event.objects.filter(event_id__in=placed).values_list("attempts", flat=True)) == {1}
    for state in DatasetState.objects.filter(dataset_id__in=[A, B]):
        assert state.throttle_count == 0
        assert state.throttled_until is None


def test_a_revoked_token_pauses_one_dataset_until_it_is_replaced(
    scenario: Any, rel_api, rel_workers
):
    api, prefix = rel_api, scenario.prefix
    # No probes during the test: the pause can only end by replacing the token.
    overrides = scenario.overrides(PAUSE_PROBE_INTERVAL=3600)
    concurrency = 2
    worker = rel_workers.start(overrides, concurrency=concurrency)
    place_round = _placer(prefix)

    placed = place_round(A, B, C)
    wait_for(lambda: _delivered(api, placed), tick=scenario.sweep, what="the first orders")

    new_token = "EAArel-token-b-rotated"
    api.set_token(B, new_token)  # Meta revoked B's token: 190 from now on

    def paused() -> bool:
        return DatasetState.objects.filter(dataset_id=B, paused_at__isnull=False).exists()

    during: list[str] = []
    rounds_paused = 0
    for _ in range(200):
        batch = place_round(A, B, C)
        during += batch
        others = [i for i in batch if not i.startswith(f"{prefix}{B[0]}")]
        wait_for(
            partial(_delivered, api, others),
            tick=scenario.sweep,
            timeout=60,
            what="this round of the datasets whose token is fine",
        )
        rounds_paused += paused()
        if rounds_paused >= 4:
            break
    else:
        pytest.fail("the dataset with the revoked token was never paused")
    state = DatasetState.objects.get(dataset_id=B)
    assert state.pause_code == 190
    assert state.pause_reason
    waiting = Event.objects.filter(event_id__in=during, dataset_id=B)
    # Pending, not failed, and the refused attempts do not count against them.
    assert set(waiting.values_list("status", flat=True)) == {EventStatus.PENDING}
    assert set(waiting.values_list("attempts", flat=True)) == {0}
    refusals = [r for r in api.ledger.snapshot() if r.dataset_id == B and r.error_code == 190]
    # Paused means paused: no more than one request per task that was already running.
    assert 1 <= len(refusals) <= concurrency

    # The operator puts the new token into the settings and restarts the workers. Accepted is
    # not yet recorded: stopping a worker between the two would re-send its batch later.
    flowing = [i for i in placed + during if not i.startswith(f"{prefix}{B[0]}")]
    wait_for(
        lambda: (
            Event.objects.filter(event_id__in=flowing, status=EventStatus.SENT).count()
            == len(flowing)
        ),
        tick=scenario.sweep,
        timeout=60,
        what="the delivered rounds to be recorded as sent",
    )
    rel_workers.stop(worker)
    datasets = {**overrides["DATASETS"], B: {"ACCESS_TOKEN": new_token}}
    fixed = rel_workers.start(scenario.overrides(PAUSE_PROBE_INTERVAL=3600, DATASETS=datasets))
    placed += during + place_round(A, B, C)
    wait_for(
        lambda: api.ledger.distinct(prefix) == len(placed) and not unfinished(prefix),
        tick=scenario.sweep,
        timeout=180,
        what="the paused dataset's events after the token was replaced",
    )

    flowed = sum(1 for i in during if not i.startswith(f"{prefix}{B[0]}"))
    figures = scenario.figures(
        placed,
        notes=(
            f"one dataset's token revoked (code 190: {len(refusals)} request(s) refused, "
            f"then paused); {flowed} events of 2 other datasets delivered meanwhile; "
            f"{waiting.count()} waited and were sent once the new token was deployed"
        ),
    )
    assert_sound(figures)
    assert figures.delivered == figures.placed
    assert figures.duplicates == 0
    assert figures.failed_visibly == figures.expired_visibly == 0
    assert not paused()
    assert "resumed (its access token was replaced)" in fixed.output()
