"""Counting for the fault suite: what was placed, what the fake Graph API accepted, what is lost.

The figures a user would check after an incident:

- **placed**: events this test stored (through ``track()`` or bulk-loaded like a backlog);
- **delivered**: distinct placed event ids the fake Graph API accepted (HTTP 200);
- **duplicates**: accepted copies beyond the first of an event id (Meta deduplicates them on
  ``event_name`` + ``event_id``); every copy is checked to be byte-for-byte the same event;
- **failed / expired visibly**: placed events not delivered whose row says so, with a reason;
- **lost**: placed, not delivered and not visibly failed or expired. Must be 0.

The fake API records what it accepts in a :class:`Ledger` (one entry per event id, plus a
digest of its payload and a timeline of requests); nothing in the delivery path is mocked.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import threading
import time
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.db import connection, transaction
from django.utils import timezone

from django_capi import track
from django_capi.models import Event, EventStatus
from django_capi.validation import validate_event
from tests.fake_graph_api import FakeGraphAPI, RequestRecord

REPORT_ENV = "CAPI_RELIABILITY_REPORT"

# Four datasets, each with its own token, so faults can hit one while the others flow.
DATASETS: dict[str, tuple[str, str]] = {
    "a": ("1000000000000001", "EAArel-token-a"),
    "b": ("2000000000000002", "EAArel-token-b"),
    "c": ("3000000000000003", "EAArel-token-c"),
    "d": ("4000000000000004", "EAArel-token-d"),
}
A, B, C, D = (DATASETS[key][0] for key in "abcd")
TOKENS = dict(DATASETS.values())

# A request whose answer the client never saw although the fake processed it: the events in
# it were accepted, and django_capi will (rightly) send them again.
UNANSWERED_FAULTS = frozenset({"slow", "reset_mid_response"})


def capi_overrides(api_url: str, **changes: Any) -> dict[str, Any]:
    """CAPI settings for workers and for this process: the four datasets, short delays.

    Time is compressed (retries after 0.2 s instead of 15 s, throttling after 0.5 s instead
    of 60 s) so that minutes of an incident fit in seconds; the code paths are the real ones.
    """
    pixel_a, token_a = DATASETS["a"]
    settings: dict[str, Any] = {
        "PIXEL_ID": pixel_a,
        "ACCESS_TOKEN": token_a,
        "DATASETS": {
            pixel: {"ACCESS_TOKEN": token} for key, (pixel, token) in DATASETS.items() if key != "a"
        },
        "API_BASE_URL": api_url,
        "QUEUE_ON_COMMIT": True,
        "BATCH_SIZE": 100,
        "LEASE_SECONDS": 15,
        "CONNECT_TIMEOUT": 1.0,
        "READ_TIMEOUT": 2.0,
        "RETRY_BASE_DELAY": 0.2,
        "RETRY_MAX_DELAY": 1.0,
        "THROTTLE_BASE_DELAY": 0.5,
        "THROTTLE_MAX_DELAY": 2.0,
        "PAUSE_PROBE_INTERVAL": 3600,
        "MAX_ATTEMPTS": 15,
        "TASK_TIME_BUDGET": 5,
        "MAX_PARALLEL_TASKS": 4,
    }
    settings.update(changes)
    return settings


# --- what the fake API accepted ---------------------------------------------------------------


@dataclass(frozen=True)
class Request:
    """One request as the fake API saw it, with the time it was answered."""

    at: float  # time.monotonic()
    dataset_id: str
    status: int | None
    error_code: int | None
    error_subcode: int | None
    fault: str
    n_events: int
    accepted_ids: tuple[str, ...]


class Ledger:
    """Every accepted event id (with a digest of its payload) and every request, in order."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.copies: Counter[str] = Counter()
        self.dataset_of: dict[str, str] = {}
        self.digest_of: dict[str, str] = {}
        # Event ids whose copies differ from the first one (must stay empty) or that reached
        # two datasets (must stay empty too).
        self.mismatched: set[str] = set()
        self.misrouted: set[str] = set()
        self.requests: list[Request] = []

    def add(self, record: RequestRecord, accepted: Sequence[dict[str, Any]]) -> None:
        ids = []
        digests = []
        for event in accepted:
            ids.append(str(event.get("event_id")))
            canonical = json.dumps(event, sort_keys=True, separators=(",", ":")).encode()
            digests.append(hashlib.sha1(canonical).hexdigest())
        now = time.monotonic()
        with self._lock:
            for event_id, digest in zip(ids, digests, strict=True):
                self.copies[event_id] += 1
                first = self.digest_of.setdefault(event_id, digest)
                if first != digest:
                    self.mismatched.add(event_id)
                dataset = self.dataset_of.setdefault(event_id, record.dataset_id)
                if dataset != record.dataset_id:
                    self.misrouted.add(event_id)
            self.requests.append(
                Request(
                    at=now,
                    dataset_id=record.dataset_id,
                    status=record.status,
                    error_code=record.error_code,
                    error_subcode=record.error_subcode,
                    fault=record.fault,
                    n_events=record.n_events,
                    accepted_ids=tuple(ids),
                )
            )

    def clear(self) -> None:
        with self._lock:
            self.copies.clear()
            self.dataset_of.clear()
            self.digest_of.clear()
            self.mismatched.clear()
            self.misrouted.clear()
            self.requests.clear()

    def snapshot(self) -> list[Request]:
        with self._lock:
            return list(self.requests)

    def distinct(self, prefix: str = "", dataset_id: str | None = None) -> int:
        """How many distinct event ids starting with ``prefix`` were accepted."""
        with self._lock:
            return sum(
                1
                for event_id in self.copies
                if event_id.startswith(prefix)
                and (dataset_id is None or self.dataset_of[event_id] == dataset_id)
            )

    def copies_of(self, ids: Iterable[str]) -> dict[str, int]:
        with self._lock:
            return {event_id: self.copies[event_id] for event_id in ids}

    def accepted_with_prefix(self, prefix: str) -> dict[str, int]:
        with self._lock:
            return {i: n for i, n in self.copies.items() if i.startswith(prefix)}

    def accepted_between(self, dataset_id: str, start: float, end: float) -> int:
        """Events of ``dataset_id`` accepted in requests answered between two moments."""
        return sum(
            len(r.accepted_ids)
            for r in self.snapshot()
            if r.dataset_id == dataset_id and start <= r.at <= end
        )

    def unanswered_accepted(self, prefix: str = "") -> list[str]:
        """Ids accepted in requests whose answer the client could not have read."""
        return [
            event_id
            for r in self.snapshot()
            if r.fault in UNANSWERED_FAULTS
            for event_id in r.accepted_ids
            if event_id.startswith(prefix)
        ]


class CountingGraphAPI(FakeGraphAPI):
    """The fake Graph API, unchanged, plus a :class:`Ledger` of what it accepted.

    It keeps request records but not the accepted events themselves (a 50,000-event drain
    would hold them all in memory); the ledger keeps an id, a dataset and a digest per event.
    ``clock_offset`` moves the fake's clock forward (seconds) for its 7-day age check.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.ledger = Ledger()
        self.clock_offset = 0.0
        self._in_flight = 0
        self._in_flight_lock = threading.Lock()

    def in_flight(self) -> int:
        """Requests received and not yet processed (each worker process sends one at a time)."""
        with self._in_flight_lock:
            return self._in_flight

    def _next_fault(self, dataset_id: str) -> Any:
        # Called once per request, when it has been read (see _Handler._serve).
        with self._in_flight_lock:
            self._in_flight += 1
        return super()._next_fault(dataset_id)

    def _record(self, record: RequestRecord, accepted: Iterable[dict[str, Any]] = ()) -> None:
        # Called once per request, when its answer is decided (before it is written).
        accepted = list(accepted)
        self.ledger.add(record, accepted)
        super()._record(record, ())
        with self._in_flight_lock:
            self._in_flight = max(0, self._in_flight - 1)

    def _check_event(self, event: Any, now: float) -> None:
        super()._check_event(event, now + self.clock_offset)

    def reset(self) -> None:
        super().reset()
        self.ledger.clear()
        with self._in_flight_lock:
            self._in_flight = 0
        self.clock_offset = 0.0
        self.latency = 0.0


# --- placing events -----------------------------------------------------------------------


def event_ids(prefix: str, dataset_id: str, n: int, start: int = 0) -> list[str]:
    return [f"{prefix}{dataset_id[0]}-{i}" for i in range(start, start + n)]


def place(
    prefix: str,
    dataset_id: str,
    n: int,
    *,
    start: int = 0,
    per_transaction: int = 10,
    event_time: datetime | None = None,
) -> list[str]:
    """Record ``n`` events with ``track()``, ``per_transaction`` to a committed transaction
    (like orders), so the immediate path queues delivery after each commit."""
    ids = event_ids(prefix, dataset_id, n, start)
    for chunk_start in range(0, n, per_transaction):
        with transaction.atomic():
            for event_id in ids[chunk_start : chunk_start + per_transaction]:
                event = track(
                    "Purchase",
                    event_id=event_id,
                    pixel_id=dataset_id,
                    action_source="website",
                    event_source_url="https://shop.example/checkout/thanks",
                    event_time=event_time,
                    user_data={
                        "em": f"buyer-{event_id}@example.com",
                        "ph": "(650) 555-1212",
                        "client_ip_address": "203.0.113.7",
                        "client_user_agent": "Mozilla/5.0 (X11; Linux x86_64)",
                    },
                    custom_data={"value": "42.50", "currency": "eur", "order_id": event_id},
                )
                assert event.status == EventStatus.PENDING, event.validation_errors
    return ids


def _template(dataset_id: str) -> dict[str, Any]:
    """A payload exactly as ``track()`` stores it (rolled back: no row, nothing queued)."""
    with transaction.atomic():
        event = track(
            "Purchase",
            event_id="template",
            pixel_id=dataset_id,
            action_source="website",
            event_source_url="https://shop.example/checkout/thanks",
            user_data={
                "em": "template@example.com",
                "ph": "(650) 555-1212",
                "client_ip_address": "203.0.113.7",
                "client_user_agent": "Mozilla/5.0 (X11; Linux x86_64)",
                "fbp": "fb.1.1763700000000.123456789",
            },
            custom_data={
                "value": "42.50",
                "currency": "eur",
                "contents": [{"id": "sku-1", "quantity": 1, "item_price": "42.50"}],
            },
        )
        transaction.set_rollback(True)
    payload = dict(event.payload)
    assert event.status == EventStatus.PENDING, event.validation_errors
    return payload


def bulk_place(prefix: str, dataset_id: str, n: int) -> list[str]:
    """Store ``n`` pending events at once, as a backlog (a broker outage, a deploy).

    Each payload is ``track()``'s own for one order, with its own event id, hashed email
    and order id, and passes django_capi's validation; nothing is queued (the sweep finds
    them, or the test queues a task). Rows go in with COPY; every column gets the value
    the model gives a new event, so columns added to the model later are filled too.
    """
    template = _template(dataset_id)
    when = timezone.now()
    ids = event_ids(prefix, dataset_id, n)

    def payload(event_id: str) -> dict[str, Any]:
        email = hashlib.sha256(f"buyer-{event_id}@example.com".encode()).hexdigest()
        return {
            **template,
            "event_id": event_id,
            "event_time": int(when.timestamp()),
            "user_data": {**template["user_data"], "em": [email]},
            "custom_data": {**template["custom_data"], "order_id": event_id},
        }

    issues = validate_event(payload(ids[0]))
    assert not issues, issues
    model = Event(
        dataset_id=dataset_id,
        event_name="Purchase",
        event_id=ids[0],
        event_time=when,
        action_source="website",
        payload={},
    )
    fields = [f for f in Event._meta.concrete_fields if not f.primary_key]
    row = [f.get_db_prep_save(f.pre_save(model, True), connection) for f in fields]
    names = [f.name for f in fields]
    at_id, at_payload = names.index("event_id"), names.index("payload")
    quote = connection.ops.quote_name
    columns = ", ".join(quote(str(f.column)) for f in fields)
    sql = f"COPY {quote(Event._meta.db_table)} ({columns}) FROM STDIN"
    with transaction.atomic(), connection.cursor() as cursor, cursor.cursor.copy(sql) as copy:
        for event_id in ids:
            row[at_id] = event_id
            row[at_payload] = json.dumps(payload(event_id))
            copy.write_row(row)
    with connection.cursor() as cursor:
        cursor.execute(f"ANALYZE {quote(Event._meta.db_table)}")
    return ids


# --- processes ------------------------------------------------------------------------------


class Sweeper:
    """Sends the periodic ``deliver_due`` task, as beat would (at most every ``every`` s).

    Broker errors are swallowed: during a broker restart beat cannot send either.
    """

    def __init__(self, app: Any, every: float = 1.0) -> None:
        self.app = app
        self.every = every
        self.last = 0.0
        self.sent = 0

    def __call__(self) -> None:
        if time.monotonic() - self.last < self.every:
            return
        self.last = time.monotonic()
        with contextlib.suppress(Exception):
            self.app.send_task("django_capi.deliver_due")
            self.sent += 1


def terminate_worker_connections() -> int:
    """``pg_terminate_backend`` every other session on this test database (the workers').

    Returns how many sessions were terminated.
    """
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FILTER (WHERE pg_terminate_backend(pid)) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid() "
            "AND backend_type = 'client backend'"
        )
        row = cursor.fetchone()
    return int(row[0]) if row else 0


def unfinished(prefix: str) -> int:
    """Events of this test still pending or being sent."""
    return Event.objects.filter(
        event_id__startswith=prefix, status__in=[EventStatus.PENDING, EventStatus.SENDING]
    ).count()


# --- figures ---------------------------------------------------------------------------------


@dataclass
class Figures:
    """One scenario's counts, as written to the report and asserted on."""

    scenario: str
    placed: int
    delivered: int
    lost: int
    duplicates: int
    failed_visibly: int
    expired_visibly: int
    requests: int
    seconds: float
    notes: str = ""
    # Not in the report: the detail behind the counts, for assertions.
    lost_ids: list[str] = field(default_factory=list, repr=False)
    duplicated: dict[str, int] = field(default_factory=dict, repr=False)
    strays: list[str] = field(default_factory=list, repr=False)
    phantoms: list[str] = field(default_factory=list, repr=False)
    mismatched: list[str] = field(default_factory=list, repr=False)
    misrouted: list[str] = field(default_factory=list, repr=False)

    def row(self) -> dict[str, Any]:
        keep = (
            "scenario",
            "placed",
            "delivered",
            "lost",
            "duplicates",
            "failed_visibly",
            "expired_visibly",
            "requests",
            "seconds",
            "notes",
        )
        data = asdict(self)
        return {key: data[key] for key in keep}


def count(
    scenario: str,
    api: CountingGraphAPI,
    prefix: str,
    placed: Iterable[str],
    started: float,
    notes: str = "",
) -> Figures:
    """The figures of one scenario, from the fake API's ledger and the event rows."""
    placed_ids = set(placed)
    accepted = api.ledger.accepted_with_prefix(prefix)
    delivered = placed_ids & set(accepted)
    rows = {
        event_id: (status, message, dataset_id)
        for event_id, status, message, dataset_id in Event.objects.filter(
            event_id__startswith=prefix
        ).values_list("event_id", "status", "last_error_message", "dataset_id")
    }
    visible = {
        status: {
            event_id
            for event_id in placed_ids - delivered
            if rows.get(event_id, ("", "", ""))[0] == status and rows[event_id][1]
        }
        for status in (EventStatus.FAILED, EventStatus.EXPIRED)
    }
    lost = placed_ids - delivered - visible[EventStatus.FAILED] - visible[EventStatus.EXPIRED]
    duplicated = {event_id: n for event_id, n in accepted.items() if n > 1}
    # Marked sent in the database but never accepted by the API: a silent loss.
    phantoms = [i for i, (status, _, _) in rows.items() if status == "sent" and i not in accepted]
    misrouted = sorted(
        i for i in delivered if api.ledger.dataset_of.get(i) != rows.get(i, ("", "", ""))[2]
    )
    return Figures(
        scenario=scenario,
        placed=len(placed_ids),
        delivered=len(delivered),
        lost=len(lost),
        duplicates=sum(n - 1 for n in duplicated.values()),
        failed_visibly=len(visible[EventStatus.FAILED]),
        expired_visibly=len(visible[EventStatus.EXPIRED]),
        requests=len(api.ledger.snapshot()),
        seconds=round(time.monotonic() - started, 1),
        notes=notes,
        lost_ids=sorted(lost)[:20],
        duplicated=duplicated,
        strays=sorted(set(accepted) - placed_ids)[:20],
        phantoms=sorted(phantoms)[:20],
        mismatched=sorted(i for i in api.ledger.mismatched if i.startswith(prefix))[:20],
        misrouted=sorted(set(misrouted) | (api.ledger.misrouted & placed_ids))[:20],
    )


def record_figures(figures: Figures) -> None:
    """Append the scenario's row to ``$CAPI_RELIABILITY_REPORT`` (JSON lines), if set."""
    path = os.environ.get(REPORT_ENV)
    if not path:
        return
    row = {"suite": "faults", **figures.row(), "recorded_at": time.time()}
    with open(path, "a", encoding="utf-8") as report:
        report.write(json.dumps(row) + "\n")


def assert_sound(figures: Figures) -> None:
    """What must hold after every fault: nothing lost, nothing invented, duplicates are
    re-sends of the very same event (same event_id, same payload) to the same dataset."""
    assert figures.lost == 0, f"{figures.lost} events lost, e.g. {figures.lost_ids}"
    assert not figures.strays, f"the API accepted events nobody placed: {figures.strays}"
    assert not figures.phantoms, f"marked sent but never accepted: {figures.phantoms}"
    assert not figures.mismatched, f"duplicates that differ from the original: {figures.mismatched}"
    assert not figures.misrouted, f"events accepted under another dataset: {figures.misrouted}"


def aged(seconds_left: float, limit: timedelta = timedelta(days=7)) -> datetime:
    """An event_time that crosses django_capi's expiry line ``seconds_left`` from now
    (Meta's limit minus the engine's safety margin)."""
    from django_capi.delivery.engine import EXPIRY_MARGIN

    return timezone.now() - limit + EXPIRY_MARGIN + timedelta(seconds=seconds_left)
