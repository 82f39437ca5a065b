"""Transports: the Graph API transport against the fake server, locmem, console, helpers."""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
from dataclasses import FrozenInstanceError, fields
from typing import Any
from urllib.parse import quote, quote_plus

import pytest
import requests
from django.conf import settings as django_settings
from django.core.exceptions import ImproperlyConfigured
from django.test import override_settings

import django_capi
from django_capi.conf import DatasetConfig
from django_capi.transports import base, locmem
from django_capi.transports.base import (
    BaseTransport,
    GraphError,
    Outcome,
    RawResponse,
    SendResult,
    classify,
    clear_transport_cache,
    get_transport,
    redact,
)
from django_capi.transports.console import ConsoleTransport
from django_capi.transports.graph_api import GraphAPITransport, appsecret_proof
from django_capi.transports.locmem import LocmemTransport, OutboxMessage, simulate
from tests.fake_graph_api import (
    SUBCODE_NOT_HASHED,
    SUBCODE_TOO_OLD,
    FakeGraphAPI,
    closed_port,
    drop,
    graph_error,
    http_error,
    reset_mid_response,
    sample_event,
    slow,
    throttle,
)

DATASET = "1234567890"
# Distinctive, and changed by URL-encoding, so that both forms can be looked for.
TOKEN = "EAAG-Sup3r/S3cret+T0ken=zz-1f2e3d"
APP_SECRET = "app-secret-0b5e"
TOKEN_FORMS = (TOKEN, quote(TOKEN, safe=""), quote_plus(TOKEN))
GRAPH = "django_capi.transports.graph_api.GraphAPITransport"
LOCMEM = "django_capi.transports.locmem.LocmemTransport"


def dataset(**overrides: Any) -> DatasetConfig:
    values: dict[str, Any] = {"dataset_id": DATASET, "access_token": TOKEN, **overrides}
    return DatasetConfig(**values)


def assert_no_token(*texts: str) -> None:
    for text in texts:
        for form in TOKEN_FORMS:
            assert form not in text


@pytest.fixture
def api():
    with FakeGraphAPI(tokens={DATASET: TOKEN}) as server:
        yield server


@pytest.fixture
def capi(settings, api):
    settings.CAPI = {
        **settings.CAPI,
        "API_BASE_URL": api.url,
        "CONNECT_TIMEOUT": 0.5,
        "READ_TIMEOUT": 0.5,
        "TRANSPORT": GRAPH,
    }
    return settings.CAPI


@pytest.fixture
def transport(capi):
    instance = GraphAPITransport()
    yield instance
    instance.close()


@pytest.fixture(autouse=True)
def _clean_state():
    clear_transport_cache()
    locmem.reset()
    yield
    clear_transport_cache()
    locmem.reset()


# -- classify ------------------------------------------------------------------------------


def err(code: int | None, subcode: int | None = None, is_transient: bool | None = None):
    return GraphError(code=code, subcode=subcode, is_transient=is_transient)


@pytest.mark.parametrize(
    ("status", "error", "expected"),
    [
        (200, None, Outcome.SUCCESS),
        (200, err(None), Outcome.TRANSIENT),  # a 200 whose body could not be read
        (None, None, Outcome.TRANSIENT),
        (500, None, Outcome.TRANSIENT),
        (502, err(None), Outcome.TRANSIENT),
        (503, err(100, 2804019), Outcome.TRANSIENT),
        (400, err(1), Outcome.TRANSIENT),
        (400, err(2), Outcome.TRANSIENT),
        (400, err(341), Outcome.TRANSIENT),
        (400, err(100, 2804019, is_transient=True), Outcome.TRANSIENT),
        (400, err(4), Outcome.THROTTLED),
        (400, err(17, 2446079, is_transient=True), Outcome.THROTTLED),
        (400, err(32), Outcome.THROTTLED),
        (400, err(613, 1487742), Outcome.THROTTLED),
        (429, None, Outcome.THROTTLED),
        (429, err(None), Outcome.THROTTLED),
        (500, err(17), Outcome.THROTTLED),  # codes win over 5xx
        (400, err(190), Outcome.AUTH),
        (400, err(190, 460), Outcome.AUTH),
        (401, err(102), Outcome.AUTH),
        (403, err(10), Outcome.AUTH),
        (403, err(200), Outcome.AUTH),
        (403, err(299), Outcome.AUTH),
        (400, err(100, 33), Outcome.AUTH),
        (500, err(190), Outcome.AUTH),  # codes win over 5xx
        (400, err(100, 2804003), Outcome.REJECTED),
        (400, err(100, 2804016, is_transient=False), Outcome.REJECTED),
        (400, err(100), Outcome.REJECTED),
        (400, err(None), Outcome.REJECTED),  # unparseable 4xx
        (404, None, Outcome.REJECTED),
        (400, err(300), Outcome.REJECTED),
    ],
)
def test_classify(status, error, expected):
    assert classify(status, error) == expected


def test_classify_never_reads_message_text():
    error = GraphError(code=100, subcode=2804019, message="Service temporarily unavailable")
    assert classify(400, error) == Outcome.REJECTED


def test_code_tables_are_frozensets():
    assert sorted(base.TRANSIENT_CODES) == [1, 2, 341]
    assert sorted(base.THROTTLE_CODES) == [4, 17, 32, 613]
    assert sorted(base.AUTH_CODES) == [10, 102, 190]
    for table in (base.TRANSIENT_CODES, base.THROTTLE_CODES, base.AUTH_CODES):
        assert isinstance(table, frozenset)


def test_outcome_values():
    assert [o.value for o in Outcome] == ["success", "transient", "throttled", "auth", "rejected"]
    assert Outcome("auth") is Outcome.AUTH


def test_results_are_frozen():
    result = SendResult(Outcome.SUCCESS, 200, 1, 1)
    assert result.ok
    assert not SendResult(Outcome.TRANSIENT, None, 1, None).ok
    with pytest.raises(FrozenInstanceError):
        result.outcome = Outcome.AUTH  # type: ignore[misc]
    assert [f.name for f in fields(GraphError)] == [
        "code",
        "subcode",
        "type",
        "message",
        "user_title",
        "user_msg",
        "is_transient",
        "fbtrace_id",
    ]


# -- redact ----------------------------------------------------------------------------------


def test_redact_replaces_plain_and_url_encoded_forms():
    text = f"a {TOKEN} b {quote(TOKEN, safe='')} c {quote_plus(TOKEN)} d"
    redacted = redact(text, [None, "", TOKEN])
    assert_no_token(redacted)
    assert redacted == "a [redacted] b [redacted] c [redacted] d"


def test_redact_without_secrets_is_identity():
    assert redact("nothing here", []) == "nothing here"
    assert redact("nothing here", [None, ""]) == "nothing here"


# -- GraphAPITransport against the fake server -------------------------------------------


def test_success(transport, api):
    events = [sample_event("a"), sample_event("b")]
    result = transport.send(dataset(), events)
    assert result.ok
    assert result.outcome == Outcome.SUCCESS
    assert result.http_status == 200
    assert result.events_sent == 2
    assert result.events_received == 2
    assert result.messages == []
    assert result.fbtrace_id
    assert result.error is None
    assert result.network_error == ""
    assert result.duration_ms >= 0
    assert api.received == events


def test_success_without_fbtrace_id(transport, api):
    api.omit_fbtrace_id = True
    result = transport.send(dataset(), [sample_event()])
    assert result.ok
    assert result.fbtrace_id  # falls back to the x-fb-trace-id header


def test_body_shape_minimal(capi):
    events = [sample_event("a")]
    body = GraphAPITransport().build_body(dataset(), events)
    assert body == {"data": events, "access_token": TOKEN}


def test_body_shape_with_options(settings, capi):
    settings.CAPI = {**capi, "APP_SECRET": APP_SECRET}
    config = dataset(test_event_code="TEST42", partner_agent="django_capi-0.1")
    body = GraphAPITransport().build_body(config, [sample_event()])
    assert body["test_event_code"] == "TEST42"
    assert body["partner_agent"] == "django_capi-0.1"
    expected = hmac.new(APP_SECRET.encode(), TOKEN.encode(), hashlib.sha256).hexdigest()
    assert body["appsecret_proof"] == expected == appsecret_proof(APP_SECRET, TOKEN)


def test_options_reach_the_server(transport, api):
    result = transport.send(dataset(test_event_code="TEST42", partner_agent="pa"), [sample_event()])
    assert result.ok
    (record,) = api.requests
    assert (record.test_event_code, record.partner_agent) == ("TEST42", "pa")
    assert record.had_appsecret_proof is False
    assert record.content_type == "application/json"
    assert record.api_version == "v26.0"


def test_appsecret_proof_is_accepted_by_a_checking_server(settings):
    with FakeGraphAPI(tokens={DATASET: TOKEN}, app_secret=APP_SECRET) as api:
        settings.CAPI = {**settings.CAPI, "API_BASE_URL": api.url, "APP_SECRET": APP_SECRET}
        transport = GraphAPITransport()
        assert transport.send(dataset(), [sample_event()]).ok
        assert api.requests[-1].had_appsecret_proof is True
        settings.CAPI = {**settings.CAPI, "APP_SECRET": "another-secret"}
        assert transport.send(dataset(), [sample_event()]).outcome == Outcome.REJECTED
        transport.close()


def test_api_version_setting_is_read_at_use_time(settings, transport, api):
    settings.CAPI = {**settings.CAPI, "API_VERSION": "v25.0"}
    assert transport.send(dataset(), [sample_event()]).ok
    assert api.requests[-1].api_version == "v25.0"


def test_token_is_never_in_the_url(transport, api):
    assert_no_token(transport.url(dataset()))
    transport.send(dataset(), [sample_event()])
    assert api.requests[-1].token_in_url is False


def test_dataset_without_token_is_auth_without_a_request(transport, api):
    result = transport.send(dataset(access_token=None), [sample_event()])
    assert result.outcome == Outcome.AUTH
    assert result.http_status is None
    assert result.error is not None
    assert result.error.type == "MissingAccessToken"
    assert api.requests == []


@pytest.mark.parametrize(
    ("fault", "outcome", "status"),
    [
        (http_error(500), Outcome.TRANSIENT, 500),
        (http_error(503, code=2), Outcome.TRANSIENT, 503),
        (graph_error(1, is_transient=False), Outcome.TRANSIENT, 400),
        (graph_error(2, is_transient=False), Outcome.TRANSIENT, 400),
        (graph_error(341), Outcome.TRANSIENT, 400),
        (graph_error(100, 2804019, is_transient=True), Outcome.TRANSIENT, 400),
        (throttle(4), Outcome.THROTTLED, 400),
        (throttle(17), Outcome.THROTTLED, 400),
        (throttle(32), Outcome.THROTTLED, 400),
        (throttle(613), Outcome.THROTTLED, 400),
        (http_error(429), Outcome.THROTTLED, 429),
        (graph_error(190), Outcome.AUTH, 400),
        (graph_error(102), Outcome.AUTH, 400),
        (graph_error(10, status=403), Outcome.AUTH, 403),
        (graph_error(200, status=403), Outcome.AUTH, 403),
        (graph_error(100, 33), Outcome.AUTH, 400),
        (graph_error(190, status=500), Outcome.AUTH, 500),
        (graph_error(100, 2804016), Outcome.REJECTED, 400),
        (graph_error(100, 2804003), Outcome.REJECTED, 400),
        (http_error(400), Outcome.REJECTED, 400),
    ],
)
def test_every_classification_end_to_end(transport, api, fault, outcome, status):
    api.script(fault)
    result = transport.send(dataset(), [sample_event()])
    assert result.outcome == outcome
    assert result.http_status == status
    assert result.error is not None
    assert result.events_received is None
    assert result.network_error == ""
    assert api.received == []


def test_graph_error_fields_are_parsed(transport, api):
    api.script(graph_error(100, 2804019, user_title="Bad event", user_msg="Fix it"))
    result = transport.send(dataset(), [sample_event()])
    error = result.error
    assert error is not None
    assert (error.code, error.subcode, error.type) == (100, 2804019, "OAuthException")
    assert (error.message, error.user_title, error.user_msg) == (
        "Invalid parameter",
        "Bad event",
        "Fix it",
    )
    assert error.is_transient is False
    assert error.fbtrace_id
    assert result.fbtrace_id == error.fbtrace_id


def test_non_json_502_page(transport, api):
    api.script(http_error(502))
    result = transport.send(dataset(), [sample_event()])
    assert result.outcome == Outcome.TRANSIENT
    assert result.http_status == 502
    assert result.error is not None
    assert result.error.code is None
    assert result.error.type == "NonJSONResponse"
    assert "502" in result.error.message
    assert result.fbtrace_id  # from the x-fb-trace-id header


def test_real_validation_errors(transport, api):
    unhashed = sample_event(user_data={**sample_event()["user_data"], "em": "a@b.example"})
    result = transport.send(dataset(), [sample_event("ok"), unhashed])
    assert result.outcome == Outcome.REJECTED
    assert result.error is not None
    assert (result.error.code, result.error.subcode) == (100, SUBCODE_NOT_HASHED)
    assert "index 1" in result.error.user_title

    old = sample_event(event_time=sample_event()["event_time"] - 8 * 24 * 3600)
    result = transport.send(dataset(), [old])
    assert result.error is not None
    assert (result.outcome, result.error.subcode) == (Outcome.REJECTED, SUBCODE_TOO_OLD)
    assert api.received == []


def test_wrong_or_revoked_token_is_auth(transport, api):
    assert transport.send(dataset(access_token="not-the-token"), [sample_event()]).outcome == (
        Outcome.AUTH
    )
    api.set_token(DATASET, "rotated")
    result = transport.send(dataset(), [sample_event()])
    assert result.outcome == Outcome.AUTH
    assert result.error is not None
    assert result.error.code == 190


def test_unknown_dataset_is_auth(transport, api):
    result = transport.send(dataset(dataset_id="999"), [sample_event()])
    assert result.outcome == Outcome.AUTH
    assert result.error is not None
    assert (result.error.code, result.error.subcode) == (100, 33)


def test_read_timeout(transport, api):
    api.script(slow(5))
    with override_settings(CAPI={**django_settings.CAPI, "READ_TIMEOUT": 0.2}):
        result = transport.send(dataset(), [sample_event()])
    assert result.outcome == Outcome.TRANSIENT
    assert result.http_status is None
    assert result.error is None
    assert result.events_received is None
    assert result.network_error.startswith("ReadTimeout")


def test_dropped_connection(transport, api):
    api.script(drop())
    result = transport.send(dataset(), [sample_event()])
    assert result.outcome == Outcome.TRANSIENT
    assert result.http_status is None
    assert result.network_error.startswith("ConnectionError")
    assert transport.send(dataset(), [sample_event()]).ok  # and the next send works


def test_reset_mid_response(transport, api):
    api.script(reset_mid_response())
    result = transport.send(dataset(), [sample_event("r")])
    assert result.outcome == Outcome.TRANSIENT
    assert result.http_status is None
    assert result.network_error
    assert api.received_ids() == ["r"]  # resending is safe: Meta deduplicates on event_id


def test_connection_refused(settings, transport):
    settings.CAPI = {**settings.CAPI, "API_BASE_URL": f"http://127.0.0.1:{closed_port()}"}
    result = transport.send(dataset(), [sample_event()])
    assert result.outcome == Outcome.TRANSIENT
    assert result.http_status is None
    assert result.network_error.startswith("ConnectionError")
    assert "refused" in result.network_error.lower()


def test_batch_size_limits(transport):
    with pytest.raises(ValueError, match="at least one"):
        transport.send(dataset(), [])
    with pytest.raises(ValueError, match="1000"):
        transport.send(dataset(), [sample_event(str(i)) for i in range(1001)])


def test_a_full_batch(transport, api):
    events = [sample_event(str(i)) for i in range(1000)]
    result = transport.send(dataset(), events)
    assert (result.outcome, result.events_received) == (Outcome.SUCCESS, 1000)


# -- the session -----------------------------------------------------------------------------


def test_session_is_reused_across_sends(transport, api, caplog):
    caplog.set_level(logging.DEBUG, logger="urllib3")
    assert transport.send(dataset(), [sample_event()]).ok
    session = transport.session
    assert transport.send(dataset(), [sample_event()]).ok
    assert transport.send(dataset(), [sample_event()]).ok
    assert transport.session is session
    # Keep-alive: one connection served all three requests.
    assert caplog.text.count("Starting new HTTP connection") == 1
    adapter = session.get_adapter(api.url)
    assert adapter.max_retries.total == 0
    assert adapter._pool_maxsize == transport.pool_maxsize


def test_a_new_session_after_fork(transport, api, monkeypatch):
    assert transport.send(dataset(), [sample_event()]).ok
    parent_session = transport.session
    child_pid = os.getpid() + 1
    monkeypatch.setattr(os, "getpid", lambda: child_pid)
    assert transport.send(dataset(), [sample_event()]).ok
    assert transport.session is not parent_session
    assert transport.session is transport.session


# -- the token never leaks ---------------------------------------------------------------


LEAK_SCENARIOS = [
    None,
    http_error(502),
    http_error(500, code=2),
    graph_error(190, message=f"Invalid OAuth access token {TOKEN}"),
    graph_error(100, 2804016, user_title=TOKEN, user_msg=f"see {quote(TOKEN, safe='')}"),
    throttle(),
    slow(5),
    drop(),
    reset_mid_response(),
]


@pytest.mark.parametrize("fault", LEAK_SCENARIOS)
def test_token_never_appears_anywhere(settings, transport, api, caplog, fault):
    caplog.set_level(logging.DEBUG)
    settings.CAPI = {**settings.CAPI, "APP_SECRET": APP_SECRET, "READ_TIMEOUT": 0.2}
    api.set_token(DATASET, TOKEN)
    if fault is not None:
        api.script(fault)
    result = transport.send(dataset(), [sample_event()])
    texts = [repr(result), str(result.error), result.summary, result.network_error, caplog.text]
    texts += [str(record.args) for record in caplog.records]
    assert_no_token(*texts)
    assert APP_SECRET not in " ".join(texts)
    assert not any(record.token_in_url for record in api.requests)


def test_token_never_appears_when_the_server_is_unreachable(settings, transport, caplog):
    caplog.set_level(logging.DEBUG)
    settings.CAPI = {**settings.CAPI, "API_BASE_URL": f"http://127.0.0.1:{closed_port()}"}
    result = transport.send(dataset(), [sample_event()])
    assert_no_token(repr(result), caplog.text)


def test_exception_text_is_redacted(transport, monkeypatch):
    def explode(*args: Any, **kwargs: Any) -> None:
        raise requests.exceptions.ConnectionError(f"failed with access_token={quote_plus(TOKEN)}")

    monkeypatch.setattr(transport.session, "post", explode)
    result = transport.send(dataset(), [sample_event()])
    assert result.outcome == Outcome.TRANSIENT
    assert "[redacted]" in result.network_error
    assert_no_token(result.network_error)


def test_parse_redacts_messages_and_error_text(capi):
    transport = GraphAPITransport()
    raw = RawResponse(
        status=200,
        payload={"events_received": 1, "messages": [f"echo {TOKEN}"], "fbtrace_id": "x"},
    )
    result = transport.parse(dataset(), [sample_event()], raw)
    assert result.ok
    assert result.messages == ["echo [redacted]"]
    raw = RawResponse(status=500, text=f"<html>{TOKEN}</html>")
    result = transport.parse(dataset(), [sample_event()], raw)
    assert result.error is not None
    assert_no_token(repr(result))


def test_dataset_config_repr_hides_the_token():
    assert_no_token(repr(dataset()))


# -- get_transport ---------------------------------------------------------------------------


def test_get_transport_default_and_cached(settings):
    settings.CAPI = {**settings.CAPI, "TRANSPORT": GRAPH}
    first = get_transport()
    assert isinstance(first, GraphAPITransport)
    assert get_transport() is first
    settings.CAPI = {**settings.CAPI, "TRANSPORT": LOCMEM}
    assert isinstance(get_transport(), LocmemTransport)
    settings.CAPI = {**settings.CAPI, "TRANSPORT": GRAPH}
    assert get_transport() is first


def test_get_transport_new_instance_after_fork(settings, monkeypatch):
    settings.CAPI = {**settings.CAPI, "TRANSPORT": LOCMEM}
    parent = get_transport()
    child_pid = os.getpid() + 1
    monkeypatch.setattr(os, "getpid", lambda: child_pid)
    assert get_transport() is not parent


@pytest.mark.parametrize(
    "path",
    [
        "django_capi.transports.nowhere.Transport",
        "not a dotted path",
        "django_capi.transports.base.redact",
        "django_capi.transports.base.BaseTransport",
    ],
)
def test_get_transport_bad_setting(settings, path):
    settings.CAPI = {**settings.CAPI, "TRANSPORT": path}
    with pytest.raises(ImproperlyConfigured, match=r"CAPI\['TRANSPORT'\]"):
        get_transport()


def test_transports_are_base_transports():
    for cls in (GraphAPITransport, LocmemTransport, ConsoleTransport):
        assert issubclass(cls, BaseTransport)


# -- LocmemTransport -------------------------------------------------------------------------


def test_locmem_outbox(settings):
    settings.CAPI = {**settings.CAPI, "TRANSPORT": LOCMEM}
    transport = get_transport()
    events = [sample_event("a"), sample_event("b")]
    config = dataset(test_event_code="T1", partner_agent="pa")
    result = transport.send(config, events)
    assert result.ok
    assert result.events_received == 2
    assert result.fbtrace_id.startswith("locmem-")
    (message,) = django_capi.outbox
    assert message == OutboxMessage(
        dataset_id=DATASET, events=events, test_event_code="T1", partner_agent="pa"
    )
    assert_no_token(repr(message))
    assert [f.name for f in fields(OutboxMessage)] == [
        "dataset_id",
        "events",
        "test_event_code",
        "partner_agent",
    ]
    django_capi.outbox.clear()
    assert transport.send(dataset(), [sample_event()]).ok
    assert len(django_capi.outbox) == 1


def test_locmem_outbox_may_be_replaced():
    django_capi.outbox = []
    LocmemTransport().send(dataset(), [sample_event()])
    assert len(django_capi.outbox) == 1


def test_locmem_fbtrace_ids_differ():
    transport = LocmemTransport()
    ids = {transport.send(dataset(), [sample_event()]).fbtrace_id for _ in range(3)}
    assert len(ids) == 3


@pytest.mark.parametrize(
    ("script", "kwargs", "outcome", "status"),
    [
        (GraphError(code=190, type="OAuthException", message="bad"), {}, Outcome.AUTH, 400),
        (GraphError(code=2), {"http_status": 500}, Outcome.TRANSIENT, 500),
        (GraphError(code=100, subcode=2804019), {}, Outcome.REJECTED, 400),
        ("timeout", {}, Outcome.TRANSIENT, None),
        ("connection_error", {}, Outcome.TRANSIENT, None),
        ("reset", {}, Outcome.TRANSIENT, None),
        (None, {"http_status": 503}, Outcome.TRANSIENT, 503),
        (None, {"http_status": 429}, Outcome.THROTTLED, 429),
        (Outcome.TRANSIENT, {}, Outcome.TRANSIENT, 503),
        (Outcome.THROTTLED, {}, Outcome.THROTTLED, 400),
        ("auth", {}, Outcome.AUTH, 400),
        (Outcome.REJECTED, {}, Outcome.REJECTED, 400),
    ],
)
def test_locmem_simulate(script, kwargs, outcome, status):
    simulate(script, **kwargs)
    transport = LocmemTransport()
    result = transport.send(dataset(), [sample_event()])
    assert result.outcome == outcome
    assert result.http_status == status
    assert django_capi.outbox == []  # failed requests are not delivered
    assert transport.send(dataset(), [sample_event()]).ok  # the script was used once
    assert len(django_capi.outbox) == 1


def test_locmem_simulate_graph_error_is_parsed():
    simulate(GraphError(code=17, subcode=2446079, message="slow down", fbtrace_id="T"))
    result = LocmemTransport().send(dataset(), [sample_event()])
    assert result.outcome == Outcome.THROTTLED
    assert result.error == GraphError(code=17, subcode=2446079, message="slow down", fbtrace_id="T")
    assert result.fbtrace_id == "T"


def test_locmem_simulate_times_and_dataset():
    transport = LocmemTransport()
    simulate("timeout", times=2)
    simulate(Outcome.AUTH, dataset_id="other")
    assert locmem.pending() == 2
    assert transport.send(dataset(dataset_id="other"), [sample_event()]).outcome == Outcome.AUTH
    outcomes = [transport.send(dataset(), [sample_event()]).outcome for _ in range(3)]
    assert outcomes == [Outcome.TRANSIENT, Outcome.TRANSIENT, Outcome.SUCCESS]
    simulate(Outcome.SUCCESS)
    assert transport.send(dataset(), [sample_event()]).ok
    assert [m.dataset_id for m in django_capi.outbox] == [DATASET, DATASET]


def test_locmem_reset():
    simulate("timeout", times=3)
    LocmemTransport().send(dataset(), [sample_event()])
    locmem.reset()
    assert locmem.pending() == 0
    assert LocmemTransport().send(dataset(), [sample_event()]).ok
    assert len(django_capi.outbox) == 1


def test_locmem_dataset_without_token_is_auth():
    result = LocmemTransport().send(dataset(access_token=None), [sample_event()])
    assert result.outcome == Outcome.AUTH
    assert django_capi.outbox == []


@pytest.mark.parametrize(
    ("script", "kwargs"), [("nonsense", {}), (None, {}), ("timeout", {"times": 0})]
)
def test_locmem_simulate_rejects_nonsense(script, kwargs):
    with pytest.raises(ValueError, match=r".+"):
        simulate(script, **kwargs)


# -- ConsoleTransport ------------------------------------------------------------------------


def test_console_logs_without_the_token(caplog):
    caplog.set_level(logging.DEBUG)
    events = [sample_event("c1"), sample_event("c2")]
    result = ConsoleTransport().send(dataset(test_event_code="T9"), events)
    assert result.ok
    assert result.events_received == 2
    records = [r for r in caplog.records if r.name == "django_capi.transports.console"]
    assert len(records) == 1
    (record,) = records
    assert record.levelno == logging.INFO
    message = record.getMessage()
    assert DATASET in message
    assert "2 event(s)" in message
    assert "test_event_code=T9" in message
    assert '"event_id": "c1"' in message
    assert events[0]["user_data"]["em"][0] in message
    assert_no_token(caplog.text)


def test_console_needs_no_token(caplog):
    caplog.set_level(logging.INFO, logger="django_capi.transports.console")
    assert ConsoleTransport().send(dataset(access_token=None), [sample_event()]).ok
