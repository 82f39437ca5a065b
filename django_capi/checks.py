"""Django system checks for the ``CAPI`` settings.

Ids are stable; the README lists them. Errors stop ``runserver`` and ``migrate``; warnings
are printed.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any
from urllib.parse import urlsplit

import pycountry
from django.conf import settings
from django.core.checks import CheckMessage, Error, Tags, Warning, register
from django.core.exceptions import ImproperlyConfigured

from django_capi import conf
from django_capi.transports.base import BaseTransport, get_transport

API_VERSION_RE = re.compile(r"^v[0-9]+\.[0-9]+$")


def _setting_hint(key: str) -> str:
    return f"Set CAPI[{key!r}] in your Django settings; the README's settings table explains it."


@register(Tags.compatibility)
def check_settings(app_configs: Iterable[Any] | None = None, **kwargs: Any) -> list[CheckMessage]:
    """Report misconfigured CAPI settings."""
    raw = getattr(settings, conf.SETTINGS_NAME, None)
    if raw is not None and not isinstance(raw, dict):
        return [
            Error(
                f"settings.CAPI must be a dict, not {type(raw).__name__}.",
                id="django_capi.E001",
            )
        ]
    messages: list[CheckMessage] = []
    messages.extend(_unknown_keys())
    transport, transport_messages = _transport()
    messages.extend(transport_messages)
    messages.extend(_datasets(needs_token=transport is None or transport.requires_token))
    messages.extend(_api())
    messages.extend(_privacy_defaults())
    messages.extend(_platform())
    return messages


def _platform() -> list[CheckMessage]:
    """The encryption keys of admin-managed datasets and the router."""
    from django_capi.datasets.encryption import encryption_keys
    from django_capi.datasets.routing import get_router

    messages: list[CheckMessage] = []
    try:
        encryption_keys()
    except ImproperlyConfigured as exc:
        messages.append(
            Error(
                str(exc),
                hint='Generate one with: python -c "from cryptography.fernet import Fernet; '
                'print(Fernet.generate_key().decode())"',
                id="django_capi.E012",
            )
        )
    try:
        get_router()
    except ImproperlyConfigured as exc:
        messages.append(Error(str(exc), id="django_capi.E013"))
    return messages


@register(Tags.security, deploy=True)
def check_encryption_keys(
    app_configs: Iterable[Any] | None = None, **kwargs: Any
) -> list[CheckMessage]:
    """``check --deploy``: tokens of admin-managed datasets should have keys of their own."""
    if conf.get_setting("ENCRYPTION_KEYS"):
        return []
    return [
        Warning(
            "CAPI['ENCRYPTION_KEYS'] is not set: access tokens stored in the admin are "
            "encrypted with a key derived from SECRET_KEY, so rotating SECRET_KEY without "
            "keeping the old one in SECRET_KEY_FALLBACKS makes them unreadable.",
            hint="Set CAPI['ENCRYPTION_KEYS'] to a list of Fernet keys kept apart from "
            "SECRET_KEY (the README explains rotation with capi_rotate_tokens).",
            id="django_capi.W006",
        )
    ]


def _unknown_keys() -> list[CheckMessage]:
    return [
        Warning(
            f"CAPI[{key!r}] is not a django_capi setting and is ignored.",
            hint="Check the spelling against the README's settings table.",
            id="django_capi.W001",
        )
        for key in conf.unknown_setting_keys()
    ]


def _transport() -> tuple[BaseTransport | None, list[CheckMessage]]:
    try:
        transport = get_transport()
    except ImproperlyConfigured as exc:
        return None, [Error(str(exc), id="django_capi.E011")]
    messages: list[CheckMessage] = []
    timeouts = conf.get_setting("CONNECT_TIMEOUT"), conf.get_setting("READ_TIMEOUT")
    lease = conf.get_setting("LEASE_SECONDS")
    if all(isinstance(v, int | float) for v in (*timeouts, lease)) and lease <= 2 * sum(timeouts):
        messages.append(
            Warning(
                f"CAPI['LEASE_SECONDS'] ({lease}) is not well above one request's timeouts "
                f"({sum(timeouts):g} s): a batch may be taken over and sent twice.",
                hint="Keep LEASE_SECONDS at several times CONNECT_TIMEOUT + READ_TIMEOUT.",
                id="django_capi.W005",
            )
        )
    return transport, messages


def _datasets(*, needs_token: bool = True) -> list[CheckMessage]:
    messages: list[CheckMessage] = []
    datasets = conf.get_setting("DATASETS")
    if not isinstance(datasets, dict) or not all(
        isinstance(entry, dict) for entry in datasets.values()
    ):
        return [
            Error(
                "CAPI['DATASETS'] must map dataset ids to dicts of settings.",
                hint='e.g. {"123456789": {"ACCESS_TOKEN": "..."}}',
                id="django_capi.E008",
            )
        ]
    for dataset_id, entry in datasets.items():
        for key in sorted(set(entry) - conf.DATASET_KEYS):
            messages.append(
                Error(
                    f"CAPI['DATASETS'][{dataset_id!r}][{key!r}] is not a dataset setting.",
                    hint=f"A dataset takes: {', '.join(sorted(conf.DATASET_KEYS))}.",
                    id="django_capi.E008",
                )
            )
    pixel_id = conf.get_setting("PIXEL_ID")
    if pixel_id in (None, "") and not datasets:
        messages.append(
            Warning(
                "No dataset is configured: track() without a pixel_id records failed events.",
                hint=_setting_hint("PIXEL_ID"),
                id="django_capi.W002",
            )
        )
    for dataset in conf.settings_datasets().values():
        if not conf.PIXEL_ID_RE.match(dataset.dataset_id):
            messages.append(
                Error(
                    f"Dataset id {dataset.dataset_id!r} is malformed: a pixel id is digits only.",
                    hint="Copy the dataset (pixel) id from Meta Events Manager.",
                    id="django_capi.E003",
                )
            )
        if needs_token and not dataset.has_token:
            messages.append(
                Error(
                    f"Dataset {dataset.dataset_id} has no access token.",
                    hint="Set CAPI['ACCESS_TOKEN'] for the default PIXEL_ID, or "
                    "CAPI['DATASETS'][id]['ACCESS_TOKEN']; generate one in Events Manager.",
                    id="django_capi.E004",
                )
            )
    countries = [("CAPI['DEFAULT_COUNTRY']", conf.get_setting("DEFAULT_COUNTRY"))] + [
        (f"CAPI['DATASETS'][{dataset_id!r}]['DEFAULT_COUNTRY']", entry.get("DEFAULT_COUNTRY"))
        for dataset_id, entry in datasets.items()
    ]
    for name, country in countries:
        if country and not _is_country_code(country):
            messages.append(
                Error(
                    f"{name} {country!r} is not an ISO 3166-1 alpha-2 code.",
                    hint='Use a two-letter code such as "US" or "GB".',
                    id="django_capi.E007",
                )
            )
    return messages


def _api() -> list[CheckMessage]:
    messages: list[CheckMessage] = []
    version = conf.get_setting("API_VERSION")
    if not isinstance(version, str) or not API_VERSION_RE.match(version):
        messages.append(
            Error(
                f"CAPI['API_VERSION'] {version!r} is not a Graph API version.",
                hint='Use the form "v26.0".',
                id="django_capi.E005",
            )
        )
    base_url = conf.get_setting("API_BASE_URL")
    parts = urlsplit(base_url) if isinstance(base_url, str) else None
    if parts is None or parts.scheme not in ("http", "https") or not parts.netloc:
        messages.append(
            Error(
                f"CAPI['API_BASE_URL'] {base_url!r} is not an http(s) URL.",
                hint='The default is "https://graph.facebook.com".',
                id="django_capi.E006",
            )
        )
    elif parts.scheme == "http" and not settings.DEBUG:
        messages.append(
            Warning(
                "CAPI['API_BASE_URL'] uses http:// while DEBUG is False: the access token "
                "would travel unencrypted.",
                hint="Use https:// in production; http:// is for local sandboxes only.",
                id="django_capi.W003",
            )
        )
    if conf.get_setting("TEST_EVENT_CODE") and not settings.DEBUG:
        messages.append(
            Warning(
                "CAPI['TEST_EVENT_CODE'] is set while DEBUG is False: events sent with a test "
                "code still count in Meta's statistics.",
                hint="Remove TEST_EVENT_CODE in production once the setup is verified.",
                id="django_capi.W004",
            )
        )
    skew = conf.get_setting("MAX_CLOCK_SKEW")
    if not isinstance(skew, int) or isinstance(skew, bool) or skew < 0:
        messages.append(
            Error(
                f"CAPI['MAX_CLOCK_SKEW'] {skew!r} must be a whole number of seconds >= 0.",
                id="django_capi.E010",
            )
        )
    return messages


def _privacy_defaults() -> list[CheckMessage]:
    options = conf.get_setting("DATA_PROCESSING_OPTIONS")
    country = conf.get_setting("DATA_PROCESSING_OPTIONS_COUNTRY")
    state = conf.get_setting("DATA_PROCESSING_OPTIONS_STATE")
    problems = []
    if options is not None and (
        not isinstance(options, list | tuple) or any(item != "LDU" for item in options)
    ):
        problems.append('DATA_PROCESSING_OPTIONS must be [] or ["LDU"]')
    if country not in (None, 0, 1):
        problems.append("DATA_PROCESSING_OPTIONS_COUNTRY must be 0 (geolocate) or 1 (US)")
    if state not in (None, 0, 1000):
        problems.append("DATA_PROCESSING_OPTIONS_STATE must be 0 (geolocate) or 1000 (California)")
    if (country is None) != (state is None):
        problems.append("DATA_PROCESSING_OPTIONS_COUNTRY and _STATE go together")
    return [
        Error(
            f"CAPI: {problem}.", hint="See Limited Data Use in the README.", id="django_capi.E009"
        )
        for problem in problems
    ]


def _is_country_code(value: Any) -> bool:
    return (
        isinstance(value, str)
        and len(value) == 2
        and pycountry.countries.get(alpha_2=value.upper()) is not None
    )
