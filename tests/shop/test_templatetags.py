"""{% load capi %}: pixel base code, event ids, track calls equal to the server event, safety."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from django.template import Context, Template

from django_capi.shop import checkout_started, event_id_for, order_custom_data
from django_capi.templatetags.capi import js_value
from tests.shop.conftest import PIXEL, set_capi
from tests.testapp.models import Order

OTHER_PIXEL = "6543210987654321"
NASTY = "\"'</script><script>window.pwned=1</script><!-- \u2028\u2029 & é 日本 😀 `${x}` \\"


def render(text: str, request: Any = None, **context: Any) -> str:
    if request is not None:
        context["request"] = request
    return Template("{% load capi %}" + text).render(Context(context))


def scripts(html: str) -> list[str]:
    """The contents of every <script> element (what a browser's tokenizer would see)."""
    return re.findall(r"<script[^>]*>(.*?)</script>", html, flags=re.S)


def fbq_calls(html: str) -> list[list[Any]]:
    """Every fbq(...) call in the scripts, its arguments parsed as JSON."""
    calls = []
    for script in scripts(html):
        for args in re.findall(r"fbq\((.*?)\);(?=\n|$)", script, flags=re.M):
            calls.append(json.loads(f"[{args}]"))
    return calls


# --- the pixel base code ------------------------------------------------------------------------


def test_pixel_base_code(rf):
    html = render("{% capi_pixel %}", rf.get("/"))
    assert fbq_calls(html) == [["init", PIXEL], ["track", "PageView"]]
    assert "https://connect.facebook.net/en_US/fbevents.js" in html
    assert "<noscript>" in html
    assert f"https://www.facebook.com/tr?id={PIXEL}&amp;ev=PageView&amp;noscript=1" in html
    assert "nonce" not in html


def test_pixel_for_every_configured_dataset_or_one(rf, settings):
    set_capi(settings, DATASETS={OTHER_PIXEL: {"ACCESS_TOKEN": "t"}})
    calls = fbq_calls(render("{% capi_pixel %}", rf.get("/")))
    assert calls == [["init", PIXEL], ["init", OTHER_PIXEL], ["track", "PageView"]]
    calls = fbq_calls(render(f'{{% capi_pixel pixel_id="{OTHER_PIXEL}" %}}', rf.get("/")))
    assert calls == [["init", OTHER_PIXEL], ["track", "PageView"]]


def test_no_dataset_no_pixel(rf, settings):
    settings.CAPI = {}
    assert render("{% capi_pixel %}", rf.get("/")).strip() == ""
    assert render('{% capi_pixel pixel_id="not digits" %}', rf.get("/")).strip() == ""


def test_csp_nonce(rf, adapter, order):
    request = rf.get("/")
    request.csp_nonce = 'abc"123'
    html = render('{% capi_pixel %}{% capi_track order "Purchase" %}', request, order=order)
    assert html.count('nonce="abc&quot;123"') == 2
    assert len(scripts(html)) == 2


def test_limited_data_use(rf, settings):
    set_capi(settings, DATA_PROCESSING_OPTIONS=["LDU"], DATA_PROCESSING_OPTIONS_COUNTRY=1,
             DATA_PROCESSING_OPTIONS_STATE=1000)  # fmt: skip
    calls = fbq_calls(render("{% capi_pixel %}", rf.get("/")))
    assert calls[0] == ["dataProcessingOptions", ["LDU"], 1, 1000]
    set_capi(settings, DATA_PROCESSING_OPTIONS=[], DATA_PROCESSING_OPTIONS_COUNTRY=None)
    assert fbq_calls(render("{% capi_pixel %}", rf.get("/")))[0] == ["dataProcessingOptions", []]


def test_advanced_matching(rf, settings, adapter, order):
    plain = fbq_calls(render("{% capi_pixel user_data=order %}", rf.get("/"), order=order))
    assert plain[0] == ["init", PIXEL]  # off by default
    set_capi(settings, PIXEL_ADVANCED_MATCHING=True)
    init = fbq_calls(render("{% capi_pixel user_data=order %}", rf.get("/"), order=order))[0]
    assert init[:2] == ["init", PIXEL]
    assert set(init[2]) == {"em", "external_id"}
    assert re.fullmatch(r"[0-9a-f]{64}", init[2]["em"])  # hashed, as the server sends it
    user = {"email": "A@B.co", "ph": ["+1 650 555 1212", "x"], "fbp": "fb.1.1596403881668.1"}
    init = fbq_calls(render("{% capi_pixel user_data=user %}", rf.get("/"), user=user))[0]
    assert set(init[2]) == {"em", "ph"}
    assert "a@b.co" not in str(init).lower()


# --- event ids and track calls ------------------------------------------------------------------


def test_event_id_tag(adapter, order):
    assert render('{% capi_event_id order "Purchase" %}', order=order) == event_id_for(
        order, "Purchase"
    )
    assert render('{% capi_event_id "cart:9" "AddToCart" as eid %}[{{ eid }}]') == (
        f"[{event_id_for('cart:9', 'AddToCart')}]"
    )


def test_track_call_equals_the_server_event(rf, adapter, order, browser_request):
    event = checkout_started.send(sender=Order, order=order, request=browser_request)[0][1]
    html = render('{% capi_track order "InitiateCheckout" %}', rf.get("/"), order=order)
    [call] = fbq_calls(html)
    assert call == [
        "track",
        "InitiateCheckout",
        event.payload["custom_data"],
        {"eventID": event.event_id},
    ]
    assert set(call[2]) >= {"value", "currency", "content_ids", "contents", "num_items"}


def test_track_call_without_script_element(rf, adapter, order):
    js = render('{% capi_track order "Purchase" script=False %}', rf.get("/"), order=order)
    assert js.startswith('fbq("track","Purchase",') and "<script" not in js


def test_track_with_a_key_custom_data_and_custom_events(rf):
    html = render(
        '{% capi_track "cart:7" "AddToCart" custom_data=data %}{% capi_track "k" "Quiz" %}',
        rf.get("/"),
        data={"value": "3.50", "currency": "eur"},
    )
    assert fbq_calls(html) == [
        ["track", "AddToCart", {"value": 3.5, "currency": "EUR"},
         {"eventID": event_id_for("cart:7", "AddToCart")}],
        ["trackCustom", "Quiz", {}, {"eventID": event_id_for("k", "Quiz")}],
    ]  # fmt: skip


def test_track_targets_the_events_dataset_when_there_are_several(rf, settings, adapter, order):
    set_capi(settings, DATASETS={OTHER_PIXEL: {"ACCESS_TOKEN": "t"}})
    [call] = fbq_calls(render('{% capi_track order "Purchase" %}', rf.get("/"), order=order))
    assert call[:3] == ["trackSingle", PIXEL, "Purchase"]
    adapter.track_options = lambda order, name: {"pixel_id": OTHER_PIXEL}
    [call] = fbq_calls(render('{% capi_track order "Purchase" %}', rf.get("/"), order=order))
    assert call[:3] == ["trackSingle", OTHER_PIXEL, "Purchase"]


def test_stripped_keys_never_reach_the_page(rf, settings, adapter, order):
    set_capi(settings, STRIP_CUSTOM_DATA_KEYS=["health"])
    adapter.extra = {"health": "asthma", "coupon": "X"}
    [call] = fbq_calls(render('{% capi_track order "Purchase" %}', rf.get("/"), order=order))
    assert "health" not in call[2]
    assert call[2]["coupon"] == "X"
    assert "asthma" not in render('{% capi_track order "Purchase" %}', rf.get("/"), order=order)


# --- safety -----------------------------------------------------------------------------------


def test_js_value_escapes_everything_that_could_end_a_script():
    text = js_value({"k": NASTY, NASTY: [NASTY]})
    for dangerous in ("<", ">", "&", "\u2028", "\u2029"):
        assert dangerous not in text
    assert json.loads(text) == {"k": NASTY, NASTY: [NASTY]}


@pytest.mark.parametrize("where", ["custom_data", "key", "contents"])
def test_hostile_values_cannot_break_out(rf, adapter, order, where):
    if where == "custom_data":
        adapter.extra = {"note": NASTY, NASTY: "key"}
    elif where == "contents":
        adapter.contents = lambda order: [{"id": NASTY, "quantity": 1, "item_price": 1}]
    else:
        adapter.key = lambda order: NASTY
    adapter.currency = lambda order: NASTY
    request = rf.get("/")
    html = render('{% capi_pixel %}{% capi_track order "Purchase" %}', request, order=order)
    assert html.count("<script") == 2
    assert html.count("</script>") == 2  # only the tags' own: the values never close one
    for script in scripts(html):
        assert "<" not in script
        assert "\u2028" not in script
        assert "\u2029" not in script
    [_init, _page_view, call] = fbq_calls(html)
    assert call[2] == order_custom_data(order, "Purchase")
    assert call[3] == {"eventID": event_id_for(order, "Purchase")}
    if where == "custom_data":
        assert call[2]["note"] == NASTY  # kept intact, only escaped


def test_event_id_tag_is_html_escaped(adapter, order):
    html = render('<p title="{% capi_event_id key "Purchase" %}">', key=NASTY)
    assert html.count('"') == 2  # an event id is hex anyway
