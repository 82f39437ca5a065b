"""Make an event's ``custom_data`` JSON-ready, exactly as it will be sent to Meta.

Known fields get their documented types (numbers, strings, lists of strings, content
items); custom keys are kept when they can be written as JSON. Anything that cannot be
sent is dropped with a :class:`CustomDataWarning` naming the field, never the value.
``None`` values are dropped silently. Checking the result against Meta's rules (for
example that ``currency`` is a real ISO 4217 code) is :mod:`django_capi.validation`'s job.
"""

from __future__ import annotations

import datetime as dt
import math
import re
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any, Final, TypeAlias

__all__ = ["CustomDataWarning", "normalize_custom_data"]

JSONValue: TypeAlias = Any


@dataclass(frozen=True)
class CustomDataWarning:
    """Something in ``custom_data`` was changed or dropped; names the field, never the value."""

    field: str
    rule: str

    def as_dict(self) -> dict[str, str]:
        """Return ``{"field": ..., "rule": ...}``, e.g. for logs or an admin page."""
        return {"field": self.field, "rule": self.rule}

    def __str__(self) -> str:
        return f"{self.field}: {self.rule}"


class _Drop:
    """Marker for a value that is left out of the result."""


_DROP: Final = _Drop()

# Deeper structures are almost certainly a mistake (or a cycle); stop before RecursionError.
_MAX_DEPTH: Final = 20
# Python refuses to print ints with more than 4300 digits and doubles end near 2**1024: keep
# custom integers well below both.
_MAX_INT_BITS: Final = 1000
# Integers above this lose precision as JSON doubles; money amounts beyond it are sent as floats.
_MAX_SAFE_INT: Final = 2**53

_NUMERIC_STRING: Final = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?")

_NUMBER_FIELDS: Final = frozenset({"value", "predicted_ltv", "net_revenue"})
_STRING_FIELDS: Final = frozenset(
    {"order_id", "content_name", "content_category", "search_string", "status"}
)
# Fields with a fixed set of lower-case values: also lower-cased here.
_CHOICE_FIELDS: Final = frozenset({"content_type", "delivery_category"})


class _Context:
    """Collects warnings while one ``custom_data`` mapping is normalized."""

    def __init__(self) -> None:
        self.warnings: list[CustomDataWarning] = []

    def warn(self, field: str, rule: str) -> _Drop:
        self.warnings.append(CustomDataWarning(field=field, rule=rule))
        return _DROP


def normalize_custom_data(
    custom_data: Mapping[str, Any] | None,
) -> tuple[dict[str, Any], list[CustomDataWarning]]:
    """Return ``(json_ready_custom_data, warnings)``; never raises.

    Amounts become JSON numbers (``Decimal("12.50")`` -> ``12.5``), ``currency`` is trimmed
    and upper-cased, ``content_ids`` becomes a list of strings, ``contents`` a list of items
    with a string ``id``, an int ``quantity`` and a number ``item_price``.
    """
    ctx = _Context()
    if custom_data is None:
        return {}, []
    if not isinstance(custom_data, Mapping):
        ctx.warn("custom_data", "must be an object (a dict of fields); it was dropped")
        return {}, ctx.warnings
    try:
        items = list(custom_data.items())
    except Exception:
        ctx.warn("custom_data", "could not be read; it was dropped")
        return {}, ctx.warnings

    result: dict[str, Any] = {}
    for key, raw in items:
        if not isinstance(key, str) or not _is_valid_text(key):
            ctx.warn("custom_data", "a field name that is not text was dropped")
            continue
        if raw is None:
            continue
        field = f"custom_data.{key}"
        try:
            value = _normalize_field(key, raw, field, ctx)
        except Exception:
            # Exotic objects (broken __str__, __iter__, ...) must not stop the event.
            value = ctx.warn(field, "could not be converted to JSON; it was dropped")
        if not isinstance(value, _Drop):
            result[key] = value
    return result, ctx.warnings


def _normalize_field(key: str, raw: Any, field: str, ctx: _Context) -> JSONValue:
    if key in _NUMBER_FIELDS:
        return _number(raw, field, ctx)
    if key == "currency":
        if not isinstance(raw, str):
            return ctx.warn(field, "must be a three-letter ISO 4217 currency code such as USD")
        text = _text(raw, field, ctx)
        return text.upper() if isinstance(text, str) else text
    if key == "content_ids":
        return _content_ids(raw, field, ctx)
    if key == "contents":
        return _contents(raw, field, ctx)
    if key == "num_items":
        return _whole_number(raw, field, ctx)
    if key in _STRING_FIELDS:
        return _string(raw, field, ctx)
    if key in _CHOICE_FIELDS:
        text = _string(raw, field, ctx)
        return text.lower() if isinstance(text, str) else text
    return _json(raw, field, ctx, depth=0)


# -- scalar conversions -------------------------------------------------------------


def _is_valid_text(text: str) -> bool:
    """False for strings with lone surrogates, which cannot be encoded as UTF-8, or with NUL
    characters, which PostgreSQL cannot store (text and jsonb refuse U+0000)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return "\x00" not in text


def _text(raw: str, field: str, ctx: _Context) -> str | _Drop:
    """A trimmed string; empty strings are dropped silently, like ``None``."""
    if not _is_valid_text(raw):
        return ctx.warn(field, "contains characters that are not valid text; it was dropped")
    text = raw.strip()
    return text if text else _DROP


def _decimal_to_number(number: Decimal) -> int | float | None:
    """``Decimal`` -> int when whole and exact as a double, else float; None if not finite."""
    if not number.is_finite():
        return None
    as_float = float(number)
    if not math.isfinite(as_float):
        return None
    if number == number.to_integral_value() and abs(as_float) <= _MAX_SAFE_INT:
        return int(number)
    return as_float


def _number(raw: Any, field: str, ctx: _Context) -> int | float | _Drop:
    """An amount: int, float, ``Decimal`` or a numeric string -> a finite JSON number."""
    rule = "must be a number (for example 12.5); it was dropped"
    if isinstance(raw, bool):
        return ctx.warn(field, rule)
    if isinstance(raw, int):
        if abs(raw) <= _MAX_SAFE_INT:
            return int(raw)
        return _number(Decimal(raw), field, ctx) if _int_fits(raw) else ctx.warn(field, rule)
    if isinstance(raw, float):
        if not math.isfinite(raw):
            return ctx.warn(field, "must be a finite number, not NaN or infinity; it was dropped")
        return float(raw)
    if isinstance(raw, Decimal):
        number = _decimal_to_number(raw)
        if number is None:
            return ctx.warn(field, "must be a finite number, not NaN or infinity; it was dropped")
        return number
    if isinstance(raw, str):
        text = raw.strip()
        if not _NUMERIC_STRING.fullmatch(text):
            return ctx.warn(field, rule)
        try:
            parsed = Decimal(text)
        except InvalidOperation:
            return ctx.warn(field, rule)
        number = _decimal_to_number(parsed)
        return ctx.warn(field, rule) if number is None else number
    return ctx.warn(field, rule)


def _int_fits(raw: int) -> bool:
    return raw.bit_length() <= _MAX_INT_BITS


def _whole_number(raw: Any, field: str, ctx: _Context) -> int | _Drop:
    """A count (``num_items``, ``quantity``): whole numbers only, also from "3" or 3.0."""
    number = _number(raw, field, _Context())
    if isinstance(number, float) and number.is_integer() and abs(number) <= _MAX_SAFE_INT:
        return int(number)
    if isinstance(number, int):
        return number
    return ctx.warn(field, "must be a whole number; it was dropped")


def _string(raw: Any, field: str, ctx: _Context) -> str | _Drop:
    """Text fields; numbers, ``Decimal`` and UUIDs are written out as text."""
    if isinstance(raw, str):
        return _text(raw, field, ctx)
    if isinstance(raw, bool):
        return ctx.warn(field, "must be text, not true/false; it was dropped")
    if isinstance(raw, int) and _int_fits(raw):
        return str(int(raw))
    if isinstance(raw, uuid.UUID):
        return str(raw)
    if isinstance(raw, float | Decimal):
        number = _number(raw, field, _Context())
        if not isinstance(number, _Drop):
            return str(number)
    return ctx.warn(field, "must be text; it was dropped")


def _identifier(raw: Any, field: str, ctx: _Context) -> str | _Drop:
    """A product id: text, whole numbers or UUIDs; ``12.0`` becomes ``"12"``."""
    if isinstance(raw, str):
        return _text(raw, field, ctx)
    if isinstance(raw, int | uuid.UUID) and not isinstance(raw, bool):
        return _string(raw, field, ctx)
    if isinstance(raw, float | Decimal):
        number = _number(raw, field, _Context())
        if isinstance(number, float) and number.is_integer():
            number = int(number)
        if isinstance(number, int):
            return str(number)
    return ctx.warn(field, "must be a product id (text or a whole number); it was dropped")


# -- lists and content items ----------------------------------------------------------


def _as_items(raw: Any) -> list[Any] | None:
    """Lists and tuples as they are, sets in sorted order, anything else -> None."""
    if isinstance(raw, list | tuple):
        return list(raw)
    if isinstance(raw, set | frozenset):
        try:
            return sorted(raw)
        except TypeError:
            return sorted(raw, key=lambda item: (type(item).__name__, repr(item)))
    return None


def _content_ids(raw: Any, field: str, ctx: _Context) -> list[str] | _Drop:
    items = _as_items(raw)
    if items is None:
        if isinstance(raw, Mapping | bytes | bytearray):
            return ctx.warn(field, "must be a list of product ids; it was dropped")
        one = _identifier(raw, field, ctx)  # a single id
        return [one] if isinstance(one, str) else _DROP
    ids: list[str] = []
    for index, item in enumerate(items):
        if item is None:
            continue
        one = _identifier(item, f"{field}[{index}]", ctx)
        if isinstance(one, str):
            ids.append(one)
    return ids


def _contents(raw: Any, field: str, ctx: _Context) -> list[dict[str, Any]] | _Drop:
    if isinstance(raw, Mapping):
        raw = [raw]  # a single content item
    items = _as_items(raw)
    if items is None:
        return ctx.warn(field, "must be a list of items (each with an id); it was dropped")
    contents: list[dict[str, Any]] = []
    for index, item in enumerate(items):
        if item is None:
            continue
        item_field = f"{field}[{index}]"
        if not isinstance(item, Mapping):
            ctx.warn(item_field, "must be an object with an id; it was dropped")
            continue
        normalized = _content_item(item, item_field, ctx)
        if not isinstance(normalized, _Drop):
            contents.append(normalized)
    return contents


_ITEM_FIELDS: Final[dict[str, Callable[[Any, str, _Context], JSONValue]]] = {
    "id": _identifier,
    "quantity": _whole_number,
    "item_price": _number,
    "delivery_category": lambda raw, field, ctx: _lower(_string(raw, field, ctx)),
}


def _lower(text: str | _Drop) -> str | _Drop:
    return text.lower() if isinstance(text, str) else text


def _content_item(item: Mapping[Any, Any], field: str, ctx: _Context) -> dict[str, Any] | _Drop:
    return _mapping(item, field, ctx, depth=1, special=_ITEM_FIELDS)


# -- arbitrary custom values ----------------------------------------------------------


def _mapping(
    raw: Mapping[Any, Any],
    field: str,
    ctx: _Context,
    *,
    depth: int,
    special: Mapping[str, Callable[[Any, str, _Context], JSONValue]] | None = None,
) -> dict[str, Any] | _Drop:
    if depth > _MAX_DEPTH:
        return ctx.warn(field, "is nested too deeply to send; it was dropped")
    result: dict[str, Any] = {}
    for key, value in list(raw.items()):
        if not isinstance(key, str) or not _is_valid_text(key):
            ctx.warn(field, "a field name that is not text was dropped")
            continue
        if value is None:
            continue
        sub_field = f"{field}.{key}"
        convert = special.get(key) if special else None
        converted = (
            convert(value, sub_field, ctx)
            if convert
            else _json(value, sub_field, ctx, depth=depth + 1)
        )
        if not isinstance(converted, _Drop):
            result[key] = converted
    return result


def _sequence(raw: Iterable[Any], field: str, ctx: _Context, *, depth: int) -> list[Any] | _Drop:
    if depth > _MAX_DEPTH:
        return ctx.warn(field, "is nested too deeply to send; it was dropped")
    result: list[Any] = []
    for index, item in enumerate(raw):
        if item is None:
            # Positions may matter inside a list, so None stays as JSON null.
            result.append(None)
            continue
        converted = _json(item, f"{field}[{index}]", ctx, depth=depth + 1)
        if not isinstance(converted, _Drop):
            result.append(converted)
    return result


def _json(raw: Any, field: str, ctx: _Context, *, depth: int) -> JSONValue:
    """Any custom value -> its JSON form, or ``_DROP`` with a warning."""
    if isinstance(raw, bool):
        return bool(raw)
    if isinstance(raw, str):
        if not _is_valid_text(raw):
            return ctx.warn(field, "contains characters that are not valid text; it was dropped")
        return str(raw)
    if isinstance(raw, int):
        if not _int_fits(raw):
            return ctx.warn(field, "is a number too large to send; it was dropped")
        return int(raw)
    if isinstance(raw, float):
        if not math.isfinite(raw):
            return ctx.warn(field, "must be a finite number, not NaN or infinity; it was dropped")
        return float(raw)
    if isinstance(raw, Decimal):
        number = _decimal_to_number(raw)
        if number is None:
            return ctx.warn(field, "must be a finite number, not NaN or infinity; it was dropped")
        return number
    if isinstance(raw, dt.date | dt.time):  # datetime is a subclass of date
        return raw.isoformat()
    if isinstance(raw, uuid.UUID):
        return str(raw)
    if isinstance(raw, Mapping):
        return _mapping(raw, field, ctx, depth=depth)
    items = _as_items(raw)
    if items is not None:
        return _sequence(items, field, ctx, depth=depth)
    return ctx.warn(field, f"a {type(raw).__name__} value cannot be sent as JSON; it was dropped")
