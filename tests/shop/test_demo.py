"""``python manage.py demo``: one command, offline, delivers through its background loop."""

from __future__ import annotations

import re
from pathlib import Path

import requests

from tests.shop.processes import http_ok, manage_py, running, wait_for
from tests.workers import free_port


def _csrf(html: str) -> str:
    match = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', html)
    assert match, html
    return match.group(1)


def test_demo_runs_the_shop_and_delivers_without_a_broker_or_internet(tmp_path: Path) -> None:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = {
        "DJANGO_SETTINGS_MODULE": "example_project.settings",
        "DATABASE_URL": f"sqlite:///{tmp_path / 'demo.sqlite3'}",
        "CELERY_BROKER_URL": "",
        "CAPI_ACCESS_TOKEN": "",
        "CAPI_API_BASE_URL": "",
        "PYTHONUNBUFFERED": "1",
    }
    with running("demo", manage_py("demo", f"127.0.0.1:{port}"), env) as demo:
        wait_for(lambda: demo.check_alive() and http_ok(base + "/"), what="the demo shop")
        assert re.search(r"user: admin\s+password: \S+", demo.output()), demo.output()
        assert "console transport" in demo.output()

        browser = requests.Session()
        browser.headers["User-Agent"] = "Mozilla/5.0 (demo test)"
        page = browser.get(base + "/?fbclid=DemoClick")
        page = browser.post(
            base + "/consent/",
            data={"csrfmiddlewaretoken": _csrf(page.text), "choice": "accept", "next": "/"},
        )
        assert "_fbp" in browser.cookies
        page = browser.post(
            base + "/", data={"csrfmiddlewaretoken": _csrf(page.text), "product": 1}
        )
        page = browser.get(base + "/checkout/")
        page = browser.post(
            base + "/checkout/",
            data={
                "csrfmiddlewaretoken": _csrf(page.text),
                "email": "grace@example.com",
                "first_name": "Grace",
                "last_name": "Hopper",
                "country": "US",
            },
        )
        assert "/pay/" in page.url, page.text
        page = browser.post(page.url, data={"csrfmiddlewaretoken": _csrf(page.text)})
        assert "/thanks/" in page.url
        purchase_id = re.search(r'"Purchase",\{.*?\},\{"eventID":"([0-9a-f]+)"\}', page.text)
        assert purchase_id, page.text

        # The delivery loop hands the events to the console transport, which prints them.
        wait_for(
            lambda: demo.check_alive() and purchase_id.group(1) in demo.output(),
            what="the Purchase printed by the console transport",
        )
        assert "Conversions API request to dataset" in demo.output()
