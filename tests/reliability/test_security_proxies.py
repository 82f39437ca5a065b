"""Security: a spoofed X-Forwarded-For is ignored; only trusted proxies are believed.

Through a real request (test Client, CapiMiddleware, a view calling
``track(request=request)``), with generated addresses. The client IP recorded is
``REMOTE_ADDR`` unless that peer is one of ``TRUSTED_PROXIES``; then it is the right-most hop
of X-Forwarded-For that is not a trusted proxy (the farthest hop when all are trusted), and
nothing when the chain holds garbage. tests/shop/test_request_capture.py checks hand-picked
chains on client_ip() itself.
"""

from __future__ import annotations

import ipaddress
from typing import Any

import pytest
from django.test import Client, override_settings
from hypothesis import example, given
from hypothesis import strategies as st

from django_capi import track
from django_capi.models import Event
from tests.reliability import inputs
from tests.reliability.inputs import CAPI_MIDDLEWARE, FUZZ

pytestmark = [pytest.mark.django_db, pytest.mark.urls("tests.reliability.inputs")]

PIXEL = "1234567890123456"
TRUSTED = ["10.0.0.0/8", "2001:db8:ffff::/48"]
NETS = [ipaddress.ip_network(n) for n in TRUSTED]

public_v4 = st.ip_addresses(v=4).filter(lambda a: not any(a in n for n in NETS[:1]))
# IPv4-mapped IPv6 addresses are read as their IPv4 address: left out of the IPv6 ones.
v6 = st.ip_addresses(v=6).filter(lambda a: a.ipv4_mapped is None)
public = st.one_of(public_v4, v6.filter(lambda a: a not in NETS[1]))
trusted_ip = st.one_of(
    st.integers(0, 2**24 - 1).map(lambda i: ipaddress.IPv4Address(0x0A000000 + i)),
    st.integers(0, 2**80 - 1).map(lambda i: NETS[1].network_address + i),
)
any_ip = st.one_of(public, trusted_ip)


def recorded_ip(remote: str, forwarded: str | None, trusted: list[str]) -> str | None:
    capi = {"PIXEL_ID": PIXEL, "ACCESS_TOKEN": "t", "TRUSTED_PROXIES": trusted}
    inputs.VIEW_ARGS.clear()
    inputs.VIEW_ARGS.update(user_data={"em": "joe@example.com"})
    meta = {"REMOTE_ADDR": remote, "HTTP_USER_AGENT": "UA"}
    if forwarded is not None:
        meta["HTTP_X_FORWARDED_FOR"] = forwarded
    with override_settings(MIDDLEWARE=CAPI_MIDDLEWARE, CAPI=capi):
        response = Client().get("/track/", **meta)
    assert response.status_code == 200
    event = Event.objects.get(pk=int(response.content))
    return event.payload["user_data"].get("client_ip_address")


def trusted(address: Any) -> bool:
    return any(address.version == n.version and address in n for n in NETS)


@FUZZ
@given(
    remote=public,
    spoofed=st.lists(st.one_of(any_ip.map(str), st.sampled_from(["unknown", "", "1.2.3.4:80"]))),
    configured=st.sampled_from([[], TRUSTED]),
)
@example(remote=ipaddress.ip_address("198.51.100.7"), spoofed=["6.6.6.6"], configured=TRUSTED)
def test_forwarded_for_from_an_untrusted_client_is_ignored(
    remote: Any, spoofed: list[str], configured: list[str]
) -> None:
    assert recorded_ip(str(remote), ", ".join(spoofed), configured) == str(remote)


@FUZZ
@given(
    proxy=trusted_ip,
    client=any_ip,
    spoofed=st.lists(any_ip, max_size=3),
    more_proxies=st.lists(trusted_ip, max_size=3),
)
@example(
    proxy=ipaddress.ip_address("10.0.0.2"),
    client=ipaddress.ip_address("203.0.113.9"),
    spoofed=[ipaddress.ip_address("6.6.6.6")],
    more_proxies=[ipaddress.ip_address("10.0.0.1")],
)
def test_trusted_proxies_give_the_rightmost_untrusted_hop(
    proxy: Any, client: Any, spoofed: list[Any], more_proxies: list[Any]
) -> None:
    # What the client sent, then the hop each proxy appended, right-most nearest.
    chain = [*spoofed, client, *more_proxies]
    ip = recorded_ip(str(proxy), ", ".join(map(str, chain)), TRUSTED)
    untrusted = [hop for hop in chain if not trusted(hop)]
    expected = untrusted[-1] if untrusted else chain[0]
    assert ip == str(expected)
    # Never a spoofed hop left of the real client (unless it is the client's address too).
    if not trusted(client):
        assert ip == str(client)


def test_garbage_in_a_trusted_chain_records_no_ip(rf: Any, settings: Any) -> None:
    settings.CAPI = {"PIXEL_ID": PIXEL, "ACCESS_TOKEN": "t", "TRUSTED_PROXIES": TRUSTED}
    request = rf.get("/", REMOTE_ADDR="10.0.0.2", HTTP_X_FORWARDED_FOR="1.2.3.4, unknown")
    event = track("Lead", request=request, user_data={"em": "joe@example.com"})
    assert "client_ip_address" not in event.payload["user_data"]
    request = rf.get("/", REMOTE_ADDR="10.0.0.2", HTTP_X_FORWARDED_FOR="1.2.3.4, 10.9.9.9")
    assert track("Lead", request=request).payload["user_data"]["client_ip_address"] == "1.2.3.4"
