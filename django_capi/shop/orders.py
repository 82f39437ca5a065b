"""Connecting a host's Order model: the adapter, its registration, and event recording.

django_capi cannot own your Order model. You describe it once with an :class:`OrderAdapter`::

    from django_capi.shop import OrderAdapter, register

    @register(Order)
    class OrderEvents(OrderAdapter[Order]):
        def user_data(self, order):
            return {"em": order.email, "ph": order.phone, "fn": order.first_name, ...}

        def contents(self, order):
            return [{"id": l.sku, "quantity": l.quantity, "item_price": l.unit_price}
                    for l in order.lines.all()]

        def currency(self, order):
            return order.currency

(or name the class in ``CAPI["ORDER_ADAPTER"]``), then send the signals in
:mod:`django_capi.shop.signals` or call :func:`record_initiate_checkout` /
:func:`record_purchase`. The server event and the page's pixel call share
:func:`order_custom_data` and :func:`~django_capi.shop.event_ids.event_id_for`, so they carry
the same data and the same event id.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING, Any, Generic, TypeVar, overload

from django.core.exceptions import FieldDoesNotExist, ImproperlyConfigured
from django.db import models, router, transaction
from django.db.models.signals import post_save
from django.http import HttpRequest
from django.utils.module_loading import import_string

from django_capi import conf
from django_capi.normalization.custom_data import normalize_custom_data
from django_capi.request_capture import (
    REQUEST_ATTRIBUTE,
    RequestCapture,
    capture_context,
    capture_for,
    context_allows_tracking,
    user_data_from_context,
)
from django_capi.shop.consent import has_consent, strip_custom_data
from django_capi.shop.event_ids import event_id_from_key

if TYPE_CHECKING:
    from django_capi.models import Event

__all__ = [
    "INITIATE_CHECKOUT",
    "PURCHASE",
    "OrderAdapter",
    "get_adapter",
    "order_custom_data",
    "order_custom_data_for_page",
    "order_event_id",
    "record_initiate_checkout",
    "record_order_event",
    "record_purchase",
    "register",
    "unregister",
]

logger = logging.getLogger("django_capi")

INITIATE_CHECKOUT = "InitiateCheckout"
PURCHASE = "Purchase"

OrderT = TypeVar("OrderT")


class OrderAdapter(Generic[OrderT]):
    """Maps a host order (or cart/checkout) to Conversions API data. Override what you need.

    Only :meth:`contents`/:meth:`value` and :meth:`currency` are needed for a valid Purchase;
    :meth:`user_data` makes events match people. Values may be raw (``Decimal``, names,
    national phone numbers): django_capi normalizes and hashes them.
    """

    #: Model field (a JSONField) where :meth:`save_context` keeps the checkout's request
    #: context; None to keep it elsewhere (override :meth:`get_context`/:meth:`save_context`).
    context_field: str | None = "capi_context"
    #: ``custom_data.content_type`` when the order has contents.
    content_type: str | None = "product"

    def key(self, order: OrderT) -> str:
        """A stable identity for event ids; default ``"<app_label>.<model>:<pk>"``."""
        if isinstance(order, models.Model):
            if order.pk is None:
                raise ValueError("An unsaved order has no stable key for its event ids.")
            return f"{order._meta.label_lower}:{order.pk}"
        raise TypeError(
            f"{type(self).__name__}.key() must be overridden for {type(order).__name__} objects."
        )

    def user_data(self, order: OrderT) -> Mapping[str, Any]:
        """Customer information: em, ph, fn, ln, ct, st, zp, country, external_id, ..."""
        return {}

    def contents(self, order: OrderT) -> Iterable[Mapping[str, Any]]:
        """The order's lines as ``{"id", "quantity", "item_price"}`` items."""
        return ()

    def value(self, order: OrderT) -> Any:
        """The order's value; default: the sum of ``quantity * item_price`` of :meth:`contents`."""
        return None

    def currency(self, order: OrderT) -> str | None:
        """ISO 4217 currency code of :meth:`value`."""
        return None

    def order_id(self, order: OrderT) -> str | None:
        """``custom_data.order_id``; default None, so no order number leaves the site."""
        return None

    def extra_custom_data(self, order: OrderT, event_name: str) -> Mapping[str, Any]:
        """More ``custom_data`` keys for this event (e.g. ``delivery_category``)."""
        return {}

    def custom_data(self, order: OrderT, event_name: str) -> dict[str, Any]:
        """The raw ``custom_data`` (value, currency, contents, content_ids, num_items, ...)."""
        contents = [dict(item) for item in self.contents(order)]
        value = self.value(order)
        if value is None and contents:
            value = _sum_of(contents)
        data: dict[str, Any] = {"value": value, "currency": self.currency(order)}
        if contents:
            data["contents"] = contents
            data["content_ids"] = [item["id"] for item in contents if item.get("id") is not None]
            data["num_items"] = sum(_quantity(item) for item in contents)
            if self.content_type:
                data["content_type"] = self.content_type
        order_id = self.order_id(order)
        if order_id not in (None, ""):
            data["order_id"] = order_id
        data.update(self.extra_custom_data(order, event_name))
        return data

    def is_paid(self, order: OrderT) -> bool:
        """Whether the order is paid (used by ``register(..., record_paid_on_save=True)``)."""
        return False

    def track_options(self, order: OrderT, event_name: str) -> Mapping[str, Any]:
        """More :func:`~django_capi.track` arguments: ``pixel_id``, ``opt_out``, LDU, ..."""
        return {}

    def get_context(self, order: OrderT) -> Mapping[str, Any] | None:
        """The request context kept at checkout (see :meth:`save_context`)."""
        if not self.context_field:
            return None
        context = getattr(order, self.context_field, None)
        return context if isinstance(context, Mapping) else None

    def save_context(self, order: OrderT, context: Mapping[str, Any]) -> None:
        """Keep ``context`` with the order: an UPDATE of :attr:`context_field` (no ``save()``)."""
        field = self.context_field
        if not field or not isinstance(order, models.Model) or order.pk is None:
            logger.debug("django_capi: %s keeps no request context", type(self).__name__)
            return
        try:
            order._meta.get_field(field)
        except FieldDoesNotExist:
            logger.warning(
                "django_capi: %s has no field %r; a Purchase recorded without a request will "
                "lack the browser data (set context_field or override save_context)",
                order._meta.label,
                field,
            )
            return
        setattr(order, field, dict(context))
        type(order)._default_manager.filter(pk=order.pk).update(**{field: dict(context)})

    def source(self, order: OrderT) -> models.Model | None:
        """The model instance events link to (``Event.objects.for_source(order)``)."""
        return order if isinstance(order, models.Model) and order.pk is not None else None


def _quantity(item: Mapping[str, Any]) -> int:
    try:
        return int(item.get("quantity", 1))
    except (TypeError, ValueError):
        return 1


def _sum_of(contents: list[dict[str, Any]]) -> Decimal | None:
    total = Decimal(0)
    for item in contents:
        try:
            total += Decimal(str(item["item_price"])) * _quantity(item)
        except (KeyError, InvalidOperation, ValueError):
            return None
    return total


# --- registration -----------------------------------------------------------------------------

_registry: dict[type, OrderAdapter[Any]] = {}
_from_setting: dict[str, OrderAdapter[Any]] = {}

AdapterArg = OrderAdapter[Any] | type[OrderAdapter[Any]]
AdapterT = TypeVar("AdapterT", bound=AdapterArg)


@overload
def register(
    model: type, adapter: None = None, *, record_paid_on_save: bool = False
) -> Callable[[AdapterT], AdapterT]: ...


@overload
def register(model: type, adapter: AdapterT, *, record_paid_on_save: bool = False) -> AdapterT: ...


def register(
    model: type,
    adapter: AdapterArg | None = None,
    *,
    record_paid_on_save: bool = False,
) -> Any:
    """Use ``adapter`` (an instance or class) for ``model`` and its subclasses.

    Works as a class decorator when ``adapter`` is omitted. With ``record_paid_on_save=True``
    every save of an order whose :meth:`OrderAdapter.is_paid` is true records its Purchase
    (once: later saves find it already stored).
    """

    def attach(target: AdapterArg) -> AdapterArg:
        instance = target() if isinstance(target, type) else target
        _registry[model] = instance
        uid = f"django_capi.shop.paid_on_save:{model.__module__}.{model.__qualname__}"
        if record_paid_on_save:
            post_save.connect(_purchase_on_save, sender=model, dispatch_uid=uid, weak=False)
        else:
            post_save.disconnect(sender=model, dispatch_uid=uid)
        return target

    if adapter is None:
        return attach
    return attach(adapter)


def unregister(model: type) -> None:
    """Forget the adapter of ``model`` (and its save hook)."""
    _registry.pop(model, None)
    uid = f"django_capi.shop.paid_on_save:{model.__module__}.{model.__qualname__}"
    post_save.disconnect(sender=model, dispatch_uid=uid)


def get_adapter(order: Any) -> OrderAdapter[Any]:
    """The adapter for an order (or its class): registered, else ``CAPI["ORDER_ADAPTER"]``."""
    cls = order if isinstance(order, type) else type(order)
    for klass in cls.__mro__:
        if klass in _registry:
            return _registry[klass]
    setting = conf.get_setting("ORDER_ADAPTER")
    if isinstance(setting, OrderAdapter):
        return setting
    if isinstance(setting, str) and setting:
        if setting not in _from_setting:
            target = import_string(setting)
            _from_setting[setting] = target() if isinstance(target, type) else target
        return _from_setting[setting]
    raise ImproperlyConfigured(
        f"No order adapter for {cls.__name__}: register one with "
        "django_capi.shop.register(Model, Adapter) or set CAPI['ORDER_ADAPTER']."
    )


def _purchase_on_save(sender: type, instance: Any, raw: bool = False, **kwargs: Any) -> None:
    if raw:  # loading fixtures
        return
    adapter = get_adapter(instance)
    if adapter.is_paid(instance):
        record_safely(record_purchase, instance, adapter=adapter)


# --- shared by the server event and the page -----------------------------------------------


def order_custom_data(
    order: Any, event_name: str, *, adapter: OrderAdapter[Any] | None = None
) -> dict[str, Any]:
    """The ``custom_data`` of ``order``'s event, exactly as sent and rendered into the page.

    The adapter's :meth:`~OrderAdapter.custom_data`, normalized like every event's, without
    the ``STRIP_CUSTOM_DATA_KEYS``.
    """
    adapter = adapter or get_adapter(order)
    normalized, _warnings = normalize_custom_data(adapter.custom_data(order, event_name))
    return strip_custom_data(normalized)


def order_custom_data_for_page(
    order: Any,
    event_name: str,
    request: HttpRequest | None,
    *,
    adapter: OrderAdapter[Any] | None = None,
) -> dict[str, Any]:
    """:func:`order_custom_data` for the page's pixel call.

    When this same request recorded the server event of this order object (the checkout
    page that sent ``checkout_started``) with the same adapter, that event's custom data is
    reused instead of building it again (one query for the order lines fewer), so browser
    and server copies carry the very same data. Otherwise (another request, another object
    or adapter, no request) it is built afresh.
    """
    adapter = adapter or get_adapter(order)
    capture = getattr(request, REQUEST_ATTRIBUTE, None) if request is not None else None
    if isinstance(capture, RequestCapture):
        recorded = capture.recorded_custom_data.get((id(order), str(event_name)))
        if recorded is not None and recorded[0] is order and recorded[1] is adapter:
            return dict(recorded[2])
    return order_custom_data(order, event_name, adapter=adapter)


def _remember_custom_data(
    request: HttpRequest,
    order: Any,
    event_name: str,
    adapter: OrderAdapter[Any],
    custom_data: dict[str, Any],
) -> None:
    """Keep what ``order``'s event was recorded with for the page of this request."""
    capture = capture_for(request)
    key = (id(order), str(event_name))
    capture.recorded_custom_data[key] = (order, adapter, dict(custom_data))


def order_event_id(order: Any, event_name: str, *, adapter: OrderAdapter[Any] | None = None) -> str:
    """The event id of ``order``'s ``event_name`` event (see :mod:`.event_ids`)."""
    adapter = adapter or get_adapter(order)
    return event_id_from_key(adapter.key(order), event_name)


# --- recording ------------------------------------------------------------------------------


def record_order_event(
    order: Any,
    event_name: str,
    *,
    request: HttpRequest | None = None,
    adapter: OrderAdapter[Any] | None = None,
    **options: Any,
) -> Event | None:
    """Record ``event_name`` for ``order`` through :func:`~django_capi.track`.

    With a ``request``, the request supplies IP, user agent, browser ids and URLs; without
    one, the context kept at checkout does. Returns None (and records nothing) without
    consent. ``options`` are more ``track()`` arguments and win over the adapter's;
    ``user_data`` in them is merged into the adapter's.
    """
    from django_capi.tracking import track

    adapter = adapter or get_adapter(order)
    context: Mapping[str, Any] | None = None
    if request is not None:
        if not has_consent(request):
            return None
    else:
        context = adapter.get_context(order)
        if not context_allows_tracking(context):
            return None

    kwargs: dict[str, Any] = dict(adapter.track_options(order, event_name))
    extra_user_data = options.pop("user_data", None) or {}
    kwargs.update(options)
    user_data = {**user_data_from_context(context), **adapter.user_data(order)}
    user_data.update(extra_user_data)
    if context is not None and kwargs.get("action_source", "website") == "website":
        kwargs.setdefault("event_source_url", context.get("event_source_url"))
        kwargs.setdefault("referrer_url", context.get("referrer_url"))
    kwargs.setdefault("event_id", order_event_id(order, event_name, adapter=adapter))
    built = "custom_data" not in kwargs
    if built:
        kwargs["custom_data"] = order_custom_data(order, event_name, adapter=adapter)
    kwargs.setdefault("source", adapter.source(order))
    event = track(event_name, request=request, user_data=user_data, **kwargs)
    if built and request is not None:
        _remember_custom_data(request, order, event_name, adapter, kwargs["custom_data"])
    return event


def record_initiate_checkout(
    order: Any,
    *,
    request: HttpRequest | None = None,
    adapter: OrderAdapter[Any] | None = None,
    **options: Any,
) -> Event | None:
    """Keep the request's context with the order, then record its InitiateCheckout."""
    adapter = adapter or get_adapter(order)
    if request is not None:
        adapter.save_context(order, capture_context(request))
    return record_order_event(order, INITIATE_CHECKOUT, request=request, adapter=adapter, **options)


def record_purchase(
    order: Any,
    *,
    request: HttpRequest | None = None,
    adapter: OrderAdapter[Any] | None = None,
    **options: Any,
) -> Event | None:
    """Record the order's Purchase; recording it again returns the stored one."""
    return record_order_event(order, PURCHASE, request=request, adapter=adapter, **options)


def record_safely(record: Callable[..., Event | None], order: Any, **kwargs: Any) -> Event | None:
    """Call ``record(order, **kwargs)`` in a savepoint; errors are logged, not raised.

    Tracking must never break a checkout or a payment webhook. With ``CAPI["STRICT"]`` errors
    are raised (handy in tests).
    """
    from django_capi.models import Event

    try:
        with transaction.atomic(using=router.db_for_write(Event)):
            return record(order, **kwargs)
    except Exception:
        if conf.get_setting("STRICT"):
            raise
        logger.exception("django_capi: could not record an event for %s", type(order).__name__)
        return None
