"""Check one Conversions API event payload against Meta's documented rules.

The payload is the exact dict that will be sent (``user_data`` already hashed). Every
problem is reported as a :class:`ValidationIssue` naming the field and the rule in plain
words, never the value itself, so issues can be stored and shown to staff safely. One
invalid event makes Meta reject its whole batch, which is why events are checked before
they are queued.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Final, TypeGuard
from urllib.parse import urlsplit

import pycountry

__all__ = [
    "ACTION_SOURCES",
    "DEFAULT_MAX_AGE",
    "HASHED_USER_DATA_KEYS",
    "MAX_AGE",
    "STANDARD_EVENTS",
    "EventValidationError",
    "ValidationIssue",
    "ensure_valid",
    "event_age_limit",
    "is_too_old",
    "storable_payload",
    "validate_event",
]

ACTION_SOURCES: Final[frozenset[str]] = frozenset(
    {
        "email",
        "website",
        "app",
        "phone_call",
        "chat",
        "physical_store",
        "system_generated",
        "business_messaging",
        "other",
    }
)
"""The values Meta accepts for ``action_source``."""

STANDARD_EVENTS: Final[frozenset[str]] = frozenset(
    {
        "AddPaymentInfo",
        "AddToCart",
        "AddToWishlist",
        "CompleteRegistration",
        "Contact",
        "CustomizeProduct",
        "Donate",
        "FindLocation",
        "InitiateCheckout",
        "Lead",
        "PageView",
        "Purchase",
        "Schedule",
        "Search",
        "StartTrial",
        "SubmitApplication",
        "Subscribe",
        "ViewContent",
    }
)
"""Meta's standard event names; any other non-empty name is a custom event."""

DEFAULT_MAX_AGE: Final = timedelta(days=7)
"""How old an event may be when sent; one older event makes Meta reject the whole request."""

MAX_AGE: Final[dict[str, timedelta]] = {
    source: timedelta(days=62) if source == "physical_store" else DEFAULT_MAX_AGE
    for source in ACTION_SOURCES
}
"""Age limit per ``action_source``: 7 days, 62 for ``physical_store`` uploads."""

HASHED_USER_DATA_KEYS: Final[frozenset[str]] = frozenset(
    {"em", "ph", "fn", "ln", "ge", "db", "ct", "st", "zp", "country"}
)
"""``user_data`` keys Meta requires as SHA-256 hex (``external_id`` is only recommended)."""

# Since Graph API v13 Meta rejects events whose customer information is only (a subset of)
# one of these sets: they match too many people.
_TOO_BROAD: Final[tuple[frozenset[str], ...]] = (
    frozenset({"ct", "country", "st", "zp", "ge", "client_user_agent"}),
    frozenset({"db", "client_user_agent"}),
    frozenset({"fn", "ge"}),
    frozenset({"ln", "ge"}),
)

CONTENT_TYPES: Final = frozenset({"product", "product_group"})
DELIVERY_CATEGORIES: Final = frozenset({"in_store", "curbside", "home_delivery"})
_LDU_COUNTRIES: Final = frozenset({0, 1})
_LDU_STATES: Final = frozenset({0, 1000})
_EXTINFO_LENGTH: Final = 16
_EXTINFO_PLATFORMS: Final = frozenset({"a2", "i2"})
# ISO 4217 codes that are not money: XTS is reserved for tests, XXX means "no currency".
_NOT_MONEY: Final = frozenset({"XTS", "XXX"})
_SHA256_HEX: Final = re.compile(r"[0-9a-fA-F]{64}")
# An event_time this large is almost certainly in milliseconds (year 5138 in seconds).
_MILLISECONDS_THRESHOLD: Final = 100_000_000_000


_Add = Callable[["ValidationIssue"], None]


@dataclass(frozen=True)
class ValidationIssue:
    """One broken rule: the field (``custom_data.currency``) and the rule in plain words."""

    field: str
    rule: str

    def as_dict(self) -> dict[str, str]:
        """Return ``{"field": ..., "rule": ...}`` (the shape stored on the event)."""
        return {"field": self.field, "rule": self.rule}

    def __str__(self) -> str:
        return f"{self.field}: {self.rule}"


class EventValidationError(ValueError):
    """An event breaks Meta's rules; ``issues`` lists every problem found."""

    def __init__(self, issues: Iterable[ValidationIssue]) -> None:
        self.issues: list[ValidationIssue] = list(issues)
        super().__init__("; ".join(str(issue) for issue in self.issues))


def event_age_limit(action_source: str) -> timedelta:
    """How old an event with this ``action_source`` may be when Meta receives it."""
    return MAX_AGE.get(action_source, DEFAULT_MAX_AGE)


def is_too_old(
    payload: Mapping[str, Any],
    *,
    now: datetime | None = None,
    margin: timedelta = timedelta(0),
) -> bool:
    """True when Meta would refuse the event (and its whole batch) for its age.

    ``margin`` treats events as expired that much earlier, to allow for sending time.
    Payloads without a usable ``event_time`` are not "too old" (validation reports them).
    """
    if not isinstance(payload, Mapping):
        return False
    event_time = payload.get("event_time")
    if not _is_int(event_time):
        return False
    oldest_allowed = _timestamp(now) - (_age_limit_of(payload) - margin).total_seconds()
    return event_time < oldest_allowed


def ensure_valid(
    payload: Mapping[str, Any], *, now: datetime | None = None, max_clock_skew: int = 300
) -> None:
    """Raise :class:`EventValidationError` listing every issue, if there is any."""
    issues = validate_event(payload, now=now, max_clock_skew=max_clock_skew)
    if issues:
        raise EventValidationError(issues)


def validate_event(
    payload: Mapping[str, Any], *, now: datetime | None = None, max_clock_skew: int = 300
) -> list[ValidationIssue]:
    """Return every rule the event breaks (an empty list means it may be sent).

    ``now`` defaults to the current time (a naive datetime is read as UTC);
    ``max_clock_skew`` is how many seconds in the future ``event_time`` may be.
    """
    if not isinstance(payload, Mapping):
        return [ValidationIssue("event", "must be an object (a dict of event parameters)")]
    issues: list[ValidationIssue] = []
    add = issues.append
    action_source = payload.get("action_source")

    _check_event_name(payload, add)
    _check_event_time(payload, add, now=now, max_clock_skew=max_clock_skew)
    event_id = payload.get("event_id")
    if event_id is not None and not _is_text(event_id):
        add(ValidationIssue("event_id", "must be non-empty text when given"))
    _check_action_source(action_source, add)
    _check_urls(payload, action_source, add)
    _check_user_data(payload.get("user_data"), action_source, add)
    _check_custom_data(payload.get("custom_data"), payload.get("event_name"), add)
    if action_source == "app":
        _check_app_data(payload.get("app_data"), add)
    opt_out = payload.get("opt_out")
    if opt_out is not None and not isinstance(opt_out, bool):
        add(ValidationIssue("opt_out", "must be true or false"))
    for key in ("app_data", "original_event_data", "attribution_data"):
        value = payload.get(key)
        if value is not None and not isinstance(value, Mapping):
            add(ValidationIssue(key, "must be an object (a dict of fields)"))
    _check_limited_data_use(payload, add)
    return issues


def storable_payload(payload: Mapping[str, Any]) -> tuple[dict[str, Any], list[ValidationIssue]]:
    """``payload`` without the fields that cannot be stored and sent as JSON, and why.

    A field is dropped (with an issue naming it) when it holds, at any depth, something JSON
    or the database cannot take: a non-JSON type (bytes, ``Decimal``, dates, objects), NaN
    or infinity, an integer too large to print, text with NUL characters (PostgreSQL refuses
    them) or lone surrogates (not UTF-8), a non-text key, or nesting deeper than 64 levels
    (cycles included). An event with such an issue is invalid; the rest of it is kept.
    """
    kept: dict[str, Any] = {}
    issues: list[ValidationIssue] = []
    for key, value in payload.items():
        problem = _unstorable(value, depth=0)
        if problem is None:
            kept[key] = value
        else:
            issues.append(ValidationIssue(str(key), f"cannot be stored or sent as JSON: {problem}"))
    return kept, issues


_MAX_JSON_DEPTH: Final = 64
_MAX_INT_BITS: Final = 1000


def _unstorable(value: Any, *, depth: int) -> str | None:
    """Why ``value`` cannot be stored as JSON, or None when it can."""
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, str):
        if "\x00" in value:
            return "text with a NUL character"
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return "text that is not valid Unicode (a lone surrogate)"
        return None
    if isinstance(value, int):
        return None if value.bit_length() <= _MAX_INT_BITS else "a number too large to send"
    if isinstance(value, float):
        return None if math.isfinite(value) else "NaN or infinity, which JSON has no number for"
    if depth >= _MAX_JSON_DEPTH:
        return "nested too deeply"
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                return "a key that is not text"
            problem = _unstorable(key, depth=depth + 1) or _unstorable(item, depth=depth + 1)
            if problem:
                return problem
        return None
    if isinstance(value, list | tuple):
        for item in value:
            problem = _unstorable(item, depth=depth + 1)
            if problem:
                return problem
        return None
    return f"a {type(value).__name__} value"


# -- helpers ---------------------------------------------------------------------------


def _is_int(value: Any) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    """A finite JSON number (bools and Decimals are not: they are not sent as numbers)."""
    if isinstance(value, bool):
        return False
    if isinstance(value, int):
        return True
    return isinstance(value, float) and math.isfinite(value)


def _is_text(value: Any) -> bool:
    return isinstance(value, str) and bool(value.strip())


def _one_of(value: Any, choices: frozenset[str]) -> bool:
    # Checking type first: a list or dict here must not raise "unhashable type".
    return isinstance(value, str) and value in choices


def _age_limit_of(payload: Mapping[str, Any]) -> timedelta:
    source = payload.get("action_source")
    return event_age_limit(source) if isinstance(source, str) else DEFAULT_MAX_AGE


def _is_id(value: Any) -> bool:
    return _is_text(value) or _is_int(value)


def _is_list(value: Any) -> TypeGuard[list[Any] | tuple[Any, ...]]:
    # Tuples are written as JSON arrays too.
    return isinstance(value, list | tuple)


def _timestamp(now: datetime | None) -> float:
    if now is None:
        return datetime.now(UTC).timestamp()
    if now.tzinfo is None:
        now = now.replace(tzinfo=UTC)
    return now.timestamp()


def _is_http_url(value: Any) -> bool:
    if not isinstance(value, str):
        return False
    try:
        parts = urlsplit(value)
        host = parts.hostname
    except ValueError:  # e.g. an unbalanced "[" in an IPv6 host
        return False
    return parts.scheme.lower() in {"http", "https"} and bool(host)


def _is_currency(value: Any) -> bool:
    if not isinstance(value, str) or len(value) != 3 or not value.isascii():
        return False
    code = value.upper()
    return code not in _NOT_MONEY and pycountry.currencies.get(alpha_3=code) is not None


def _is_empty(value: Any) -> bool:
    if value is None:
        return True
    if isinstance(value, str):
        return not value.strip()
    if isinstance(value, list | tuple):
        # One level only: nested (or self-containing) lists must not recurse.
        return all(item is None or (isinstance(item, str) and not item.strip()) for item in value)
    if isinstance(value, Mapping):
        return not value
    return False


# -- the rules ---------------------------------------------------------------------------


def _check_event_name(payload: Mapping[str, Any], add: _Add) -> None:
    name = payload.get("event_name")
    if name is None:
        add(ValidationIssue("event_name", "is required (e.g. Purchase or a custom name)"))
    elif not _is_text(name):
        add(ValidationIssue("event_name", "must be non-empty text"))


def _check_event_time(
    payload: Mapping[str, Any], add: _Add, *, now: datetime | None, max_clock_skew: int
) -> None:
    event_time = payload.get("event_time")
    if event_time is None:
        add(ValidationIssue("event_time", "is required (Unix time in seconds, UTC)"))
        return
    if not _is_int(event_time):
        add(ValidationIssue("event_time", "must be a whole number of seconds (Unix time, UTC)"))
        return
    # Compare, never subtract: event_time may be any int, and int - float can overflow.
    current = _timestamp(now)
    limit = _age_limit_of(payload)
    if event_time < current - limit.total_seconds():
        add(
            ValidationIssue(
                "event_time",
                f"is more than {limit.days} days in the past, so Meta would reject the whole batch",
            )
        )
    elif event_time > current + max_clock_skew:
        if event_time >= _MILLISECONDS_THRESHOLD:
            rule = "is far in the future: it looks like milliseconds, but must be seconds"
        else:
            rule = f"is more than {max_clock_skew} seconds in the future"
        add(ValidationIssue("event_time", rule))


def _check_action_source(action_source: Any, add: _Add) -> None:
    allowed = ", ".join(sorted(ACTION_SOURCES))
    if action_source is None:
        add(ValidationIssue("action_source", f"is required: one of {allowed}"))
    elif not _one_of(action_source, ACTION_SOURCES):
        add(ValidationIssue("action_source", f"must be one of {allowed}"))


def _check_urls(payload: Mapping[str, Any], action_source: Any, add: _Add) -> None:
    url = payload.get("event_source_url")
    if url is None:
        if action_source == "website":
            add(
                ValidationIssue(
                    "event_source_url",
                    "website events need the page address (an http:// or https:// URL)",
                )
            )
    elif not _is_http_url(url):
        add(ValidationIssue("event_source_url", "must be a full http:// or https:// URL"))
    referrer = payload.get("referrer_url")
    if referrer is not None and not _is_http_url(referrer):
        add(ValidationIssue("referrer_url", "must be a full http:// or https:// URL"))


def _check_user_data(user_data: Any, action_source: Any, add: _Add) -> None:
    if user_data is not None and not isinstance(user_data, Mapping):
        add(ValidationIssue("user_data", "must be an object (a dict of customer information)"))
        return
    user_data = user_data or {}
    if action_source == "website" and not _is_text(user_data.get("client_user_agent")):
        add(
            ValidationIssue(
                "user_data.client_user_agent", "website events need the browser's user agent"
            )
        )
    given = frozenset(
        key for key, value in user_data.items() if isinstance(key, str) and not _is_empty(value)
    )
    if not given:
        add(
            ValidationIssue(
                "user_data",
                "needs at least one piece of customer information "
                "(e.g. em, ph, external_id, client_ip_address with client_user_agent, fbp)",
            )
        )
        return
    if any(given <= broad for broad in _TOO_BROAD):
        add(
            ValidationIssue(
                "user_data",
                f"customer information is too broad to match ({', '.join(sorted(given))} "
                "only): add em, ph, external_id, fbp, fbc or client_ip_address",
            )
        )
    for key in sorted(given & HASHED_USER_DATA_KEYS):
        value = user_data[key]
        values = value if _is_list(value) else [value]
        if not all(isinstance(v, str) and _SHA256_HEX.fullmatch(v) for v in values):
            add(
                ValidationIssue(
                    f"user_data.{key}",
                    "must be SHA-256 hashed (64 hexadecimal characters) before sending",
                )
            )


def _check_custom_data(custom_data: Any, event_name: Any, add: _Add) -> None:
    if custom_data is not None and not isinstance(custom_data, Mapping):
        add(ValidationIssue("custom_data", "must be an object (a dict of fields)"))
        return
    data: Mapping[Any, Any] = custom_data or {}
    value = data.get("value")
    currency = data.get("currency")
    if event_name == "Purchase":
        if value is None:
            add(ValidationIssue("custom_data.value", "Purchase events need a value (a number)"))
        if currency is None:
            add(
                ValidationIssue(
                    "custom_data.currency",
                    "Purchase events need an ISO 4217 currency code (e.g. USD, EUR)",
                )
            )
    for key in ("value", "predicted_ltv", "net_revenue"):
        amount = data.get(key)
        if amount is not None and not _is_number(amount):
            add(ValidationIssue(f"custom_data.{key}", "must be a finite number"))
    if currency is not None and not _is_currency(currency):
        add(
            ValidationIssue(
                "custom_data.currency", "must be a three-letter ISO 4217 code (e.g. USD, EUR)"
            )
        )
    content_type = data.get("content_type")
    if content_type is not None and not _one_of(content_type, CONTENT_TYPES):
        add(ValidationIssue("custom_data.content_type", "must be product or product_group"))
    _check_delivery_category(data.get("delivery_category"), "custom_data.delivery_category", add)
    content_ids = data.get("content_ids")
    if content_ids is not None and not (
        _is_list(content_ids) and all(_is_id(item) for item in content_ids)
    ):
        add(ValidationIssue("custom_data.content_ids", "must be a list of product ids"))
    num_items = data.get("num_items")
    if num_items is not None and not _is_int(num_items):
        add(ValidationIssue("custom_data.num_items", "must be a whole number"))
    contents = data.get("contents")
    if contents is not None:
        _check_contents(contents, add)


def _check_delivery_category(value: Any, field: str, add: _Add) -> None:
    if value is not None and not _one_of(value, DELIVERY_CATEGORIES):
        add(ValidationIssue(field, "must be in_store, curbside or home_delivery"))


def _check_contents(contents: Any, add: _Add) -> None:
    if not _is_list(contents):
        add(ValidationIssue("custom_data.contents", "must be a list of items"))
        return
    for index, item in enumerate(contents):
        field = f"custom_data.contents[{index}]"
        if not isinstance(item, Mapping):
            add(ValidationIssue(field, "must be an object with an id"))
            continue
        item_id = item.get("id")
        if not _is_id(item_id):
            add(ValidationIssue(f"{field}.id", "each item needs an id (the product id)"))
        quantity = item.get("quantity")
        if quantity is not None and not (_is_int(quantity) and quantity > 0):
            add(ValidationIssue(f"{field}.quantity", "must be a whole number above zero"))
        price = item.get("item_price")
        if price is not None and not _is_number(price):
            add(ValidationIssue(f"{field}.item_price", "must be a finite number"))
        _check_delivery_category(item.get("delivery_category"), f"{field}.delivery_category", add)


def _check_app_data(app_data: Any, add: _Add) -> None:
    if not isinstance(app_data, Mapping):
        add(
            ValidationIssue(
                "app_data",
                "app events need app_data with advertiser_tracking_enabled and extinfo",
            )
        )
        return
    if not isinstance(app_data.get("advertiser_tracking_enabled"), bool):
        add(
            ValidationIssue(
                "app_data.advertiser_tracking_enabled", "app events need it, as true or false"
            )
        )
    extinfo = app_data.get("extinfo")
    if not (
        _is_list(extinfo)
        and len(extinfo) == _EXTINFO_LENGTH
        and all(isinstance(part, str) for part in extinfo)
    ):
        add(
            ValidationIssue(
                "app_data.extinfo", "app events need extinfo: a list of 16 texts, in order"
            )
        )
    elif not _one_of(extinfo[0], _EXTINFO_PLATFORMS):
        add(
            ValidationIssue(
                "app_data.extinfo", 'the first entry must be "a2" (Android) or "i2" (iOS)'
            )
        )


def _check_limited_data_use(payload: Mapping[str, Any], add: _Add) -> None:
    options = payload.get("data_processing_options")
    country = payload.get("data_processing_options_country")
    state = payload.get("data_processing_options_state")
    ldu = False
    if options is not None:
        if _is_list(options) and all(option == "LDU" for option in options):
            ldu = bool(options)
        else:
            add(
                ValidationIssue(
                    "data_processing_options",
                    'must be a list holding only "LDU" (or an empty list for none)',
                )
            )
            ldu = _is_list(options) and "LDU" in options
    if country is not None and not (_is_int(country) and country in _LDU_COUNTRIES):
        add(
            ValidationIssue(
                "data_processing_options_country", "must be 1 (United States) or 0 (geolocate)"
            )
        )
    if state is not None and not (_is_int(state) and state in _LDU_STATES):
        add(
            ValidationIssue(
                "data_processing_options_state", "must be 1000 (California) or 0 (geolocate)"
            )
        )
    if country is not None and state is None:
        add(ValidationIssue("data_processing_options_state", "LDU country needs a state"))
    if state is not None and country is None:
        add(ValidationIssue("data_processing_options_country", "LDU state needs a country"))
    if (country is not None or state is not None) and not ldu:
        add(
            ValidationIssue(
                "data_processing_options",
                'a country or state is given, so the options must include "LDU"',
            )
        )
