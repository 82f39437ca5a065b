"""The dashboard in a real browser: headless Chromium logs in, looks, and takes a screenshot.

Needs Debian's chromium and chromedriver (/usr/bin); skipped where they are missing. The
driver is given explicitly, so Selenium never tries to download one.
"""

from __future__ import annotations

import shutil
from datetime import timedelta
from pathlib import Path

import django.contrib.admin
import pytest
from django.test.utils import override_settings
from django.utils import timezone

from django_capi.models import DatasetState, Event
from tests.admin.factories import ALL_KEYS, make_event
from tests.browser import browser_missing, chromium_driver
from tests.conftest import OTHER_PIXEL, PIXEL

ADMIN_STATIC = str(Path(django.contrib.admin.__file__).parent / "static")
SCREENSHOT_COPY = Path("/tmp/capi-dashboard.png")  # noqa: S108  (asked for, for people to look at)

pytestmark = pytest.mark.skipif(bool(browser_missing()), reason=browser_missing() or "")


@pytest.fixture(scope="session")
def styled_live_server(request, django_db_setup):
    """pytest-django's live server, started while STATIC_URL is set so it serves the admin's
    CSS (the test settings have no STATIC_URL, which the live server's file handler needs)."""
    with override_settings(STATIC_URL="/static/", STATIC_ROOT=ADMIN_STATIC):
        return request.getfixturevalue("live_server")


@pytest.fixture
def browser(tmp_path):
    driver = chromium_driver(tmp_path / "chromium-profile", "--window-size=1400,1000")
    yield driver
    driver.quit()


def shop_week() -> None:
    """A few days of a shop: sent, failed, pending, one paused dataset."""
    now = timezone.now()
    for hours in (1, 1, 2, 3, 3, 3, 5, 8, 13, 21, 30, 50, 75, 100):
        make_event("Purchase", status="sent", age=timedelta(hours=hours), keys=ALL_KEYS)
    for hours in (2, 4, 4, 9):
        make_event("ViewContent", status="sent", age=timedelta(hours=hours), keys=("fbp",))
    make_event(
        "Purchase",
        status="failed",
        age=timedelta(hours=3),
        last_error_code=100,
        last_error_subcode=2804016,
        last_error_message="[100/2804016] User Parameter Not Hashed: em must be hashed",
    )
    make_event("Lead", status="pending", dataset_id=OTHER_PIXEL, age=timedelta(hours=6))
    Event.objects.filter(status="pending").update(next_attempt_at=now - timedelta(hours=5))
    DatasetState.objects.create(
        dataset_id=OTHER_PIXEL,
        paused_at=now - timedelta(hours=5),
        pause_code=190,
        pause_reason="[190] Error validating access token: Session has expired",
    )


@pytest.mark.django_db(transaction=True)
def test_dashboard_renders_in_chromium(
    styled_live_server, live_server, browser, settings, django_user_model, tmp_path
):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions
    from selenium.webdriver.support.ui import WebDriverWait

    settings.STATIC_URL = "/static/"
    settings.STATIC_ROOT = ADMIN_STATIC
    settings.CAPI = {
        **settings.CAPI,
        "DATASETS": {PIXEL: {"LABEL": "Main shop"}, OTHER_PIXEL: {"ACCESS_TOKEN": "EAAx"}},
    }
    django_user_model.objects.create_superuser("boss", "boss@example.com", "s3cret-pass")
    shop_week()

    dashboard = f"{live_server.url}/admin/django_capi/event/dashboard/"
    browser.get(f"{live_server.url}/admin/login/?next=/admin/django_capi/event/dashboard/")
    browser.find_element(By.NAME, "username").send_keys("boss")
    browser.find_element(By.NAME, "password").send_keys("s3cret-pass")
    browser.find_element(By.CSS_SELECTOR, "input[type=submit]").click()
    wait = WebDriverWait(browser, 60)  # generous: a ceiling on a busy machine, not a measurement
    wait.until(expected_conditions.presence_of_element_located((By.CSS_SELECTOR, "svg.capi-chart")))
    assert browser.current_url == dashboard

    # The chart: 24 hourly groups of two bars, drawn by the browser with a real size.
    chart = browser.find_element(By.CSS_SELECTOR, "svg.capi-chart")
    assert chart.size["width"] > 300 and chart.size["height"] > 100
    sent_bars = browser.find_elements(By.CSS_SELECTOR, "svg.capi-chart rect[data-series=sent]")
    failed_bars = browser.find_elements(By.CSS_SELECTOR, "svg.capi-chart rect[data-series=failed]")
    assert len(sent_bars) == len(failed_bars) == 24
    assert sum(int(bar.get_attribute("data-value")) for bar in sent_bars) == 14
    assert any(
        bar.size["height"] > 0 for bar in sent_bars if bar.get_attribute("data-value") != "0"
    )

    # The tables, with their numbers visible.
    counts = browser.find_element(By.ID, "capi-counts")
    purchase = counts.find_element(By.CSS_SELECTOR, "tr[data-event-name=Purchase]")
    assert purchase.is_displayed()
    assert purchase.text.split()[0] == "Purchase" and purchase.text.split()[-1] == "11"
    datasets = browser.find_element(By.ID, "capi-datasets").text
    assert "Main shop" in datasets and "paused" in datasets and "lagging" not in datasets
    assert "generate a new one in Events Manager" in datasets
    errors = browser.find_element(By.ID, "capi-errors").text
    assert "100/2804016 User parameter not hashed" in errors
    coverage = browser.find_element(By.ID, "capi-coverage")
    score = coverage.find_element(By.CSS_SELECTOR, "tr[data-event-name=Purchase] .capi-score")
    # 10 of the 11 Purchases of the last 24 h carry every key, 1 only em + IP + user agent:
    # 3 + 1.5 + (2 + 0.5 + 1 + 1 + 1) * 10/11 = 9.5
    assert score.text.startswith("9.5/10")
    assert "Delivery needs attention." in browser.find_element(By.ID, "capi-health").text

    # A full-page screenshot, kept with the test and copied for people to look at.
    height = browser.execute_script("return document.documentElement.scrollHeight")
    browser.set_window_size(1400, min(int(height) + 40, 6000))
    shot = tmp_path / "capi-dashboard.png"
    assert browser.save_screenshot(str(shot))
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 20_000
    shutil.copyfile(shot, SCREENSHOT_COPY)

    # The event list renders too, badges and all.
    browser.get(f"{live_server.url}/admin/django_capi/event/")
    badges = browser.find_elements(By.CSS_SELECTOR, "#result_list .capi-badge")
    assert {b.text for b in badges} >= {"Sent", "Failed", "Pending"}
    browser.save_screenshot(str(tmp_path / "capi-events.png"))
    shutil.copyfile(tmp_path / "capi-events.png", SCREENSHOT_COPY.with_name("capi-events.png"))
