"""Bad input to ``django_capi.track()``: any argument of any type never raises.

Property for every example: ``track()`` returns a stored event that is either sendable
(pending, passes validation) or failed with reasons that each name a field and a rule;
warnings are explained the same way; the payload is strict JSON that PostgreSQL accepts;
hashed keys are 64 hex digits or absent (see ``inputs.check_stored_event``).

The normalizers alone are fuzzed in tests/test_normalization_properties.py; here the values go
through ``track()`` and the database, where NUL characters, lone surrogates, NaN and
non-JSON types used to escape as exceptions (see the @example regressions).
"""

from __future__ import annotations

import datetime as dt
import json
import time
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from django_capi import track
from django_capi.normalization import HASHED_KEYS
from django_capi.templatetags.capi import track_call
from django_capi.validation import ACTION_SOURCES, STANDARD_EVENTS
from tests.reliability.inputs import (
    FUZZ,
    NASTY_TEXT,
    ExplodingStr,
    any_text,
    any_value,
    check_stored_event,
    custom_data_dicts,
    deep,
    new_event_id,
    same_json,
    self_containing,
    user_data_dicts,
)

pytestmark = pytest.mark.django_db

UA = "Mozilla/5.0 (X11; Linux x86_64) Gecko/20100101 Firefox/130.0"
GOOD_USER = {"em": "joe@example.com", "client_user_agent": UA, "client_ip_address": "203.0.113.7"}
GOOD_URL = "https://shop.example/p/1"

now = int(time.time())
event_times = st.one_of(
    any_value,
    st.integers(min_value=now - 10 * 86400, max_value=now + 3600),
    st.floats(min_value=now - 86400, max_value=now + 60),
    st.sampled_from(
        [
            dt.datetime.min,
            dt.datetime.max,
            dt.datetime.max.replace(tzinfo=dt.UTC),
            dt.datetime(1970, 1, 1),
            now * 1000,
            -(2**63),
            float("nan"),
            float("inf"),
            Decimal(now),
            str(now),
            True,
        ]
    ),
)
names = st.one_of(st.sampled_from(sorted(STANDARD_EVENTS)), any_text, any_value)
sources = st.one_of(st.sampled_from(sorted(ACTION_SOURCES)), any_text, any_value)
urls = st.one_of(
    st.sampled_from([GOOD_URL, "http://x", "javascript:alert(1)", "https://[::1", "//x.y/"]),
    any_text.map(lambda s: "https://shop.example/" + s),
    any_value,
)
ldu_options = st.one_of(
    st.sampled_from([["LDU"], [], ("LDU",), "LDU", {"LDU"}, ["LDU", "LDU"], ["ldu"]]), any_value
)
ldu_numbers = st.one_of(st.sampled_from([0, 1, 1000, 1.0, "1", Decimal(1), True]), any_value)
app_datas = st.one_of(
    st.just(
        {"advertiser_tracking_enabled": True, "extinfo": ["a2", *["x"] * 15]},
    ),
    st.dictionaries(any_text, any_value, max_size=3),
    any_value,
)

TRACK_ARGUMENTS = {
    "event_id": st.one_of(any_text, any_value, st.uuids()),
    "event_time": event_times,
    "action_source": sources,
    "event_source_url": urls,
    "referrer_url": urls,
    "pixel_id": st.one_of(
        st.sampled_from(["1234567890123456", 1234567890123456, " 42 ", "12\x00", "-1", "1e5"]),
        any_value,
    ),
    "opt_out": st.one_of(st.booleans(), any_value),
    "data_processing_options": ldu_options,
    "data_processing_options_country": ldu_numbers,
    "data_processing_options_state": ldu_numbers,
    "app_data": app_datas,
    "messaging_channel": st.one_of(st.sampled_from(["whatsapp", "messenger"]), any_value),
    "original_event_data": st.one_of(
        st.just({"event_name": "Purchase", "event_time": now}),
        st.dictionaries(any_text, any_value, max_size=3),
        any_value,
    ),
    "attribution_data": st.one_of(
        st.just({"attribution_share": Decimal("0.3"), "ad_id": 1}),
        st.dictionaries(any_text, any_value, max_size=3),
        any_value,
    ),
    "user_data": st.one_of(st.just(GOOD_USER), user_data_dicts, any_value),
    "custom_data": st.one_of(custom_data_dicts, any_value),
}
track_kwargs = st.fixed_dictionaries({}, optional=TRACK_ARGUMENTS)


@FUZZ
@given(event_name=names, kwargs=track_kwargs)
@example(event_name="Pur\x00chase", kwargs={}).via("NUL refused by PostgreSQL text")
@example(event_name="Lead\ud800", kwargs={}).via("lone surrogate, not UTF-8")
@example(event_name=b"Lead", kwargs={}).via("bytes are not JSON")
@example(event_name=ExplodingStr(), kwargs={}).via("__str__ raises")
@example(event_name=10**5000, kwargs={}).via("int too large to print")
@example(event_name="Lead", kwargs={"event_id": "a\x00b"})
@example(event_name="Lead", kwargs={"event_id": "\udfff"})
@example(event_name="Lead", kwargs={"event_id": ExplodingStr()})
@example(event_name="Lead", kwargs={"pixel_id": ExplodingStr()})
@example(event_name="Lead", kwargs={"pixel_id": "12\x00"})
@example(event_name="Lead", kwargs={"action_source": b"website"})
@example(event_name="Lead", kwargs={"event_source_url": "https://a.example/\ud800"})
@example(event_name="Lead", kwargs={"referrer_url": "https://a.example/\x00"})
@example(event_name="Lead", kwargs={"opt_out": Decimal(1)})
@example(event_name="Lead", kwargs={"opt_out": float("nan")}).via("NaN is not JSON")
@example(event_name="Lead", kwargs={"data_processing_options": 5})
@example(
    event_name="Lead",
    kwargs={
        "data_processing_options": ["LDU"],
        "data_processing_options_country": Decimal(1),
        "data_processing_options_state": float("inf"),
    },
)
@example(event_name="Lead", kwargs={"messaging_channel": b"whatsapp"})
@example(event_name="Lead", kwargs={"app_data": "abc"})
@example(event_name="Lead", kwargs={"app_data": 5})
@example(event_name="Lead", kwargs={"app_data": {"x": Decimal("1.5")}, "action_source": "app"})
@example(event_name="Lead", kwargs={"original_event_data": {"event_time": dt.date(2024, 1, 1)}})
@example(event_name="Lead", kwargs={"attribution_data": "share"})
@example(event_name="Lead", kwargs={"attribution_data": self_containing()})
@example(event_name="Lead", kwargs={"original_event_data": deep(200)})
@example(event_name="Lead", kwargs={"attribution_data": {("tuple", "key"): 1}})
@example(event_name="Lead", kwargs={"user_data": [1, 2]})
@example(event_name="Lead", kwargs={"user_data": "joe@example.com"})
@example(event_name="Lead", kwargs={"event_time": dt.datetime.min})
@example(event_name="Lead", kwargs={"event_time": Decimal("1e400")})
def test_track_never_raises_for_any_argument(event_name: Any, kwargs: dict[str, Any]) -> None:
    event = track(event_name, **kwargs)
    check_stored_event(event)


@FUZZ
@given(user_data=user_data_dicts)
@example(user_data={"client_user_agent": "a\x00b", "em": "a@b.co"}).via("NUL in unhashed text")
@example(user_data={"lead_id": "1\x002", "fbp": "fb.1.1596403881668.\x00"})
@example(user_data={"em": ExplodingStr(), "ph": [ExplodingStr()], "fn": {"a": 1}})
@example(user_data={"external_id": 10**5000, "ph": 10**30, "db": dt.datetime.max})
@example(user_data={"client_user_agent": "x" * 1_000_000, "em": "e\u0301@example.com"})
@example(user_data={"em": "\ud800@example.com", "ct": "\udfff", "madid": "\ud800"})
@example(user_data={"country": "\x00", "zp": "\x00\x00", "st": "CA\x00"})
@example(user_data=dict.fromkeys(HASHED_KEYS, NASTY_TEXT))
def test_every_user_data_key_with_any_value(user_data: dict[Any, Any]) -> None:
    event = track(
        "Lead",
        event_id=new_event_id(),
        action_source="email",
        user_data=user_data,
    )
    check_stored_event(event)


@FUZZ
@given(custom_data=custom_data_dicts)
@example(custom_data={"note": "a\x00b"}).via("NUL in a custom value")
@example(custom_data={"no\x00te": "x"}).via("NUL in a custom key")
@example(custom_data={"value": Decimal("NaN"), "predicted_ltv": Decimal("-Infinity")})
@example(custom_data={"value": Decimal("1E+999999"), "net_revenue": Decimal("sNaN")})
@example(
    custom_data={"contents": [{"id": "\x00", "item_price": float("nan"), "quantity": 10**400}]}
)
@example(custom_data={"content_ids": ["a\x00", 1.5, None, ExplodingStr()], "num_items": "3"})
@example(custom_data={"order_id": "\ud800", "currency": "u\x00sd"})
@example(custom_data={"nested": deep(50), "loop": self_containing()})
def test_every_custom_data_key_with_any_value(custom_data: dict[Any, Any]) -> None:
    event = track(
        "Purchase",
        event_id=new_event_id(),
        action_source="email",
        user_data={"em": "joe@example.com"},
        custom_data=custom_data,
    )
    row = check_stored_event(event)
    # The page's pixel call carries exactly the custom data the server stored.
    js = track_call("fuzz-order", "Purchase", custom_data)
    stored = row.payload.get("custom_data", {})
    assert js.startswith('fbq("track","Purchase",')
    assert same_json(json.loads("[" + js[4:-2] + "]")[2], stored)
