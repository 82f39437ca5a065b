"""What an event learns from the HTTP request it was recorded in.

Only values Meta sends unhashed are taken from the request: the client's IP address and user
agent, the ``_fbp``/``_fbc`` browser ids, the page URL and the referrer.

- **IP address**: ``REMOTE_ADDR``. ``X-Forwarded-For`` is read only when ``REMOTE_ADDR`` is one
  of ``CAPI["TRUSTED_PROXIES"]`` (IPs or CIDR networks): the client is then the right-most
  address in the header that is not a trusted proxy. The header is never trusted blindly.
- **URLs**: query parameters that may carry contact data (``CAPI["SCRUB_QUERY_PARAMS"]``,
  matched case-insensitively on the name or one of its ``_``/``-``/``[]``-separated parts, and
  any parameter whose value looks like an email address) are removed, and so is the fragment.
- **Browser ids**: the ``_fbp``/``_fbc`` cookies; ``?fbclid=`` on the URL becomes
  ``fbc = fb.1.<ms>.<fbclid>`` (case kept). With :class:`django_capi.middleware.CapiMiddleware`
  new ids are also set as first-party cookies (see there).

:func:`capture_context` packs all of it into a small JSON-ready dict a host keeps with its
order, so an event recorded later without a request (a payment webhook) still carries it.
"""

from __future__ import annotations

import ipaddress
import re
import time
from collections.abc import Iterable, Mapping
from functools import cached_property, lru_cache
from typing import Any, Final
from urllib.parse import unquote_plus, urlsplit, urlunsplit

from django.core.exceptions import DisallowedHost, ImproperlyConfigured
from django.http import HttpRequest

from django_capi import conf
from django_capi.shop.consent import consent_is_configured, has_consent
from django_capi.shop.cookies import (
    FBC_COOKIE,
    FBP_COOKIE,
    fbc_from_fbclid,
    fbclid_of,
    is_valid_fbclid,
    new_fbp,
    parse_browser_id,
)

__all__ = [
    "CONTEXT_VERSION",
    "FBC_COOKIE",
    "FBP_COOKIE",
    "RequestCapture",
    "capture_context",
    "capture_for",
    "client_ip",
    "context_allows_tracking",
    "page_url",
    "referrer_url",
    "scrub_url",
    "user_data_from_context",
    "user_data_from_request",
]

#: The attribute CapiMiddleware puts the request's :class:`RequestCapture` on.
REQUEST_ATTRIBUTE: Final = "capi"
CONTEXT_VERSION: Final = 1
_CONTEXT_USER_KEYS: Final = ("client_ip_address", "client_user_agent", "fbp", "fbc")
_EMAIL_LIKE: Final = re.compile(r"[^@\s/?#&=]+@[^@\s/?#&=]+\.[A-Za-z]{2,}")
_NAME_PARTS: Final = re.compile(r"[^a-z0-9]+")
_CONTROL_CHARS: Final = re.compile(r"[\x00-\x1f\x7f\ud800-\udfff]")

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


# --- IP address ---------------------------------------------------------------------------


def _parse_ip(value: object) -> IPAddress | None:
    """An address from ``REMOTE_ADDR`` or one ``X-Forwarded-For`` hop (port/brackets allowed)."""
    if not isinstance(value, str):
        return None
    text = value.strip()
    if text.startswith("["):  # [2001:db8::1]:443
        text = text[1:].split("]", 1)[0]
    elif text.count(":") == 1:  # 203.0.113.7:5000
        text = text.split(":", 1)[0]
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


@lru_cache(maxsize=8)
def _networks(entries: tuple[str, ...]) -> tuple[IPNetwork, ...]:
    networks = []
    for entry in entries:
        try:
            networks.append(ipaddress.ip_network(entry.strip(), strict=False))
        except ValueError:
            raise ImproperlyConfigured(
                f"CAPI['TRUSTED_PROXIES'] entries are IP addresses or CIDR networks, not {entry!r}."
            ) from None
    return tuple(networks)


def trusted_proxies() -> tuple[IPNetwork, ...]:
    """``CAPI["TRUSTED_PROXIES"]`` as networks (raises ImproperlyConfigured for a bad entry)."""
    setting = conf.get_setting("TRUSTED_PROXIES") or ()
    if isinstance(setting, str):
        setting = [setting]
    return _networks(tuple(str(entry) for entry in setting))


def _trusted(address: IPAddress, networks: Iterable[IPNetwork]) -> bool:
    return any(address.version == net.version and address in net for net in networks)


def client_ip(request: HttpRequest) -> str | None:
    """The client's IP address, honouring ``CAPI["TRUSTED_PROXIES"]`` (see the module doc).

    None when the address cannot be known: ``REMOTE_ADDR`` is missing or malformed, or a hop
    in a trusted proxy's ``X-Forwarded-For`` is not an address.
    """
    remote = _parse_ip(request.META.get("REMOTE_ADDR"))
    if remote is None:
        return None
    networks = trusted_proxies()
    if not networks or not _trusted(remote, networks):
        return str(remote)
    header = request.META.get("HTTP_X_FORWARDED_FOR") or ""
    hops = [hop.strip() for hop in str(header).split(",") if hop.strip()]
    candidate = remote
    for hop in reversed(hops):
        address = _parse_ip(hop)
        if address is None:  # "unknown" or garbage: the chain ends in the dark
            return None
        candidate = address
        if not _trusted(address, networks):
            return str(address)
    return str(candidate)  # every hop is a trusted proxy: the farthest one is the client


# --- URLs -----------------------------------------------------------------------------------


def _scrubbed_names() -> frozenset[str]:
    return frozenset(str(name).lower() for name in conf.get_setting("SCRUB_QUERY_PARAMS") or ())


def _is_contact_parameter(name: str, value: str, scrubbed: frozenset[str]) -> bool:
    lowered = name.lower()
    if lowered in scrubbed or any(part in scrubbed for part in _NAME_PARTS.split(lowered)):
        return True
    return _EMAIL_LIKE.search(value) is not None


def scrub_url(url: str | None) -> str | None:
    """``url`` without contact-data query parameters or fragment; None unless http(s).

    The remaining parameters keep their order and their original encoding.
    """
    if not url:
        return None
    text = str(url).strip()
    if _CONTROL_CHARS.search(text):  # a NUL or newline in a header: no browser sends one
        return None
    try:
        parts = urlsplit(text)
    except ValueError:
        return None
    if parts.scheme.lower() not in ("http", "https") or not parts.netloc:
        return None
    scrubbed = _scrubbed_names()
    kept = []
    for piece in parts.query.split("&"):
        if not piece:
            continue
        raw_name, _, raw_value = piece.partition("=")
        if not _is_contact_parameter(unquote_plus(raw_name), unquote_plus(raw_value), scrubbed):
            kept.append(piece)
    return urlunsplit((parts.scheme, parts.netloc, parts.path, "&".join(kept), ""))


def page_url(request: HttpRequest) -> str | None:
    """The page's absolute URL, scrubbed; None when the Host header is not allowed."""
    try:
        return scrub_url(request.build_absolute_uri())
    except DisallowedHost:
        return None


def referrer_url(request: HttpRequest) -> str | None:
    """The ``Referer`` header, scrubbed (None unless it is an http(s) URL)."""
    return scrub_url(request.META.get("HTTP_REFERER"))


# --- browser ids ------------------------------------------------------------------------------


class RequestCapture:
    """The browser ids of one request, and the first-party cookies to set for them.

    :class:`~django_capi.middleware.CapiMiddleware` puts one on ``request.capi`` with
    ``set_cookies=CAPI["SET_BROWSER_COOKIES"]``: then a visitor who consents and has no
    ``_fbp`` gets a new one, and an ``fbclid`` on the URL a new ``_fbc``, both used by events
    of the same request and set on its response. Without the middleware the ids are only read.
    """

    def __init__(self, request: HttpRequest, *, set_cookies: bool) -> None:
        self.request = request
        self.set_cookies = set_cookies
        self.new_cookies: dict[str, str] = {}
        #: ``(id(order), event_name) -> (order, adapter, custom_data)``: the custom data an order's
        #: event was recorded with in this request, reused by the page's pixel call (see
        #: :func:`django_capi.shop.orders.order_custom_data_for_page`). Lives as long as the
        #: request, so it can never serve another request, test or transaction.
        self.recorded_custom_data: dict[tuple[int, str], tuple[Any, Any, dict[str, Any]]] = {}

    @cached_property
    def consent(self) -> bool:
        """``has_consent(request)``, asked once per request."""
        return has_consent(self.request)

    def _may_create(self) -> bool:
        return self.set_cookies and self.consent

    @cached_property
    def fbp(self) -> str | None:
        """The ``_fbp`` cookie, or a new id when cookies may be set."""
        existing = parse_browser_id(self.request.COOKIES.get(FBP_COOKIE))
        if existing or not self._may_create():
            return existing
        value = new_fbp()
        self.new_cookies[FBP_COOKIE] = value
        return value

    @cached_property
    def fbc(self) -> str | None:
        """The ``_fbc`` cookie, or ``fb.1.<ms>.<fbclid>`` when the URL has a new ``fbclid``."""
        existing = parse_browser_id(self.request.COOKIES.get(FBC_COOKIE))
        fbclid = self.request.GET.get("fbclid") if self.request.method in ("GET", "HEAD") else None
        if fbclid is None or not is_valid_fbclid(fbclid) or fbclid_of(existing) == fbclid:
            return existing
        value = fbc_from_fbclid(fbclid)
        if self._may_create():
            self.new_cookies[FBC_COOKIE] = value
        return value

    def cookies_to_set(self) -> dict[str, str]:
        """Cookie name -> value for ids created in this request (empty without consent)."""
        if not self._may_create():
            return {}
        _ = self.fbp, self.fbc  # create them now if nothing asked for them yet
        return dict(self.new_cookies)


def capture_for(request: HttpRequest) -> RequestCapture:
    """The request's :class:`RequestCapture` (a read-only one when the middleware is absent)."""
    capture = getattr(request, REQUEST_ATTRIBUTE, None)
    if not isinstance(capture, RequestCapture):
        capture = RequestCapture(request, set_cookies=False)
        setattr(request, REQUEST_ATTRIBUTE, capture)
    return capture


def user_data_from_request(request: HttpRequest) -> dict[str, Any]:
    """Non-hashed customer information available from the request."""
    capture = capture_for(request)
    data: dict[str, Any] = {
        "client_ip_address": client_ip(request),
        "client_user_agent": request.META.get("HTTP_USER_AGENT") or None,
        "fbp": capture.fbp,
        "fbc": capture.fbc,
    }
    return {key: value for key, value in data.items() if value}


# --- keeping it for later -----------------------------------------------------------------------


def capture_context(request: HttpRequest) -> dict[str, Any]:
    """A JSON-ready snapshot of what events need from ``request``, to keep with an order.

    ``{"v": 1, "consent": True, "captured_at": <unix seconds>, "client_ip_address": ...,
    "client_user_agent": ..., "fbp": ..., "fbc": ..., "event_source_url": ...,
    "referrer_url": ...}`` (missing values left out). Without consent only ``v``,
    ``consent: False`` and ``captured_at`` are kept.
    """
    context: dict[str, Any] = {
        "v": CONTEXT_VERSION,
        "consent": has_consent(request),
        "captured_at": int(time.time()),
    }
    if not context["consent"]:
        return context
    context.update(user_data_from_request(request))
    urls = {"event_source_url": page_url(request), "referrer_url": referrer_url(request)}
    context.update({key: value for key, value in urls.items() if value})
    return context


def context_allows_tracking(context: Mapping[str, Any] | None) -> bool:
    """Whether a kept context permits events: its ``consent`` flag, else the setting.

    Without a context (or a flag) events are allowed only when ``CAPI["CONSENT"]`` is unset.
    """
    if context is not None and isinstance(context.get("consent"), bool):
        return bool(context["consent"])
    return not consent_is_configured()


def user_data_from_context(context: Mapping[str, Any] | None) -> dict[str, Any]:
    """The non-hashed ``user_data`` (IP, user agent, fbp, fbc) from a kept context."""
    if not context or not context_allows_tracking(context):
        return {}
    return {key: context[key] for key in _CONTEXT_USER_KEYS if context.get(key)}
