"""Recording events: :func:`track` is the documented entry point."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from functools import partial
from typing import Any

from django.contrib.contenttypes.models import ContentType
from django.db import IntegrityError, models, router, transaction
from django.http import HttpRequest
from django.utils import timezone

from django_capi import conf, request_capture
from django_capi.datasets import routing
from django_capi.delivery.scheduling import schedule_after_commit
from django_capi.models import Event, EventStatus
from django_capi.normalization.custom_data import normalize_custom_data
from django_capi.normalization.user_data import normalize_user_data
from django_capi.shop.consent import has_consent, strip_custom_data
from django_capi.validation import (
    EventValidationError,
    ValidationIssue,
    storable_payload,
    validate_event,
)

logger = logging.getLogger("django_capi")

_UNSET: Any = object()


def track(
    event_name: str,
    *,
    user_data: Mapping[str, Any] | None = None,
    custom_data: Mapping[str, Any] | None = None,
    event_id: str | None = None,
    event_time: datetime | int | float | None = None,
    action_source: str = "website",
    event_source_url: str | None = None,
    referrer_url: str | None = None,
    request: HttpRequest | None = None,
    pixel_id: str | int | Sequence[str | int] | None = None,
    source: models.Model | None = None,
    app_data: Mapping[str, Any] | None = None,
    opt_out: bool | None = None,
    data_processing_options: Sequence[str] | None = _UNSET,
    data_processing_options_country: int | None = _UNSET,
    data_processing_options_state: int | None = _UNSET,
    messaging_channel: str | None = None,
    original_event_data: Mapping[str, Any] | None = None,
    attribution_data: Mapping[str, Any] | None = None,
    strict: bool | None = None,
) -> Event:
    """Record one Conversions API event and return the stored :class:`Event`.

    The row is written in the caller's transaction (it disappears if that rolls back) with
    contact data normalized and hashed. Recording the same ``(pixel_id, event_name, event_id)``
    again returns the event already stored. An event that breaks Meta's rules is stored with
    status ``failed`` and its reasons; with ``strict=True`` (or ``CAPI["STRICT"]``) it raises
    :class:`EventValidationError` instead and stores nothing.

    ``request``, when given, supplies the client IP address, user agent, ``_fbp``/``_fbc``
    cookies, page URL and referrer; explicit arguments win over what the request says.
    When ``CAPI["CONSENT"]`` says the request's visitor does not consent, nothing is stored
    and an unsaved event is returned (``pk`` None, status ``discarded``, empty payload).
    ``data_processing_options*`` default to the ``CAPI`` settings of the same names;
    ``custom_data`` keys listed in ``CAPI["STRIP_CUSTOM_DATA_KEYS"]`` are removed.

    Without ``pixel_id``, ``CAPI["ROUTER"]`` (else ``CAPI["PIXEL_ID"]``) chooses the
    dataset(s); ``pixel_id`` may also be a list. Every dataset gets its own row with the
    same ``event_id``: this returns the first, :func:`track_all` returns them all.
    """
    return track_all(
        event_name,
        user_data=user_data,
        custom_data=custom_data,
        event_id=event_id,
        event_time=event_time,
        action_source=action_source,
        event_source_url=event_source_url,
        referrer_url=referrer_url,
        request=request,
        pixel_id=pixel_id,
        source=source,
        app_data=app_data,
        opt_out=opt_out,
        data_processing_options=data_processing_options,
        data_processing_options_country=data_processing_options_country,
        data_processing_options_state=data_processing_options_state,
        messaging_channel=messaging_channel,
        original_event_data=original_event_data,
        attribution_data=attribution_data,
        strict=strict,
    )[0]


def track_all(
    event_name: str,
    *,
    user_data: Mapping[str, Any] | None = None,
    custom_data: Mapping[str, Any] | None = None,
    event_id: str | None = None,
    event_time: datetime | int | float | None = None,
    action_source: str = "website",
    event_source_url: str | None = None,
    referrer_url: str | None = None,
    request: HttpRequest | None = None,
    pixel_id: str | int | Sequence[str | int] | None = None,
    source: models.Model | None = None,
    app_data: Mapping[str, Any] | None = None,
    opt_out: bool | None = None,
    data_processing_options: Sequence[str] | None = _UNSET,
    data_processing_options_country: int | None = _UNSET,
    data_processing_options_state: int | None = _UNSET,
    messaging_channel: str | None = None,
    original_event_data: Mapping[str, Any] | None = None,
    attribution_data: Mapping[str, Any] | None = None,
    strict: bool | None = None,
) -> list[Event]:
    """:func:`track` for every dataset the event goes to; one :class:`Event` per dataset.

    The rows share ``event_id``, ``event_time`` and ``custom_data``; user data is normalized
    with each dataset's default country. The list is never empty: with no dataset at all it
    holds one failed event saying why.
    """
    if request is not None and not has_consent(request):
        return [_not_consented(event_name, event_id, pixel_id)]
    if strict is None:
        strict = bool(conf.get_setting("STRICT"))
    common: list[ValidationIssue] = []
    when, time_issue = _event_time(event_time)
    if time_issue:
        common.append(time_issue)

    raw_user_data: dict[str, Any] = {}
    if request is not None:
        raw_user_data.update(request_capture.user_data_from_request(request))
        if event_source_url is None and action_source == "website":
            event_source_url = request_capture.page_url(request)
        if referrer_url is None:
            referrer_url = request_capture.referrer_url(request)
    if isinstance(user_data, Mapping):
        raw_user_data.update(user_data)
    elif user_data is not None:
        common.append(ValidationIssue("user_data", "must be an object (a dict of customer data)"))
    if isinstance(custom_data, Mapping):
        custom_data = _without_stripped_keys(custom_data)
    normalized_custom, custom_warnings = normalize_custom_data(custom_data)

    base: dict[str, Any] = {
        "event_name": event_name,
        "event_time": int(when.timestamp()),
        "event_id": _given_event_id(event_id, common),
        "action_source": action_source,
    }
    optional: dict[str, Any] = {
        "event_source_url": event_source_url,
        "referrer_url": referrer_url,
        "custom_data": normalized_custom or None,
        "app_data": _object(app_data),
        "opt_out": opt_out,
        "messaging_channel": messaging_channel,
        "original_event_data": _object(original_event_data) or None,
        "attribution_data": _object(attribution_data) or None,
    }
    optional.update(
        _limited_data_use(
            data_processing_options, data_processing_options_country, data_processing_options_state
        )
    )
    optional = {key: value for key, value in optional.items() if value is not None}

    targets = _targets(event_name, pixel_id, source, request)
    events: list[Event] = []
    for dataset_id, dataset_issue in targets:
        issues = [*common, *([dataset_issue] if dataset_issue else [])]
        normalized_user = normalize_user_data(
            raw_user_data,
            default_country=partial(_default_country, None if dataset_issue else dataset_id),
        )
        payload = {**base, "user_data": normalized_user.data, **optional}
        issues.extend(_key_length_issues(payload))
        issues.extend(
            validate_event(payload, max_clock_skew=int(conf.get_setting("MAX_CLOCK_SKEW")))
        )
        # What JSON or the database cannot hold (NUL, lone surrogates, NaN, bytes, Decimal...)
        # is dropped, so that the event can be stored, failed, with the reason.
        payload, unstorable = storable_payload(payload)
        named = {issue.field for issue in issues}
        issues.extend(issue for issue in unstorable if issue.field not in named)
        payload.setdefault("event_id", _new_event_id())
        if issues and strict:
            raise EventValidationError(issues)
        warnings = [w.as_dict() for w in normalized_user.warnings] + [
            w.as_dict() for w in custom_warnings
        ]
        events.append(_store(dataset_id or "", payload, when, warnings, issues, source))
    return events


def _default_country(dataset_id: str | None) -> str | None:
    """The dataset's default country (its ``Dataset`` row, else the settings).

    Called by the normalizer only when the event's user data names no usable country, so
    most events never read the dataset's configuration.
    """
    dataset = conf.get_dataset(dataset_id) if dataset_id else None
    if dataset is not None:
        return dataset.default_country
    return conf.get_setting("DEFAULT_COUNTRY")  # type: ignore[no-any-return]


def _targets(
    event_name: str, pixel_id: Any, source: models.Model | None, request: HttpRequest | None
) -> list[tuple[str | None, ValidationIssue | None]]:
    """The datasets to record for, each checked: ``(dataset id, why it is unusable)``."""
    try:
        ids = routing.route(event_name, source=source, request=request, pixel_id=pixel_id)
    except routing.RoutingError as exc:
        logger.error("django_capi: %s event: %s", event_name, exc)
        return [(None, ValidationIssue("pixel_id", str(exc)))]
    if not ids:
        if routing.get_router() is not None:
            return [(None, ValidationIssue("pixel_id", "CAPI['ROUTER'] chose no dataset"))]
        return [
            (
                None,
                ValidationIssue(
                    "pixel_id", "no pixel_id was given and CAPI['PIXEL_ID'] is not set"
                ),
            )
        ]
    return [_checked_dataset_id(one) for one in ids]


def _store(
    dataset_id: str,
    payload: dict[str, Any],
    when: datetime,
    warnings: list[dict[str, Any]],
    issues: list[ValidationIssue],
    source: models.Model | None,
) -> Event:
    """Insert one dataset's event (or return the one already stored) and queue delivery."""
    event_name, event_id = _column_text(payload.get("event_name", ""), 100), payload["event_id"]
    for warning in warnings:
        logger.warning(
            "django_capi: %s event %s: dropped %s (%s)",
            event_name,
            event_id,
            warning["field"],
            warning["rule"],
        )
    event = Event(
        dataset_id=dataset_id[:32],
        event_name=event_name,
        event_id=event_id[:128],
        event_time=when,
        action_source=_column_text(payload.get("action_source", ""), 32),
        payload=payload,
        warnings=warnings,
    )
    if issues:
        event.status = EventStatus.FAILED
        event.validation_errors = [issue.as_dict() for issue in issues]
        event.last_error_message = "; ".join(str(issue) for issue in issues)
        logger.warning(
            "django_capi: %s event %s is invalid and will not be sent: %s",
            event_name,
            event_id,
            event.last_error_message,
        )
    if source is not None and source.pk is not None:
        event.source_content_type = ContentType.objects.get_for_model(source)
        event.source_object_id = str(source.pk)
    event, created = _insert_once(event)
    if created and event.status == EventStatus.PENDING:
        schedule_after_commit(event.dataset_id, using=event._state.db or "default")
    return event


def _without_stripped_keys(custom_data: Mapping[str, Any]) -> Mapping[str, Any]:
    """``STRIP_CUSTOM_DATA_KEYS`` removed; a mapping that cannot be read is left to the
    normalizer, which drops it with a warning."""
    try:
        return strip_custom_data(custom_data)
    except Exception:
        return custom_data


def _not_consented(event_name: str, event_id: str | None, pixel_id: Any) -> Event:
    """The unsaved event track() returns for a visitor without consent; nothing is stored."""
    event_name = _column_text(event_name, 100)
    logger.debug("django_capi: %s not recorded: the visitor does not consent", event_name)
    if isinstance(pixel_id, list | tuple):
        pixel_id = pixel_id[0] if pixel_id else None
    return Event(
        dataset_id=_column_text(pixel_id or conf.default_dataset_id() or "", 32),
        event_name=event_name,
        event_id=_column_text(event_id or "", 128),
        event_time=timezone.now(),
        payload={},
        status=EventStatus.DISCARDED,
        last_error_message="not recorded: the visitor does not consent to tracking",
    )


def _insert_once(event: Event) -> tuple[Event, bool]:
    """Insert the event, or return the one already stored under the same dedup key.

    The unique constraint decides, not a prior lookup, so two concurrent callers cannot both
    insert. The savepoint keeps the caller's transaction usable after a conflict.
    """
    using = router.db_for_write(Event)
    try:
        with transaction.atomic(using=using):
            event.save(using=using, force_insert=True)
    except IntegrityError:
        existing = (
            Event.objects.using(using)
            .filter(
                dataset_id=event.dataset_id,
                event_name=event.event_name,
                event_id=event.event_id,
            )
            .first()
        )
        if existing is None:  # the conflict was not on the dedup key
            raise
        return existing, False
    return event, True


def _key_length_issues(payload: Mapping[str, Any]) -> list[ValidationIssue]:
    """The dedup key must fit its columns, or it could not be stored whole."""
    issues = []
    for key, limit in (("event_name", 100), ("event_id", 128)):
        if isinstance(payload.get(key), str) and len(payload[key]) > limit:
            issues.append(ValidationIssue(key, f"at most {limit} characters"))
    return issues


def _new_event_id() -> str:
    return str(uuid.uuid4())


def _given_event_id(event_id: Any, issues: list[ValidationIssue]) -> str:
    """The caller's event id as text (a new one when none was given); never raises."""
    if event_id is None or event_id == "":
        return _new_event_id()
    try:
        return str(event_id)
    except Exception:  # an object whose __str__ raises
        issues.append(ValidationIssue("event_id", "could not be read as text"))
        return _new_event_id()


def _object(value: Any) -> Any:
    """A copy of a mapping argument; anything else as given (validation reports it)."""
    return dict(value) if isinstance(value, Mapping) else value


def _column_text(value: Any, limit: int) -> str:
    """``str(value)`` fit for a text column: at most ``limit`` characters, without NUL or
    lone surrogates (which the database refuses); "" when it cannot be read. Never raises."""
    try:
        text = value if isinstance(value, str) else str(value)
    except Exception:
        return ""
    return "".join(ch for ch in text[:limit] if ch != "\x00" and not "\ud800" <= ch <= "\udfff")


def _checked_dataset_id(dataset_id: str) -> tuple[str | None, ValidationIssue | None]:
    if not conf.PIXEL_ID_RE.match(dataset_id):
        return _column_text(dataset_id, 32), ValidationIssue(
            "pixel_id", "a dataset (pixel) id is a string of digits"
        )
    return dataset_id, None


def _event_time(value: datetime | int | float | None) -> tuple[datetime, ValidationIssue | None]:
    now = timezone.now()
    if value is None:
        return now, None
    if isinstance(value, datetime):
        if timezone.is_naive(value):
            value = timezone.make_aware(value)
        return value, None
    if isinstance(value, int | float) and not isinstance(value, bool):
        try:
            return datetime.fromtimestamp(value, tz=UTC), None
        except (OverflowError, OSError, ValueError):
            pass
    return now, ValidationIssue(
        "event_time", "must be a datetime or unix seconds (an int) within a valid range"
    )


def _limited_data_use(options: Any, country: Any, state: Any) -> dict[str, Any]:
    """The data_processing_options fields: arguments win, then the CAPI settings."""
    if options is _UNSET:
        options = conf.get_setting("DATA_PROCESSING_OPTIONS")
    if country is _UNSET:
        country = conf.get_setting("DATA_PROCESSING_OPTIONS_COUNTRY")
    if state is _UNSET:
        state = conf.get_setting("DATA_PROCESSING_OPTIONS_STATE")
    return {
        "data_processing_options": (
            list(options) if isinstance(options, list | tuple | set | frozenset) else options
        ),
        "data_processing_options_country": country,
        "data_processing_options_state": state,
    }
