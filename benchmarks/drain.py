"""Drain a backlog through the real delivery path and compare with Meta's SDK.

    python -m benchmarks.drain --events 100000
    python -m benchmarks.drain --events 1000000 --baseline-events 2000

What runs, all on this machine:

- PostgreSQL (``BENCH_DATABASE_URL``, default database ``capi_bench`` on 127.0.0.1, dropped
  and created again by every run), a private ``redis-server`` as the Celery broker, the fake Graph API
  (``tests/fake_graph_api.py``) in its own process, validating every request and counting
  what it accepts;
- a backlog of ``--events`` stored Purchase events (hashed user data, ~0.7 kB payloads),
  loaded with COPY, plus a few thousand recorded through ``track()`` to time recording;
- one ``celery worker`` (prefork, ``--concurrency`` processes) draining it with the
  production tasks; the run ends when no event is pending or sending.

It prints events per second, the workers' memory (total RSS, sampled five times a second, and its
value at each tenth of the drain, to show it stays flat), and the same kind of events sent
the way Meta's Python SDK is normally used (one ``EventRequest.execute()`` per event)
against the same fake API, as a ratio. The results are appended to benchmarks/RESULTS.md.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import requests

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "RESULTS.md"
PIXEL = "1234567890123456"
TOKEN = "EAAbenchmark-token"
UA = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/156.0"


def sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def recreate_database(url: str) -> None:
    """Drop and create the benchmark's own database, so each run measures today's schema."""
    import psycopg

    parts = urlsplit(url)
    name = parts.path.lstrip("/")
    if name in ("", "postgres", "template0", "template1"):
        raise SystemExit(f"refusing to recreate database {name!r}: use a database of its own")
    admin = urlunsplit(parts._replace(path="/postgres"))
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
        conn.execute(f'CREATE DATABASE "{name}"')


def start_fake_api(token: str = TOKEN, *options: str) -> tuple[subprocess.Popen[str], str]:
    """The fake Graph API in its own process, counting only; returns it and its URL."""
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tests.fake_graph_api",
            "--count-only",
            *options,
            "--token",
            f"{PIXEL}={token}",
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    url = process.stdout.readline().strip()
    return process, url


def payload(i: int, now: int) -> dict[str, Any]:
    return {
        "event_name": "Purchase",
        "event_time": now,
        "event_id": f"bench-{i}",
        "action_source": "website",
        "event_source_url": "https://shop.example/checkout/thanks",
        "user_data": {
            "em": sha(f"buyer{i}@example.com"),
            "ph": sha(f"1650555{i % 10000:04d}"),
            "client_ip_address": "203.0.113.7",
            "client_user_agent": UA,
            "fbp": f"fb.1.1763700000000.{100000000 + i}",
        },
        "custom_data": {
            "value": 42.5,
            "currency": "EUR",
            "contents": [{"id": f"sku-{i % 97}", "quantity": 1, "item_price": 42.5}],
            "order_id": f"order-{i}",
        },
    }


def load_backlog(n: int) -> None:
    """COPY n pending events into the event table (what track() would have stored)."""
    from django.db import connection

    now = datetime.now(UTC)
    ts = int(now.timestamp())
    columns = (
        "dataset_id, event_name, event_id, event_time, action_source, payload, status, attempts, "
        "next_attempt_at, claim_token, last_error_message, last_fbtrace_id, validation_errors, "
        "warnings, source_object_id, created_at, updated_at"
    )
    with connection.cursor() as cursor:
        raw = cursor.cursor
        with raw.copy(f"COPY django_capi_event ({columns}) FROM STDIN") as copy:
            for i in range(n):
                copy.write_row(
                    (
                        PIXEL,
                        "Purchase",
                        f"bench-{i}",
                        now,
                        "website",
                        json.dumps(payload(i, ts)),
                        "pending",
                        0,
                        now,
                        "",
                        "",
                        "",
                        "[]",
                        "[]",
                        "",
                        now,
                        now,
                    )
                )
        cursor.execute("ANALYZE django_capi_event")


def time_track(n: int) -> float:
    """Events per second recorded through track() (normalize, hash, validate, insert)."""
    from django_capi import track

    started = time.perf_counter()
    for i in range(n):
        track(
            "Purchase",
            event_id=f"tracked-{i}",
            user_data={
                "em": f"Buyer{i}@Example.com",
                "ph": "(650) 555-1212",
                "client_ip_address": "203.0.113.7",
                "client_user_agent": UA,
            },
            custom_data={"value": "42.50", "currency": "eur", "order_id": f"t{i}"},
            event_source_url="https://shop.example/checkout/thanks",
        )
    return n / (time.perf_counter() - started)


def process_tree_rss(pid: int) -> int:
    """Resident memory (bytes) of a process and all its descendants."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(ppid, []).append(int(entry.name))
    total, todo = 0, [pid]
    while todo:
        current = todo.pop()
        try:
            for line in Path(f"/proc/{current}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1]) * 1024
        except OSError:
            pass
        todo.extend(children.get(current, []))
    return total


def unfinished() -> bool:
    """Whether any event is still pending or being sent (an EXISTS, cheap at any size)."""
    from django_capi.models import Event, EventStatus

    return Event.objects.filter(status__in=[EventStatus.PENDING, EventStatus.SENDING]).exists()


def accepted(url: str) -> int:
    """How many distinct events the fake API has accepted so far."""
    return int(requests.get(f"{url}/__stats__", timeout=10).json()["unique"])


def drain(
    total: int, concurrency: int, tasks: int, env: dict[str, str], url: str
) -> dict[str, Any]:
    from benchmarks.celery_app import app

    log = open(ROOT / "benchmarks" / "worker.log", "w")  # noqa: SIM115
    worker = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "benchmarks.celery_app",
            "worker",
            "-P",
            "prefork",
            "-c",
            str(concurrency),
            "--without-gossip",
            "--without-mingle",
            "--without-heartbeat",
            "-l",
            "WARNING",
        ],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        time.sleep(3)  # let the pool start before the clock does
        started = time.perf_counter()
        for _ in range(tasks):
            app.send_task("django_capi.deliver_dataset", args=[PIXEL])
        samples: list[tuple[float, int, int]] = []  # (seconds, remaining, rss)
        while True:
            # Progress comes from the fake API's counters, so that watching the drain costs
            # the database nothing; the end is confirmed by the database.
            left = total - accepted(url)
            samples.append((time.perf_counter() - started, left, process_tree_rss(worker.pid)))
            if left <= 0 and not unfinished():
                break
            if worker.poll() is not None:
                raise SystemExit("the worker died; see benchmarks/worker.log")
            # the immediate path queues a task per commit; here the periodic sweep's job:
            if len(samples) % 50 == 0:
                app.send_task("django_capi.deliver_due")
            time.sleep(0.2)
        elapsed = time.perf_counter() - started
    finally:
        worker.terminate()
        worker.wait(timeout=60)
        log.close()
    by_tenth = []
    for tenth in range(1, 11):
        target = total * (1 - tenth / 10)
        rss = next((r for _, left, r in samples if left <= target), samples[-1][2])
        by_tenth.append(rss)
    return {
        "seconds": elapsed,
        "rate": total / elapsed,
        "peak_rss": max(r for _, _, r in samples),
        "rss_by_tenth": by_tenth,
    }


def sdk_baseline(url: str, n: int) -> float:
    """Events per second sent the SDK's usual way: one EventRequest.execute() per event."""
    from facebook_business.adobjects.serverside.action_source import ActionSource
    from facebook_business.adobjects.serverside.custom_data import CustomData
    from facebook_business.adobjects.serverside.event import Event
    from facebook_business.adobjects.serverside.event_request import EventRequest
    from facebook_business.adobjects.serverside.user_data import UserData
    from facebook_business.api import FacebookAdsApi
    from facebook_business.session import FacebookSession

    FacebookSession.GRAPH = url
    FacebookAdsApi.init(access_token=TOKEN, api_version="v26.0", crash_log=False)
    started = time.perf_counter()
    for i in range(n):
        event = Event(
            event_name="Purchase",
            event_time=int(time.time()),
            event_id=f"sdk-{i}",
            action_source=ActionSource.WEBSITE,
            event_source_url="https://shop.example/checkout/thanks",
            user_data=UserData(
                email=f"buyer{i}@example.com",
                phone="16505551212",
                client_ip_address="203.0.113.7",
                client_user_agent=UA,
                fbp=f"fb.1.1763700000000.{100000000 + i}",
            ),
            custom_data=CustomData(value=42.5, currency="eur", order_id=f"order-{i}"),
        )
        EventRequest(pixel_id=PIXEL, events=[event]).execute()
    return n / (time.perf_counter() - started)


def mib(value: float) -> str:
    return f"{value / 2**20:.0f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=100_000, help="backlog size")
    parser.add_argument("--tracked", type=int, default=2_000, help="events recorded via track()")
    parser.add_argument("--baseline-events", type=int, default=1_000)
    parser.add_argument("--concurrency", type=int, default=2, help="worker pool processes")
    parser.add_argument("--tasks", type=int, default=4, help="delivery tasks started at once")
    parser.add_argument("--no-record", action="store_true", help="do not append to RESULTS.md")
    args = parser.parse_args()

    sys.path.insert(0, str(ROOT))
    from tests.workers import RedisServer, free_port  # the tests' private broker

    db_url = os.environ.setdefault(
        "BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/capi_bench"
    )
    recreate_database(db_url)
    fake, url = start_fake_api()
    broker = RedisServer(f"redis://127.0.0.1:{free_port()}/0").start()
    os.environ["CELERY_BROKER_URL"] = broker.url
    os.environ["CAPI_BENCH_OVERRIDES"] = json.dumps({"API_BASE_URL": url})
    os.environ["DJANGO_SETTINGS_MODULE"] = "benchmarks.settings"
    try:
        import django

        django.setup()
        from django.core.management import call_command
        from django.db import connection

        call_command("migrate", verbosity=0)
        track_rate = time_track(args.tracked)
        load_started = time.perf_counter()
        load_backlog(args.events)
        load_seconds = time.perf_counter() - load_started
        total = args.events + args.tracked
        print(f"backlog: {total} events ({load_seconds:.0f} s to load); draining...", flush=True)
        connection.close()
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        result = drain(total, args.concurrency, args.tasks, env, url)
        stats = requests.get(f"{url}/__stats__", timeout=10).json()
        baseline = sdk_baseline(url, args.baseline_events)
    finally:
        broker.stop()
        fake.terminate()
        fake.wait(timeout=30)

    ratio = result["rate"] / baseline
    rss = result["rss_by_tenth"]
    lines = [
        f"events drained:        {total}",
        f"accepted by fake API:  {stats['accepted']} ({stats['unique']} unique, "
        f"{stats['requests']} requests)",
        f"drain time:            {result['seconds']:.1f} s",
        f"django_capi:           {result['rate']:,.0f} events/s",
        f"SDK, 1 request/event:  {baseline:,.0f} events/s",
        f"ratio:                 {ratio:.1f}x",
        f"track():               {track_rate:,.0f} events/s (one process, recording only)",
        f"worker RSS peak:       {mib(result['peak_rss'])} MiB",
        "worker RSS by tenth:   " + " ".join(mib(r) for r in rss) + " MiB",
    ]
    print("\n".join(lines))
    if args.no_record:
        return
    machine = f"{os.cpu_count()} cores, Python {platform.python_version()}"
    row = (
        f"| {datetime.now(UTC):%Y-%m-%d} | {machine} | {total:,} | {result['rate']:,.0f} | "
        f"{baseline:,.0f} | {ratio:.0f}x | {track_rate:,.0f} | {mib(result['peak_rss'])} | "
        f"{mib(rss[0])} → {mib(rss[4])} → {mib(rss[9])} | {stats['unique']:,} / "
        f"{stats['accepted']:,} |\n"
    )
    add_row(RESULTS, HEADER, row)


def add_row(results: Path, header: str, row: str) -> None:
    """Insert ``row`` under the last row of the table in ``results`` (above any notes)."""
    text = results.read_text() if results.exists() else header
    lines = text.splitlines(keepends=True)
    last_row = max(i for i, line in enumerate(lines) if line.startswith("|"))
    lines.insert(last_row + 1, row)
    results.write_text("".join(lines))
    print(f"added a row to {results.relative_to(ROOT)}")


HEADER = """# Delivery benchmark results

Produced by `python -m benchmarks.drain` (see README, "Benchmarks"). Each row is one run:
a backlog drained by one Celery worker (prefork, 2 processes) through PostgreSQL, a Redis
broker and the fake Graph API on loopback, all on the same machine. "SDK" is the same
kind of event sent with Meta's Python SDK, one `EventRequest.execute()` per event, to the
same fake API in the same run. Worker RSS is the worker's whole process tree, at 10 %, 50 %
and 100 % of the drain.

| date | machine | events | django_capi events/s | SDK events/s | ratio | track() events/s | worker RSS peak (MiB) | RSS 10 % → 50 % → 100 % (MiB) | unique / accepted |
|---|---|---|---|---|---|---|---|---|---|
"""


if __name__ == "__main__":
    main()
