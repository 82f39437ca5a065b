"""Security: the pixel tags cannot be broken out of (XSS), whatever the values.

Each hostile string goes into one place at a time (order key, event name, product id, product
name, a custom key, a custom value, the currency, the pixel id, advanced-matching data, the
CSP nonce) of a page that uses every tag. An HTML parser must see exactly the elements of
the same page rendered with harmless values, no script text may hold "<", U+2028 or U+2029,
and the JSON of every fbq call must round-trip to the server event's values.
tests/shop/test_templatetags.py::test_hostile_values_cannot_break_out checks three places
with one string; test_fuzz_templatetags.py generates values.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from django.template import Context, Template
from django.test import RequestFactory

from django_capi.shop import orders
from django_capi.shop.orders import order_custom_data, order_event_id
from tests.reliability.inputs import XSS, fbq_calls, parse_html, walk_strings
from tests.testapp.models import Order

pytestmark = pytest.mark.django_db

PIXEL = "1234567890123456"
HOSTILE = [
    XSS,
    "</SCRIPT ><script>alert(1)//",
    "\u2028alert(1)\u2029",
    "'\";alert(1);//",
    "<!--<script>",
    "]]><![CDATA[",
    "</noscript><img src=x onerror=alert(1)>",
    "{{ 7*7 }}{% now 'Y' %}",
    "\\u003c/script\\u003e",
]
PLACES = [
    "key",
    "event_name",
    "product_id",
    "product_name",
    "custom_key",
    "custom_value",
    "currency",
    "pixel_id",
    "user_data",
    "nonce",
]
PAGE = (
    "{% load capi %}<html><head>{% capi_pixel pixel_id=pixel user_data=order %}</head><body>"
    '<p data-eid="{% capi_event_id order name %}">x</p>'
    "{% capi_track order name %}"
    "{% capi_track key name custom_data=data %}"
    "<script>{% capi_track order name script=False %}</script>"
    "</body></html>"
)


class Adapter(orders.OrderAdapter[Order]):
    def __init__(self) -> None:
        self.values: dict[str, Any] = {}

    def key(self, order: Order) -> str:
        return str(self.values.get("key", f"order:{order.pk}"))

    def user_data(self, order: Order) -> dict[str, Any]:
        return {"em": self.values.get("user_data", "joe@example.com"), "fn": "Joe"}

    def contents(self, order: Order) -> list[dict[str, Any]]:
        return [
            {
                "id": self.values.get("product_id", "SKU-1"),
                "quantity": 1,
                "item_price": Decimal("9.90"),
            }
        ]

    def currency(self, order: Order) -> str:
        return str(self.values.get("currency", "EUR"))

    def extra_custom_data(self, order: Order, event_name: str) -> dict[str, Any]:
        return {
            "content_name": self.values.get("product_name", "Blue mug"),
            self.values.get("custom_key", "coupon"): self.values.get("custom_value", "WELCOME"),
        }


@pytest.fixture
def adapter(settings: Any) -> Any:
    settings.CAPI = {"PIXEL_ID": PIXEL, "ACCESS_TOKEN": "t", "PIXEL_ADVANCED_MATCHING": True}
    instance = Adapter()
    orders.register(Order, instance)
    yield instance
    orders.unregister(Order)


def render_page(adapter: Adapter, place: str | None, value: str) -> tuple[str, Order, str]:
    if place is not None and place not in ("event_name", "pixel_id", "nonce"):
        adapter.values = {place: value}
    else:
        adapter.values = {}
    order = Order.objects.create(reference=f"R{Order.objects.count()}")
    request = RequestFactory().get("/thanks/")
    request.csp_nonce = value if place == "nonce" else "n0nce"
    name = value if place == "event_name" else "Purchase"
    context = {
        "request": request,
        "order": order,
        "name": name,
        "key": value if place == "key" else "cart:1",
        "data": {"content_name": value} if place == "product_name" else {"value": 1},
        "pixel": f"{PIXEL}{value}" if place == "pixel_id" else PIXEL,
    }
    return Template(PAGE).render(Context(context)), order, name


@pytest.mark.parametrize("place", PLACES)
@pytest.mark.parametrize("value", HOSTILE, ids=range(len(HOSTILE)))
def test_no_value_breaks_out_of_any_tag(adapter: Adapter, place: str, value: str) -> None:
    baseline = parse_html(render_page(adapter, None, "")[0])
    html, order, name = render_page(adapter, place, value)
    parsed = parse_html(html)
    if place == "pixel_id":  # not a dataset id: the pixel is left out, nothing else changes
        assert parsed.tags == [t for t in baseline.tags if t not in ("img", "noscript")][1:] or (
            parsed.tags.count("script") == baseline.tags.count("script") - 1
        )
    else:
        assert parsed.tags == baseline.tags, html
    assert parsed.handlers == []
    for script in parsed.scripts:
        for dangerous in ("<", "\u2028", "\u2029"):
            assert dangerous not in script, script
    calls = [call for script in parsed.scripts for call in fbq_calls(script)]
    tracks = [c for c in calls if c[0] in ("track", "trackCustom") and c[1] != "PageView"]
    assert len(tracks) == 3
    server_data = order_custom_data(order, name)
    event_id = order_event_id(order, name)
    assert tracks[0] == tracks[2] == [tracks[0][0], name, server_data, {"eventID": event_id}]
    if place == "product_name":
        assert tracks[1][2] == {"content_name": value.strip()}  # text fields are trimmed
    if place in ("custom_value", "product_name", "product_id"):
        assert {value, value.strip()} & set(walk_strings(server_data))  # intact, only escaped
    if place == "nonce":
        assert html.count('nonce="') == 3  # the attribute stayed one attribute
