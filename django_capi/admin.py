"""Read-only admin for stored events and their delivery attempts.

Events are never added or edited by hand: what is stored is what Meta receives.
"""

from __future__ import annotations

import json
from typing import Any

from django.contrib import admin
from django.http import HttpRequest
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _

from django_capi.models import DeliveryAttempt, Event


class ReadOnlyAdminMixin:
    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class DeliveryAttemptInline(ReadOnlyAdminMixin, admin.TabularInline):  # type: ignore[type-arg]
    model = DeliveryAttempt.events.through
    verbose_name = _("delivery attempt")
    verbose_name_plural = _("delivery attempts")
    extra = 0
    fields = readonly_fields = (
        "attempt_started_at",
        "attempt_outcome",
        "attempt_http_status",
        "attempt_error",
    )

    @admin.display(description=_("started at"))
    def attempt_started_at(self, obj: Any) -> Any:
        return obj.deliveryattempt.started_at

    @admin.display(description=_("outcome"))
    def attempt_outcome(self, obj: Any) -> str:
        return str(obj.deliveryattempt.get_outcome_display())

    @admin.display(description=_("HTTP status"))
    def attempt_http_status(self, obj: Any) -> Any:
        return obj.deliveryattempt.http_status

    @admin.display(description=_("error"))
    def attempt_error(self, obj: Any) -> str:
        attempt = obj.deliveryattempt
        if attempt.error_code is None:
            return ""
        return f"{attempt.error_code}/{attempt.error_subcode or '-'} {attempt.error_message}"

    def get_queryset(self, request: HttpRequest) -> Any:
        return super().get_queryset(request).select_related("deliveryattempt")


@admin.register(Event)
class EventAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):  # type: ignore[type-arg]
    list_display = [
        "event_name",
        "event_id",
        "dataset_id",
        "status",
        "attempts",
        "action_source",
        "created_at",
        "problem",
    ]
    list_filter = ["status", "event_name", "action_source", "dataset_id"]
    search_fields = ["=event_id", "=last_fbtrace_id"]
    show_full_result_count = False
    readonly_fields = (
        "dataset_id",
        "event_name",
        "event_id",
        "event_time",
        "action_source",
        "status",
        "attempts",
        "next_attempt_at",
        "lease_expires_at",
        "sent_at",
        "validation_reason",
        "normalization_warnings",
        "last_error_code",
        "last_error_subcode",
        "last_error_message",
        "last_fbtrace_id",
        "source_link",
        "created_at",
        "updated_at",
        "payload_json",
    )
    fields = readonly_fields
    inlines = [DeliveryAttemptInline]

    @admin.display(description=_("problem"))
    def problem(self, obj: Event) -> str:
        return obj.last_error_message[:120]

    @admin.display(description=_("validation errors"))
    def validation_reason(self, obj: Event) -> str:
        return obj.validation_reason or "—"

    @admin.display(description=_("normalization warnings"))
    def normalization_warnings(self, obj: Event) -> str:
        return "; ".join(f"{w['field']}: {w['rule']}" for w in obj.warnings) or "—"

    @admin.display(description=_("source"))
    def source_link(self, obj: Event) -> str:
        if obj.source_content_type is None:
            return "—"
        return f"{obj.source_content_type.app_labeled_name} #{obj.source_object_id}"

    @admin.display(description=_("payload (as sent)"))
    def payload_json(self, obj: Event) -> str:
        return format_html(
            "<pre>{}</pre>", json.dumps(obj.payload, indent=2, sort_keys=True, ensure_ascii=False)
        )


@admin.register(DeliveryAttempt)
class DeliveryAttemptAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):  # type: ignore[type-arg]
    list_display = [
        "started_at",
        "dataset_id",
        "outcome",
        "http_status",
        "events_sent",
        "events_received",
        "error_code",
        "error_subcode",
        "fbtrace_id",
    ]
    list_filter = ["outcome", "dataset_id"]
    search_fields = ["=fbtrace_id"]
    exclude = ["events"]
    show_full_result_count = False
