"""Settings are read at use time; misconfiguration is reported by system checks with stable ids."""

from __future__ import annotations

import pytest
from django.core.checks import Error, Warning, run_checks
from django.core.exceptions import ImproperlyConfigured
from django.test import override_settings

from django_capi import conf

GOOD = {
    "PIXEL_ID": "1234567890",
    "ACCESS_TOKEN": "EAAsecret",
    "API_BASE_URL": "https://graph.facebook.com",
}


def capi_messages(**capi):
    with override_settings(CAPI=capi):
        return [m for m in run_checks() if m.id and m.id.startswith("django_capi.")]


def ids(messages):
    return sorted(m.id for m in messages)


def test_a_good_configuration_passes():
    assert capi_messages(**GOOD) == []


def test_settings_are_read_at_use_time():
    with override_settings(CAPI={"API_VERSION": "v25.0"}):
        assert conf.get_setting("API_VERSION") == "v25.0"
    with override_settings(CAPI={}):
        assert conf.get_setting("API_VERSION") == conf.DEFAULTS["API_VERSION"]
        assert conf.get_setting("API_BASE_URL") == "https://graph.facebook.com"


def test_unknown_setting_name_in_code_fails_loudly():
    with pytest.raises(ImproperlyConfigured, match="NOPE"):
        conf.get_setting("NOPE")


def test_capi_not_a_dict():
    with override_settings(CAPI=["PIXEL_ID"]):
        messages = [m for m in run_checks() if m.id == "django_capi.E001"]
        assert len(messages) == 1
        with pytest.raises(ImproperlyConfigured, match="must be a dict"):
            conf.get_setting("PIXEL_ID")


def test_missing_token():
    messages = capi_messages(PIXEL_ID="1234567890")
    assert ids(messages) == ["django_capi.E004"]
    assert isinstance(messages[0], Error)
    assert "1234567890" in messages[0].msg


def test_malformed_pixel_id():
    assert "django_capi.E003" in ids(capi_messages(**{**GOOD, "PIXEL_ID": "px-123"}))


def test_no_dataset_at_all_warns():
    messages = capi_messages()
    assert ids(messages) == ["django_capi.W002"]
    assert isinstance(messages[0], Warning)


def test_misspelt_key_warns_with_its_name():
    messages = capi_messages(**GOOD, ACESS_TOKEN="x")
    assert ids(messages) == ["django_capi.W001"]
    assert "ACESS_TOKEN" in messages[0].msg


@override_settings(DEBUG=False)
def test_http_base_url_in_production_warns():
    assert ids(capi_messages(**{**GOOD, "API_BASE_URL": "http://127.0.0.1:8080"})) == [
        "django_capi.W003"
    ]


@override_settings(DEBUG=True)
def test_http_base_url_is_fine_while_debugging():
    assert capi_messages(**{**GOOD, "API_BASE_URL": "http://127.0.0.1:8080"}) == []


def test_base_url_that_is_not_a_url():
    assert ids(capi_messages(**{**GOOD, "API_BASE_URL": "graph.facebook.com"})) == [
        "django_capi.E006"
    ]


def test_bad_api_version():
    assert ids(capi_messages(**GOOD, API_VERSION="24")) == ["django_capi.E005"]


@override_settings(DEBUG=False)
def test_test_event_code_in_production_warns():
    assert ids(capi_messages(**GOOD, TEST_EVENT_CODE="TEST123")) == ["django_capi.W004"]


def test_bad_default_country():
    assert ids(capi_messages(**GOOD, DEFAULT_COUNTRY="USA")) == ["django_capi.E007"]
    bad_dataset = {"DATASETS": {"42": {"ACCESS_TOKEN": "t", "DEFAULT_COUNTRY": "Britain"}}}
    assert ids(capi_messages(**GOOD, **bad_dataset)) == ["django_capi.E007"]


def test_datasets_shape_and_keys():
    assert ids(capi_messages(**GOOD, DATASETS=["42"])) == ["django_capi.E008"]
    messages = capi_messages(**GOOD, DATASETS={"42": {"ACCESS_TOKEN": "t", "TOKEN": "x"}})
    assert ids(messages) == ["django_capi.E008"]
    assert "TOKEN" in messages[0].msg


def test_dataset_without_token():
    messages = capi_messages(**GOOD, DATASETS={"42": {"TEST_EVENT_CODE": "T1"}})
    assert ids(messages) == ["django_capi.E004"]
    assert "42" in messages[0].msg


def test_bad_limited_data_use_defaults():
    messages = capi_messages(
        **GOOD, DATA_PROCESSING_OPTIONS=["GDPR"], DATA_PROCESSING_OPTIONS_COUNTRY=1
    )
    assert ids(messages) == ["django_capi.E009", "django_capi.E009"]


def test_bad_clock_skew():
    assert ids(capi_messages(**GOOD, MAX_CLOCK_SKEW=-5)) == ["django_capi.E010"]


@pytest.mark.django_db
def test_datasets_resolution_and_the_token_never_in_repr():
    capi = {
        **GOOD,
        "TEST_EVENT_CODE": "TEST1",
        "PARTNER_AGENT": "shopx",
        "DATASETS": {"42": {"ACCESS_TOKEN": "EAAother", "LABEL": "Organiser 42"}},
    }
    with override_settings(CAPI=capi):
        datasets = conf.configured_datasets()
        default = conf.get_dataset()
        organiser = conf.get_dataset("42")
        assert conf.get_dataset("999") is None
    assert list(datasets) == ["1234567890", "42"]
    assert default is not None and default.access_token == "EAAsecret"
    assert default.test_event_code == "TEST1"
    assert organiser is not None and organiser.access_token == "EAAother"
    # The default dataset's test code is not applied to other datasets; the partner agent is.
    assert organiser.test_event_code is None
    assert organiser.partner_agent == "shopx"
    assert "EAA" not in repr(default) and "EAA" not in repr(organiser)


def test_bad_transport_import_string():
    messages = capi_messages(**GOOD, TRANSPORT="no.such.Transport")
    assert ids(messages) == ["django_capi.E011"]
    assert "CAPI['TRANSPORT']" in messages[0].msg


def test_transports_that_need_no_token_do_not_ask_for_one():
    console = "django_capi.transports.console.ConsoleTransport"
    assert capi_messages(PIXEL_ID="1234567890", TRANSPORT=console) == []


def test_a_lease_shorter_than_the_timeouts_warns():
    messages = capi_messages(**GOOD, LEASE_SECONDS=10, READ_TIMEOUT=20)
    assert ids(messages) == ["django_capi.W005"]
