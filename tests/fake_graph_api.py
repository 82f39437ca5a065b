"""A fake Meta Graph API (Conversions API endpoint) on a real socket, for tests and benchmarks.

In tests::

    with FakeGraphAPI(tokens={"123": "token"}) as api:
        settings.CAPI["API_BASE_URL"] = api.url
        api.script(throttle(), slow(2.0))   # the next two requests misbehave
        ...
        assert api.received_ids("123") == ["e1", "e2"]

Standalone (a benchmark target)::

    python -m tests.fake_graph_api --port 8765 [--token 123=secret] [--latency 0.1]

prints its URL on the first line of stdout, then serves until interrupted. ``--count-only``
keeps counts only (``GET /__stats__``); ``--log-acceptance`` also keeps each accepted
event's id and acceptance time (``GET /__accepted__``: ``[[event_id, unix_time], ...]``).

The server answers ``POST /{version}/{dataset_id}/events`` like Meta does, as described in
the contract (/work/shared/capi-contract.md): it checks the token (in the body or, recorded
as a mistake, in the URL), validates every event and rejects the whole batch with Meta's
error envelope when one event is invalid, and otherwise answers
``{"events_received": n, "messages": [], "fbtrace_id": ...}``.

Faults are queued with :meth:`FakeGraphAPI.script` and consumed one per request. A refused
connection cannot be simulated on a listening port: tests use a closed port for that
(see :func:`closed_port`).
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import hmac
import json
import logging
import re
import secrets
import signal
import socket
import struct
import sys
import threading
import time
from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, ClassVar, Final
from urllib.parse import parse_qs, urlsplit

__all__ = [
    "ACTION_SOURCES",
    "HASHED_USER_DATA_KEYS",
    "SUBCODE_INVALID",
    "SUBCODE_MISSING_PURCHASE_VALUE",
    "SUBCODE_NOT_HASHED",
    "SUBCODE_TOO_OLD",
    "DropFault",
    "FakeGraphAPI",
    "Fault",
    "HTTPErrorFault",
    "RequestRecord",
    "ResetMidResponseFault",
    "SlowFault",
    "closed_port",
    "drop",
    "graph_error",
    "http_error",
    "reset_mid_response",
    "sample_event",
    "slow",
    "throttle",
]

logger = logging.getLogger("tests.fake_graph_api")

MAX_EVENTS: Final = 1000
ACTION_SOURCES: Final = frozenset(
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
# Meta only recommends hashing external_id; the fake requires it because django_capi always
# hashes it (so a plain external_id here means a bug). Tests may change FakeGraphAPI.hashed_keys.
HASHED_USER_DATA_KEYS: Final = frozenset(
    {"em", "ph", "fn", "ln", "ge", "db", "ct", "st", "zp", "country", "external_id"}
)
# Since Graph API v13, customer information made only of (a subset of) one of these is refused.
TOO_BROAD: Final = (
    frozenset({"ct", "country", "st", "zp", "ge", "client_user_agent"}),
    frozenset({"db", "client_user_agent"}),
    frozenset({"fn", "ge"}),
    frozenset({"ln", "ge"}),
)
# Subcodes named in the contract; every other validation error uses SUBCODE_INVALID, the
# fake's own generic "invalid parameter" subcode in Meta's 2804xxx range.
SUBCODE_TOO_OLD: Final = 2804003
SUBCODE_MISSING_PURCHASE_VALUE: Final = 2804009
SUBCODE_NOT_HASHED: Final = 2804016
SUBCODE_INVALID: Final = 2804019

_SHA256_HEX = re.compile(r"[0-9a-fA-F]{64}")
_EVENTS_PATH = re.compile(r"^/(v\d+\.\d+)/([^/]+)/events/?$")
_DAY = 24 * 3600

# Typical messages for the codes in the contract (Graph API error reference).
_MESSAGES: Final[dict[int, str]] = {
    1: "An unknown error occurred",
    2: "An unexpected error has occurred. Please retry your request later.",
    4: "Application request limit reached",
    10: "Application does not have permission for this action",
    17: "User request limit reached",
    32: "Page request limit reached",
    100: "Invalid parameter",
    102: "Session key invalid or no longer valid",
    190: "Invalid OAuth access token - Cannot parse access token",
    200: "Permissions error",
    341: "Application limit reached",
    613: "Calls to this api have exceeded the rate limit.",
}
_THROTTLE_SUBCODES: Final[dict[int, int]] = {17: 2446079, 613: 1487742}


# -- faults ------------------------------------------------------------------------------


class Fault:
    """How the server misbehaves for one request (see the factory functions below)."""

    name: ClassVar[str] = "fault"


@dataclass(frozen=True)
class HTTPErrorFault(Fault):
    """Answer ``status`` with a Graph error envelope, or with ``body`` as HTML."""

    name: ClassVar[str] = "http_error"
    status: int
    error: Mapping[str, Any] | None = None
    body: str = ""


@dataclass(frozen=True)
class SlowFault(Fault):
    """Wait ``seconds``, then process and answer normally (the events ARE received)."""

    name: ClassVar[str] = "slow"
    seconds: float


@dataclass(frozen=True)
class DropFault(Fault):
    """Close the connection without reading further or answering (nothing received)."""

    name: ClassVar[str] = "drop"


@dataclass(frozen=True)
class ResetMidResponseFault(Fault):
    """Process the request (the events ARE received), send the headers, then reset."""

    name: ClassVar[str] = "reset_mid_response"


def _error_object(
    code: int,
    subcode: int | None = None,
    *,
    message: str | None = None,
    is_transient: bool | None = None,
    type: str = "OAuthException",
    user_title: str = "",
    user_msg: str = "",
) -> dict[str, Any]:
    error: dict[str, Any] = {
        "message": message if message is not None else _MESSAGES.get(code, "An error occurred"),
        "type": type,
        "code": code,
    }
    if subcode is not None:
        error["error_subcode"] = subcode
    error["is_transient"] = bool(is_transient) if is_transient is not None else code in (1, 2)
    if user_title:
        error["error_user_title"] = user_title
    if user_msg:
        error["error_user_msg"] = user_msg
    return error


def http_error(
    status: int,
    code: int | None = None,
    subcode: int | None = None,
    is_transient: bool | None = None,
    message: str | None = None,
    *,
    body: str | None = None,
) -> HTTPErrorFault:
    """An HTTP error; with no ``code`` (and no ``is_transient``), a non-JSON HTML page."""
    if code is None and is_transient is None:
        page = body if body is not None else _html_page(status)
        return HTTPErrorFault(status=status, body=page)
    error = _error_object(code if code is not None else 1, subcode, message=message)
    if code is None:
        del error["code"]
    if is_transient is not None:
        error["is_transient"] = is_transient
    return HTTPErrorFault(status=status, error=error)


def graph_error(
    code: int,
    subcode: int | None = None,
    status: int = 400,
    *,
    message: str | None = None,
    is_transient: bool | None = None,
    type: str = "OAuthException",
    user_title: str = "",
    user_msg: str = "",
) -> HTTPErrorFault:
    """Meta's error envelope with these codes (HTTP 400 unless ``status`` is given)."""
    error = _error_object(
        code,
        subcode,
        message=message,
        is_transient=is_transient,
        type=type,
        user_title=user_title,
        user_msg=user_msg,
    )
    return HTTPErrorFault(status=status, error=error)


def throttle(code: int = 17, subcode: int | None = None, status: int = 400) -> HTTPErrorFault:
    """A rate-limit error (code 17 "User request limit reached" by default)."""
    return graph_error(code, subcode or _THROTTLE_SUBCODES.get(code), status, is_transient=True)


def slow(seconds: float) -> SlowFault:
    """Sleep ``seconds`` (cut short by :meth:`FakeGraphAPI.stop`) before answering normally."""
    return SlowFault(seconds=seconds)


def drop() -> DropFault:
    """Close the connection without any answer."""
    return DropFault()


def reset_mid_response() -> ResetMidResponseFault:
    """Send the status line and headers, part of the body, then reset the connection."""
    return ResetMidResponseFault()


def closed_port() -> int:
    """A local port nothing listens on (bound then released), for "connection refused"."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def sample_event(event_id: str = "e1", **overrides: Any) -> dict[str, Any]:
    """A valid website event (hashed email, current time) the fake accepts; override any key."""
    event: dict[str, Any] = {
        "event_name": "PageView",
        "event_time": int(time.time()),
        "event_id": event_id,
        "action_source": "website",
        "event_source_url": "https://shop.example/",
        "user_data": {
            "em": [hashlib.sha256(b"someone@example.com").hexdigest()],
            "client_user_agent": "Mozilla/5.0 (X11; Linux x86_64)",
            "client_ip_address": "203.0.113.7",
        },
    }
    event.update(overrides)
    return event


def _html_page(status: int) -> str:
    return (
        f"<!DOCTYPE html><html><head><title>Error {status}</title></head>"
        f"<body><h1>{status}</h1><p>Sorry, something went wrong.</p></body></html>"
    )


# -- records -----------------------------------------------------------------------------


@dataclass(frozen=True)
class RequestRecord:
    """One request the server got, and what it answered (``status`` None: no answer)."""

    dataset_id: str
    api_version: str
    n_events: int
    status: int | None
    test_event_code: str | None
    partner_agent: str | None
    had_appsecret_proof: bool
    token_in_url: bool
    fault: str = ""
    error_code: int | None = None
    error_subcode: int | None = None
    method: str = "POST"
    content_type: str = ""


@dataclass
class _Parsed:
    """A decoded request."""

    method: str
    api_version: str = ""
    dataset_id: str = ""
    path_ok: bool = False
    fields: dict[str, Any] = field(default_factory=dict)
    body_ok: bool = True
    token_in_url: bool = False
    content_type: str = ""

    @property
    def events(self) -> list[Any] | None:
        data = self.fields.get("data")
        return data if isinstance(data, list) else None

    def text(self, name: str) -> str | None:
        value = self.fields.get(name)
        return value if isinstance(value, str) else None


@dataclass
class _Answer:
    status: int
    body: dict[str, Any]
    accepted: list[dict[str, Any]] = field(default_factory=list)


class _InvalidEvent(Exception):
    def __init__(self, subcode: int, title: str, msg: str) -> None:
        super().__init__(title)
        self.subcode, self.title, self.msg = subcode, title, msg


# -- the server --------------------------------------------------------------------------


class FakeGraphAPI:
    """A threaded HTTP server on 127.0.0.1 that behaves like the Conversions API endpoint.

    ``tokens`` maps dataset ids to their valid token; a dataset not in it is unknown
    (code 100, subcode 33). With ``tokens=None`` any non-empty token is accepted.
    With ``app_secret``, ``appsecret_proof`` is required and checked. ``latency`` delays
    every answer (seconds), for benchmarks.
    """

    def __init__(
        self,
        tokens: dict[str, str] | None = None,
        *,
        app_secret: str | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        latency: float = 0.0,
    ) -> None:
        self._initial_tokens = dict(tokens) if tokens is not None else None
        self.tokens: dict[str, str] = dict(tokens or {})
        self.accept_any_token = tokens is None
        self.app_secret = app_secret
        self.latency = latency
        self.host, self.port = host, port
        self.url = ""
        self.received: list[dict[str, Any]] = []
        self.requests: list[RequestRecord] = []
        self.poison_event_ids: set[str] = set()
        self.hashed_keys: frozenset[str] = HASHED_USER_DATA_KEYS
        self.omit_fbtrace_id = False
        # With keep_events False only counts are kept (``stats``, served at GET /__stats__),
        # so a benchmark can send millions of events without the fake growing.
        self.keep_events = True
        self.stats: dict[str, int] = {"requests": 0, "accepted": 0, "unique": 0}
        self._unique_ids: set[str] = set()
        # With log_acceptance True, also (event_id, unix time) of every accepted event, in
        # order, duplicates kept (served at GET /__accepted__): a load benchmark's delivery lag.
        self.log_acceptance = False
        self.acceptance_log: list[tuple[str, float]] = []
        self._received_by: list[tuple[str, dict[str, Any]]] = []
        self._faults: dict[str | None, deque[Fault]] = {}
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._connections: set[socket.socket] = set()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle

    def start(self) -> FakeGraphAPI:
        """Listen and serve in a daemon thread; sets :attr:`url`."""
        if self._server is not None:
            return self
        self._stopping.clear()
        server = _Server((self.host, self.port), _Handler)
        server.api = self
        self._server = server
        self.port = server.server_address[1]
        self.url = f"http://{self.host}:{self.port}"
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and close every open connection (slow answers are cut short)."""
        server, self._server = self._server, None
        if server is None:
            return
        self._stopping.set()
        server.shutdown()
        server.server_close()
        with self._lock:
            connections = list(self._connections)
        for conn in connections:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> FakeGraphAPI:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # -- test controls

    def script(self, *faults: Fault, dataset_id: str | None = None) -> None:
        """Queue faults, consumed one per request (to ``dataset_id`` first, if given)."""
        for fault in faults:
            if not isinstance(fault, Fault):
                raise TypeError(f"Not a fault: {fault!r}")
        with self._lock:
            self._faults.setdefault(dataset_id, deque()).extend(faults)

    def set_token(self, dataset_id: str, token: str) -> None:
        """Make ``token`` the only valid token of ``dataset_id`` (the old one gets 190)."""
        with self._lock:
            self.tokens[str(dataset_id)] = token

    def received_ids(self, dataset_id: str | None = None) -> list[str]:
        """``event_id`` of every accepted event, in order, duplicates kept."""
        with self._lock:
            return [
                str(event.get("event_id"))
                for dataset, event in self._received_by
                if dataset_id is None or dataset == str(dataset_id)
            ]

    def reset(self) -> None:
        """Forget requests, received events, faults and poison ids; restore the tokens."""
        with self._lock:
            self.received.clear()
            self._received_by.clear()
            self.requests.clear()
            self.stats = {"requests": 0, "accepted": 0, "unique": 0}
            self._unique_ids.clear()
            self.acceptance_log.clear()
            self._faults.clear()
            self.poison_event_ids.clear()
            self.tokens = dict(self._initial_tokens or {})
            self.accept_any_token = self._initial_tokens is None
            self.hashed_keys = HASHED_USER_DATA_KEYS
            self.omit_fbtrace_id = False

    # -- internals (called by the handler threads)

    def _next_fault(self, dataset_id: str) -> Fault | None:
        with self._lock:
            for key in (dataset_id, None):
                queue = self._faults.get(key)
                if queue:
                    return queue.popleft()
        return None

    def _record(self, record: RequestRecord, accepted: Iterable[dict[str, Any]] = ()) -> None:
        accepted = list(accepted)
        with self._lock:
            if self.log_acceptance:
                now = time.time()
                self.acceptance_log.extend((str(event.get("event_id")), now) for event in accepted)
            if not self.keep_events:  # counting mode, for long benchmark runs
                self.stats["requests"] += 1
                for event in accepted:
                    self.stats["accepted"] += 1
                    self._unique_ids.add(str(event.get("event_id")))
                self.stats["unique"] = len(self._unique_ids)
                return
            for event in accepted:
                self.received.append(event)
                self._received_by.append((record.dataset_id, event))
            self.requests.append(record)

    def _wait(self, seconds: float) -> None:
        if seconds > 0:
            self._stopping.wait(seconds)

    def _trace_id(self) -> str:
        return "A" + secrets.token_urlsafe(16)

    def _error(self, status: int, error: Mapping[str, Any]) -> _Answer:
        """An error answer (with an fbtrace_id unless :attr:`omit_fbtrace_id`)."""
        body = dict(error)
        if not self.omit_fbtrace_id:
            body.setdefault("fbtrace_id", self._trace_id())
        return _Answer(status, {"error": body})

    def _process(self, request: _Parsed) -> _Answer:
        """Validate one decoded request the way Meta does; accept or reject it whole."""
        if request.method != "POST":
            return self._error(
                400,
                _error_object(
                    100,
                    message=f"Unsupported {request.method.lower()} request.",
                    type="GraphMethodException",
                ),
            )
        if not request.path_ok:
            return self._error(
                400, _error_object(2500, message="Unknown path components", type="OAuthException")
            )
        if not request.body_ok:
            return self._error(400, _error_object(100, message="Could not parse the request body"))
        token = request.text("access_token")
        error = self._check_token(request.dataset_id, token, request.text("appsecret_proof"))
        if error is not None:
            return error
        events = request.events
        if events is None:
            message = (
                "The parameter data is required"
                if "data" not in request.fields
                else "(#100) param data must be an array."
            )
            return self._error(400, _error_object(100, message=message))
        if not events:
            return self._error(
                400, _error_object(100, message="(#100) param data must be a non-empty array.")
            )
        if len(events) > MAX_EVENTS:
            return self._error(
                400,
                _error_object(
                    100,
                    SUBCODE_INVALID,
                    message=f"(#100) param data must be an array of maximum {MAX_EVENTS} elements.",
                    user_title="Too Many Events",
                    user_msg=f"A request may carry at most {MAX_EVENTS} events; got {len(events)}.",
                ),
            )
        now = time.time()
        for index, event in enumerate(events):
            try:
                self._check_event(event, now)
            except _InvalidEvent as invalid:
                return self._error(
                    400,
                    _error_object(
                        100,
                        invalid.subcode,
                        message="Invalid parameter",
                        is_transient=False,
                        user_title=f"{invalid.title} at index {index}",
                        user_msg=f"{invalid.msg} (event at index {index})",
                    ),
                )
        body: dict[str, Any] = {"events_received": len(events), "messages": []}
        if not self.omit_fbtrace_id:
            body["fbtrace_id"] = self._trace_id()
        return _Answer(200, body, accepted=[dict(event) for event in events])

    def _check_token(self, dataset_id: str, token: str | None, proof: str | None) -> _Answer | None:
        with self._lock:
            expected = self.tokens.get(dataset_id)
            accept_any = self.accept_any_token
        if not token:
            return self._error(400, _error_object(190, message="An access token is required."))
        if expected is None and not accept_any:
            return self._error(
                400,
                _error_object(
                    100,
                    33,
                    message=(
                        f"Unsupported post request. Object with ID '{dataset_id}' does not "
                        "exist, cannot be loaded due to missing permissions, or does not "
                        "support this operation."
                    ),
                    type="GraphMethodException",
                ),
            )
        if expected is not None and not hmac.compare_digest(token.encode(), expected.encode()):
            return self._error(
                400,
                _error_object(
                    190,
                    460,
                    message=(
                        "Error validating access token: The session has been invalidated "
                        "because the user changed their password or Facebook has changed "
                        "the session for security reasons."
                    ),
                ),
            )
        if self.app_secret is not None:
            wanted = hmac.new(self.app_secret.encode(), token.encode(), hashlib.sha256)
            if not proof:
                return self._error(
                    400,
                    _error_object(
                        100, message="appsecret_proof argument must be passed as a parameter"
                    ),
                )
            if not hmac.compare_digest(proof.encode(), wanted.hexdigest().encode()):
                return self._error(
                    400,
                    _error_object(
                        100, message="Invalid appsecret_proof provided in the API argument"
                    ),
                )
        return None

    def _check_event(self, event: Any, now: float) -> None:
        if not isinstance(event, dict):
            raise _InvalidEvent(SUBCODE_INVALID, "Invalid Event", "An event must be an object.")
        name = event.get("event_name")
        if not isinstance(name, str) or not name.strip():
            raise _InvalidEvent(SUBCODE_INVALID, "Missing Event Name", "event_name is required.")
        event_time = event.get("event_time")
        if not isinstance(event_time, int) or isinstance(event_time, bool):
            raise _InvalidEvent(
                SUBCODE_INVALID, "Invalid Event Time", "event_time must be a Unix timestamp."
            )
        source = event.get("action_source")
        if source not in ACTION_SOURCES:
            raise _InvalidEvent(
                SUBCODE_INVALID,
                "Invalid Action Source",
                "action_source is required and must be a supported value.",
            )
        user_data = event.get("user_data")
        if not isinstance(user_data, dict):
            user_data = {}
        if source == "website":
            url = event.get("event_source_url")
            if not isinstance(url, str) or not url.startswith(("http://", "https://")):
                raise _InvalidEvent(
                    SUBCODE_INVALID,
                    "Missing Event Source URL",
                    "Website events require event_source_url.",
                )
            agent = user_data.get("client_user_agent")
            if not isinstance(agent, str) or not agent.strip():
                raise _InvalidEvent(
                    SUBCODE_INVALID,
                    "Missing Client User Agent",
                    "Website events require client_user_agent in user_data.",
                )
        given = frozenset(key for key, value in user_data.items() if value not in (None, "", []))
        if not given or any(given <= broad for broad in TOO_BROAD):
            raise _InvalidEvent(
                SUBCODE_INVALID,
                "Insufficient Customer Information",
                "user_data needs more customer information parameters.",
            )
        for key in sorted(given & self.hashed_keys):
            value = user_data[key]
            values = value if isinstance(value, list) else [value]
            if not all(isinstance(v, str) and _SHA256_HEX.fullmatch(v) for v in values):
                raise _InvalidEvent(
                    SUBCODE_NOT_HASHED,
                    "User Parameter Not Hashed",
                    f"The parameter {key} in user_data must be hashed with SHA-256.",
                )
        if name == "Purchase":
            custom = event.get("custom_data")
            if (
                not isinstance(custom, dict)
                or custom.get("value") is None
                or not custom.get("currency")
            ):
                raise _InvalidEvent(
                    SUBCODE_MISSING_PURCHASE_VALUE,
                    "Missing Value for Purchase",
                    "Purchase events require custom_data.value and custom_data.currency.",
                )
        if str(event.get("event_id")) in self.poison_event_ids:
            raise _InvalidEvent(
                SUBCODE_INVALID, "Invalid Parameter", "The event contains an invalid parameter."
            )
        max_days = 62 if source == "physical_store" else 7
        if event_time < now - max_days * _DAY:
            raise _InvalidEvent(
                SUBCODE_TOO_OLD,
                "Event Timestamp Too Old",
                f"The timestamp for this event is too far in the past. Events need to be sent "
                f"from your server within {max_days} days of when they occurred.",
            )


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    api: FakeGraphAPI

    def handle_error(self, request: Any, client_address: Any) -> None:
        exc = sys.exc_info()[1]
        if isinstance(exc, OSError):  # the client went away (timeouts, resets): expected
            return
        logger.exception("fake Graph API: error while handling a request")


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, like Meta: lets clients reuse connections
    server_version = "FakeGraphAPI/1.0"
    server: _Server

    def setup(self) -> None:
        super().setup()
        # Headers and body go out as separate writes: without this, Nagle's algorithm and the
        # client's delayed ACK add ~40 ms to every small request, as no real server does.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        with self.server.api._lock:
            self.server.api._connections.add(self.connection)

    def finish(self) -> None:
        with contextlib.suppress(OSError):
            super().finish()
        with self.server.api._lock:
            self.server.api._connections.discard(self.connection)

    def log_message(self, format: str, *args: Any) -> None:
        logger.debug("fake Graph API: " + format, *args)

    def do_POST(self) -> None:
        self._serve("POST")

    def do_GET(self) -> None:
        if self.path == "/__stats__":
            with self.server.api._lock:
                body = json.dumps(self.server.api.stats).encode()
            self._send(200, body, "application/json")
            return
        if self.path == "/__accepted__":
            with self.server.api._lock:
                body = json.dumps(self.server.api.acceptance_log).encode()
            self._send(200, body, "application/json")
            return
        self._serve("GET")

    def do_DELETE(self) -> None:
        self._serve("DELETE")

    def _serve(self, method: str) -> None:
        api = self.server.api
        request = self._parse(method)
        fault = api._next_fault(request.dataset_id)
        api._wait(api.latency)
        events = request.events
        record: dict[str, Any] = {
            "dataset_id": request.dataset_id,
            "api_version": request.api_version,
            "n_events": len(events) if events is not None else 0,
            "test_event_code": request.text("test_event_code"),
            "partner_agent": request.text("partner_agent"),
            "had_appsecret_proof": bool(request.fields.get("appsecret_proof")),
            "token_in_url": request.token_in_url,
            "fault": fault.name if fault is not None else "",
            "method": method,
            "content_type": request.content_type,
        }
        if isinstance(fault, DropFault):
            api._record(RequestRecord(status=None, **record))
            self.close_connection = True  # a clean close, with no answer at all
            return
        if isinstance(fault, HTTPErrorFault):
            if fault.error is not None:
                answer = api._error(fault.status, fault.error)
                self._record_answer(record, answer)
                self._send_json(answer)
            else:
                api._record(RequestRecord(status=fault.status, **record))
                self._send(fault.status, fault.body.encode(), "text/html; charset=utf-8")
            return
        if isinstance(fault, SlowFault):
            api._wait(fault.seconds)
        answer = api._process(request)
        self._record_answer(record, answer)
        if isinstance(fault, ResetMidResponseFault):
            body = json.dumps(answer.body).encode()
            self.send_response(answer.status)
            self.send_header("Content-Type", "application/json; charset=UTF-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body[: len(body) // 2])
            self.wfile.flush()
            self.close_connection = True
            self._reset()
            return
        self._send_json(answer)

    def _record_answer(self, record: dict[str, Any], answer: _Answer) -> None:
        error = answer.body.get("error") or {}
        self.server.api._record(
            RequestRecord(
                status=answer.status,
                error_code=error.get("code"),
                error_subcode=error.get("error_subcode"),
                **record,
            ),
            accepted=answer.accepted,
        )

    def _parse(self, method: str) -> _Parsed:
        split = urlsplit(self.path)
        request = _Parsed(method=method)
        match = _EVENTS_PATH.match(split.path)
        if match:
            request.api_version, request.dataset_id = match.group(1), match.group(2)
            request.path_ok = True
        fields: dict[str, Any] = {}
        query = parse_qs(split.query)
        for key, values in query.items():
            fields[key] = values[-1]
        request.token_in_url = "access_token" in query
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length > 0 else b""
        content_type = (self.headers.get("Content-Type") or "").split(";")[0].strip().lower()
        request.content_type = content_type
        if raw:
            try:
                if content_type == "application/x-www-form-urlencoded":
                    # The Python SDK's encoding: form fields, with data as a JSON string.
                    form = {k: v[-1] for k, v in parse_qs(raw.decode()).items()}
                    if "data" in form:
                        form["data"] = json.loads(form["data"])
                        # The SDK sends each event as a JSON string inside the JSON array.
                        if isinstance(form["data"], list):
                            form["data"] = [
                                json.loads(item) if isinstance(item, str) else item
                                for item in form["data"]
                            ]
                    fields.update(form)
                else:
                    decoded = json.loads(raw)
                    if not isinstance(decoded, dict):
                        raise ValueError("not an object")
                    fields.update(decoded)
            except ValueError:
                request.body_ok = False
        request.fields = fields
        return request

    def _send_json(self, answer: _Answer) -> None:
        self._send(
            answer.status, json.dumps(answer.body).encode(), "application/json; charset=UTF-8"
        )

    def _send(self, status: int, body: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("x-fb-trace-id", self.server.api._trace_id())
        self.end_headers()
        self.wfile.write(body)

    def _reset(self) -> None:
        """Abort the connection with a TCP reset (SO_LINGER 0) rather than a clean close."""
        with contextlib.suppress(OSError):
            self.wfile.flush()
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.connection.close()


# -- standalone --------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    """Serve until interrupted; the first stdout line is the URL."""
    parser = argparse.ArgumentParser(description="A fake Meta Conversions API endpoint.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 lets the OS choose")
    parser.add_argument(
        "--token",
        action="append",
        default=[],
        metavar="DATASET=TOKEN",
        help="a valid token for a dataset (repeatable); without any, every token is accepted",
    )
    parser.add_argument("--app-secret", default=None, help="require appsecret_proof")
    parser.add_argument("--latency", type=float, default=0.0, help="seconds before each answer")
    parser.add_argument(
        "--count-only",
        action="store_true",
        help="keep counts (GET /__stats__) instead of every event, for long benchmark runs",
    )
    parser.add_argument(
        "--log-acceptance",
        action="store_true",
        help="also keep [event_id, unix time] of each accepted event (GET /__accepted__)",
    )
    args = parser.parse_args(argv)
    tokens: dict[str, str] | None = None
    for item in args.token:
        dataset_id, sep, token = item.partition("=")
        if not sep or not dataset_id or not token:
            parser.error(f"--token must look like DATASET=TOKEN, not {item!r}")
        tokens = {**(tokens or {}), dataset_id: token}
    api = FakeGraphAPI(
        tokens, app_secret=args.app_secret, host=args.host, port=args.port, latency=args.latency
    )
    api.keep_events = not args.count_only
    api.log_acceptance = args.log_acceptance
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    with api:
        sys.stdout.write(api.url + "\n")
        sys.stdout.flush()
        with contextlib.suppress(KeyboardInterrupt):
            done.wait()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
