"""The admin of :class:`~django_capi.models.Dataset`: connect, pause and test datasets.

The access token is write-only: the form takes a new one (encrypted on save) and never
renders the stored one, not even masked. Saving queues delivery after commit, so a replaced
token lifts a token pause and a re-enabled dataset sends its backlog without waiting for the
periodic sweep. "Send a test event" queues a task; the admin request never waits on Meta.
"""

from __future__ import annotations

from functools import partial
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.db import transaction
from django.db.models import OuterRef, QuerySet, Subquery
from django.http import HttpRequest
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html
from django.utils.safestring import SafeString
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from django_capi.admin import badge, delivery_advice, delivery_state_badge
from django_capi.dashboard.formatting import STATUS_COLORS
from django_capi.datasets.encryption import TokenDecryptionError
from django_capi.delivery.scheduling import queue_delivery
from django_capi.models import Dataset, DatasetState, token_fingerprint

__all__ = ["DatasetAdmin", "DatasetForm"]

MAX_TOKEN_LENGTH = 1024


class DatasetForm(forms.ModelForm):  # type: ignore[type-arg]
    """The dataset form, with a write-only access token field."""

    access_token = forms.CharField(
        label=_("new access token"),
        required=False,
        strip=True,
        max_length=MAX_TOKEN_LENGTH,
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "off"}),
        help_text=_(
            "Write-only. Paste a Conversions API token (Events Manager > your dataset > "
            "Settings > Generate access token) to replace the stored one. It is encrypted and "
            "never shown again. Leave empty to keep the current token."
        ),
    )
    remove_access_token = forms.BooleanField(
        label=_("remove the stored token"),
        required=False,
        help_text=_("Delivery to this dataset then pauses until a new token is set."),
    )

    class Meta:
        model = Dataset
        fields = [
            "dataset_id",
            "label",
            "access_token",
            "remove_access_token",
            "test_event_code",
            "partner_agent",
            "default_country",
            "enabled",
            "disabled_reason",
        ]

    def clean_access_token(self) -> str:
        token: str = self.cleaned_data.get("access_token") or ""
        if token and any(ch.isspace() for ch in token):
            raise forms.ValidationError(
                _("An access token has no spaces or line breaks: copy it again."),
                code="token_whitespace",
            )
        return token

    def clean_default_country(self) -> str:
        return (self.cleaned_data.get("default_country") or "").upper()

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        if cleaned.get("access_token") and cleaned.get("remove_access_token"):
            raise forms.ValidationError(
                _("Either paste a new token or remove the stored one, not both."),
                code="token_conflict",
            )
        if cleaned.get("enabled") is False and not cleaned.get("disabled_reason"):
            self.add_error(
                "disabled_reason",
                forms.ValidationError(
                    _("Say why the dataset is disabled, for the next person who looks."),
                    code="reason_required",
                ),
            )
        return cleaned

    def save(self, commit: bool = True) -> Dataset:
        dataset: Dataset = super().save(commit=False)
        token = self.cleaned_data.get("access_token")
        if token:
            dataset.set_access_token(token)
        elif self.cleaned_data.get("remove_access_token"):
            dataset.set_access_token(None)
        if dataset.enabled:
            dataset.disabled_reason = ""
        if commit:
            dataset.save()
        return dataset


@admin.register(Dataset)
class DatasetAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    """Datasets connected by staff: label, write-only token, test code, enabled state."""

    form = DatasetForm
    list_display = [
        "__str__",
        "token_status",
        "state",
        "test_event_code",
        "default_country",
        "updated_at",
    ]
    list_filter = ["enabled"]
    search_fields = ["=dataset_id", "label"]
    readonly_fields = ["token_status", "state", "what_to_do", "token_updated_at", "events_link"]
    actions = ["send_test_event", "enable", "disable"]

    def get_fieldsets(self, request: HttpRequest, obj: Any = None) -> Any:
        connection = ["dataset_id", "label", "token_status", "access_token"]
        if obj is not None and obj.has_access_token:
            connection.append("remove_access_token")
        sections: list[tuple[Any, dict[str, Any]]] = [
            (None, {"fields": connection}),
            (
                _("Sending"),
                {"fields": ["enabled", "disabled_reason", "test_event_code", "partner_agent"]},
            ),
            (_("Normalization"), {"fields": ["default_country"]}),
        ]
        if obj is not None:
            sections.append(
                (
                    _("Delivery"),
                    {"fields": ["state", "what_to_do", "token_updated_at", "events_link"]},
                )
            )
        return sections

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> list[str]:
        fields = list(self.readonly_fields)
        if obj is not None:  # events are stored under the id: it cannot change
            fields.append("dataset_id")
        return fields

    def get_queryset(self, request: HttpRequest) -> QuerySet[Dataset]:
        state = DatasetState.objects.filter(dataset_id=OuterRef("dataset_id"))
        queryset: QuerySet[Dataset] = super().get_queryset(request)
        return queryset.annotate(
            paused_at=Subquery(state.values("paused_at")[:1]),
            pause_reason=Subquery(state.values("pause_reason")[:1]),
            pause_code=Subquery(state.values("pause_code")[:1]),
            pause_subcode=Subquery(state.values("pause_subcode")[:1]),
            throttled_until=Subquery(state.values("throttled_until")[:1]),
        )

    # --- columns

    @admin.display(description=_("access token"))
    def token_status(self, obj: Dataset) -> str:
        if obj.pk is None or not obj.has_access_token:
            return str(_("not set"))
        try:
            obj.get_access_token()
        except TokenDecryptionError:
            return str(_("set, but it cannot be decrypted with the configured keys"))
        when = obj.token_updated_at
        return str(_("set (encrypted) on %(date)s") % {"date": f"{when:%Y-%m-%d %H:%M}"})

    @admin.display(description=_("state"))
    def state(self, obj: Dataset) -> SafeString:
        if not obj.enabled:
            return badge(_("disabled"), STATUS_COLORS["discarded"])
        paused = bool(getattr(obj, "paused_at", None))
        return delivery_state_badge(paused, getattr(obj, "throttled_until", None), _("active"))

    @admin.display(description=_("what to do"))
    def what_to_do(self, obj: Dataset) -> str:
        if not obj.enabled:
            return str(_("Disabled by staff: %(reason)s") % {"reason": obj.disabled_reason or "-"})
        paused = bool(getattr(obj, "paused_at", None))
        advice = delivery_advice(
            paused,
            getattr(obj, "pause_code", None),
            getattr(obj, "pause_subcode", None),
            getattr(obj, "throttled_until", None),
        )
        if paused:
            return f"{getattr(obj, 'pause_reason', '') or ''} {advice}".strip()
        if advice:
            return advice
        if not obj.has_access_token:
            return str(_("Paste the dataset's Conversions API access token above."))
        return "-"

    @admin.display(description=_("events"))
    def events_link(self, obj: Dataset) -> SafeString | str:
        try:
            url = reverse(f"{self.admin_site.name}:django_capi_event_changelist")
        except Exception:
            return "-"
        return format_html('<a href="{}?dataset={}">{}</a>', url, obj.dataset_id, _("its events"))

    # --- saving

    def save_model(self, request: HttpRequest, obj: Dataset, form: Any, change: bool) -> None:
        super().save_model(request, obj, form, change)
        if obj.enabled and obj.has_access_token:
            # A new token or re-enabling: deliver the backlog (and lift a token pause) now.
            transaction.on_commit(partial(queue_delivery, obj.dataset_id))
        if change and "access_token" in form.changed_data:
            state = DatasetState.objects.filter(dataset_id=obj.dataset_id).first()
            if state is not None and state.is_paused:
                fingerprint = token_fingerprint(obj.get_access_token())
                if fingerprint != state.token_fingerprint:
                    messages.info(
                        request,
                        _("The token was replaced: delivery to the paused dataset resumes."),
                    )

    # --- actions

    @admin.action(description=_("Send a test event"), permissions=["change"])
    def send_test_event(self, request: HttpRequest, queryset: QuerySet[Dataset]) -> None:
        """Queue one test event per selected dataset that has a test event code."""
        from django_capi.tasks import send_test_event

        ready = [d for d in queryset if d.test_event_code and d.has_access_token]
        skipped = [str(d) for d in queryset if d not in ready]
        for dataset in ready:
            transaction.on_commit(
                partial(send_test_event.apply_async, (dataset.dataset_id,), retry=False)
            )
        if ready:
            self.message_user(
                request,
                ngettext(
                    "A test event to %(count)d dataset is queued: Meta's answer appears in the "
                    "delivery attempts, the event in Events Manager > Test events.",
                    "Test events to %(count)d datasets are queued: Meta's answers appear in the "
                    "delivery attempts, the events in Events Manager > Test events.",
                    len(ready),
                )
                % {"count": len(ready)},
                messages.SUCCESS,
            )
        if skipped:
            self.message_user(
                request,
                _("Not sent (set a test event code and an access token first): %(names)s")
                % {"names": ", ".join(skipped)},
                messages.WARNING,
            )

    @admin.action(description=_("Enable the selected datasets"), permissions=["change"])
    def enable(self, request: HttpRequest, queryset: QuerySet[Dataset]) -> None:
        ids = list(queryset.filter(enabled=False).values_list("dataset_id", flat=True))
        Dataset.objects.filter(dataset_id__in=ids).update(
            enabled=True, disabled_reason="", updated_at=timezone.now()
        )
        for dataset_id in ids:
            transaction.on_commit(partial(queue_delivery, dataset_id))
        self.message_user(
            request,
            ngettext("%(count)d dataset enabled.", "%(count)d datasets enabled.", len(ids))
            % {"count": len(ids)},
        )

    @admin.action(description=_("Disable the selected datasets"), permissions=["change"])
    def disable(self, request: HttpRequest, queryset: QuerySet[Dataset]) -> None:
        reason = _("disabled by %(user)s on %(date)s") % {
            "user": request.user.get_username(),
            "date": f"{timezone.now():%Y-%m-%d %H:%M}",
        }
        count = queryset.filter(enabled=True).update(
            enabled=False, disabled_reason=str(reason)[:255], updated_at=timezone.now()
        )
        self.message_user(
            request,
            ngettext(
                "%(count)d dataset disabled: its events are kept pending.",
                "%(count)d datasets disabled: their events are kept pending.",
                count,
            )
            % {"count": count},
        )
