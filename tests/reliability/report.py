"""Print the reliability figures as a Markdown table.

    CAPI_RELIABILITY_REPORT=/tmp/rel.jsonl python -m pytest tests/reliability -p no:randomly
    python -m tests.reliability.report /tmp/rel.jsonl

The JSON-lines file gets one row per scenario and run (rows are appended); when a scenario
appears more than once, its last row is shown. Rows of the fault suite get the fault table;
rows of other suites (a ``suite`` key other than ``faults``) get a table each, with their own
keys as columns.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

FAULT_COLUMNS: tuple[tuple[str, str], ...] = (
    ("scenario", "Scenario"),
    ("placed", "Placed"),
    ("delivered", "Delivered"),
    ("lost", "Lost"),
    ("duplicates", "Duplicates (same event_id)"),
    ("failed_visibly", "Failed, with reason"),
    ("expired_visibly", "Expired, with reason"),
    ("requests", "Requests"),
    ("seconds", "Wall s"),
    ("notes", "Notes"),
)

TITLES = {
    "graph_api_down_for_a_long_stretch_then_back": "1. Graph API down (refused, then 5xx), back",
    "slow_answers_and_connections_reset_mid_response": "2. Slow answers, resets mid-response",
    "throttling_storms_back_off_each_dataset_alone": "3. Throttling storms (4/17/613)",
    "a_revoked_token_pauses_one_dataset_until_it_is_replaced": "4. Token revoked (190), replaced",
    "one_poisoned_event_in_a_full_batch_of_1000": "5. One poisoned event in 1,000",
    "crashes_during_a_large_drain_lose_nothing": "6. SIGKILL, broker restart, DB cut",
    "events_aging_past_seven_days_while_the_api_is_down": "7. Events aging past 7 days",
}
ORDER = list(TITLES)


def read_rows(path: Path) -> list[dict[str, Any]]:
    """The last row of each (suite, scenario), in the order they first appeared."""
    latest: dict[tuple[str, str], dict[str, Any]] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.strip():
            continue
        row = json.loads(line)
        key = (str(row.get("suite", "")), str(row.get("scenario", "")))
        latest.pop(key, None)
        latest[key] = row
    return list(latest.values())


def cell(value: Any) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        return f"{value:,.1f}"
    if value is None:
        return "-"
    return str(value).replace("|", "\\|").replace("\n", " ")


def table(rows: Sequence[dict[str, Any]], columns: Sequence[tuple[str, str]]) -> str:
    lines = [
        "| " + " | ".join(title for _, title in columns) + " |",
        "|" + "|".join("---" for _ in columns) + "|",
    ]
    for row in rows:
        lines.append("| " + " | ".join(cell(row.get(key)) for key, _ in columns) + " |")
    return "\n".join(lines)


def fault_table(rows: Sequence[dict[str, Any]]) -> str:
    def rank(row: dict[str, Any]) -> int:
        name = row.get("scenario", "")
        return ORDER.index(name) if name in ORDER else len(ORDER)

    shown = [
        {**row, "scenario": TITLES.get(row.get("scenario", ""), row.get("scenario", ""))}
        for row in sorted(rows, key=rank)
    ]
    total: dict[str, Any] = {"scenario": "**Total**", "notes": ""}
    for key in ("placed", "delivered", "lost", "duplicates", "failed_visibly"):
        total[key] = sum(int(row.get(key) or 0) for row in rows)
    total["expired_visibly"] = sum(int(row.get("expired_visibly") or 0) for row in rows)
    total["requests"] = sum(int(row.get("requests") or 0) for row in rows)
    total["seconds"] = round(sum(float(row.get("seconds") or 0) for row in rows), 1)
    return table([*shown, total], FAULT_COLUMNS)


def other_table(rows: Sequence[dict[str, Any]]) -> str:
    keys: list[str] = []
    for row in rows:
        keys += [key for key in row if key not in keys and key not in ("suite", "recorded_at")]
    return table(rows, [(key, key) for key in keys])


def render(rows: Sequence[dict[str, Any]]) -> str:
    suites: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        suites.setdefault(str(row.get("suite", "")), []).append(row)
    parts = []
    if "faults" in suites:
        parts.append(fault_table(suites.pop("faults")))
    for suite, suite_rows in suites.items():
        parts.append(f"**{suite or 'other'}**\n\n{other_table(suite_rows)}")
    return "\n\n".join(parts)


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if len(args) != 1:
        sys.stderr.write("usage: python -m tests.reliability.report REPORT.jsonl\n")
        return 2
    path = Path(args[0])
    if not path.exists():
        sys.stderr.write(f"{path}: no such file (set CAPI_RELIABILITY_REPORT when testing)\n")
        return 2
    rows = read_rows(path)
    if not rows:
        sys.stderr.write(f"{path}: no figures in it\n")
        return 1
    sys.stdout.write(render(rows) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
