"""Security and privacy: no raw contact data, token or app secret anywhere we keep or show.

Realistic traffic (orders through the shop signals, direct ``track()`` calls with requests,
deliveries to the fake Graph API including a transient error, a rejected event, a token
error and successes), then the admin pages fetched as a superuser. Then a scan of: every
row of every table of the database (django_capi's and all others), the DeliveryAttempt rows,
every log record at DEBUG level, and the admin HTML, for each raw email, phone number, name
and city used (as given and in common normalized forms), the access token and the app
secret. Zero hits is the property; a planted value shows that the scan can fail.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator, Mapping
from decimal import Decimal
from typing import Any
from urllib.parse import quote, quote_plus

import pytest
from django.contrib import admin
from django.db import connection
from django.test import RequestFactory
from django.urls import NoReverseMatch, reverse
from django.utils import timezone
from django.utils.html import escape

from django_capi import track
from django_capi.delivery import engine
from django_capi.models import Dataset, DatasetState, DeliveryAttempt, Event
from django_capi.shop import orders
from django_capi.shop.signals import checkout_started, order_paid
from tests.fake_graph_api import FakeGraphAPI, graph_error, http_error
from tests.testapp.models import Order

pytestmark = pytest.mark.django_db

PIXEL = "1234567890123456"
TOKEN = "EAAprivacy-scan-token-0123456789abcdefXYZ"
APP_SECRET = "app-secret-privacy-scan-9f8e7d6c5b4a"
# A second dataset managed in the admin: its token is kept encrypted in the database.
DB_PIXEL = "6543210987654321"
DB_TOKEN = "EAAdatabase-kept-token-fedcba9876543210"
UA = "Mozilla/5.0 (X11; Linux x86_64) Gecko/20100101 Firefox/130.0"

CUSTOMERS = [
    {
        "em": " Jose.Alvarez+Shop@Example.COM ",
        "ph": "(650) 555-1212",
        "fn": "José",
        "ln": "O'Brien-Álvarez",
        "ct": "São Paulo",
        "st": "California",
        "zp": "94025-1234",
        "country": "United States",
        "external_id": "Customer-Alpha-7781",
        "db": "1985-07-21",
    },
    {
        "em": "marguerite.durand@exemple.fr",
        "ph": "+33 6 12 34 56 78",
        "fn": "Marguerite",
        "ln": "Durand",
        "ct": "Saint-Étienne",
        "country": "France",
        "external_id": "customer-bravo-4410",
    },
    {
        "em": "KWAME.MENSAH@mail.example.org",
        "ph": "020 7946 0958",
        "fn": "Kwame",
        "ln": "Mensah",
        "ct": "Kingston upon Thames",
        "zp": "KT1 1EU",
        "country": "UK",
        "external_id": "customer-charlie-9902",
    },
]


def needles() -> dict[str, str]:
    """Each secret and each piece of contact data, as given and in normalized forms."""
    found: dict[str, str] = {
        "access token": TOKEN,
        "admin dataset token": DB_TOKEN,
        "app secret": APP_SECRET,
    }
    for i, person in enumerate(CUSTOMERS):
        email = person["em"].strip()
        found[f"email {i}"] = email
        found[f"email {i} lowercased"] = email.lower()
        found[f"email {i} local part"] = email.split("@")[0].lower()
        found[f"email {i} url-encoded"] = quote(email, safe="")
        found[f"email {i} form-encoded"] = quote_plus(email)
        found[f"phone {i}"] = person["ph"]
        digits = "".join(ch for ch in person["ph"] if ch.isdigit())
        found[f"phone {i} digits"] = digits
        found[f"phone {i} national"] = digits.lstrip("0")
        for key in ("fn", "ln", "ct"):
            found[f"{key} {i}"] = person[key]
            letters = "".join(ch for ch in person[key].lower() if ch.isalpha())
            if len(letters) >= 5:
                found[f"{key} {i} normalized"] = letters
        found[f"external_id {i}"] = person["external_id"]
        found[f"external_id {i} normalized"] = person["external_id"].lower()
    found["phone 0 e164"] = "16505551212"
    found["phone 1 e164"] = "33612345678"
    found["phone 2 e164"] = "442079460958"
    found["date of birth"] = "19850721"
    return found


def scan(haystacks: Mapping[str, str], wanted: Mapping[str, str]) -> list[str]:
    """``"<what> in <where>"`` for every needle found (case-insensitively)."""
    hits = []
    for where, text in haystacks.items():
        lowered = text.lower()
        for what, needle in wanted.items():
            if needle.lower() in lowered:
                hits.append(f"{what} in {where}")
    return hits


def dump_database() -> Iterator[tuple[str, str]]:
    """``(table, text of all its rows)`` for every table of the database."""
    with connection.cursor() as cursor:
        for table in sorted(connection.introspection.table_names(cursor)):
            cursor.execute(f"SELECT * FROM {connection.ops.quote_name(table)}")  # noqa: S608
            rows = cursor.fetchall()
            yield (
                table,
                "\n".join(repr(row) for row in rows)
                + "\n"
                + "\n".join(str(value) for row in rows for value in row),
            )


class Adapter(orders.OrderAdapter[Order]):
    """The host's adapter: customer data kept beside the test Order (which has no fields)."""

    people: dict[int, dict[str, str]] = {}
    contexts: dict[int, dict[str, Any]] = {}

    def user_data(self, order: Order) -> Mapping[str, Any]:
        return self.people[order.pk]

    def contents(self, order: Order) -> list[dict[str, Any]]:
        return [{"id": f"SKU-{order.reference}", "quantity": 1, "item_price": order.total}]

    def currency(self, order: Order) -> str:
        return "EUR"

    def order_id(self, order: Order) -> str:
        return order.reference

    def get_context(self, order: Order) -> Mapping[str, Any] | None:
        return self.contexts.get(order.pk)

    def save_context(self, order: Order, context: Mapping[str, Any]) -> None:
        self.contexts[order.pk] = dict(context)


@pytest.fixture
def adapter() -> Iterator[Adapter]:
    instance = Adapter()
    orders.register(Order, instance)
    yield instance
    orders.unregister(Order)


@pytest.fixture
def secret_api(settings: Any) -> Iterator[FakeGraphAPI]:
    with FakeGraphAPI(tokens={PIXEL: TOKEN, DB_PIXEL: DB_TOKEN}, app_secret=APP_SECRET) as api:
        settings.CAPI = {
            "PIXEL_ID": PIXEL,
            "ACCESS_TOKEN": TOKEN,
            "APP_SECRET": APP_SECRET,
            "API_BASE_URL": api.url,
            "TRANSPORT": "django_capi.transports.graph_api.GraphAPITransport",
            "CONNECT_TIMEOUT": 2.0,
            "READ_TIMEOUT": 2.0,
            "DEFAULT_COUNTRY": "US",
            "QUEUE_ON_COMMIT": False,
            "RETRY_BASE_DELAY": 0,
        }
        dataset = Dataset(dataset_id=DB_PIXEL, label="Organiser")
        dataset.set_access_token(DB_TOKEN)
        dataset.save()
        yield api


def browser_request(rf: RequestFactory, path: str, **extra: Any) -> Any:
    request = rf.get(
        path,
        HTTP_USER_AGENT=UA,
        REMOTE_ADDR="198.51.100.7",
        HTTP_REFERER="https://shop.example/cart?email=jose.alvarez%2Bshop%40example.com",
        **extra,
    )
    request.COOKIES["_fbp"] = "fb.1.1596403881668.1116446470"
    return request


def realistic_traffic(rf: RequestFactory, adapter: Adapter, api: FakeGraphAPI) -> None:
    for i, person in enumerate(CUSTOMERS):
        # The host keeps the customer's data elsewhere, so that the whole database can be
        # scanned: any hit is django_capi's.
        order = Order.objects.create(reference=f"ORD-{1000 + i}", total=Decimal("49.90"))
        adapter.people[order.pk] = person
        # The page URL carries contact data in the query: it must be scrubbed.
        request = browser_request(rf, f"/checkout/?email={person['em'].strip()}&phone=1")
        checkout_started.send(sender=Order, order=order, request=request)
        order_paid.send(sender=Order, order=order)  # a webhook: no request
        track(
            "Lead",
            request=browser_request(rf, "/newsletter/"),
            user_data={"email": person["em"], "phone": person["ph"], "first_name": person["fn"]},
            custom_data={"content_name": "Newsletter"},
        )
        # Contact data under wrong keys, or unusable, must not be stored raw either.
        track(
            "Contact",
            pixel_id=DB_PIXEL,
            action_source="email",
            user_data={"em": person["em"], "customer_email": person["em"], "ph": "call me"},
        )
    # Invalid: stored failed, with reasons (and still no raw data).
    track("Purchase", action_source="email", user_data={"em": CUSTOMERS[0]["em"]})

    pending = list(Event.objects.filter(status="pending").values_list("event_id", flat=True))
    api.poison_event_ids = {pending[0]}
    api.script(
        http_error(503),
        graph_error(190, message="Error validating access token: Session has expired"),
    )
    engine.deliver_all()  # 503: transient
    Event.objects.filter(status="pending").update(next_attempt_at=timezone.now())
    engine.deliver_all()  # 190: paused
    DatasetState.objects.filter(dataset_id=PIXEL).update(next_probe_at=timezone.now())
    Event.objects.filter(status="pending").update(next_attempt_at=timezone.now())
    engine.deliver_all()  # the probe succeeds; the poisoned event is isolated and fails
    assert Event.objects.filter(status="sent", dataset_id=PIXEL).exists()
    assert Event.objects.filter(status="sent", dataset_id=DB_PIXEL).exists()
    assert Event.objects.filter(status="failed").count() >= 2
    assert DeliveryAttempt.objects.exclude(error_message="").exists()


def admin_pages(client: Any) -> dict[str, str]:
    """Every admin page of django_capi, fetched as a superuser."""
    pages: dict[str, str] = {}
    urls = [reverse("admin:django_capi_event_dashboard"), reverse("admin:index")]
    urls.append(reverse("admin:app_list", args=["django_capi"]))
    for model in admin.site._registry:
        if model._meta.app_label != "django_capi":
            continue
        info = f"admin:{model._meta.app_label}_{model._meta.model_name}"
        urls.append(reverse(f"{info}_changelist"))
        for obj in model._default_manager.all():
            for view in ("change", "history"):
                with contextlib.suppress(NoReverseMatch):
                    urls.append(reverse(f"{info}_{view}", args=[obj.pk]))
    for url in urls:
        response = client.get(url)
        assert response.status_code == 200, url
        pages[f"admin page {url}"] = response.content.decode()
    return pages


def test_no_contact_data_token_or_secret_anywhere(
    client: Any, rf: RequestFactory, adapter: Adapter, secret_api: FakeGraphAPI, caplog: Any,
    django_user_model: Any,
) -> None:  # fmt: skip
    caplog.set_level(logging.DEBUG)
    realistic_traffic(rf, adapter, secret_api)
    user = django_user_model.objects.create_superuser("root", "root@admin.invalid", None)
    client.force_login(user)
    pages = admin_pages(client)

    haystacks: dict[str, str] = dict(dump_database())
    haystacks["delivery attempts"] = "\n".join(
        repr(row) for row in DeliveryAttempt.objects.values()
    )
    haystacks["logs"] = "\n".join(
        f"{r.name} {r.levelname} {r.getMessage()} {r.exc_text or ''}" for r in caplog.records
    )
    haystacks.update(pages)
    wanted = needles()
    # Escaped in HTML, "O'Brien" would read O&#x27;Brien: look for those forms too.
    wanted.update({f"{k} (html)": escape(v) for k, v in wanted.items() if escape(v) != v})

    assert scan(haystacks, wanted) == []
    # The scan covered a lot (figures for RELIABILITY.md).
    tables = [t for t in haystacks if t.startswith("django_capi_")]
    assert {"django_capi_event", "django_capi_deliveryattempt"} <= set(tables)
    assert Event.objects.count() >= 13 and DeliveryAttempt.objects.count() >= 4
    assert len(caplog.records) > 10 and len(pages) > 20
    print(  # noqa: T201  (shown with -s: the counts quoted in RELIABILITY.md)
        f"scanned {len(haystacks)} haystacks ({len(pages)} admin pages, "
        f"{len(haystacks) - len(pages) - 2} tables, {len(caplog.records)} log records, "
        f"{sum(len(t) for t in haystacks.values())} characters) for {len(wanted)} needles"
    )

    # The scan can fail: a value planted in a row, a log record and a page is found.
    planted = "planted.person@example.com"
    Event.objects.filter(pk=Event.objects.first().pk).update(last_error_message=planted)
    logging.getLogger("django_capi").info("oops %s", planted)
    again = dict(dump_database())
    again["logs"] = "\n".join(r.getMessage() for r in caplog.records)
    again.update(admin_pages(client))
    hits = scan(again, {"planted": planted})
    assert "planted in django_capi_event" in hits
    assert "planted in logs" in hits
    assert any(hit.startswith("planted in admin page") for hit in hits)
