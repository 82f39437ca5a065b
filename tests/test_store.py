"""The event store's schema: migrations, constraints, indexes, the append-only attempt log."""

from __future__ import annotations

from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import call_command
from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from django_capi.models import DeliveryAttempt, Event, EventStatus

pytestmark = pytest.mark.django_db


def make_event(n: int, *, status: str = EventStatus.PENDING, dataset: str = "1", **extra) -> Event:
    return Event(
        dataset_id=dataset,
        event_name="Purchase",
        event_id=f"e{n}",
        event_time=timezone.now(),
        action_source="website",
        payload={"event_name": "Purchase", "event_id": f"e{n}"},
        status=status,
        **extra,
    )


def test_migrations_match_the_models():
    out = StringIO()
    call_command("makemigrations", "django_capi", "--check", "--dry-run", stdout=out)
    assert "No changes detected" in out.getvalue()


def test_dedup_key_is_a_database_constraint():
    make_event(1).save()
    with pytest.raises(IntegrityError), transaction.atomic():
        Event.objects.bulk_create([make_event(1)])


def test_due_returns_only_pending_events_of_one_dataset_whose_time_has_come():
    now = timezone.now()
    due = make_event(1, next_attempt_at=now - timedelta(seconds=1))
    later = make_event(2, next_attempt_at=now + timedelta(minutes=5))
    sent = make_event(3, status=EventStatus.SENT, next_attempt_at=now - timedelta(hours=1))
    other = make_event(4, dataset="2", next_attempt_at=now - timedelta(hours=1))
    Event.objects.bulk_create([due, later, sent, other])
    assert [e.event_id for e in Event.objects.due("1", now)] == ["e1"]


def test_next_due_batch_is_an_index_scan_however_many_sent_rows_pile_up():
    now = timezone.now()
    Event.objects.bulk_create(
        [make_event(n, status=EventStatus.SENT) for n in range(20_000)], batch_size=2_000
    )
    Event.objects.bulk_create([make_event(100_000 + n) for n in range(50)])
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("ANALYZE django_capi_event")
        elif connection.vendor == "sqlite":
            cursor.execute("ANALYZE")
    query = Event.objects.due("1", now)[:1000]
    plan = query.explain()
    assert "capi_event_due_idx" in plan, plan


def test_delivery_attempts_are_append_only_and_link_to_events():
    event = make_event(1)
    event.save()
    attempt = DeliveryAttempt.objects.create(
        dataset_id="1",
        outcome=DeliveryAttempt.Outcome.SUCCESS,
        http_status=200,
        events_sent=1,
        events_received=1,
        fbtrace_id="AbC",
    )
    attempt.events.add(event)
    assert list(event.delivery_attempts.all()) == [attempt]
    attempt.outcome = DeliveryAttempt.Outcome.REJECTED
    with pytest.raises(ValueError, match="append-only"):
        attempt.save()


def test_deleting_an_event_removes_its_attempt_links():
    event = make_event(1)
    event.save()
    attempt = DeliveryAttempt.objects.create(dataset_id="1", outcome="success")
    attempt.events.add(event)
    event.delete()
    assert attempt.events.count() == 0
