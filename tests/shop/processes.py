"""Small helpers for the browser tests: processes on loopback, a headless Chromium."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from tests import workers
from tests.browser import browser_missing, chromium_driver

__all__ = ["browser_missing"]  # re-exported for the shop's browser tests

REPO_ROOT = Path(__file__).resolve().parents[2]
# Generous: the machine is shared and slow at times. Nothing asserts how long things take.
WAIT = 120.0


def wait_for(condition: Callable[[], Any], *, what: str, timeout: float = WAIT) -> Any:
    """Poll ``condition`` until it returns something truthy; fail naming ``what``."""
    return workers.wait_for(condition, what=what, timeout=timeout)


class Process:
    """A subprocess whose output goes to a log file, shown when a test fails."""

    def __init__(self, name: str, command: list[str], env: Mapping[str, str]) -> None:
        self.name = name
        self.log = Path(tempfile.mkstemp(prefix=f"capi-{name}-", suffix=".log")[1])
        with self.log.open("wb") as out:
            self.popen = subprocess.Popen(  # noqa: S603 (our own command line)
                command,
                cwd=REPO_ROOT,
                env={**os.environ, **env},
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def output(self) -> str:
        return self.log.read_text(errors="replace")[-6000:]

    def check_alive(self) -> bool:
        if self.popen.poll() is not None:
            raise AssertionError(f"{self.name} exited:\n{self.output()}")
        return True

    def stop(self) -> None:
        if self.popen.poll() is None:
            self.popen.terminate()
            try:
                self.popen.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait(timeout=10)
        self.log.unlink(missing_ok=True)


@contextmanager
def running(name: str, command: list[str], env: Mapping[str, str]) -> Iterator[Process]:
    process = Process(name, command, env)
    try:
        yield process
    finally:
        process.stop()


def run_command(command: list[str], env: Mapping[str, str]) -> str:
    result = subprocess.run(  # noqa: S603 (our own command line)
        command,
        cwd=REPO_ROOT,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=WAIT,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def manage_py(*args: str) -> list[str]:
    return [sys.executable, str(REPO_ROOT / "manage.py"), *args]


def redis_server(port: int) -> list[str]:
    return [
        shutil.which("redis-server") or "/usr/bin/redis-server",
        "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
    ]  # fmt: skip


def port_open(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def http_ok(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:  # noqa: S310 (loopback)
            return bool(response.status == 200)
    except (urllib.error.URLError, OSError):
        return False


@contextmanager
def chromium() -> Iterator[Any]:
    """Headless Chromium driven by the system chromedriver (never Selenium Manager).

    Requests to Meta (fbevents.js, the noscript image) are blocked, so ``fbq.queue`` keeps
    every pixel call the page made.
    """
    profile = tempfile.mkdtemp(prefix="capi-chromium-")
    driver = chromium_driver(profile)
    try:
        driver.execute_cdp_cmd("Network.enable", {})
        driver.execute_cdp_cmd(
            "Network.setBlockedURLs",
            {"urls": ["*connect.facebook.net*", "*www.facebook.com*"]},
        )
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


def pixel_queue(driver: Any) -> list[list[Any]]:
    """The page's ``fbq.queue``: each pixel call's arguments."""
    return list(
        driver.execute_script(
            "return window.fbq ? window.fbq.queue.map(function (args) {"
            " return Array.prototype.slice.call(args); }) : [];"
        )
    )


def pixel_event(calls: list[list[Any]], event_name: str) -> list[Any]:
    """The ``fbq('track', event_name, ...)`` call among ``calls``."""
    found = [call for call in calls if call[:2] == ["track", event_name]]
    assert len(found) == 1, calls
    return found[0]
