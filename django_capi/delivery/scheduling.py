"""Queueing delivery tasks: after commit, never in the caller's way."""

from __future__ import annotations

import logging
from functools import partial

from django.db import transaction

from django_capi import conf

logger = logging.getLogger("django_capi.delivery")


def queue_delivery(dataset_id: str) -> bool:
    """Queue a Celery task that delivers the dataset's due events. Never raises.

    If the broker cannot be reached the events stay pending in the database and the periodic
    ``django_capi.deliver_due`` task (or ``manage.py capi_deliver``) sends them later.
    """
    from django_capi.tasks import deliver_dataset

    try:
        deliver_dataset.apply_async((dataset_id,), retry=False)
    except Exception as exc:  # any broker failure: the event is safe in the database
        logger.warning(
            "django_capi: could not queue delivery for dataset %s (%s); the periodic sweep "
            "will send its events",
            dataset_id,
            type(exc).__name__,
        )
        return False
    return True


def schedule_after_commit(dataset_id: str, using: str) -> None:
    """Queue delivery of the dataset once the current transaction commits (now, outside one)."""
    if conf.get_setting("QUEUE_ON_COMMIT"):
        transaction.on_commit(partial(queue_delivery, dataset_id), using=using)
