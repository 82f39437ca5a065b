"""Orders placed through the demo shop's real views while Celery workers deliver.

    python -m benchmarks.load [--orders N] [--clients C] [--seconds S] [--rate R]

What runs, all on this machine, twice (with django_capi, then ``DEMO_CAPI=off``):

- the demo shop (``example_project``) served by gunicorn (``pip install -e ".[bench]"``;
  sync workers, one process per request in flight) or, without it, Django's threaded
  ``runserver``, with ``DJANGO_DEBUG=0`` and persistent database connections, on a
  PostgreSQL database of its own (``LOAD_DATABASE_URL``, default ``capi_load``, dropped and
  created again for each run);
- a private ``redis-server`` as the broker, the demo's Celery worker with beat
  (``celery -A example_project worker -B``, the production tasks), and the fake Graph API
  (``tests/fake_graph_api.py``) in its own process, counting what it accepts and logging
  when it accepted each event;
- ``--clients`` client processes, each placing orders back to back for ``--seconds`` (or
  until ``--orders`` are placed) over HTTP, the way a browser walks the shop: product list,
  consent, add to cart, cart, checkout, details, payment page, pay, thank-you page (10
  requests with the CSRF tokens the pages carry; every order is a new visitor). That is a
  closed loop: the shop runs saturated, so a cost per order shows up as queueing. With
  ``--rate R`` the load is an open loop instead: orders start at a fixed rate (R per second
  in all, spread evenly over the client processes, each order in a thread of its own
  whether or not the previous one is done), so below saturation the latency ratio shows
  the cost per request rather than the queue it causes.

Before measuring, ``--warmup-orders`` orders (default 3 per web server process) warm the
shop up: what each process loads on first use is not a cost per order. It reports orders
placed, order latency (the whole order's 10 requests, one after the
other; each client's first order is a warm-up, not counted) median and p99 with and without
django_capi, the same for the two requests that record events (GET /checkout/ records
InitiateCheckout, POST /pay/ records Purchase), the web server's CPU time per order, and
for the events: every event the pages announced (the pixel's eventIDs) and every row
stored must be accepted by the fake API, and the delivery lag of each one (accepted by the
fake API minus the row's ``created_at``, taken just before the commit). A row is appended
to benchmarks/LOAD.md.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import platform
import random
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator, Mapping
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from multiprocessing import get_context
from pathlib import Path
from typing import Any
from urllib.parse import urljoin, urlsplit

import requests

from tests.workers import free_port

ROOT = Path(__file__).resolve().parent.parent
LOAD = ROOT / "benchmarks" / "LOAD.md"
PIXEL = "1234567890123456"
TOKEN = "EAAload-benchmark-token"
UA = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/156.0"
WAIT = 120.0

_CSRF = re.compile(r'name="csrfmiddlewaretoken" value="([^"]+)"')
_PRODUCT = re.compile(r'name="product" value="([^"]+)"')
_PIXEL_EVENT_ID = r'"{name}",\{{.*?\}},\{{"eventID":"([^"]+)"\}}'
TRACKED_STEPS = ("checkout", "pay")
# The pages redirects lead to, by their path's first segment.
_PAGES = {"": "products", "cart": "cart", "pay": "payment page", "thanks": "thanks"}


# --- the shop and its delivery, as processes -----------------------------------------------


def default_server() -> str:
    """gunicorn when installed (the ``bench`` extra), else Django's threaded runserver."""
    chosen = os.environ.get("CAPI_LOAD_SERVER")
    if chosen:
        return chosen
    return "gunicorn" if importlib.util.find_spec("gunicorn") else "runserver"


class Process:
    """A subprocess in its own session, its output in a log file."""

    def __init__(self, name: str, command: list[str], env: Mapping[str, str]) -> None:
        self.name = name
        self.log = Path(tempfile.mkstemp(prefix=f"capi-load-{name}-", suffix=".log")[1])
        with self.log.open("wb") as out:
            self.popen = subprocess.Popen(
                command,
                cwd=ROOT,
                env={**os.environ, **env},
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def output(self, tail: int = 6000) -> str:
        return self.log.read_text(errors="replace")[-tail:]

    def alive(self) -> bool:
        if self.popen.poll() is not None:
            raise RuntimeError(f"{self.name} exited:\n{self.output()}")
        return True

    def stop(self) -> None:
        if self.popen.poll() is None:
            os.killpg(self.popen.pid, signal.SIGTERM)
            try:
                self.popen.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.popen.pid, signal.SIGKILL)
                self.popen.wait(timeout=10)
        self.log.unlink(missing_ok=True)


def wait_until(condition: Any, what: str, timeout: float = WAIT) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out waiting for {what}")
        time.sleep(0.2)


def http_ok(url: str) -> bool:
    try:
        return requests.get(url, timeout=5).status_code == 200
    except requests.RequestException:
        return False


def shop_env(
    database_url: str, broker_url: str, api_url: str, *, capi: bool = True
) -> dict[str, str]:
    """The demo's settings from the environment: this database, broker and fake API."""
    return {
        "DJANGO_SETTINGS_MODULE": "example_project.settings",
        "DATABASE_URL": database_url,
        "CELERY_BROKER_URL": broker_url,
        "CAPI_PIXEL_ID": PIXEL,
        "CAPI_ACCESS_TOKEN": TOKEN,
        "CAPI_API_BASE_URL": api_url,
        "CAPI_TRANSPORT": "graph_api",
        "DJANGO_DEBUG": "0",
        "DEMO_CAPI": "on" if capi else "off",
        "PYTHONPATH": str(ROOT),
        "PYTHONUNBUFFERED": "1",
    }


def server_command(server: str, port: int, web_workers: int) -> list[str]:
    if server == "gunicorn":
        return [
            sys.executable, "-m", "gunicorn", "example_project.wsgi:application",
            "--bind", f"127.0.0.1:{port}", "--workers", str(web_workers),
            "--worker-class", "sync", "--timeout", "120", "--log-level", "warning",
        ]  # fmt: skip
    if server == "runserver":
        return [sys.executable, "manage.py", "runserver", "--noreload", f"127.0.0.1:{port}"]
    raise ValueError(f"unknown server {server!r}: gunicorn or runserver")


@dataclass
class Shop:
    base: str
    web: Process
    worker: Process


@contextmanager
def running_shop(
    env: Mapping[str, str],
    *,
    server: str,
    web_workers: int = 4,
    worker_processes: int = 2,
) -> Iterator[Shop]:
    """Set up the demo's data (``demo --setup-only``), then its Celery worker and web server."""
    setup = subprocess.run(
        [sys.executable, "manage.py", "demo", "--setup-only"],
        cwd=ROOT,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=WAIT,
        check=False,
    )
    if setup.returncode != 0:
        raise RuntimeError(f"demo --setup-only failed:\n{setup.stdout}{setup.stderr}")
    schedule = Path(tempfile.mkdtemp(prefix="capi-load-beat-")) / "schedule"
    port = free_port()
    worker = Process(
        "worker",
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "example_project",
            "worker",
            "-B",
            "--schedule",
            str(schedule),
            "--concurrency",
            str(worker_processes),
            "--without-gossip",
            "--without-mingle",
            "--loglevel",
            "INFO",
        ],
        env,
    )
    web = Process("web", server_command(server, port, web_workers), env)
    try:
        base = f"http://127.0.0.1:{port}"
        wait_until(lambda: web.alive() and http_ok(base + "/"), "the demo shop")
        wait_until(lambda: worker.alive() and " ready." in worker.output(), "the worker")
        yield Shop(base=base, web=web, worker=worker)
    finally:
        web.stop()
        worker.stop()
        shutil.rmtree(schedule.parent, ignore_errors=True)


# --- one visitor placing one order -----------------------------------------------------------


@dataclass
class Order:
    """What a client saw: each request's time, the eventIDs the pages gave the pixel."""

    steps: list[tuple[str, float]] = field(default_factory=list)
    seconds: float = 0.0
    checkout_event_id: str | None = None
    purchase_event_id: str | None = None
    error: str = ""
    warmup: bool = False
    #: Open loop: how late the order started after its scheduled time (client lag).
    late: float = 0.0


def _csrf(html: str) -> str:
    match = _CSRF.search(html)
    if not match:
        raise RuntimeError("no CSRF token on the page")
    return match.group(1)


def pixel_event_id(html: str, event_name: str) -> str | None:
    """The eventID of the page's ``fbq("track", event_name, ...)`` call, if any."""
    match = re.search(_PIXEL_EVENT_ID.format(name=event_name), html)
    return match.group(1) if match else None


def place_order(base: str, number: int, rng: random.Random | None = None) -> Order:
    """Walk the demo shop to a paid order as a new visitor; never raises (see ``error``)."""
    rng = rng or random.Random(number)  # noqa: S311 (test data)
    order = Order()
    session = requests.Session()
    session.headers["User-Agent"] = UA

    def call(
        step: str, method: str, path: str, data: dict[str, Any] | None = None
    ) -> tuple[str, str]:
        """One request, then its redirects one at a time, each timed: (final URL, page)."""
        url = urljoin(base, path)
        while True:
            started = time.perf_counter()
            response = session.request(method, url, data=data, allow_redirects=False, timeout=60)
            order.steps.append((step, time.perf_counter() - started))
            if response.status_code in (301, 302, 303):
                url, method, data = urljoin(url, response.headers["Location"]), "GET", None
                step = _PAGES.get(urlsplit(url).path.split("/")[1], url)
                continue
            if response.status_code != 200:
                raise RuntimeError(f"{step}: HTTP {response.status_code}")
            return url, response.text

    started = time.perf_counter()
    try:
        _, page = call("products", "GET", "/")
        _, page = call("consent", "POST", "/consent/",
                       {"csrfmiddlewaretoken": _csrf(page), "choice": "accept", "next": "/"})  # fmt: skip
        product = rng.choice(_PRODUCT.findall(page) or ["none on the page"])
        _, page = call("add", "POST", "/", {"csrfmiddlewaretoken": _csrf(page), "product": product})
        _, page = call("checkout", "GET", "/checkout/")
        order.checkout_event_id = pixel_event_id(page, "InitiateCheckout")
        details = {
            "csrfmiddlewaretoken": _csrf(page),
            "email": f"Buyer{number}.{rng.randrange(10**6)}@Example.com",
            "first_name": "Ada",
            "last_name": f"Lovelace-{number}",
            "phone": f"(650) 555-{rng.randrange(10000):04d}",
            "city": "Menlo Park",
            "postal_code": "94025",
            "country": "US",
        }
        pay_url, page = call("details", "POST", "/checkout/", details)
        if "/pay/" not in pay_url:
            raise RuntimeError("the checkout form did not lead to the payment page")
        thanks_url, page = call("pay", "POST", pay_url, {"csrfmiddlewaretoken": _csrf(page)})
        if "/thanks/" not in thanks_url:
            raise RuntimeError("payment did not lead to the thank-you page")
        order.purchase_event_id = pixel_event_id(page, "Purchase")
    except (requests.RequestException, RuntimeError, KeyError) as exc:
        order.error = f"{type(exc).__name__}: {exc}"
    finally:
        session.close()
    order.seconds = time.perf_counter() - started
    return order


def client_loop(
    base: str, client: int, start_at: float, stop_at: float, budget: Any, warmup: int
) -> list[Order]:
    """One client process: orders back to back from ``start_at`` until time or budget is up."""
    rng = random.Random(client)  # noqa: S311 (test data)
    orders: list[Order] = []
    time.sleep(max(0.0, start_at - time.time()))
    number = 0
    while time.time() < stop_at:
        if budget is not None:
            with budget.get_lock():
                if budget.value <= 0:
                    break
                budget.value -= 1
        order = place_order(base, client * 1_000_000 + number, rng)
        order.warmup = number < warmup
        orders.append(order)
        number += 1
    return orders


def warm_up(base: str, orders: int, threads: int) -> int:
    """Place ``orders`` orders, ``threads`` at a time, before anything is measured.

    Each web server process pays once for what it loads on first use (imports, templates,
    the broker connection); without this, a short run would count that as per-order cost.
    Returns how many orders were paid.
    """
    from concurrent.futures import ThreadPoolExecutor

    if orders <= 0:
        return 0
    with ThreadPoolExecutor(max(1, threads)) as pool:
        placed = list(pool.map(lambda n: place_order(base, -1 - n), range(orders)))
    failed = [o.error for o in placed if o.error]
    if failed:
        raise RuntimeError(f"warm-up orders failed: {failed[:3]}")
    return len(placed)


def open_loop_client(
    base: str,
    client: int,
    start_at: float,
    stop_at: float,
    budget: Any,
    warmup: int,
    rate: float,
    clients: int,
) -> list[Order]:
    """One client process of the open loop: its share of ``rate`` orders per second.

    Order ``k`` of client ``c`` starts at ``start_at + (c + k * clients) / rate``, in a thread
    of its own, whether or not the earlier ones are done: the shop's slowness does not slow
    the arrivals down.
    """
    from concurrent.futures import ThreadPoolExecutor

    interval = clients / rate
    first = start_at + client / rate
    futures = []
    with ThreadPoolExecutor(max_workers=64) as pool:
        number = 0
        while True:
            due = first + number * interval
            if due >= stop_at:
                break
            if budget is not None:
                with budget.get_lock():
                    if budget.value <= 0:
                        break
                    budget.value -= 1
            time.sleep(max(0.0, due - time.time()))
            futures.append(
                (number, time.time() - due, pool.submit(_timed_order, base, client, number))
            )
            number += 1
        orders = []
        for number, late, future in futures:
            order = future.result()
            order.warmup = number < warmup
            order.late = late
            orders.append(order)
    return orders


def _timed_order(base: str, client: int, number: int) -> Order:
    order_number = client * 1_000_000 + number
    return place_order(base, order_number, random.Random(order_number))  # noqa: S311


# --- measuring --------------------------------------------------------------------------------


def process_tree_cpu(pid: int) -> float:
    """CPU seconds (user + system) used so far by a process and its live descendants."""
    ticks = os.sysconf("SC_CLK_TCK")
    children: dict[int, list[int]] = {}
    stats: dict[int, list[str]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        stats[int(entry.name)] = fields
        children.setdefault(int(fields[1]), []).append(int(entry.name))
    total, todo = 0.0, [pid]
    while todo:
        current = todo.pop()
        if current in stats:
            total += (int(stats[current][11]) + int(stats[current][12])) / ticks
        todo.extend(children.get(current, []))
    return total


def p50(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def p99(values: list[float]) -> float:
    if len(values) < 2:
        return values[0] if values else float("nan")
    return statistics.quantiles(values, n=100, method="inclusive")[98]


def database_rows(url: str, query: str) -> list[tuple[Any, ...]]:
    import psycopg

    with psycopg.connect(url.split("?")[0]) as conn:
        return list(conn.execute(query).fetchall())


def recreate_database(url: str) -> None:
    from benchmarks.drain import recreate_database as recreate

    recreate(url.split("?")[0])


def start_fake_api() -> tuple[subprocess.Popen[str], str]:
    """The fake Graph API, also logging when it accepted each event (for the lag)."""
    from benchmarks.drain import start_fake_api as start

    return start(TOKEN, "--log-acceptance")


def delivery(db_url: str, api_url: str, announced: set[str], timeout: float) -> dict[str, Any]:
    """Wait until every stored event is accepted or given up; lag, lost and duplicates."""

    def rows() -> list[tuple[Any, ...]]:
        return database_rows(
            db_url,
            "SELECT event_id, event_name, status, extract(epoch FROM created_at)::float8 "
            "FROM django_capi_event",
        )

    def accepted() -> dict[str, float]:
        first: dict[str, float] = {}
        log = requests.get(f"{api_url}/__accepted__", timeout=30).json()
        for event_id, when in log:
            first.setdefault(event_id, when)
        return first

    deadline = time.monotonic() + timeout
    while True:
        stored, seen = rows(), accepted()
        waiting = [r for r in stored if r[2] in ("pending", "sending")]
        if not waiting and {r[0] for r in stored} <= set(seen) and announced <= set(seen):
            break
        if time.monotonic() > deadline:
            break
        time.sleep(1.0)
    stats = requests.get(f"{api_url}/__stats__", timeout=30).json()
    ids = {r[0] for r in stored}
    lags = [seen[r[0]] - r[3] for r in stored if r[0] in seen]
    return {
        "stored": len(stored),
        "by_name": Counter(r[1] for r in stored),
        "statuses": Counter(r[2] for r in stored),
        "accepted": stats["accepted"],
        "unique": stats["unique"],
        "requests": stats["requests"],
        "lost": len(ids - set(seen)) + len(announced - ids),
        "lags": lags,
    }


@dataclass
class Run:
    capi: bool
    orders: list[Order]
    seconds: float
    web_cpu: float
    worker_cpu: float
    paid: int
    created: int
    stored: int
    delivered: dict[str, Any] | None = None
    #: Orders placed before the measurement (paid in the shop, not counted here).
    warm: int = 0

    @property
    def measured(self) -> list[Order]:
        return [o for o in self.orders if not o.warmup and not o.error]

    @property
    def completed(self) -> list[Order]:
        return [o for o in self.orders if not o.error]

    def step(self, name: str) -> list[float]:
        return [s for o in self.measured for step, s in o.steps if step == name]


def run_once(args: argparse.Namespace, *, capi: bool, db_url: str, broker: str) -> Run:
    label = "with django_capi" if capi else "without django_capi (DEMO_CAPI=off)"
    loop = f"open loop, {args.rate:g} orders/s" if args.rate else "closed loop"
    print(
        f"\n--- {label}: {loop}, {args.clients} clients, {args.seconds:g} s, {args.server}",
        flush=True,
    )
    recreate_database(db_url)
    fake, api_url = start_fake_api()
    env = shop_env(db_url, broker, api_url, capi=capi)
    try:
        with running_shop(
            env,
            server=args.server,
            web_workers=args.web_workers,
            worker_processes=args.worker_processes,
        ) as shop:
            warm = warm_up(shop.base, args.warmup_orders, args.web_workers)
            context = get_context("spawn")
            budget = context.Value("i", args.orders) if args.orders else None
            start_at = time.time() + 3.0  # let the client processes start
            stop_at = start_at + args.seconds
            with ProcessPoolExecutor(
                args.clients,
                mp_context=context,
                initializer=_share_budget,
                initargs=(budget,),
            ) as pool:
                futures = [
                    pool.submit(
                        _client,
                        shop.base,
                        client,
                        start_at,
                        stop_at,
                        args.warmup,
                        args.rate,
                        args.clients,
                    )
                    for client in range(args.clients)
                ]
                time.sleep(max(0.0, start_at - time.time()))
                web_before = process_tree_cpu(shop.web.popen.pid)
                worker_before = process_tree_cpu(shop.worker.popen.pid)
                orders = [order for future in futures for order in future.result()]
            seconds = time.time() - start_at
            web_cpu = process_tree_cpu(shop.web.popen.pid) - web_before
            shop.web.alive()
            delivered = None
            if capi:
                announced = {
                    i
                    for o in orders
                    for i in (o.checkout_event_id, o.purchase_event_id)
                    if i is not None
                }
                delivered = delivery(db_url, api_url, announced, args.drain_timeout)
            worker_cpu = process_tree_cpu(shop.worker.popen.pid) - worker_before
            shop.worker.alive()
        paid, created, stored = database_rows(
            db_url,
            "SELECT count(*) FILTER (WHERE status = 'paid'), count(*), "
            "(SELECT count(*) FROM django_capi_event) FROM shop_order",
        )[0]
    finally:
        fake.terminate()
        fake.wait(timeout=30)
    run = Run(capi, orders, seconds, web_cpu, worker_cpu, paid, created, stored, delivered, warm)
    report(run)
    return run


_budget: Any = None


def _share_budget(budget: Any) -> None:
    global _budget
    _budget = budget


def _client(
    base: str,
    client: int,
    start_at: float,
    stop_at: float,
    warmup: int,
    rate: float = 0.0,
    clients: int = 1,
) -> list[Order]:
    if rate:
        return open_loop_client(base, client, start_at, stop_at, _budget, warmup, rate, clients)
    return client_loop(base, client, start_at, stop_at, _budget, warmup)


def ms(seconds: float) -> str:
    return f"{seconds * 1000:,.0f}"


def report(run: Run) -> None:
    measured = [o.seconds for o in run.measured]
    errors = [o.error for o in run.orders if o.error]
    print(f"orders placed:        {len(run.completed)} ({len(measured)} measured, "
          f"{len(errors)} failed); shop: {run.paid} paid of {run.created}")  # fmt: skip
    print(f"orders/s:             {len(run.completed) / run.seconds:.1f}")
    late = [o.late for o in run.orders if o.late]
    if late:
        print(f"started late (client): p50 {ms(p50(late))} ms, max {ms(max(late))} ms")
    print(f"order latency:        p50 {ms(p50(measured))} ms, p99 {ms(p99(measured))} ms")
    for step in TRACKED_STEPS:
        values = run.step(step)
        print(f"  {step:<19} p50 {ms(p50(values))} ms, p99 {ms(p99(values))} ms")
    names = list(dict.fromkeys(step for o in run.measured for step, _ in o.steps))
    print("  each step p50:      " + ", ".join(f"{n} {ms(p50(run.step(n)))}" for n in names))
    every = [s for o in run.measured for _, s in o.steps]
    print(f"  any request         p50 {ms(p50(every))} ms, p99 {ms(p99(every))} ms")
    if run.completed:
        print(f"web server CPU:       {ms(run.web_cpu / len(run.completed))} ms/order")
    for error, count in Counter(errors).most_common(5):
        print(f"  error x{count}: {error}")
    d = run.delivered
    if d is not None:
        print(f"events stored:        {d['stored']} {dict(d['by_name'])} {dict(d['statuses'])}")
        print(f"accepted by fake API: {d['unique']} unique, {d['accepted']} in all, "
              f"in {d['requests']} requests; lost: {d['lost']}")  # fmt: skip
        lags = d["lags"]
        if lags:
            print(f"delivery lag:         p50 {ms(p50(lags))} ms, p99 {ms(p99(lags))} ms, "
                  f"max {ms(max(lags))} ms")  # fmt: skip
        if d["stored"]:
            print(f"worker CPU:           {ms(run.worker_cpu / d['stored'])} ms/event")


def ratio(a: float, b: float) -> str:
    return f"{a / b:.2f}" if b else "n/a"


def problems(on: Run, off: Run) -> list[str]:
    found = []
    for run in (on, off):
        label = "with" if run.capi else "without"
        failed = sum(1 for o in run.orders if o.error)
        if failed:
            found.append(f"{failed} orders failed {label} django_capi")
        if run.paid != len(run.completed) + run.warm:
            found.append(
                f"{label}: {run.paid} orders paid, {len(run.completed)} completed "
                f"(+{run.warm} warm-up)"
            )
    if off.stored:
        found.append(f"{off.stored} events stored with DEMO_CAPI=off")
    d = on.delivered or {}
    if d.get("lost"):
        found.append(f"{d['lost']} events lost")
    if d.get("stored") != d.get("unique"):
        found.append(f"{d.get('stored')} events stored, {d.get('unique')} accepted")
    if d.get("by_name", {}).get("Purchase") != on.paid:
        found.append("not one Purchase per paid order")
    if d.get("by_name", {}).get("InitiateCheckout") != on.created:
        found.append("not one InitiateCheckout per order")
    missing = sum(1 for o in on.completed if not (o.checkout_event_id and o.purchase_event_id))
    if missing:
        found.append(f"{missing} orders' pages gave the pixel no eventID")
    return found


def record(args: argparse.Namespace, on: Run, off: Run, trouble: list[str]) -> None:
    on_orders, off_orders = [o.seconds for o in on.measured], [o.seconds for o in off.measured]
    d = on.delivered or {}
    lags = d.get("lags") or [float("nan")]
    tracked = ", ".join(
        f"{step} {ms(p50(on.step(step)))} / {ms(p50(off.step(step)))}" for step in TRACKED_STEPS
    )
    machine = f"{os.cpu_count()} cores, Python {platform.python_version()}"
    load = f"{args.server} x{args.web_workers if args.server == 'gunicorn' else 1}, {args.clients} clients, {args.seconds:g} s"
    if args.rate:
        load += f", open loop {args.rate:g} orders/s"
    if args.warmup_orders:
        load += f", warm-up {args.warmup_orders}"
    row = (
        f"| {datetime.now(UTC):%Y-%m-%d} | {machine} | {load} "
        f"| {len(on.completed):,} / {len(off.completed):,} "
        f"| {len(on.completed) / on.seconds:.1f} / {len(off.completed) / off.seconds:.1f} "
        f"| {ms(p50(on_orders))} / {ms(p50(off_orders))} = {ratio(p50(on_orders), p50(off_orders))} "
        f"| {ms(p99(on_orders))} / {ms(p99(off_orders))} = {ratio(p99(on_orders), p99(off_orders))} "
        f"| {tracked} "
        f"| {ms(on.web_cpu / max(1, len(on.completed)))} / {ms(off.web_cpu / max(1, len(off.completed)))} "
        f"| {ms(p50(lags))} / {ms(p99(lags))} / {ms(max(lags))} "
        f"| {d.get('unique', 0):,} / {d.get('stored', 0):,} / {d.get('accepted', 0):,} "
        f"in {d.get('requests', 0):,} requests "
        f"| {'; '.join(trouble) or 'none'} |\n"
    )
    from benchmarks.drain import add_row

    add_row(LOAD, HEADER, row)


HEADER = """# Load benchmark results

Produced by `python -m benchmarks.load` (see its docstring). Each row is one run of two
halves on the same machine, each on a fresh PostgreSQL database: client processes place
orders back to back through the demo shop's real views over HTTP (10 requests per order:
products, consent, products, add to cart, cart, checkout, details, payment page, pay,
thank-you), once
with django_capi and once with `DEMO_CAPI=off` (same views; no middleware, no events, the
pixel tags render nothing), while the demo's Celery worker (2 processes, with beat) delivers
to the fake Graph API. "with / without" pairs; latencies are per whole order (its 10
requests one after the other), each client's first order excluded; "checkout" is the
GET /checkout/ request that records InitiateCheckout, "pay" the POST /pay/ that records
Purchase (p50, ms). Lag: fake API acceptance minus the event row's `created_at`. Events:
accepted once / stored / accepted in all (more means duplicates), in how many requests.
Rows whose load says "open loop R orders/s" (`--rate R`) start orders at that fixed rate
instead of back to back, below saturation, so their latency ratio shows the cost per
request rather than the queue it causes; those rows (and later ones) also place a few
warm-up orders per web process before measuring (`--warmup-orders`).

| date | machine | load | orders | orders/s | order p50 ms (ratio) | order p99 ms (ratio) | tracked requests p50 ms | web CPU ms/order | lag p50 / p99 / max ms | events unique / stored / accepted | problems |
|---|---|---|---|---|---|---|---|---|---|---|---|
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--orders", type=int, default=0, help="stop each half after N orders")
    parser.add_argument("--clients", type=int, default=4, help="client processes")
    parser.add_argument("--seconds", type=float, default=60, help="length of each half")
    parser.add_argument("--warmup", type=int, default=1, help="first orders per client not timed")
    parser.add_argument(
        "--warmup-orders",
        type=int,
        default=None,
        help="orders placed before measuring, to warm the web server up (default 3 per web "
        "worker process)",
    )
    parser.add_argument(
        "--rate",
        type=float,
        default=0.0,
        help="open loop: start R orders per second in all (0: closed loop, back to back)",
    )
    parser.add_argument("--server", default=default_server(), choices=["gunicorn", "runserver"])
    parser.add_argument("--web-workers", type=int, default=4, help="gunicorn worker processes")
    parser.add_argument("--worker-processes", type=int, default=2, help="Celery pool size")
    parser.add_argument("--drain-timeout", type=float, default=180, help="seconds to wait")
    parser.add_argument("--no-record", action="store_true", help="do not append to LOAD.md")
    args = parser.parse_args()
    if args.warmup_orders is None:
        args.warmup_orders = 3 * (args.web_workers if args.server == "gunicorn" else 1)

    sys.path.insert(0, str(ROOT))
    from tests.workers import RedisServer  # the tests' private broker

    db_url = os.environ.get("LOAD_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/capi_load")
    if "conn_max_age" not in db_url:  # persistent connections, as a production site has
        db_url += ("&" if "?" in db_url else "?") + "conn_max_age=600"
    broker = RedisServer(f"redis://127.0.0.1:{free_port()}/0").start()
    try:
        on = run_once(args, capi=True, db_url=db_url, broker=broker.url)
        off = run_once(args, capi=False, db_url=db_url, broker=broker.url)
    finally:
        broker.stop()
    trouble = problems(on, off)
    on_orders, off_orders = [o.seconds for o in on.measured], [o.seconds for o in off.measured]
    print("\n--- with / without django_capi")
    print(f"order latency p50 ratio: {ratio(p50(on_orders), p50(off_orders))}")
    print(f"order latency p99 ratio: {ratio(p99(on_orders), p99(off_orders))}")
    print("problems: " + ("; ".join(trouble) or "none"))
    if not args.no_record:
        record(args, on, off, trouble)
    if trouble:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
