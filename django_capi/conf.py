"""Settings for django_capi, read at use time from the ``CAPI`` dict in Django settings.

Every key has a default here; :func:`get_setting` is the one place that reads them, so
``override_settings(CAPI={...})`` takes effect immediately, and a misspelt key fails loudly
with its name instead of being silently ignored.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

SETTINGS_NAME = "CAPI"

DEFAULTS: dict[str, Any] = {
    # The default dataset (pixel) and its Conversions API access token.
    "PIXEL_ID": None,
    "ACCESS_TOKEN": None,
    # Further datasets, for sites that send to several pixels:
    # {"<dataset id>": {"ACCESS_TOKEN": ..., "TEST_EVENT_CODE": ..., "PARTNER_AGENT": ...,
    #                   "DEFAULT_COUNTRY": ..., "LABEL": ..., "ENABLED": True}}
    # Datasets can also be managed in the admin (the Dataset model); a row there wins.
    "DATASETS": {},
    # Fernet keys that encrypt the access tokens of admin-managed datasets: the first
    # encrypts, all decrypt (key rotation). None: keys derived from SECRET_KEY(_FALLBACKS).
    "ENCRYPTION_KEYS": None,
    # A callable (or its import string) choosing the dataset(s) of an event that names
    # none: router(event_name=..., source=..., request=...) -> iterable of dataset ids.
    # None: the default PIXEL_ID.
    "ROUTER": None,
    "API_VERSION": "v26.0",
    "API_BASE_URL": "https://graph.facebook.com",
    "TEST_EVENT_CODE": None,
    "PARTNER_AGENT": None,
    # ISO 3166-1 alpha-2 country used to read national phone numbers (and US-only state names)
    # when an event's user_data carries no country.
    "DEFAULT_COUNTRY": None,
    # Limited Data Use applied to every event that does not pass its own options.
    "DATA_PROCESSING_OPTIONS": None,
    "DATA_PROCESSING_OPTIONS_COUNTRY": None,
    "DATA_PROCESSING_OPTIONS_STATE": None,
    # Raise EventValidationError from track() instead of storing an invalid event as failed.
    "STRICT": False,
    # How far in the future an event_time may be (seconds) before it is invalid.
    "MAX_CLOCK_SKEW": 300,
    # Delivery: the transport class (an import string, like EMAIL_BACKEND) and its timeouts.
    "TRANSPORT": "django_capi.transports.graph_api.GraphAPITransport",
    "CONNECT_TIMEOUT": 3.05,
    "READ_TIMEOUT": 20.0,
    # When set, requests carry appsecret_proof = HMAC-SHA256(APP_SECRET, access token).
    "APP_SECRET": None,
    # Events per request (Meta accepts at most 1,000).
    "BATCH_SIZE": 1000,
    # How long a worker owns the batch it claimed; after that another worker may take it.
    "LEASE_SECONDS": 300,
    # Transient failures: retries with exponential back-off and jitter, then failed.
    "MAX_ATTEMPTS": 15,
    "RETRY_BASE_DELAY": 15,
    "RETRY_MAX_DELAY": 1800,
    # Throttling backs off the whole dataset, doubling while it lasts.
    "THROTTLE_BASE_DELAY": 60,
    "THROTTLE_MAX_DELAY": 3600,
    # A dataset paused for a token or permission error is re-tried this often (seconds).
    "PAUSE_PROBE_INTERVAL": 900,
    # Queue a Celery task when a transaction that recorded events commits.
    "QUEUE_ON_COMMIT": True,
    # Seconds one delivery task keeps sending before it hands over to a fresh task.
    "TASK_TIME_BUDGET": 60,
    # How many delivery tasks the periodic sweep queues for one dataset with a backlog.
    "MAX_PARALLEL_TASKS": 4,
    # --- The shop side: consent, request capture, cookies, event ids, order adapter --------
    # A callable (or its import string) taking the request and returning True when the
    # visitor consents to tracking. None: consent is assumed (set it where the law requires).
    "CONSENT": None,
    # Reverse proxies (IPs or CIDR networks) whose X-Forwarded-For header is believed.
    "TRUSTED_PROXIES": [],
    # Set _fbp/_fbc as first-party cookies from the server when the browser has none.
    "SET_BROWSER_COOKIES": True,
    # Domain for those cookies; None derives the registrable domain from the request host.
    "COOKIE_DOMAIN": None,
    "COOKIE_MAX_AGE": 90 * 24 * 3600,
    # Secret for the keyed hash that turns an order into an event_id; None derives one
    # from SECRET_KEY.
    "EVENT_ID_KEY": None,
    # Import string of the order adapter (maps a host order to user_data and custom_data).
    "ORDER_ADAPTER": None,
    # Query parameters removed from event_source_url/referrer_url (they may carry contact data).
    "SCRUB_QUERY_PARAMS": [
        "email",
        "e-mail",
        "mail",
        "em",
        "phone",
        "tel",
        "ph",
        "name",
        "first_name",
        "last_name",
        "fn",
        "ln",
        "address",
        "street",
        "zip",
        "postcode",
        "postal_code",
        "dob",
        "birthday",
        "password",
        "token",
        "access_token",
    ],
    # custom_data keys never stored or sent (prohibited or sensitive data).
    "STRIP_CUSTOM_DATA_KEYS": [],
    # Pass hashed customer data to the pixel's init call (advanced matching).
    "PIXEL_ADVANCED_MATCHING": False,
    # --- Operations: retention and health --------------------------------------------------
    # Sent, failed, expired and discarded events older than this many days are purged.
    "RETENTION_DAYS": 90,
    "PURGE_BATCH_SIZE": 5000,
    # capi_status reports unhealthy when the oldest due event is older than this (seconds).
    "HEALTH_MAX_PENDING_AGE": 900,
}

DATASET_KEYS = frozenset(
    {"ACCESS_TOKEN", "TEST_EVENT_CODE", "PARTNER_AGENT", "DEFAULT_COUNTRY", "LABEL", "ENABLED"}
)

PIXEL_ID_RE = re.compile(r"^[0-9]{1,32}$")


def _user_settings() -> dict[str, Any]:
    value = getattr(settings, SETTINGS_NAME, None)
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ImproperlyConfigured(
            f"settings.{SETTINGS_NAME} must be a dict, not {type(value).__name__}."
        )
    return value


def get_setting(name: str) -> Any:
    """Return ``settings.CAPI[name]``, or its documented default.

    Raises ImproperlyConfigured for a name django_capi does not know, so a typo in calling
    code is caught at once.
    """
    if name not in DEFAULTS:
        raise ImproperlyConfigured(f"{SETTINGS_NAME}[{name!r}] is not a django_capi setting.")
    return _user_settings().get(name, DEFAULTS[name])


def unknown_setting_keys() -> list[str]:
    """Keys in settings.CAPI that django_capi does not know (likely typos)."""
    return sorted(key for key in _user_settings() if key not in DEFAULTS)


class DatasetOrigin(enum.StrEnum):
    """Where a dataset's configuration comes from."""

    SETTINGS = "settings"
    DATABASE = "database"


@dataclass(frozen=True)
class DatasetConfig:
    """What django_capi needs to send to one dataset (pixel).

    The access token is kept out of ``repr`` so it cannot end up in a log line or a traceback
    by way of this object.
    """

    dataset_id: str
    access_token: str | None = field(default=None, repr=False)
    test_event_code: str | None = None
    partner_agent: str | None = None
    default_country: str | None = None
    label: str = ""
    #: False: events are recorded and kept pending, nothing is sent.
    enabled: bool = True
    disabled_reason: str = ""
    origin: DatasetOrigin = DatasetOrigin.SETTINGS
    #: Why a stored token could not be read (it is then None), for staff.
    token_error: str = ""

    @property
    def has_token(self) -> bool:
        return bool(self.access_token)


def default_dataset_id() -> str | None:
    """The dataset events go to when track() is not given a pixel_id."""
    pixel_id = get_setting("PIXEL_ID")
    return str(pixel_id) if pixel_id not in (None, "") else None


def settings_datasets() -> dict[str, DatasetConfig]:
    """Every dataset the settings define: the default one and those under ``DATASETS``.

    Resolution order for one dataset's values: its own ``DATASETS`` entry, then the top-level
    keys (``ACCESS_TOKEN``, ``TEST_EVENT_CODE``, ...) for the default ``PIXEL_ID`` only, then,
    for values that are not secrets (partner agent, default country), the top-level keys.
    Reads no database (system checks use it).
    """
    result: dict[str, DatasetConfig] = {}
    datasets = get_setting("DATASETS") or {}
    default_id = default_dataset_id()
    ids = [str(key) for key in datasets]
    if default_id is not None and default_id not in ids:
        ids.insert(0, default_id)
    for dataset_id in ids:
        own: dict[str, Any] = dict(
            datasets.get(dataset_id) or datasets.get(_as_int(dataset_id)) or {}
        )
        is_default = dataset_id == default_id
        result[dataset_id] = DatasetConfig(
            dataset_id=dataset_id,
            access_token=own.get("ACCESS_TOKEN")
            or (get_setting("ACCESS_TOKEN") if is_default else None),
            test_event_code=own.get("TEST_EVENT_CODE")
            or (get_setting("TEST_EVENT_CODE") if is_default else None),
            partner_agent=own.get("PARTNER_AGENT") or get_setting("PARTNER_AGENT"),
            default_country=own.get("DEFAULT_COUNTRY") or get_setting("DEFAULT_COUNTRY"),
            label=str(own.get("LABEL") or ""),
            enabled=bool(own.get("ENABLED", True)),
        )
    return result


def configured_datasets() -> dict[str, DatasetConfig]:
    """Every dataset: those in the settings, then the admin-managed ``Dataset`` rows.

    A ``Dataset`` row wins over a settings entry with the same id, so staff can take a
    dataset over (or disable it) without a deploy.
    """
    from django_capi.models import Dataset

    result = settings_datasets()
    for row in Dataset.objects.all():
        result[row.dataset_id] = row.as_config()
    return result


def get_dataset(dataset_id: str | None = None) -> DatasetConfig | None:
    """The configuration of one dataset (the default one when ``dataset_id`` is None).

    The one resolution point: a ``Dataset`` row in the database, else the settings (its
    ``DATASETS`` entry, then the top-level keys for the default ``PIXEL_ID``). Read fresh on
    every call, so a token replaced in the admin is used by the next delivery. Returns None
    when the dataset is not configured at all.
    """
    from django_capi.models import Dataset

    if dataset_id is None:
        dataset_id = default_dataset_id()
        if dataset_id is None:
            return None
    dataset_id = str(dataset_id)
    row = Dataset.objects.filter(dataset_id=dataset_id).first()
    if row is not None:
        return row.as_config()
    return settings_datasets().get(dataset_id)


def _as_int(value: str) -> int | None:
    try:
        return int(value)
    except ValueError:
        return None
