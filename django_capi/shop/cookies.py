"""Meta's browser identifiers: the ``_fbp`` and ``_fbc`` first-party cookies.

Formats (Meta's documentation)::

    _fbp  fb.<subdomain index>.<creation time, ms>.<random number>
    _fbc  fb.<subdomain index>.<creation time, ms>.<fbclid>

Newer Meta code appends a fifth dot-separated "appendix"; such values are accepted as they
are. Values built here use subdomain index ``1``, the value Meta documents for identifiers
generated on a server, and keep the ``fbclid`` exactly as it arrived (case included).

Meta's ``capi-param-builder-python`` does the same job but was not adopted (see the README):
it brackets IPv4 hosts (``Domain=[127.0.0.1]``, which browsers refuse), takes ``co.uk`` as the
registrable domain of ``example.co.uk``, rewrites the visitor's existing cookies to append its
version marker, and ships untyped.
"""

from __future__ import annotations

import ipaddress
import re
import secrets
import time
from typing import Final

__all__ = [
    "FBC_COOKIE",
    "FBP_COOKIE",
    "fbc_from_fbclid",
    "fbclid_of",
    "is_valid_fbclid",
    "new_fbp",
    "parse_browser_id",
    "registrable_domain",
]

FBP_COOKIE: Final = "_fbp"
FBC_COOKIE: Final = "_fbc"

# fb.<index>.<ms>.<payload>[.<appendix>]; the same shape normalization accepts.
_BROWSER_ID: Final = re.compile(
    r"fb\.[0-9]{1,2}\.[0-9]{9,14}\.[A-Za-z0-9_\-]{1,500}(?:\.[A-Za-z0-9_\-]{1,32})?"
)
# fbclid values are base64url text; anything else could not be a cookie value unquoted, and a
# dot would make the fbc value ambiguous.
_FBCLID: Final = re.compile(r"[A-Za-z0-9_\-]{1,500}")

# Second-level labels under which country-code domains register names (example.co.uk,
# example.com.au, example.co.jp). A heuristic, not the Public Suffix List: set
# CAPI["COOKIE_DOMAIN"] when it guesses wrong for your host.
_SECOND_LEVEL: Final = frozenset(
    {"ac", "co", "com", "edu", "gob", "gov", "go", "ltd", "me", "mil", "ne", "net", "nic",
     "nom", "or", "org", "plc", "sch"}
)  # fmt: skip
# Hosting platforms whose customers get sub-domains (on the Public Suffix List): a cookie
# for the platform's domain would be refused, so the full host is used there.
_SHARED_HOSTING: Final = frozenset(
    {"appspot.com", "azurewebsites.net", "cloudfront.net", "fly.dev", "github.io",
     "gitlab.io", "herokuapp.com", "netlify.app", "onrender.com", "pages.dev",
     "pythonanywhere.com", "railway.app", "vercel.app", "web.app", "workers.dev"}
)  # fmt: skip


def _now_ms() -> int:
    return int(time.time() * 1000)


def parse_browser_id(value: str | None) -> str | None:
    """Return ``value`` when it is a well-formed ``_fbp``/``_fbc`` value, else None."""
    if not value:
        return None
    value = value.strip()
    return value if _BROWSER_ID.fullmatch(value) else None


def is_valid_fbclid(value: str | None) -> bool:
    """True for a click id that can be put in an ``fbc`` value and a cookie unchanged."""
    return bool(value) and _FBCLID.fullmatch(value or "") is not None


def fbclid_of(fbc: str | None) -> str | None:
    """The click id inside an ``fbc`` value (its fourth part)."""
    parts = (fbc or "").split(".")
    return parts[3] if len(parts) >= 4 else None


def fbc_from_fbclid(fbclid: str, created_ms: int | None = None) -> str:
    """``fb.1.<ms>.<fbclid>``, the fbclid's case kept. Raises ValueError for a bad fbclid."""
    if not is_valid_fbclid(fbclid):
        raise ValueError("an fbclid is base64url text (letters, digits, '-' and '_')")
    return f"fb.1.{created_ms if created_ms is not None else _now_ms()}.{fbclid}"


def new_fbp(created_ms: int | None = None) -> str:
    """A new browser id, ``fb.1.<ms>.<random 31-bit number>`` as the pixel would make it."""
    number = secrets.randbelow(2**31 - 1) + 1
    return f"fb.1.{created_ms if created_ms is not None else _now_ms()}.{number}"


def _host_name(host: str) -> str:
    """``host[:port]`` -> the lowercase host name without port or IPv6 brackets."""
    host = host.strip().lower()
    if host.startswith("["):
        return host[1:].split("]", 1)[0]
    if host.count(":") == 1:
        host = host.split(":", 1)[0]
    return host.rstrip(".")


def registrable_domain(host: str) -> str | None:
    """The domain a first-party cookie should be set on for ``host`` (``host[:port]``).

    ``shop.example.com`` -> ``example.com``; ``www.example.co.uk`` -> ``example.co.uk``.
    None (a host-only cookie) for IP addresses and single-label hosts such as ``localhost``.
    """
    name = _host_name(host)
    if not name or "." not in name:
        return None
    try:
        ipaddress.ip_address(name)
    except ValueError:
        pass
    else:
        return None
    labels = name.split(".")
    if len(labels) >= 3 and ".".join(labels[-2:]) in _SHARED_HOSTING:
        return ".".join(labels[-3:])
    if len(labels) >= 3 and len(labels[-1]) == 2 and labels[-2] in _SECOND_LEVEL:
        return ".".join(labels[-3:])
    return ".".join(labels[-2:])
