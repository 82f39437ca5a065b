"""Normalize and hash an event's ``user_data`` (customer information) the way Meta asks.

:func:`normalize_user_data` turns a loose mapping (canonical keys or friendly aliases such as
``email`` or ``zip_code``; single values or lists) into the dict sent to Meta: the contact
fields normalized and SHA-256 hashed, the browser and platform identifiers checked and kept
as they are. A value that cannot be used is dropped with a :class:`NormalizationWarning`
naming the field and the rule, never the value, so one bad phone number does not sink the
event and no personal data ends up in logs or the admin.

The ``normalize_<field>`` functions return one field's normalized (not hashed) text, or raise
``ValueError`` whose message is the rule broken (again without the value).
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import re
import unicodedata
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from types import MappingProxyType
from typing import Any, Final

import phonenumbers
import pycountry

from .hashing import is_sha256_hex, sha256_hex

__all__ = [
    "HASHED_KEYS",
    "UNHASHED_KEYS",
    "USER_DATA_ALIASES",
    "NormalizationWarning",
    "NormalizedUserData",
    "normalize_city",
    "normalize_country",
    "normalize_date_of_birth",
    "normalize_email",
    "normalize_external_id",
    "normalize_gender",
    "normalize_name",
    "normalize_phone",
    "normalize_state",
    "normalize_user_data",
    "normalize_zip",
]

#: Keys whose values are normalized, then SHA-256 hashed.
HASHED_KEYS: Final = (
    "em",
    "ph",
    "fn",
    "ln",
    "ge",
    "db",
    "ct",
    "st",
    "zp",
    "country",
    "external_id",
)

#: Keys sent as they are (Meta rejects them hashed); each takes a single value.
UNHASHED_KEYS: Final = (
    "client_ip_address",
    "client_user_agent",
    "fbc",
    "fbp",
    "subscription_id",
    "fb_login_id",
    "lead_id",
    "anon_id",
    "madid",
    "page_id",
    "page_scoped_user_id",
    "ctwa_clid",
    "ig_account_id",
    "ig_sid",
)

#: Friendly names accepted in place of the canonical keys (matched case-insensitively).
USER_DATA_ALIASES: Final[Mapping[str, str]] = MappingProxyType(
    {
        "email": "em",
        "phone": "ph",
        "phone_number": "ph",
        "first_name": "fn",
        "last_name": "ln",
        "gender": "ge",
        "date_of_birth": "db",
        "birthday": "db",
        "dob": "db",
        "city": "ct",
        "state": "st",
        "zip": "zp",
        "zip_code": "zp",
        "zipcode": "zp",
        "postal_code": "zp",
        "postcode": "zp",
        "country_code": "country",
    }
)

_KEY_LOOKUP: Final[Mapping[str, str]] = MappingProxyType(
    {**{key: key for key in HASHED_KEYS + UNHASHED_KEYS}, **USER_DATA_ALIASES}
)

# A key that looks like a field name may be shown in a warning; anything else (an email
# address used as a key, say) might be personal data and is not.
_SHOWABLE_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_\-]{0,63}")


@dataclass(frozen=True)
class NormalizationWarning:
    """A ``user_data`` value that was dropped, and why; never contains the value itself."""

    field: str
    rule: str

    def as_dict(self) -> dict[str, str]:
        """Return ``{"field": ..., "rule": ...}``, e.g. to store on the event."""
        return {"field": self.field, "rule": self.rule}

    def __str__(self) -> str:
        return f"{self.field}: {self.rule}"


@dataclass
class NormalizedUserData:
    """The ``user_data`` dict ready for Meta, and the warnings about what was dropped."""

    data: dict[str, str | list[str]] = field(default_factory=dict)
    warnings: list[NormalizationWarning] = field(default_factory=list)


# --------------------------------------------------------------------------- text helpers


def _text(value: object, *, allow_int: bool = False) -> str:
    """Return ``value`` as NFC text without surrounding whitespace, or raise ValueError."""
    if isinstance(value, bool):
        raise ValueError("unsupported value type bool")
    if isinstance(value, int):
        if not allow_int:
            raise ValueError("unsupported value type int")
        try:
            # int.__repr__, not str(): an int subclass (an enum, say) may override __str__.
            return int.__repr__(value)
        except ValueError:
            raise ValueError("integer has too many digits") from None
    if not isinstance(value, str):
        raise ValueError(f"unsupported value type {type(value).__name__}")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError("not valid Unicode text") from None
    if "\x00" in value:  # PostgreSQL cannot store it, and no real value contains one
        raise ValueError("contains a NUL character")
    text = unicodedata.normalize("NFC", value).strip()
    if not text:
        raise ValueError("is empty")
    return text


def _keep(text: str, categories: tuple[str, ...]) -> str:
    """Lowercase ``text`` and keep only characters of the given Unicode category prefixes."""
    return "".join(ch for ch in text.lower() if unicodedata.category(ch).startswith(categories))


def _letters(text: str) -> str:
    # Letters and combining marks: accented and non-Latin letters stay (Meta: UTF-8).
    return unicodedata.normalize("NFC", _keep(text, ("L", "M")))


def _letters_and_digits(text: str) -> str:
    return unicodedata.normalize("NFC", _keep(text, ("L", "M", "Nd")))


def _squash(text: str) -> str:
    """ASCII lookup key: accents folded, lowercase, a-z only ("U.S.A." -> "usa")."""
    decomposed = unicodedata.normalize("NFKD", text.lower())
    return "".join(ch for ch in decomposed if "a" <= ch <= "z")


def _fold_accents(text: str) -> str:
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch))


# ------------------------------------------------------------------------------ email


def normalize_email(value: str) -> str:
    """Trim and lowercase an email address; it must have one @ and a dotted domain."""
    text = _text(value).lower()
    local, _, domain = text.partition("@")
    labels = domain.split(".")
    if (
        text.count("@") != 1
        or not local
        or len(labels) < 2
        or not all(labels)
        or any(ch.isspace() for ch in text)
    ):
        raise ValueError("not a valid email address (expected one @ and a dotted domain)")
    return text


# ------------------------------------------------------------------------------ phone

_PHONE_CHARS = re.compile(r"[0-9+\-().\s/]+")
_NON_DIGITS = re.compile(r"[^0-9]")
_NO_COUNTRY_RULE = (
    "national phone number but no country is known; "
    "set the user_data country or CAPI DEFAULT_COUNTRY"
)


def _e164_digits(number: phonenumbers.PhoneNumber) -> str:
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164).lstrip("+")


def _international(digits: str, *, guessed: bool) -> str | None:
    """Read ``digits`` as a number starting with its country calling code.

    A guess (the caller did not mark the number international with + or 00) must also be a
    valid number for that country, not merely of possible length: "6505551212" would
    otherwise become a Singapore (+65) number.
    """
    try:
        number = phonenumbers.parse("+" + digits, None)
    except phonenumbers.NumberParseException:
        return None
    if (
        phonenumbers.is_possible_number_with_reason(number)
        != phonenumbers.ValidationResult.IS_POSSIBLE
    ):
        return None
    if guessed and not phonenumbers.is_valid_number(number):
        return None
    return _e164_digits(number)


def normalize_phone(value: str | int, country: str | None = None) -> str:
    """Return E.164 digits without "+" (``"16505551212"``).

    A number starting with + or 00 is international. Otherwise it is read as a national
    number of ``country`` (a name or code); failing that, or with no country, as digits
    that already start with a country calling code, if they form a valid number.
    Possible-length checks (not validity) are used for the first two readings so that
    fictional numbers such as 555 ones work.
    """
    text = _text(value, allow_int=True)
    region = _country_argument(country)
    if not _PHONE_CHARS.fullmatch(text):
        raise ValueError("contains characters that are not part of a phone number")
    if "+" in text.lstrip("+") or text.count("+") > 1:
        raise ValueError("a + sign is only allowed at the start of a phone number")
    digits = _NON_DIGITS.sub("", text)
    if not digits:
        raise ValueError("has no digits")
    if len(digits) > 20:
        raise ValueError("too many digits for a phone number")

    if text.startswith("+") or digits.startswith("00"):
        international = digits if text.startswith("+") else digits[2:]
        result = _international(international, guessed=False)
        if result is None:
            raise ValueError("not a possible international phone number")
        return result

    if region is not None:
        try:
            number = phonenumbers.parse(digits, region.upper())
        except phonenumbers.NumberParseException:
            number = None
        if (
            number is not None
            and phonenumbers.is_possible_number_with_reason(number)
            == phonenumbers.ValidationResult.IS_POSSIBLE
        ):
            return _e164_digits(number)
        # Maybe an international number written without its "+".
        result = None if digits.startswith("0") else _international(digits, guessed=True)
        if result is None:
            raise ValueError(f"not a possible phone number for country {region.upper()}")
        return result

    # A leading 0 (trunk prefix) or "(" (area code) is national formatting: no guessing.
    if digits.startswith("0") or text.startswith("("):
        raise ValueError(_NO_COUNTRY_RULE)
    result = _international(digits, guessed=True)
    if result is None:
        raise ValueError(_NO_COUNTRY_RULE)
    return result


# ------------------------------------------------------------------------------ names


def normalize_name(value: str) -> str:
    """Lowercase a first or last name, without punctuation, spaces or digits ("O'Brien" ->
    "obrien"); accented and non-Latin letters are kept, NFC-composed ("Valéry" -> "valéry").
    """
    result = _letters(_text(value))
    if not result:
        raise ValueError("contains no letters")
    return result


# ----------------------------------------------------------------------------- gender

# Words (lowercase, letters only) read as female or male. Accent-free spellings of the
# entries are accepted too ("mannlich").
_GENDER_WORDS: Final[Mapping[str, tuple[str, ...]]] = MappingProxyType(
    {
        "f": (
            "f",
            "female",
            "woman",
            "w",  # woman, weiblich
            "girl",
            "fem",
            "feminine",
            "weiblich",
            "frau",
            "femme",
            "féminin",
            "mujer",
            "femenino",
            "femenina",
            "feminino",
            "feminina",
            "donna",
            "femmina",
            "vrouw",
            "vrouwelijk",
            "kobieta",
        ),
        "m": (
            "m",
            "male",
            "man",
            "boy",
            "masculine",
            "männlich",
            "mann",
            "homme",
            "h",  # homme, hombre
            "masculin",
            "hombre",
            "masculino",
            "varón",
            "uomo",
            "maschio",
            "maschile",
            "mannelijk",
            "mężczyzna",
        ),
    }
)


@lru_cache(maxsize=1)
def _gender_table() -> dict[str, str]:
    table: dict[str, str] = {}
    for code, words in _GENDER_WORDS.items():
        for word in words:
            table[word] = code
            table.setdefault(_fold_accents(word), code)
    table["maennlich"] = "m"
    return table


def normalize_gender(value: str) -> str:
    """Return ``"f"`` or ``"m"`` from a gender word in English, German, French, Spanish,
    Portuguese, Italian, Dutch or Polish ("Female", "w", "weiblich", "Hombre", "h", ...).
    """
    key = _letters(_text(value))
    table = _gender_table()
    code = table.get(key) or table.get(_fold_accents(key))
    if code is None:
        raise ValueError("not a recognized gender (expected a word meaning female or male)")
    return code


# ------------------------------------------------------------------------- date of birth

_MONTHS: Final[Mapping[str, int]] = MappingProxyType(
    {
        name: number
        for number, names in enumerate(
            (
                ("january", "jan"),
                ("february", "feb"),
                ("march", "mar"),
                ("april", "apr"),
                ("may",),
                ("june", "jun"),
                ("july", "jul"),
                ("august", "aug"),
                ("september", "sep", "sept"),
                ("october", "oct"),
                ("november", "nov"),
                ("december", "dec"),
            ),
            start=1,
        )
        for name in names
    }
)
_YEAR_FIRST = re.compile(
    r"([0-9]{4})([-/.])([0-9]{1,2})\2([0-9]{1,2})(?:[t ][0-9]{1,2}:[0-9]{2}.*)?"
)
_COMPACT = re.compile(r"([0-9]{4})([0-9]{2})([0-9]{2})")
_SLASHED = re.compile(r"([0-9]{1,2})([/-])([0-9]{1,2})\2([0-9]{4})")
_DOTTED = re.compile(r"([0-9]{1,2})\.([0-9]{1,2})\.([0-9]{4})")
_DAY_TOKEN = re.compile(r"([0-9]{1,2})(?:st|nd|rd|th)?")
_YEAR_TOKEN = re.compile(r"[0-9]{4}")
_DATE_SEPARATORS = re.compile(r"[\s,./\-]+")


def _checked_date(year: int, month: int, day: int) -> dt.date:
    try:
        date = dt.date(year, month, day)
    except ValueError:
        raise ValueError("not a real calendar date") from None
    return _checked_birth_date(date)


def _checked_birth_date(date: dt.date) -> dt.date:
    if date.year < 1900:
        raise ValueError("date of birth before 1900")
    if date > dt.date.today():
        raise ValueError("date of birth is in the future")
    return date


def _parse_date_text(text: str) -> dt.date:
    text = text.lower()
    if match := _YEAR_FIRST.fullmatch(text):
        return _checked_date(int(match[1]), int(match[3]), int(match[4]))
    if match := _COMPACT.fullmatch(text):
        return _checked_date(int(match[1]), int(match[2]), int(match[3]))
    if match := _SLASHED.fullmatch(text):
        first, second, year = int(match[1]), int(match[3]), int(match[4])
        # US order (month first) unless the first number cannot be a month.
        if first > 12:
            return _checked_date(year, second, first)
        return _checked_date(year, first, second)
    if match := _DOTTED.fullmatch(text):
        return _checked_date(int(match[3]), int(match[2]), int(match[1]))

    # Month written as a word, in any order: "14 Feb 1990", "February 14th, 1990".
    tokens = [token for token in _DATE_SEPARATORS.split(text) if token]
    if len(tokens) == 3:
        months = [_MONTHS[t] for t in tokens if t in _MONTHS]
        years = [int(t) for t in tokens if _YEAR_TOKEN.fullmatch(t)]
        days = [int(m[1]) for t in tokens if (m := _DAY_TOKEN.fullmatch(t))]
        if len(months) == len(years) == len(days) == 1:
            return _checked_date(years[0], months[0], days[0])
    raise ValueError("not a recognized date format (expected e.g. YYYY-MM-DD)")


def normalize_date_of_birth(value: str | int | dt.date) -> str:
    """Return ``YYYYMMDD`` from a date, a datetime or a common date string.

    Accepted strings: "1990-02-14", "1990/02/14", "19900214", "02/14/1990" (month first,
    or day first when the first number is over 12), "14.02.1990" (day first), and dates with
    an English month name ("14 Feb 1990", "February 14, 1990"). Two-digit years are refused.
    """
    if isinstance(value, dt.datetime):
        # The calendar date as written; converting time zones could shift a birthday.
        date = _checked_birth_date(value.date())
    elif isinstance(value, dt.date):
        date = _checked_birth_date(value)
    else:
        date = _parse_date_text(_text(value, allow_int=True))
    return date.strftime("%Y%m%d")


# ------------------------------------------------------------------------------- city


def normalize_city(value: str) -> str:
    """Lowercase a city without punctuation, spaces or digits ("São Paulo" -> "sãopaulo")."""
    result = _letters(_text(value))
    if not result:
        raise ValueError("contains no letters")
    return result


# ------------------------------------------------------------------------------ country

# Names people write that are not among pycountry's names for the country.
_COUNTRY_ALIASES: Final[Mapping[str, str]] = MappingProxyType(
    {
        "uk": "gb",
        "britain": "gb",
        "greatbritain": "gb",
        "england": "gb",
        "scotland": "gb",
        "wales": "gb",
        "northernireland": "gb",
        "america": "us",
        "unitedstatesofamerica": "us",
        "deutschland": "de",
        "espana": "es",
        "holland": "nl",
        "nederland": "nl",
        "italia": "it",
        "schweiz": "ch",
        "suisse": "ch",
        "svizzera": "ch",
        "osterreich": "at",
        "brasil": "br",
        "southkorea": "kr",
        "northkorea": "kp",
        "russia": "ru",
        "iran": "ir",
        "syria": "sy",
        "laos": "la",
        "vietnam": "vn",
        "czechrepublic": "cz",
        "ivorycoast": "ci",
        "macedonia": "mk",
        "turkey": "tr",
        "brunei": "bn",
        "capeverde": "cv",
        "swaziland": "sz",
        "burma": "mm",
        "uae": "ae",
        "drc": "cd",
        "democraticrepublicofthecongo": "cd",
        "easttimor": "tl",
        "vatican": "va",
        "macau": "mo",
        "palestine": "ps",
        "micronesia": "fm",
    }
)


@lru_cache(maxsize=1)
def _country_tables() -> tuple[frozenset[str], dict[str, str]]:
    """(alpha-2 codes, squashed names and alpha-3 codes -> alpha-2), lowercase."""
    alpha_2: set[str] = set()
    index: dict[str, str] = {}
    for country in pycountry.countries:
        code = str(country.alpha_2).lower()
        alpha_2.add(code)
        for attribute in ("name", "official_name", "common_name"):
            name = getattr(country, attribute, None)
            if isinstance(name, str) and _squash(name):
                index.setdefault(_squash(name), code)
    for country in pycountry.countries:
        index[str(country.alpha_3).lower()] = str(country.alpha_2).lower()
    index.update(_COUNTRY_ALIASES)
    return frozenset(alpha_2), index


def normalize_country(value: str) -> str:
    """Return the lowercase ISO 3166-1 alpha-2 code for a country code (alpha-2 or -3) or
    name ("United States", "USA", "U.S.A." -> "us"; "UK", "England" -> "gb").
    """
    key = _squash(_text(value))
    alpha_2, index = _country_tables()
    if len(key) == 2:
        code = _COUNTRY_ALIASES.get(key) or (key if key in alpha_2 else None)
    else:
        code = index.get(key)
    if code is None:
        raise ValueError("not a known ISO 3166-1 country name or code")
    return code


def _country_argument(country: str | None) -> str | None:
    """Resolve the ``country`` argument of the phone, state and ZIP normalizers."""
    if country is None:
        return None
    try:
        return normalize_country(country)
    except ValueError:
        raise ValueError("the country argument is not a known ISO 3166-1 country") from None


# ------------------------------------------------------------------------------- state

# Spellings of US states and territories that pycountry's names do not cover.
_US_STATE_ALIASES: Final[Mapping[str, str]] = MappingProxyType(
    {
        "washingtondc": "dc",
        "virginislands": "vi",
        "usvirginislands": "vi",
        "usvi": "vi",
        "northernmarianas": "mp",
        "northernmarianaislands": "mp",
    }
)


@lru_cache(maxsize=1)
def _us_states() -> dict[str, str]:
    """Squashed names and codes of US states, DC and territories -> lowercase code."""
    table: dict[str, str] = {}
    for subdivision in pycountry.subdivisions:
        if subdivision.country_code != "US":
            continue
        code = str(subdivision.code).split("-", 1)[1].lower()
        table[code] = code
        table[_squash(str(subdivision.name))] = code
    table.update(_US_STATE_ALIASES)
    return table


def normalize_state(value: str, country: str | None = None) -> str:
    """Return a state or region for ``country`` (a name or code).

    In the US, or when the country is unknown, a US state, DC or territory name or code
    becomes its lowercase two-letter code ("California", "CA" -> "ca"). Elsewhere (and for
    an unknown country's other values) the value is lowercased without punctuation or spaces.
    """
    text = _text(value)
    region = _country_argument(country)
    if region in (None, "us"):
        code = _us_states().get(_squash(text))
        if code is not None:
            return code
        if region == "us":
            raise ValueError("not a US state, DC or territory name or two-letter code")
    result = _letters_and_digits(text)
    if not result:
        raise ValueError("contains no letters or digits")
    return result


# --------------------------------------------------------------------------------- zip

_ZIP_SPACING = re.compile(r"[\s\-]+")
_US_ZIP = re.compile(r"([0-9]{5})(?:[0-9]{4})?")
_US_ZIP_PLUS_4 = re.compile(r"([0-9]{5})[\s\-][0-9]{4}")
_POSTAL_CODE = re.compile(r"[a-z0-9]{2,10}")


def normalize_zip(value: str | int, country: str | None = None) -> str:
    """Return a postal code for ``country`` (a name or code): lowercase, without spaces or
    dashes ("M1 1AE" -> "m11ae"). US: the first five digits ("94025-1234" -> "94025"), with
    leading zeros restored (2134 -> "02134"). With no country, a ZIP+4 gives its first five.
    """
    text = _text(value, allow_int=True)
    region = _country_argument(country)
    compact = _ZIP_SPACING.sub("", text.lower())
    if region == "us":
        if match := _US_ZIP.fullmatch(compact):
            return match[1]
        if compact.isascii() and compact.isdigit() and len(compact) in (3, 4):
            # Stored as a number somewhere, the leading zeros of New England ZIPs are lost.
            return compact.zfill(5)
        raise ValueError("not a US ZIP code (expected 5 digits or ZIP+4)")
    if region is None and (match := _US_ZIP_PLUS_4.fullmatch(text)):
        return match[1]
    compact = "".join(ch for ch in compact if not unicodedata.category(ch).startswith("P"))
    # Every national postal code system uses digits; a value without any is not a code.
    if not _POSTAL_CODE.fullmatch(compact) or compact.isalpha():
        raise ValueError("not a postal code (expected 2 to 10 letters and digits)")
    return compact


# ------------------------------------------------------------------------- external id


def normalize_external_id(value: str | int) -> str:
    """Lowercase an external id and remove all whitespace (" User 123 " -> "user123")."""
    # Meta's own normalizers (the Pixel's advanced matching, capi-param-builder's
    # getNormalizedExternalID) lowercase external_id and strip whitespace before hashing.
    # Doing the same makes our hash equal the one the browser sends for the same customer,
    # which matching and the external_id deduplication fallback rely on.
    result = "".join(_text(value, allow_int=True).lower().split())
    if not result:
        raise ValueError("is empty")
    return result


# ----------------------------------------------------------------- unhashed identifiers

_BROWSER_ID = re.compile(r"fb\.[0-9]+\.[0-9]+\.[^.\s]+(?:\.[^.\s]+)?")


def _normalize_ip(value: object) -> str:
    text = _text(value)
    try:
        return str(ipaddress.ip_address(text))
    except ValueError:
        # ipaddress's own message quotes the value.
        raise ValueError("not an IPv4 or IPv6 address") from None


def _normalize_browser_id(value: object) -> str:
    text = _text(value)
    if not _BROWSER_ID.fullmatch(text):
        raise ValueError("not in the fb.<subdomain index>.<creation time>.<value> cookie format")
    return text


def _normalize_text(value: object) -> str:
    return _text(value)


def _normalize_identifier(value: object) -> str:
    return _text(value, allow_int=True)


# ---------------------------------------------------------------------------- dispatch

_Normalizer = Callable[[Any, str | None], str]

_HASHED_NORMALIZERS: Final[Mapping[str, _Normalizer]] = MappingProxyType(
    {
        "em": lambda value, _country: normalize_email(value),
        "ph": normalize_phone,
        "fn": lambda value, _country: normalize_name(value),
        "ln": lambda value, _country: normalize_name(value),
        "ge": lambda value, _country: normalize_gender(value),
        "db": lambda value, _country: normalize_date_of_birth(value),
        "ct": lambda value, _country: normalize_city(value),
        "st": normalize_state,
        "zp": normalize_zip,
        "country": lambda value, _country: normalize_country(value),
        "external_id": lambda value, _country: normalize_external_id(value),
    }
)

_UNHASHED_NORMALIZERS: Final[Mapping[str, Callable[[Any], str]]] = MappingProxyType(
    {
        "client_ip_address": _normalize_ip,
        "client_user_agent": _normalize_text,
        "fbc": _normalize_browser_id,
        "fbp": _normalize_browser_id,
        **{
            key: _normalize_identifier
            for key in UNHASHED_KEYS
            if key not in ("client_ip_address", "client_user_agent", "fbc", "fbp")
        },
    }
)


def _normalize_value(key: str, value: Any, country: str | None) -> str:
    if key in _UNHASHED_NORMALIZERS:
        return _UNHASHED_NORMALIZERS[key](value)
    if isinstance(value, str) and is_sha256_hex(value.strip()):
        return value.strip().lower()
    return sha256_hex(_HASHED_NORMALIZERS[key](value, country))


def _is_blank(value: Any) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


DefaultCountry = str | None | Callable[[], str | None]


def _context_country(
    values: list[Any], default_country: DefaultCountry, warnings: list[NormalizationWarning]
) -> str | None:
    """The country used to read national phone numbers, US states and US ZIP codes."""
    for value in values:
        if isinstance(value, str) and is_sha256_hex(value.strip()):
            continue
        try:
            return normalize_country(value)
        except ValueError:
            continue
    if callable(default_country):  # looked up only now that it is needed
        default_country = default_country()
    if default_country is None or _is_blank(default_country):
        return None
    try:
        return normalize_country(default_country)
    except ValueError:
        warnings.append(
            NormalizationWarning(
                "country", "the default country setting is not a known ISO 3166-1 country"
            )
        )
        return None


def normalize_user_data(
    user_data: Mapping[str, Any] | None, *, default_country: DefaultCountry = None
) -> NormalizedUserData:
    """Normalize, hash and check ``user_data``; never raises for bad values.

    Keys may be canonical (``em``, ``ph``, ...) or aliases (``email``, ``zip_code``, ...);
    unknown keys are dropped with a warning. A value may be one value or a list/tuple: a list
    gives a deduplicated list, one value a string. ``None`` and blank strings are skipped
    silently; values that cannot be used are dropped with a warning. ``default_country``
    (ISO code or name) reads national phone numbers, US states and ZIP codes when
    ``user_data`` has no usable ``country``; it may also be a callable returning one, called
    only in that case (so a dataset's setting is not looked up when the event names its
    country).
    """
    warnings: list[NormalizationWarning] = []

    def warn(field_name: str, rule: str) -> None:
        warning = NormalizationWarning(field_name, rule)
        if warning not in warnings:
            warnings.append(warning)

    if user_data is None:
        return NormalizedUserData()
    if not isinstance(user_data, Mapping):
        warn("user_data", "must be a mapping of field names to values; nothing was kept")
        return NormalizedUserData(warnings=warnings)

    grouped: dict[str, list[Any]] = {}
    given_as_list: set[str] = set()
    for key, raw in user_data.items():
        if not isinstance(key, str):
            warn("user_data", f"a key of type {type(key).__name__} is not a field name; dropped")
            continue
        canonical = _KEY_LOOKUP.get(key.strip().lower())
        if canonical is None:
            if _SHOWABLE_KEY.fullmatch(key):
                warn(key, "unknown user_data key; its value was dropped")
            else:
                warn("user_data", "unknown key that does not look like a field name; dropped")
            continue
        if isinstance(raw, list | tuple):
            grouped.setdefault(canonical, []).extend(raw)
            given_as_list.add(canonical)
        else:
            grouped.setdefault(canonical, []).append(raw)

    country = _context_country(grouped.get("country", []), default_country, warnings)

    data: dict[str, str | list[str]] = {}
    for key in HASHED_KEYS + UNHASHED_KEYS:
        results: list[str] = []
        for value in grouped.get(key, ()):
            if _is_blank(value):
                continue
            try:
                result = _normalize_value(key, value, country)
            except ValueError as error:
                warn(key, str(error))
                continue
            if result not in results:
                results.append(result)
        if not results:
            continue
        if key in _UNHASHED_NORMALIZERS:
            if len(results) > 1:
                warn(key, "takes a single value; the values after the first were dropped")
            data[key] = results[0]
        elif key in given_as_list or len(results) > 1:
            data[key] = results
        else:
            data[key] = results[0]
    return NormalizedUserData(data=data, warnings=warnings)
