"""``manage.py capi_purge``: delete finished events older than the retention, in batches."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from django_capi import housekeeping


class Command(BaseCommand):
    help = (
        "Delete sent, failed, expired and discarded events recorded more than RETENTION_DAYS "
        "ago, in batches of PURGE_BATCH_SIZE, with their delivery-attempt links, then delivery "
        "attempts left without events. Pending and sending events are never deleted."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--days",
            type=int,
            help="Retention in days (default: CAPI RETENTION_DAYS).",
        )
        parser.add_argument("--batch-size", type=int, help="Default CAPI PURGE_BATCH_SIZE.")
        parser.add_argument(
            "--dry-run", action="store_true", help="Count what would be deleted; delete nothing."
        )

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            result = housekeeping.purge_events(
                days=options["days"], batch_size=options["batch_size"], dry_run=options["dry_run"]
            )
        except ValueError as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(result.message())
