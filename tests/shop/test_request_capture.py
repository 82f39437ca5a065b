"""Client IP behind trusted proxies, URL scrubbing, browser ids and the kept context."""

from __future__ import annotations

import pytest
from django.core.exceptions import ImproperlyConfigured

from django_capi import request_capture
from django_capi.request_capture import (
    capture_context,
    client_ip,
    context_allows_tracking,
    scrub_url,
    user_data_from_context,
    user_data_from_request,
)
from tests.shop.conftest import UA, set_capi

# --- client IP -------------------------------------------------------------------------------


def ip_of(rf, settings, remote, forwarded=None, proxies=()):
    set_capi(settings, TRUSTED_PROXIES=list(proxies))
    meta = {"REMOTE_ADDR": remote}
    if forwarded is not None:
        meta["HTTP_X_FORWARDED_FOR"] = forwarded
    return client_ip(rf.get("/", **meta))


def test_forwarded_header_is_ignored_without_trusted_proxies(rf, settings):
    assert ip_of(rf, settings, "198.51.100.7", "6.6.6.6") == "198.51.100.7"


def test_forwarded_header_is_ignored_from_an_untrusted_peer(rf, settings):
    assert ip_of(rf, settings, "198.51.100.7", "6.6.6.6", ["10.0.0.0/8"]) == "198.51.100.7"


def test_trusted_proxy_gives_the_rightmost_untrusted_hop(rf, settings):
    # The client forged "6.6.6.6"; the proxy appended the real peer 203.0.113.9.
    ip = ip_of(rf, settings, "10.0.0.2", "6.6.6.6, 203.0.113.9, 10.0.0.1", ["10.0.0.0/8"])
    assert ip == "203.0.113.9"


def test_ipv6_ports_and_mapped_addresses(rf, settings):
    assert ip_of(rf, settings, "::1", "[2001:db8::5]:4711", ["::1"]) == "2001:db8::5"
    assert ip_of(rf, settings, "::ffff:10.0.0.1", "203.0.113.9:80", ["10.0.0.1"]) == "203.0.113.9"


def test_garbage_in_a_trusted_chain_gives_no_ip(rf, settings):
    assert ip_of(rf, settings, "10.0.0.2", "unknown", ["10.0.0.0/8"]) is None
    assert ip_of(rf, settings, "not-an-ip") is None


def test_all_hops_trusted_gives_the_farthest(rf, settings):
    assert ip_of(rf, settings, "127.0.0.1", None, ["127.0.0.1"]) == "127.0.0.1"
    assert ip_of(rf, settings, "10.0.0.2", "10.0.0.9", ["10.0.0.0/8"]) == "10.0.0.9"


def test_a_bad_trusted_proxy_entry_is_a_configuration_error(rf, settings):
    with pytest.raises(ImproperlyConfigured, match="TRUSTED_PROXIES"):
        ip_of(rf, settings, "10.0.0.2", "1.2.3.4", ["10.0.0.0/8", "my-proxy"])


# --- URLs ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("https://s.example/p?a=1&email=joe%40x.com&b=2", "https://s.example/p?a=1&b=2"),
        ("https://s.example/p?EMAIL=x&Phone=1&first_name=J&zip=9", "https://s.example/p"),
        ("https://s.example/p?billing[email]=x&customer_phone=1&q=ok", "https://s.example/p?q=ok"),
        ("https://s.example/p?q=joe%40example.com&x=1", "https://s.example/p?x=1"),
        ("https://s.example/p?q=joe@example.com", "https://s.example/p"),
        ("https://s.example/p?fbclid=AbC&utm_source=fb#section", "https://s.example/p?fbclid=AbC&utm_source=fb"),
        ("https://s.example/p?hotel_id=3&a=%20b", "https://s.example/p?hotel_id=3&a=%20b"),
        ("https://s.example/p?token=secret&password=x", "https://s.example/p"),
        ("android-app://com.example/", None),
        ("javascript:alert(1)", None),
        ("", None),
    ],
)  # fmt: skip
def test_scrub_url(url, expected):
    assert scrub_url(url) == expected


def test_scrub_list_is_a_setting(settings):
    set_capi(settings, SCRUB_QUERY_PARAMS=["coupon"])
    assert scrub_url("https://s.example/?coupon=X&email=kept") == "https://s.example/?email=kept"


def test_page_url_and_referrer_are_scrubbed(browser_request):
    assert request_capture.page_url(browser_request) == "http://testserver/checkout/?step=2"
    assert (
        request_capture.referrer_url(browser_request) == "https://shop.example/cart?utm_source=news"
    )


# --- browser ids -------------------------------------------------------------------------------


def test_user_data_from_request(browser_request):
    assert user_data_from_request(browser_request) == {
        "client_ip_address": "198.51.100.7",
        "client_user_agent": UA,
        "fbp": "fb.1.1596403881668.1116446470",
        "fbc": "fb.1.1554763741205.AbCdEfGhIjKlMnOpQrStUvWxYz1234567890",
    }


def test_fbclid_becomes_fbc_with_its_case_kept(rf):
    request = rf.get("/landing/?fbclid=IwAR2F4-dbP0l7Mn_QvwjNwB", REMOTE_ADDR="198.51.100.7")
    fbc = user_data_from_request(request)["fbc"]
    prefix, index, millis, fbclid = fbc.split(".")
    assert (prefix, index, fbclid) == ("fb", "1", "IwAR2F4-dbP0l7Mn_QvwjNwB")
    assert len(millis) == 13


def test_new_fbclid_replaces_an_older_fbc_same_fbclid_keeps_it(rf):
    old = "fb.1.1554763741205.OldClick"
    request = rf.get("/?fbclid=NewClick")
    request.COOKIES["_fbc"] = old
    assert user_data_from_request(request)["fbc"].endswith(".NewClick")
    request = rf.get("/?fbclid=OldClick")
    request.COOKIES["_fbc"] = old
    assert user_data_from_request(request)["fbc"] == old


def test_malformed_fbclid_and_cookies_are_ignored(rf):
    request = rf.get("/?fbclid=abc.def%3Bx")
    request.COOKIES["_fbp"] = "garbage"
    request.COOKIES["_fbc"] = "fb.1.notms.x"
    data = user_data_from_request(request)
    assert "fbc" not in data
    assert "fbp" not in data


def test_cookies_with_meta_appendix_are_accepted(rf):
    request = rf.get("/")
    request.COOKIES["_fbp"] = "fb.1.1596403881668.1116446470.AQIAAQMC"
    assert user_data_from_request(request)["fbp"] == "fb.1.1596403881668.1116446470.AQIAAQMC"


def test_without_middleware_no_fbp_is_invented(rf):
    assert "fbp" not in user_data_from_request(rf.get("/"))


# --- the kept context -------------------------------------------------------------------------


def test_capture_context_keeps_what_a_later_event_needs(browser_request):
    context = capture_context(browser_request)
    assert context["consent"] is True
    assert context["v"] == 1
    assert context["client_ip_address"] == "198.51.100.7"
    assert context["client_user_agent"] == UA
    assert context["fbp"] == "fb.1.1596403881668.1116446470"
    assert context["event_source_url"] == "http://testserver/checkout/?step=2"
    assert "joe" not in str(context)
    assert user_data_from_context(context) == {
        key: context[key] for key in ("client_ip_address", "client_user_agent", "fbp", "fbc")
    }


def test_capture_context_without_consent_keeps_nothing_personal(browser_request, settings):
    set_capi(settings, CONSENT=lambda request: False)
    context = capture_context(browser_request)
    assert set(context) == {"v", "consent", "captured_at"}
    assert context["consent"] is False
    assert not context_allows_tracking(context)
    assert user_data_from_context(context) == {}


def test_context_without_a_flag_follows_the_setting(settings):
    assert context_allows_tracking(None)
    assert context_allows_tracking({"fbp": "x"})
    set_capi(settings, CONSENT="tests.shop.test_consent.always_yes")
    assert not context_allows_tracking(None)
    assert context_allows_tracking({"consent": True})
