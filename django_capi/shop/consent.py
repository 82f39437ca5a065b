"""Consent and prohibited data.

``CAPI["CONSENT"]`` decides whether a visitor may be tracked:

- ``None`` (the default): consent is assumed; set it where the law requires consent.
- a callable, or the import string of one, taking the request and returning a bool.
- ``True``/``False``: always/never (e.g. ``False`` on a staging site).

Without consent django_capi records no server event for the request, renders no pixel and
sets no cookie. A callable that raises counts as "no consent" (and is logged).
``CAPI["STRIP_CUSTOM_DATA_KEYS"]`` lists ``custom_data`` keys that are never stored or sent
(nor rendered into the page).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any

from django.http import HttpRequest
from django.utils.module_loading import import_string

from django_capi import conf

__all__ = ["consent_is_configured", "has_consent", "strip_custom_data"]

logger = logging.getLogger("django_capi")


def consent_is_configured() -> bool:
    """True when ``CAPI["CONSENT"]`` is set, i.e. consent must be established, not assumed."""
    return conf.get_setting("CONSENT") is not None


def _consent_check() -> Callable[[HttpRequest], Any] | bool | None:
    setting = conf.get_setting("CONSENT")
    if setting is None or isinstance(setting, bool):
        return setting
    if isinstance(setting, str):
        check: Callable[[HttpRequest], Any] = import_string(setting)
        return check
    if callable(setting):
        return setting  # type: ignore[no-any-return]
    raise TypeError("CAPI['CONSENT'] must be None, a bool, a callable or its import string.")


def has_consent(request: HttpRequest | None) -> bool:
    """Whether the visitor of ``request`` may be tracked (see the module docstring).

    Without a request (``None``) the answer is True only when consent is not configured.
    """
    check = _consent_check()
    if check is None:
        return True
    if isinstance(check, bool):
        return check
    if request is None:
        return False
    try:
        return bool(check(request))
    except Exception:
        logger.exception("django_capi: CAPI['CONSENT'] raised; treating it as no consent")
        return False


def strip_custom_data(custom_data: Mapping[str, Any] | None) -> dict[str, Any]:
    """``custom_data`` without the ``STRIP_CUSTOM_DATA_KEYS`` keys (case-insensitive).

    Keys are removed at the top level and inside ``contents`` items.
    """
    if not custom_data:
        return {}
    stripped = {str(key).lower() for key in conf.get_setting("STRIP_CUSTOM_DATA_KEYS") or ()}
    if not stripped:
        return dict(custom_data)

    def keep(key: Any) -> bool:
        return not (isinstance(key, str) and key.lower() in stripped)

    result = {key: value for key, value in custom_data.items() if keep(key)}
    contents = result.get("contents")
    if isinstance(contents, list | tuple):
        result["contents"] = [
            {k: v for k, v in item.items() if keep(k)} if isinstance(item, Mapping) else item
            for item in contents
        ]
    return result
