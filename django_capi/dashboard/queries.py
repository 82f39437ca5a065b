"""Aggregate queries behind the dashboard and ``capi_status``.

Each function runs one query that groups in the database (conditional ``COUNT ... FILTER``
per status, window or match key) over a ``created_at`` range, which the ``created_at`` index
bounds, or over the pending rows, which the ``capi_event_due_idx`` index (status first)
bounds. Python only walks the grouped rows (datasets, event names, hours), never events.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Final

from django.db.models import Case, Count, F, Max, Min, Q, TextField, Value, When
from django.db.models.functions import TruncHour
from django.utils import timezone

from django_capi.dashboard.advice import (
    MATCH_KEYS,
    MatchKey,
    error_advice,
    error_label,
    estimate_match_quality,
    quality_label,
)
from django_capi.models import Event, EventStatus

__all__ = [
    "CHART_BUCKETS",
    "STATUSES",
    "WINDOWS",
    "ChartBucket",
    "CountRow",
    "CoverageRow",
    "ErrorRow",
    "PendingRow",
    "match_key_coverage",
    "pending_by_dataset",
    "sent_failed_series",
    "status_counts",
    "top_errors",
]

WINDOWS: Final[dict[str, timedelta]] = {"24h": timedelta(hours=24), "7d": timedelta(days=7)}
"""The dashboard's time windows, by name, measured back from now on ``created_at``."""

STATUSES: Final[tuple[str, ...]] = tuple(EventStatus.values)

CHART_BUCKETS: Final[dict[str, tuple[timedelta, int]]] = {
    "24h": (timedelta(hours=1), 24),
    "7d": (timedelta(hours=6), 28),
}
"""Bucket size and count of the sent/failed chart of each window."""

FAILED_STATUSES: Final = (EventStatus.FAILED, EventStatus.EXPIRED)


def _recent(now: datetime, delta: timedelta) -> Q:
    return Q(created_at__gte=now - delta)


def _window_since(now: datetime, windows: dict[str, timedelta]) -> datetime:
    return now - max(windows.values())


# --- counts by status ---------------------------------------------------------------------


@dataclass
class CountRow:
    """Events of one dataset and event name, counted by window and status."""

    dataset_id: str
    event_name: str
    counts: dict[str, dict[str, int]] = field(default_factory=dict)

    def total(self, window: str) -> int:
        """All events of the window, whatever their status."""
        return sum(self.counts.get(window, {}).values())


def status_counts(
    now: datetime | None = None, windows: dict[str, timedelta] = WINDOWS
) -> list[CountRow]:
    """Counts by status per dataset and event name, for every window, in one query."""
    now = now or timezone.now()
    # Aggregate names are positional (w<window>s<status>): names must be SQL-safe.
    aggregates: dict[str, Any] = {
        f"w{w}s{s}": Count("pk", filter=_recent(now, delta) & Q(status=status))
        for w, delta in enumerate(windows.values())
        for s, status in enumerate(STATUSES)
    }
    rows: Any = (
        Event.objects.filter(created_at__gte=_window_since(now, windows))
        .order_by()
        .values("dataset_id", "event_name")
        .annotate(**aggregates)
        .order_by("dataset_id", "event_name")
    )
    result = []
    names = list(windows)
    for row in rows:
        counts = {
            window: {status: int(row[f"w{w}s{s}"]) for s, status in enumerate(STATUSES)}
            for w, window in enumerate(names)
        }
        result.append(CountRow(row["dataset_id"], row["event_name"], counts))
    return result


# --- errors -------------------------------------------------------------------------------


@dataclass
class ErrorRow:
    """One error reason: events that failed, expired or are retrying with it."""

    code: int | None
    subcode: int | None
    message: str
    events: int
    retrying: int
    expired: int
    datasets: int
    last_seen: datetime | None

    @property
    def label(self) -> str:
        """Code, subcode and the name of the code (``""`` without a code)."""
        return error_label(self.code, self.subcode)

    @property
    def advice(self) -> str:
        """What to do about it."""
        status = "expired" if self.expired == self.events else ""
        return error_advice(self.code, self.subcode, status)


def top_errors(since: datetime, limit: int = 10) -> list[ErrorRow]:
    """The most frequent error reasons among events recorded since ``since``.

    Events with a Graph error code are grouped by code and subcode (the text differs per
    event, e.g. its index in the batch); events without one (validation, expiry, network)
    by their message.
    """
    problem = Q(status__in=FAILED_STATUSES) | (
        Q(status=EventStatus.PENDING) & ~Q(last_error_message="")
    )
    rows = (
        Event.objects.filter(problem, created_at__gte=since)
        .order_by()
        .annotate(
            reason=Case(
                When(last_error_code__isnull=True, then=F("last_error_message")),
                default=Value(""),
                output_field=TextField(),
            )
        )
        .values("last_error_code", "last_error_subcode", "reason")
        .annotate(
            events=Count("pk"),
            retrying=Count("pk", filter=Q(status=EventStatus.PENDING)),
            expired=Count("pk", filter=Q(status=EventStatus.EXPIRED)),
            datasets=Count("dataset_id", distinct=True),
            example=Max("last_error_message"),
            last_seen=Max("updated_at"),
        )
        .order_by("-events", "last_error_code", "reason")[:limit]
    )
    return [
        ErrorRow(
            code=row["last_error_code"],
            subcode=row["last_error_subcode"],
            message=row["example"] or "",
            events=row["events"],
            retrying=row["retrying"],
            expired=row["expired"],
            datasets=row["datasets"],
            last_seen=row["last_seen"],
        )
        for row in rows
    ]


# --- match keys ---------------------------------------------------------------------------


def _has_keys(key: MatchKey) -> Q:
    if len(key.keys) == 1:
        return Q(payload__user_data__has_key=key.keys[0])
    return Q(payload__user_data__has_keys=list(key.keys))


@dataclass
class CoverageRow:
    """Match-key coverage of one event name, per window."""

    event_name: str
    totals: dict[str, int] = field(default_factory=dict)
    counts: dict[str, dict[str, int]] = field(default_factory=dict)

    def shares(self, window: str) -> dict[str, float]:
        """The share (0-1) of the window's events carrying each match key."""
        total = self.totals.get(window, 0)
        counts = self.counts.get(window, {})
        return {key.name: (counts.get(key.name, 0) / total if total else 0.0) for key in MATCH_KEYS}

    def score(self, window: str) -> float:
        """Estimated match quality, 0-10 (see :func:`~.advice.estimate_match_quality`)."""
        return estimate_match_quality(self.shares(window))

    def quality(self, window: str) -> str:
        """Poor, OK, Good or Great."""
        return quality_label(self.score(window))

    def gains(self, window: str, limit: int = 3) -> list[tuple[MatchKey, float]]:
        """The keys whose full coverage would raise the score most, with that gain."""
        shares = self.shares(window)
        gains = [(key, round(key.weight * (1 - shares[key.name]), 1)) for key in MATCH_KEYS]
        return sorted(
            (item for item in gains if item[1] >= 0.1), key=lambda item: item[1], reverse=True
        )[:limit]


def match_key_coverage(
    now: datetime | None = None, windows: dict[str, timedelta] = WINDOWS
) -> list[CoverageRow]:
    """Per event name: events, and events carrying each match key, per window (one query).

    Key presence is read from the stored payload (``payload__user_data__has_key``): user
    data is hashed, but which keys are there is what matching depends on. Discarded events
    are left out (they are not sent).
    """
    now = now or timezone.now()
    names = list(windows)
    aggregates: dict[str, Any] = {}
    for w, window in enumerate(names):
        recent = _recent(now, windows[window])
        aggregates[f"w{w}total"] = Count("pk", filter=recent)
        for k, key in enumerate(MATCH_KEYS):
            aggregates[f"w{w}k{k}"] = Count("pk", filter=recent & _has_keys(key))
    rows: Any = (
        Event.objects.filter(created_at__gte=_window_since(now, windows))
        .exclude(status=EventStatus.DISCARDED)
        .order_by()
        .values("event_name")
        .annotate(**aggregates)
        .order_by("event_name")
    )
    result = []
    for row in rows:
        coverage = CoverageRow(row["event_name"])
        for w, window in enumerate(names):
            coverage.totals[window] = int(row[f"w{w}total"])
            coverage.counts[window] = {
                key.name: int(row[f"w{w}k{k}"]) for k, key in enumerate(MATCH_KEYS)
            }
        result.append(coverage)
    return result


# --- pending ------------------------------------------------------------------------------


@dataclass
class PendingRow:
    """Events of one dataset that are not finished yet."""

    dataset_id: str
    pending: int = 0
    sending: int = 0
    due: int = 0
    oldest_due_at: datetime | None = None
    """The ``next_attempt_at`` of the event that has been due longest."""
    oldest_pending_created_at: datetime | None = None
    oldest_lease_expires_at: datetime | None = None
    """The earliest lease expiry of events being sent (past: a worker died mid-send)."""


def pending_by_dataset(now: datetime | None = None) -> dict[str, PendingRow]:
    """Pending and sending events per dataset, and since when the oldest due one waits."""
    now = now or timezone.now()
    due = Q(status=EventStatus.PENDING, next_attempt_at__lte=now)
    rows = (
        Event.objects.filter(status__in=[EventStatus.PENDING, EventStatus.SENDING])
        .order_by()
        .values("dataset_id")
        .annotate(
            pending=Count("pk", filter=Q(status=EventStatus.PENDING)),
            sending=Count("pk", filter=Q(status=EventStatus.SENDING)),
            due=Count("pk", filter=due),
            oldest_due_at=Min("next_attempt_at", filter=due),
            oldest_pending_created_at=Min("created_at", filter=Q(status=EventStatus.PENDING)),
            oldest_lease_expires_at=Min("lease_expires_at", filter=Q(status=EventStatus.SENDING)),
        )
        .order_by("dataset_id")
    )
    return {row["dataset_id"]: PendingRow(**row) for row in rows}


# --- chart --------------------------------------------------------------------------------


@dataclass
class ChartBucket:
    """Events recorded in one time bucket that were sent, or failed or expired."""

    start: datetime
    end: datetime
    sent: int = 0
    failed: int = 0


def sent_failed_series(window: str, now: datetime | None = None) -> list[ChartBucket]:
    """Sent and failed events per hour (24h) or per 6 hours (7d), by time recorded.

    Buckets start on whole hours of the current time zone; the last one holds now.
    """
    size, count = CHART_BUCKETS[window]
    now = now or timezone.now()
    tz = timezone.get_current_timezone()
    local = timezone.localtime(now, tz).replace(minute=0, second=0, microsecond=0)
    hours = int(size.total_seconds() // 3600)
    local = local.replace(hour=local.hour - local.hour % hours)
    # Arithmetic in UTC: aware local datetimes add wall-clock time across DST changes.
    start = local.astimezone(UTC) - size * (count - 1)
    buckets = [
        ChartBucket(start=start + size * i, end=start + size * (i + 1)) for i in range(count)
    ]
    rows = (
        Event.objects.filter(
            created_at__gte=start,
            status__in=[EventStatus.SENT, *FAILED_STATUSES],
        )
        .order_by()
        .annotate(hour=TruncHour("created_at", tzinfo=tz))
        .values("hour")
        .annotate(
            sent=Count("pk", filter=Q(status=EventStatus.SENT)),
            failed=Count("pk", filter=Q(status__in=FAILED_STATUSES)),
        )
        .order_by("hour")
    )
    seconds = size.total_seconds()
    for row in rows:
        hour = row["hour"]
        if timezone.is_naive(hour):  # backends without time zone support
            hour = timezone.make_aware(hour, tz)
        index = int((hour - start).total_seconds() // seconds)
        if 0 <= index < count:
            buckets[index].sent += int(row["sent"])
            buckets[index].failed += int(row["failed"])
    return buckets
