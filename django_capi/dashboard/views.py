"""The delivery dashboard: an admin page served by :class:`django_capi.admin.EventAdmin`."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

from django.core.exceptions import PermissionDenied
from django.http import HttpRequest
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _

from django_capi import housekeeping
from django_capi.dashboard import queries
from django_capi.dashboard.advice import MATCH_KEYS
from django_capi.dashboard.chart import Series, render_bar_chart
from django_capi.dashboard.formatting import STATUS_COLORS, format_duration, percent
from django_capi.models import Event, EventStatus

if TYPE_CHECKING:
    from django.contrib.admin import ModelAdmin

__all__ = ["WINDOW_LABELS", "dashboard_context", "dashboard_view"]

WINDOW_LABELS: dict[str, str] = {"24h": "Last 24 hours", "7d": "Last 7 days"}

TEMPLATE = "admin/django_capi/dashboard.html"


def dashboard_view(request: HttpRequest, model_admin: ModelAdmin[Any]) -> TemplateResponse:
    """Render the dashboard for staff who may view events (403 for everyone else)."""
    if not model_admin.has_view_permission(request):
        raise PermissionDenied
    window = request.GET.get("window", "24h")
    if window not in queries.WINDOWS:
        window = "24h"
    context = {
        **model_admin.admin_site.each_context(request),
        **dashboard_context(window, changelist_url=_changelist_url(model_admin)),
        "title": _("Conversions API delivery"),
        "opts": Event._meta,
        "app_label": Event._meta.app_label,
    }
    request.current_app = model_admin.admin_site.name
    return TemplateResponse(request, TEMPLATE, context)


def _changelist_url(model_admin: ModelAdmin[Any]) -> str:
    opts = Event._meta
    return reverse(
        f"{model_admin.admin_site.name}:{opts.app_label}_{opts.model_name}_changelist",
        current_app=model_admin.admin_site.name,
    )


def dashboard_context(window: str, *, changelist_url: str) -> dict[str, Any]:
    """Everything the dashboard template shows for one window, ready to print."""
    now = timezone.now()
    summary = housekeeping.status_summary(now=now, coverage_windows=[window])

    def link(**params: str) -> str:
        return f"{changelist_url}?{urlencode(params)}"

    statuses: list[dict[str, str]] = [
        {"value": str(value), "label": str(label), "color": STATUS_COLORS[value]}
        for value, label in EventStatus.choices
    ]
    cards = []
    for name, label in WINDOW_LABELS.items():
        totals = summary.totals(name)
        total = sum(totals.values())
        failed = totals["failed"] + totals["expired"]
        finished = totals["sent"] + failed
        cards.append(
            {
                "window": name,
                "label": label,
                "total": total,
                "sent": totals["sent"],
                "failed": failed,
                "waiting": totals["pending"] + totals["sending"],
                "sent_rate": percent(totals["sent"], finished) if finished else None,
            }
        )
    return {
        "now": now,
        "window": window,
        "window_label": WINDOW_LABELS[window],
        "windows": [
            {"value": k, "label": v, "active": k == window} for k, v in WINDOW_LABELS.items()
        ],
        "summary": summary,
        "cards": cards,
        "statuses": statuses,
        "longest_wait": format_duration(summary.longest_wait),
        "oldest_pending": (
            format_duration(now - summary.oldest_pending_created_at)
            if summary.oldest_pending_created_at
            else None
        ),
        "max_pending_age": format_duration(summary.max_pending_age),
        "datasets": _datasets(summary, now, link),
        "count_groups": _count_groups(
            summary.counts,
            window,
            statuses,
            link,
            labels={d.dataset_id: d.label for d in summary.datasets},
        ),
        "chart": _chart(window, now),
        "errors": _errors(summary.errors[window], window, link),
        "coverage": _coverage(summary.coverage, window),
        "match_keys": MATCH_KEYS,
        "advice": _advice(summary.coverage, window),
    }


def _datasets(summary: housekeeping.StatusSummary, now: Any, link: Any) -> list[dict[str, Any]]:
    rows = []
    for d in summary.datasets:
        pending = d.pending
        rows.append(
            {
                "health": d,
                "state": d.state,
                "pending": pending.pending if pending else 0,
                "sending": pending.sending if pending else 0,
                "due": pending.due if pending else 0,
                "waiting": format_duration(d.waiting) if d.waiting else "",
                "last_success": (
                    format_duration(now - d.last_success_at) if d.last_success_at else ""
                ),
                "throttled_for": (
                    format_duration(d.throttled_until - now) if d.throttled_until else ""
                ),
                "pending_url": link(dataset=d.dataset_id, status__exact="pending"),
            }
        )
    return rows


def _count_groups(
    counts: list[queries.CountRow],
    window: str,
    statuses: list[dict[str, str]],
    link: Any,
    labels: dict[str, str],
) -> list[dict[str, Any]]:
    """Rows per dataset, each with its event names and a total row."""
    groups: dict[str, dict[str, Any]] = {}
    for row in counts:
        values = row.counts.get(window, {})
        total = sum(values.values())
        if not total:
            continue
        group = groups.setdefault(
            row.dataset_id,
            {
                "dataset_id": row.dataset_id,
                "label": labels.get(row.dataset_id, ""),
                "rows": [],
                "totals": dict.fromkeys(values, 0),
            },
        )
        cells = []
        for status in statuses:
            count = values.get(status["value"], 0)
            group["totals"][status["value"]] += count
            cells.append(
                {
                    "count": count,
                    "url": link(
                        dataset=row.dataset_id,
                        event=row.event_name,
                        status__exact=status["value"],
                        recorded=window,
                    ),
                }
            )
        group["rows"].append({"event_name": row.event_name, "cells": cells, "total": total})
    for group in groups.values():
        group["total"] = sum(group["totals"].values())
        group["total_cells"] = [group["totals"][s["value"]] for s in statuses]
    return list(groups.values())


def _chart(window: str, now: Any) -> Any:
    buckets = queries.sent_failed_series(window, now)
    hourly = window == "24h"

    def label(moment: Any) -> str:
        local = timezone.localtime(moment)
        return local.strftime("%H:%M") if hourly else local.strftime("%a %H:%M")

    return render_bar_chart(
        [b.start for b in buckets],
        {"sent": [b.sent for b in buckets], "failed": [b.failed for b in buckets]},
        [
            Series("sent", _("sent"), STATUS_COLORS["sent"]),
            Series("failed", _("failed or expired"), STATUS_COLORS["failed"]),
        ],
        title=_("Sent and failed events, %(window)s, by time recorded")
        % {"window": WINDOW_LABELS[window].lower()},
        label_every=3 if hourly else 4,
        label_format=label,
    )


def _errors(rows: list[queries.ErrorRow], window: str, link: Any) -> list[dict[str, Any]]:
    result = []
    for row in rows:
        params = {"recorded": window}
        if row.code is not None:
            params["error"] = f"{row.code}/{row.subcode}" if row.subcode else str(row.code)
        else:
            params["error"] = "none"
        result.append({"row": row, "url": link(**params)})
    return result


def _coverage(rows: list[queries.CoverageRow], window: str) -> list[dict[str, Any]]:
    result = []
    for row in rows:
        total = row.totals.get(window, 0)
        if not total:
            continue
        counts = row.counts[window]
        result.append(
            {
                "event_name": row.event_name,
                "total": total,
                "shares": [
                    {"key": key, "percent": percent(counts[key.name], total)} for key in MATCH_KEYS
                ],
                "score": row.score(window),
                "quality": row.quality(window),
                "gains": row.gains(window),
            }
        )
    return result


def _advice(rows: list[queries.CoverageRow], window: str) -> list[dict[str, Any]]:
    """Meta's advice for the keys missing most, over every event name."""
    total = sum(row.totals.get(window, 0) for row in rows)
    if not total:
        return []
    carried: Mapping[str, int] = {
        key.name: sum(row.counts.get(window, {}).get(key.name, 0) for row in rows)
        for key in MATCH_KEYS
    }
    advice = [
        {"key": key, "percent": percent(carried[key.name], total)}
        for key in MATCH_KEYS
        if carried[key.name] < 0.9 * total
    ]
    return sorted(
        advice, key=lambda item: item["key"].weight * (100 - item["percent"]), reverse=True
    )
