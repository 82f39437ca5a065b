"""Celery tasks that deliver stored events.

- ``django_capi.deliver_dataset(dataset_id)``: queued after each commit that recorded events;
  sends that dataset's due events for up to ``TASK_TIME_BUDGET`` seconds, then hands over to a
  fresh task if more are due.
- ``django_capi.deliver_due()``: the periodic sweep (add it to your beat schedule). It gives
  expired leases back, expires stale events and queues ``deliver_dataset`` for every dataset
  with due events, so nothing depends on the immediate path having worked.
- ``django_capi.purge_old_events()``: periodic retention (e.g. daily in the beat schedule):
  deletes finished events older than ``RETENTION_DAYS`` with their attempt logs, in batches.
- ``django_capi.send_test_event(dataset_id)``: one test event with the dataset's test event
  code (queued by the admin's "Send a test event"); Meta's answer goes to the attempt log.
"""

from __future__ import annotations

import logging

from celery import shared_task

from django_capi import conf, housekeeping
from django_capi.delivery import engine

logger = logging.getLogger("django_capi")


@shared_task(name="django_capi.deliver_dataset", ignore_result=True)
def deliver_dataset(dataset_id: str) -> dict[str, int | bool]:
    """Deliver one dataset's due events; re-queue itself while a backlog remains."""
    report = engine.deliver_dataset(
        dataset_id, time_budget=float(conf.get_setting("TASK_TIME_BUDGET"))
    )
    if not report.stopped and report.requests and engine.has_backlog(dataset_id, batches=0):
        deliver_dataset.apply_async((dataset_id,))
    return {
        "requests": report.requests,
        "sent": report.sent,
        "failed": report.failed,
        "retried": report.retried,
        "throttled": report.throttled,
        "paused": report.paused,
    }


@shared_task(name="django_capi.deliver_due", ignore_result=True)
def deliver_due() -> dict[str, int]:
    """Periodic sweep: recover what the immediate path missed and queue delivery for it."""
    reclaimed = engine.reclaim_expired_leases()
    expired = engine.expire_stale_events()
    parallel = max(1, int(conf.get_setting("MAX_PARALLEL_TASKS")))
    queued = 0
    for dataset_id in engine.due_datasets():
        tasks = parallel if engine.has_backlog(dataset_id) else 1
        for _ in range(tasks):
            deliver_dataset.apply_async((dataset_id,))
            queued += 1
    return {"reclaimed": reclaimed, "expired": expired, "queued": queued}


@shared_task(name="django_capi.purge_old_events", ignore_result=True)
def purge_old_events() -> dict[str, int]:
    """Delete sent, failed, expired and discarded events older than ``RETENTION_DAYS``."""
    result = housekeeping.purge_events()
    return {"events": result.events, "attempts": result.attempts, "batches": result.batches}


@shared_task(name="django_capi.send_test_event", ignore_result=True)
def send_test_event(dataset_id: str) -> dict[str, str | int | None]:
    """Send one test event to a dataset; the outcome is appended to the attempt log."""
    from django_capi.datasets.sample_event import TestEventError
    from django_capi.datasets.sample_event import send_test_event as send

    try:
        _dataset, payload, result = send(dataset_id)
    except TestEventError as exc:
        logger.error("django_capi: test event for dataset %s not sent: %s", dataset_id, exc)
        return {"outcome": "not sent", "reason": str(exc)}
    return {"outcome": result.outcome.value, "event_id": payload["event_id"]}
