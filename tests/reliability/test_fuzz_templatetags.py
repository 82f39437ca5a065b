"""Bad input to the template tags: ``capi_pixel``, ``capi_event_id``, ``capi_track``.

Property: rendering never raises, the output can be sent (encodes to UTF-8), an HTML parser
sees exactly the tags' own elements (no value opens or closes a script, a comment or a tag),
and the JSON inside each ``fbq(...)`` call parses back to the values given (custom data as
the server stores it, the event id the server event gets).

tests/shop/test_templatetags.py covers hand-picked hostile values; here they are generated.
"""

from __future__ import annotations

import re
from typing import Any

import pytest
from django.template import Context, Template
from django.test import override_settings
from hypothesis import example, given
from hypothesis import strategies as st

from django_capi.normalization.custom_data import normalize_custom_data
from django_capi.shop.event_ids import event_id_from_key
from django_capi.templatetags.capi import STANDARD_EVENTS
from tests.reliability.inputs import (
    FUZZ,
    XSS,
    any_text,
    custom_data_dicts,
    fbq_calls,
    parse_html,
    same_json,
    template_value,
    user_data_dicts,
)

pytestmark = pytest.mark.django_db

PIXEL = "1234567890123456"
CAPI = {"PIXEL_ID": PIXEL, "ACCESS_TOKEN": "t", "DEFAULT_COUNTRY": "US"}
ONLY_SCRIPT = re.compile(r"\s*<script>(.*)</script>\s*", re.S)


def render(text: str, **context: Any) -> str:
    html = Template("{% load capi %}" + text).render(Context(context))
    html.encode("utf-8")  # what the response will do: lone surrogates would fail here
    return html


def assert_only_the_tags_own_markup(html: str, scripts: int) -> list[str]:
    parsed = parse_html(html)
    assert parsed.tags.count("script") == scripts, html
    assert "!--" not in parsed.tags
    for script in parsed.scripts:
        for dangerous in ("<", "\u2028", "\u2029"):
            assert dangerous not in script
    return parsed.scripts


names = st.one_of(st.sampled_from(sorted(STANDARD_EVENTS)), any_text)


@FUZZ
@given(key=any_text, event_name=names, custom_data=st.one_of(custom_data_dicts, template_value))
@example(key=XSS, event_name=XSS, custom_data={XSS: XSS, "contents": [{"id": XSS}]})
@example(key="\ud800", event_name="Purchase", custom_data=None).via("lone surrogate in the key")
@example(key="k", event_name="Lead\udfff", custom_data={"note": "\ud800"})
@example(key="k", event_name="]]><!--", custom_data={"a": "\u2028</SCRIPT >", "b": "<!--"})
def test_capi_track_output_cannot_be_broken_out_of(
    key: str, event_name: str, custom_data: Any
) -> None:
    with override_settings(CAPI=CAPI):
        html = render(
            "{% capi_track key name custom_data=data %}", key=key, name=event_name, data=custom_data
        )
        call_only = render(
            "{% capi_track key name custom_data=data script=False %}",
            key=key,
            name=event_name,
            data=custom_data,
        )
    [script] = assert_only_the_tags_own_markup(html, 1)
    [call] = fbq_calls(script)
    method = "track" if event_name in STANDARD_EVENTS else "trackCustom"
    assert call[:2] == [method, event_name]
    assert same_json(call[2], normalize_custom_data(custom_data)[0])
    assert call[3] == {"eventID": event_id_from_key(key, event_name)}
    assert "<" not in call_only and fbq_calls(call_only) == [call]


@FUZZ
@given(key=any_text, event_name=st.one_of(names, template_value))
@example(key=XSS, event_name='"><img src=x onerror=alert(1)>')
@example(key="\ud800", event_name="Purchase")
def test_capi_event_id_is_always_32_hex(key: str, event_name: Any) -> None:
    html = render('<p data-eid="{% capi_event_id key name %}">', key=key, name=event_name)
    assert re.fullmatch(r'<p data-eid="[0-9a-f]{32}">', html), html


@FUZZ
@given(
    pixel_id=st.one_of(st.none(), st.just(PIXEL), any_text, template_value),
    user_data=st.one_of(st.none(), user_data_dicts),
    ldu=st.booleans(),
)
@example(pixel_id=f"{PIXEL}</script><script>", user_data={"em": XSS}, ldu=True)
@example(pixel_id="1" * 40, user_data={"fn": "\ud800", "em": "a\x00@b.co"}, ldu=False)
@example(pixel_id=f"{PIXEL}\n", user_data={"em": "joe@example.com", "fbp": XSS}, ldu=False)
def test_capi_pixel_output_cannot_be_broken_out_of(
    pixel_id: Any, user_data: Any, ldu: bool
) -> None:
    capi = {**CAPI, "PIXEL_ADVANCED_MATCHING": True}
    if ldu:
        capi.update(
            DATA_PROCESSING_OPTIONS=["LDU"],
            DATA_PROCESSING_OPTIONS_COUNTRY=1,
            DATA_PROCESSING_OPTIONS_STATE=1000,
        )
    with override_settings(CAPI=capi):
        html = render("{% capi_pixel pixel_id=pid user_data=ud %}", pid=pixel_id, ud=user_data)
    if not html.strip():  # not a dataset id: nothing rendered at all
        assert pixel_id not in (None, PIXEL)
        return
    [script] = assert_only_the_tags_own_markup(html, 1)
    calls = fbq_calls(script)
    init = [call for call in calls if call[0] == "init"]
    assert len(init) == 1 and re.fullmatch(r"[0-9]{1,32}", init[0][1])
    if len(init[0]) == 3:  # advanced matching: hashed values only
        for key, value in init[0][2].items():
            assert key in {"em", "ph", "fn", "ln", "ge", "db", "ct", "st", "zp", "country",
                           "external_id"}  # fmt: skip
            assert re.fullmatch(r"[0-9a-f]{64}", value)
    assert calls[-1] == ["track", "PageView"]
    noscript = re.findall(r'src="([^"]*)"', html.split("<noscript>", 1)[1])
    assert noscript == [
        f"https://www.facebook.com/tr?id={init[0][1]}&amp;ev=PageView&amp;noscript=1"
    ]
