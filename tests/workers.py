"""Real processes for the delivery tests: a private Redis broker and Celery worker processes.

The broker is a ``redis-server`` of the tests' own on the port ``tests/settings.py`` put in
``CELERY_BROKER_URL``, so a test can stop and restart it without touching the machine's
Redis. Workers run ``celery -A tests.celery_app worker`` against the test database, with
their CAPI overrides passed as JSON in ``CAPI_TEST_OVERRIDES``.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from django.db import connection

ROOT = Path(__file__).resolve().parent.parent


def wait_for(
    predicate: Callable[[], Any],
    *,
    timeout: float = 90,
    every: float = 0.2,
    what: str = "condition",
    tick: Callable[[], None] | None = None,
) -> Any:
    """Poll until ``predicate()`` is truthy; fail with ``what`` after a generous deadline.

    ``tick`` runs before each poll (e.g. to send the periodic sweep, standing in for beat).
    """
    deadline = time.monotonic() + timeout
    while True:
        if tick is not None:
            tick()
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(every)


def free_port() -> int:
    """A TCP port on loopback that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class RedisServer:
    """A throw-away redis-server on the broker port from the environment."""

    def __init__(self, url: str | None = None) -> None:
        self.url = url or os.environ["CELERY_BROKER_URL"]
        parts = urlsplit(self.url)
        self.port = parts.port or 6379
        self.process: subprocess.Popen[bytes] | None = None
        self.dir = tempfile.mkdtemp(prefix="capi-redis-")

    def start(self) -> RedisServer:
        binary = shutil.which("redis-server") or "/usr/bin/redis-server"
        self.process = subprocess.Popen(  # noqa: S603
            [
                binary,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                self.dir,
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_for(self._accepts, timeout=20, what=f"redis-server on port {self.port}")
        return self

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(timeout=20)
            self.process = None

    def _accepts(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=1) as sock:
                sock.sendall(b"PING\r\n")
                return sock.recv(16).startswith(b"+PONG")
        except OSError:
            return False


def worker_database_url() -> str:
    """The URL of the database the tests run on (pytest-django's test database)."""
    params = connection.settings_dict
    user = params.get("USER") or "postgres"
    password = f":{params['PASSWORD']}" if params.get("PASSWORD") else ""
    host = params.get("HOST") or "127.0.0.1"
    port = params.get("PORT") or 5432
    return f"postgres://{user}{password}@{host}:{port}/{params['NAME']}"


class CeleryWorker:
    """``celery worker`` in its own process group, so SIGKILL takes its children too."""

    def __init__(
        self,
        overrides: dict[str, Any],
        *,
        name: str = "w1",
        concurrency: int = 2,
        queue: str = "celery",
    ):
        self.name = name
        self.log = Path(tempfile.mkstemp(prefix=f"capi-worker-{name}-", suffix=".log")[1])
        self.env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "tests.settings",
            "DATABASE_URL": worker_database_url(),
            "CAPI_TEST_OVERRIDES": json.dumps(overrides),
            "PYTHONPATH": str(ROOT),
        }
        self.args = [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "tests.celery_app",
            "worker",
            "-P",
            "prefork",
            "-c",
            str(concurrency),
            "-n",
            f"{name}@%h",
            "-Q",
            queue,
            "--without-gossip",
            "--without-mingle",
            "--without-heartbeat",
            "-l",
            "INFO",
        ]
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> CeleryWorker:
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(  # noqa: S603
                self.args,
                env=self.env,
                cwd=ROOT,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        wait_for(
            lambda: b"ready." in self.log.read_bytes() or self._died(),
            timeout=60,
            what=f"worker {self.name} to start",
        )
        if self._died():
            raise AssertionError(f"worker {self.name} died:\n{self.output()}")
        return self

    def _died(self) -> bool:
        return self.process is not None and self.process.poll() is not None

    def kill(self) -> None:
        """SIGKILL the worker and its pool processes: no cleanup, as in a crash."""
        if self.process is not None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=20)
            self.process = None

    def stop(self) -> None:
        if self.process is not None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.kill()
            self.process = None

    def output(self) -> str:
        return self.log.read_text(errors="replace")
