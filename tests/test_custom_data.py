"""normalize_custom_data: JSON-ready custom_data, warnings that name fields, never raising."""

from __future__ import annotations

import datetime as dt
import json
import math
import uuid
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from django_capi.normalization.custom_data import CustomDataWarning, normalize_custom_data


def normalize(data: Any) -> tuple[dict[str, Any], list[CustomDataWarning]]:
    return normalize_custom_data(data)


def fields(warnings: list[CustomDataWarning]) -> list[str]:
    return [w.field for w in warnings]


# -- the warning type ---------------------------------------------------------------------


def test_warning_as_dict_and_str():
    warning = CustomDataWarning("custom_data.value", "must be a number")
    assert warning.as_dict() == {"field": "custom_data.value", "rule": "must be a number"}
    assert str(warning) == "custom_data.value: must be a number"


def test_warning_is_frozen():
    warning = CustomDataWarning("custom_data.value", "must be a number")
    with pytest.raises(AttributeError):
        warning.field = "x"  # type: ignore[misc]


# -- empty input ----------------------------------------------------------------------------


def test_none_gives_empty_dict_without_warnings():
    assert normalize(None) == ({}, [])


def test_empty_dict():
    assert normalize({}) == ({}, [])


@pytest.mark.parametrize("bad", ["value=12", 12, [("value", 12)], b"{}"])
def test_not_a_mapping_is_dropped_with_warning(bad):
    data, warnings = normalize(bad)
    assert data == {}
    assert fields(warnings) == ["custom_data"]


def test_none_values_are_dropped_silently():
    data, warnings = normalize({"value": None, "currency": None, "my_key": None})
    assert data == {}
    assert warnings == []


# -- amounts ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (Decimal("12.50"), 12.5),
        (Decimal("12"), 12),
        (Decimal("0.1"), 0.1),
        (12, 12),
        (12.25, 12.25),
        ("12.50", 12.5),
        (" 12 ", 12),
        ("-3.5", -3.5),
        ("1e2", 100),
        (".5", 0.5),
    ],
)
@pytest.mark.parametrize("key", ["value", "predicted_ltv", "net_revenue"])
def test_amounts_become_json_numbers(key, raw, expected):
    data, warnings = normalize({key: raw})
    assert data == {key: expected}
    assert type(data[key]) is type(expected)
    assert warnings == []


def test_ints_stay_ints():
    data, _ = normalize({"value": 100})
    assert data["value"] == 100
    assert isinstance(data["value"], int)


@pytest.mark.parametrize(
    "raw",
    [
        float("nan"),
        float("inf"),
        -float("inf"),
        Decimal("NaN"),
        Decimal("sNaN"),
        Decimal("Infinity"),
        Decimal("1e400"),
        "NaN",
        "inf",
        "1e400",
        "12,50",
        "12 EUR",
        "",
        "abc",
        True,
        b"12",
        [12],
        {"amount": 12},
        object(),
    ],
)
def test_bad_amounts_are_dropped_with_a_warning(raw):
    data, warnings = normalize({"value": raw})
    assert "value" not in data
    assert fields(warnings) == ["custom_data.value"]
    assert "number" in warnings[0].rule


def test_huge_int_amount_becomes_float():
    data, _ = normalize({"value": 2**60})
    assert data["value"] == float(2**60)


# -- currency --------------------------------------------------------------------------------


def test_currency_trimmed_and_uppercased():
    assert normalize({"currency": "  eur "}) == ({"currency": "EUR"}, [])


def test_currency_validity_is_left_to_validation():
    data, warnings = normalize({"currency": "zzz"})
    assert data == {"currency": "ZZZ"}
    assert warnings == []


def test_currency_not_text_is_dropped():
    data, warnings = normalize({"currency": 978})
    assert data == {}
    assert fields(warnings) == ["custom_data.currency"]


# -- content_ids -----------------------------------------------------------------------------


def test_content_ids_become_strings():
    data, warnings = normalize({"content_ids": [1, "SKU-2", Decimal("3"), 4.0, " sku5 "]})
    assert data == {"content_ids": ["1", "SKU-2", "3", "4", "sku5"]}
    assert warnings == []


@pytest.mark.parametrize(("raw", "expected"), [("SKU-1", ["SKU-1"]), (42, ["42"])])
def test_single_content_id_becomes_a_list(raw, expected):
    assert normalize({"content_ids": raw}) == ({"content_ids": expected}, [])


def test_content_ids_tuple_and_uuid():
    some_id = uuid.UUID("12345678-1234-5678-1234-567812345678")
    data, _ = normalize({"content_ids": ("a", some_id)})
    assert data == {"content_ids": ["a", str(some_id)]}


def test_content_ids_set_is_sorted():
    data, _ = normalize({"content_ids": {"b", "a", "c"}})
    assert data == {"content_ids": ["a", "b", "c"]}


def test_bad_content_ids_are_dropped_with_their_position():
    data, warnings = normalize({"content_ids": ["ok", b"raw", 1.5, None, True]})
    assert data == {"content_ids": ["ok"]}
    assert fields(warnings) == [
        "custom_data.content_ids[1]",
        "custom_data.content_ids[2]",
        "custom_data.content_ids[4]",
    ]


def test_content_ids_mapping_is_dropped():
    data, warnings = normalize({"content_ids": {"id": 1}})
    assert data == {}
    assert fields(warnings) == ["custom_data.content_ids"]


# -- contents --------------------------------------------------------------------------------


def test_contents_items_are_normalized():
    data, warnings = normalize(
        {
            "contents": [
                {
                    "id": 123,
                    "quantity": "2",
                    "item_price": Decimal("9.90"),
                    "delivery_category": " Home_Delivery ",
                    "color": "red",
                    "size": None,
                },
                {"id": "sku-2", "quantity": 1.0, "item_price": "5"},
            ]
        }
    )
    assert warnings == []
    assert data == {
        "contents": [
            {
                "id": "123",
                "quantity": 2,
                "item_price": 9.9,
                "delivery_category": "home_delivery",
                "color": "red",
            },
            {"id": "sku-2", "quantity": 1, "item_price": 5},
        ]
    }


def test_single_content_item_becomes_a_list():
    data, _ = normalize({"contents": {"id": "a", "quantity": 1}})
    assert data == {"contents": [{"id": "a", "quantity": 1}]}


def test_bad_content_values_are_named_by_position():
    data, warnings = normalize(
        {
            "contents": [
                {"id": "a", "quantity": 1},
                "not an item",
                {"id": "c", "quantity": 1.5, "item_price": "cheap", "blob": b"x"},
            ]
        }
    )
    assert data == {"contents": [{"id": "a", "quantity": 1}, {"id": "c"}]}
    assert fields(warnings) == [
        "custom_data.contents[1]",
        "custom_data.contents[2].quantity",
        "custom_data.contents[2].item_price",
        "custom_data.contents[2].blob",
    ]


def test_contents_not_a_list_is_dropped():
    data, warnings = normalize({"contents": "sku-1"})
    assert data == {}
    assert fields(warnings) == ["custom_data.contents"]


def test_negative_quantity_is_kept_for_validation_to_report():
    data, _ = normalize({"contents": [{"id": "a", "quantity": -1}]})
    assert data == {"contents": [{"id": "a", "quantity": -1}]}


# -- other known fields ---------------------------------------------------------------------


@pytest.mark.parametrize(("raw", "expected"), [(3, 3), ("3", 3), (3.0, 3), (Decimal("3"), 3)])
def test_num_items_is_an_int(raw, expected):
    data, warnings = normalize({"num_items": raw})
    assert data == {"num_items": expected}
    assert isinstance(data["num_items"], int)
    assert warnings == []


@pytest.mark.parametrize("raw", [2.5, "two", True, [2]])
def test_bad_num_items_is_dropped(raw):
    data, warnings = normalize({"num_items": raw})
    assert data == {}
    assert fields(warnings) == ["custom_data.num_items"]


@pytest.mark.parametrize(
    ("raw", "expected"),
    [(1234, "1234"), ("  A-1 ", "A-1"), (uuid.UUID(int=1), str(uuid.UUID(int=1)))],
)
def test_order_id_is_a_string(raw, expected):
    assert normalize({"order_id": raw}) == ({"order_id": expected}, [])


@pytest.mark.parametrize(
    "key", ["content_name", "content_category", "search_string", "status", "order_id"]
)
def test_string_fields(key):
    assert normalize({key: " Blue shoes "}) == ({key: "Blue shoes"}, [])
    data, warnings = normalize({key: {"nested": 1}})
    assert data == {}
    assert fields(warnings) == [f"custom_data.{key}"]


def test_empty_strings_are_dropped_silently():
    assert normalize({"content_name": "   ", "order_id": ""}) == ({}, [])


@pytest.mark.parametrize(
    ("key", "raw", "expected"),
    [
        ("content_type", "Product", "product"),
        ("content_type", "product_group", "product_group"),
        ("delivery_category", " CURBSIDE", "curbside"),
        ("content_type", "anything", "anything"),  # validation rejects it, with a clear rule
    ],
)
def test_choice_fields_are_lowercased(key, raw, expected):
    assert normalize({key: raw}) == ({key: expected}, [])


# -- custom keys ----------------------------------------------------------------------------


def test_custom_keys_are_made_json_ready():
    when = dt.datetime(2025, 1, 2, 3, 4, 5, tzinfo=dt.UTC)
    some_id = uuid.UUID(int=7)
    data, warnings = normalize(
        {
            "coupon": "SPRING",
            "score": Decimal("1.5"),
            "count": Decimal("4"),
            "flag": False,
            "at": when,
            "day": dt.date(2025, 1, 2),
            "ref": some_id,
            "pair": (1, 2),
            "nested": {"a": [Decimal("0.5"), (dt.date(2025, 1, 1),)], "b": None},
            "list_with_null": [1, None, 2],
        }
    )
    assert warnings == []
    assert data == {
        "coupon": "SPRING",
        "score": 1.5,
        "count": 4,
        "flag": False,
        "at": "2025-01-02T03:04:05+00:00",
        "day": "2025-01-02",
        "ref": str(some_id),
        "pair": [1, 2],
        "nested": {"a": [0.5, ["2025-01-01"]]},
        "list_with_null": [1, None, 2],
    }
    json.dumps(data, allow_nan=False)


def test_unserializable_custom_values_are_dropped_and_named():
    data, warnings = normalize(
        {
            "ok": 1,
            "obj": object(),
            "raw": b"bytes",
            "nan": float("nan"),
            "deep": {"inner": [1, bytearray(b"x")]},
        }
    )
    assert data == {"ok": 1, "deep": {"inner": [1]}}
    assert fields(warnings) == [
        "custom_data.obj",
        "custom_data.raw",
        "custom_data.nan",
        "custom_data.deep.inner[1]",
    ]


def test_warnings_never_contain_the_value():
    secret = "jane.doe@example.com"
    _, warnings = normalize({"value": secret, "contents": [{"id": "a", "quantity": secret}]})
    assert warnings
    assert all(secret not in str(w) for w in warnings)


def test_non_text_keys_are_dropped():
    data, warnings = normalize({1: "a", "b": 2})
    assert data == {"b": 2}
    assert fields(warnings) == ["custom_data"]


def test_lone_surrogates_are_dropped():
    data, warnings = normalize({"note": "bad \ud800 text", "content_name": "\udfff"})
    assert data == {}
    assert fields(warnings) == ["custom_data.note", "custom_data.content_name"]


def test_self_containing_structure_does_not_recurse_forever():
    loop: list[Any] = []
    loop.append(loop)
    data, warnings = normalize({"loop": loop})
    json.dumps(data)
    assert warnings
    assert warnings[0].field.startswith("custom_data.loop")


def test_broken_objects_are_dropped_not_raised():
    class Broken(dict):  # type: ignore[type-arg]
        def items(self):
            raise RuntimeError("boom")

    data, warnings = normalize({"ok": 1, "bad": Broken(a=1)})
    assert data == {"ok": 1}
    assert fields(warnings) == ["custom_data.bad"]


def test_input_is_not_modified():
    original = {"value": Decimal("1.50"), "contents": [{"id": 1}]}
    normalize(original)
    assert original == {"value": Decimal("1.50"), "contents": [{"id": 1}]}


# -- properties -------------------------------------------------------------------------------

_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.integers(min_value=-(10**400), max_value=10**400),
    st.floats(),
    st.decimals(),
    st.text(),
    st.binary(max_size=4),
    st.just(dt.datetime(2025, 1, 2, 3, 4, 5)),
    st.just(dt.date(2025, 1, 2)),
    st.uuids(),
    st.just(object()),
    st.just(float("nan")),
)
_values = st.recursive(
    _scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=4),
        st.tuples(children, children),
        st.dictionaries(st.text(max_size=8), children, max_size=4),
    ),
    max_leaves=6,
)
_known_keys = st.sampled_from(
    [
        "value",
        "currency",
        "content_ids",
        "contents",
        "num_items",
        "order_id",
        "content_type",
        "delivery_category",
        "predicted_ltv",
        "net_revenue",
        "search_string",
        "status",
    ]
)
_contents = st.lists(
    st.dictionaries(
        st.sampled_from(["id", "quantity", "item_price", "delivery_category", "x"]),
        _scalars,
        max_size=5,
    ),
    max_size=3,
)
_custom_data = st.dictionaries(
    st.one_of(_known_keys, st.text(max_size=10), st.integers()),
    st.one_of(_values, _contents),
    max_size=8,
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_custom_data)
def test_never_raises_and_result_is_strict_json(raw):
    data, warnings = normalize_custom_data(raw)
    text = json.dumps(data, allow_nan=False)  # no NaN, no Decimal, no bytes
    assert isinstance(text, str)
    assert all(isinstance(w, CustomDataWarning) for w in warnings)
    for key in ("value", "predicted_ltv", "net_revenue"):
        if key in data:
            assert isinstance(data[key], int | float)
            assert not isinstance(data[key], bool)
            assert math.isfinite(data[key])
    if "content_ids" in data:
        assert all(isinstance(item, str) for item in data["content_ids"])
    for item in data.get("contents", []):
        assert isinstance(item.get("id", ""), str)
        assert isinstance(item.get("quantity", 0), int)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_custom_data)
def test_normalizing_twice_changes_nothing(raw):
    once, _ = normalize_custom_data(raw)
    twice, warnings = normalize_custom_data(once)
    assert twice == once
    assert warnings == []


@settings(max_examples=100, deadline=None)
@given(st.one_of(_values, st.lists(_values), st.text()))
def test_never_raises_on_non_mappings(raw):
    data, _ = normalize_custom_data(raw)
    json.dumps(data, allow_nan=False)
