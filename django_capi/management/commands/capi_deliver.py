"""``manage.py capi_deliver``: run delivery synchronously (cron, operations, debugging)."""

from __future__ import annotations

import time
from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from django_capi.delivery import engine


class Command(BaseCommand):
    help = (
        "Send due Conversions API events now, with the same code the Celery workers run: "
        "expired leases are reclaimed, stale events expired, each dataset delivered in batches."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--dataset", action="append", help="Only this dataset (repeatable).")
        parser.add_argument(
            "--max-batches", type=int, default=None, help="Stop each dataset after N batches."
        )
        parser.add_argument(
            "--loop",
            type=float,
            metavar="SECONDS",
            default=None,
            help="Keep running, sweeping again every SECONDS (for a cron-less host).",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        while True:
            self.sweep(options["dataset"], options["max_batches"])
            if options["loop"] is None:
                return
            time.sleep(options["loop"])

    def sweep(self, only: list[str] | None, max_batches: int | None) -> None:
        engine.reclaim_expired_leases()
        engine.expire_stale_events()
        datasets = only or engine.due_datasets()
        if not datasets:
            self.stdout.write("No events are due.")
        for dataset_id in datasets:
            report = engine.deliver_dataset(dataset_id, max_batches=max_batches)
            state = report.state
            self.stdout.write(
                f"dataset {dataset_id}: {report.sent} sent, {report.failed} failed, "
                f"{report.retried} to retry, {report.expired} expired, "
                f"{report.requests} requests ({state})"
            )
