"""Operations shared by the admin, the management commands and the Celery tasks.

- :func:`retry_events` / :func:`discard_events`: staff actions on a set of events. Retrying
  never sends: it makes events due and queues a delivery task once the transaction commits.
- :func:`select_events`: the filters of ``capi_retry`` (dataset, event name, error code, age).
- :func:`purge_events`: delete finished events older than the retention, in batches, with
  their attempt logs.
- :func:`status_summary`: the numbers of the dashboard and of ``capi_status``, and whether
  delivery is healthy.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import partial
from typing import Any, Final

from django.db import connections, router, transaction
from django.db.models import Count, Q, QuerySet
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from django_capi import conf
from django_capi.dashboard import queries
from django_capi.dashboard.advice import lag_advice, pause_advice, throttle_advice
from django_capi.delivery.engine import EXPIRY_MARGIN
from django_capi.delivery.scheduling import queue_delivery
from django_capi.models import (
    ActionSource,
    DatasetState,
    DeliveryAttempt,
    Event,
    EventStatus,
)
from django_capi.validation import event_age_limit

__all__ = [
    "DISCARDABLE_STATUSES",
    "EXIT_LAGGING",
    "EXIT_OK",
    "EXIT_PAUSED",
    "FINISHED_STATUSES",
    "RETRYABLE_STATUSES",
    "DatasetHealth",
    "DiscardResult",
    "PurgeResult",
    "RetryResult",
    "StatusSummary",
    "discard_events",
    "parse_duration",
    "parse_error_code",
    "purge_events",
    "retry_events",
    "select_events",
    "status_summary",
]

logger = logging.getLogger("django_capi.housekeeping")

RETRYABLE_STATUSES: Final = (
    EventStatus.PENDING,
    EventStatus.FAILED,
    EventStatus.EXPIRED,
    EventStatus.DISCARDED,
)
DISCARDABLE_STATUSES: Final = (EventStatus.PENDING, EventStatus.FAILED, EventStatus.EXPIRED)
FINISHED_STATUSES: Final = (
    EventStatus.SENT,
    EventStatus.FAILED,
    EventStatus.EXPIRED,
    EventStatus.DISCARDED,
)
"""What the purge may delete; pending and sending events are never purged."""

EXIT_OK: Final = 0
EXIT_LAGGING: Final = 2
"""Bit set in ``capi_status``'s exit code: due events have waited too long."""
EXIT_PAUSED: Final = 4
"""Bit set in ``capi_status``'s exit code: a dataset is paused (token or permission)."""

# An attempt row is written a moment before its links to events: never treat a fresh one
# as an orphan.
ORPHAN_GRACE: Final = timedelta(hours=1)


def _db() -> str:
    return router.db_for_write(Event)


def _stale(now: datetime) -> Q:
    """Events older than Meta accepts (the delivery engine's expiry rule)."""
    store = ActionSource.PHYSICAL_STORE
    return (
        ~Q(action_source=store) & Q(event_time__lt=now - event_age_limit("website") + EXPIRY_MARGIN)
    ) | (Q(action_source=store) & Q(event_time__lt=now - event_age_limit(store) + EXPIRY_MARGIN))


def _clause(count: int, singular: str, plural: str) -> str:
    return ngettext(singular, plural, count) % {"count": count}


_SKIPPED_SENT = ("%(count)d already sent was skipped", "%(count)d already sent were skipped")
_SKIPPED_SENDING = (
    "%(count)d being sent right now was skipped",
    "%(count)d being sent right now were skipped",
)


def _sentence(done: str, *skipped: tuple[int, str, str]) -> str:
    """What was done, then each non-zero count of what was skipped: one sentence."""
    parts = [done] + [_clause(count, one, many) for count, one, many in skipped if count]
    return "; ".join(parts) + "."


# --- retry and discard --------------------------------------------------------------------


@dataclass
class RetryResult:
    """What :func:`retry_events` did."""

    queued: int = 0
    datasets: dict[str, int] = field(default_factory=dict)
    """Events made due, per dataset (a delivery task is queued for each after commit)."""
    already_sent: int = 0
    sending: int = 0
    too_old: int = 0
    invalid: int = 0

    @property
    def skipped(self) -> int:
        """Selected events that were left as they were."""
        return self.already_sent + self.sending + self.too_old + self.invalid

    def message(self) -> str:
        """One sentence for staff, e.g. "3 events queued for retry; 1 already sent was skipped"."""
        queued = _clause(
            self.queued, "%(count)d event queued for retry", "%(count)d events queued for retry"
        )
        return _sentence(
            queued,
            (self.already_sent, *_SKIPPED_SENT),
            (self.sending, *_SKIPPED_SENDING),
            (
                self.too_old,
                "%(count)d too old for Meta to accept was skipped",
                "%(count)d too old for Meta to accept were skipped",
            ),
            (
                self.invalid,
                "%(count)d invalid event was skipped (fix the data and record it again)",
                "%(count)d invalid events were skipped (fix the data and record them again)",
            ),
        )


def retry_events(
    queryset: QuerySet[Event], *, now: datetime | None = None, reset_attempts: bool = True
) -> RetryResult:
    """Make the selected pending, failed, expired or discarded events due now.

    Skips events already sent or being sent, events older than Meta accepts (they would only
    expire again) and invalid events (Meta would reject them). ``attempts`` restarts at 0
    (unless ``reset_attempts`` is False) so that the retried events get the full set of
    retries; the attempt log keeps the history, and the last error stays until the next
    attempt replaces it. Nothing is sent here: a delivery task per dataset is queued once
    the transaction commits (immediately when there is none).
    """
    now = now or timezone.now()
    db = queryset.db
    retryable = Q(status__in=RETRYABLE_STATUSES)
    valid = Q(validation_errors=[])
    stale = _stale(now)
    with transaction.atomic(using=db):
        selection = queryset.order_by()
        stats = selection.aggregate(
            already_sent=Count("pk", filter=Q(status=EventStatus.SENT)),
            sending=Count("pk", filter=Q(status=EventStatus.SENDING)),
            invalid=Count("pk", filter=retryable & ~valid),
            too_old=Count("pk", filter=retryable & valid & stale),
        )
        eligible = selection.filter(retryable & valid).exclude(stale)
        per_dataset = {
            row["dataset_id"]: row["n"]
            for row in eligible.values("dataset_id").annotate(n=Count("pk")).order_by()
        }
        changes: dict[str, Any] = {
            "status": EventStatus.PENDING,
            "next_attempt_at": now,
            "claim_token": "",
            "lease_expires_at": None,
            "updated_at": now,
        }
        if reset_attempts:
            changes["attempts"] = 0
        queued = eligible.update(**changes) if per_dataset else 0
        for dataset_id in sorted(per_dataset):
            transaction.on_commit(partial(queue_delivery, dataset_id), using=db)
    result = RetryResult(
        queued=queued,
        datasets=dict(sorted(per_dataset.items())),
        already_sent=stats["already_sent"],
        sending=stats["sending"],
        too_old=stats["too_old"],
        invalid=stats["invalid"],
    )
    logger.info("django_capi: retry: %s", result.message())
    return result


@dataclass
class DiscardResult:
    """What :func:`discard_events` did."""

    discarded: int = 0
    already_sent: int = 0
    sending: int = 0
    already_discarded: int = 0

    def message(self) -> str:
        """One sentence for staff."""
        discarded = _clause(
            self.discarded, "%(count)d event discarded", "%(count)d events discarded"
        )
        return _sentence(
            discarded,
            (self.already_sent, *_SKIPPED_SENT),
            (self.sending, *_SKIPPED_SENDING),
            (
                self.already_discarded,
                "%(count)d already discarded was skipped",
                "%(count)d already discarded were skipped",
            ),
        )


def discard_events(queryset: QuerySet[Event], *, now: datetime | None = None) -> DiscardResult:
    """Mark the selected pending, failed or expired events as discarded: never sent.

    Events already sent, being sent (a worker holds them) or discarded are left alone.
    """
    now = now or timezone.now()
    with transaction.atomic(using=queryset.db):
        selection = queryset.order_by()
        stats = selection.aggregate(
            already_sent=Count("pk", filter=Q(status=EventStatus.SENT)),
            sending=Count("pk", filter=Q(status=EventStatus.SENDING)),
            already_discarded=Count("pk", filter=Q(status=EventStatus.DISCARDED)),
        )
        discarded = selection.filter(status__in=DISCARDABLE_STATUSES).update(
            status=EventStatus.DISCARDED, claim_token="", lease_expires_at=None, updated_at=now
        )
    result = DiscardResult(discarded=discarded, **stats)
    logger.info("django_capi: discard: %s", result.message())
    return result


_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw]?)\s*$", re.IGNORECASE)
_UNITS: Final = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_duration(text: str) -> timedelta:
    """``"90"`` or ``"90s"``, ``"15m"``, ``"2h"``, ``"3d"``, ``"1w"`` as a timedelta."""
    match = _DURATION.match(str(text))
    if not match:
        raise ValueError(f"{text!r} is not a duration like 30m, 2h, 3d or 1w.")
    return timedelta(seconds=float(match.group(1)) * _UNITS[match.group(2).lower()])


def parse_error_code(text: str) -> tuple[int, int | None]:
    """``"190"`` -> (190, None); ``"100/2804016"`` -> (100, 2804016)."""
    code, _sep, subcode = str(text).strip().partition("/")
    try:
        return int(code), int(subcode) if subcode else None
    except ValueError:
        raise ValueError(f"{text!r} is not an error code like 190 or 100/2804016.") from None


def select_events(
    *,
    statuses: Iterable[str] = (EventStatus.FAILED, EventStatus.EXPIRED),
    datasets: Iterable[str] = (),
    event_names: Iterable[str] = (),
    error_codes: Iterable[tuple[int, int | None]] = (),
    older_than: timedelta | None = None,
    newer_than: timedelta | None = None,
    now: datetime | None = None,
) -> QuerySet[Event]:
    """Events matching every given filter; ages are measured on ``created_at``."""
    now = now or timezone.now()
    qs = Event.objects.filter(status__in=list(statuses))
    if datasets := [str(d) for d in datasets]:
        qs = qs.filter(dataset_id__in=datasets)
    if event_names := list(event_names):
        qs = qs.filter(event_name__in=event_names)
    codes = Q()
    for code, subcode in error_codes:
        codes |= Q(last_error_code=code) & (
            Q(last_error_subcode=subcode) if subcode is not None else Q()
        )
    if codes:
        qs = qs.filter(codes)
    if older_than is not None:
        qs = qs.filter(created_at__lt=now - older_than)
    if newer_than is not None:
        qs = qs.filter(created_at__gte=now - newer_than)
    return qs


# --- purge --------------------------------------------------------------------------------


@dataclass
class PurgeResult:
    """What :func:`purge_events` deleted (or, for a dry run, would delete)."""

    cutoff: datetime | None
    events: int = 0
    attempts: int = 0
    batches: int = 0
    dry_run: bool = False

    def message(self) -> str:
        """One line for logs and the command."""
        if self.cutoff is None:
            return "Retention is off (RETENTION_DAYS is None): nothing purged."
        verb = "Would delete" if self.dry_run else "Deleted"
        return (
            f"{verb} {self.events} events and {self.attempts} delivery attempts recorded "
            f"before {self.cutoff:%Y-%m-%d %H:%M} {self.cutoff:%Z}"
            + ("" if self.dry_run else f" ({self.batches} batches)")
            + "."
        )


def purge_events(
    *,
    days: int | None = None,
    batch_size: int | None = None,
    now: datetime | None = None,
    dry_run: bool = False,
) -> PurgeResult:
    """Delete sent, failed, expired and discarded events recorded more than ``days`` ago.

    ``days`` defaults to ``CAPI["RETENTION_DAYS"]`` (None there: keep everything) and
    ``batch_size`` to ``PURGE_BATCH_SIZE``. Each batch is its own short transaction, so
    workers are never blocked for long. The attempt log links of deleted events go with
    them, then attempts left without any event (older than the cutoff) are deleted too.
    Pending and sending events are never deleted, however old.
    """
    now = now or timezone.now()
    if days is None:
        days = conf.get_setting("RETENTION_DAYS")
        if days is None:
            return PurgeResult(cutoff=None, dry_run=dry_run)
    days = int(days)
    if days < 0:
        raise ValueError("The retention must be 0 days or more.")
    size = int(batch_size if batch_size is not None else conf.get_setting("PURGE_BATCH_SIZE"))
    if size < 1:
        raise ValueError("The purge batch size must be at least 1.")
    cutoff = now - timedelta(days=days)
    orphan_cutoff = min(cutoff, now - ORPHAN_GRACE)
    db = _db()
    old = Event.objects.using(db).filter(status__in=FINISHED_STATUSES, created_at__lt=cutoff)
    orphans = DeliveryAttempt.objects.using(db).filter(
        started_at__lt=orphan_cutoff, events__isnull=True
    )
    result = PurgeResult(cutoff=cutoff, dry_run=dry_run)
    if dry_run:
        result.events = old.count()
        result.attempts = orphans.count()
        return result

    lock = connections[db].features.has_select_for_update
    # One status at a time, oldest first: a range scan of the (status, created_at) index.
    for status in FINISHED_STATUSES:
        while True:
            ids = list(
                old.filter(status=status).order_by("created_at").values_list("pk", flat=True)[:size]
            )
            if not ids:
                break
            with transaction.atomic(using=db):
                # Re-check under a lock: an event retried meanwhile (now pending) is kept.
                batch = Event.objects.using(db).filter(pk__in=ids, status__in=FINISHED_STATUSES)
                if lock:
                    batch = batch.select_for_update()
                ids = list(batch.values_list("pk", flat=True))
                # only("pk"): deleting needs no payloads; the attempt links go by event id.
                _total, per_model = Event.objects.using(db).filter(pk__in=ids).only("pk").delete()
            result.events += per_model.get(Event._meta.label, 0)
            result.batches += 1
    while True:
        ids = list(orphans.order_by().values_list("pk", flat=True)[:size])
        if not ids:
            break
        _total, per_model = DeliveryAttempt.objects.using(db).filter(pk__in=ids).delete()
        result.attempts += per_model.get(DeliveryAttempt._meta.label, 0)
    if result.events or result.attempts:
        logger.info("django_capi: purge: %s", result.message())
    return result


# --- status -------------------------------------------------------------------------------


@dataclass
class DatasetHealth:
    """Delivery state of one dataset, with what staff should do about it."""

    dataset_id: str
    label: str = ""
    configured: bool = False
    has_token: bool = False
    #: False when staff disabled it: its events are kept pending, nothing is sent.
    enabled: bool = True
    disabled_reason: str = ""
    #: ``settings`` or ``database`` (managed in the admin); "" when not configured.
    origin: str = ""
    token_error: str = ""
    pending: queries.PendingRow | None = None
    paused_at: datetime | None = None
    pause_code: int | None = None
    pause_subcode: int | None = None
    pause_reason: str = ""
    next_probe_at: datetime | None = None
    throttled_until: datetime | None = None
    last_success_at: datetime | None = None
    waiting: timedelta | None = None
    """How long the event that has been due longest has waited (None: nothing due)."""
    lagging: bool = False

    @property
    def paused(self) -> bool:
        """Stopped by a token or permission error."""
        return self.paused_at is not None

    @property
    def throttled(self) -> bool:
        """Backing off from Meta's rate limits right now."""
        return self.throttled_until is not None

    @property
    def state(self) -> str:
        """``disabled``, ``paused``, ``lagging``, ``throttled`` or ``ok``."""
        if not self.enabled:
            return "disabled"
        if self.paused:
            return "paused"
        if self.lagging:
            return "lagging"
        if self.throttled:
            return "throttled"
        return "ok"

    @property
    def advice(self) -> str:
        """What to do; ``""`` when all is well."""
        if not self.enabled:
            return _(
                "Disabled by staff (%(reason)s): enable it in Datasets to send its events."
            ) % {"reason": self.disabled_reason or "-"}
        if self.token_error:
            return _("Its stored access token cannot be decrypted: %(error)s") % {
                "error": self.token_error
            }
        if self.paused:
            return pause_advice(self.pause_code, self.pause_subcode)
        if self.lagging:
            return lag_advice()
        if self.throttled:
            return throttle_advice()
        if not self.configured:
            return _(
                "This dataset is not configured: its events cannot be sent. Add it (with its "
                "access token) in Datasets or to CAPI DATASETS, or discard its events."
            )
        if not self.has_token:
            return _("No access token is configured for this dataset.")
        return ""


@dataclass
class StatusSummary:
    """Everything the dashboard and ``capi_status`` report, computed in a few queries."""

    now: datetime
    max_pending_age: timedelta
    windows: dict[str, timedelta]
    counts: list[queries.CountRow]
    errors: dict[str, list[queries.ErrorRow]]
    coverage: list[queries.CoverageRow]
    datasets: list[DatasetHealth]

    def totals(self, window: str) -> dict[str, int]:
        """Events of the window by status (every dataset and event name)."""
        totals = dict.fromkeys(queries.STATUSES, 0)
        for row in self.counts:
            for status, count in row.counts.get(window, {}).items():
                totals[status] += count
        return totals

    @property
    def paused(self) -> list[DatasetHealth]:
        """Datasets stopped by a token or permission error."""
        return [d for d in self.datasets if d.paused]

    @property
    def lagging(self) -> list[DatasetHealth]:
        """Datasets whose due events wait longer than ``max_pending_age``."""
        return [d for d in self.datasets if d.lagging]

    @property
    def throttled(self) -> list[DatasetHealth]:
        """Datasets backing off from rate limits (not unhealthy by itself)."""
        return [d for d in self.datasets if d.throttled and not d.paused]

    @property
    def longest_wait(self) -> timedelta | None:
        """How long the event due longest (any dataset) has waited."""
        waits = [d.waiting for d in self.datasets if d.waiting is not None]
        return max(waits) if waits else None

    @property
    def oldest_pending_created_at(self) -> datetime | None:
        """When the oldest pending event was recorded."""
        times = [
            d.pending.oldest_pending_created_at
            for d in self.datasets
            if d.pending and d.pending.oldest_pending_created_at
        ]
        return min(times) if times else None

    @property
    def exit_code(self) -> int:
        """0 healthy; else :data:`EXIT_LAGGING` and/or :data:`EXIT_PAUSED` (bits)."""
        code = EXIT_OK
        if self.lagging:
            code |= EXIT_LAGGING
        if self.paused:
            code |= EXIT_PAUSED
        return code

    @property
    def healthy(self) -> bool:
        """No dataset paused and no due event waiting too long."""
        return self.exit_code == EXIT_OK

    @property
    def problems(self) -> list[str]:
        """One sentence per reason delivery is unhealthy."""
        found = []
        for d in self.paused:
            found.append(
                _("Dataset %(dataset)s is paused since %(since)s: %(reason)s")
                % {
                    "dataset": d.dataset_id,
                    "since": f"{timezone.localtime(d.paused_at):%Y-%m-%d %H:%M}",
                    "reason": d.pause_reason or "-",
                }
            )
        for d in self.lagging:
            found.append(
                _("Dataset %(dataset)s has events due for %(minutes)d min (limit %(limit)d min)")
                % {
                    "dataset": d.dataset_id,
                    "minutes": (d.waiting or timedelta()).total_seconds() // 60,
                    "limit": self.max_pending_age.total_seconds() // 60,
                }
            )
        return found


def status_summary(
    *,
    now: datetime | None = None,
    max_pending_age: timedelta | None = None,
    windows: dict[str, timedelta] | None = None,
    coverage_windows: Iterable[str] | None = None,
) -> StatusSummary:
    """Counts, errors, match-key coverage and dataset health, for the dashboard and checks.

    A dataset is *lagging* when it is not paused or throttled and an event has been due
    (``next_attempt_at`` passed, or a worker's lease expired) for longer than
    ``max_pending_age`` (default ``CAPI["HEALTH_MAX_PENDING_AGE"]`` seconds). Match-key
    coverage, the costliest figure (it reads every payload of the window), is computed for
    ``coverage_windows`` only (default: every window).
    """
    now = now or timezone.now()
    windows = windows or dict(queries.WINDOWS)
    if max_pending_age is None:
        max_pending_age = timedelta(seconds=int(conf.get_setting("HEALTH_MAX_PENDING_AGE")))
    counts = queries.status_counts(now, windows)
    errors = {name: queries.top_errors(now - delta) for name, delta in windows.items()}
    wanted = windows if coverage_windows is None else {w: windows[w] for w in coverage_windows}
    coverage = queries.match_key_coverage(now, wanted)
    pending = queries.pending_by_dataset(now)
    states = {state.dataset_id: state for state in DatasetState.objects.all()}
    configured = conf.configured_datasets()

    ids = list(configured)
    for dataset_id in sorted({*states, *pending, *(row.dataset_id for row in counts)}):
        if dataset_id not in ids:
            ids.append(dataset_id)
    datasets = []
    for dataset_id in ids:
        config = configured.get(dataset_id)
        state = states.get(dataset_id)
        row = pending.get(dataset_id)
        health = DatasetHealth(
            dataset_id=dataset_id,
            label=config.label if config else "",
            configured=config is not None,
            has_token=bool(config and config.has_token),
            enabled=config.enabled if config else True,
            disabled_reason=config.disabled_reason if config else "",
            origin=str(config.origin) if config else "",
            token_error=config.token_error if config else "",
            pending=row,
        )
        if state is not None:
            health.paused_at = state.paused_at
            health.pause_code = state.pause_code
            health.pause_subcode = state.pause_subcode
            health.pause_reason = state.pause_reason
            health.next_probe_at = state.next_probe_at
            health.last_success_at = state.last_success_at
            if state.throttled_until and state.throttled_until > now:
                health.throttled_until = state.throttled_until
        if row is not None:
            since = [t for t in (row.oldest_due_at, row.oldest_lease_expires_at) if t and t <= now]
            if since:
                health.waiting = now - min(since)
        health.lagging = bool(
            health.enabled
            and not health.paused
            and not health.throttled
            and health.waiting is not None
            and health.waiting > max_pending_age
        )
        datasets.append(health)
    return StatusSummary(
        now=now,
        max_pending_age=max_pending_age,
        windows=windows,
        counts=counts,
        errors=errors,
        coverage=coverage,
        datasets=datasets,
    )
