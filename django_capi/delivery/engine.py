"""The delivery engine: claim due events, send them outside any transaction, record the outcome.

One call to :func:`deliver_dataset` works on one dataset:

1. skip it while it is throttled or paused (a token/permission error), unless its token has
   been replaced or a probe is due;
2. mark events too old for Meta as expired, so one stale event cannot sink a batch;
3. claim a batch of due events with a lease (``select_for_update(skip_locked=True)`` where
   the database has it; a conditional UPDATE guarded by a claim token everywhere), so that
   any number of workers never send the same event at the same time;
4. send it through the configured transport, outside the transaction;
5. record the outcome for the whole batch in a few statements, plus one append-only
   :class:`~django_capi.models.DeliveryAttempt` per request. A rejected batch is split in
   halves until the bad events are isolated; only those fail.

Every outcome is recorded only on rows that still carry this worker's claim token: a worker
that lost its lease (it was too slow and another worker took over) changes nothing.
"""

from __future__ import annotations

import logging
import random
import time
import uuid
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.db import connections, router, transaction
from django.db.models import F, Q, TextField
from django.db.models.functions import Cast
from django.utils import timezone

from django_capi import conf, signals
from django_capi.models import (
    ActionSource,
    Dataset,
    DatasetState,
    DeliveryAttempt,
    Event,
    EventStatus,
    token_fingerprint,
)
from django_capi.transports.base import (
    BaseTransport,
    Outcome,
    RawEvent,
    SendResult,
    get_transport,
)
from django_capi.validation import event_age_limit

logger = logging.getLogger("django_capi.delivery")

# Expire a little before Meta's limit, so an event cannot cross it while its request is in flight.
EXPIRY_MARGIN = timedelta(minutes=5)
# Requests one rejected batch may spend on isolating its bad events before the rest waits
# for a later pass (bisection needs about 2·k·log2(n/k) requests for k bad events among n).
MAX_SPLIT_REQUESTS = 200


@dataclass
class DeliveryReport:
    """What one delivery run did for one dataset."""

    dataset_id: str
    requests: int = 0
    sent: int = 0
    failed: int = 0
    retried: int = 0
    expired: int = 0
    throttled: bool = False
    paused: bool = False
    resumed: bool = False
    disabled: bool = False
    lease_lost: int = 0

    @property
    def stopped(self) -> bool:
        """True when the dataset cannot take more requests now."""
        return self.throttled or self.paused or self.disabled

    @property
    def state(self) -> str:
        """``disabled``, ``paused``, ``throttled`` or ``ok``."""
        if self.disabled:
            return "disabled"
        return "throttled" if self.throttled else "paused" if self.paused else "ok"


@dataclass
class _Batch:
    token: str
    ids: list[int]
    payloads: list[RawEvent]
    attempts: dict[int, int] = field(default_factory=dict)
    # True for a whole claim: its rows are exactly those carrying the token, so statements
    # address them by token (one indexed parameter) instead of by a list of ids.
    whole: bool = False

    def part(self, ids: Sequence[int]) -> _Batch:
        index = {pk: i for i, pk in enumerate(self.ids)}
        return _Batch(
            token=self.token,
            ids=list(ids),
            payloads=[self.payloads[index[pk]] for pk in ids],
            attempts={pk: self.attempts[pk] for pk in ids},
        )


def _db() -> str:
    return router.db_for_write(Event)


def _events() -> Any:
    return Event.objects.using(_db())


# --- claiming -------------------------------------------------------------------------------


def claim_batch(dataset_id: str, limit: int, now: datetime | None = None) -> _Batch | None:
    """Claim up to ``limit`` due events of one dataset for this worker, or None if none are due."""
    now = now or timezone.now()
    db = _db()
    token = uuid.uuid4().hex
    lease_until = now + timedelta(seconds=int(conf.get_setting("LEASE_SECONDS")))
    if connections[db].vendor == "postgresql":
        claimed = _claim_postgresql(db, dataset_id, limit, now, token, lease_until)
    else:
        claimed = _claim_portable(db, dataset_id, limit, now, token, lease_until)
    if not claimed:
        return None
    # The payload is read as JSON text and sent as it is: never decoded and encoded again.
    rows = (
        _claimed_by(Event.objects.using(db), token)
        .order_by("pk")
        .values_list("pk", Cast("payload", TextField()), "attempts")
    )
    batch = _Batch(token=token, ids=[], payloads=[], whole=True)
    for pk, payload, attempts in rows:
        batch.ids.append(pk)
        batch.payloads.append(RawEvent(payload))
        batch.attempts[pk] = attempts
    return batch if batch.ids else None


def _claim_postgresql(
    db: str, dataset_id: str, limit: int, now: datetime, token: str, lease_until: datetime
) -> int:
    """One statement. The locking subquery is a MATERIALIZED CTE: written as
    ``WHERE id IN (SELECT ... LIMIT n FOR UPDATE SKIP LOCKED)`` PostgreSQL may run the
    subquery more than once and claim more than ``limit`` rows."""
    quote = connections[db].ops.quote_name
    table = quote(Event._meta.db_table)
    pk = quote(str(Event._meta.pk.column))
    sql = f"""
        WITH due AS MATERIALIZED (
            SELECT {pk} FROM {table}
            WHERE status = %s AND dataset_id = %s AND next_attempt_at <= %s
            ORDER BY next_attempt_at
            LIMIT %s
            FOR UPDATE SKIP LOCKED
        )
        UPDATE {table} AS e
        SET status = %s, claim_token = %s, lease_expires_at = %s, attempts = e.attempts + 1,
            updated_at = %s
        FROM due WHERE e.{pk} = due.{pk}
    """  # noqa: S608  (identifiers come from the model, values are parameters)
    params: list[Any] = [EventStatus.PENDING.value, dataset_id, now, limit]
    params += [EventStatus.SENDING.value, token, lease_until, now]
    with transaction.atomic(using=db), connections[db].cursor() as cursor:
        cursor.execute(sql, params)
        return int(cursor.rowcount)


def _claim_portable(
    db: str, dataset_id: str, limit: int, now: datetime, token: str, lease_until: datetime
) -> int:
    """Select the due ids, then claim those still pending. Where rows cannot be locked
    (SQLite serializes writers instead), the status condition makes a row another worker
    took first simply not updated."""
    with transaction.atomic(using=db):
        due = Event.objects.using(db).due(dataset_id, now)
        if connections[db].features.has_select_for_update_skip_locked:
            due = due.select_for_update(skip_locked=True)
        ids = list(due.values_list("pk", flat=True)[:limit])
        if not ids:
            return 0
        return int(
            Event.objects.using(db)
            .filter(pk__in=ids, status=EventStatus.PENDING)
            .update(
                status=EventStatus.SENDING,
                claim_token=token,
                lease_expires_at=lease_until,
                attempts=F("attempts") + 1,
                updated_at=now,
            )
        )


def reclaim_expired_leases(now: datetime | None = None) -> int:
    """Put events whose worker died mid-send (lease expired) back to pending. Returns the count."""
    now = now or timezone.now()
    count: int = (
        _events()
        .filter(status=EventStatus.SENDING, lease_expires_at__lt=now)
        .update(
            status=EventStatus.PENDING,
            claim_token="",
            lease_expires_at=None,
            next_attempt_at=now,
            updated_at=now,
        )
    )
    if count:
        logger.warning("django_capi: %d events had an expired lease and will be sent again", count)
    return count


def expire_stale_events(dataset_id: str | None = None, now: datetime | None = None) -> int:
    """Mark pending events older than Meta accepts as expired. Returns the count."""
    now = now or timezone.now()
    total = 0
    store = ActionSource.PHYSICAL_STORE
    for sources, limit in (
        (~Q(action_source=store), event_age_limit("website")),
        (Q(action_source=store), event_age_limit(store)),
    ):
        stale = _events().filter(
            sources, status=EventStatus.PENDING, event_time__lt=now - limit + EXPIRY_MARGIN
        )
        if dataset_id is not None:
            stale = stale.filter(dataset_id=dataset_id)
        by_dataset: dict[str, list[int]] = defaultdict(list)
        for pk, ds in stale.values_list("pk", "dataset_id"):
            by_dataset[ds].append(pk)
        days = limit.days
        for ds, ids in by_dataset.items():
            reason = f"event_time: older than Meta accepts ({days} days) before it could be sent"
            count = (
                _events()
                .filter(pk__in=ids, status=EventStatus.PENDING)
                .update(status=EventStatus.EXPIRED, last_error_message=reason, updated_at=now)
            )
            total += count
            logger.warning("django_capi: %d events of dataset %s expired unsent", count, ds)
            signals.event_failed.send(
                sender=Event, dataset_id=ds, event_ids=ids, reason=reason, attempt=None
            )
    return total


# --- sending -------------------------------------------------------------------------------


class _Run:
    """One delivery run for one dataset."""

    def __init__(self, dataset_id: str, transport: BaseTransport) -> None:
        self.dataset_id = dataset_id
        self.config = conf.get_dataset(dataset_id) or conf.DatasetConfig(dataset_id=dataset_id)
        self.transport = transport
        self.report = DeliveryReport(dataset_id=dataset_id)
        self.split_budget = MAX_SPLIT_REQUESTS
        # False while the dataset may be throttled or paused (as read, or as this run made it).
        self.state_clean = True
        self.last_success: datetime | None = None

    def send(self, batch: _Batch) -> Outcome:
        """Send a claimed batch; split it on rejection. Returns the first request's outcome."""
        result = self.transport.send(self.config, batch.payloads)
        self.report.requests += 1
        attempt = _record_attempt(self.dataset_id, result, batch)
        outcome = result.outcome
        if outcome == Outcome.SUCCESS:
            self._sent(batch, result, attempt)
        elif outcome == Outcome.TRANSIENT:
            self._retry_later(batch, result)
        elif outcome == Outcome.THROTTLED:
            self._count_lost(batch, _release(batch))
            self._throttle(result)
        elif outcome == Outcome.AUTH:
            self._count_lost(batch, _release(batch))
            self._pause(result)
        elif len(batch.ids) == 1:
            self._failed(batch, result, attempt)
        else:
            self._split(batch)
        return outcome

    def _split(self, batch: _Batch) -> None:
        middle = len(batch.ids) // 2
        for half in (batch.ids[:middle], batch.ids[middle:]):
            part = batch.part(half)
            if self.report.stopped:
                self._count_lost(part, _release(part))
            elif self.split_budget <= 0:
                self._retry_later(
                    part, None, reason="batch rejected; the bad events are isolated on a later pass"
                )
            else:
                self.split_budget -= 1
                _renew_lease(part)
                self.send(part)

    def _sent(self, batch: _Batch, result: SendResult, attempt: DeliveryAttempt) -> None:
        now = timezone.now()
        count = _owned(batch).update(
            status=EventStatus.SENT,
            sent_at=now,
            claim_token="",
            lease_expires_at=None,
            last_error_code=None,
            last_error_subcode=None,
            last_error_message="",
            last_fbtrace_id="",
            updated_at=now,
        )
        self._count_lost(batch, count)
        self.report.sent += count
        self.last_success = now
        # The dataset's state row is touched only when a throttle or pause must be lifted:
        # writing it after every batch would make parallel workers queue on its row lock.
        if not self.state_clean:
            state = _state(self.dataset_id)
            if state.is_paused:
                self._resume(state, "a request succeeded")
            DatasetState.objects.using(_db()).filter(pk=state.pk).update(
                throttle_count=0, throttled_until=None, last_success_at=now
            )
            self.state_clean = True
        signals.event_sent.send(
            sender=Event, dataset_id=self.dataset_id, event_ids=batch.ids, attempt=attempt
        )

    def _failed(self, batch: _Batch, result: SendResult, attempt: DeliveryAttempt) -> None:
        reason = _describe(result)
        now = timezone.now()
        count = _owned(batch).update(
            status=EventStatus.FAILED,
            claim_token="",
            lease_expires_at=None,
            updated_at=now,
            **_error_fields(result, reason),
        )
        self._count_lost(batch, count)
        self.report.failed += count
        logger.error(
            "django_capi: Meta rejected %d event(s) of dataset %s: %s",
            count,
            self.dataset_id,
            reason,
        )
        signals.event_failed.send(
            sender=Event,
            dataset_id=self.dataset_id,
            event_ids=batch.ids,
            reason=reason,
            attempt=attempt,
        )

    def _retry_later(self, batch: _Batch, result: SendResult | None, reason: str = "") -> None:
        """Back off each event by its own attempt count; those out of attempts fail."""
        reason = reason or _describe(result)
        max_attempts = int(conf.get_setting("MAX_ATTEMPTS"))
        now = timezone.now()
        errors = _error_fields(result, reason)
        by_attempts: dict[int, list[int]] = defaultdict(list)
        for pk in batch.ids:
            by_attempts[batch.attempts[pk]].append(pk)
        exhausted: list[int] = []
        updated = 0
        for attempts, ids in sorted(by_attempts.items()):
            if attempts >= max_attempts:
                exhausted.extend(ids)
                continue
            count = _owned(batch, ids).update(
                status=EventStatus.PENDING,
                claim_token="",
                lease_expires_at=None,
                next_attempt_at=now + retry_delay(attempts),
                updated_at=now,
                **errors,
            )
            self.report.retried += count
            updated += count
        if exhausted:
            errors["last_error_message"] = f"gave up after {max_attempts} attempts: {reason}"
            count = _owned(batch, exhausted).update(
                status=EventStatus.FAILED,
                claim_token="",
                lease_expires_at=None,
                updated_at=now,
                **errors,
            )
            self.report.failed += count
            updated += count
            signals.event_failed.send(
                sender=Event,
                dataset_id=self.dataset_id,
                event_ids=exhausted,
                reason=errors["last_error_message"],
                attempt=None,
            )
        self._count_lost(batch, updated)
        if updated:
            logger.warning(
                "django_capi: sending %d event(s) of dataset %s failed for now (%s); "
                "retrying later",
                updated,
                self.dataset_id,
                reason,
            )

    def _throttle(self, result: SendResult) -> None:
        state = _state(self.dataset_id)
        count = state.throttle_count + 1
        delay = _jitter(
            min(
                float(conf.get_setting("THROTTLE_BASE_DELAY")) * 2 ** (count - 1),
                float(conf.get_setting("THROTTLE_MAX_DELAY")),
            )
        )
        until = timezone.now() + timedelta(seconds=delay)
        DatasetState.objects.using(_db()).filter(pk=state.pk).update(
            throttle_count=count, throttled_until=until
        )
        self.report.throttled = True
        self.state_clean = False
        logger.warning(
            "django_capi: dataset %s is throttled by Meta (%s); backing off %.0f s",
            self.dataset_id,
            _describe(result),
            delay,
        )

    def _pause(self, result: SendResult) -> None:
        state = _state(self.dataset_id)
        now = timezone.now()
        error = result.error
        reason = _describe(result)
        was_paused = state.is_paused
        DatasetState.objects.using(_db()).filter(pk=state.pk).update(
            paused_at=state.paused_at or now,
            pause_code=error.code if error else None,
            pause_subcode=error.subcode if error else None,
            pause_reason=reason,
            token_fingerprint=token_fingerprint(self.config.access_token),
            next_probe_at=now + timedelta(seconds=int(conf.get_setting("PAUSE_PROBE_INTERVAL"))),
        )
        self.report.paused = True
        self.state_clean = False
        if not was_paused:
            logger.error(
                "django_capi: delivery to dataset %s is paused: %s. Its events stay pending; "
                "replace the access token or grant the permission and delivery resumes by itself.",
                self.dataset_id,
                reason,
            )
            signals.dataset_paused.send(
                sender=Event,
                dataset_id=self.dataset_id,
                code=error.code if error else None,
                subcode=error.subcode if error else None,
                reason=reason,
            )

    def _resume(self, state: DatasetState, why: str) -> None:
        DatasetState.objects.using(_db()).filter(pk=state.pk).update(
            paused_at=None,
            pause_code=None,
            pause_subcode=None,
            pause_reason="",
            token_fingerprint="",
            next_probe_at=None,
        )
        state.paused_at = None
        self.report.resumed = True
        logger.warning("django_capi: delivery to dataset %s resumed (%s)", self.dataset_id, why)
        signals.dataset_resumed.send(sender=Event, dataset_id=self.dataset_id)

    def _count_lost(self, batch: _Batch, updated: int) -> None:
        lost = len(batch.ids) - updated
        if lost:
            self.report.lease_lost += lost
            logger.warning(
                "django_capi: %d event(s) of dataset %s were taken over by another worker "
                "(lease expired); their outcome here is not recorded",
                lost,
                self.dataset_id,
            )

    def may_send(self) -> bool:
        """Check throttling and pauses before the first request."""
        if not self.config.enabled:
            logger.info("django_capi: dataset %s is disabled; nothing sent", self.dataset_id)
            self.report.disabled = True
            return False
        state = DatasetState.objects.using(_db()).filter(dataset_id=self.dataset_id).first()
        if state is None:
            return True
        self.state_clean = not (state.throttle_count or state.throttled_until or state.is_paused)
        now = timezone.now()
        if state.is_paused:
            if token_fingerprint(self.config.access_token) != state.token_fingerprint:
                self._resume(state, "its access token was replaced")
            elif state.next_probe_at is None or now >= state.next_probe_at:
                logger.info("django_capi: probing paused dataset %s", self.dataset_id)
                return True  # one probe batch; AUTH again re-pauses it
            else:
                self.report.paused = True
                return False
        if state.throttled_until and now < state.throttled_until:
            self.report.throttled = True
            return False
        return True


def deliver_dataset(
    dataset_id: str,
    *,
    max_batches: int | None = None,
    time_budget: float | None = None,
    transport: BaseTransport | None = None,
) -> DeliveryReport:
    """Send the due events of one dataset, batch after batch, until none are due.

    Stops early after ``max_batches`` batches, after ``time_budget`` seconds, or when the
    dataset is throttled or paused.
    """
    run = _Run(str(dataset_id), transport or get_transport())
    if not run.may_send():
        return run.report
    run.report.expired = expire_stale_events(run.dataset_id)
    limit = max(1, min(int(conf.get_setting("BATCH_SIZE")), 1000))
    started = time.monotonic()
    batches = 0
    while not run.report.stopped:
        if max_batches is not None and batches >= max_batches:
            break
        if time_budget is not None and time.monotonic() - started >= time_budget:
            break
        batch = claim_batch(run.dataset_id, limit)
        if batch is None:
            break
        batches += 1
        run.split_budget = MAX_SPLIT_REQUESTS
        run.send(batch)
    if run.last_success is not None:
        state, _ = DatasetState.objects.using(_db()).update_or_create(
            dataset_id=run.dataset_id, defaults={"last_success_at": run.last_success}
        )
        # Another worker may have paused the dataset while this run's requests succeeded:
        # the token works, so lift that pause now rather than at the next probe.
        if state.paused_at is not None and state.paused_at < run.last_success:
            run._resume(state, "a request succeeded after the pause")
    return run.report


def due_datasets(now: datetime | None = None) -> list[str]:
    """Datasets that have events due now (disabled datasets left out)."""
    now = now or timezone.now()
    due = set(
        _events()
        .filter(status=EventStatus.PENDING, next_attempt_at__lte=now)
        .order_by()
        .values_list("dataset_id", flat=True)
        .distinct()
    )
    return sorted(due - disabled_datasets())


def disabled_datasets() -> set[str]:
    """Ids of the datasets staff disabled (in the admin, or ``ENABLED: False`` in settings)."""
    disabled = {d.dataset_id for d in conf.settings_datasets().values() if not d.enabled}
    rows = Dataset.objects.using(_db()).values_list("dataset_id", "enabled")
    for dataset_id, enabled in rows:
        if enabled:
            disabled.discard(dataset_id)
        else:
            disabled.add(dataset_id)
    return disabled


def has_backlog(dataset_id: str, batches: int = 1) -> bool:
    """True when more than ``batches`` full batches of the dataset are due."""
    size = max(1, int(conf.get_setting("BATCH_SIZE")))
    return bool(_events().due(dataset_id).order_by()[size * batches : size * batches + 1].exists())


def deliver_all(
    *, max_batches: int | None = None, time_budget: float | None = None
) -> list[DeliveryReport]:
    """Reclaim expired leases, then deliver every dataset with due events, one after another."""
    reclaim_expired_leases()
    expire_stale_events()
    return [
        deliver_dataset(dataset_id, max_batches=max_batches, time_budget=time_budget)
        for dataset_id in due_datasets()
    ]


# --- recording -----------------------------------------------------------------------------


def retry_delay(attempts: int) -> timedelta:
    """Exponential back-off with jitter after the given number of attempts."""
    base = float(conf.get_setting("RETRY_BASE_DELAY"))
    cap = float(conf.get_setting("RETRY_MAX_DELAY"))
    return timedelta(seconds=_jitter(min(cap, base * 2 ** max(0, attempts - 1))))


def _jitter(seconds: float) -> float:
    """Between half and all of ``seconds``, so retries of many events do not line up."""
    return seconds / 2 + random.uniform(0, seconds / 2)  # noqa: S311  (not for security)


def _claimed_by(events: Any, token: str) -> Any:
    """Rows carrying a claim token. The partial index's own condition is repeated: without it
    PostgreSQL cannot tell that ``claim_token = 'x'`` implies ``NOT claim_token = ''`` and
    scans the whole table instead of ``capi_event_claim_idx``."""
    return events.filter(~Q(claim_token=""), claim_token=token)


def _owned(batch: _Batch, ids: Iterable[int] | None = None) -> Any:
    """The batch's rows (or some of them) still held by this worker's claim."""
    owned = _claimed_by(_events(), batch.token).filter(status=EventStatus.SENDING)
    if ids is None and batch.whole:
        return owned
    return owned.filter(pk__in=list(batch.ids if ids is None else ids))


def _release(batch: _Batch) -> int:
    """Give claimed events back untried (throttling, pauses): the attempt does not count."""
    now = timezone.now()
    return _owned(batch).update(  # type: ignore[no-any-return]
        status=EventStatus.PENDING,
        claim_token="",
        lease_expires_at=None,
        attempts=F("attempts") - 1,
        updated_at=now,
    )


def _renew_lease(batch: _Batch) -> None:
    lease_until = timezone.now() + timedelta(seconds=int(conf.get_setting("LEASE_SECONDS")))
    _owned(batch).update(lease_expires_at=lease_until)


def _state(dataset_id: str) -> DatasetState:
    state, _ = DatasetState.objects.using(_db()).get_or_create(dataset_id=dataset_id)
    return state


def _describe(result: SendResult | None) -> str:
    if result is None:
        return ""
    error = result.error
    if error is not None:
        code = f"{error.code}" + (f"/{error.subcode}" if error.subcode else "")
        text = error.user_msg or error.user_title or error.message
        if error.user_title and error.user_msg:
            text = f"{error.user_title}: {error.user_msg}"
        return f"[{code}] {text}".strip()
    if result.network_error:
        return result.network_error
    return f"HTTP {result.http_status}" if result.http_status else result.outcome.value


def _error_fields(result: SendResult | None, message: str) -> dict[str, Any]:
    error = result.error if result else None
    return {
        "last_error_code": error.code if error else None,
        "last_error_subcode": error.subcode if error else None,
        "last_error_message": message,
        "last_fbtrace_id": (
            (error.fbtrace_id if error else "") or (result.fbtrace_id if result else "")
        )[:64],
    }


def _record_attempt(dataset_id: str, result: SendResult, batch: _Batch) -> DeliveryAttempt:
    attempt = record_attempt(dataset_id, result)
    _link_events(attempt, batch, _db())
    return attempt


def record_attempt(dataset_id: str, result: SendResult) -> DeliveryAttempt:
    """Append the attempt record of one request (what Meta answered, never what was sent)."""
    error = result.error
    db = _db()
    return DeliveryAttempt.objects.using(db).create(
        dataset_id=dataset_id,
        started_at=timezone.now() - timedelta(milliseconds=result.duration_ms),
        duration_ms=result.duration_ms,
        outcome=result.outcome.value,
        http_status=result.http_status,
        events_sent=result.events_sent,
        events_received=result.events_received,
        error_code=error.code if error else None,
        error_subcode=error.subcode if error else None,
        error_type=(error.type if error else "")[:100],
        error_message=(error.message if error else result.network_error),
        error_user_title=(error.user_title if error else "")[:255],
        error_user_msg=error.user_msg if error else "",
        is_transient=error.is_transient if error else None,
        fbtrace_id=((error.fbtrace_id if error else "") or result.fbtrace_id)[:64],
        messages=result.messages,
    )


def _link_events(attempt: DeliveryAttempt, batch: _Batch, db: str) -> None:
    """Add the batch's events to the attempt's log (one INSERT ... SELECT for a whole claim)."""
    through = DeliveryAttempt.events.through
    if not batch.whole:
        through.objects.using(db).bulk_create(
            [through(deliveryattempt_id=attempt.pk, event_id=pk) for pk in batch.ids]
        )
        return
    connection = connections[db]
    quote = connection.ops.quote_name
    # Identifiers come from the models, values are parameters.
    sql = (
        f"INSERT INTO {quote(through._meta.db_table)} "  # noqa: S608
        f"({quote(through._meta.get_field('deliveryattempt').column)}, "
        f"{quote(through._meta.get_field('event').column)}) "
        f"SELECT %s, {quote(str(Event._meta.pk.column))} FROM {quote(Event._meta.db_table)} "
        f"WHERE {quote('claim_token')} = %s AND NOT ({quote('claim_token')} = '') "
        f"AND {quote('status')} = %s"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [attempt.pk, batch.token, EventStatus.SENDING.value])
