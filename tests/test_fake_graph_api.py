"""The fake Graph API server: its validation follows the contract and every fault works."""

from __future__ import annotations

import hashlib
import hmac
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.fake_graph_api import (
    SUBCODE_INVALID,
    SUBCODE_MISSING_PURCHASE_VALUE,
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
TOKEN = "EAAfake-token"
DAY = 24 * 3600


@pytest.fixture
def api():
    with FakeGraphAPI(tokens={DATASET: TOKEN}) as server:
        yield server


def post(
    api: FakeGraphAPI,
    events: list[dict[str, Any]] | None = None,
    *,
    dataset: str = DATASET,
    token: str | None = TOKEN,
    timeout: float = 5,
    **fields: Any,
) -> requests.Response:
    body: dict[str, Any] = {"data": events if events is not None else [sample_event()]}
    if token is not None:
        body["access_token"] = token
    body.update(fields)
    return requests.post(f"{api.url}/v26.0/{dataset}/events", json=body, timeout=timeout)


def error_of(response: requests.Response) -> dict[str, Any]:
    error: dict[str, Any] = response.json()["error"]
    return error


def wait_for(condition, deadline: float = 10.0) -> None:
    """Poll until condition() is true (generous deadline: this is not a timing assertion)."""
    end = time.monotonic() + deadline
    while not condition():
        if time.monotonic() > end:
            raise AssertionError("condition not reached")
        time.sleep(0.01)


# -- normal operation ----------------------------------------------------------------------


def test_accepts_a_valid_batch_and_records_it(api):
    events = [sample_event("a"), sample_event("b"), sample_event("a")]
    response = post(api, events, test_event_code="TEST123", partner_agent="django_capi")
    assert response.status_code == 200
    body = response.json()
    assert body["events_received"] == 3
    assert body["messages"] == []
    assert body["fbtrace_id"]
    assert response.headers["x-fb-trace-id"]
    assert api.received == events
    assert api.received_ids() == ["a", "b", "a"]
    assert api.received_ids(DATASET) == ["a", "b", "a"]
    assert api.received_ids("other") == []
    (record,) = api.requests
    assert record.dataset_id == DATASET
    assert record.api_version == "v26.0"
    assert record.n_events == 3
    assert record.status == 200
    assert record.test_event_code == "TEST123"
    assert record.partner_agent == "django_capi"
    assert record.had_appsecret_proof is False
    assert record.token_in_url is False
    assert record.content_type == "application/json"


def test_url_is_http_on_localhost(api):
    assert api.url.startswith("http://127.0.0.1:")
    assert api.port > 0


def test_form_encoded_body_like_the_python_sdk(api):
    form = {"data": json.dumps([sample_event("f1")]), "access_token": TOKEN}
    response = requests.post(f"{api.url}/v26.0/{DATASET}/events", data=form, timeout=5)
    assert response.status_code == 200
    assert api.received_ids() == ["f1"]


def test_omit_fbtrace_id(api):
    api.omit_fbtrace_id = True
    assert "fbtrace_id" not in post(api).json()


def test_reset_forgets_everything(api):
    post(api)
    api.script(drop())
    api.poison_event_ids.add("x")
    api.set_token(DATASET, "other")
    api.reset()
    assert api.received == []
    assert api.requests == []
    assert not api.poison_event_ids
    assert post(api).status_code == 200  # no fault left, the original token is valid again


# -- tokens ----------------------------------------------------------------------------------


@pytest.mark.parametrize("token", [None, "", "wrong-token"])
def test_missing_or_wrong_token_is_code_190(api, token):
    response = post(api, token=token)
    assert response.status_code == 400
    assert error_of(response)["code"] == 190
    assert api.received == []


def test_unknown_dataset_is_100_33(api):
    error = error_of(post(api, dataset="999"))
    assert (error["code"], error["error_subcode"]) == (100, 33)


def test_any_token_when_no_tokens_are_configured():
    with FakeGraphAPI() as api:
        assert post(api, dataset="5", token="whatever").status_code == 200
        assert error_of(post(api, dataset="5", token=""))["code"] == 190


def test_set_token_rotates(api):
    api.set_token(DATASET, "new-token")
    assert error_of(post(api))["code"] == 190
    assert post(api, token="new-token").status_code == 200


def test_token_in_url_is_accepted_but_recorded(api):
    url = f"{api.url}/v26.0/{DATASET}/events?access_token={TOKEN}"
    response = requests.post(url, json={"data": [sample_event()]}, timeout=5)
    assert response.status_code == 200
    assert api.requests[-1].token_in_url is True


def test_appsecret_proof_is_checked_when_configured():
    with FakeGraphAPI(tokens={DATASET: TOKEN}, app_secret="s3cret") as api:
        proof = hmac.new(b"s3cret", TOKEN.encode(), hashlib.sha256).hexdigest()
        assert post(api, appsecret_proof=proof).status_code == 200
        assert api.requests[-1].had_appsecret_proof is True
        assert error_of(post(api))["code"] == 100
        assert error_of(post(api, appsecret_proof="0" * 64))["code"] == 100
        assert len(api.received) == 1


# -- validation ------------------------------------------------------------------------------


def assert_rejected(response: requests.Response, subcode: int, index: int) -> dict[str, Any]:
    assert response.status_code == 400
    error = error_of(response)
    assert error["code"] == 100
    assert error["error_subcode"] == subcode
    assert error["is_transient"] is False
    assert f"index {index}" in error["error_user_title"]
    assert error["error_user_msg"]
    assert error["fbtrace_id"]
    return error


def test_at_most_1000_events(api):
    assert post(api, [sample_event(str(i)) for i in range(1000)]).status_code == 200
    api.reset()
    response = post(api, [sample_event(str(i)) for i in range(1001)])
    assert error_of(response)["code"] == 100
    assert api.received == []
    assert api.requests[-1].n_events == 1001


@pytest.mark.parametrize("data", [None, "not a list", []])
def test_data_must_be_a_non_empty_list(api, data):
    body: dict[str, Any] = {"access_token": TOKEN}
    if data is not None:
        body["data"] = data
    response = requests.post(f"{api.url}/v26.0/{DATASET}/events", json=body, timeout=5)
    assert error_of(response)["code"] == 100


@pytest.mark.parametrize("missing", ["event_name", "event_time", "action_source"])
def test_required_fields(api, missing):
    bad = sample_event("bad")
    del bad[missing]
    response = post(api, [sample_event("ok"), bad])
    assert_rejected(response, SUBCODE_INVALID, 1)
    assert api.received == []  # the whole batch is rejected


@pytest.mark.parametrize(
    "change",
    [
        {"event_source_url": None},
        {"event_source_url": "shop.example/page"},
        {"user_data": {"em": hashlib.sha256(b"x").hexdigest()}},
    ],
)
def test_website_events_need_url_and_user_agent(api, change):
    assert_rejected(post(api, [sample_event(**change)]), SUBCODE_INVALID, 0)


def test_non_website_events_need_neither(api):
    event = sample_event(action_source="system_generated", user_data={"external_id": "a" * 64})
    del event["event_source_url"]
    assert post(api, [event]).status_code == 200


@pytest.mark.parametrize("key", ["em", "ph", "fn", "ln", "ct", "country", "external_id"])
@pytest.mark.parametrize("as_list", [False, True])
def test_hashed_keys_must_be_sha256_hex(api, key, as_list):
    value: Any = ["plain value"] if as_list else "plain value"
    user_data = {**sample_event()["user_data"], key: value}
    response = post(api, [sample_event("ok"), sample_event("bad", user_data=user_data)])
    error = assert_rejected(response, SUBCODE_NOT_HASHED, 1)
    assert "Not Hashed" in error["error_user_title"]


def test_hashed_values_may_be_upper_case_hex(api):
    user_data = {**sample_event()["user_data"], "ph": "AB" * 32}
    assert post(api, [sample_event(user_data=user_data)]).status_code == 200


def test_never_hashed_keys_are_not_checked(api):
    user_data = {**sample_event()["user_data"], "fbp": "fb.1.1700000000000.123", "fbc": "fb.1.x"}
    assert post(api, [sample_event(user_data=user_data)]).status_code == 200


@pytest.mark.parametrize(
    "user_data",
    [
        {},
        {"client_user_agent": "UA", "ct": "a" * 64},
        {"client_user_agent": "UA", "db": "b" * 64},
    ],
)
def test_insufficient_customer_information(api, user_data):
    assert_rejected(post(api, [sample_event(user_data=user_data)]), SUBCODE_INVALID, 0)


def test_an_old_event_rejects_the_whole_batch(api):
    old = sample_event("old", event_time=int(time.time()) - 8 * DAY)
    response = post(api, [sample_event("new"), old])
    assert_rejected(response, SUBCODE_TOO_OLD, 1)
    assert api.received == []


def test_physical_store_events_may_be_62_days_old(api):
    def store_event(days: int) -> dict[str, Any]:
        event = sample_event(
            str(days), action_source="physical_store", event_time=int(time.time()) - days * DAY
        )
        del event["event_source_url"]
        return event

    assert post(api, [store_event(30)]).status_code == 200
    assert_rejected(post(api, [store_event(63)]), SUBCODE_TOO_OLD, 0)


def test_purchase_needs_value_and_currency(api):
    purchase = sample_event(event_name="Purchase", custom_data={"value": 12.5})
    assert_rejected(post(api, [purchase]), SUBCODE_MISSING_PURCHASE_VALUE, 0)
    purchase["custom_data"]["currency"] = "USD"
    assert post(api, [purchase]).status_code == 200


def test_poison_event_rejects_the_batch_naming_its_index(api):
    api.poison_event_ids.add("p")
    response = post(api, [sample_event("a"), sample_event("b"), sample_event("p")])
    assert_rejected(response, SUBCODE_INVALID, 2)
    assert api.received == []
    assert post(api, [sample_event("a")]).status_code == 200


def test_unknown_path_and_method(api):
    response = requests.post(f"{api.url}/v26.0/{DATASET}/other", json={}, timeout=5)
    assert error_of(response)["code"] == 2500
    response = requests.get(f"{api.url}/v26.0/{DATASET}/events", timeout=5)
    assert error_of(response)["code"] == 100


def test_body_that_is_not_json(api):
    response = requests.post(
        f"{api.url}/v26.0/{DATASET}/events",
        data=b"{not json",
        headers={"Content-Type": "application/json"},
        timeout=5,
    )
    assert error_of(response)["code"] == 100


# -- faults ----------------------------------------------------------------------------------


def test_http_error_without_code_is_an_html_page(api):
    api.script(http_error(502))
    response = post(api)
    assert response.status_code == 502
    assert response.headers["Content-Type"].startswith("text/html")
    with pytest.raises(ValueError, match=r".+"):
        response.json()
    assert api.received == []
    assert api.requests[-1].status == 502
    assert api.requests[-1].fault == "http_error"


def test_http_error_with_code(api):
    api.script(http_error(500, code=2, is_transient=True, message="Service unavailable"))
    response = post(api)
    assert response.status_code == 500
    error = error_of(response)
    assert (error["code"], error["is_transient"], error["message"]) == (
        2,
        True,
        "Service unavailable",
    )


def test_graph_error_envelope(api):
    api.script(graph_error(100, 2804019, user_title="Bad", user_msg="Very bad"))
    error = error_of(post(api))
    assert error["code"] == 100
    assert error["error_subcode"] == 2804019
    assert error["error_user_title"] == "Bad"
    assert error["error_user_msg"] == "Very bad"
    assert error["type"] == "OAuthException"
    assert error["fbtrace_id"]
    assert api.requests[-1].error_code == 100
    assert api.requests[-1].error_subcode == 2804019


def test_throttle(api):
    api.script(throttle(), throttle(613))
    first, second = error_of(post(api)), error_of(post(api))
    assert (first["code"], first["error_subcode"]) == (17, 2446079)
    assert (second["code"], second["error_subcode"]) == (613, 1487742)
    assert post(api).status_code == 200  # the script is used up


def test_slow_beyond_the_client_timeout_still_processes(api):
    api.script(slow(0.5))
    with pytest.raises(requests.exceptions.ReadTimeout):
        post(api, [sample_event("late")], timeout=0.1)
    wait_for(lambda: api.received_ids() == ["late"])


def test_slow_within_the_client_timeout_answers(api):
    api.script(slow(0.05))
    assert post(api).status_code == 200


def test_drop_closes_without_answer(api):
    api.script(drop())
    with pytest.raises(requests.exceptions.ConnectionError):
        post(api)
    assert api.received == []
    assert api.requests[-1].status is None
    assert api.requests[-1].fault == "drop"
    assert post(api).status_code == 200


def test_reset_mid_response_after_processing(api):
    api.script(reset_mid_response())
    with pytest.raises(requests.exceptions.RequestException):
        post(api, [sample_event("r")])
    assert api.received_ids() == ["r"]  # Meta got them; only the answer was lost
    assert api.requests[-1].fault == "reset_mid_response"


def test_faults_per_dataset_come_first(api):
    api.set_token("2", TOKEN)
    api.script(graph_error(1), dataset_id="2")
    api.script(graph_error(2))
    assert error_of(post(api))["code"] == 2  # dataset 1 gets the global fault
    assert error_of(post(api, dataset="2"))["code"] == 1
    assert post(api, dataset="2").status_code == 200


def test_script_rejects_non_faults(api):
    with pytest.raises(TypeError):
        api.script("drop")


def test_closed_port_refuses():
    with pytest.raises(requests.exceptions.ConnectionError):
        requests.post(f"http://127.0.0.1:{closed_port()}/v26.0/1/events", json={}, timeout=2)


def test_keep_alive_connections_are_reused(api):
    with requests.Session() as session:
        for _ in range(3):
            body = {"data": [sample_event()], "access_token": TOKEN}
            response = session.post(f"{api.url}/v26.0/{DATASET}/events", json=body, timeout=5)
            assert response.status_code == 200
    assert len(api.requests) == 3


def test_stop_is_idempotent_and_frees_the_port():
    api = FakeGraphAPI().start()
    url = api.url
    api.stop()
    api.stop()
    with pytest.raises(requests.exceptions.ConnectionError):
        requests.post(f"{url}/v26.0/1/events", json={}, timeout=2)


def test_standalone_process_prints_its_url():
    root = Path(__file__).resolve().parent.parent
    process = subprocess.Popen(
        [sys.executable, "-m", "tests.fake_graph_api", "--port", "0", "--token", "42=tok"],
        cwd=root,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        url = process.stdout.readline().strip()
        assert url.startswith("http://127.0.0.1:")
        body = {"data": [sample_event()], "access_token": "tok"}
        response = requests.post(f"{url}/v26.0/42/events", json=body, timeout=5)
        assert response.json()["events_received"] == 1
    finally:
        process.terminate()
        process.wait(timeout=10)


def test_count_only_mode_keeps_counts_served_at_stats():
    with FakeGraphAPI() as api:
        api.keep_events = False
        url = f"{api.url}/v26.0/123/events"
        for _ in range(2):
            body = {"data": [sample_event("a"), sample_event("b")], "access_token": "t"}
            assert requests.post(url, json=body, timeout=5).status_code == 200
        stats = requests.get(f"{api.url}/__stats__", timeout=5).json()
        assert stats == {"requests": 2, "accepted": 4, "unique": 2}
        assert api.received == []
