"""``django_capi.middleware.CapiMiddleware``: request capture and first-party browser ids.

Add it after ``AuthenticationMiddleware`` (so a ``CONSENT`` callable may look at
``request.user`` and the session)::

    MIDDLEWARE = [
        ...,
        "django.contrib.auth.middleware.AuthenticationMiddleware",
        "django_capi.middleware.CapiMiddleware",
        ...,
    ]

For every request it attaches ``request.capi`` (a
:class:`~django_capi.request_capture.RequestCapture`), which events recorded during the
request read (``track(..., request=request)``). When the visitor consents and
``CAPI["SET_BROWSER_COOKIES"]`` is on, a missing ``_fbp`` (or a new ``fbclid`` on the URL) is
created on the server, used by the request's events, and set on the response as a first-party
cookie: ``CAPI["COOKIE_MAX_AGE"]`` (90 days), ``Path=/``, ``SameSite=Lax``, ``Secure`` on
https, on ``CAPI["COOKIE_DOMAIN"]`` or the host's registrable domain. The cookies are not
``HttpOnly``: Meta's pixel reads them. Without consent no cookie is set.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from django.core.exceptions import DisallowedHost
from django.http import HttpRequest, HttpResponseBase

from django_capi import conf
from django_capi.request_capture import REQUEST_ATTRIBUTE, RequestCapture
from django_capi.shop.cookies import registrable_domain

__all__ = ["CapiMiddleware"]

logger = logging.getLogger("django_capi")


class CapiMiddleware:
    """Captures browser ids for the request's events and sets missing ``_fbp``/``_fbc``."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponseBase]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponseBase:
        capture = RequestCapture(request, set_cookies=bool(conf.get_setting("SET_BROWSER_COOKIES")))
        setattr(request, REQUEST_ATTRIBUTE, capture)
        response = self.get_response(request)
        self.set_cookies(request, response, capture)
        return response

    def set_cookies(
        self, request: HttpRequest, response: HttpResponseBase, capture: RequestCapture
    ) -> None:
        """Set the ids created during this request (nothing without consent)."""
        if not capture.set_cookies:
            return
        cookies = capture.cookies_to_set()
        if not cookies:
            return
        domain = conf.get_setting("COOKIE_DOMAIN")
        if domain is None:
            try:
                domain = registrable_domain(request.get_host())
            except DisallowedHost:
                return  # not a host this site serves: no cookie for it
        for name, value in cookies.items():
            if name in response.cookies:
                continue  # the view set its own
            response.set_cookie(
                name,
                value,
                max_age=int(conf.get_setting("COOKIE_MAX_AGE")),
                path="/",
                domain=domain or None,
                secure=request.is_secure(),
                httponly=False,
                samesite="Lax",
            )
