"""validate_event and the age rules, against the contract in capi-contract.md."""

from __future__ import annotations

import copy
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from django_capi.normalization.custom_data import normalize_custom_data
from django_capi.validation import (
    ACTION_SOURCES,
    MAX_AGE,
    STANDARD_EVENTS,
    EventValidationError,
    ValidationIssue,
    ensure_valid,
    event_age_limit,
    is_too_old,
    validate_event,
)

NOW = datetime(2026, 3, 1, 12, 0, 0, tzinfo=UTC)
NOW_TS = int(NOW.timestamp())
HASH = "a" * 64
OTHER_HASH = "0123456789abcdef" * 4
EXTINFO = ["a2", "com.example.app", "1.0", "1.0 (1)", "14", "Pixel 8", "en_US", "GMT", "", "1080", "2400", "2.6", "8", "128", "64", "Europe/Paris"]  # fmt: skip  # noqa: E501


def website_event(**overrides: Any) -> dict[str, Any]:
    event: dict[str, Any] = {
        "event_name": "PageView",
        "event_time": NOW_TS - 60,
        "event_id": "evt-1",
        "action_source": "website",
        "event_source_url": "https://shop.example.com/products/1",
        "user_data": {
            "em": [HASH],
            "client_ip_address": "203.0.113.9",
            "client_user_agent": "Mozilla/5.0",
            "fbp": "fb.1.1700000000000.123456789",
        },
    }
    event.update(overrides)
    return event


def server_event(action_source: str, **overrides: Any) -> dict[str, Any]:
    """A non-web event: only action_source and customer information are needed."""
    event: dict[str, Any] = {
        "event_name": "Lead",
        "event_time": NOW_TS - 3600,
        "event_id": "evt-2",
        "action_source": action_source,
        "user_data": {"em": HASH, "ph": OTHER_HASH},
    }
    event.update(overrides)
    return event


def app_event(**overrides: Any) -> dict[str, Any]:
    event = server_event(
        "app", app_data={"advertiser_tracking_enabled": True, "extinfo": list(EXTINFO)}
    )
    event.update(overrides)
    return event


def purchase(**custom: Any) -> dict[str, Any]:
    custom_data = {"value": 12.5, "currency": "USD"}
    custom_data.update(custom)
    return website_event(event_name="Purchase", custom_data=custom_data)


def check(payload: Any, **kwargs: Any) -> list[ValidationIssue]:
    kwargs.setdefault("now", NOW)
    return validate_event(payload, **kwargs)


def issue_fields(payload: Any, **kwargs: Any) -> list[str]:
    return [issue.field for issue in check(payload, **kwargs)]


def only_issue(payload: Any, **kwargs: Any) -> ValidationIssue:
    issues = check(payload, **kwargs)
    assert len(issues) == 1, issues
    return issues[0]


def with_user_data(event: dict[str, Any], user_data: Any) -> dict[str, Any]:
    event = copy.deepcopy(event)
    event["user_data"] = user_data
    return event


# -- the public types ------------------------------------------------------------------------


def test_issue_as_dict_and_str():
    issue = ValidationIssue("custom_data.currency", "must be a three-letter ISO 4217 code")
    assert issue.as_dict() == {
        "field": "custom_data.currency",
        "rule": "must be a three-letter ISO 4217 code",
    }
    assert str(issue) == "custom_data.currency: must be a three-letter ISO 4217 code"


def test_error_lists_every_issue():
    issues = [ValidationIssue("event_name", "is required"), ValidationIssue("event_time", "old")]
    error = EventValidationError(issues)
    assert isinstance(error, ValueError)
    assert error.issues == issues
    assert str(error) == "event_name: is required; event_time: old"


def test_ensure_valid_raises_with_all_issues():
    with pytest.raises(EventValidationError) as excinfo:
        ensure_valid({"event_name": ""}, now=NOW)
    fields = [issue.field for issue in excinfo.value.issues]
    assert {"event_name", "event_time", "action_source", "user_data"} <= set(fields)
    ensure_valid(website_event(), now=NOW)


def test_constants():
    assert len(ACTION_SOURCES) == 9
    assert "Purchase" in STANDARD_EVENTS
    assert len(STANDARD_EVENTS) == 18
    assert MAX_AGE["website"] == timedelta(days=7)
    assert MAX_AGE["physical_store"] == timedelta(days=62)
    assert set(MAX_AGE) == ACTION_SOURCES


def test_event_age_limit():
    assert event_age_limit("website") == timedelta(days=7)
    assert event_age_limit("physical_store") == timedelta(days=62)
    assert event_age_limit("unknown") == timedelta(days=7)


# -- valid events for every action source ---------------------------------------------------


def test_valid_website_event():
    assert check(website_event()) == []


def test_valid_app_event():
    assert check(app_event()) == []


def test_valid_ios_app_event_with_tuple_extinfo():
    extinfo = ("i2", *EXTINFO[1:])
    event = app_event(app_data={"advertiser_tracking_enabled": False, "extinfo": extinfo})
    assert check(event) == []


def test_valid_physical_store_event_30_days_old():
    event = server_event("physical_store", event_time=NOW_TS - 30 * 86400)
    assert check(event) == []


@pytest.mark.parametrize(
    "source", ["phone_call", "chat", "email", "system_generated", "business_messaging", "other"]
)
def test_valid_non_web_events(source):
    assert check(server_event(source)) == []


def test_every_action_source_has_a_valid_example():
    examples = {
        "website": website_event(),
        "app": app_event(),
        **{s: server_event(s) for s in ACTION_SOURCES - {"website", "app"}},
    }
    assert set(examples) == ACTION_SOURCES
    for event in examples.values():
        assert check(event) == []


@pytest.mark.parametrize("name", sorted(STANDARD_EVENTS - {"Purchase"}))
def test_standard_event_names(name):
    assert check(website_event(event_name=name)) == []


@pytest.mark.parametrize("name", ["NewsletterSignup", "purchase", "Bought 3 items", "Événement"])
def test_custom_event_names(name):
    assert check(website_event(event_name=name)) == []


def test_full_valid_purchase():
    event = purchase(
        content_ids=["sku-1", "sku-2"],
        content_type="product",
        contents=[
            {"id": "sku-1", "quantity": 2, "item_price": 5.0, "delivery_category": "curbside"},
            {"id": "sku-2", "quantity": 1, "item_price": 2},
        ],
        num_items=3,
        order_id="A-1",
        delivery_category="home_delivery",
        predicted_ltv=100,
        net_revenue=10.5,
        my_custom_key={"anything": [1, 2]},
    )
    event.update(
        referrer_url="http://example.org/",
        opt_out=False,
        data_processing_options=["LDU"],
        data_processing_options_country=1,
        data_processing_options_state=1000,
        messaging_channel="whatsapp",
    )
    assert check(event) == []


def test_normalized_custom_data_passes_validation():
    custom, warnings = normalize_custom_data(
        {"value": Decimal("19.90"), "currency": " eur", "contents": [{"id": 7, "quantity": "2"}]}
    )
    assert warnings == []
    assert check(website_event(event_name="Purchase", custom_data=custom)) == []


# -- event_name, event_id ----------------------------------------------------------------


def test_event_name_required():
    event = website_event()
    del event["event_name"]
    assert only_issue(event).field == "event_name"


@pytest.mark.parametrize("name", ["", "   ", 12, ["Purchase"]])
def test_event_name_must_be_non_empty_text(name):
    issue = only_issue(website_event(event_name=name))
    assert issue.field == "event_name"
    assert "text" in issue.rule


@pytest.mark.parametrize("event_id", ["", " ", 123, {"id": 1}])
def test_event_id_must_be_non_empty_text(event_id):
    assert only_issue(website_event(event_id=event_id)).field == "event_id"


def test_event_id_is_optional():
    event = website_event()
    del event["event_id"]
    assert check(event) == []


# -- event_time -------------------------------------------------------------------------------


def test_event_time_required():
    event = website_event()
    del event["event_time"]
    issue = only_issue(event)
    assert issue.field == "event_time"
    assert "required" in issue.rule


@pytest.mark.parametrize("value", [float(NOW_TS), str(NOW_TS), True, NOW, None])
def test_event_time_must_be_an_int(value):
    event = website_event(event_time=value)
    assert issue_fields(event) == ["event_time"]


def test_event_time_seven_days_minus_a_minute_is_accepted():
    event = website_event(event_time=NOW_TS - 7 * 86400 + 60)
    assert check(event) == []
    assert not is_too_old(event, now=NOW)


def test_event_time_exactly_seven_days_is_accepted():
    event = website_event(event_time=NOW_TS - 7 * 86400)
    assert check(event) == []


def test_event_time_seven_days_plus_a_minute_is_rejected():
    event = website_event(event_time=NOW_TS - 7 * 86400 - 60)
    issue = only_issue(event)
    assert issue.field == "event_time"
    assert "7 days" in issue.rule
    assert is_too_old(event, now=NOW)


def test_physical_store_events_may_be_62_days_old():
    ok = server_event("physical_store", event_time=NOW_TS - 62 * 86400 + 60)
    too_old = server_event("physical_store", event_time=NOW_TS - 62 * 86400 - 60)
    assert check(ok) == []
    issue = only_issue(too_old)
    assert issue.field == "event_time"
    assert "62 days" in issue.rule


@pytest.mark.parametrize("source", sorted(ACTION_SOURCES - {"physical_store"}))
def test_other_sources_may_not_be_30_days_old(source):
    event = app_event() if source == "app" else server_event(source)
    event["event_time"] = NOW_TS - 30 * 86400
    if source == "website":
        event = website_event(event_time=event["event_time"])
    assert issue_fields(event) == ["event_time"]


def test_future_within_clock_skew_is_accepted():
    assert check(website_event(event_time=NOW_TS + 299)) == []
    assert check(website_event(event_time=NOW_TS + 300)) == []


def test_future_beyond_clock_skew_is_rejected():
    issue = only_issue(website_event(event_time=NOW_TS + 301))
    assert issue.field == "event_time"
    assert "future" in issue.rule


def test_clock_skew_is_configurable():
    event = website_event(event_time=NOW_TS + 600)
    assert check(event, max_clock_skew=900) == []
    assert issue_fields(event, max_clock_skew=0) == ["event_time"]


def test_milliseconds_are_explained():
    issue = only_issue(website_event(event_time=NOW_TS * 1000))
    assert "milliseconds" in issue.rule


def test_naive_now_is_read_as_utc():
    naive = NOW.replace(tzinfo=None)
    assert check(website_event(event_time=NOW_TS - 60), now=naive) == []
    assert issue_fields(website_event(event_time=NOW_TS + 3600), now=naive) == ["event_time"]


def test_default_now_is_the_current_time():
    recent = website_event(event_time=int(datetime.now(UTC).timestamp()) - 10)
    assert validate_event(recent) == []
    assert validate_event(website_event(event_time=NOW_TS - 365 * 86400))


def test_is_too_old_margin_and_unusable_payloads():
    event = website_event(event_time=NOW_TS - 7 * 86400 + 1800)
    assert not is_too_old(event, now=NOW)
    assert is_too_old(event, now=NOW, margin=timedelta(hours=1))
    assert not is_too_old({}, now=NOW)
    assert not is_too_old({"event_time": "yesterday"}, now=NOW)
    assert is_too_old({"event_time": 0, "action_source": ["unhashable"]}, now=NOW)
    assert not is_too_old("not a payload", now=NOW)  # type: ignore[arg-type]


# -- action_source ---------------------------------------------------------------------------


def test_action_source_required():
    event = server_event("email")
    del event["action_source"]
    issue = only_issue(event)
    assert issue.field == "action_source"
    assert "required" in issue.rule


@pytest.mark.parametrize("source", ["Website", "web", "", 3, ["website"]])
def test_action_source_must_be_known(source):
    issue = only_issue(server_event(source))
    assert issue.field == "action_source"
    assert "physical_store" in issue.rule  # the rule lists the allowed values


# -- URLs -----------------------------------------------------------------------------------


def test_website_needs_event_source_url():
    event = website_event()
    del event["event_source_url"]
    assert issue_fields(event) == ["event_source_url"]


@pytest.mark.parametrize(
    "url",
    [
        "ftp://example.com/file",
        "javascript:alert(1)",
        "/products/1",
        "shop.example.com/products",
        "https://",
        "http://[::1",
        "",
        42,
    ],
)
def test_event_source_url_must_be_http(url):
    assert issue_fields(website_event(event_source_url=url)) == ["event_source_url"]


@pytest.mark.parametrize("url", ["http://example.com", "HTTPS://Example.com/a?b=c#d"])
def test_http_urls_accepted(url):
    assert check(website_event(event_source_url=url, referrer_url=url)) == []


def test_non_web_event_source_url_is_checked_when_given():
    assert issue_fields(server_event("email", event_source_url="mailto:a@b.c")) == [
        "event_source_url"
    ]
    assert check(server_event("email", event_source_url="https://example.com")) == []


@pytest.mark.parametrize("url", ["ftp://example.com", "android-app://com.example", "/"])
def test_referrer_url_must_be_http(url):
    assert issue_fields(website_event(referrer_url=url)) == ["referrer_url"]


# -- user_data --------------------------------------------------------------------------------


def test_website_needs_client_user_agent():
    event = website_event()
    del event["user_data"]["client_user_agent"]
    assert issue_fields(event) == ["user_data.client_user_agent"]


def test_non_web_events_do_not_need_a_user_agent():
    assert check(server_event("phone_call", user_data={"ph": HASH})) == []


@pytest.mark.parametrize(
    "user_data", [None, {}, {"em": ""}, {"em": []}, {"em": [None, " "], "fbp": None}, {"x": {}}]
)
def test_user_data_needs_customer_information(user_data):
    event = server_event("email")
    if user_data is None:
        del event["user_data"]
    else:
        event["user_data"] = user_data
    issue = only_issue(event)
    assert issue.field == "user_data"
    assert "at least one" in issue.rule


@pytest.mark.parametrize("user_data", ["em=abc", [HASH], 5])
def test_user_data_must_be_a_mapping(user_data):
    assert issue_fields(server_event("email", user_data=user_data)) == ["user_data"]


@pytest.mark.parametrize(
    "keys",
    [
        {"ct", "country", "st", "zp", "ge", "client_user_agent"},
        {"ct", "zp"},
        {"country"},
        {"client_user_agent"},
        {"db", "client_user_agent"},
        {"db"},
        {"fn", "ge"},
        {"ln", "ge"},
        {"fn"},
        {"ge"},
    ],
)
def test_too_broad_customer_information_is_rejected(keys):
    user_data = {key: "Mozilla/5.0" if key == "client_user_agent" else HASH for key in keys}
    issue = only_issue(server_event("chat", user_data=user_data))
    assert issue.field == "user_data"
    assert "too broad" in issue.rule


@pytest.mark.parametrize(
    "keys",
    [
        {"fn", "ln"},
        {"fn", "ln", "ge"},
        {"db", "ge"},
        {"ct", "db"},
        {"ge", "client_user_agent"} | {"em"},
        {"external_id"},
        {"client_ip_address", "client_user_agent"},
        {"fbc"},
    ],
)
def test_enough_customer_information(keys):
    values = {"client_user_agent": "Mozilla/5.0", "client_ip_address": "203.0.113.9"}
    user_data = {key: values.get(key, HASH) for key in keys}
    assert check(server_event("chat", user_data=user_data)) == []


def test_empty_values_do_not_count_for_broadness():
    user_data = {"fn": HASH, "ge": HASH, "em": "", "ph": []}
    assert issue_fields(server_event("chat", user_data=user_data)) == ["user_data"]


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("em", "jane@example.com"),
        ("ph", "16505551212"),
        ("em", [HASH, "jane@example.com"]),
        ("ct", "A" * 63),
        ("country", 12),
    ],
)
def test_contact_fields_must_be_hashed(key, value):
    event = server_event("email")
    event["user_data"][key] = value
    issue = only_issue(event)
    assert issue.field == f"user_data.{key}"
    assert "SHA-256" in issue.rule
    assert str(value) not in str(issue)


def test_unhashed_keys_may_be_plain():
    user_data = {"external_id": "customer-42", "fbc": "fb.1.1.abc", "client_ip_address": "::1"}
    assert check(server_event("email", user_data=user_data)) == []


# -- custom_data ---------------------------------------------------------------------------


def test_valid_purchase():
    assert check(purchase()) == []


def test_purchase_needs_value():
    event = purchase()
    del event["custom_data"]["value"]
    issue = only_issue(event)
    assert issue.field == "custom_data.value"
    assert "Purchase" in issue.rule


def test_purchase_needs_currency():
    event = purchase()
    del event["custom_data"]["currency"]
    issue = only_issue(event)
    assert str(issue) == (
        "custom_data.currency: Purchase events need an ISO 4217 currency code (e.g. USD, EUR)"
    )


def test_purchase_without_custom_data():
    event = website_event(event_name="Purchase")
    assert issue_fields(event) == ["custom_data.value", "custom_data.currency"]


def test_value_and_currency_only_required_for_purchase():
    assert check(website_event(event_name="AddToCart", custom_data={})) == []


@pytest.mark.parametrize("currency", ["usd", "EUR", "JPY"])
def test_currency_accepted(currency):
    assert check(purchase(currency=currency)) == []


@pytest.mark.parametrize("currency", ["EURO", "ZZZ", "$", "", "XXX", "XTS", 840, "ÉUR"])
def test_currency_must_be_iso_4217(currency):
    issue = only_issue(purchase(currency=currency))
    assert issue.field == "custom_data.currency"
    assert "ISO 4217" in issue.rule


def test_currency_checked_on_any_event():
    event = website_event(event_name="AddToCart", custom_data={"value": 1, "currency": "ABC"})
    assert issue_fields(event) == ["custom_data.currency"]


@pytest.mark.parametrize(
    "value", ["12.5", float("nan"), float("inf"), True, Decimal("1.5"), None, [1]]
)
def test_value_must_be_a_finite_number(value):
    event = purchase(value=value)
    assert issue_fields(event) == ["custom_data.value"]


@pytest.mark.parametrize("key", ["predicted_ltv", "net_revenue"])
def test_other_amounts_must_be_numbers(key):
    assert issue_fields(purchase(**{key: "lots"})) == [f"custom_data.{key}"]


def test_value_zero_and_int_are_fine():
    assert check(purchase(value=0)) == []
    assert check(purchase(value=100)) == []


@pytest.mark.parametrize("content_type", ["product", "product_group"])
def test_content_type_accepted(content_type):
    assert check(purchase(content_type=content_type)) == []


@pytest.mark.parametrize("content_type", ["Product", "products", "", ["product"]])
def test_content_type_must_be_known(content_type):
    assert issue_fields(purchase(content_type=content_type)) == ["custom_data.content_type"]


@pytest.mark.parametrize("category", ["in_store", "curbside", "home_delivery"])
def test_delivery_category_accepted(category):
    assert check(purchase(delivery_category=category)) == []


@pytest.mark.parametrize("category", ["delivery", "IN_STORE", 1, {}])
def test_delivery_category_must_be_known(category):
    assert issue_fields(purchase(delivery_category=category)) == ["custom_data.delivery_category"]


def test_contents_items_need_an_id():
    event = purchase(contents=[{"id": "a"}, {"quantity": 1}, {"id": ""}])
    assert issue_fields(event) == ["custom_data.contents[1].id", "custom_data.contents[2].id"]


@pytest.mark.parametrize("quantity", [0, -1, 1.5, "2", True])
def test_contents_quantity_must_be_a_positive_int(quantity):
    event = purchase(contents=[{"id": "a", "quantity": quantity}])
    assert issue_fields(event) == ["custom_data.contents[0].quantity"]


def test_contents_other_fields():
    event = purchase(
        contents=[{"id": "a", "item_price": "5", "delivery_category": "drone"}, "sku-b"]
    )
    assert issue_fields(event) == [
        "custom_data.contents[0].item_price",
        "custom_data.contents[0].delivery_category",
        "custom_data.contents[1]",
    ]


def test_contents_must_be_a_list():
    assert issue_fields(purchase(contents={"id": "a"})) == ["custom_data.contents"]


def test_content_ids_must_be_a_list_of_ids():
    assert check(purchase(content_ids=["a", 2])) == []
    assert issue_fields(purchase(content_ids="a")) == ["custom_data.content_ids"]
    assert issue_fields(purchase(content_ids=["a", None])) == ["custom_data.content_ids"]


def test_num_items_must_be_an_int():
    assert issue_fields(purchase(num_items=2.5)) == ["custom_data.num_items"]


def test_custom_data_must_be_a_mapping():
    event = website_event(custom_data=["value", 1])
    assert issue_fields(event) == ["custom_data"]


# -- app events -------------------------------------------------------------------------------


def test_app_event_needs_app_data():
    event = app_event()
    del event["app_data"]
    issue = only_issue(event)
    assert issue.field == "app_data"
    assert "advertiser_tracking_enabled" in issue.rule


@pytest.mark.parametrize("value", [None, 1, "true"])
def test_app_event_needs_advertiser_tracking_enabled_bool(value):
    event = app_event()
    event["app_data"]["advertiser_tracking_enabled"] = value
    assert issue_fields(event) == ["app_data.advertiser_tracking_enabled"]


@pytest.mark.parametrize(
    "extinfo", [None, EXTINFO[:15], [*EXTINFO, "x"], ["a2", *range(15)], "a2", {}]
)
def test_app_event_needs_16_extinfo_strings(extinfo):
    event = app_event()
    event["app_data"]["extinfo"] = extinfo
    issue = only_issue(event)
    assert issue.field == "app_data.extinfo"
    assert "16" in issue.rule


@pytest.mark.parametrize("platform", ["a1", "ios", "", "I2"])
def test_extinfo_must_start_with_a2_or_i2(platform):
    event = app_event()
    event["app_data"]["extinfo"][0] = platform
    issue = only_issue(event)
    assert issue.field == "app_data.extinfo"
    assert '"a2"' in issue.rule


def test_app_data_not_required_for_other_sources():
    assert check(server_event("email", app_data={"whatever": 1})) == []


# -- opt_out and Limited Data Use ---------------------------------------------------------


@pytest.mark.parametrize("opt_out", [True, False])
def test_opt_out_bool(opt_out):
    assert check(website_event(opt_out=opt_out)) == []


@pytest.mark.parametrize("opt_out", [1, "false", []])
def test_opt_out_must_be_bool(opt_out):
    assert issue_fields(website_event(opt_out=opt_out)) == ["opt_out"]


def test_ldu_off_is_an_empty_list():
    assert check(website_event(data_processing_options=[])) == []


@pytest.mark.parametrize(("country", "state"), [(0, 0), (1, 1000), (1, 0), (0, 1000)])
def test_ldu_with_country_and_state(country, state):
    event = website_event(
        data_processing_options=["LDU"],
        data_processing_options_country=country,
        data_processing_options_state=state,
    )
    assert check(event) == []


def test_ldu_alone_is_accepted():
    assert check(website_event(data_processing_options=["LDU"])) == []


@pytest.mark.parametrize("options", [["ldu"], ["LDU", "GDPR"], "LDU", [None], {"LDU": 1}])
def test_data_processing_options_only_ldu(options):
    assert issue_fields(website_event(data_processing_options=options)) == [
        "data_processing_options"
    ]


@pytest.mark.parametrize("country", [2, 840, "1", True, None])
def test_ldu_country_values(country):
    event = website_event(
        data_processing_options=["LDU"],
        data_processing_options_country=country,
        data_processing_options_state=0,
    )
    assert "data_processing_options_country" in issue_fields(event)


@pytest.mark.parametrize("state", [1, 6, "1000", False])
def test_ldu_state_values(state):
    event = website_event(
        data_processing_options=["LDU"],
        data_processing_options_country=1,
        data_processing_options_state=state,
    )
    assert issue_fields(event) == ["data_processing_options_state"]


def test_ldu_country_needs_a_state():
    event = website_event(data_processing_options=["LDU"], data_processing_options_country=1)
    issue = only_issue(event)
    assert str(issue) == "data_processing_options_state: LDU country needs a state"


def test_ldu_state_needs_a_country():
    event = website_event(data_processing_options=["LDU"], data_processing_options_state=1000)
    assert issue_fields(event) == ["data_processing_options_country"]


@pytest.mark.parametrize("options", [None, []])
def test_ldu_country_and_state_need_ldu(options):
    event = website_event(data_processing_options_country=1, data_processing_options_state=1000)
    if options is not None:
        event["data_processing_options"] = options
    issue = only_issue(event)
    assert issue.field == "data_processing_options"
    assert "LDU" in issue.rule


# -- several problems at once ---------------------------------------------------------------


def test_all_issues_are_reported_at_once():
    event = {
        "event_name": "Purchase",
        "event_time": NOW_TS - 8 * 86400,
        "event_id": "",
        "action_source": "website",
        "event_source_url": "javascript:void(0)",
        "referrer_url": "ftp://x",
        "user_data": {"em": "jane@example.com"},
        "custom_data": {
            "value": "free",
            "currency": "EURO",
            "contents": [{"quantity": 0}],
            "content_type": "service",
        },
        "opt_out": "no",
        "data_processing_options": ["LDU"],
        "data_processing_options_country": 1,
    }
    issues = check(event)
    assert [issue.field for issue in issues] == [
        "event_time",
        "event_id",
        "event_source_url",
        "referrer_url",
        "user_data.client_user_agent",
        "user_data.em",
        "custom_data.value",
        "custom_data.currency",
        "custom_data.content_type",
        "custom_data.contents[0].id",
        "custom_data.contents[0].quantity",
        "opt_out",
        "data_processing_options_state",
    ]
    assert "jane@example.com" not in "; ".join(str(issue) for issue in issues)
    message = str(EventValidationError(issues))
    assert message.count("; ") == len(issues) - 1


def test_empty_payload_lists_the_basics():
    assert issue_fields({}) == ["event_name", "event_time", "action_source", "user_data"]


@pytest.mark.parametrize("payload", [None, "event", 3, ["event_name"]])
def test_payload_must_be_a_mapping(payload):
    assert issue_fields(payload) == ["event"]


def test_payload_is_not_modified():
    event = purchase(contents=[{"id": "a", "quantity": 0}])
    before = copy.deepcopy(event)
    check(event)
    assert event == before


# -- never raises -------------------------------------------------------------------------


_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.integers(min_value=-(10**400), max_value=10**400),
    st.floats(),
    st.decimals(),
    st.text(max_size=20),
    st.binary(max_size=4),
    st.just(object()),
    st.sampled_from(sorted(ACTION_SOURCES)),
    st.sampled_from(["LDU", "Purchase", "USD", "https://example.com", HASH, "a2", "i2"]),
)
_values = st.recursive(
    _scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=5),
        st.tuples(children),
        st.dictionaries(st.one_of(st.text(max_size=6), st.integers()), children, max_size=4),
    ),
    max_leaves=6,
)
_TOP_KEYS = [
    "event_name",
    "event_time",
    "event_id",
    "action_source",
    "event_source_url",
    "referrer_url",
    "user_data",
    "custom_data",
    "app_data",
    "opt_out",
    "data_processing_options",
    "data_processing_options_country",
    "data_processing_options_state",
    "messaging_channel",
]
_NESTED_KEYS = [
    "em", "ge", "fn", "client_user_agent", "value", "currency", "contents", "content_ids",
    "content_type", "delivery_category", "id", "quantity", "item_price", "num_items",
    "advertiser_tracking_enabled", "extinfo",
]  # fmt: skip
_nested = st.dictionaries(st.sampled_from(_NESTED_KEYS), _values, max_size=5)


_payloads = st.dictionaries(
    st.one_of(st.sampled_from(_TOP_KEYS), st.text(max_size=8)),
    st.one_of(_values, _nested, st.lists(_nested, max_size=3)),
    max_size=8,
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(payload=_payloads, now=st.one_of(st.none(), st.datetimes()), skew=st.integers(0, 10**6))
def test_validate_event_never_raises(payload, now, skew):
    issues = validate_event(payload, now=now, max_clock_skew=skew)
    assert all(isinstance(issue, ValidationIssue) for issue in issues)
    assert all(issue.field and issue.rule for issue in issues)
    assert all(";" not in str(issue) for issue in issues)  # "; " separates issues
    is_too_old(payload, now=now)


@settings(max_examples=150, deadline=None)
@given(st.dictionaries(st.sampled_from(_NESTED_KEYS), _values, max_size=8))
def test_normalized_custom_data_never_breaks_validation(raw):
    custom, _ = normalize_custom_data(raw)
    issues = validate_event(website_event(custom_data=custom), now=NOW)
    assert all(issue.field.startswith("custom_data") for issue in issues)


@settings(max_examples=150, deadline=None)
@given(
    value=st.one_of(st.integers(-(10**6), 10**6), st.decimals(-(10**6), 10**6, places=2)),
    currency=st.sampled_from(["usd", " EUR ", "gbp", "JPY"]),
)
def test_any_normalized_purchase_amount_is_valid(value, currency):
    custom, warnings = normalize_custom_data({"value": value, "currency": currency})
    assert warnings == []
    assert check(website_event(event_name="Purchase", custom_data=custom)) == []


_PATHS = [(key,) for key in _TOP_KEYS] + [
    ("user_data", "em"),
    ("user_data", "client_user_agent"),
    ("custom_data", "value"),
    ("custom_data", "currency"),
    ("custom_data", "contents"),
    ("custom_data", "content_ids"),
    ("app_data", "advertiser_tracking_enabled"),
    ("app_data", "extinfo"),
]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    base=st.sampled_from(["website", "app", "purchase"]),
    path=st.sampled_from(_PATHS),
    value=st.one_of(_values, _nested),
)
def test_one_broken_field_never_raises(base, path, value):
    """Start from a valid event so that the deeper checks run, then break one field."""
    event = {"website": website_event, "app": app_event, "purchase": purchase}[base]()
    target = event
    for key in path[:-1]:
        target = target.setdefault(key, {})
    target[path[-1]] = value
    issues = check(event)
    assert all(";" not in str(issue) for issue in issues)
