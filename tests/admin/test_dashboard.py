"""The dashboard's numbers on a known data set, its page, its permissions and its cost."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from django_capi import housekeeping
from django_capi.dashboard import queries
from django_capi.dashboard.advice import MATCH_KEYS, estimate_match_quality, quality_label
from django_capi.dashboard.chart import Series, nice_ceiling, render_bar_chart
from django_capi.models import DatasetState
from tests.admin.factories import ALL_KEYS, make_event
from tests.conftest import OTHER_PIXEL, PIXEL

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("locmem_capi")]

DASHBOARD = "admin:django_capi_event_dashboard"
H = timedelta(hours=1)


@pytest.fixture
def known():
    """A small shop's week, with one lagging and one paused dataset."""
    now = timezone.now()
    make_event("Purchase", status="sent", age=1 * H, keys=ALL_KEYS)
    make_event("Purchase", status="sent", age=2 * H, keys=("em",))
    make_event(
        "Purchase",
        status="failed",
        age=3 * H,
        last_error_code=100,
        last_error_subcode=2804016,
        last_error_message="[100/2804016] User Parameter Not Hashed: em",
    )
    make_event("Purchase", status="sent", age=30 * H, keys=("em",))
    make_event("Lead", status="pending", age=timedelta(minutes=10))
    make_event(
        "Lead",
        status="expired",
        age=3 * H,
        last_error_message="event_time: older than Meta accepts (7 days) before it could be sent",
    )
    make_event("Lead", status="sent", age=48 * H)
    make_event("Lead", status="sent", age=49 * H)
    make_event(
        "Purchase",
        status="failed",
        dataset_id=OTHER_PIXEL,
        age=5 * H,
        last_error_code=190,
        last_error_message="[190] Error validating access token",
    )
    make_event("Lead", status="discarded", dataset_id=OTHER_PIXEL, age=1 * H)
    make_event("Purchase", status="sent", age=timedelta(days=10))  # outside every window
    # The pending Lead has been due for 20 minutes (limit: 15) and nothing sent it.
    from django_capi.models import Event

    Event.objects.filter(status="pending").update(next_attempt_at=now - timedelta(minutes=20))
    DatasetState.objects.create(
        dataset_id=OTHER_PIXEL,
        paused_at=now - 2 * H,
        pause_code=190,
        pause_reason="[190] Error validating access token",
    )
    return now


def test_counts_by_status_per_dataset_and_event_name(known):
    summary = housekeeping.status_summary(now=known)
    rows = {(r.dataset_id, r.event_name): r.counts for r in summary.counts}
    zero = dict.fromkeys(queries.STATUSES, 0)
    assert rows[(PIXEL, "Purchase")]["24h"] == {**zero, "sent": 2, "failed": 1}
    assert rows[(PIXEL, "Purchase")]["7d"] == {**zero, "sent": 3, "failed": 1}
    assert rows[(PIXEL, "Lead")]["24h"] == {**zero, "pending": 1, "expired": 1}
    assert rows[(PIXEL, "Lead")]["7d"] == {**zero, "pending": 1, "expired": 1, "sent": 2}
    assert rows[(OTHER_PIXEL, "Purchase")]["24h"] == {**zero, "failed": 1}
    assert rows[(OTHER_PIXEL, "Lead")]["7d"] == {**zero, "discarded": 1}
    assert summary.totals("24h") == {
        **zero,
        "sent": 2,
        "failed": 2,
        "pending": 1,
        "expired": 1,
        "discarded": 1,
    }
    assert sum(summary.totals("7d").values()) == 10  # the 10-day-old event is left out


def test_top_errors_group_by_code_and_say_what_to_do(known):
    errors = queries.top_errors(known - timedelta(hours=24))
    by_label = {e.label or e.message: e for e in errors}
    assert set(by_label) == {
        "100/2804016 User parameter not hashed",
        "190 Invalid or expired access token",
        "event_time: older than Meta accepts (7 days) before it could be sent",
    }
    assert all(e.events == 1 for e in errors)
    assert (
        "generate a new one in Events Manager"
        in by_label["190 Invalid or expired access token"].advice
    )
    expired = by_label["event_time: older than Meta accepts (7 days) before it could be sent"]
    assert "age limit" in expired.advice


def test_match_key_coverage_and_estimated_score(known):
    coverage = {c.event_name: c for c in queries.match_key_coverage(known)}
    purchase = coverage["Purchase"]
    # 24 h: the four Purchases: all keys; em; em + IP + UA (twice).
    assert purchase.totals["24h"] == 4
    assert purchase.shares("24h") == {
        "em": 1.0,
        "ph": 0.25,
        "name": 0.25,
        "external_id": 0.25,
        "ip_ua": 0.75,
        "fbp": 0.25,
        "fbc": 0.25,
    }
    # 3*1 + 2*.25 + .5*.25 + 1*.25 + 1.5*.75 + 1*.25 + 1*.25
    assert purchase.score("24h") == 5.5
    assert purchase.quality("24h") == "OK"
    assert [key.name for key, _gain in purchase.gains("24h")] == ["ph", "external_id", "fbp"]
    # Discarded events are not counted: the two 24 h Leads carry em + IP + UA.
    assert coverage["Lead"].totals["24h"] == 2
    assert coverage["Lead"].score("24h") == 4.5
    assert coverage["Purchase"].totals["7d"] == 5


def test_health_lagging_and_paused(known):
    summary = housekeeping.status_summary(now=known)
    states = {d.dataset_id: d for d in summary.datasets}
    assert states[PIXEL].state == "lagging"
    assert states[PIXEL].waiting == timedelta(minutes=20)
    assert states[OTHER_PIXEL].state == "paused"
    assert "Delivery resumes by itself" in states[OTHER_PIXEL].advice
    assert summary.exit_code == housekeeping.EXIT_LAGGING | housekeeping.EXIT_PAUSED == 6
    relaxed = housekeeping.status_summary(now=known, max_pending_age=timedelta(hours=1))
    assert relaxed.exit_code == housekeeping.EXIT_PAUSED
    DatasetState.objects.all().delete()
    assert housekeeping.status_summary(now=known, max_pending_age=H).healthy


def test_chart_series_put_events_in_their_hour(known):
    day = queries.sent_failed_series("24h", known)
    assert len(day) == 24
    assert sum(b.sent for b in day) == 2 and sum(b.failed for b in day) == 3
    assert day[-1].start <= known < day[-1].end
    hour_ago = next(b for b in day if b.start <= known - H < b.end)
    assert hour_ago.sent >= 1
    week = queries.sent_failed_series("7d", known)
    assert len(week) == 28
    assert week[1].start - week[0].start == timedelta(hours=6)
    assert sum(b.sent for b in week) == 5 and sum(b.failed for b in week) == 3


def test_dashboard_page_shows_it_all(admin_client, known):
    response = admin_client.get(reverse(DASHBOARD))
    assert response.status_code == 200
    html = response.content.decode()
    assert '<svg class="capi-chart"' in html
    assert html.count('data-series="sent"') == 24
    assert 'data-series="failed" data-value="1"' in html
    assert 'id="capi-health" data-healthy="0"' in html
    assert "Dataset 6543210987654321 is paused" in html
    assert "has events due for 20 min" in html
    assert 'data-state="lagging"' in html and 'data-state="paused"' in html
    assert "100/2804016 User parameter not hashed" in html
    assert 'data-score="5.5"' in html
    assert "Meta&#x27;s advice" in html or "Meta's advice" in html
    assert "20 min" in html  # the oldest due event's wait
    # Counts link to the matching events.
    assert "status__exact=failed" in html and "recorded=24h" in html
    week = admin_client.get(reverse(DASHBOARD), {"window": "7d"})
    assert week.context["window"] == "7d"
    assert week.content.decode().count('data-series="sent"') == 28


def test_dashboard_is_linked_from_the_app_index(admin_client, viewer_client):
    index = reverse("admin:app_list", args=["django_capi"])
    assert reverse(DASHBOARD) in admin_client.get(index).content.decode()
    assert reverse(DASHBOARD) in viewer_client.get(index).content.decode()


def test_dashboard_permissions(client, viewer, stranger, known):
    url = reverse(DASHBOARD)
    anonymous = client.get(url)
    assert anonymous.status_code == 302 and "/login/" in anonymous["Location"]
    client.force_login(viewer)
    assert client.get(url).status_code == 200
    client.force_login(stranger)
    assert client.get(url).status_code == 403


def test_dashboard_costs_the_same_queries_for_few_or_many_events(admin_client):
    def cost(n: int) -> int:
        for i in range(n):
            make_event(
                ["Purchase", "Lead", "ViewContent"][i % 3],
                status=["sent", "failed", "pending"][i % 3],
                dataset_id=[PIXEL, OTHER_PIXEL][i % 2],
                age=timedelta(hours=i % 100),
                last_error_code=[None, 190, 100][i % 3],
            )
        with CaptureQueriesContext(connection) as captured:
            assert admin_client.get(reverse(DASHBOARD)).status_code == 200
        return len(captured)

    assert cost(5) == cost(60)


def test_empty_dashboard(admin_client):
    response = admin_client.get(reverse(DASHBOARD))
    assert response.status_code == 200
    html = response.content.decode()
    assert "No events were recorded in this window." in html
    assert "Delivery is healthy." in html


def test_estimate_formula_and_labels():
    assert sum(key.weight for key in MATCH_KEYS) == 10
    assert estimate_match_quality(dict.fromkeys([k.name for k in MATCH_KEYS], 1.0)) == 10
    assert estimate_match_quality({}) == 0
    assert estimate_match_quality({"em": 1.0, "ip_ua": 1.0}) == 4.5
    assert [quality_label(s) for s in (0, 3.9, 4, 5.9, 6, 7.9, 8, 10)] == [
        "Poor",
        "Poor",
        "OK",
        "OK",
        "Good",
        "Good",
        "Great",
        "Great",
    ]


def test_chart_escapes_labels_and_scales():
    now = timezone.now()
    svg = render_bar_chart(
        [now, now + H],
        {"a": [3, 0], "b": [7, 1]},
        [Series("a", "<a>", "#000"), Series("b", "b", "#fff")],
        title="<t>",
    )
    assert "<t>" not in svg and "&lt;t&gt;" in svg and "&lt;a&gt;" in svg
    assert svg.count("<rect class=") == 4
    assert [nice_ceiling(v) for v in (0, 4, 5, 7, 11, 23, 99, 101, 240)] == [
        4,
        4,
        5,
        10,
        20,
        25,
        100,
        200,
        250,
    ]
