"""Real processes for the fault suite: a private Redis broker, the fake Graph API with a
ledger of what it accepted, and Celery worker processes started (and SIGKILLed) per test.

No fixture here is autouse: the other reliability suites in this directory are unaffected.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.celery_app import app as celery_app
from tests.reliability.harness import (
    TOKENS,
    CountingGraphAPI,
    Figures,
    Sweeper,
    capi_overrides,
    count,
    record_figures,
)
from tests.workers import CeleryWorker, RedisServer


@pytest.fixture(scope="module")
def rel_broker() -> Iterator[RedisServer]:
    """The tests' own redis-server (on ``CELERY_BROKER_URL``), which a test may restart."""
    server = RedisServer().start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def rel_api() -> Iterator[CountingGraphAPI]:
    """The fake Graph API on loopback, knowing the four datasets' tokens."""
    server = CountingGraphAPI(tokens=TOKENS)
    server.start()
    try:
        yield server
    finally:
        server.stop()


class Workers:
    """Celery worker processes of one test; all stopped when it ends."""

    def __init__(self) -> None:
        self.running: list[CeleryWorker] = []
        self.started = 0
        self.logs: list[str] = []

    def start(
        self, overrides: dict[str, Any], *, name: str = "w", concurrency: int = 2
    ) -> CeleryWorker:
        self.started += 1
        worker = CeleryWorker(overrides, name=f"{name}{self.started}", concurrency=concurrency)
        self.logs.append(str(worker.log))
        self.running.append(worker)
        return worker.start()

    def kill(self, worker: CeleryWorker) -> None:
        """SIGKILL, as the OOM killer or a lost machine would."""
        worker.kill()
        self.running.remove(worker)

    def stop(self, worker: CeleryWorker) -> None:
        worker.stop()
        self.running.remove(worker)

    def stop_all(self) -> None:
        for worker in list(self.running):
            with contextlib.suppress(Exception):
                self.stop(worker)

    def output(self) -> str:
        return "".join(Path(path).read_text(errors="replace") for path in self.logs)


@pytest.fixture
def rel_workers(rel_broker: RedisServer) -> Iterator[Workers]:
    """Start workers with ``rel_workers.start(overrides)``. Before and after the test the
    queue is emptied, so no task of one test runs in the next."""
    if rel_broker.process is None:  # a test that failed while the broker was down
        rel_broker.start()
    with contextlib.suppress(Exception):
        celery_app.control.purge()
    workers = Workers()
    yield workers
    workers.stop_all()
    with contextlib.suppress(Exception):
        celery_app.control.purge()


class Scenario:
    """One fault scenario: its event-id prefix, settings, sweep and figures.

    Every test's event ids start with its own name, so a late re-send from an earlier test
    cannot be counted as this test's traffic.
    """

    def __init__(self, name: str, api: CountingGraphAPI, settings: Any) -> None:
        self.name = name
        self.prefix = f"{name}-"
        self.api = api
        self.settings = settings
        self.sweep = Sweeper(celery_app)
        self.started = time.monotonic()

    def overrides(self, **changes: Any) -> dict[str, Any]:
        """CAPI settings for the workers; this process records events with the same ones."""
        overrides = capi_overrides(self.api.url, **changes)
        self.settings.CAPI = {**self.settings.CAPI, **overrides}
        return overrides

    def figures(self, placed: Iterable[str], notes: str = "") -> Figures:
        """Count, write the report row (before any assertion can fail), return the counts."""
        figures = count(self.name, self.api, self.prefix, placed, self.started, notes)
        record_figures(figures)
        return figures


@pytest.fixture
def scenario(
    request: Any, settings: Any, rel_api: CountingGraphAPI, rel_workers: Workers
) -> Iterator[Scenario]:
    rel_api.start()
    rel_api.reset()
    name = request.node.name.removeprefix("test_")
    yield Scenario(name, rel_api, settings)
    rel_workers.stop_all()
    rel_api.start()  # a test that failed while the API was "down"
