"""user_data normalization and hashing: every key and rule, with concrete values."""

from __future__ import annotations

import datetime as dt
import hashlib
from typing import Any

import pytest

from django_capi.normalization import (
    HASHED_KEYS,
    UNHASHED_KEYS,
    NormalizationWarning,
    NormalizedUserData,
    is_sha256_hex,
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
    sha256_hex,
)


def h(text: str) -> str:
    """Reference hash, computed independently of the code under test."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def rules(result: NormalizedUserData) -> list[str]:
    return [str(warning) for warning in result.warnings]


# ---------------------------------------------------------------------------- hashing


class TestHashing:
    def test_meta_documented_email_vector(self):
        assert sha256_hex("joe@eg.com") == (
            "8830eedd6c6b5ea97d181563a349476ca1bb25ace1f94b5c5e48d9cad727941b"
        )

    @pytest.mark.parametrize(
        ("text", "digest"),
        [
            ("16505551212", "e323ec626319ca94ee8bff2e4c87cf613be6ea19919ed1364124e16807ab3176"),
            ("f", "252f10c83610ebca1a059c0bae8255eba2f95be4d1d7bcfa89d7248a82d9f111"),
            ("m", "62c66a7a5dd70c3146618063c344e531e6d4b59e379808443ce962b3abd63c5a"),
            ("us", "79adb2a2fce5c6ba215fe5f27f532d4e7edbac4b6a5e09e1ef3a08084a904621"),
            ("ca", "6959097001d10501ac7d54c0bdb8db61420f658f2922cc26e46d536119a31126"),
            ("94025", "b9a9cf3cd3723a2e91b7c23ecf68456e872b6e5d86e5cab7f3d45a7302da32c7"),
        ],
    )
    def test_known_vectors(self, text, digest):
        assert sha256_hex(text) == digest

    def test_utf8_bytes_are_hashed(self):
        assert sha256_hex("valéry") == hashlib.sha256("valéry".encode()).hexdigest()

    @pytest.mark.parametrize(
        ("value", "expected"),
        [
            ("a" * 64, True),
            ("0123456789abcdef" * 4, True),
            ("0123456789ABCDEF" * 4, True),
            ("a" * 63, False),
            ("a" * 65, False),
            ("g" * 64, False),
            ("a" * 64 + "\n", False),
            (" " + "a" * 63, False),
            ("", False),
        ],
    )
    def test_is_sha256_hex(self, value, expected):
        assert is_sha256_hex(value) is expected


# ------------------------------------------------------------------------ warning type


class TestNormalizationWarning:
    def test_as_dict_and_str(self):
        warning = NormalizationWarning("ph", "not a possible phone number for country US")
        assert warning.as_dict() == {
            "field": "ph",
            "rule": "not a possible phone number for country US",
        }
        assert str(warning) == "ph: not a possible phone number for country US"

    def test_frozen(self):
        warning = NormalizationWarning("ph", "x")
        with pytest.raises(AttributeError):
            warning.field = "em"  # type: ignore[misc]


# ------------------------------------------------------------------------------ email


class TestEmail:
    @pytest.mark.parametrize(
        ("value", "expected"),
        [
            ("joe@eg.com", "joe@eg.com"),
            ("  Joe@Eg.COM \n", "joe@eg.com"),
            ("first.last+tag@sub.example.co.uk", "first.last+tag@sub.example.co.uk"),
            ("ÉLODIE@exemple.fr", "élodie@exemple.fr"),
        ],
    )
    def test_valid(self, value, expected):
        assert normalize_email(value) == expected

    @pytest.mark.parametrize(
        "value",
        [
            "joe",
            "joe@",
            "@eg.com",
            "joe@eg",
            "joe@@eg.com",
            "a@b@c.com",
            "joe@.com",
            "joe@eg.",
            "joe@eg..com",
            "jo e@eg.com",
        ],
    )
    def test_invalid(self, value):
        with pytest.raises(ValueError, match="not a valid email address"):
            normalize_email(value)

    def test_hashed_in_user_data(self):
        result = normalize_user_data({"em": " Joe@Eg.com "})
        assert result.data == {
            "em": "8830eedd6c6b5ea97d181563a349476ca1bb25ace1f94b5c5e48d9cad727941b"
        }
        assert result.warnings == []

    def test_int_is_not_an_email(self):
        result = normalize_user_data({"em": 12345})
        assert result.data == {}
        assert rules(result) == ["em: unsupported value type int"]


# ------------------------------------------------------------------------------ phone


class TestPhone:
    @pytest.mark.parametrize(
        ("value", "country", "expected"),
        [
            ("(650) 555-1212", "US", "16505551212"),
            ("650.555.1212", "us", "16505551212"),
            ("1 650 555 1212", "US", "16505551212"),
            (6505551212, "US", "16505551212"),
            ("(650) 555-1212", "United States", "16505551212"),
            ("+44 20 7946 0958", None, "442079460958"),
            ("+44 (0)20 7946 0958", None, "442079460958"),
            ("0044 20 7946 0958", None, "442079460958"),
            ("+44 20 7946 0958", "US", "442079460958"),  # explicit + wins over the country
            ("020 7946 0958", "GB", "442079460958"),
            ("06 12 34 56 78", "fr", "33612345678"),
            ("+39 06 1234 5678", None, "390612345678"),  # Italian leading zero kept
            ("011 44 20 7946 0958", "US", "442079460958"),  # US international prefix
            ("16505551212", None, "16505551212"),  # digits with calling code, no country
            (16505551212, None, "16505551212"),
            ("442079460958", "US", "442079460958"),  # international number missing its +
            ("+1 650 555 0100", None, "16505550100"),  # fictional 555 numbers work
            ("555 555 5555", "US", "15555555555"),
        ],
    )
    def test_valid(self, value, country, expected):
        assert normalize_phone(value, country) == expected

    @pytest.mark.parametrize(
        ("value", "country", "rule"),
        [
            ("(650) 555-1212", None, "set the user_data country or CAPI DEFAULT_COUNTRY"),
            ("6505551212", None, "set the user_data country or CAPI DEFAULT_COUNTRY"),
            ("020 7946 0958", None, "set the user_data country or CAPI DEFAULT_COUNTRY"),
            ("555-1212", "US", "not a possible phone number for country US"),
            ("12", "US", "not a possible phone number for country US"),
            ("+1 555", None, "not a possible international phone number"),
            ("1-800-FLOWERS", "US", "characters that are not part of a phone number"),
            ("call me maybe", "US", "characters that are not part of a phone number"),
            ("650+555", "US", "only allowed at the start"),
            ("()--", "US", "has no digits"),
            ("1" * 25, "US", "too many digits"),
        ],
    )
    def test_invalid(self, value, country, rule):
        with pytest.raises(ValueError, match=rule):
            normalize_phone(value, country)

    def test_bad_country_argument(self):
        with pytest.raises(ValueError, match="country argument"):
            normalize_phone("6505551212", "Narnia")

    def test_user_data_country_reads_national_numbers(self):
        result = normalize_user_data({"ph": "020 7946 0958", "country": "United Kingdom"})
        assert result.data["ph"] == h("442079460958")
        assert result.warnings == []

    def test_default_country_reads_national_numbers(self):
        result = normalize_user_data({"phone": "(650) 555-1212"}, default_country="US")
        assert result.data == {"ph": h("16505551212")}

    def test_user_data_country_beats_default_country(self):
        result = normalize_user_data({"ph": "020 7946 0958", "country": "gb"}, default_country="US")
        assert result.data["ph"] == h("442079460958")

    def test_prehashed_country_falls_back_to_default(self):
        result = normalize_user_data(
            {"ph": "(650) 555-1212", "country": h("gb")}, default_country="us"
        )
        assert result.data == {"ph": h("16505551212"), "country": h("gb")}

    def test_invalid_country_falls_back_to_default_and_warns(self):
        result = normalize_user_data(
            {"ph": "(650) 555-1212", "country": "Narnia"}, default_country="US"
        )
        assert result.data == {"ph": h("16505551212")}
        assert rules(result) == ["country: not a known ISO 3166-1 country name or code"]

    def test_no_country_warning_names_the_settings(self):
        result = normalize_user_data({"ph": "(650) 555-1212"})
        assert result.data == {}
        assert rules(result) == [
            "ph: national phone number but no country is known; "
            "set the user_data country or CAPI DEFAULT_COUNTRY"
        ]

    def test_one_bad_phone_does_not_sink_the_others(self):
        result = normalize_user_data({"ph": ["+1 650 555 1212", "not a phone", "+44 20 7946 0958"]})
        assert result.data == {"ph": [h("16505551212"), h("442079460958")]}
        assert rules(result) == ["ph: contains characters that are not part of a phone number"]

    def test_invalid_default_country_is_reported(self):
        result = normalize_user_data({"ph": "+1 650 555 1212"}, default_country="Atlantis")
        assert result.data == {"ph": h("16505551212")}
        assert rules(result) == [
            "country: the default country setting is not a known ISO 3166-1 country"
        ]


# ------------------------------------------------------------------------------ names


class TestNames:
    @pytest.mark.parametrize(
        ("value", "expected"),
        [
            ("John", "john"),
            ("  MARY  ", "mary"),
            ("Valéry", "valéry"),
            ("Vale\u0301ry", "valéry"),  # decomposed accent is composed (NFC)
            ("O'Brien", "obrien"),
            ("O\u2019Brien", "obrien"),
            ("Mary-Ann", "maryann"),
            ("Jean Paul", "jeanpaul"),
            ("Dr. Smith Jr.", "drsmithjr"),
            ("Zoë", "zoë"),
            ("Łukasz", "łukasz"),
            ("Ægir", "ægir"),
            ("张伟", "张伟"),
            ("Müller2", "müller"),
        ],
    )
    def test_valid(self, value, expected):
        assert normalize_name(value) == expected

    @pytest.mark.parametrize("value", ["1234", "--", "'.'"])
    def test_invalid(self, value):
        with pytest.raises(ValueError, match="contains no letters"):
            normalize_name(value)

    def test_hashed_utf8_in_user_data(self):
        result = normalize_user_data({"first_name": "Valéry", "last_name": "O'Brien"})
        assert result.data == {"fn": h("valéry"), "ln": h("obrien")}


# ----------------------------------------------------------------------------- gender


class TestGender:
    @pytest.mark.parametrize(
        "value",
        [
            "Female",
            "F",
            "f",
            "female",
            "woman",
            "w",
            "W",
            "weiblich",
            "Frau",
            "femme",
            "mujer",
            "femenino",
            "donna",
            "vrouw",
            "kobieta",
            "Féminin",
            " girl ",
        ],
    )
    def test_female(self, value):
        assert normalize_gender(value) == "f"

    @pytest.mark.parametrize(
        "value",
        [
            "Male",
            "M",
            "m",
            "M.",
            "man",
            "männlich",
            "maennlich",
            "mannlich",
            "Mann",
            "homme",
            "hombre",
            "h",
            "H",
            "masculino",
            "varón",
            "uomo",
            "boy",
        ],
    )
    def test_male(self, value):
        assert normalize_gender(value) == "m"

    @pytest.mark.parametrize("value", ["x", "other", "non-binary", "unknown", "fm", "1"])
    def test_unrecognized(self, value):
        with pytest.raises(ValueError, match="not a recognized gender"):
            normalize_gender(value)

    def test_hashed(self):
        result = normalize_user_data({"gender": "Female"})
        assert result.data == {
            "ge": "252f10c83610ebca1a059c0bae8255eba2f95be4d1d7bcfa89d7248a82d9f111"
        }

    def test_bool_is_rejected(self):
        result = normalize_user_data({"ge": True})
        assert result.data == {}
        assert rules(result) == ["ge: unsupported value type bool"]


# ---------------------------------------------------------------------- date of birth


class TestDateOfBirth:
    @pytest.mark.parametrize(
        "value",
        [
            "1990-02-14",
            "1990-2-14",
            "19900214",
            19900214,
            "1990/02/14",
            "1990.02.14",
            "02/14/1990",
            "2/14/1990",
            "02-14-1990",
            "14/02/1990",  # first number > 12: day first
            "14.02.1990",
            "14 Feb 1990",
            "14 February 1990",
            "14-Feb-1990",
            "February 14, 1990",
            "Feb 14th, 1990",
            "1990 Feb 14",
            "1990-02-14T08:30:00Z",
            "1990-02-14 08:30",
            dt.date(1990, 2, 14),
            dt.datetime(1990, 2, 14, 23, 59),
            dt.datetime(1990, 2, 14, 23, 59, tzinfo=dt.UTC),
        ],
    )
    def test_valid(self, value):
        assert normalize_date_of_birth(value) == "19900214"

    def test_slashes_are_month_first(self):
        assert normalize_date_of_birth("03/04/1990") == "19900304"

    def test_dots_are_day_first(self):
        assert normalize_date_of_birth("03.04.1990") == "19900403"

    @pytest.mark.parametrize(
        ("value", "rule"),
        [
            ("1990-02-30", "not a real calendar date"),
            ("13/13/1990", "not a real calendar date"),
            ("19901340", "not a real calendar date"),
            ("1899-12-31", "before 1900"),
            (dt.date(1850, 1, 1), "before 1900"),
            ("2999-01-01", "in the future"),
            (dt.date.today() + dt.timedelta(days=1), "in the future"),
            ("14/02/90", "not a recognized date format"),
            ("last tuesday", "not a recognized date format"),
            ("Smarch 14 1990", "not a recognized date format"),
            ("1990", "not a recognized date format"),
        ],
    )
    def test_invalid(self, value, rule):
        with pytest.raises(ValueError, match=rule):
            normalize_date_of_birth(value)

    def test_today_is_fine(self):
        today = dt.date.today()
        assert normalize_date_of_birth(today) == today.strftime("%Y%m%d")

    def test_hashed_with_aliases(self):
        assert normalize_user_data({"birthday": "1990-02-14"}).data == {"db": h("19900214")}
        assert normalize_user_data({"date_of_birth": dt.date(1990, 2, 14)}).data == {
            "db": h("19900214")
        }

    def test_dates_only_for_db(self):
        result = normalize_user_data({"fn": dt.date(1990, 2, 14)})
        assert rules(result) == ["fn: unsupported value type date"]


# ------------------------------------------------------------------------------- city


class TestCity:
    @pytest.mark.parametrize(
        ("value", "expected"),
        [
            ("New York", "newyork"),
            ("Menlo Park", "menlopark"),
            ("São Paulo", "sãopaulo"),
            ("St. Louis", "stlouis"),
            ("Winston-Salem", "winstonsalem"),
            ("Coeur d'Alene", "coeurdalene"),
            ("Paris 75001", "paris"),
            ("Zürich", "zürich"),
            ("東京", "東京"),
        ],
    )
    def test_valid(self, value, expected):
        assert normalize_city(value) == expected

    @pytest.mark.parametrize("value", ["12345", "...", "-"])
    def test_invalid(self, value):
        with pytest.raises(ValueError, match="contains no letters"):
            normalize_city(value)


# ------------------------------------------------------------------------------ state


class TestState:
    @pytest.mark.parametrize(
        ("value", "country", "expected"),
        [
            ("California", None, "ca"),
            ("CA", None, "ca"),
            ("ca", "US", "ca"),
            ("California", "US", "ca"),
            ("california", "United States", "ca"),
            ("New York", "us", "ny"),
            ("N.Y.", "us", "ny"),
            ("District of Columbia", "us", "dc"),
            ("Washington, D.C.", None, "dc"),
            ("Puerto Rico", "us", "pr"),
            ("Guam", None, "gu"),
            ("U.S. Virgin Islands", "us", "vi"),
            ("American Samoa", "us", "as"),
            ("Hawai\u02bbi", "us", "hi"),
            ("Ontario", None, "ontario"),  # not a US state, country unknown: generic rule
            ("ON", "ca", "on"),
            ("QC", None, "qc"),
            ("Bavaria", "de", "bavaria"),
            ("Île-de-France", "fr", "îledefrance"),
            ("Nuevo León", "mx", "nuevoleón"),
            ("California", "mx", "california"),  # only US names are mapped
        ],
    )
    def test_valid(self, value, country, expected):
        assert normalize_state(value, country) == expected

    def test_unknown_us_state(self):
        with pytest.raises(ValueError, match="not a US state"):
            normalize_state("Narnia", "US")

    def test_no_letters(self):
        with pytest.raises(ValueError, match="contains no letters or digits"):
            normalize_state("--", "de")

    def test_user_data_country_is_used(self):
        assert normalize_user_data({"state": "California", "country": "US"}).data == {
            "st": h("ca"),
            "country": h("us"),
        }
        result = normalize_user_data({"st": "Narnia", "country": "US"})
        assert result.data == {"country": h("us")}
        assert rules(result) == ["st: not a US state, DC or territory name or two-letter code"]


# -------------------------------------------------------------------------------- zip


class TestZip:
    @pytest.mark.parametrize(
        ("value", "country", "expected"),
        [
            ("94025", "US", "94025"),
            ("94025-1234", "US", "94025"),
            ("94025 1234", "us", "94025"),
            ("940251234", "us", "94025"),
            (94025, "US", "94025"),
            (2134, "US", "02134"),
            ("2134", "US", "02134"),
            (501, "US", "00501"),
            ("94025-1234", None, "94025"),  # looks like ZIP+4, country unknown
            ("94025", None, "94025"),
            ("M1 1AE", "GB", "m11ae"),
            ("SW1A 1AA", "United Kingdom", "sw1a1aa"),
            ("M1 1AE", None, "m11ae"),
            ("K1A 0B1", "ca", "k1a0b1"),
            ("01310-100", "br", "01310100"),
            ("100-0001", "jp", "1000001"),
            ("75001", "fr", "75001"),
            (2134, None, "2134"),
        ],
    )
    def test_valid(self, value, country, expected):
        assert normalize_zip(value, country) == expected

    @pytest.mark.parametrize(
        ("value", "country", "rule"),
        [
            ("M1 1AE", "US", "not a US ZIP code"),
            ("12", "US", "not a US ZIP code"),
            ("1234567", "US", "not a US ZIP code"),
            ("#$%", "gb", "not a postal code"),
            ("münchen", "de", "not a postal code"),
            ("London", "gb", "not a postal code"),
            ("1", "fr", "not a postal code"),
        ],
    )
    def test_invalid(self, value, country, rule):
        with pytest.raises(ValueError, match=rule):
            normalize_zip(value, country)

    def test_default_country_pads_int_zip(self):
        assert normalize_user_data({"zip": 2134}, default_country="US").data == {"zp": h("02134")}

    @pytest.mark.parametrize("alias", ["zp", "zip", "zip_code", "postal_code", "postcode"])
    def test_aliases(self, alias):
        assert normalize_user_data({alias: "94025-1234"}).data == {"zp": h("94025")}


# ---------------------------------------------------------------------------- country


class TestCountry:
    @pytest.mark.parametrize(
        ("value", "expected"),
        [
            ("us", "us"),
            ("US", "us"),
            (" Us ", "us"),
            ("USA", "us"),
            ("U.S.A.", "us"),
            ("U.S.", "us"),
            ("United States", "us"),
            ("United States of America", "us"),
            ("America", "us"),
            ("UK", "gb"),
            ("GB", "gb"),
            ("GBR", "gb"),
            ("United Kingdom", "gb"),
            ("Great Britain", "gb"),
            ("England", "gb"),
            ("Scotland", "gb"),
            ("Deutschland", "de"),
            ("Germany", "de"),
            ("DEU", "de"),
            ("France", "fr"),
            ("French Republic", "fr"),  # official name
            ("Bolivia", "bo"),  # common name
            ("Côte d'Ivoire", "ci"),
            ("Ivory Coast", "ci"),
            ("Türkiye", "tr"),
            ("Turkey", "tr"),
            ("South Korea", "kr"),
            ("Korea, Republic of", "kr"),
            ("Viet Nam", "vn"),
            ("Vietnam", "vn"),
            ("Russia", "ru"),
            ("España", "es"),
            ("IND", "in"),
        ],
    )
    def test_valid(self, value, expected):
        assert normalize_country(value) == expected

    @pytest.mark.parametrize("value", ["Narnia", "XX", "ZZZ", "12", "U", "日本"])
    def test_invalid(self, value):
        with pytest.raises(ValueError, match="not a known ISO 3166-1 country"):
            normalize_country(value)

    def test_hashed_with_alias(self):
        assert normalize_user_data({"country_code": "United States"}).data == {"country": h("us")}


# ------------------------------------------------------------------------ external_id


class TestExternalId:
    @pytest.mark.parametrize(
        ("value", "expected"),
        [
            ("abc-123", "abc-123"),
            ("  User123  ", "user123"),
            ("User 123", "user123"),
            ("550E8400-E29B-41D4-A716-446655440000", "550e8400-e29b-41d4-a716-446655440000"),
            (12345, "12345"),
        ],
    )
    def test_normalized(self, value, expected):
        assert normalize_external_id(value) == expected

    def test_hashed_unlike_the_sdk(self):
        result = normalize_user_data({"external_id": "User123"})
        assert result.data == {"external_id": h("user123")}

    def test_int_and_list(self):
        result = normalize_user_data({"external_id": [12345, "12345", "abc"]})
        assert result.data == {"external_id": [h("12345"), h("abc")]}


# -------------------------------------------------------------------- unhashed keys


class TestUnhashedKeys:
    @pytest.mark.parametrize(
        ("value", "expected"),
        [
            ("203.0.113.7", "203.0.113.7"),
            (" 203.0.113.7 ", "203.0.113.7"),
            ("2001:DB8:0:0:0:0:0:1", "2001:db8::1"),
            ("::1", "::1"),
        ],
    )
    def test_client_ip_address(self, value, expected):
        assert normalize_user_data({"client_ip_address": value}).data == {
            "client_ip_address": expected
        }

    @pytest.mark.parametrize("value", ["999.1.1.1", "localhost", "1.2.3.4:80", "2001:db8::g"])
    def test_bad_client_ip_address(self, value):
        result = normalize_user_data({"client_ip_address": value})
        assert result.data == {}
        assert rules(result) == ["client_ip_address: not an IPv4 or IPv6 address"]

    def test_user_agent_kept_as_is(self):
        ua = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36"
        assert normalize_user_data({"client_user_agent": f" {ua} "}).data == {
            "client_user_agent": ua
        }

    @pytest.mark.parametrize(
        "value",
        [
            "fb.1.1596403881668.1116446470",
            "fb.0.1554763741205.AbCdEfGhIjKlMnOpQrStUvWxYz1234567890",
            "fb.1.1554763741205.IwAR2F4-dbP0l7Mn1IawQQGCINEz7PYXQvwjNwB_qa2ofrHyiLjcbCRxTDMgk",
            "fb.1.1554763741205.AbCdEf.AQ",  # newer fifth "appendix" part
        ],
    )
    def test_fbc_fbp_kept_with_case(self, value):
        result = normalize_user_data({"fbc": value, "fbp": value})
        assert result.data == {"fbc": value, "fbp": value}
        assert result.warnings == []

    @pytest.mark.parametrize(
        "value",
        [
            "1596403881668.1116446470",
            "fb.1.abc.123",
            "fb.1.123",
            "fb.1.123.",
            "fb.1.1.a.b.c",
            "fb.1.1.a b",
            "FB.1.1.a",
        ],
    )
    def test_malformed_fbc_fbp_dropped(self, value):
        result = normalize_user_data({"fbc": value, "fbp": value})
        assert result.data == {}
        assert [w.field for w in result.warnings] == ["fbc", "fbp"]
        assert all("cookie format" in w.rule for w in result.warnings)

    @pytest.mark.parametrize(
        "key",
        [
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
        ],
    )
    def test_identifiers_pass_through(self, key):
        assert normalize_user_data({key: " AbC-123 "}).data == {key: "AbC-123"}
        assert normalize_user_data({key: 1234567890}).data == {key: "1234567890"}

    def test_single_valued_keys_keep_the_first_value(self):
        result = normalize_user_data({"lead_id": ["111", "111", "222"]})
        assert result.data == {"lead_id": "111"}
        assert rules(result) == [
            "lead_id: takes a single value; the values after the first were dropped"
        ]

    def test_unhashed_key_is_never_hashed(self):
        value = "a" * 64
        assert normalize_user_data({"madid": value}).data == {"madid": value}


# -------------------------------------------------------------------- pre-hashed values


class TestPreHashed:
    @pytest.mark.parametrize("key", HASHED_KEYS)
    def test_passes_through_lowercased(self, key):
        digest = h("anything")
        result = normalize_user_data({key: f"  {digest.upper()} "})
        assert result.data == {key: digest}
        assert result.warnings == []

    def test_meta_vector_passes_through(self):
        digest = "8830eedd6c6b5ea97d181563a349476ca1bb25ace1f94b5c5e48d9cad727941b"
        assert normalize_user_data({"email": digest}).data == {"em": digest}

    def test_md5_is_not_treated_as_hashed(self):
        md5 = hashlib.md5(b"joe@eg.com").hexdigest()
        result = normalize_user_data({"em": md5})
        assert result.data == {}
        assert rules(result) == [
            "em: not a valid email address (expected one @ and a dotted domain)"
        ]


# ------------------------------------------------------------- structure and aliases


class TestStructure:
    def test_none_and_empty(self):
        assert normalize_user_data(None) == NormalizedUserData(data={}, warnings=[])
        assert normalize_user_data({}) == NormalizedUserData(data={}, warnings=[])

    def test_none_and_blank_values_skipped_silently(self):
        result = normalize_user_data(
            {"em": None, "ph": "", "fn": "   ", "ln": [None, ""], "fbc": None}
        )
        assert result == NormalizedUserData(data={}, warnings=[])

    def test_full_example(self):
        result = normalize_user_data(
            {
                "email": "Joe@Eg.com",
                "phone": "(650) 555-1212",
                "first_name": "Joe",
                "last_name": "Smith",
                "gender": "Male",
                "date_of_birth": "02/14/1990",
                "city": "Menlo Park",
                "state": "California",
                "zip_code": "94025-1234",
                "country": "USA",
                "external_id": "42",
                "client_ip_address": "203.0.113.7",
                "client_user_agent": "UA",
                "fbp": "fb.1.1596403881668.1116446470",
            }
        )
        assert result.warnings == []
        assert result.data == {
            "em": "8830eedd6c6b5ea97d181563a349476ca1bb25ace1f94b5c5e48d9cad727941b",
            "ph": "e323ec626319ca94ee8bff2e4c87cf613be6ea19919ed1364124e16807ab3176",
            "fn": h("joe"),
            "ln": h("smith"),
            "ge": h("m"),
            "db": h("19900214"),
            "ct": h("menlopark"),
            "st": h("ca"),
            "zp": h("94025"),
            "country": h("us"),
            "external_id": h("42"),
            "client_ip_address": "203.0.113.7",
            "client_user_agent": "UA",
            "fbp": "fb.1.1596403881668.1116446470",
        }
        assert list(result.data) == [
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
            "client_ip_address",
            "client_user_agent",
            "fbp",
        ]

    @pytest.mark.parametrize(
        ("alias", "key"),
        [
            ("email", "em"),
            ("phone", "ph"),
            ("first_name", "fn"),
            ("last_name", "ln"),
            ("gender", "ge"),
            ("date_of_birth", "db"),
            ("birthday", "db"),
            ("city", "ct"),
            ("state", "st"),
            ("zip", "zp"),
            ("zip_code", "zp"),
            ("postal_code", "zp"),
            ("postcode", "zp"),
            ("country_code", "country"),
            ("Email", "em"),
            (" EM ", "em"),
        ],
    )
    def test_aliases(self, alias, key):
        digest = h("x")
        assert normalize_user_data({alias: digest}).data == {key: digest}

    def test_single_value_gives_string_list_gives_list(self):
        assert normalize_user_data({"em": "joe@eg.com"}).data == {"em": h("joe@eg.com")}
        assert normalize_user_data({"em": ["joe@eg.com"]}).data == {"em": [h("joe@eg.com")]}
        assert normalize_user_data({"em": ("joe@eg.com",)}).data == {"em": [h("joe@eg.com")]}

    def test_list_deduplicated_in_order(self):
        result = normalize_user_data({"em": ["b@eg.com", "A@eg.com", " b@EG.com", "a@eg.com"]})
        assert result.data == {"em": [h("b@eg.com"), h("a@eg.com")]}

    def test_alias_and_canonical_merge(self):
        result = normalize_user_data({"em": "a@eg.com", "email": "b@eg.com"})
        assert result.data == {"em": [h("a@eg.com"), h("b@eg.com")]}
        same = normalize_user_data({"em": "a@eg.com", "email": "A@EG.COM"})
        assert same.data == {"em": h("a@eg.com")}

    def test_list_elements_that_fail_are_dropped(self):
        result = normalize_user_data({"em": ["joe@eg.com", "nope", 3, ["x@y.z"]]})
        assert result.data == {"em": [h("joe@eg.com")]}
        assert rules(result) == [
            "em: not a valid email address (expected one @ and a dotted domain)",
            "em: unsupported value type int",
            "em: unsupported value type list",
        ]

    def test_all_elements_failing_omits_the_key(self):
        result = normalize_user_data({"em": ["nope", "also nope"]})
        assert result.data == {}
        assert len(result.warnings) == 1  # identical warnings are reported once

    @pytest.mark.parametrize(
        ("value", "type_name"),
        [
            (1.5, "float"),
            (b"joe@eg.com", "bytes"),
            ({"a": 1}, "dict"),
            ({"x"}, "set"),
            (object(), "object"),
        ],
    )
    def test_unsupported_types(self, value, type_name):
        result = normalize_user_data({"em": value})
        assert result.data == {}
        assert rules(result) == [f"em: unsupported value type {type_name}"]

    def test_unknown_keys_dropped_and_named(self):
        result = normalize_user_data({"ssn": "123-45-6789", "em": "joe@eg.com"})
        assert result.data == {"em": h("joe@eg.com")}
        assert rules(result) == ["ssn: unknown user_data key; its value was dropped"]

    def test_unknown_key_that_may_be_personal_data_is_not_named(self):
        user_data: dict[Any, str] = {"joe@eg.com": "x", "Joe Smith": "y", 7: "z"}
        result = normalize_user_data(user_data)
        assert result.data == {}
        text = " ".join(rules(result))
        assert "joe" not in text.lower()
        assert "7" not in text
        assert [w.field for w in result.warnings] == ["user_data"] * 2

    def test_not_a_mapping(self):
        result = normalize_user_data(["joe@eg.com"])  # type: ignore[arg-type]
        assert result.data == {}
        assert [w.field for w in result.warnings] == ["user_data"]

    def test_surrogates_do_not_crash(self):
        result = normalize_user_data({"em": "jo\ud800e@eg.com", "external_id": "\udfff"})
        assert result.data == {}
        assert rules(result) == [
            "em: not valid Unicode text",
            "external_id: not valid Unicode text",
        ]

    def test_every_key_is_known(self):
        assert len(set(HASHED_KEYS) | set(UNHASHED_KEYS)) == 25


# ------------------------------------------------------------------------- privacy


SECRET_INPUTS = {
    "em": ["joesecret@nowhere", "joesecret"],
    "ph": ["joesecret", "555-SECRET", "0 123 secret"],
    "fn": ["1234567", "!!!!"],
    "ge": ["secretgender"],
    "db": ["31/31/1990", "secretdate", "1850-01-01", "2999-12-31"],
    "ct": ["999999"],
    "st": ["Secretstate"],
    "zp": ["secret!!", "#secret#"],
    "country": ["Secretland"],
    "client_ip_address": ["10.0.0.999", "secret-host"],
    "fbc": ["secretfbc"],
    "fbp": ["fb.x.secret"],
}


class TestNoRawValuesInMessages:
    def test_warnings(self):
        user_data = dict(SECRET_INPUTS)
        user_data["st"] = ["Secretstate"]
        result = normalize_user_data({**user_data, "country": ["US", "Secretland"]})
        assert result.warnings
        text = " | ".join(str(w) for w in result.warnings) + repr(result.warnings)
        for values in SECRET_INPUTS.values():
            for value in values:
                assert value not in text
                assert value.lower() not in text.lower() or len(value) < 4
        assert "secret" not in text.lower()

    @pytest.mark.parametrize(
        ("function", "value"),
        [
            (normalize_email, "joesecret"),
            (normalize_phone, "555-SECRET"),
            (normalize_name, "123456"),
            (normalize_gender, "secretgender"),
            (normalize_date_of_birth, "secretdate"),
            (normalize_date_of_birth, "1990-02-31"),
            (normalize_city, "999999"),
            (normalize_zip, "#secret#"),
            (normalize_country, "Secretland"),
        ],
    )
    def test_exceptions(self, function, value):
        with pytest.raises(ValueError, match=r".") as info:
            function(value)
        assert value not in str(info.value)
        assert "secret" not in str(info.value).lower()
        assert info.value.__cause__ is None
        assert info.value.__suppress_context__ or info.value.__context__ is None

    def test_state_and_zip_exceptions_for_us(self):
        for function, value in ((normalize_state, "Secretstate"), (normalize_zip, "secret")):
            with pytest.raises(ValueError, match=r".") as info:
                function(value, "US")
            assert "secret" not in str(info.value).lower()
