"""The production transport: one HTTPS POST per batch to Meta's Graph API."""

from __future__ import annotations

import hashlib
import hmac
import http.client
import json
import os
import re
import threading
from collections.abc import Sequence
from typing import Any, Final
from urllib.parse import quote

import requests
import urllib3.exceptions
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

import django_capi
from django_capi.conf import DatasetConfig, get_setting
from django_capi.transports.base import (
    BaseTransport,
    OutgoingEvent,
    RawResponse,
    dumps,
    redact,
)

__all__ = ["GraphAPITransport", "appsecret_proof", "describe_exception"]

# Failures that mean "no usable HTTP response". requests wraps almost everything, but a few
# urllib3/http.client errors can surface unwrapped while a body is read.
_NETWORK_ERRORS: Final = (
    requests.RequestException,
    urllib3.exceptions.HTTPError,
    http.client.HTTPException,
    OSError,
)
_TEXT_LIMIT: Final = 2000
_OBJECT_REPR = re.compile(r"<[\w.]+ object at 0x[0-9a-fA-F]+>:?\s*")


def appsecret_proof(app_secret: str, access_token: str) -> str:
    """Hex HMAC-SHA256 of the access token keyed with the app secret (Meta's proof)."""
    return hmac.new(app_secret.encode(), access_token.encode(), hashlib.sha256).hexdigest()


def describe_exception(exc: BaseException) -> str:
    """``"ReadTimeout: <short reason>"``; callers must still redact it."""
    reason: BaseException = exc
    # requests wraps urllib3's MaxRetryError, whose .reason is the real cause.
    inner = getattr(exc.args[0], "reason", None) if exc.args else None
    if isinstance(inner, BaseException):
        reason = inner
    text = _OBJECT_REPR.sub("", str(reason)).strip()
    return f"{type(exc).__name__}: {text[:200]}" if text else type(exc).__name__


class GraphAPITransport(BaseTransport):
    """POST ``{API_BASE_URL}/{API_VERSION}/{dataset_id}/events`` with a JSON body.

    The access token travels in the body, never in the URL, so no URL that requests or
    urllib3 put in a log line or an exception can reveal it. One ``requests.Session`` per
    process keeps connections alive between batches; it is recreated after a fork.
    Automatic retries are off: the delivery engine decides when to resend.
    """

    #: Connection pools kept (one per host) and connections kept per pool (raise it for
    #: threaded workers sending in parallel; extra connections are opened, not waited for).
    pool_connections: int = 4
    pool_maxsize: int = 16
    keeps_raw_events = True

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._session: requests.Session | None = None
        self._session_pid: int | None = None

    @property
    def session(self) -> requests.Session:
        """This process's session (a new one in a forked child)."""
        pid = os.getpid()
        session = self._session
        if session is None or self._session_pid != pid:
            with self._lock:
                if self._session is None or self._session_pid != pid:
                    # The parent's session is not closed: its sockets belong to the parent.
                    self._session = self.make_session()
                    self._session_pid = pid
                session = self._session
        return session

    def make_session(self) -> requests.Session:
        """A session with a pooled adapter and no automatic retries or redirects."""
        session = requests.Session()
        adapter = HTTPAdapter(
            pool_connections=self.pool_connections,
            pool_maxsize=self.pool_maxsize,
            max_retries=Retry(total=0, read=False, redirect=False, raise_on_status=False),
        )
        session.mount("https://", adapter)
        session.mount("http://", adapter)
        session.headers.update(
            {
                "Accept": "application/json",
                "Content-Type": "application/json",
                "User-Agent": f"django-capi/{django_capi.__version__}",
            }
        )
        return session

    def close(self) -> None:
        """Close this process's session and its pooled connections."""
        with self._lock:
            if self._session is not None and self._session_pid == os.getpid():
                self._session.close()
            self._session = None
            self._session_pid = None

    def url(self, dataset: DatasetConfig) -> str:
        """The events endpoint of ``dataset`` (no credentials in it)."""
        base = str(get_setting("API_BASE_URL")).rstrip("/")
        version = str(get_setting("API_VERSION")).strip("/")
        return f"{base}/{version}/{quote(str(dataset.dataset_id), safe='')}/events"

    def secrets(self, dataset: DatasetConfig) -> list[str | None]:
        """The token, the app secret and the proof derived from them."""
        app_secret = get_setting("APP_SECRET")
        found: list[str | None] = [dataset.access_token]
        if app_secret:
            found.append(str(app_secret))
            if dataset.access_token:
                found.append(appsecret_proof(str(app_secret), dataset.access_token))
        return found

    def build_body(self, dataset: DatasetConfig, events: Sequence[OutgoingEvent]) -> dict[str, Any]:
        """The base body plus the credentials: ``access_token`` and ``appsecret_proof``."""
        token = dataset.access_token or ""
        body = super().build_body(dataset, events)
        body["access_token"] = token
        app_secret = get_setting("APP_SECRET")
        if app_secret:
            body["appsecret_proof"] = appsecret_proof(str(app_secret), token)
        return body

    def post(self, dataset: DatasetConfig, body: dict[str, Any]) -> RawResponse:
        """One POST with (CONNECT_TIMEOUT, READ_TIMEOUT); network failures are returned."""
        timeout = (float(get_setting("CONNECT_TIMEOUT")), float(get_setting("READ_TIMEOUT")))
        data = dumps(body)
        try:
            response = self.session.post(
                self.url(dataset), data=data, timeout=timeout, allow_redirects=False
            )
            content = response.content
        except _NETWORK_ERRORS as exc:
            return RawResponse(
                status=None,
                network_error=redact(describe_exception(exc), self.secrets(dataset)),
            )
        payload: Any
        try:
            payload = json.loads(content) if content else None
        except ValueError:
            payload = None
        return RawResponse(
            status=response.status_code,
            payload=payload,
            text=content[:_TEXT_LIMIT].decode("utf-8", "replace"),
            trace_id=response.headers.get("x-fb-trace-id", ""),
        )
