"""Which dataset(s) an event goes to: the ``CAPI["ROUTER"]`` hook.

An event recorded with an explicit ``pixel_id`` goes to that dataset. Otherwise the router
decides; without one, the default ``CAPI["PIXEL_ID"]``. A platform routes by the order's
organiser, for example, and may add its own pixel::

    def route(*, event_name, source, request):
        ids = [settings.PLATFORM_PIXEL_ID]
        if isinstance(source, Order) and source.organiser.pixel_id:
            ids.append(source.organiser.pixel_id)
        return ids

Each dataset gets its own event row with the same ``event_id``, and the template tags render
the same datasets (``{% capi_pixel source=order %}``, ``trackSingle`` per dataset), so browser
and server copies pair up in every dataset.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any, Protocol

from django.core.exceptions import ImproperlyConfigured
from django.db import models
from django.http import HttpRequest
from django.utils.module_loading import import_string

from django_capi import conf

__all__ = ["Router", "RoutingError", "get_router", "route"]


class Router(Protocol):
    """The signature of a ``CAPI["ROUTER"]`` callable."""

    def __call__(
        self, *, event_name: str, source: models.Model | None, request: HttpRequest | None
    ) -> Iterable[str | int]: ...


class RoutingError(Exception):
    """The router raised or returned something that is not a list of dataset ids."""


def get_router() -> Callable[..., Iterable[str | int]] | None:
    """The configured router, or None (ImproperlyConfigured when it cannot be imported)."""
    setting = conf.get_setting("ROUTER")
    if setting in (None, ""):
        return None
    if isinstance(setting, str):
        try:
            setting = import_string(setting)
        except ImportError as exc:
            raise ImproperlyConfigured(
                f"CAPI['ROUTER'] {setting!r} cannot be imported: {exc}"
            ) from exc
    if not callable(setting):
        raise ImproperlyConfigured("CAPI['ROUTER'] must be a callable or its import string.")
    return setting  # type: ignore[no-any-return]


def route(
    event_name: str,
    *,
    source: models.Model | None = None,
    request: HttpRequest | None = None,
    pixel_id: Any = None,
) -> list[str]:
    """The dataset ids ``event_name`` goes to, in order, without repeats.

    ``pixel_id`` (an id or a list of ids), when given, is the answer. An empty list means no
    dataset: no router and no ``PIXEL_ID``, or a router that chose none. Raises RoutingError
    when the router fails, so the caller can record why.
    """
    if pixel_id not in (None, ""):
        return _unique(pixel_id if isinstance(pixel_id, list | tuple) else [pixel_id])
    router = get_router()
    if router is None:
        default = conf.default_dataset_id()
        return [default] if default else []
    try:
        chosen = router(event_name=event_name, source=source, request=request)
        if chosen is None:
            return []
        if isinstance(chosen, str | int):
            chosen = [chosen]
        return _unique(list(chosen))
    except Exception as exc:
        raise RoutingError(f"CAPI['ROUTER'] raised {type(exc).__name__}: {exc}"[:500]) from exc


def _unique(ids: Iterable[Any]) -> list[str]:
    result: list[str] = []
    for one in ids:
        try:
            text = str(one).strip() if one is not None else ""
        except Exception:  # an object whose __str__ raises, an int too long to print
            raise RoutingError("a dataset (pixel) id is a string of digits") from None
        if text and text not in result:
            result.append(text)
    return result
