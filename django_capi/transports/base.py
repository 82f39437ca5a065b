"""What every transport shares: the result types, the error classification and the send steps.

A transport turns one batch of already-built event payloads into exactly one request to
Meta's ``/{dataset_id}/events`` endpoint and reports what happened as a :class:`SendResult`.
It never retries and never raises for API or network failures: deciding what to do next
(retry, back off, park the events until the token is fixed, mark them failed) is the
delivery engine's job, driven by :attr:`SendResult.outcome`.
"""

from __future__ import annotations

import inspect
import json
import logging
import os
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Final
from urllib.parse import quote, quote_plus

from django.core.exceptions import ImproperlyConfigured
from django.db import models
from django.utils.module_loading import import_string

from django_capi.conf import DatasetConfig, get_setting

__all__ = [
    "AUTH_CODES",
    "AUTH_CODE_SUBCODES",
    "MAX_EVENTS_PER_REQUEST",
    "PERMISSION_CODES",
    "THROTTLE_CODES",
    "TRANSIENT_CODES",
    "BaseTransport",
    "GraphError",
    "Outcome",
    "RawResponse",
    "SendResult",
    "classify",
    "clear_transport_cache",
    "get_transport",
    "redact",
]

logger = logging.getLogger("django_capi.transports")

MAX_EVENTS_PER_REQUEST: Final = 1000
"""Meta accepts at most 1,000 events per request (contract: "Endpoint and request")."""


class RawEvent(str):
    """One event already serialized as JSON, as the event store holds it.

    The delivery engine hands stored payloads to the transport in this form, so that a
    batch of 1,000 events is neither decoded nor encoded again on its way to Meta.
    """

    __slots__ = ()

    def as_dict(self) -> dict[str, Any]:
        value = json.loads(self)
        if not isinstance(value, dict):
            raise ValueError("A stored event is a JSON object.")
        return value


#: What a transport sends: event payloads as mappings, or as JSON already (RawEvent).
OutgoingEvent = Mapping[str, Any] | RawEvent


def event_dict(event: OutgoingEvent) -> dict[str, Any]:
    """The event as a plain dict, whichever form it came in."""
    return event.as_dict() if isinstance(event, RawEvent) else dict(event)


# Error codes, from the contract (/work/shared/capi-contract.md, "Responses"), which cites
# Meta's Graph API error-handling guide and the Marketing API error reference.
# Decisions are made on these codes only, never on message text.
TRANSIENT_CODES: Final[frozenset[int]] = frozenset({1, 2, 341})
"""1 unknown error, 2 service temporarily unavailable, 341: wait and retry."""
THROTTLE_CODES: Final[frozenset[int]] = frozenset({4, 17, 32, 613})
"""4 app request limit, 17 user request limit, 32 page limit, 613 rate limit: back off."""
AUTH_CODES: Final[frozenset[int]] = frozenset({190, 102, 10})
"""190 invalid/expired token, 102 session key invalid, 10 permission denied."""
PERMISSION_CODES: Final[frozenset[int]] = frozenset(range(200, 300))
"""200-299: a permission is missing (configuration problem, like AUTH_CODES)."""
AUTH_CODE_SUBCODES: Final[frozenset[tuple[int, int]]] = frozenset({(100, 33)})
"""100/33: the dataset does not exist or the token cannot access it."""

REDACTED: Final = "[redacted]"


class Outcome(models.TextChoices):
    """What the engine should do with the events of one request."""

    SUCCESS = "success", "Success"
    """Meta accepted the batch."""
    TRANSIENT = "transient", "Transient failure"
    """No answer, a 5xx, or a transient Graph code: retry the same batch later."""
    THROTTLED = "throttled", "Throttled"
    """A rate limit: back off (exponentially) and retry."""
    AUTH = "auth", "Authorization problem"
    """Token or permission problem: hold the events until the configuration is fixed."""
    REJECTED = "rejected", "Rejected"
    """Meta refused the batch for its content: retrying it unchanged cannot succeed."""


@dataclass(frozen=True)
class GraphError:
    """The ``error`` object of a Graph API error response.

    ``code`` is None when the answer carried no Graph error object (an HTML 502 page, an
    unexpected body); ``type`` then says so (``NonJSONResponse``, ``UnexpectedResponse``,
    ``MissingAccessToken``) and ``message`` is a short, redacted description.
    """

    code: int | None = None
    subcode: int | None = None
    type: str = ""
    message: str = ""
    user_title: str = ""
    user_msg: str = ""
    is_transient: bool | None = None
    fbtrace_id: str = ""

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> GraphError:
        """Build from Meta's ``error`` object, tolerating missing or oddly typed fields."""
        transient = data.get("is_transient")
        return cls(
            code=_as_int(data.get("code")),
            subcode=_as_int(data.get("error_subcode")),
            type=_as_text(data.get("type")),
            message=_as_text(data.get("message")),
            user_title=_as_text(data.get("error_user_title")),
            user_msg=_as_text(data.get("error_user_msg")),
            is_transient=transient if isinstance(transient, bool) else None,
            fbtrace_id=_as_text(data.get("fbtrace_id")),
        )

    def as_dict(self) -> dict[str, Any]:
        """Return Meta's ``error`` object for this error (the inverse of :meth:`from_dict`)."""
        data: dict[str, Any] = {"message": self.message, "type": self.type, "code": self.code}
        if self.subcode is not None:
            data["error_subcode"] = self.subcode
        if self.is_transient is not None:
            data["is_transient"] = self.is_transient
        if self.user_title:
            data["error_user_title"] = self.user_title
        if self.user_msg:
            data["error_user_msg"] = self.user_msg
        if self.fbtrace_id:
            data["fbtrace_id"] = self.fbtrace_id
        return data

    def redacted(self, secrets: Iterable[str | None]) -> GraphError:
        """A copy with every secret removed from its text fields."""
        secrets = list(secrets)
        return GraphError(
            code=self.code,
            subcode=self.subcode,
            type=redact(self.type, secrets),
            message=redact(self.message, secrets),
            user_title=redact(self.user_title, secrets),
            user_msg=redact(self.user_msg, secrets),
            is_transient=self.is_transient,
            fbtrace_id=redact(self.fbtrace_id, secrets),
        )

    def __str__(self) -> str:
        code = "no code" if self.code is None else f"code {self.code}"
        if self.subcode is not None:
            code += f"/{self.subcode}"
        text = ": ".join(part for part in (self.user_title, self.message) if part)
        return f"{code} {self.type}: {text}".strip().rstrip(":")


@dataclass(frozen=True)
class SendResult:
    """The outcome of one request to Meta, safe to store and log (it never holds a token)."""

    outcome: Outcome
    http_status: int | None
    """None when no HTTP response arrived (timeout, connection error)."""
    events_sent: int
    events_received: int | None
    messages: list[Any] = field(default_factory=list)
    fbtrace_id: str = ""
    """Meta's trace id ("" when Meta omitted it): quote it to Meta support."""
    error: GraphError | None = None
    network_error: str = ""
    """Exception class and a short reason when no response arrived; "" otherwise."""
    duration_ms: int = 0

    @property
    def ok(self) -> bool:
        """True when Meta accepted the batch."""
        return self.outcome == Outcome.SUCCESS

    @property
    def summary(self) -> str:
        """One line describing the result, for logs and the admin."""
        parts = [str(self.outcome.value)]
        if self.http_status is not None:
            parts.append(f"HTTP {self.http_status}")
        if self.ok:
            parts.append(f"{self.events_received}/{self.events_sent} events received")
        if self.error is not None:
            parts.append(str(self.error))
        if self.network_error:
            parts.append(self.network_error)
        if self.fbtrace_id:
            parts.append(f"fbtrace_id={self.fbtrace_id}")
        return ", ".join(parts)


@dataclass(frozen=True)
class RawResponse:
    """What :meth:`BaseTransport.post` got back, before interpretation.

    ``status`` is None when no response arrived; ``network_error`` then says why. ``payload``
    is the decoded JSON body (None when the body was not JSON); ``text`` is the start of the
    raw body, for describing non-JSON answers; ``trace_id`` is the ``x-fb-trace-id`` header.
    """

    status: int | None
    payload: Any = None
    text: str = ""
    network_error: str = ""
    trace_id: str = ""


def classify(http_status: int | None, error: GraphError | None) -> Outcome:
    """Decide what a response means, from the HTTP status and the Graph error codes.

    Codes win over the HTTP status (a 500 carrying code 190 is an AUTH problem). No response
    at all, any 5xx and a 2xx whose body could not be read are TRANSIENT: the engine may
    resend the same batch, which is safe because Meta deduplicates on ``event_id``.
    """
    if error is not None:
        code, subcode = error.code, error.subcode
        if code in AUTH_CODES or code in PERMISSION_CODES:
            return Outcome.AUTH
        if code is not None and subcode is not None and (code, subcode) in AUTH_CODE_SUBCODES:
            return Outcome.AUTH
        if code in THROTTLE_CODES:
            return Outcome.THROTTLED
        if code in TRANSIENT_CODES or error.is_transient is True:
            return Outcome.TRANSIENT
    if http_status is None or http_status >= 500:
        return Outcome.TRANSIENT
    if http_status == 429:
        return Outcome.THROTTLED
    if 200 <= http_status < 300:
        if error is None:
            return Outcome.SUCCESS
        # A success status with an unreadable body: we cannot know whether the events
        # arrived, and resending is safe (deduplication), so retry.
        return Outcome.TRANSIENT if error.code is None else Outcome.REJECTED
    return Outcome.REJECTED


def redact(text: str, secrets: Iterable[str | None]) -> str:
    """Replace each secret in ``text`` (also URL-encoded) with ``[redacted]``."""
    forms: set[str] = set()
    for secret in secrets:
        if secret:
            forms.update({secret, quote(secret, safe=""), quote_plus(secret), quote(secret)})
    # Longest first, so that a secret containing another is replaced whole.
    for form in sorted(forms, key=len, reverse=True):
        text = text.replace(form, REDACTED)
    return text


class BaseTransport(ABC):
    """Sends one batch of event payloads to one dataset, in fixed steps.

    :meth:`send` checks the batch, then runs ``build_body`` -> ``post`` -> ``parse``.
    Subclasses implement :meth:`build_body` and :meth:`post`; :meth:`parse` reads Meta's
    success and error envelopes and rarely needs overriding. Instances are shared by every
    thread of a process (see :func:`get_transport`), so they must be thread-safe.
    """

    #: Answer AUTH without sending when the dataset has no access token, as Meta would.
    requires_token: bool = True
    #: Put RawEvent payloads into the body as they are (for transports that only serialize
    #: the body again); otherwise ``body["data"]`` holds dicts.
    keeps_raw_events: bool = False

    def send(self, dataset: DatasetConfig, events: Sequence[OutgoingEvent]) -> SendResult:
        """Send ``events`` (finished payloads, user_data hashed) to ``dataset`` once.

        Returns a :class:`SendResult` for every API or network failure. Raises ValueError
        only for a programming error: an empty batch or more than 1,000 events.
        """
        if not events:
            raise ValueError("A Conversions API request needs at least one event.")
        if len(events) > MAX_EVENTS_PER_REQUEST:
            raise ValueError(
                f"A Conversions API request takes at most {MAX_EVENTS_PER_REQUEST} events, "
                f"not {len(events)}."
            )
        started = time.monotonic()
        if self.requires_token and not dataset.access_token:
            result = self.missing_token(dataset, events)
        else:
            body = self.build_body(dataset, events)
            raw = self.post(dataset, body)
            result = self.parse(dataset, events, raw)
        duration_ms = int((time.monotonic() - started) * 1000)
        result = _with_duration(result, duration_ms)
        logger.debug(
            "%s: dataset %s, %d events: %s",
            type(self).__name__,
            dataset.dataset_id,
            len(events),
            redact(result.summary, self.secrets(dataset)),
        )
        return result

    def build_body(self, dataset: DatasetConfig, events: Sequence[OutgoingEvent]) -> dict[str, Any]:
        """The request body without credentials: ``data`` and the optional top-level fields."""
        data: list[Any] = [
            event if self.keeps_raw_events and isinstance(event, RawEvent) else event_dict(event)
            for event in events
        ]
        body: dict[str, Any] = {"data": data}
        if dataset.test_event_code:
            body["test_event_code"] = dataset.test_event_code
        if dataset.partner_agent:
            body["partner_agent"] = dataset.partner_agent
        return body

    @abstractmethod
    def post(self, dataset: DatasetConfig, body: dict[str, Any]) -> RawResponse:
        """Deliver ``body``; return what came back. Must not raise for network failures."""

    def secrets(self, dataset: DatasetConfig) -> list[str | None]:
        """Every string that must never appear in a result, a log line or an exception."""
        return [dataset.access_token]

    def parse(
        self, dataset: DatasetConfig, events: Sequence[OutgoingEvent], raw: RawResponse
    ) -> SendResult:
        """Turn Meta's answer (either envelope, or none) into a :class:`SendResult`."""
        secrets = self.secrets(dataset)
        if raw.status is None:
            return SendResult(
                outcome=classify(None, None),
                http_status=None,
                events_sent=len(events),
                events_received=None,
                network_error=redact(raw.network_error, secrets) or "no response",
            )
        payload = raw.payload
        error: GraphError | None = None
        events_received: int | None = None
        messages: list[Any] = []
        fbtrace_id = ""
        if isinstance(payload, Mapping) and isinstance(payload.get("error"), Mapping):
            error = GraphError.from_dict(payload["error"]).redacted(secrets)
            fbtrace_id = error.fbtrace_id
        elif (
            200 <= raw.status < 300
            and isinstance(payload, Mapping)
            and _as_int(payload.get("events_received")) is not None
        ):
            events_received = _as_int(payload.get("events_received"))
            found = payload.get("messages")
            messages = _redact_json(found, secrets) if isinstance(found, list) else []
            fbtrace_id = redact(_as_text(payload.get("fbtrace_id")), secrets)
        else:
            snippet = " ".join(raw.text.split())[:200]
            error = GraphError(
                type="UnexpectedResponse" if payload is not None else "NonJSONResponse",
                message=redact(snippet, secrets) or "(empty body)",
            )
        return SendResult(
            outcome=classify(raw.status, error),
            http_status=raw.status,
            events_sent=len(events),
            events_received=events_received,
            messages=messages,
            fbtrace_id=fbtrace_id or redact(raw.trace_id, secrets),
            error=error,
        )

    def missing_token(self, dataset: DatasetConfig, events: Sequence[OutgoingEvent]) -> SendResult:
        """The result for a dataset without an access token: AUTH, nothing sent."""
        return SendResult(
            outcome=Outcome.AUTH,
            http_status=None,
            events_sent=len(events),
            events_received=None,
            error=GraphError(
                type="MissingAccessToken",
                message=f"No access token is configured for dataset {dataset.dataset_id}.",
            ),
        )


def _with_duration(result: SendResult, duration_ms: int) -> SendResult:
    return replace(result, duration_ms=duration_ms)


def _as_int(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        return int(value)
    return None


def _as_text(value: Any) -> str:
    if value is None:
        return ""
    return value if isinstance(value, str) else str(value)


def _redact_json(value: Any, secrets: Sequence[str | None]) -> Any:
    """Redact every string inside decoded JSON (messages may echo request parameters)."""
    if isinstance(value, str):
        return redact(value, secrets)
    if isinstance(value, list):
        return [_redact_json(item, secrets) for item in value]
    if isinstance(value, dict):
        return {key: _redact_json(item, secrets) for key, item in value.items()}
    return value


def dumps(body: Mapping[str, Any]) -> bytes:
    """Compact UTF-8 JSON, as sent on the wire; RawEvent items of ``data`` go in verbatim."""
    data = body.get("data")
    if not isinstance(data, list) or not any(isinstance(item, RawEvent) for item in data):
        return json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode()
    rest = {key: value for key, value in body.items() if key != "data"}
    events = ",".join(
        item if isinstance(item, RawEvent) else json.dumps(item, separators=(",", ":"))
        for item in data
    )
    tail = json.dumps(rest, separators=(",", ":"), ensure_ascii=False)[1:-1]
    return ('{"data":[' + events + "]" + ("," + tail if tail else "") + "}").encode()


_cache: dict[tuple[int, str], BaseTransport] = {}
_cache_lock = threading.Lock()


def get_transport() -> BaseTransport:
    """The transport named by ``CAPI['TRANSPORT']`` (one shared instance per process).

    Raises ImproperlyConfigured when the import string cannot be imported or does not name
    a :class:`BaseTransport` subclass.
    """
    path = get_setting("TRANSPORT")
    key = (os.getpid(), str(path))
    transport = _cache.get(key)
    if transport is not None:
        return transport
    with _cache_lock:
        transport = _cache.get(key)
        if transport is None:
            try:
                cls = import_string(str(path))
            except ImportError as exc:
                raise ImproperlyConfigured(
                    f"CAPI['TRANSPORT'] = {path!r} cannot be imported: {exc}"
                ) from exc
            if not (isinstance(cls, type) and issubclass(cls, BaseTransport)):
                raise ImproperlyConfigured(
                    f"CAPI['TRANSPORT'] = {path!r} is not a BaseTransport subclass."
                )
            if inspect.isabstract(cls):
                raise ImproperlyConfigured(
                    f"CAPI['TRANSPORT'] = {path!r} is abstract; name a concrete transport."
                )
            transport = cls()
            # Instances cached before a fork are dropped with their process id.
            for stale in [k for k in _cache if k[0] != key[0]]:
                del _cache[stale]
            _cache[key] = transport
    return transport


def clear_transport_cache() -> None:
    """Forget the shared transport instances (tests; settings changed at runtime)."""
    with _cache_lock:
        _cache.clear()
