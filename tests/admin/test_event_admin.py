"""The event admin through Django's test client: list, search, filters, detail, cost."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils.html import escape

from django_capi.admin import CappedCountPaginator
from django_capi.models import Event
from tests.admin.factories import make_attempt, make_event
from tests.conftest import OTHER_PIXEL, PIXEL
from tests.testapp.models import Order

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("locmem_capi")]

CHANGELIST = "admin:django_capi_event_changelist"


def change_url(event: Event) -> str:
    return reverse("admin:django_capi_event_change", args=[event.pk])


def listed_ids(response) -> list[str]:
    return [obj.event_id for obj in response.context["cl"].result_list]


def test_list_shows_name_dataset_badge_attempts_age_error_and_source(admin_client):
    order = Order.objects.create(reference="ORD-1001")
    make_event("Purchase", status="sent", source=order, order_id="ORD-1001", attempts=1)
    make_event(
        "Lead",
        status="failed",
        dataset_id=OTHER_PIXEL,
        attempts=3,
        age=timedelta(hours=5),
        last_error_code=100,
        last_error_subcode=2804016,
        last_error_message="[100/2804016] User Parameter Not Hashed: em must be hashed",
    )
    response = admin_client.get(reverse(CHANGELIST))
    assert response.status_code == 200
    html = response.content.decode()
    assert "capi-badge" in html and ">Sent<" in html and ">Failed<" in html
    assert "Main shop (1234567890123456)" in html  # the dataset's label from the settings
    assert "Outlet (6543210987654321)" in html
    assert "[100/2804016] User Parameter Not Hashed: em must be hashed" in html
    assert "5 h" in html  # the age column
    order_url = reverse("admin:testapp_order_change", args=[order.pk])
    assert f'<a href="{order_url}">Order #{order.pk} (ORD-1001)</a>' in html
    # No add button, and the dashboard is linked from the list.
    assert reverse("admin:django_capi_event_add") not in html
    assert reverse("admin:django_capi_event_dashboard") in html


def test_a_page_costs_the_same_queries_for_5_or_50_events_across_many_sources(admin_client):
    def page_queries(n: int) -> int:
        Event.objects.all().delete()
        for i in range(n):
            order = Order.objects.create(reference=f"R-{n}-{i}")
            make_event(
                "Purchase" if i % 2 else "Lead",
                status=["pending", "sent", "failed"][i % 3],
                dataset_id=[PIXEL, OTHER_PIXEL][i % 2],
                source=order,
                order_id=order.reference,
                last_error_code=190 if i % 3 == 2 else None,
            )
        admin_client.get(reverse(CHANGELIST))  # warm caches (content types, session)
        with CaptureQueriesContext(connection) as queries:
            response = admin_client.get(reverse(CHANGELIST))
        assert response.status_code == 200
        assert len(response.context["cl"].result_list) == n
        return len(queries)

    assert page_queries(5) == page_queries(50)


def test_the_list_never_counts_or_sorts_the_whole_table(admin_client):
    make_event()
    with CaptureQueriesContext(connection) as queries:
        response = admin_client.get(reverse(CHANGELIST))
    sql = [q["sql"].upper() for q in queries.captured_queries]
    counts = [s for s in sql if "COUNT(" in s]
    assert counts and all("LIMIT" in s for s in counts)  # the capped count only
    assert not any("SELECT DISTINCT" in s and "LIMIT" not in s for s in sql)
    assert response.context["cl"].model_admin.show_full_result_count is False
    assert response.context["cl"].date_hierarchy is None


def test_capped_count_says_more_than(monkeypatch, admin_client):
    monkeypatch.setattr(CappedCountPaginator, "cap", 3)
    for _ in range(5):
        make_event()
    response = admin_client.get(reverse(CHANGELIST))
    html = response.content.decode()
    assert response.context["cl"].paginator.capped
    assert "More than 3 events" in html
    assert len(listed_ids(response)) == 5  # everything still listed


@pytest.mark.parametrize("field", ["event_id", "fbtrace", "order_ref", "source_pk"])
def test_search_is_exact_on_event_id_fbtrace_order_reference_and_source(admin_client, field):
    order = Order.objects.create(reference="ORD-77")
    target = make_event(
        event_id="order-secret-id",
        last_fbtrace_id="AbCdEfTrace",
        order_id="ORD-77",
        source=order,
    )
    make_event(event_id="other-1", order_id="ORD-78")
    make_event(event_id="order-secret-id-2")
    term = {
        "event_id": "order-secret-id",
        "fbtrace": "AbCdEfTrace",
        "order_ref": "ORD-77",
        "source_pk": str(order.pk),
    }[field]
    response = admin_client.get(reverse(CHANGELIST), {"q": term})
    assert listed_ids(response) == [target.event_id]


def test_filters_dataset_event_name_error_code_recorded_and_attempt(admin_client):
    a = make_event("Purchase", status="failed", last_error_code=190, last_error_message="x")
    b = make_event(
        "Lead",
        dataset_id=OTHER_PIXEL,
        status="failed",
        last_error_code=100,
        last_error_subcode=2804003,
        last_error_message="[100/2804003] too old",
    )
    c = make_event("Lead", status="expired", age=timedelta(days=3), last_error_message="too old")
    attempt = make_attempt([a, b])
    url = reverse(CHANGELIST)

    def ids(**params):
        response = admin_client.get(url, params)
        assert response.status_code == 200, params
        return sorted(listed_ids(response))

    assert ids(dataset=OTHER_PIXEL) == [b.event_id]
    assert ids(event="Lead") == sorted([b.event_id, c.event_id])
    assert ids(error="190") == [a.event_id]
    assert ids(error="100/2804003") == [b.event_id]
    assert ids(error="100") == [b.event_id]
    assert ids(error="none") == [c.event_id]
    assert ids(recorded="24h") == sorted([a.event_id, b.event_id])
    assert ids(attempt=str(attempt.pk)) == sorted([a.event_id, b.event_id])
    assert ids(status__exact="expired") == [c.event_id]
    assert ids(action_source__exact="website") == sorted([a.event_id, b.event_id, c.event_id])

    html = admin_client.get(url).content.decode()
    # Choices come from the data and the settings (labels of the error codes too).
    assert "190 Invalid or expired access token" in html
    assert "100/2804003 Event timestamp too old" in html
    assert "Outlet (6543210987654321)" in html
    # Undeclared lookups from the URL are refused (no arbitrary unindexed filtering).
    assert admin_client.get(url, {"payload__contains": "x"}).status_code == 400
    assert admin_client.get(url, {"error": "nonsense"}).status_code == 302  # ?e=1


def test_detail_shows_payload_as_sent_attempt_log_validation_and_warnings(admin_client):
    order = Order.objects.create(reference="ORD-5")
    event = make_event(
        "Purchase",
        status="failed",
        source=order,
        order_id="<script>alert(1)</script>",
        validation_errors=[
            {"field": "custom_data.value", "rule": "Purchase events need a value"},
        ],
        warnings=[{"field": "ph", "rule": "not a phone number; dropped"}],
        last_error_message="custom_data.value: Purchase events need a value",
    )
    make_attempt(
        [event],
        outcome="rejected",
        http_status=400,
        error_code=100,
        error_subcode=2804019,
        error_user_title="Server Side Api Parameter Error",
        error_user_msg="The event at index 0 is invalid",
        fbtrace_id="TRACE123",
    )
    response = admin_client.get(change_url(event))
    assert response.status_code == 200
    html = response.content.decode()
    # The payload as stored (and so as sent), pretty-printed and escaped.
    event.refresh_from_db()
    pretty = json.dumps(event.payload, indent=2, ensure_ascii=False)
    assert escape(pretty) in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "<script>alert(1)</script>" not in html
    # Validation reason and normalization warnings.
    assert "<code>custom_data.value</code>: Purchase events need a value" in html
    assert "<code>ph</code>: not a phone number; dropped" in html
    # The attempt log, read-only.
    assert "[100/2804019] Server Side Api Parameter Error: The event at index 0 is invalid" in html
    assert "TRACE123" in html
    assert 'name="_save"' not in html
    assert "Retry now" in html  # superusers get the action buttons


def test_no_add_no_edit_no_delete_even_for_superusers(admin_client):
    event = make_event()
    assert admin_client.get(reverse("admin:django_capi_event_add")).status_code == 403
    assert admin_client.post(change_url(event), {"status": "sent"}).status_code == 403
    delete = reverse("admin:django_capi_event_delete", args=[event.pk])
    assert admin_client.post(delete, {"post": "yes"}).status_code == 403
    event.refresh_from_db()
    assert event.status == "pending"


def test_attempt_admin_lists_and_links_back_to_its_events(admin_client):
    event = make_event()
    attempt = make_attempt(
        [event], outcome="auth", error_code=190, error_message="Invalid token", fbtrace_id="T9"
    )
    response = admin_client.get(reverse("admin:django_capi_deliveryattempt_changelist"))
    assert response.status_code == 200
    assert "Authorization problem" in response.content.decode()
    detail = admin_client.get(
        reverse("admin:django_capi_deliveryattempt_change", args=[attempt.pk])
    ).content.decode()
    assert f"?attempt={attempt.pk}" in detail and "1 event" in detail
    assert admin_client.get(reverse("admin:django_capi_deliveryattempt_add")).status_code == 403


def test_dataset_state_admin_says_what_to_do(admin_client):
    from django.utils import timezone

    from django_capi.models import DatasetState

    DatasetState.objects.create(
        dataset_id=PIXEL, paused_at=timezone.now(), pause_code=190, pause_reason="[190] expired"
    )
    html = admin_client.get(reverse("admin:django_capi_datasetstate_changelist")).content.decode()
    assert "paused" in html and "[190] expired" in html
    assert "generate a new one in Events Manager" in html
    assert "Delivery resumes by itself" in html
