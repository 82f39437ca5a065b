"""The demo's consent: a cookie the banner sets (``CAPI["CONSENT"]`` points here)."""

from django.http import HttpRequest

CONSENT_COOKIE = "demo_consent"


def visitor_consents(request: HttpRequest) -> bool:
    """Opt-in: tracking only after the visitor clicked "Accept"."""
    return request.COOKIES.get(CONSENT_COOKIE) == "yes"


def consent_decided(request: HttpRequest) -> bool:
    return request.COOKIES.get(CONSENT_COOKIE) in ("yes", "no")
