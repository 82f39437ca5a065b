"""What an event learns from the HTTP request it was recorded in.

Only values Meta sends unhashed are taken from the request: the client's IP address and user
agent, the ``_fbp``/``_fbc`` cookies, the page URL and the referrer. The IP address is
``REMOTE_ADDR``; forwarded headers are never trusted here.
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import DisallowedHost
from django.http import HttpRequest

FBP_COOKIE = "_fbp"
FBC_COOKIE = "_fbc"


def user_data_from_request(request: HttpRequest) -> dict[str, Any]:
    """Non-hashed customer information available from the request."""
    data: dict[str, Any] = {}
    ip = request.META.get("REMOTE_ADDR")
    if ip:
        data["client_ip_address"] = ip
    user_agent = request.META.get("HTTP_USER_AGENT")
    if user_agent:
        data["client_user_agent"] = user_agent
    for key, cookie in (("fbp", FBP_COOKIE), ("fbc", FBC_COOKIE)):
        value = request.COOKIES.get(cookie)
        if value:
            data[key] = value
    return data


def page_url(request: HttpRequest) -> str | None:
    """The absolute URL of the page, or None when the Host header is not allowed."""
    try:
        return request.build_absolute_uri()
    except DisallowedHost:
        return None


def referrer_url(request: HttpRequest) -> str | None:
    return request.META.get("HTTP_REFERER") or None
