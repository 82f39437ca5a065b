"""``manage.py capi_status``: the dashboard's numbers in a terminal, with a health exit code."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict
from datetime import datetime, timedelta
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone

from django_capi import housekeeping
from django_capi.dashboard import queries
from django_capi.dashboard.advice import MATCH_KEYS
from django_capi.dashboard.formatting import format_duration, percent

WINDOW_TITLES = {"24h": "last 24 hours", "7d": "last 7 days"}


class Command(BaseCommand):
    help = (
        "Print delivery status: datasets (paused, throttled, lagging), events by status for "
        "the last 24 hours and 7 days, top errors and estimated match quality. Exit status: 0 "
        "healthy; otherwise the sum of 2 (events have been due longer than "
        "HEALTH_MAX_PENDING_AGE: workers or the periodic sweep are not running) and 4 (a "
        "dataset is paused by a token or permission error); 1 when the check itself failed."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--json", action="store_true", help="Machine-readable output.")
        parser.add_argument(
            "--max-pending-age",
            metavar="AGE",
            help="Override HEALTH_MAX_PENDING_AGE (90s, 15m, 1h).",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            limit = (
                housekeeping.parse_duration(options["max_pending_age"])
                if options["max_pending_age"]
                else None
            )
        except ValueError as exc:
            raise CommandError(str(exc)) from exc
        summary = housekeeping.status_summary(max_pending_age=limit)
        if options["json"]:
            self.stdout.write(json.dumps(as_json(summary), indent=2, default=_json_default))
        else:
            self.stdout.write(render(summary))
        if not summary.healthy:
            raise CommandError(
                "delivery is unhealthy: " + "; ".join(summary.problems),
                returncode=summary.exit_code,
            )


def as_json(summary: housekeeping.StatusSummary) -> dict[str, Any]:
    """The summary as JSON-ready data."""
    return {
        "now": summary.now,
        "healthy": summary.healthy,
        "exit_code": summary.exit_code,
        "problems": summary.problems,
        "max_pending_age_seconds": summary.max_pending_age.total_seconds(),
        "longest_wait_seconds": (
            summary.longest_wait.total_seconds() if summary.longest_wait is not None else None
        ),
        "datasets": [
            {
                **asdict(d),
                "state": d.state,
                "advice": d.advice,
                "waiting": d.waiting.total_seconds() if d.waiting is not None else None,
            }
            for d in summary.datasets
        ],
        "windows": {
            window: {
                "totals": summary.totals(window),
                "counts": [
                    {"dataset_id": r.dataset_id, "event_name": r.event_name, **r.counts[window]}
                    for r in summary.counts
                    if r.total(window)
                ],
                "top_errors": [
                    {**asdict(e), "label": e.label, "advice": e.advice}
                    for e in summary.errors[window]
                ],
                "match_quality": [
                    {
                        "event_name": c.event_name,
                        "events": c.totals[window],
                        "shares": c.shares(window),
                        "score": c.score(window),
                        "quality": c.quality(window),
                    }
                    for c in summary.coverage
                    if c.totals.get(window)
                ],
            }
            for window in summary.windows
        },
    }


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, timedelta):
        return value.total_seconds()
    raise TypeError(type(value).__name__)


def table(
    headers: Sequence[str], rows: Sequence[Sequence[Any]], numeric: range | None = None
) -> str:
    """Plain aligned columns; the ``numeric`` columns (default: all but the first) go right."""
    cells = [[str(c) for c in headers], *[[str(c) for c in row] for row in rows]]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    right = numeric if numeric is not None else range(1, len(headers))
    lines = []
    for row in cells:
        parts = [
            cell.rjust(widths[i]) if i in right else cell.ljust(widths[i])
            for i, cell in enumerate(row)
        ]
        lines.append("  " + "  ".join(parts).rstrip())
    return "\n".join(lines)


def render(summary: housekeeping.StatusSummary) -> str:
    """The terminal report."""
    now = summary.now
    out = [f"Conversions API delivery, {timezone.localtime(now):%Y-%m-%d %H:%M %Z}", ""]
    if summary.healthy:
        out.append(
            f"HEALTHY (no dataset paused, no event due longer than "
            f"{format_duration(summary.max_pending_age)})"
        )
    else:
        out.append(f"UNHEALTHY (exit status {summary.exit_code})")
        out.extend(f"  - {problem}" for problem in summary.problems)
    out.append(f"Oldest due event has waited: {format_duration(summary.longest_wait)}")
    out += ["", "Datasets"]
    rows = []
    for d in summary.datasets:
        p = d.pending
        rows.append(
            [
                f"{d.dataset_id} {d.label}".strip(),
                d.state,
                p.pending if p else 0,
                p.due if p else 0,
                p.sending if p else 0,
                format_duration(d.waiting),
                format_duration(now - d.last_success_at) + " ago" if d.last_success_at else "-",
            ]
        )
    out.append(
        table(
            ["dataset", "state", "pending", "due", "sending", "oldest due", "last success"],
            rows,
            numeric=range(2, 5),
        )
    )
    for d in summary.datasets:
        if d.advice:
            out.append(f"  {d.dataset_id}: {d.advice}")
    for window, title in WINDOW_TITLES.items():
        if window not in summary.windows:
            continue
        out += ["", f"Events by status, {title}"]
        rows = [
            [r.dataset_id, r.event_name, *r.counts[window].values(), r.total(window)]
            for r in summary.counts
            if r.total(window)
        ]
        totals = summary.totals(window)
        rows.append(["total", "", *totals.values(), sum(totals.values())])
        out.append(table(["dataset", "event name", *queries.STATUSES, "total"], rows, range(2, 99)))
        errors = summary.errors[window]
        if errors:
            out += ["", f"Top errors, {title}"]
            out.append(
                table(
                    ["events", "retrying", "error", "example"],
                    [[e.events, e.retrying, e.label or "-", e.message[:90]] for e in errors],
                    numeric=range(2),
                )
            )
    coverage = [c for c in summary.coverage if c.totals.get("7d")]
    if coverage:
        out += ["", "Match keys and estimated match quality (0-10), last 7 days"]
        rows = []
        for c in coverage:
            counts = c.counts["7d"]
            total = c.totals["7d"]
            rows.append(
                [
                    c.event_name,
                    total,
                    *(f"{percent(counts[k.name], total)}%" for k in MATCH_KEYS),
                    f"{c.score('7d')} {c.quality('7d')}",
                ]
            )
        out.append(table(["event name", "events", *(k.label for k in MATCH_KEYS), "score"], rows))
        out.append(
            "  score = sum of weight x share of events carrying the key (em 3, ph 2, IP + user "
            "agent 1.5, external_id 1, fbp 1, fbc 1, fn + ln 0.5); an estimate, not Meta's."
        )
    return "\n".join(out)
