"""What the README promises host projects for their own tests: the locmem outbox."""

import pytest
from django.test import override_settings

import django_capi
from django_capi import track
from django_capi.delivery.engine import deliver_all
from django_capi.transports import locmem
from django_capi.transports.base import GraphError

pytestmark = pytest.mark.django_db

LOCMEM = "django_capi.transports.locmem.LocmemTransport"


@pytest.fixture(autouse=True)
def clean_outbox():
    locmem.reset()
    yield
    locmem.reset()


def purchase(event_id: str = "order-1"):
    return track(
        "Purchase",
        event_id=event_id,
        action_source="email",
        user_data={"em": "joe@example.com"},
        custom_data={"value": 12, "currency": "EUR"},
    )


def test_delivered_events_land_in_the_outbox(settings):
    with override_settings(CAPI={**settings.CAPI, "TRANSPORT": LOCMEM}):
        purchase()
        deliver_all()
    assert len(django_capi.outbox) == 1
    message = django_capi.outbox[0]
    assert message.events[0]["event_name"] == "Purchase"
    assert message.events[0]["event_id"] == "order-1"
    assert not hasattr(message, "access_token")


def test_simulated_failures_go_through_the_real_failure_handling(settings):
    with override_settings(CAPI={**settings.CAPI, "TRANSPORT": LOCMEM}):
        purchase()
        locmem.simulate(GraphError(code=190, message="Error validating access token"))
        report = deliver_all()[0]
    assert report.paused
    assert django_capi.outbox == []
    assert django_capi.Event.objects.get().status == "pending"
