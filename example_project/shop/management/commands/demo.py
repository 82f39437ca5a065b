"""``python manage.py demo``: set up the demo shop and run it with event delivery.

Migrates, creates the products and an ``admin`` user (its password is printed), then runs
the web server and delivery: a Celery worker (with beat) when ``CELERY_BROKER_URL`` is set,
otherwise a background thread running the ``capi_deliver --loop`` sweep. Without
``CAPI_ACCESS_TOKEN`` nothing leaves the machine: events are printed by the console
transport, or, with ``--sandbox``, sent to a fake Graph API started in this process.
"""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
import tempfile
import threading
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import close_old_connections

from django_capi import conf
from example_project.shop.models import Product

PRODUCTS = [
    ("MUG-001", "Django mug", "A mug for slow mornings and fast migrations.", "12.50"),
    ("TEE-002", "Pony T-shirt", "Soft cotton, pony print, unisex.", "24.00"),
    ("STK-003", "Sticker pack", "Ten stickers for your laptop lid.", "4.99"),
    ("BK-004", "Conversions handbook", "Everything about events that count once.", "39.90"),
]
REPO_ROOT = Path(__file__).resolve().parents[4]
DELIVERY_INTERVAL = 2.0


class Command(BaseCommand):
    help = "Set up and run the demo shop: migrations, products, an admin user, server, delivery."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "addrport", nargs="?", default="127.0.0.1:8000", help="Where to serve the shop."
        )
        parser.add_argument(
            "--setup-only", action="store_true", help="Migrate and create the data, then stop."
        )
        parser.add_argument(
            "--sandbox",
            action="store_true",
            help="Send events to a fake Graph API started in this process (no internet needed).",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        call_command("migrate", interactive=False, verbosity=0)
        created = self.create_products()
        password = self.create_admin()
        self.stdout.write(self.style.SUCCESS("Demo shop ready."))
        if created:
            self.stdout.write(f"  Products created: {created}")
        host = (
            options["addrport"]
            if ":" in options["addrport"]
            else f"127.0.0.1:{options['addrport']}"
        )
        self.stdout.write(f"  Shop:     http://{host}/")
        self.stdout.write(f"  Admin:    http://{host}/admin/  user: admin  password: {password}")
        if options["setup_only"]:
            return

        env: dict[str, str] = {}
        if options["sandbox"]:
            env = self.start_sandbox()
        self.stdout.write(f"  Events:   {self.destination()}")
        worker = self.start_delivery(env)
        self.stdout.write("")
        try:
            call_command("runserver", options["addrport"], use_reloader=False)
        finally:
            if worker is not None:
                worker.terminate()
                try:
                    worker.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    worker.kill()

    # --- setup

    def create_products(self) -> int:
        created = 0
        for sku, name, description, price in PRODUCTS:
            _, was_created = Product.objects.get_or_create(
                sku=sku,
                defaults={"name": name, "description": description, "price": Decimal(price)},
            )
            created += was_created
        return created

    def create_admin(self) -> str:
        password = os.environ.get("DEMO_ADMIN_PASSWORD") or secrets.token_urlsafe(9)
        user_model = get_user_model()
        user, _ = user_model._default_manager.get_or_create(
            username="admin", defaults={"email": "admin@example.com"}
        )
        user.is_staff = user.is_superuser = True
        user.set_password(password)
        user.save()
        return password

    # --- where events go, and who sends them

    def destination(self) -> str:
        transport = str(conf.get_setting("TRANSPORT"))
        if transport.endswith("ConsoleTransport"):
            return "printed here by the console transport (set CAPI_ACCESS_TOKEN to send to Meta)"
        if transport.endswith("LocmemTransport"):
            return "kept in memory (locmem transport)"
        return f"sent to {conf.get_setting('API_BASE_URL')} (dataset {conf.default_dataset_id()})"

    def start_sandbox(self) -> dict[str, str]:
        sys.path.insert(0, str(REPO_ROOT))
        try:
            from tests.fake_graph_api import FakeGraphAPI
        except ImportError as exc:
            raise CommandError(
                "--sandbox needs the repository's tests/fake_graph_api.py (run from a checkout)."
            ) from exc
        api = FakeGraphAPI(tokens=None).start()
        settings.CAPI = {
            **settings.CAPI,
            "API_BASE_URL": api.url,
            "TRANSPORT": "django_capi.transports.graph_api.GraphAPITransport",
        }
        threading.Thread(target=self.report_sandbox, args=(api,), daemon=True).start()
        return {"CAPI_API_BASE_URL": api.url, "CAPI_TRANSPORT": "graph_api"}

    def report_sandbox(self, api: Any) -> None:
        seen = 0
        while True:
            time.sleep(0.5)
            received = list(api.received)
            for event in received[seen:]:
                self.stdout.write(
                    f"[sandbox] received {event.get('event_name')} "
                    f"event_id={event.get('event_id')} "
                    f"custom_data={event.get('custom_data', {})}"
                )
            seen = len(received)

    def start_delivery(self, extra_env: dict[str, str]) -> subprocess.Popen[bytes] | None:
        if settings.CELERY_BROKER_URL:
            schedule = Path(tempfile.gettempdir()) / "django_capi-demo-celerybeat-schedule"
            command = [
                sys.executable, "-m", "celery", "-A", "example_project", "worker", "-B",
                "--loglevel", "INFO", "--concurrency", "2", "--schedule", str(schedule),
            ]  # fmt: skip
            self.stdout.write(f"  Delivery: Celery worker + beat ({settings.CELERY_BROKER_URL})")
            return subprocess.Popen(command, cwd=REPO_ROOT, env={**os.environ, **extra_env})  # noqa: S603
        self.stdout.write(
            f"  Delivery: background thread (capi_deliver --loop {DELIVERY_INTERVAL:g}); "
            "set CELERY_BROKER_URL to use Celery workers"
        )
        threading.Thread(target=delivery_loop, daemon=True, name="capi-delivery").start()
        return None


def delivery_loop() -> None:
    """``manage.py capi_deliver --loop``, restarted if it ever fails (e.g. a locked SQLite)."""
    with open(os.devnull, "w") as devnull:
        while True:
            try:
                call_command("capi_deliver", loop=DELIVERY_INTERVAL, stdout=devnull)
            except Exception as exc:  # keep delivering; the events are safe in the database
                sys.stderr.write(f"delivery loop: {type(exc).__name__}: {exc}; retrying\n")
                close_old_connections()
                time.sleep(DELIVERY_INTERVAL)
