"""Transports deliver one batch of event payloads to Meta (or pretend to).

Pick one with ``CAPI["TRANSPORT"]`` (an import string, like ``EMAIL_BACKEND``):

- ``django_capi.transports.graph_api.GraphAPITransport``: the Conversions API (default).
- ``django_capi.transports.locmem.LocmemTransport``: in memory, for tests.
- ``django_capi.transports.console.ConsoleTransport``: logs requests, for development.
"""

from __future__ import annotations

from django_capi.transports.base import (
    BaseTransport,
    GraphError,
    Outcome,
    SendResult,
    classify,
    get_transport,
    redact,
)

__all__ = [
    "BaseTransport",
    "GraphError",
    "Outcome",
    "SendResult",
    "classify",
    "get_transport",
    "redact",
]
