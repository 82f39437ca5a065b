"""``{% load capi %}``: Meta Pixel code whose events deduplicate with the server's.

- ``{% capi_pixel [pixel_id=None] [user_data=None] [source=None] %}``: the pixel base code
  (``init`` each dataset, then ``PageView``), the ``<noscript>`` image, Limited Data Use from
  the ``DATA_PROCESSING_OPTIONS*`` settings, and, with ``CAPI["PIXEL_ADVANCED_MATCHING"]``,
  hashed customer data from ``user_data`` (a mapping, or an order: its adapter's
  ``user_data``). The datasets: ``pixel_id`` (one or a list), else, with ``CAPI["ROUTER"]``,
  those it chooses for ``source`` (e.g. the order on the page), else every settings dataset.
- ``{% capi_event_id order "Purchase" [as var] %}``: the event id the server event has.
- ``{% capi_track order "Purchase" [custom_data=None] [script=True] %}``: a ``<script>`` with
  ``fbq('track', 'Purchase', {...custom data...}, {eventID: ...})``, the same custom data and
  id as the server event (``script=False``: only the call, for inside your own script). When
  the page may carry several pixels (several settings datasets, or a router), it is one
  ``fbq('trackSingle', '<dataset>', ...)`` per dataset the server event goes to.

``order`` may also be a string key (then pass ``custom_data``). Scripts get
``nonce="{{ request.csp_nonce }}"`` when the request has one (django-csp). Everything put into
a script is JSON with ``<``, ``>``, ``&``, U+2028 and U+2029 escaped, so no value can end the
script. Without consent (``CAPI["CONSENT"]``) the pixel tags render nothing. The tags need the
``request`` context processor when consent is configured.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from typing import Any, Final

from django import template
from django.http import HttpRequest
from django.template.loader import render_to_string
from django.utils.html import format_html
from django.utils.safestring import SafeString, mark_safe

from django_capi import conf
from django_capi.datasets import routing
from django_capi.normalization.custom_data import normalize_custom_data
from django_capi.normalization.user_data import HASHED_KEYS, normalize_user_data
from django_capi.shop.consent import has_consent, strip_custom_data
from django_capi.shop.event_ids import event_id_from_key
from django_capi.shop.orders import get_adapter, order_custom_data_for_page, order_event_id

__all__ = ["capi_event_id", "capi_pixel", "capi_track", "fbq_call", "js_value"]

register = template.Library()
logger = logging.getLogger("django_capi")

FBEVENTS_URL: Final = "https://connect.facebook.net/en_US/fbevents.js"

#: Meta's standard events; any other name is sent with ``trackCustom``.
STANDARD_EVENTS: Final = frozenset(
    {"AddPaymentInfo", "AddToCart", "AddToWishlist", "CompleteRegistration", "Contact",
     "CustomizeProduct", "Donate", "FindLocation", "InitiateCheckout", "Lead", "PageView",
     "Purchase", "Schedule", "Search", "StartTrial", "SubmitApplication", "Subscribe",
     "ViewContent"}
)  # fmt: skip

_SCRIPT_ESCAPES: Final = {
    ord("<"): "\\u003C",
    ord(">"): "\\u003E",
    ord("&"): "\\u0026",
    0x2028: "\\u2028",
    0x2029: "\\u2029",
}


def js_value(value: Any) -> str:
    """``value`` as a JavaScript literal that is safe inside an HTML ``<script>`` element."""
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    # Lone surrogates (broken text) become \uXXXX escapes: raw, the page could not be encoded.
    text = text.encode("utf-8", "backslashreplace").decode("utf-8")
    return text.translate(_SCRIPT_ESCAPES)


def fbq_call(*args: Any) -> str:
    """``fbq(arg, ...);`` with every argument written by :func:`js_value`."""
    return f"fbq({','.join(js_value(arg) for arg in args)});"


def _request(context: template.Context) -> HttpRequest | None:
    request = context.get("request")
    return request if isinstance(request, HttpRequest) else None


def _nonce_attribute(request: HttpRequest | None) -> str:
    nonce = getattr(request, "csp_nonce", None) if request is not None else None
    return format_html(' nonce="{}"', str(nonce)) if nonce else ""


def _pixel_ids(pixel_id: Any, source: Any, request: HttpRequest | None) -> list[str]:
    """The pixels a page initialises: ``pixel_id`` (one or a list), else the router's choice
    for ``source`` (an order), else every dataset in the settings."""
    if pixel_id not in (None, ""):
        ids = routing.route("PageView", pixel_id=pixel_id)
    elif routing.get_router() is not None:
        ids = _routed("PageView", source, request)
    else:
        ids = list(conf.settings_datasets())
    return [one for one in ids if conf.PIXEL_ID_RE.match(one)]


def _routed(event_name: str, order: Any, request: HttpRequest | None) -> list[str]:
    """The datasets the server event of ``order`` goes to (as track() would route it)."""
    source = None
    if order is not None and not isinstance(order, str):
        adapter = get_adapter(order)
        explicit = adapter.track_options(order, event_name).get("pixel_id")
        if explicit not in (None, ""):
            return routing.route(event_name, pixel_id=explicit)
        source = adapter.source(order)
    try:
        return routing.route(event_name, source=source, request=request)
    except routing.RoutingError as exc:
        logger.error("django_capi: no pixel code for %s: %s", event_name, exc)
        return []


def _advanced_matching(user_data: Any) -> dict[str, str]:
    if not conf.get_setting("PIXEL_ADVANCED_MATCHING") or user_data is None:
        return {}
    if not isinstance(user_data, Mapping):
        user_data = get_adapter(user_data).user_data(user_data)
    normalized = normalize_user_data(
        {key: value for key, value in user_data.items() if key not in ("fbp", "fbc")},
        default_country=conf.get_setting("DEFAULT_COUNTRY"),
    )
    matching: dict[str, str] = {}
    for key, value in normalized.data.items():
        if key in HASHED_KEYS and value:
            matching[key] = value[0] if isinstance(value, list) else value
    return matching


def _ldu_call() -> str | None:
    options = conf.get_setting("DATA_PROCESSING_OPTIONS")
    if options is None:
        return None
    args: list[Any] = ["dataProcessingOptions", list(options)]
    country = conf.get_setting("DATA_PROCESSING_OPTIONS_COUNTRY")
    state = conf.get_setting("DATA_PROCESSING_OPTIONS_STATE")
    if options and country is not None:
        args += [country, state if state is not None else 0]
    return fbq_call(*args)


@register.simple_tag(takes_context=True)
def capi_pixel(
    context: template.Context, pixel_id: Any = None, user_data: Any = None, source: Any = None
) -> str:
    """The Meta Pixel base code with PageView (nothing without consent or a dataset)."""
    request = _request(context)
    if not has_consent(request):
        return ""
    pixel_ids = _pixel_ids(pixel_id, source, request)
    if not pixel_ids:
        return ""
    calls = [call for call in [_ldu_call()] if call]
    matching = _advanced_matching(user_data)
    for one in pixel_ids:
        calls.append(fbq_call("init", one, matching) if matching else fbq_call("init", one))
    calls.append(fbq_call("track", "PageView"))
    return render_to_string(
        "django_capi/pixel.html",
        {
            "nonce_attribute": _nonce_attribute(request),
            "script_src": mark_safe(js_value(FBEVENTS_URL)),  # noqa: S308 (escaped for scripts)
            "calls": mark_safe("\n".join(calls)),  # noqa: S308 (escaped for scripts)
            "pixel_ids": pixel_ids,
        },
    )


@register.simple_tag
def capi_event_id(order: Any, event_name: str) -> str:
    """The event id of ``order``'s ``event_name`` event (``order`` may be a string key)."""
    if isinstance(order, str):
        return event_id_from_key(order, str(event_name))
    return order_event_id(order, str(event_name))


def track_call(
    order: Any,
    event_name: str,
    custom_data: Mapping[str, Any] | None = None,
    request: HttpRequest | None = None,
) -> str:
    """The ``fbq(...)`` statement(s) for ``order``'s event (no consent check).

    ``fbq('track', ...)`` on a single-pixel site; otherwise one ``trackSingle`` per dataset
    the server event goes to, each with the same event id. On the page of the request that
    recorded the order's event, its custom data is reused, not built again.
    """
    event_name = str(event_name)
    if isinstance(order, str):
        event_id = event_id_from_key(order, event_name)
        data = strip_custom_data(normalize_custom_data(custom_data)[0])
    else:
        adapter = get_adapter(order)
        event_id = order_event_id(order, event_name, adapter=adapter)
        if custom_data is None:
            data = order_custom_data_for_page(order, event_name, request, adapter=adapter)
        else:
            data = strip_custom_data(normalize_custom_data(custom_data)[0])
    options = {"eventID": event_id}
    standard = event_name in STANDARD_EVENTS
    targets = _routed(event_name, order, request)
    site_pixels = conf.settings_datasets()
    if routing.get_router() is None and len(site_pixels) <= 1 and set(targets) <= set(site_pixels):
        return fbq_call("track" if standard else "trackCustom", event_name, data, options)
    method = "trackSingle" if standard else "trackSingleCustom"
    return "\n".join(fbq_call(method, target, event_name, data, options) for target in targets)


@register.simple_tag(takes_context=True)
def capi_track(
    context: template.Context,
    order: Any,
    event_name: str,
    custom_data: Mapping[str, Any] | None = None,
    script: bool = True,
) -> str:
    """A pixel event with the server event's custom data and event id (nothing without consent)."""
    request = _request(context)
    if not has_consent(request):
        return ""
    call = track_call(order, event_name, custom_data, request)
    if not script:
        return SafeString(call)
    return render_to_string(
        "django_capi/track.html",
        {"nonce_attribute": _nonce_attribute(request), "call": mark_safe(call)},  # noqa: S308
    )
