"""``manage.py capi_retry``: requeue failed or expired events by filter."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import transaction

from django_capi import housekeeping
from django_capi.models import EventStatus


class _Rollback(Exception):
    pass


class Command(BaseCommand):
    help = (
        "Make failed or expired events due again (attempts restart at 0) and queue delivery "
        "after commit. Events already sent or being sent, invalid events and events older than "
        "Meta accepts are skipped. Filters combine; ages are measured from when an event was "
        "recorded."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--status",
            action="append",
            choices=[s.value for s in housekeeping.RETRYABLE_STATUSES],
            help="Status to retry (repeatable). Default: failed and expired.",
        )
        parser.add_argument("--dataset", action="append", default=[], help="Repeatable.")
        parser.add_argument("--event-name", action="append", default=[], help="Repeatable.")
        parser.add_argument(
            "--error-code",
            action="append",
            default=[],
            help="Meta's error code, or code/subcode, e.g. 2 or 100/2804016 (repeatable).",
        )
        parser.add_argument(
            "--older-than", metavar="AGE", help="Recorded more than AGE ago (30m, 2h, 3d, 1w)."
        )
        parser.add_argument(
            "--newer-than", metavar="AGE", help="Recorded less than AGE ago (30m, 2h, 3d, 1w)."
        )
        parser.add_argument(
            "--dry-run", action="store_true", help="Report what would happen; change nothing."
        )

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            selection = housekeeping.select_events(
                statuses=options["status"] or [EventStatus.FAILED, EventStatus.EXPIRED],
                datasets=options["dataset"],
                event_names=options["event_name"],
                error_codes=[housekeeping.parse_error_code(c) for c in options["error_code"]],
                older_than=_age(options["older_than"]),
                newer_than=_age(options["newer_than"]),
            )
        except ValueError as exc:
            raise CommandError(str(exc)) from exc
        result: housekeeping.RetryResult | None = None
        try:
            with transaction.atomic(using=selection.db):
                result = housekeeping.retry_events(selection)
                if options["dry_run"]:
                    raise _Rollback  # nothing changes and no delivery is queued
        except _Rollback:
            pass
        assert result is not None
        if options["dry_run"]:
            self.stdout.write("Dry run: nothing was changed. This is what a real run would do:")
        self.stdout.write(result.message())
        for dataset_id, count in result.datasets.items():
            self.stdout.write(f"  dataset {dataset_id}: {count}")
        if result.datasets and not options["dry_run"]:
            self.stdout.write("Delivery is queued for: " + ", ".join(result.datasets))


def _age(text: str | None) -> Any:
    return housekeeping.parse_duration(text) if text else None
