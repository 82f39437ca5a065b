"""Headless Chromium: the demo shop end to end, and hostile values in a real browser.

The end-to-end test walks the demo shop (example_project, served by ``runserver`` in a
subprocess) to a purchase, with Meta's fbevents.js blocked, and checks that the pixel calls
left in ``fbq.queue`` carry the same eventIDs and custom data as the InitiateCheckout and
Purchase events that the fake Graph API received from a real Celery worker process (a real
Redis broker, the test database). Worker and web server must share the database, so it
needs PostgreSQL (``DATABASE_URL``).
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from django.db import connection
from django.template import Context, Template
from django.test import RequestFactory

from django_capi.models import Event, EventStatus
from tests.conftest import PIXEL, TOKEN
from tests.fake_graph_api import FakeGraphAPI
from tests.shop.conftest import OrderEvents
from tests.shop.processes import (
    browser_missing,
    chromium,
    http_ok,
    manage_py,
    pixel_event,
    pixel_queue,
    port_open,
    redis_server,
    run_command,
    running,
    wait_for,
)
from tests.testapp.models import Order
from tests.workers import free_port

pytestmark = pytest.mark.skipif(bool(browser_missing()), reason=browser_missing() or "")

FBCLID = "IwAR0E2e_Click-IdWithCASE"
NASTY = "\"'</script><script>window.pwned=1</script><!--\u2028\u2029&amp; é 😀 ${x}\\"


@pytest.fixture
def browser() -> Iterator[Any]:
    with chromium() as driver:
        yield driver


# --- hostile values, executed -----------------------------------------------------------------


@pytest.mark.django_db
def test_hostile_values_stay_data_in_a_real_browser(browser, tmp_path: Path) -> None:
    adapter = OrderEvents()
    adapter.extra = {"note": NASTY, NASTY: NASTY}
    adapter.contents = lambda order: [{"id": NASTY, "quantity": 1, "item_price": 2}]
    order = Order.objects.create(reference="X1", email="x@example.com", total=2)
    from django_capi.shop import order_custom_data, orders

    orders.register(Order, adapter)
    try:
        page = Template(
            "{% load capi %}<!DOCTYPE html><html><head>{% capi_pixel %}</head><body>"
            '<p id="marker">ok</p>{% capi_track order "Purchase" %}</body></html>'
        ).render(Context({"request": RequestFactory().get("/"), "order": order}))
        expected = json.loads(json.dumps(order_custom_data(order, "Purchase")))
    finally:
        orders.unregister(Order)
    path = tmp_path / "page.html"
    path.write_text(page, encoding="utf-8")
    browser.get(path.as_uri())
    assert browser.execute_script("return window.pwned === undefined")
    assert browser.execute_script("return document.querySelectorAll('script').length") == 3
    purchase = pixel_event(pixel_queue(browser), "Purchase")
    assert purchase[2] == expected
    assert purchase[2]["note"] == NASTY


# --- the demo shop, end to end -------------------------------------------------------------------


def _database_url() -> str:
    db = connection.settings_dict
    credentials = quote(db["USER"] or "", safe="")
    if db.get("PASSWORD"):
        credentials += ":" + quote(db["PASSWORD"], safe="")
    host = db.get("HOST") or "127.0.0.1"
    port = db.get("PORT") or 5432
    return f"postgres://{credentials}@{host}:{port}/{db['NAME']}"


@pytest.fixture
def shop() -> Iterator[dict[str, Any]]:
    """Fake API, Redis, a Celery worker (tests.celery_app) and the demo shop, on loopback."""
    redis_port, web_port = free_port(), free_port()
    broker = f"redis://127.0.0.1:{redis_port}/0"
    database = _database_url()
    with FakeGraphAPI(tokens={PIXEL: TOKEN}) as api:
        shop_env = {
            "DJANGO_SETTINGS_MODULE": "example_project.settings",
            "DATABASE_URL": database,
            "CELERY_BROKER_URL": broker,
            "CAPI_PIXEL_ID": PIXEL,
            "CAPI_ACCESS_TOKEN": TOKEN,
            "CAPI_API_BASE_URL": api.url,
            "PYTHONUNBUFFERED": "1",
        }
        # The demo's own setup: migrations (the shop's tables), products, an admin user.
        setup = run_command(manage_py("demo", "--setup-only"), shop_env)
        assert re.search(r"user: admin\s+password: \S+", setup), setup
        worker_env = {
            "DJANGO_SETTINGS_MODULE": "tests.settings",
            "DATABASE_URL": database,
            "CELERY_BROKER_URL": broker,
            "CAPI_TEST_OVERRIDES": json.dumps(
                {"API_BASE_URL": api.url, "QUEUE_ON_COMMIT": True, "READ_TIMEOUT": 10.0}
            ),
        }
        worker_command = [
            "-m", "celery", "-A", "tests.celery_app", "worker", "--pool", "solo",
            "--loglevel", "INFO", "--without-gossip", "--without-mingle", "--without-heartbeat",
        ]  # fmt: skip
        with (
            running("redis", redis_server(redis_port), {}) as redis,
            running("worker", [sys.executable, *worker_command], worker_env) as worker,
            running(
                "web", manage_py("runserver", "--noreload", f"127.0.0.1:{web_port}"), shop_env
            ) as web,
        ):
            wait_for(lambda: redis.check_alive() and port_open(redis_port), what="redis")
            base = f"http://127.0.0.1:{web_port}"
            wait_for(lambda: web.check_alive() and http_ok(base + "/"), what="the demo shop")
            yield {"base": base, "api": api, "worker": worker, "web": web}


def _click(driver: Any, css: str) -> None:
    from selenium.webdriver.common.by import By

    driver.find_element(By.CSS_SELECTOR, css).click()


def _on_page(driver: Any, css: str) -> Any:
    from selenium.webdriver.common.by import By

    def found() -> Any:
        elements = driver.find_elements(By.CSS_SELECTOR, css)
        return elements[0] if elements else None

    return wait_for(found, what=f"{css} on {driver.current_url}")


def _received(api: FakeGraphAPI, event_id: str) -> dict[str, Any] | None:
    matches = [event for event in list(api.received) if event.get("event_id") == event_id]
    assert len(matches) <= 1, matches
    return matches[0] if matches else None


@pytest.mark.django_db(transaction=True)
@pytest.mark.skipif(
    connection.vendor != "postgresql",
    reason="the Celery worker and the shop's web server need a shared database: "
    "run with DATABASE_URL=postgres://...",
)
def test_demo_shop_purchase_deduplicates_browser_and_server_events(shop, browser) -> None:
    from selenium.webdriver.common.by import By

    api: FakeGraphAPI = shop["api"]
    browser.get(f"{shop['base']}/?fbclid={FBCLID}")
    assert pixel_queue(browser) == []  # no consent yet: no pixel
    assert browser.get_cookie("_fbp") is None

    _click(browser, "#consent-accept")
    wait_for(lambda: browser.get_cookie("_fbp"), what="the server-set _fbp cookie")
    fbp = browser.get_cookie("_fbp")["value"]
    fbc = browser.get_cookie("_fbc")["value"]
    assert re.fullmatch(rf"fb\.1\.\d{{13}}\.{FBCLID}", fbc)  # the fbclid's case kept
    assert pixel_queue(browser)[-1] == ["track", "PageView"]

    _click(browser, ".add-to-cart")
    _on_page(browser, "#checkout-link").click()
    _on_page(browser, "#checkout-form")
    checkout = pixel_event(pixel_queue(browser), "InitiateCheckout")
    for field, value in {
        "email": "Ada.Lovelace@Example.com",
        "first_name": "Ada",
        "last_name": "Lovelace",
        "phone": "(650) 555-1212",
        "city": "Menlo Park",
        "postal_code": "94025",
    }.items():
        browser.find_element(By.ID, f"id_{field}").send_keys(value)
    _click(browser, "#to-payment")
    _on_page(browser, "#pay-now").click()
    _on_page(browser, "#thanks")
    purchase = pixel_event(pixel_queue(browser), "Purchase")
    user_agent = browser.execute_script("return navigator.userAgent")

    checkout_id, purchase_id = checkout[3]["eventID"], purchase[3]["eventID"]
    assert checkout_id != purchase_id
    assert browser.find_element(By.ID, "purchase-event-id").text == purchase_id

    # The worker delivered the server events, with the same ids and custom data.
    wait_for(
        lambda: (
            shop["worker"].check_alive()
            and _received(api, checkout_id)
            and _received(api, purchase_id)
        ),
        what="InitiateCheckout and Purchase at the fake Graph API",
    )
    server_checkout, server_purchase = _received(api, checkout_id), _received(api, purchase_id)
    assert server_checkout["event_name"] == "InitiateCheckout"
    assert server_purchase["event_name"] == "Purchase"
    assert server_checkout["custom_data"] == checkout[2]
    assert server_purchase["custom_data"] == purchase[2]
    assert set(purchase[2]) >= {"value", "currency", "content_ids", "contents", "num_items"}
    assert Decimal(str(purchase[2]["value"])) > 0

    # The Purchase was recorded by the payment confirmation, without a request: the browser
    # data comes from the checkout and matches what the browser has.
    for event in (server_checkout, server_purchase):
        user_data = event["user_data"]
        assert user_data["fbp"] == fbp
        assert user_data["fbc"] == fbc
        assert user_data["client_user_agent"] == user_agent
        assert user_data["client_ip_address"] == "127.0.0.1"
        assert event["event_source_url"].startswith(shop["base"] + "/checkout/")
    assert {"em", "ph", "fn", "ln", "external_id"} <= set(server_purchase["user_data"])

    wait_for(
        lambda: Event.objects.filter(event_id=purchase_id, status=EventStatus.SENT).exists(),
        what="the Purchase marked sent",
    )

    # Revisiting the thank-you page renders the same eventID and records nothing new.
    browser.refresh()
    _on_page(browser, "#thanks")
    assert pixel_event(pixel_queue(browser), "Purchase")[3]["eventID"] == purchase_id
    assert Event.objects.filter(event_name="Purchase").count() == 1
    assert Event.objects.filter(event_name="InitiateCheckout").count() == 1
    assert api.received_ids(PIXEL).count(purchase_id) == 1
