"""Property-based tests of user_data normalization (hypothesis)."""

from __future__ import annotations

import datetime as dt
import hashlib
import re
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from django_capi.normalization import (
    HASHED_KEYS,
    UNHASHED_KEYS,
    USER_DATA_ALIASES,
    NormalizationWarning,
    NormalizedUserData,
    normalize_city,
    normalize_country,
    normalize_date_of_birth,
    normalize_email,
    normalize_external_id,
    normalize_gender,
    normalize_name,
    normalize_phone,
    normalize_state,
    normalize_user_data,
    normalize_zip,
)
from django_capi.normalization import user_data as user_data_module

HEX64 = re.compile(r"[0-9a-f]{64}")

# Text that belongs to the program, not to the data: a warning may of course contain it.
# (Hypothesis feeds string constants found in the source back in as inputs.)
PROGRAM_TEXT = (
    Path(user_data_module.__file__).read_text(encoding="utf-8")
    + Path(__file__).read_text(encoding="utf-8")
    + " bytes bytearray float int bool dict list tuple set frozenset date datetime time"
)

KNOWN_KEYS = [*HASHED_KEYS, *UNHASHED_KEYS, *USER_DATA_ALIASES]

PROPERTY_SETTINGS = settings(
    max_examples=300,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

# Values that look like real customer data, so that the normal paths are exercised too.
plausible_values = st.one_of(
    st.emails(),
    st.from_regex(r"\+?[0-9 ()\-.]{5,18}", fullmatch=True),
    st.integers(min_value=0, max_value=10**12),
    st.sampled_from(
        [
            "Female",
            "m",
            "Valéry",
            "O'Brien",
            "São Paulo",
            "California",
            "CA",
            "United States",
            "UK",
            "M1 1AE",
            "94025-1234",
            "1990-02-14",
            "02/14/1990",
            "14 Feb 1990",
            "203.0.113.7",
            "2001:db8::1",
            "fb.1.1596403881668.1116446470",
            "(650) 555-1212",
            "+44 20 7946 0958",
            hashlib.sha256(b"x").hexdigest().upper(),
        ]
    ),
    st.dates(min_value=dt.date(1850, 1, 1), max_value=dt.date(2100, 1, 1)),
)

leaf_values = st.one_of(
    st.none(),
    st.text(max_size=30),
    st.integers(),
    st.floats(),
    st.booleans(),
    st.dates(),
    st.datetimes(),
    st.binary(max_size=10),
    plausible_values,
)

values = st.recursive(
    leaf_values,
    lambda children: st.one_of(
        st.lists(children, max_size=4),
        st.lists(children, max_size=3).map(tuple),
        st.dictionaries(st.text(max_size=5), children, max_size=3),
    ),
    max_leaves=8,
)

keys = st.one_of(
    st.sampled_from(KNOWN_KEYS),
    st.sampled_from(KNOWN_KEYS).map(str.upper),
    st.text(max_size=15),
    st.integers(),
)

user_data_dicts = st.dictionaries(keys, values, max_size=8)
countries = st.sampled_from([None, "US", "gb", "France", "de", "BR"])


def strings_in(value: Any) -> list[str]:
    """Every string inside ``value`` (lists, tuples and dicts, keys included)."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, list | tuple):
        return [text for item in value for text in strings_in(item)]
    if isinstance(value, dict):
        return [text for pair in value.items() for item in pair for text in strings_in(item)]
    return []


def check_output_is_well_formed(result: NormalizedUserData) -> None:
    """Hashed keys hold 64 lowercase hex digits; the others single clean strings."""
    assert isinstance(result.data, dict)
    for key, value in result.data.items():
        assert key in HASHED_KEYS or key in UNHASHED_KEYS
        items = value if isinstance(value, list) else [value]
        assert items
        assert len(items) == len(set(items))
        for item in items:
            assert isinstance(item, str)
            if key in HASHED_KEYS:
                assert HEX64.fullmatch(item), key
            else:
                assert not isinstance(value, list)
                assert item
                assert item == item.strip()
    for warning in result.warnings:
        assert isinstance(warning, NormalizationWarning)
        assert isinstance(warning.field, str)
        assert isinstance(warning.rule, str)
        assert warning.rule


def check_idempotent(result: NormalizedUserData, default_country: str | None) -> None:
    """Feeding the output back in gives the same output and no warnings."""
    again = normalize_user_data(result.data, default_country=default_country)
    assert again.data == result.data
    assert again.warnings == []


def check_no_raw_value_in_warnings(user_data: dict[Any, Any], result: NormalizedUserData) -> None:
    text = "\n".join([str(w) for w in result.warnings] + [repr(w) for w in result.warnings])
    # Keys are shown by design when they look like field names.
    shown_keys = [key for key in user_data if isinstance(key, str)]
    for raw in strings_in(list(user_data.values())):
        if len(raw) < 4 or raw not in text:
            continue
        assert raw in PROGRAM_TEXT or any(raw in key for key in shown_keys), raw


# One test checks all properties of the same generated input: generating nested data is
# what takes the time here, not normalizing it.
@PROPERTY_SETTINGS
@given(user_data=user_data_dicts, default_country=countries)
def test_arbitrary_user_data(user_data, default_country):
    result = normalize_user_data(user_data, default_country=default_country)  # never raises
    check_output_is_well_formed(result)
    check_idempotent(result, default_country)
    check_no_raw_value_in_warnings(user_data, result)


def test_no_raw_value_check_catches_a_leak():
    secret = "@".join(["joe", "secret"])  # built at run time: not part of PROGRAM_TEXT
    leaky = NormalizedUserData(warnings=[NormalizationWarning("em", f"bad value {secret}")])
    with pytest.raises(AssertionError):
        check_no_raw_value_in_warnings({"em": secret}, leaky)


@settings(max_examples=150, deadline=None)
@given(email=st.emails(), padding=st.sampled_from(["", " ", "\t", "\n "]))
def test_wellformed_emails_are_trimmed_and_lowercased(email, padding):
    expected = email.lower()
    assert normalize_email(padding + email.upper() + padding) == expected
    result = normalize_user_data({"email": email})
    assert result.data == {"em": hashlib.sha256(expected.encode()).hexdigest()}


@settings(max_examples=150, deadline=None)
@given(
    area=st.integers(200, 999),
    exchange=st.integers(200, 999),
    line=st.integers(0, 9999),
    template=st.sampled_from(
        [
            "({a}) {e}-{l}",
            "{a}-{e}-{l}",
            "{a}.{e}.{l}",
            "{a}{e}{l}",
            "1 {a} {e} {l}",
            "+1 ({a}) {e}-{l}",
            "001 {a} {e} {l}",
        ]
    ),
)
def test_us_numbers_in_any_format(area, exchange, line, template):
    text = template.format(a=area, e=exchange, l=f"{line:04d}")
    assert normalize_phone(text, "US") == f"1{area}{exchange}{line:04d}"


@settings(max_examples=150, deadline=None)
@given(
    date=st.dates(min_value=dt.date(1900, 1, 1), max_value=dt.date.today()),
    template=st.sampled_from(
        ["%Y-%m-%d", "%Y%m%d", "%Y/%m/%d", "%d.%m.%Y", "%d %b %Y", "%B %d, %Y", "%d %B %Y"]
    ),
)
def test_dates_in_any_supported_format(date, template):
    assert normalize_date_of_birth(date.strftime(template)) == date.strftime("%Y%m%d")
    assert normalize_date_of_birth(date) == date.strftime("%Y%m%d")


@settings(max_examples=150, deadline=None)
@given(date=st.dates(min_value=dt.date(1900, 1, 1), max_value=dt.date.today()))
def test_us_slashed_dates(date):
    expected = date.strftime("%Y%m%d")
    assert normalize_date_of_birth(date.strftime("%m/%d/%Y")) == expected
    if date.day > 12:
        assert normalize_date_of_birth(date.strftime("%d/%m/%Y")) == expected


@settings(max_examples=150, deadline=None)
@given(
    digest=st.text("0123456789abcdefABCDEF", min_size=64, max_size=64),
    key=st.sampled_from(HASHED_KEYS),
)
def test_prehashed_values_pass_through(digest, key):
    result = normalize_user_data({key: [digest, f" {digest} "]})
    assert result.data == {key: [digest.lower()]}
    assert result.warnings == []


FIELD_FUNCTIONS = {
    "em": lambda value, country: normalize_email(value),
    "ph": normalize_phone,
    "fn": lambda value, country: normalize_name(value),
    "ge": lambda value, country: normalize_gender(value),
    "db": lambda value, country: normalize_date_of_birth(value),
    "ct": lambda value, country: normalize_city(value),
    "st": normalize_state,
    "zp": normalize_zip,
    "country": lambda value, country: normalize_country(value),
    "external_id": lambda value, country: normalize_external_id(value),
}


@settings(max_examples=300, deadline=None)
@given(
    field=st.sampled_from(sorted(FIELD_FUNCTIONS)),
    value=st.one_of(
        st.text(max_size=40),
        st.from_regex(r"[0-9+() .\-/]{1,25}", fullmatch=True),
        st.integers(),
    ),
    country=st.sampled_from([None, "US", "gb", "aq", "Antarctica", "bv", "fr", "jp"]),
)
def test_field_functions_return_text_or_raise_value_error(field, value, country):
    try:
        result = FIELD_FUNCTIONS[field](value, country)
    except ValueError as error:
        message = str(error)
        assert message
        if isinstance(value, str) and len(value) >= 4 and value in message:
            assert value in PROGRAM_TEXT
    else:
        assert isinstance(result, str)
        assert result
        # Normalized text is stable: normalizing it again changes nothing. (Phone digits
        # without "+" are read as a national number first, so ph is not checked here.)
        if field != "ph":
            assert FIELD_FUNCTIONS[field](result, country) == result
