"""The event store: one row per Conversions API event, plus an append-only delivery log.

An event row holds the payload exactly as it will be sent to Meta (contact data already
normalized and hashed), so nothing raw about a customer is ever written to the database.
"""

from __future__ import annotations

import hashlib
import logging
from typing import Any

from django.contrib.contenttypes.fields import GenericForeignKey
from django.contrib.contenttypes.models import ContentType
from django.core.exceptions import ValidationError
from django.core.validators import RegexValidator
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from django_capi import conf
from django_capi.transports.base import Outcome

logger = logging.getLogger("django_capi")


class EventStatus(models.TextChoices):
    """Where an event is in its life."""

    PENDING = "pending", _("Pending")  # waiting to be sent (now or at next_attempt_at)
    SENDING = "sending", _("Sending")  # claimed by a worker until lease_expires_at
    SENT = "sent", _("Sent")  # accepted by Meta
    FAILED = "failed", _("Failed")  # invalid, rejected by Meta, or out of retries
    EXPIRED = "expired", _("Expired")  # older than Meta accepts before it could be sent
    DISCARDED = "discarded", _("Discarded")  # dropped on purpose by staff


class ActionSource(models.TextChoices):
    """Where the conversion happened (Meta's ``action_source`` values)."""

    WEBSITE = "website", _("Website")
    APP = "app", _("App")
    PHYSICAL_STORE = "physical_store", _("Physical store")
    PHONE_CALL = "phone_call", _("Phone call")
    CHAT = "chat", _("Chat")
    EMAIL = "email", _("Email")
    SYSTEM_GENERATED = "system_generated", _("System generated")
    BUSINESS_MESSAGING = "business_messaging", _("Business messaging")
    OTHER = "other", _("Other")


class EventQuerySet(models.QuerySet["Event"]):
    def due(self, dataset_id: str, now: Any = None) -> EventQuerySet:
        """Pending events of one dataset whose time to be sent has come, oldest due first.

        Served by the ``capi_event_due_idx`` index (status, dataset_id, next_attempt_at), so the
        cost does not grow with the number of sent rows.
        """
        return self.filter(
            status=EventStatus.PENDING,
            dataset_id=dataset_id,
            next_attempt_at__lte=now or timezone.now(),
        ).order_by("next_attempt_at")

    def for_source(self, obj: models.Model) -> EventQuerySet:
        """Events recorded for one source object (e.g. an order)."""
        return self.filter(
            source_content_type=ContentType.objects.get_for_model(obj),
            source_object_id=str(obj.pk),
        )


class Event(models.Model):
    """One Conversions API event for one dataset, stored before anything leaves the server."""

    dataset_id = models.CharField(_("dataset id"), max_length=32)
    event_name = models.CharField(_("event name"), max_length=100)
    event_id = models.CharField(_("event id"), max_length=128)
    event_time = models.DateTimeField(_("event time"))
    action_source = models.CharField(
        _("action source"), max_length=32, choices=ActionSource.choices, blank=True
    )
    payload = models.JSONField(
        _("payload"), help_text=_("The server event exactly as it is sent to Meta.")
    )

    status = models.CharField(
        _("status"),
        max_length=16,
        choices=EventStatus.choices,
        default=EventStatus.PENDING,
    )  # indexed by capi_event_status_idx (status, created_at)
    attempts = models.PositiveIntegerField(_("attempts"), default=0)
    next_attempt_at = models.DateTimeField(_("next attempt at"), default=timezone.now)
    lease_expires_at = models.DateTimeField(_("lease expires at"), null=True, blank=True)
    # Set by the worker that claimed the event; outcomes are recorded only while it still holds it.
    claim_token = models.CharField(_("claim token"), max_length=32, blank=True, editable=False)
    sent_at = models.DateTimeField(_("sent at"), null=True, blank=True)

    last_error_code = models.IntegerField(_("last error code"), null=True, blank=True)
    last_error_subcode = models.IntegerField(_("last error subcode"), null=True, blank=True)
    last_error_message = models.TextField(_("last error message"), blank=True)
    # Of the last error; a successful request's fbtrace id is on its DeliveryAttempt.
    last_fbtrace_id = models.CharField(_("last fbtrace id"), max_length=64, blank=True)

    validation_errors = models.JSONField(
        _("validation errors"),
        default=list,
        blank=True,
        help_text=_("Why the event cannot be sent: a list of {field, rule}."),
    )
    warnings = models.JSONField(
        _("warnings"),
        default=list,
        blank=True,
        help_text=_("Values dropped while normalizing, as a list of {field, rule}."),
    )

    source_content_type = models.ForeignKey(
        ContentType,
        verbose_name=_("source type"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        db_index=False,  # capi_event_source_idx starts with it
    )
    source_object_id = models.CharField(_("source id"), max_length=64, blank=True)
    source = GenericForeignKey("source_content_type", "source_object_id")

    created_at = models.DateTimeField(_("created at"), auto_now_add=True, db_index=True)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    objects = EventQuerySet.as_manager()

    class Meta:
        verbose_name = _("event")
        verbose_name_plural = _("events")
        ordering = ["-created_at"]
        constraints = [
            # event_id leads, so the same index serves staff searching for an event id.
            models.UniqueConstraint(
                fields=["event_id", "dataset_id", "event_name"],
                name="capi_event_dedup_key",
            ),
        ]
        indexes = [
            # The queue: partial indexes hold only the rows a worker looks for (pending ones
            # by due time, sending ones by lease), so they stay small and sent rows never
            # enter them, however many pile up.
            models.Index(
                fields=["dataset_id", "next_attempt_at"],
                condition=models.Q(status="pending"),
                name="capi_event_due_idx",
            ),
            models.Index(
                fields=["lease_expires_at"],
                condition=models.Q(status="sending"),
                name="capi_event_lease_idx",
            ),
            # Only claimed rows carry a token: a tiny index that lets a worker address its
            # whole batch by token instead of by a list of a thousand ids.
            models.Index(
                fields=["claim_token"],
                condition=~models.Q(claim_token=""),
                name="capi_event_claim_idx",
            ),
            models.Index(fields=["status", "created_at"], name="capi_event_status_idx"),
            models.Index(
                fields=["source_content_type", "source_object_id"], name="capi_event_source_idx"
            ),
            # Staff search: Meta's fbtrace id of a failure, and the order reference.
            models.Index(
                fields=["last_fbtrace_id"],
                condition=~models.Q(last_fbtrace_id=""),
                name="capi_event_fbtrace_idx",
            ),
            models.Index(
                models.F("payload__custom_data__order_id"), name="capi_event_order_id_idx"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.event_name} {self.event_id} → {self.dataset_id}"

    @property
    def is_valid(self) -> bool:
        return not self.validation_errors

    @property
    def validation_reason(self) -> str:
        """The validation errors as one sentence for staff."""
        return "; ".join(f"{e['field']}: {e['rule']}" for e in self.validation_errors)


def validate_country_code(value: str) -> None:
    """A two-letter ISO 3166-1 country code."""
    import pycountry

    if value and pycountry.countries.get(alpha_2=value.upper()) is None:
        raise ValidationError(
            _("%(value)s is not an ISO 3166-1 two-letter country code."),
            params={"value": value},
            code="country",
        )


class Dataset(models.Model):
    """A dataset (pixel) managed by staff in the admin, with its access token encrypted.

    For platforms where each organiser or seller connects their own pixel. A row here wins
    over a ``CAPI["DATASETS"]`` entry with the same id (see :func:`django_capi.conf.get_dataset`).
    The token is stored only as Fernet ciphertext (:mod:`django_capi.datasets.encryption`);
    use :meth:`set_access_token` to change it.
    """

    dataset_id = models.CharField(
        _("dataset (pixel) id"),
        max_length=32,
        unique=True,
        validators=[
            RegexValidator(conf.PIXEL_ID_RE, _("A dataset (pixel) id is a string of digits."))
        ],
        help_text=_("From Meta Events Manager: Data sources > your dataset > Settings."),
    )
    label = models.CharField(_("label"), max_length=200, blank=True)
    encrypted_access_token = models.TextField(
        _("access token (encrypted)"), blank=True, editable=False
    )
    token_updated_at = models.DateTimeField(
        _("token updated at"), null=True, blank=True, editable=False
    )
    test_event_code = models.CharField(
        _("test event code"),
        max_length=64,
        blank=True,
        help_text=_("Events Manager > Test events. While set, events show there and do not count."),
    )
    partner_agent = models.CharField(_("partner agent"), max_length=64, blank=True)
    default_country = models.CharField(
        _("default country"),
        max_length=2,
        blank=True,
        validators=[validate_country_code],
        help_text=_("Two-letter code used to read national phone numbers without a country."),
    )
    enabled = models.BooleanField(
        _("enabled"),
        default=True,
        help_text=_(
            "Disabled: events are still recorded and kept pending, but nothing is sent until "
            "the dataset is enabled again (events older than 7 days then expire)."
        ),
    )
    disabled_reason = models.CharField(_("why it is disabled"), max_length=255, blank=True)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    class Meta:
        verbose_name = _("dataset")
        verbose_name_plural = _("datasets")
        ordering = ["label", "dataset_id"]

    def __str__(self) -> str:
        return f"{self.label} ({self.dataset_id})" if self.label else self.dataset_id

    @property
    def has_access_token(self) -> bool:
        return bool(self.encrypted_access_token)

    def set_access_token(self, token: str | None) -> None:
        """Encrypt and keep ``token`` (empty or None removes it). Call ``save()`` after."""
        from django_capi.datasets.encryption import encrypt_token

        token = (token or "").strip()
        self.encrypted_access_token = encrypt_token(token) if token else ""
        self.token_updated_at = timezone.now() if token else None

    def get_access_token(self) -> str | None:
        """The decrypted token (TokenDecryptionError when no configured key opens it)."""
        from django_capi.datasets.encryption import decrypt_token

        if not self.encrypted_access_token:
            return None
        return decrypt_token(self.encrypted_access_token)

    def as_config(self) -> conf.DatasetConfig:
        """This row as the :class:`~django_capi.conf.DatasetConfig` delivery uses.

        A token that cannot be decrypted becomes no token (delivery pauses the dataset with
        "no access token") and is logged without the ciphertext.
        """
        from django_capi.datasets.encryption import TokenDecryptionError

        try:
            token = self.get_access_token()
            token_error = ""
        except TokenDecryptionError as exc:
            token, token_error = None, str(exc)
            logger.error("django_capi: dataset %s: %s", self.dataset_id, exc)
        return conf.DatasetConfig(
            dataset_id=self.dataset_id,
            access_token=token,
            test_event_code=self.test_event_code or None,
            partner_agent=self.partner_agent or conf.get_setting("PARTNER_AGENT"),
            default_country=(self.default_country or "").upper()
            or conf.get_setting("DEFAULT_COUNTRY"),
            label=self.label,
            enabled=self.enabled,
            disabled_reason=self.disabled_reason if not self.enabled else "",
            origin=conf.DatasetOrigin.DATABASE,
            token_error=token_error,
        )


def token_fingerprint(token: str | None) -> str:
    """A short hash prefix identifying a token without revealing it (``""`` for none)."""
    if not token:
        return ""
    return hashlib.sha256(token.encode()).hexdigest()[:16]


class DatasetState(models.Model):
    """Delivery state of one dataset: throttling back-off and token/permission pauses.

    A throttled dataset waits until ``throttled_until``; a paused one sends nothing until its
    token changes (``token_fingerprint`` no longer matches) or a probe at ``next_probe_at``
    succeeds. Its events stay pending meanwhile.
    """

    dataset_id = models.CharField(_("dataset id"), max_length=32, unique=True)
    throttled_until = models.DateTimeField(_("throttled until"), null=True, blank=True)
    throttle_count = models.PositiveIntegerField(_("consecutive throttles"), default=0)
    paused_at = models.DateTimeField(_("paused at"), null=True, blank=True)
    pause_code = models.IntegerField(_("pause error code"), null=True, blank=True)
    pause_subcode = models.IntegerField(_("pause error subcode"), null=True, blank=True)
    pause_reason = models.TextField(_("pause reason"), blank=True)
    # A short SHA-256 prefix of the token that failed, to notice when it has been replaced.
    token_fingerprint = models.CharField(max_length=16, blank=True, editable=False)
    next_probe_at = models.DateTimeField(_("next probe at"), null=True, blank=True)
    last_success_at = models.DateTimeField(_("last success at"), null=True, blank=True)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    class Meta:
        verbose_name = _("dataset delivery state")
        verbose_name_plural = _("dataset delivery states")
        ordering = ["dataset_id"]

    def __str__(self) -> str:
        return self.dataset_id

    @property
    def is_paused(self) -> bool:
        return self.paused_at is not None


class DeliveryAttempt(models.Model):
    """One request to the Graph API for a batch of events of one dataset. Append-only.

    Holds what Meta answered and nothing the request carried: never the access token, never
    contact data.
    """

    Outcome = Outcome

    dataset_id = models.CharField(_("dataset id"), max_length=32)
    started_at = models.DateTimeField(_("started at"), default=timezone.now, db_index=True)
    duration_ms = models.PositiveIntegerField(_("duration (ms)"), default=0)
    outcome = models.CharField(_("outcome"), max_length=16, choices=Outcome.choices)
    http_status = models.PositiveSmallIntegerField(_("HTTP status"), null=True, blank=True)
    events_sent = models.PositiveIntegerField(_("events sent"), default=0)
    events_received = models.PositiveIntegerField(_("events received"), null=True, blank=True)
    error_code = models.IntegerField(_("error code"), null=True, blank=True)
    error_subcode = models.IntegerField(_("error subcode"), null=True, blank=True)
    error_type = models.CharField(_("error type"), max_length=100, blank=True)
    error_message = models.TextField(_("error message"), blank=True)
    error_user_title = models.CharField(_("error title"), max_length=255, blank=True)
    error_user_msg = models.TextField(_("error detail"), blank=True)
    is_transient = models.BooleanField(_("transient"), null=True, blank=True)
    fbtrace_id = models.CharField(_("fbtrace id"), max_length=64, blank=True)
    messages = models.JSONField(_("messages"), default=list, blank=True)
    events = models.ManyToManyField(
        Event, related_name="delivery_attempts", verbose_name=_("events")
    )

    class Meta:
        verbose_name = _("delivery attempt")
        verbose_name_plural = _("delivery attempts")
        ordering = ["-started_at"]
        indexes = [
            models.Index(fields=["dataset_id", "started_at"], name="capi_attempt_dataset_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.dataset_id} {self.started_at:%Y-%m-%d %H:%M:%S} {self.outcome}"

    def save(self, *args: Any, **kwargs: Any) -> None:
        if not self._state.adding:
            raise ValueError("Delivery attempts are append-only and cannot be changed.")
        super().save(*args, **kwargs)
