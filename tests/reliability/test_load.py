"""Orders placed concurrently through the demo shop's real views while a worker delivers.

A small functional version of ``python -m benchmarks.load``, with its processes: the demo
shop (example_project) served on loopback by the benchmark's server (gunicorn when the
``bench`` extra is installed, else Django's threaded runserver; ``CAPI_LOAD_SERVER`` picks
one) on the test database, the demo's Celery worker (``celery -A example_project worker
-B``), a private redis-server and the fake Graph API. Client threads place 40 orders at
once over HTTP, as browsers would. Every order must leave one InitiateCheckout and one
Purchase carrying the eventIDs its pages gave the pixel, each accepted exactly once by the
fake API, and nothing pending. No timing is asserted. The web server and the worker share
the database, so this needs PostgreSQL (``DATABASE_URL``).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from django.db import connection

from benchmarks.load import PIXEL, TOKEN, default_server, place_order, running_shop, shop_env
from django_capi.models import Event, EventStatus
from tests.fake_graph_api import FakeGraphAPI
from tests.workers import RedisServer, free_port, wait_for, worker_database_url

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(
        connection.vendor != "postgresql",
        reason="the web server and the worker need a shared database: "
        "run with DATABASE_URL=postgres://...",
    ),
]

ORDERS = 40
CLIENTS = 4


@pytest.fixture
def shop(transactional_db: Any) -> Iterator[dict[str, Any]]:
    broker = RedisServer(f"redis://127.0.0.1:{free_port()}/0").start()
    try:
        with FakeGraphAPI(tokens={PIXEL: TOKEN}) as api:
            env = shop_env(worker_database_url(), broker.url, api.url)
            with running_shop(env, server=default_server(), web_workers=3) as running:
                yield {"base": running.base, "api": api, "worker": running.worker}
    finally:
        broker.stop()
        with connection.cursor() as cursor:  # the shop's tables are not the tests' models
            cursor.execute("TRUNCATE shop_orderline, shop_order")


def test_concurrent_orders_each_deliver_both_events_exactly_once(shop) -> None:
    api: FakeGraphAPI = shop["api"]
    with ThreadPoolExecutor(CLIENTS) as clients:
        orders = list(clients.map(lambda n: place_order(shop["base"], n), range(ORDERS)))

    assert [o.error for o in orders if o.error] == []
    # every page gave the pixel its eventID
    assert [o for o in orders if not (o.checkout_event_id and o.purchase_event_id)] == []
    checkout_ids = {str(o.checkout_event_id) for o in orders}
    purchase_ids = {str(o.purchase_event_id) for o in orders}
    assert len(checkout_ids) == len(purchase_ids) == ORDERS
    announced = checkout_ids | purchase_ids
    assert len(announced) == 2 * ORDERS

    unfinished = Event.objects.filter(status__in=[EventStatus.PENDING, EventStatus.SENDING])
    wait_for(
        lambda: (
            shop["worker"].alive()
            and announced <= set(api.received_ids(PIXEL))
            and not unfinished.exists()
        ),
        timeout=180,
        what="every order's events delivered",
    )

    received = Counter(api.received_ids(PIXEL))
    assert set(received) == announced  # nothing else was sent
    assert [i for i, n in received.items() if n != 1] == []  # each exactly once
    names = {str(e["event_id"]): e["event_name"] for e in list(api.received)}
    assert {names[i] for i in checkout_ids} == {"InitiateCheckout"}
    assert {names[i] for i in purchase_ids} == {"Purchase"}

    stored = list(Event.objects.values_list("event_id", "event_name", "status"))
    assert len(stored) == 2 * ORDERS
    assert {i for i, name, _ in stored if name == "InitiateCheckout"} == checkout_ids
    assert {i for i, name, _ in stored if name == "Purchase"} == purchase_ids
    assert {status for _, _, status in stored} == {EventStatus.SENT}
    with connection.cursor() as cursor:
        cursor.execute("SELECT status, count(*) FROM shop_order GROUP BY status")
        assert dict(cursor.fetchall()) == {"paid": ORDERS}
