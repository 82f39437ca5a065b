"""The Dataset admin: a write-only token, enable/disable with a reason, test events as tasks."""

from __future__ import annotations

from typing import Any

import pytest
from cryptography.fernet import Fernet
from django.contrib.messages import get_messages
from django.urls import reverse

import tests.celery_app
from django_capi import track
from django_capi.models import Dataset, DatasetState, DeliveryAttempt
from tests.admin.conftest import _user
from tests.conftest import PIXEL, TOKEN
from tests.test_datasets import raw_columns

pytestmark = pytest.mark.django_db

ORGANISER = "555000111222333"
ORGANISER_TOKEN = "EAAorganiser-token-kept-secret-0123456789"
ADD = reverse("admin:django_capi_dataset_add")
CHANGELIST = reverse("admin:django_capi_dataset_changelist")


def change_url(dataset: Dataset) -> str:
    return reverse("admin:django_capi_dataset_change", args=[dataset.pk])


def form_data(**overrides: Any) -> dict[str, Any]:
    data = {
        "dataset_id": ORGANISER,
        "label": "Acme Concerts",
        "access_token": "",
        "test_event_code": "",
        "partner_agent": "",
        "default_country": "",
        "enabled": "on",
        "disabled_reason": "",
    }
    data.update(overrides)
    return {key: value for key, value in data.items() if value is not None}


def notes(response: Any) -> list[str]:
    return [str(m) for m in get_messages(response.wsgi_request)]


@pytest.fixture
def keys(settings, capi):
    settings.CAPI = {**capi, "ENCRYPTION_KEYS": [Fernet.generate_key().decode()]}
    return settings.CAPI


@pytest.fixture
def queued(monkeypatch):
    calls: list[str] = []
    monkeypatch.setattr("django_capi.datasets.admin.queue_delivery", calls.append)
    return calls


@pytest.fixture
def acme(keys):
    dataset = Dataset(dataset_id=ORGANISER, label="Acme Concerts", test_event_code="TEST77")
    dataset.set_access_token(ORGANISER_TOKEN)
    dataset.save()
    return dataset


def test_staff_connect_a_dataset_and_the_token_is_never_shown_again(
    admin_client, keys, queued, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        response = admin_client.post(ADD, form_data(access_token=ORGANISER_TOKEN))
    assert response.status_code == 302, response.content.decode()[:2000]
    dataset = Dataset.objects.get(dataset_id=ORGANISER)
    assert dataset.get_access_token() == ORGANISER_TOKEN
    assert ORGANISER_TOKEN not in raw_columns(ORGANISER)
    assert queued == [ORGANISER]  # its backlog goes out after commit, not in the request

    page = admin_client.get(change_url(dataset)).content.decode()
    assert ORGANISER_TOKEN not in page
    assert dataset.encrypted_access_token not in page
    assert "set (encrypted) on" in page
    listing = admin_client.get(CHANGELIST).content.decode()
    assert "Acme Concerts" in listing and ORGANISER_TOKEN not in listing


def test_saving_without_a_token_keeps_it_a_new_one_replaces_it_and_it_can_be_removed(
    admin_client, acme, queued
):
    before = Dataset.objects.get(pk=acme.pk).encrypted_access_token
    data = form_data(label="Acme Live", test_event_code="TEST77")
    assert admin_client.post(change_url(acme), data).status_code == 302
    row = Dataset.objects.get(pk=acme.pk)
    assert row.label == "Acme Live" and row.encrypted_access_token == before

    data["access_token"] = "EAAreplacement-token-0123456789"
    assert admin_client.post(change_url(acme), data).status_code == 302
    assert Dataset.objects.get(pk=acme.pk).get_access_token() == "EAAreplacement-token-0123456789"

    data.update(access_token="", remove_access_token="on")
    assert admin_client.post(change_url(acme), data).status_code == 302
    assert not Dataset.objects.get(pk=acme.pk).has_access_token


def test_form_errors_name_the_field_and_the_rule(admin_client, acme):
    both = form_data(access_token="EAAnew", remove_access_token="on")
    response = admin_client.post(change_url(acme), both)
    assert (
        "Either paste a new token or remove the stored one, not both." in response.content.decode()
    )
    spaced = admin_client.post(change_url(acme), form_data(access_token="EAA one"))
    assert "An access token has no spaces" in spaced.content.decode()
    assert "EAA one" not in spaced.content.decode()  # a rejected token is not echoed back
    disabled = admin_client.post(change_url(acme), form_data(enabled=None))
    assert "Say why the dataset is disabled" in disabled.content.decode()
    country = admin_client.post(ADD, form_data(dataset_id="999", default_country="XX"))
    assert "XX is not an ISO 3166-1 two-letter country code." in country.content.decode()
    bad_id = admin_client.post(ADD, form_data(dataset_id="pixel-1"))
    assert "A dataset (pixel) id is a string of digits." in bad_id.content.decode()


def test_the_dataset_id_cannot_change_once_events_may_carry_it(admin_client, acme):
    admin_client.post(change_url(acme), form_data(dataset_id="111", test_event_code="TEST77"))
    assert Dataset.objects.get(pk=acme.pk).dataset_id == ORGANISER


def test_disable_and_enable_actions(admin_client, acme, queued, django_capture_on_commit_callbacks):
    response = admin_client.post(CHANGELIST, {"action": "disable", "_selected_action": [acme.pk]})
    assert notes(response) == ["1 dataset disabled: its events are kept pending."]
    row = Dataset.objects.get(pk=acme.pk)
    assert not row.enabled and row.disabled_reason.startswith("disabled by admin on ")
    page = admin_client.get(change_url(acme)).content.decode()
    assert "Disabled by staff: disabled by admin on" in page
    with django_capture_on_commit_callbacks(execute=True):
        response = admin_client.post(
            CHANGELIST, {"action": "enable", "_selected_action": [acme.pk]}
        )
    assert notes(response) == ["1 dataset enabled."]
    assert Dataset.objects.get(pk=acme.pk).enabled
    assert queued == [ORGANISER]


def test_send_test_event_is_queued_and_its_answer_lands_in_the_attempt_log(
    admin_client, acme, fake_api, django_capture_on_commit_callbacks
):
    fake_api.set_token(ORGANISER, ORGANISER_TOKEN)
    plain = Dataset(dataset_id="888000111222333", label="No code")
    plain.set_access_token("EAAx")
    plain.save()
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        response = admin_client.post(
            CHANGELIST, {"action": "send_test_event", "_selected_action": [acme.pk, plain.pk]}
        )
    assert fake_api.requests == []  # nothing is sent inside the admin request
    assert notes(response) == [
        "A test event to 1 dataset is queued: Meta's answer appears in the delivery attempts, "
        "the event in Events Manager > Test events.",
        "Not sent (set a test event code and an access token first): No code (888000111222333)",
    ]
    assert len(callbacks) == 1
    app = tests.celery_app.app
    app.conf.task_always_eager = True  # the worker, in this process
    try:
        callbacks[0]()
    finally:
        app.conf.task_always_eager = False
    [request] = fake_api.requests
    assert request.dataset_id == ORGANISER
    assert request.test_event_code == "TEST77" and request.n_events == 1
    attempt = DeliveryAttempt.objects.get(dataset_id=ORGANISER)
    assert attempt.outcome == "success" and attempt.events_received == 1


def test_replacing_a_token_of_a_paused_dataset_says_it_resumes(admin_client, acme, queued):
    DatasetState.objects.create(
        dataset_id=ORGANISER,
        paused_at="2026-01-01T00:00:00Z",
        pause_code=190,
        token_fingerprint="x",
    )
    data = form_data(access_token="EAAfresh-token-0123456789", test_event_code="TEST77")
    response = admin_client.post(change_url(acme), data, follow=True)
    assert "The token was replaced: delivery to the paused dataset resumes." in notes(response)


def test_permissions(client, django_user_model, acme):
    stranger = _user(django_user_model, "nobody")
    client.force_login(stranger)
    assert client.get(CHANGELIST).status_code == 403
    viewer = _user(django_user_model, "dataset-viewer", "view_dataset")
    client.force_login(viewer)
    page = client.get(change_url(acme))
    assert page.status_code == 200
    assert ORGANISER_TOKEN not in page.content.decode()
    assert acme.encrypted_access_token not in page.content.decode()
    response = client.post(change_url(acme), form_data(label="hijacked"))
    assert response.status_code == 403
    response = client.post(CHANGELIST, {"action": "disable", "_selected_action": [acme.pk]})
    assert Dataset.objects.get(pk=acme.pk).enabled  # the action is not offered to viewers


def test_admin_labels_show_in_the_event_list_and_the_dashboard(admin_client, acme):
    track("Lead", pixel_id=ORGANISER, action_source="email", user_data={"em": "a@example.com"})
    Dataset.objects.filter(pk=acme.pk).update(enabled=False, disabled_reason="contract ended")
    events = admin_client.get(reverse("admin:django_capi_event_changelist")).content.decode()
    assert f"Acme Concerts ({ORGANISER})" in events
    dashboard = admin_client.get(reverse("admin:django_capi_event_dashboard")).content.decode()
    assert "Acme Concerts" in dashboard
    assert f'data-dataset="{ORGANISER}" data-state="disabled"' in dashboard
    assert "Disabled by staff (contract ended)" in dashboard
    assert PIXEL in dashboard and TOKEN not in dashboard
