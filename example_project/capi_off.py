"""The demo shop with django_capi switched off (``DEMO_CAPI=off``), for a baseline.

``python -m benchmarks.load`` measures the same views with and without the tracking work.
With ``DEMO_CAPI=off`` the settings drop ``CapiMiddleware``, install this app, whose
``ready()`` disconnects django_capi's receivers of ``checkout_started`` and ``order_paid``
(the views still send the signals; nothing records an event or keeps the request's context),
and load this module as the ``capi`` template library, whose tags render nothing (no pixel,
no eventIDs). django_capi stays installed: its tables and admin are there, unused.
"""

from typing import Any

from django import template
from django.apps import AppConfig

register = template.Library()


@register.simple_tag
def capi_pixel(*args: Any, **kwargs: Any) -> str:
    return ""


@register.simple_tag
def capi_track(*args: Any, **kwargs: Any) -> str:
    return ""


@register.simple_tag
def capi_event_id(*args: Any, **kwargs: Any) -> str:
    return ""


class CapiOffConfig(AppConfig):
    name = "example_project.capi_off"
    label = "capi_off"
    verbose_name = "django_capi switched off"

    def ready(self) -> None:
        from django_capi.shop import signals

        signals.checkout_started.disconnect(dispatch_uid="django_capi.shop.checkout_started")
        signals.order_paid.disconnect(dispatch_uid="django_capi.shop.order_paid")
