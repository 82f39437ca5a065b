"""A transport for tests: keeps accepted requests in memory and plays scripted failures.

Accepted requests are appended to ``django_capi.outbox`` (looked up at every send, so tests
may clear or replace the list) as :class:`OutboxMessage` objects, which never hold the
token. Failed requests are not appended: the outbox is what "Meta" has received.

Failures are scripted with :func:`simulate` and consumed in order by the next sends; they are
turned into the same raw answers the Graph API gives, so they go through the same
:meth:`~django_capi.transports.base.BaseTransport.parse` and
:func:`~django_capi.transports.base.classify` as real responses.
"""

from __future__ import annotations

import itertools
import threading
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Final

import django_capi
from django_capi.conf import DatasetConfig
from django_capi.transports.base import BaseTransport, GraphError, Outcome, RawResponse

__all__ = ["LocmemTransport", "OutboxMessage", "get_outbox", "pending", "reset", "simulate"]


@dataclass(frozen=True)
class OutboxMessage:
    """One request LocmemTransport accepted (the token is deliberately not kept)."""

    dataset_id: str
    events: list[dict[str, Any]] = field(default_factory=list)
    test_event_code: str | None = None
    partner_agent: str | None = None


NETWORK_FAILURES: Final[dict[str, str]] = {
    "timeout": "ReadTimeout: simulated by LocmemTransport",
    "connect_timeout": "ConnectTimeout: simulated by LocmemTransport",
    "connection_error": "ConnectionError: simulated by LocmemTransport",
    "reset": "ConnectionError: connection reset by peer (simulated by LocmemTransport)",
}
"""Strings :func:`simulate` accepts for failures without an HTTP response."""

# The Graph error each non-success Outcome is simulated with (codes from the contract).
OUTCOME_ERRORS: Final[dict[Outcome, tuple[int, GraphError]]] = {
    Outcome.TRANSIENT: (
        503,
        GraphError(
            code=2,
            type="OAuthException",
            message="Service temporarily unavailable",
            is_transient=True,
        ),
    ),
    Outcome.THROTTLED: (
        400,
        GraphError(
            code=17,
            subcode=2446079,
            type="OAuthException",
            message="User request limit reached",
            is_transient=True,
        ),
    ),
    Outcome.AUTH: (
        400,
        GraphError(
            code=190,
            type="OAuthException",
            message="Error validating access token: the session has been invalidated",
            is_transient=False,
        ),
    ),
    Outcome.REJECTED: (
        400,
        GraphError(
            code=100,
            subcode=2804019,
            type="OAuthException",
            message="Invalid parameter",
            user_title="Server Side Api Parameter Error",
            user_msg="The event at index 0 is invalid (simulated by LocmemTransport).",
            is_transient=False,
        ),
    ),
}

_ANSWER_NORMALLY: Final = None
_lock = threading.Lock()
_scripts: dict[str | None, deque[RawResponse | None]] = {}
_counter = itertools.count(1)


def get_outbox() -> list[Any]:
    """``django_capi.outbox`` (created empty if the package does not define it yet)."""
    outbox: list[Any] = vars(django_capi).setdefault("outbox", [])
    return outbox


def simulate(
    outcome_or_error: Outcome | str | GraphError | None = None,
    *,
    times: int = 1,
    dataset_id: str | None = None,
    http_status: int | None = None,
) -> None:
    """Make the next ``times`` sends (to ``dataset_id``, or to any dataset) answer this way.

    ``outcome_or_error`` is a :class:`GraphError` (answered with ``http_status``, default
    400), an :class:`Outcome` or its value (answered with a typical Graph error for it;
    ``"success"`` answers normally), or one of ``"timeout"``, ``"connect_timeout"``,
    ``"connection_error"``, ``"reset"`` (no HTTP response). With only ``http_status``, the
    answer is a non-JSON page with that status, e.g. ``simulate(http_status=503)``.
    Scripts for a dataset are used before scripts for any dataset.
    """
    if times < 1:
        raise ValueError("times must be at least 1.")
    answer = _scripted_answer(outcome_or_error, http_status)
    key = None if dataset_id is None else str(dataset_id)
    with _lock:
        _scripts.setdefault(key, deque()).extend([answer] * times)


def pending(dataset_id: str | None = None) -> int:
    """How many scripted answers are still queued (for ``dataset_id``, or for any dataset)."""
    with _lock:
        return len(_scripts.get(None if dataset_id is None else str(dataset_id), ()))


def reset() -> None:
    """Forget every scripted answer and empty ``django_capi.outbox``."""
    with _lock:
        _scripts.clear()
    get_outbox().clear()


def _scripted_answer(
    outcome_or_error: Outcome | str | GraphError | None, http_status: int | None
) -> RawResponse | None:
    if isinstance(outcome_or_error, GraphError):
        return RawResponse(status=http_status or 400, payload={"error": outcome_or_error.as_dict()})
    if outcome_or_error is None:
        if http_status is None:
            raise ValueError("simulate() needs an outcome, an error or an http_status.")
        if 200 <= http_status < 300:
            return _ANSWER_NORMALLY
        page = f"<html><body><h1>{http_status}</h1>simulated</body></html>"
        return RawResponse(status=http_status, text=page)
    if outcome_or_error in NETWORK_FAILURES:
        return RawResponse(status=None, network_error=NETWORK_FAILURES[str(outcome_or_error)])
    try:
        outcome = Outcome(outcome_or_error)
    except ValueError:
        choices = sorted([*Outcome.values, *NETWORK_FAILURES])
        raise ValueError(
            f"Cannot simulate {outcome_or_error!r}; use a GraphError or one of {choices}."
        ) from None
    if outcome == Outcome.SUCCESS:
        return _ANSWER_NORMALLY
    status, error = OUTCOME_ERRORS[outcome]
    return RawResponse(status=http_status or status, payload={"error": error.as_dict()})


def _next_script(dataset_id: str) -> RawResponse | None:
    with _lock:
        for key in (dataset_id, None):
            queue = _scripts.get(key)
            if queue:
                return queue.popleft()
    return _ANSWER_NORMALLY


class LocmemTransport(BaseTransport):
    """Delivers to ``django_capi.outbox`` instead of Meta (tests and local development).

    Like the Graph API, a dataset without an access token gets an AUTH result.
    """

    def post(self, dataset: DatasetConfig, body: dict[str, Any]) -> RawResponse:
        """Play the next scripted answer, or accept the batch into the outbox."""
        trace_id = f"locmem-{next(_counter)}"
        answer = _next_script(str(dataset.dataset_id))
        if answer is not None:
            return RawResponse(
                status=answer.status,
                payload=answer.payload,
                text=answer.text,
                network_error=answer.network_error,
                trace_id=trace_id if answer.status is not None else "",
            )
        get_outbox().append(
            OutboxMessage(
                dataset_id=str(dataset.dataset_id),
                events=body["data"],
                test_event_code=body.get("test_event_code"),
                partner_agent=body.get("partner_agent"),
            )
        )
        payload = {"events_received": len(body["data"]), "messages": [], "fbtrace_id": trace_id}
        return RawResponse(status=200, payload=payload)
