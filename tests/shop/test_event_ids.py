"""Event ids: deterministic, keyed, different per event name, nothing exposed."""

from __future__ import annotations

import re

import pytest
from django.core.exceptions import ImproperlyConfigured

from django_capi.shop import event_id_for
from django_capi.shop.event_ids import event_id_from_key
from tests.shop.conftest import set_capi


def test_same_key_and_name_same_id():
    assert event_id_for("order:42", "Purchase") == event_id_for("order:42", "Purchase")
    assert re.fullmatch(r"[0-9a-f]{32}", event_id_for("order:42", "Purchase"))


def test_names_and_keys_give_different_ids():
    ids = {
        event_id_for("order:42", "Purchase"),
        event_id_for("order:42", "InitiateCheckout"),
        event_id_for("order:43", "Purchase"),
        event_id_for("order:4", "2Purchase"),  # no ambiguity between key and name
    }
    assert len(ids) == 4


def test_the_id_reveals_nothing_of_the_order():
    assert "42" not in event_id_for("order:42", "Purchase")


def test_the_key_decides(settings):
    default = event_id_for("order:42", "Purchase")
    settings.SECRET_KEY = "another-secret"
    derived_from_other_secret = event_id_for("order:42", "Purchase")
    assert derived_from_other_secret != default
    set_capi(settings, EVENT_ID_KEY="k1")
    keyed = event_id_for("order:42", "Purchase")
    settings.SECRET_KEY = "rotated-again"
    assert event_id_for("order:42", "Purchase") == keyed  # EVENT_ID_KEY survives rotation
    set_capi(settings, EVENT_ID_KEY=b"k1")
    assert event_id_for("order:42", "Purchase") == keyed


def test_no_key_at_all_is_a_configuration_error(settings):
    settings.SECRET_KEY = ""
    with pytest.raises(ImproperlyConfigured):
        event_id_from_key("order:1", "Purchase")


def test_model_orders_use_their_adapter_key(adapter, order):
    assert event_id_for(order, "Purchase") == event_id_for(f"testapp.order:{order.pk}", "Purchase")
    adapter.key = lambda order: f"public:{order.reference}"
    assert event_id_for(order, "Purchase") == event_id_for("public:A1", "Purchase")


def test_unsaved_orders_have_no_id(adapter):
    from tests.testapp.models import Order

    with pytest.raises(ValueError, match="unsaved"):
        event_id_for(Order(reference="X"), "Purchase")
