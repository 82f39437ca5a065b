"""Hostile inputs and the invariants every stored event must satisfy (reliability suite).

Shared by ``test_fuzz*.py`` (hypothesis strategies, :func:`check_stored_event`) and
``test_security*.py``. It is also a URLconf (``pytest.mark.urls("tests.reliability.inputs")``):
``/track/...`` is a host view that records an event for its request, the admin is mounted too.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import uuid
from collections.abc import Iterator, Mapping
from decimal import Decimal
from html.parser import HTMLParser
from typing import Any

from django.contrib import admin
from django.http import HttpRequest, HttpResponse
from django.urls import path, re_path
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

from django_capi import track
from django_capi.models import Event, EventStatus
from django_capi.normalization import HASHED_KEYS, UNHASHED_KEYS, USER_DATA_ALIASES
from django_capi.validation import validate_event

HEX64 = re.compile(r"[0-9a-f]{64}")

#: One setting for every property: enough examples to find the edges, no deadline (the
#: machine is shared; nothing here asserts timing).
FUZZ = settings(
    max_examples=200,
    deadline=None,
    suppress_health_check=[
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
        HealthCheck.function_scoped_fixture,
        HealthCheck.filter_too_much,
    ],
)

# The middleware stack of the fuzzed requests: no CommonMiddleware, so that a bad Host header
# reaches django_capi instead of being refused by Django first.
CAPI_MIDDLEWARE = [
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django_capi.middleware.CapiMiddleware",
]

XSS = "</script><script>alert(1)</script>"

#: Text that has broken programs before: markup, script terminators, JS line separators,
#: NUL and control characters, lone surrogates, direction overrides, emoji, combining marks.
NASTY_TEXT = [
    "",
    " ",
    "\x00",
    "a\x00b",
    "\ud800",
    "x\udfffy",
    "\u202eevil\u202c",
    "\u200f\u05e9\u05dc\u05d5\u05dd",
    "😀👩‍👩‍👧",
    "e\u0301\u0301\u0301",
    "\u2028\u2029",
    "\ufeff\ufffe\uffff",
    XSS,
    "<!--",
    "]]>",
    "'\"`${x}\\",
    "%00%0d%0a",
    "\r\nSet-Cookie: x=1",
    "NaN",
    "-Infinity",
    "1e309",
    "0x1F",
    "null",
    "{}",
    "\t\n\x0b\x0c\r\x1c\x1d\x1e\x1f\x85\xa0",
    "a" * 10_000,
]
HUGE_TEXT = "\u00e9" * 200_000 + "@example.com"


class ExplodingStr:
    """An object whose ``__str__``/``__repr__``/``__format__`` raise."""

    def __str__(self) -> str:
        raise RuntimeError("__str__ exploded")

    def __repr__(self) -> str:
        raise RuntimeError("__repr__ exploded")

    def __format__(self, spec: str) -> str:
        raise RuntimeError("__format__ exploded")

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:  # for hypothesis' reports
        printer.text("ExplodingStr()")


class StrSubclass(str):
    """A str subclass (an enum member or a lazy translation looks like this)."""


# -- strategies ---------------------------------------------------------------------------

#: Any code point, lone surrogates and NUL included.
any_char = st.characters(codec=None, exclude_categories=[])
any_text = st.one_of(
    st.text(any_char, max_size=40),
    st.sampled_from(NASTY_TEXT),
    st.text(st.characters(max_codepoint=255), max_size=40),
)
# Built lazily: hypothesis cannot repr an int of more than 4300 digits in a strategy.
big_ints = st.sampled_from([2**53 + 1, -(2**63), 2**64, 10**400, 5000, -5000]).map(
    lambda n: 10**n if abs(n) == 5000 and n > 0 else -(10**5000) if n == -5000 else n
)
scalars = st.one_of(
    st.none(),
    st.booleans(),
    any_text,
    st.integers(),
    big_ints,
    st.floats(),
    st.decimals(),  # NaN, sNaN, infinities and huge exponents included
    st.sampled_from([Decimal("NaN"), Decimal("sNaN"), Decimal("-Infinity"), Decimal("1E+999999")]),
    st.binary(max_size=12),
    st.dates(),
    st.datetimes(),
    st.datetimes(timezones=st.just(dt.UTC)),
    st.times(),
    st.timedeltas(),
    st.uuids(),
    st.complex_numbers(),
    st.builds(ExplodingStr),
    st.builds(object),
    any_text.filter(lambda s: isinstance(s, str)).map(StrSubclass),
)
any_value = st.recursive(
    scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=4),
        st.lists(children, max_size=3).map(tuple),
        st.frozensets(st.one_of(st.integers(), st.text(max_size=4)), max_size=3),
        st.dictionaries(st.one_of(any_text, st.integers(), st.none()), children, max_size=3),
    ),
    max_leaves=10,
)


def _explodes(value: Any) -> bool:
    if isinstance(value, ExplodingStr):
        return True
    if isinstance(value, int) and value.bit_length() > 10_000:  # str() refuses > 4300 digits
        return True
    if isinstance(value, dict):
        return any(_explodes(k) or _explodes(v) for k, v in value.items())
    if isinstance(value, list | tuple | frozenset):
        return any(_explodes(v) for v in value)
    return False


#: Template context values: anything but values whose str() raises (a broken __str__, an int
#: of more than 4300 digits), which break Django's own ``{{ value }}`` as much as any tag.
template_value = any_value.filter(lambda value: not _explodes(value))

#: Every user_data key django_capi knows (canonical and aliases), in various spellings.
USER_DATA_KEYS = sorted({*HASHED_KEYS, *UNHASHED_KEYS, *USER_DATA_ALIASES})
user_data_keys = st.one_of(
    st.sampled_from(USER_DATA_KEYS),
    st.sampled_from(USER_DATA_KEYS).map(lambda k: f" {k.upper()} "),
    any_text,
    st.integers(),
)

plausible_user_values = st.sampled_from(
    [
        "Joe.Doe+tag@Example.COM",
        " (650) 555-1212 ",
        "+44 20 7946 0958",
        "0044 20 7946 0958",
        "O'Brien",
        "Valéry",
        "São Paulo",
        "California",
        "UK",
        "94025-1234",
        "M1 1AE",
        "1990-02-14",
        "14.02.1990",
        "Female",
        "weiblich",
        "203.0.113.7",
        "::ffff:10.0.0.1",
        "fb.1.1596403881668.1116446470",
        "fb.1.1554763741205.AbCdEf.Ap",
        "a" * 64,
        "F" * 64,
        dt.date(1990, 2, 14),
        6505551212,
    ]
)
user_values = st.one_of(any_value, plausible_user_values, st.lists(plausible_user_values))
user_data_dicts = st.dictionaries(user_data_keys, user_values, max_size=8)

CUSTOM_KEYS = [
    "value",
    "currency",
    "contents",
    "content_ids",
    "content_type",
    "content_name",
    "content_category",
    "num_items",
    "order_id",
    "predicted_ltv",
    "net_revenue",
    "search_string",
    "status",
    "delivery_category",
]
content_items = st.dictionaries(
    st.one_of(st.sampled_from(["id", "quantity", "item_price", "delivery_category"]), any_text),
    any_value,
    max_size=5,
)
custom_values = st.one_of(
    any_value,
    st.lists(content_items, max_size=3),
    content_items,
    st.sampled_from(["12.50", "USD", "eur", "home_delivery", "product", 3, Decimal("12.50")]),
)
custom_data_dicts = st.dictionaries(
    st.one_of(st.sampled_from(CUSTOM_KEYS), any_text, st.integers()),
    custom_values,
    max_size=8,
)


def deep(levels: int) -> Any:
    """A structure nested ``levels`` deep."""
    value: Any = "leaf"
    for _ in range(levels):
        value = {"k": [value]}
    return value


def self_containing() -> dict[str, Any]:
    loop: dict[str, Any] = {"a": 1}
    loop["self"] = loop
    return loop


# -- invariants ---------------------------------------------------------------------------


def issues_are_explained(items: Any) -> None:
    """Each entry is exactly ``{"field": <text>, "rule": <text>}``, both non-empty."""
    assert isinstance(items, list), items
    for item in items:
        assert isinstance(item, dict) and set(item) == {"field", "rule"}, item
        assert isinstance(item["field"], str) and item["field"].strip(), item
        assert isinstance(item["rule"], str) and item["rule"].strip(), item


def hashed_values_are_hex(user_data: Mapping[str, Any]) -> None:
    for key in HASHED_KEYS:
        if key not in user_data:
            continue
        value = user_data[key]
        values = value if isinstance(value, list) else [value]
        assert values, key
        for one in values:
            assert isinstance(one, str) and HEX64.fullmatch(one), (key, one)
    for key in UNHASHED_KEYS:
        if key in user_data:
            assert isinstance(user_data[key], str) and user_data[key], key
    assert set(user_data) <= {*HASHED_KEYS, *UNHASHED_KEYS}, set(user_data)


def check_stored_event(event: Event) -> Event:
    """The invariants of the reliability suite for one event returned by ``track()``.

    Stored; either sendable (pending and valid) or failed with reasons that each name a field
    and a rule; warnings explained the same way; the payload is strict JSON (no NaN, no
    lone surrogates, no NUL, which PostgreSQL refuses); hashed keys are 64 hex digits.
    Returns the row as read back from the database.
    """
    assert event.pk is not None
    row = Event.objects.get(pk=event.pk)
    payload = row.payload
    text = json.dumps(payload, allow_nan=False, ensure_ascii=False)
    text.encode("utf-8")  # no lone surrogates
    assert "\x00" not in text and "\\u0000" not in text
    assert isinstance(payload.get("user_data"), dict)
    hashed_values_are_hex(payload["user_data"])
    issues_are_explained(row.validation_errors)
    issues_are_explained(row.warnings)
    if row.status == EventStatus.PENDING:
        assert row.validation_errors == []
        assert validate_event(payload) == []
    else:
        assert row.status == EventStatus.FAILED, row.status
        assert row.validation_errors, "a failed event says why"
        assert row.last_error_message
    for column in (row.dataset_id, row.event_name, row.event_id, row.action_source):
        assert isinstance(column, str)
    return row


def walk_strings(value: Any) -> Iterator[str]:
    """Every string in a JSON-like structure, keys included."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, Mapping):
        for key, item in value.items():
            yield from walk_strings(key)
            yield from walk_strings(item)
    elif isinstance(value, list | tuple):
        for item in value:
            yield from walk_strings(item)


def same_json(a: Any, b: Any) -> bool:
    """Equal as JSON documents: numbers compared as doubles (PostgreSQL's jsonb gives back
    ``4.127280592697606e+16`` as the integer ``41272805926976060``, the same double)."""
    if isinstance(a, bool) or isinstance(b, bool):
        return a is b
    if isinstance(a, int | float) and isinstance(b, int | float):
        return float(a) == float(b)
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(same_json(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(same_json(x, y) for x, y in zip(a, b, strict=True))
    return bool(a == b)


# -- HTML --------------------------------------------------------------------------------


class ScriptCollector(HTMLParser):
    """The elements a browser's tokenizer sees: every start tag and each script's text."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[str] = []
        self.scripts: list[str] = []
        self.handlers: list[str] = []  # event handler attributes (onerror=...) seen
        self._in_script = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        self.handlers.extend(f"{tag}[{name}]" for name, _ in attrs if name.startswith("on"))
        if tag == "script":
            self._in_script = True
            self.scripts.append("")

    def handle_endtag(self, tag: str) -> None:
        if tag == "script":
            self._in_script = False

    def handle_data(self, data: str) -> None:
        if self._in_script:
            self.scripts[-1] += data

    def handle_comment(self, data: str) -> None:
        self.tags.append("!--")


def parse_html(html: str) -> ScriptCollector:
    parser = ScriptCollector()
    parser.feed(html)
    parser.close()
    return parser


def fbq_calls(script: str) -> list[list[Any]]:
    """The arguments of every ``fbq(...);`` line of a script, parsed as JSON."""
    calls = []
    for line in script.split("\n"):  # JS line terminators: \n (\r, U+2028/9 are escaped)
        line = line.strip()
        if line.startswith("fbq(") and line.endswith(");"):
            calls.append(json.loads("[" + line[4:-2] + "]"))
    return calls


# -- a host view and URLconf ------------------------------------------------------------

#: What the view records, set by a test before the request (user_data, custom_data, name).
VIEW_ARGS: dict[str, Any] = {}


def track_view(request: HttpRequest, rest: str = "") -> HttpResponse:
    """A host page that records an event for its request, like a shop's product page."""
    event = track(
        VIEW_ARGS.get("event_name", "ViewContent"),
        request=request,
        user_data=VIEW_ARGS.get("user_data"),
        custom_data=VIEW_ARGS.get("custom_data"),
    )
    return HttpResponse(str(event.pk or ""), content_type="text/plain")


urlpatterns = [
    path("admin/", admin.site.urls),
    re_path(r"^track/(?P<rest>[\s\S]*)\Z", track_view),  # any path, newlines included
]


def new_event_id() -> str:
    return f"fuzz-{uuid.uuid4()}"
