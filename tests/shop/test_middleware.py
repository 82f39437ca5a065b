"""CapiMiddleware: first-party _fbp/_fbc cookies, their attributes, consent, request.capi."""

from __future__ import annotations

import pytest
from django.http import HttpResponse

from django_capi import track
from django_capi.middleware import CapiMiddleware
from django_capi.request_capture import RequestCapture
from django_capi.shop.cookies import fbc_from_fbclid, new_fbp, parse_browser_id, registrable_domain
from tests.shop.conftest import UA, set_capi


def run(request, view=None):
    """Pass ``request`` through the middleware around ``view`` (default: an empty page)."""
    seen = {}

    def get_response(req):
        seen["capture"] = req.capi
        return view(req) if view else HttpResponse("ok")

    response = CapiMiddleware(get_response)(request)
    return response, seen["capture"]


def test_new_visitor_gets_a_server_set_fbp(rf):
    response, capture = run(rf.get("/"))
    assert isinstance(capture, RequestCapture)
    cookie = response.cookies["_fbp"]
    assert parse_browser_id(cookie.value) == cookie.value
    assert cookie.value.startswith("fb.1.")
    assert cookie["max-age"] == 90 * 24 * 3600
    assert cookie["path"] == "/"
    assert cookie["samesite"] == "Lax"
    assert not cookie["httponly"]  # the pixel reads it
    assert not cookie["secure"]  # plain http (the test server)
    assert cookie["domain"] == ""  # "testserver" is a single-label host: host-only
    assert "_fbc" not in response.cookies


def test_https_cookies_are_secure_and_on_the_registrable_domain(rf, settings):
    settings.ALLOWED_HOSTS = ["*"]
    request = rf.get("/?fbclid=AbC_d-9", secure=True, HTTP_HOST="www.shop.example.co.uk")
    response, _ = run(request)
    for name in ("_fbp", "_fbc"):
        assert response.cookies[name]["secure"]
        assert response.cookies[name]["domain"] == "example.co.uk"
    assert response.cookies["_fbc"].value.endswith(".AbC_d-9")


def test_cookie_domain_and_age_settings(rf, settings):
    set_capi(settings, COOKIE_DOMAIN="shop.example", COOKIE_MAX_AGE=3600)
    response, _ = run(rf.get("/", HTTP_HOST="testserver"))
    assert response.cookies["_fbp"]["domain"] == "shop.example"
    assert response.cookies["_fbp"]["max-age"] == 3600


def test_existing_cookies_are_not_reset(rf):
    request = rf.get("/")
    request.COOKIES["_fbp"] = "fb.1.1596403881668.1116446470"
    request.COOKIES["_fbc"] = "fb.1.1554763741205.Click"
    response, _ = run(request)
    assert "_fbp" not in response.cookies
    assert "_fbc" not in response.cookies


def test_events_of_the_request_carry_the_new_ids(rf, db):
    def view(request):
        event = track("ViewContent", request=request, user_data={"em": "a@b.co"})
        return HttpResponse(
            event.payload["user_data"]["fbp"] + " " + event.payload["user_data"]["fbc"]
        )

    response, _ = run(rf.get("/p/?fbclid=Click42", HTTP_USER_AGENT=UA), view)
    fbp, fbc = response.content.decode().split()
    assert response.cookies["_fbp"].value == fbp
    assert response.cookies["_fbc"].value == fbc
    assert fbc.endswith(".Click42")


def test_no_consent_no_cookies(rf, settings):
    set_capi(settings, CONSENT=lambda request: request.COOKIES.get("ok") == "1")
    response, capture = run(rf.get("/?fbclid=Click"))
    assert not response.cookies
    assert capture.cookies_to_set() == {}
    request = rf.get("/?fbclid=Click")
    request.COOKIES["ok"] = "1"
    response, _ = run(request)
    assert {"_fbp", "_fbc"} <= set(response.cookies)


def test_setting_can_turn_server_cookies_off(rf, settings):
    set_capi(settings, SET_BROWSER_COOKIES=False)
    response, capture = run(rf.get("/?fbclid=Click"))
    assert not response.cookies
    assert capture.fbp is None
    assert capture.fbc.endswith(".Click")  # still read for this request's events


def test_a_view_setting_its_own_fbp_wins(rf):
    def view(request):
        response = HttpResponse()
        response.set_cookie("_fbp", "fb.1.1596403881668.42")
        return response

    response, _ = run(rf.get("/"), view)
    assert response.cookies["_fbp"].value == "fb.1.1596403881668.42"


def test_disallowed_host_sets_no_cookie(rf, settings):
    settings.ALLOWED_HOSTS = ["shop.example"]
    response, _ = run(rf.get("/", HTTP_HOST="evil.example"))
    assert not response.cookies


@pytest.mark.parametrize(
    ("host", "domain"),
    [
        ("example.com", "example.com"),
        ("www.example.com", "example.com"),
        ("a.b.example.com:8443", "example.com"),
        ("example.co.uk", "example.co.uk"),
        ("www.example.com.au", "example.com.au"),
        ("myshop.herokuapp.com", "myshop.herokuapp.com"),
        ("localhost:8000", None),
        ("127.0.0.1:8000", None),
        ("[::1]:8000", None),
        ("", None),
    ],
)
def test_registrable_domain(host, domain):
    assert registrable_domain(host) == domain


def test_id_builders():
    assert fbc_from_fbclid("AbC", 1700000000000) == "fb.1.1700000000000.AbC"
    with pytest.raises(ValueError, match="fbclid"):
        fbc_from_fbclid("a.b")
    fbp = new_fbp(1700000000000)
    assert fbp.startswith("fb.1.1700000000000.")
    assert int(fbp.rsplit(".", 1)[1]) > 0
    assert new_fbp() != new_fbp()
