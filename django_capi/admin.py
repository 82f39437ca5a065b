"""Admin for the event store: events, delivery attempts, dataset states, and the dashboard.

Events are never added or edited by hand (what is stored is what Meta receives); staff change
them only through the *retry now* and *discard* actions, which need the ``change``
permission. Viewing needs the ``view`` permission.

Built for tables of millions of rows: no full counts (a capped count instead), no
``date_hierarchy``, filter choices from bounded queries, no query per row, and sorting only
on the indexed ``created_at``.
"""

from __future__ import annotations

import contextlib
import json
import logging
from datetime import datetime, timedelta
from functools import cached_property, partial
from typing import Any, Final
from weakref import WeakKeyDictionary

from django.contrib import admin, messages
from django.contrib.admin.options import IncorrectLookupParameters
from django.contrib.admin.utils import quote
from django.contrib.contenttypes.models import ContentType
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.db import transaction
from django.db.models import OuterRef, Q, QuerySet, Subquery
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import NoReverseMatch, URLPattern, path, reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.safestring import SafeString
from django.utils.text import Truncator, capfirst
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from django_capi import conf, housekeeping
from django_capi.dashboard.advice import error_label, pause_advice, throttle_advice
from django_capi.dashboard.formatting import STATUS_COLORS, format_duration
from django_capi.dashboard.views import dashboard_view
from django_capi.delivery.scheduling import queue_delivery
from django_capi.models import Dataset, DatasetState, DeliveryAttempt, Event

__all__ = [
    "CappedCountPaginator",
    "DatasetStateAdmin",
    "DeliveryAttemptAdmin",
    "EventAdmin",
    "status_badge",
]

logger = logging.getLogger("django_capi.admin")

#: Filter choices (event names, datasets, error codes) come from this many most recent rows.
RECENT_SAMPLE: Final = 10_000
#: ``Event.payload`` path of the order reference staff may search for.
ORDER_REF_PATH: Final = "payload__custom_data__order_id"

OUTCOME_COLORS: Final[dict[str, str]] = {
    "success": STATUS_COLORS["sent"],
    "transient": STATUS_COLORS["expired"],
    "throttled": STATUS_COLORS["sending"],
    "auth": STATUS_COLORS["failed"],
    "rejected": STATUS_COLORS["failed"],
}


def badge(text: Any, color: str) -> SafeString:
    """A coloured pill with white text; styled inline so it needs no stylesheet."""
    return format_html(
        '<span class="capi-badge" style="display:inline-block;padding:1px 8px;'
        "border-radius:9px;color:#fff;background:{};font-size:11px;font-weight:600;"
        'white-space:nowrap">{}</span>',
        color,
        text,
    )


def status_badge(status: str, label: Any = None) -> SafeString:
    """The badge of an event status."""
    return badge(label or status, STATUS_COLORS.get(status, "#616161"))


def delivery_state_badge(
    paused: bool, throttled_until: datetime | None, ok_label: Any = None
) -> SafeString:
    """The badge of a dataset's delivery state: paused, throttled now, or fine."""
    if paused:
        return badge(_("paused"), STATUS_COLORS["failed"])
    if throttled_until and throttled_until > timezone.now():
        return badge(_("throttled"), STATUS_COLORS["expired"])
    return badge(ok_label or _("ok"), STATUS_COLORS["sent"])


def delivery_advice(
    paused: bool,
    pause_code: int | None,
    pause_subcode: int | None,
    throttled_until: datetime | None,
) -> str:
    """What staff should do about a paused or throttled dataset; "" when nothing."""
    if paused:
        return pause_advice(pause_code, pause_subcode)
    if throttled_until and throttled_until > timezone.now():
        return throttle_advice()
    return ""


def _dataset_label(dataset_id: str, stored_label: str | None = None) -> str:
    """``"label (id)"``: the label of the dataset's admin row, else of its settings entry."""
    label = stored_label
    if not label:
        config = conf.settings_datasets().get(dataset_id)
        label = config.label if config else ""
    return f"{label} ({dataset_id})" if label else dataset_id


class DatasetLabelMixin:
    """Rows carry their dataset's admin label (one subquery, not one query per row)."""

    def get_queryset(self, request: HttpRequest) -> QuerySet[Any]:
        stored = Dataset.objects.filter(dataset_id=OuterRef("dataset_id")).exclude(label="")
        queryset: QuerySet[Any] = super().get_queryset(request)  # type: ignore[misc]
        annotated: QuerySet[Any] = queryset.annotate(
            dataset_label=Subquery(stored.values("label")[:1])
        )
        return annotated

    @admin.display(description=_("dataset"))
    def dataset(self, obj: Any) -> str:
        return _dataset_label(obj.dataset_id, getattr(obj, "dataset_label", None))


# --- counting and filtering without scanning the table --------------------------------------


class CappedCountPaginator(Paginator):  # type: ignore[type-arg]
    """Counts at most ``cap + 1`` rows, so a page of a huge table never costs a full COUNT.

    ``capped`` tells templates to say "more than 10,000" instead of a number.
    """

    cap = RECENT_SAMPLE

    @cached_property
    def count(self) -> int:
        """The number of rows, or ``cap + 1`` when there are more than ``cap``."""
        object_list: Any = self.object_list
        if isinstance(object_list, QuerySet):
            # Any cap+1 rows decide the count: no ORDER BY needed, LIMIT bounds the scan.
            return int(object_list.order_by()[: self.cap + 1].count())
        return len(object_list)

    @property
    def capped(self) -> bool:
        """True when the real count is larger than :attr:`count`."""
        return self.count > self.cap


_recent_since: WeakKeyDictionary[HttpRequest, dict[str, datetime | None]] = WeakKeyDictionary()


def recent_since(request: HttpRequest, model: type[Any], field: str) -> datetime | None:
    """When the ``RECENT_SAMPLE``-th most recent row was recorded (None: fewer rows).

    One index scan of ``RECENT_SAMPLE`` entries, done once per request and model.
    """
    cache = _recent_since.setdefault(request, {})
    key = f"{model._meta.label}.{field}"
    if key not in cache:
        rows = list(
            model._default_manager.order_by(f"-{field}").values_list(field, flat=True)[
                RECENT_SAMPLE - 1 : RECENT_SAMPLE
            ]
        )
        cache[key] = rows[0] if rows else None
    return cache[key]


class RecentValuesFilter(admin.SimpleListFilter):
    """Choices are the distinct values among the most recent rows (a bounded DISTINCT).

    Datasets named in the settings are always offered, and so is the selected value.
    """

    field_name: str = ""
    time_field: str = "created_at"
    limit = 100

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        model = model_admin.model
        rows = model._default_manager.order_by()
        since = recent_since(request, model, self.time_field)
        if since is not None:
            rows = rows.filter(**{f"{self.time_field}__gte": since})
        values = {
            str(v)
            for v in rows.values_list(self.field_name, flat=True).distinct()[: self.limit]
            if v not in (None, "")
        }
        values |= self.extra_values()
        if self.value():
            values.add(str(self.value()))
        return [(value, self.label_for(value)) for value in sorted(values)]

    def extra_values(self) -> set[str]:
        """Values offered even when no recent row has them."""
        return set()

    def label_for(self, value: str) -> str:
        """How a value is shown."""
        return value

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
        value = self.value()
        return queryset.filter(**{self.field_name: value}) if value else queryset


class DatasetFilter(RecentValuesFilter):
    title = _("dataset")
    parameter_name = "dataset"
    field_name = "dataset_id"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        self._stored_labels = dict(
            Dataset.objects.exclude(label="").values_list("dataset_id", "label")
        )
        return super().lookups(request, model_admin)

    def extra_values(self) -> set[str]:
        return set(conf.settings_datasets())

    def label_for(self, value: str) -> str:
        return _dataset_label(value, getattr(self, "_stored_labels", {}).get(value))


class AttemptDatasetFilter(DatasetFilter):
    time_field = "started_at"


class EventNameFilter(RecentValuesFilter):
    title = _("event name")
    parameter_name = "event"
    field_name = "event_name"


class ErrorCodeFilter(admin.SimpleListFilter):
    """Graph API error codes (and code/subcode pairs) seen among recent events."""

    title = _("error code")
    parameter_name = "error"
    NONE = "none"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        rows = Event.objects.order_by().filter(last_error_code__isnull=False)
        since = recent_since(request, Event, "created_at")
        if since is not None:
            rows = rows.filter(created_at__gte=since)
        pairs = set(rows.values_list("last_error_code", "last_error_subcode").distinct()[:50])
        values: dict[str, str] = {}
        for code, subcode in sorted(pairs, key=lambda p: (p[0], p[1] or 0)):
            values.setdefault(str(code), error_label(code))
            if subcode:
                values[f"{code}/{subcode}"] = error_label(code, subcode)
        value = self.value()
        if value and value not in values and value != self.NONE:
            with contextlib.suppress(ValueError):  # queryset() refuses a malformed value
                values[value] = error_label(*housekeeping.parse_error_code(value))

        def order(item: tuple[str, str]) -> tuple[int, int]:
            code, subcode = housekeeping.parse_error_code(item[0])
            return code, subcode or 0

        choices = sorted(values.items(), key=order)
        choices.append((self.NONE, str(_("no code (validation, expiry, network)"))))
        return choices

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
        value = self.value()
        if not value:
            return queryset
        if value == self.NONE:
            return queryset.filter(last_error_code__isnull=True).exclude(last_error_message="")
        try:
            code, subcode = housekeeping.parse_error_code(value)
        except ValueError as exc:
            raise IncorrectLookupParameters(exc) from exc
        queryset = queryset.filter(last_error_code=code)
        return queryset.filter(last_error_subcode=subcode) if subcode is not None else queryset


class RecordedFilter(admin.SimpleListFilter):
    """A ``created_at`` range (served by its index)."""

    title = _("recorded")
    parameter_name = "recorded"
    RANGES: Final = {"24h": timedelta(hours=24), "7d": timedelta(days=7), "30d": timedelta(days=30)}

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [
            ("24h", str(_("Last 24 hours"))),
            ("7d", str(_("Last 7 days"))),
            ("30d", str(_("Last 30 days"))),
        ]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
        value = self.value()
        if not value:
            return queryset
        if value not in self.RANGES:
            raise IncorrectLookupParameters(f"unknown range {value!r}")
        return queryset.filter(created_at__gte=timezone.now() - self.RANGES[value])


class AttemptFilter(admin.SimpleListFilter):
    """The events of one delivery attempt (linked from the attempt's page); hidden otherwise."""

    title = _("delivery attempt")
    parameter_name = "attempt"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        value = self.value()
        return [(str(value), f"#{value}")] if value else []

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
        value = self.value()
        if not value:
            return queryset
        if not str(value).isdigit():
            raise IncorrectLookupParameters(f"bad attempt id {value!r}")
        return queryset.filter(delivery_attempts__id=int(value))


# --- shared behaviour ---------------------------------------------------------------------


class ImmutableAdminMixin:
    """No add, no delete, no edit form: rows change only through actions.

    ``has_change_permission`` is the real permission without an object (it gates the
    actions) and False for a given object, so the change page is read-only for everyone.
    """

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        if obj is not None:
            return False
        return bool(super().has_change_permission(request))  # type: ignore[misc]

    def _require_change(self, request: HttpRequest) -> None:
        if not self.has_change_permission(request):
            raise PermissionDenied

    def _redirect_back(self, request: HttpRequest) -> HttpResponse | None:
        """Go back to the page an action was started from (the event's page), if safe."""
        target = request.POST.get("_capi_next", "")
        if target and url_has_allowed_host_and_scheme(
            target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
        ):
            return HttpResponseRedirect(target)
        return None


def _declared_lookup(model_admin: Any, lookup: str) -> bool:
    """Only the declared filters may filter from the URL: no arbitrary, unindexed lookups."""
    for item in model_admin.list_filter:
        if isinstance(item, str) and lookup in (f"{item}__exact", f"{item}__isnull"):
            return True
        if (
            isinstance(item, type)
            and issubclass(item, admin.SimpleListFilter)
            and lookup == item.parameter_name
        ):
            return True
    return False


def _capped_changelist(response: HttpResponse) -> HttpResponse:
    """Say "all matching" instead of an exact total where the count was capped."""
    context = getattr(response, "context_data", None)
    cl = context.get("cl") if context else None
    paginator = getattr(cl, "paginator", None)
    if context is not None and getattr(paginator, "capped", False):
        context["selection_note_all"] = _("All matching selected (more than %(cap)s)") % {
            "cap": f"{RECENT_SAMPLE:,}"
        }
    return response


# --- events -------------------------------------------------------------------------------


class DeliveryAttemptInline(admin.TabularInline):  # type: ignore[type-arg]
    """The attempt log of one event, newest first, read-only."""

    model = DeliveryAttempt.events.through
    verbose_name = _("delivery attempt")
    verbose_name_plural = _("delivery attempts")
    extra = 0
    can_delete = False
    fields = readonly_fields = (
        "attempt_link",
        "attempt_outcome",
        "attempt_http_status",
        "attempt_events",
        "attempt_error",
        "attempt_fbtrace_id",
        "attempt_duration",
    )

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        # Whoever may see the event may see its attempt log.
        registered = self.admin_site._registry.get(Event)
        return bool(registered and registered.has_view_permission(request, obj))

    def get_queryset(self, request: HttpRequest) -> QuerySet[Any]:
        return (
            super()
            .get_queryset(request)
            .select_related("deliveryattempt")
            .order_by("-deliveryattempt__started_at", "-deliveryattempt_id")
        )

    @admin.display(description=_("started at"))
    def attempt_link(self, obj: Any) -> Any:
        attempt = obj.deliveryattempt
        started = f"{timezone.localtime(attempt.started_at):%Y-%m-%d %H:%M:%S}"
        return _change_link(self.admin_site, "django_capi_deliveryattempt", attempt.pk, started)

    @admin.display(description=_("outcome"))
    def attempt_outcome(self, obj: Any) -> SafeString:
        attempt = obj.deliveryattempt
        return badge(attempt.get_outcome_display(), OUTCOME_COLORS.get(attempt.outcome, "#616161"))

    @admin.display(description=_("HTTP"))
    def attempt_http_status(self, obj: Any) -> Any:
        return obj.deliveryattempt.http_status or "-"

    @admin.display(description=_("events sent / received"))
    def attempt_events(self, obj: Any) -> str:
        attempt = obj.deliveryattempt
        received = "-" if attempt.events_received is None else attempt.events_received
        return f"{attempt.events_sent} / {received}"

    @admin.display(description=_("error"))
    def attempt_error(self, obj: Any) -> str:
        return _attempt_error(obj.deliveryattempt)

    @admin.display(description=_("fbtrace id"))
    def attempt_fbtrace_id(self, obj: Any) -> str:
        return str(obj.deliveryattempt.fbtrace_id or "-")

    @admin.display(description=_("duration"))
    def attempt_duration(self, obj: Any) -> str:
        return f"{obj.deliveryattempt.duration_ms} ms"


def _attempt_error(attempt: DeliveryAttempt) -> str:
    """Meta's user title and message (or the technical message) with the code."""
    text = ": ".join(p for p in (attempt.error_user_title, attempt.error_user_msg) if p)
    text = text or attempt.error_message
    if attempt.error_code is None:
        return text or "-"
    code = f"{attempt.error_code}/{attempt.error_subcode}" if attempt.error_subcode else ""
    return f"[{code or attempt.error_code}] {text}".strip()


@admin.register(Event)
class EventAdmin(DatasetLabelMixin, ImmutableAdminMixin, admin.ModelAdmin):  # type: ignore[type-arg]
    """Events: find them, read exactly what was sent, retry or discard them."""

    list_display = [
        "event_name",
        "dataset",
        "status_badge",
        "attempts",
        "age",
        "last_error",
        "source_link",
    ]
    list_display_links = ["event_name"]
    list_filter = [
        "status",
        EventNameFilter,
        DatasetFilter,
        "action_source",
        ErrorCodeFilter,
        RecordedFilter,
        AttemptFilter,
    ]
    list_select_related = ["source_content_type"]
    list_per_page = 50
    # get_search_results decides what is searched; search_fields only turns the box on.
    search_fields = ["=event_id"]
    search_help_text = _(
        "Exact event id, fbtrace id, order reference (custom_data.order_id) or the source "
        "object's id (the order's primary key)."
    )
    show_full_result_count = False
    if hasattr(admin, "ShowFacets"):  # Django 5.0+: facet counts would scan the table
        show_facets = admin.ShowFacets.NEVER
    paginator = CappedCountPaginator
    sortable_by = ["age"]  # created_at is indexed; sorting on anything else sorts the table
    actions = ["retry_now", "discard"]
    inlines = [DeliveryAttemptInline]
    fieldsets = (
        (
            None,
            {
                "fields": (
                    "event_name",
                    "event_id",
                    "dataset",
                    "action_source",
                    "event_time",
                    "source_link",
                    "created_at",
                )
            },
        ),
        (
            _("Delivery"),
            {
                "fields": (
                    "status_badge",
                    "attempts",
                    "next_attempt_at",
                    "lease_expires_at",
                    "sent_at",
                    "last_error_detail",
                    "last_fbtrace_id",
                    "updated_at",
                )
            },
        ),
        (_("Problems"), {"fields": ("validation_reason", "normalization_warnings")}),
        (_("Payload, exactly as sent to Meta"), {"fields": ("payload_json",)}),
    )
    readonly_fields = tuple(str(name) for _title, spec in fieldsets for name in spec["fields"])

    # --- list columns

    @admin.display(description=_("status"))
    def status_badge(self, obj: Event) -> SafeString:
        return status_badge(obj.status, obj.get_status_display())

    @admin.display(description=_("age"), ordering="created_at")
    def age(self, obj: Event) -> SafeString:
        return format_html(
            '<span title="{}">{}</span>',
            f"{timezone.localtime(obj.created_at):%Y-%m-%d %H:%M:%S %Z}",
            format_duration(timezone.now() - obj.created_at),
        )

    @admin.display(description=_("last error"))
    def last_error(self, obj: Event) -> SafeString | str:
        message = obj.last_error_message
        code = obj.last_error_code
        if not message and code is None:
            return ""
        short = Truncator(message).chars(110)
        if code is not None and not message.startswith("["):
            number = f"{code}/{obj.last_error_subcode}" if obj.last_error_subcode else str(code)
            return format_html('<span title="{}">[{}] {}</span>', message, number, short)
        return format_html('<span title="{}">{}</span>', message, short)

    @admin.display(description=_("source"))
    def source_link(self, obj: Event) -> SafeString | str:
        order_ref = _order_ref(obj.payload)
        ct = obj.source_content_type
        if ct is None or not obj.source_object_id:
            return f"order {order_ref}" if order_ref else "-"
        model = ct.model_class()
        name = capfirst(model._meta.verbose_name) if model else f"{ct.app_label}.{ct.model}"
        label = f"{name} #{obj.source_object_id}"
        if order_ref and order_ref != obj.source_object_id:
            label += f" ({order_ref})"
        if model is None or not self.admin_site.is_registered(model):
            return label
        model_name = f"{model._meta.app_label}_{model._meta.model_name}"
        return _change_link(self.admin_site, model_name, quote(obj.source_object_id), label)

    # --- detail fields

    @admin.display(description=_("last error"))
    def last_error_detail(self, obj: Event) -> str:
        label = error_label(obj.last_error_code, obj.last_error_subcode)
        parts = [p for p in (label, obj.last_error_message) if p]
        return " — ".join(parts) or "-"

    @admin.display(description=_("why it cannot be sent"))
    def validation_reason(self, obj: Event) -> SafeString | str:
        return _field_rule_list(obj.validation_errors)

    @admin.display(description=_("normalization warnings"))
    def normalization_warnings(self, obj: Event) -> SafeString | str:
        return _field_rule_list(obj.warnings)

    @admin.display(description=_("payload"))
    def payload_json(self, obj: Event) -> SafeString:
        text = json.dumps(obj.payload, indent=2, ensure_ascii=False)
        return format_html(
            '<pre class="capi-json" style="white-space:pre-wrap;max-height:40em;overflow:auto;'
            'margin:0">{}</pre>',
            text,
        )

    # --- search

    def get_search_results(
        self, request: HttpRequest, queryset: QuerySet[Event], search_term: str
    ) -> tuple[QuerySet[Event], bool]:
        """Exact match on event id, fbtrace id, order reference or source object id.

        Exact matches only (no LIKE scans). The source lookup names every content type so
        that the ``capi_event_source_idx`` (type, id) index can serve it.
        """
        term = search_term.strip()
        if not term:
            return queryset, False
        types = list(ContentType.objects.order_by().values_list("pk", flat=True))
        match = (
            Q(event_id=term)
            | Q(last_fbtrace_id=term)
            | Q(**{ORDER_REF_PATH: term})
            | Q(source_content_type__in=types, source_object_id=term)
        )
        if term.isdigit():  # an order id stored as a JSON number
            match |= Q(**{ORDER_REF_PATH: int(term)})
        return queryset.filter(match), False

    # --- views

    def lookup_allowed(self, lookup: str, value: str, request: Any = None) -> bool:
        return _declared_lookup(self, lookup)

    def changelist_view(
        self, request: HttpRequest, extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        return _capped_changelist(super().changelist_view(request, extra_context))

    def change_view(
        self,
        request: HttpRequest,
        object_id: str,
        form_url: str = "",
        extra_context: dict[str, Any] | None = None,
    ) -> HttpResponse:
        extra = dict(extra_context or {})
        extra["capi_can_act"] = self.has_change_permission(request)
        extra["capi_next"] = request.get_full_path()
        return super().change_view(request, object_id, form_url, extra)

    def get_urls(self) -> list[URLPattern]:
        info = self.opts.app_label, self.opts.model_name
        return [
            path(
                "dashboard/",
                self.admin_site.admin_view(self.dashboard),
                name="{}_{}_dashboard".format(*info),
            ),
            *super().get_urls(),
        ]

    def dashboard(self, request: HttpRequest) -> TemplateResponse:
        """The delivery dashboard (needs the view permission on events)."""
        return dashboard_view(request, self)

    # --- actions

    @admin.action(description=_("Retry now"), permissions=["change"])
    def retry_now(self, request: HttpRequest, queryset: QuerySet[Event]) -> HttpResponse | None:
        """Make the selected events due now; delivery is queued after commit, never sent here."""
        self._require_change(request)
        result = housekeeping.retry_events(queryset)
        self.message_user(
            request, result.message(), messages.SUCCESS if result.queued else messages.WARNING
        )
        stopped = DatasetState.objects.filter(dataset_id__in=list(result.datasets)).filter(
            Q(paused_at__isnull=False) | Q(throttled_until__gt=timezone.now())
        )
        for state in stopped:
            advice = (
                pause_advice(state.pause_code, state.pause_subcode)
                if state.is_paused
                else throttle_advice()
            )
            self.message_user(
                request,
                _("Dataset %(dataset)s is %(state)s, so its events wait: %(advice)s")
                % {
                    "dataset": state.dataset_id,
                    "state": _("paused") if state.is_paused else _("throttled"),
                    "advice": advice,
                },
                messages.WARNING,
            )
        logger.info(
            "django_capi: %s retried events: %s", request.user, result.message()
        )  # who did it, for the record
        return self._redirect_back(request)

    @admin.action(description=_("Discard (never send)"), permissions=["change"])
    def discard(self, request: HttpRequest, queryset: QuerySet[Event]) -> HttpResponse | None:
        """Mark the selected unsent events as discarded."""
        self._require_change(request)
        result = housekeeping.discard_events(queryset)
        self.message_user(
            request, result.message(), messages.SUCCESS if result.discarded else messages.WARNING
        )
        logger.info("django_capi: %s discarded events: %s", request.user, result.message())
        return self._redirect_back(request)


def _order_ref(payload: Any) -> str:
    custom = payload.get("custom_data") if isinstance(payload, dict) else None
    value = custom.get("order_id") if isinstance(custom, dict) else None
    return "" if value in (None, "") else str(value)


# --- delivery attempts --------------------------------------------------------------------


@admin.register(DeliveryAttempt)
class DeliveryAttemptAdmin(DatasetLabelMixin, ImmutableAdminMixin, admin.ModelAdmin):  # type: ignore[type-arg]
    """The append-only log of requests to the Graph API."""

    list_display = [
        "started_at",
        "dataset",
        "outcome_badge",
        "http_status",
        "events_sent",
        "events_received",
        "error",
        "fbtrace_id",
        "duration_ms",
    ]
    list_filter = ["outcome", AttemptDatasetFilter]
    search_fields = ["=fbtrace_id"]
    search_help_text = _("Exact fbtrace id (quote it to Meta support).")
    show_full_result_count = False
    if hasattr(admin, "ShowFacets"):
        show_facets = admin.ShowFacets.NEVER
    paginator = CappedCountPaginator
    list_per_page = 50
    sortable_by = ["started_at"]
    fields = readonly_fields = (
        "started_at",
        "dataset",
        "outcome_badge",
        "duration_ms",
        "http_status",
        "events_sent",
        "events_received",
        "events_link",
        "error_code",
        "error_subcode",
        "error_type",
        "error_user_title",
        "error_user_msg",
        "error_message",
        "is_transient",
        "fbtrace_id",
        "messages_json",
    )

    @admin.display(description=_("outcome"))
    def outcome_badge(self, obj: DeliveryAttempt) -> SafeString:
        return badge(obj.get_outcome_display(), OUTCOME_COLORS.get(obj.outcome, "#616161"))

    @admin.display(description=_("error"))
    def error(self, obj: DeliveryAttempt) -> str:
        return "" if obj.error_code is None and not obj.error_message else _attempt_error(obj)

    @admin.display(description=_("events"))
    def events_link(self, obj: DeliveryAttempt) -> SafeString:
        url = reverse(
            f"{self.admin_site.name}:django_capi_event_changelist",
            current_app=self.admin_site.name,
        )
        count = obj.events.count()
        return format_html(
            '<a href="{}?attempt={}">{}</a>',
            url,
            obj.pk,
            ngettext("%(count)d event", "%(count)d events", count) % {"count": count},
        )

    @admin.display(description=_("messages"))
    def messages_json(self, obj: DeliveryAttempt) -> SafeString | str:
        if not obj.messages:
            return "-"
        return format_html(
            '<pre style="white-space:pre-wrap;margin:0">{}</pre>',
            json.dumps(obj.messages, indent=2, ensure_ascii=False),
        )

    def lookup_allowed(self, lookup: str, value: str, request: Any = None) -> bool:
        return _declared_lookup(self, lookup)

    def changelist_view(
        self, request: HttpRequest, extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        return _capped_changelist(super().changelist_view(request, extra_context))


# --- dataset states -----------------------------------------------------------------------


@admin.register(DatasetState)
class DatasetStateAdmin(DatasetLabelMixin, ImmutableAdminMixin, admin.ModelAdmin):  # type: ignore[type-arg]
    """Which datasets are throttled or paused, and what to do about it."""

    list_display = [
        "dataset_id",
        "label",
        "state",
        "pause_reason",
        "what_to_do",
        "throttled_until",
        "next_probe_at",
        "last_success_at",
    ]
    fields = readonly_fields = (
        "dataset_id",
        "label",
        "state",
        "what_to_do",
        "paused_at",
        "pause_code",
        "pause_subcode",
        "pause_reason",
        "next_probe_at",
        "throttled_until",
        "throttle_count",
        "last_success_at",
        "updated_at",
    )
    actions = ["probe_now"]

    @admin.display(description=_("label"))
    def label(self, obj: DatasetState) -> str:
        stored = getattr(obj, "dataset_label", None)
        config = conf.settings_datasets().get(obj.dataset_id)
        return stored or (config.label if config else "") or "-"

    @admin.display(description=_("state"))
    def state(self, obj: DatasetState) -> SafeString:
        return delivery_state_badge(obj.is_paused, obj.throttled_until)

    @admin.display(description=_("what to do"))
    def what_to_do(self, obj: DatasetState) -> str:
        advice = delivery_advice(
            obj.is_paused, obj.pause_code, obj.pause_subcode, obj.throttled_until
        )
        return advice or "-"

    @admin.action(description=_("Try paused datasets again now"), permissions=["change"])
    def probe_now(self, request: HttpRequest, queryset: QuerySet[DatasetState]) -> None:
        """Let the next delivery run probe the selected paused datasets at once."""
        self._require_change(request)
        with transaction.atomic():
            paused = list(
                queryset.filter(paused_at__isnull=False).values_list("dataset_id", flat=True)
            )
            DatasetState.objects.filter(dataset_id__in=paused).update(next_probe_at=timezone.now())
            for dataset_id in paused:
                transaction.on_commit(partial(queue_delivery, dataset_id))
        self.message_user(
            request,
            ngettext(
                "Delivery to %(count)d paused dataset is queued to be tried again.",
                "Delivery to %(count)d paused datasets is queued to be tried again.",
                len(paused),
            )
            % {"count": len(paused)},
            messages.SUCCESS if paused else messages.WARNING,
        )


def _field_rule_list(items: list[dict[str, str]]) -> SafeString | str:
    """Validation errors or normalization warnings ({field, rule}) as an HTML list."""
    if not items:
        return "-"
    return format_html(
        "<ul>{}</ul>",
        format_html_join(
            "",
            "<li><code>{}</code>: {}</li>",
            ((item.get("field", ""), item.get("rule", "")) for item in items),
        ),
    )


def _change_link(site: admin.AdminSite, model_name: str, pk: Any, label: str) -> SafeString | str:
    """A link to an object's admin change page, or just ``label`` when it has none."""
    try:
        url = reverse(f"{site.name}:{model_name}_change", args=[pk], current_app=site.name)
    except NoReverseMatch:
        return label
    return format_html('<a href="{}">{}</a>', url, label)


# The Dataset admin lives with the rest of the dataset code.
from django_capi.datasets import admin as datasets_admin  # noqa: E402, F401
