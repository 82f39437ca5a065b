"""A transport for development: logs each request instead of sending it."""

from __future__ import annotations

import itertools
import json
import logging
from typing import Any, Final

from django_capi.conf import DatasetConfig
from django_capi.transports.base import BaseTransport, RawResponse, redact

__all__ = ["ConsoleTransport"]

logger = logging.getLogger("django_capi.transports.console")
_counter = itertools.count(1)
_JSON_OPTIONS: Final[dict[str, Any]] = {"indent": 2, "sort_keys": True, "ensure_ascii": False}


class ConsoleTransport(BaseTransport):
    """Logs (logger ``django_capi.transports.console``, INFO) and reports success.

    One record per request: a summary line, then the events as JSON (``user_data`` is
    already hashed). The access token is never logged, and none is needed.
    """

    requires_token = False

    def post(self, dataset: DatasetConfig, body: dict[str, Any]) -> RawResponse:
        """Log the request; answer like a successful Graph API call."""
        trace_id = f"console-{next(_counter)}"
        extras = "".join(
            f", {key}={body[key]}" for key in ("test_event_code", "partner_agent") if key in body
        )
        events_json = json.dumps(body["data"], default=str, **_JSON_OPTIONS)
        logger.info(
            "Conversions API request to dataset %s: %d event(s)%s\n%s",
            dataset.dataset_id,
            len(body["data"]),
            redact(extras, self.secrets(dataset)),
            redact(events_json, self.secrets(dataset)),
        )
        payload = {"events_received": len(body["data"]), "messages": [], "fbtrace_id": trace_id}
        return RawResponse(status=200, payload=payload)
