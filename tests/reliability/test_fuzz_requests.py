"""Bad input through a real Django request: hostile headers, cookies and URLs.

The test Client sends each example through Django's handler, the middleware stack with
``CapiMiddleware`` and a host view that calls ``track(request=request, ...)``
(``inputs.track_view``). Property: the host's page always answers 200; the event it
recorded (if any, consent allowing) satisfies ``inputs.check_stored_event``; the cookies set
are well-formed Meta ids on a sane domain (no header injection); URLs are http(s) without
fragments or email addresses.

tests/shop/test_middleware.py and tests/shop/test_request_capture.py test the same code with
hand-picked requests; here the values are generated.
"""

from __future__ import annotations

import ipaddress
import re
from typing import Any
from urllib.parse import quote, urlsplit

import pytest
from django.test import Client, override_settings
from hypothesis import example, given
from hypothesis import strategies as st

from django_capi.models import Event
from django_capi.request_capture import _parse_ip
from tests.reliability import inputs
from tests.reliability.inputs import (
    CAPI_MIDDLEWARE,
    FUZZ,
    NASTY_TEXT,
    check_stored_event,
    custom_data_dicts,
    user_data_dicts,
)

pytestmark = [pytest.mark.django_db, pytest.mark.urls("tests.reliability.inputs")]

PIXEL = "1234567890123456"
COOKIE_VALUE = re.compile(r"fb\.1\.[0-9]{13}\.[A-Za-z0-9_\-]{1,500}")

# WSGI hands headers over as latin-1 decoded text: every code point up to 255 is possible.
header_text = st.one_of(
    st.text(st.characters(max_codepoint=255), max_size=60),
    st.sampled_from([t for t in NASTY_TEXT if all(ord(c) < 256 for c in t)]),
    st.sampled_from(["\xff\xfe", "\u00e9t\u00e9", "a" * 9000]),
)
ips = st.one_of(
    st.ip_addresses().map(str),
    st.sampled_from(
        ["10.0.0.2", "10.1.2.3", "::ffff:10.0.0.1", "[2001:db8::1]:443", "203.0.113.7:5000"]
    ),
    header_text,
)
forwarded = st.one_of(
    st.none(),
    st.lists(ips, max_size=5).map(", ".join),
    header_text,
)
browser_ids = st.one_of(
    st.none(),
    st.sampled_from(
        [
            "fb.1.1596403881668.1116446470",
            "fb.1.1554763741205.AbCdEf.Ap",
            "fb.1.1.1",
            "fb.2.1596403881668." + "x" * 600,
        ]
    ),
    header_text,
)
hosts = st.one_of(
    st.sampled_from(
        [
            "shop.example",
            "www.shop.example.co.uk:8443",
            "127.0.0.1:8000",
            "[::1]:8000",
            "localhost",
            "evil.example",
            "a..b",
            "x" * 300 + ".com",
            "shop.example:99999",
            "shop.example\r\nSet-Cookie: a=b",
        ]
    ),
    header_text,
)
referers = st.one_of(
    st.none(),
    st.sampled_from(
        [
            "https://shop.example/cart?email=joe%40example.com&q=1#frag",
            "https://shop.example/?q=joe@example.com",
            "javascript:alert(1)",
            "https://[::1",
            "http://" + "a" * 5000,
        ]
    ),
    header_text.map(lambda s: "https://shop.example/" + s),
    header_text,
)
paths = st.one_of(
    st.just(""),
    st.text(st.characters(codec="utf-8"), max_size=30).map(lambda s: quote(s, safe="")),
    st.sampled_from(["%00", "%ff%fe", "..%2f..%2fetc", "a%0d%0aSet-Cookie:%20x=1"]),
)
query_values = st.one_of(st.text(st.characters(codec="utf-8"), max_size=40), header_text)
consents = st.sampled_from(["none", "yes", "no", "raises", "cookie"])


def _consent(kind: str) -> Any:
    if kind == "none":
        return None
    if kind in ("yes", "no"):
        return kind == "yes"
    if kind == "raises":

        def explode(request: Any) -> bool:
            raise RuntimeError("consent backend down")

        return explode
    return lambda request: request.COOKIES.get("consent") == "1"


@FUZZ
@given(
    user_agent=st.one_of(st.none(), header_text),
    remote_addr=st.one_of(st.none(), ips),
    xff=forwarded,
    host=hosts,
    referer=referers,
    fbp=browser_ids,
    fbc=browser_ids,
    fbclid=st.one_of(st.none(), query_values, st.just("AbC_d-9")),
    path=paths,
    query=st.dictionaries(st.sampled_from(["email", "q", "utm_source", "Phone"]), query_values),
    trusted=st.sampled_from([[], ["10.0.0.0/8"], ["10.0.0.0/8", "::1", "127.0.0.1"]]),
    allowed=st.sampled_from([["*"], ["shop.example", ".example.co.uk"]]),
    consent=consents,
    secure=st.booleans(),
    user_data=st.one_of(st.none(), user_data_dicts),
    custom_data=st.one_of(st.none(), custom_data_dicts),
)
@example(
    user_agent="Mozilla\x00/5.0", remote_addr="203.0.113.7", xff=None, host="shop.example",
    referer="https://shop.example/\x00", fbp=None, fbc=None, fbclid=None, path="", query={},
    trusted=[], allowed=["*"], consent="none", secure=False, user_data=None, custom_data=None,
).via("NUL in the User-Agent and the Referer")  # fmt: skip
@example(
    user_agent="UA", remote_addr="10.0.0.2", xff="6.6.6.6, garbage, 10.0.0.9", host="a..b",
    referer=None, fbp="fb.1.1596403881668.1116446470\r\n", fbc="x", fbclid="a.b",
    path="%00", query={"email": "joe@example.com"}, trusted=["10.0.0.0/8"], allowed=["*"],
    consent="raises", secure=True, user_data=None, custom_data=None,
)  # fmt: skip
def test_hostile_requests_never_break_the_host_page(**kw: Any) -> None:
    request_page(**kw)


def request_page(
    *,
    user_agent: str | None,
    remote_addr: str | None,
    xff: str | None,
    host: str,
    referer: str | None,
    fbp: str | None,
    fbc: str | None,
    fbclid: str | None,
    path: str,
    query: dict[str, str],
    trusted: list[str],
    allowed: list[str],
    consent: str,
    secure: bool,
    user_data: Any,
    custom_data: Any,
    expect_pending: bool = False,
) -> None:
    meta: dict[str, Any] = {"HTTP_HOST": host}
    for name, value in (
        ("HTTP_USER_AGENT", user_agent),
        ("HTTP_X_FORWARDED_FOR", xff),
        ("HTTP_REFERER", referer),
    ):
        if value is not None:
            meta[name] = value
    if remote_addr is not None:
        meta["REMOTE_ADDR"] = remote_addr
    cookies = [f"{name}={value}" for name, value in (("_fbp", fbp), ("_fbc", fbc)) if value]
    cookies.append("consent=1")
    meta["HTTP_COOKIE"] = "; ".join(cookies)
    data = dict(query)
    if fbclid is not None:
        data["fbclid"] = fbclid
    capi = {
        "PIXEL_ID": PIXEL,
        "ACCESS_TOKEN": "t",
        "DEFAULT_COUNTRY": "US",
        "QUEUE_ON_COMMIT": False,
        "TRUSTED_PROXIES": trusted,
        "CONSENT": _consent(consent),
    }
    inputs.VIEW_ARGS.clear()
    inputs.VIEW_ARGS.update(user_data=user_data, custom_data=custom_data)
    before = Event.objects.count()
    with override_settings(MIDDLEWARE=CAPI_MIDDLEWARE, ALLOWED_HOSTS=allowed, CAPI=capi):
        response = Client().get(f"/track/{path}", data, secure=secure, **meta)
    assert response.status_code == 200, response.content[:500]

    for name, morsel in response.cookies.items():
        if name in ("_fbp", "_fbc"):
            assert COOKIE_VALUE.fullmatch(morsel.value), morsel.value
            domain = morsel["domain"]
            assert re.fullmatch(r"[a-z0-9.\-]*", domain), domain
            assert bool(morsel["secure"]) == secure
            assert consent in ("none", "yes", "cookie")

    body = response.content.decode()
    if consent in ("no", "raises"):
        assert body == "" and Event.objects.count() == before
        return
    row = check_stored_event(Event.objects.get(pk=int(body)))
    if expect_pending:
        assert row.status == "pending", row.validation_errors
    user = row.payload["user_data"]
    if "client_ip_address" in user:
        ipaddress.ip_address(user["client_ip_address"])
        if not trusted:  # X-Forwarded-For is never believed without trusted proxies
            peer = remote_addr if remote_addr is not None else "127.0.0.1"  # the Client's
            assert user["client_ip_address"] == str(_parse_ip(peer))
    for key in ("event_source_url", "referrer_url"):
        if key in row.payload:
            url = row.payload[key]
            parts = urlsplit(url)
            assert parts.scheme in ("http", "https") and parts.netloc and not parts.fragment
            assert "joe@example.com" not in url and "joe%40example.com" not in url


@FUZZ
@given(
    remote_addr=st.one_of(st.none(), ips),
    xff=forwarded,
    referer=referers,
    fbp=browser_ids,
    fbc=browser_ids,
    fbclid=st.one_of(st.none(), query_values),
    path=paths,
    query=st.dictionaries(st.sampled_from(["email", "q", "utm_source", "Phone"]), query_values),
    trusted=st.sampled_from([[], ["10.0.0.0/8"]]),
)
@example(
    remote_addr=None, xff=None, referer="https://shop.example/\x00", fbp=None, fbc=None,
    fbclid=None, path="", query={}, trusted=[],
).via("a NUL in the Referer failed the event")  # fmt: skip
def test_what_the_visitor_sends_never_invalidates_the_hosts_event(**kw: Any) -> None:
    """Headers, cookies and URLs are the visitor's: garbage there is dropped, never makes the
    host's otherwise valid event fail."""
    request_page(
        user_agent="Mozilla/5.0 (X11; Linux x86_64) Firefox/130.0",
        host="shop.example",
        allowed=["*"],
        consent="none",
        secure=True,
        user_data={"em": "joe@example.com"},
        custom_data={"value": "9.99", "currency": "EUR"},
        expect_pending=True,
        **kw,
    )
