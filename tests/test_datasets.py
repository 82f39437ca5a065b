"""Admin-managed datasets: tokens encrypted at rest, key rotation, resolution, delivery."""

from __future__ import annotations

import io
import logging

import pytest
from cryptography.fernet import Fernet
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection
from django.test import override_settings

from django_capi import checks, conf, track
from django_capi.datasets.encryption import TokenDecryptionError, decrypt_token, encrypt_token
from django_capi.delivery import engine
from django_capi.models import Dataset, DatasetState, Event
from tests.conftest import OTHER_PIXEL, PIXEL, TOKEN, set_capi
from tests.fake_graph_api import throttle

pytestmark = pytest.mark.django_db

ORGANISER = "555000111222333"
ORGANISER_TOKEN = "EAAorganiser-token-kept-secret-0123456789"
SECOND = "777000111222333"
SECOND_TOKEN = "EAAsecond-organiser-token-9876543210"


def raw_columns(dataset_id: str) -> str:
    """Every column of a dataset's row as the database holds it, as one text."""
    table = connection.ops.quote_name(Dataset._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT * FROM {table} WHERE dataset_id = %s", [dataset_id])  # noqa: S608
        row = cursor.fetchone()
    assert row is not None
    return " ".join(str(value) for value in row)


def connect(dataset_id: str, token: str | None, **fields: object) -> Dataset:
    dataset = Dataset(dataset_id=dataset_id, **fields)
    dataset.set_access_token(token)
    dataset.save()
    return dataset


# --- encryption at rest ----------------------------------------------------------------------


def test_the_token_is_not_in_the_database_in_clear(settings):
    settings.CAPI = {"ENCRYPTION_KEYS": [Fernet.generate_key().decode()]}
    connect(ORGANISER, ORGANISER_TOKEN, label="Organiser")
    stored = raw_columns(ORGANISER)
    assert ORGANISER_TOKEN not in stored
    assert "organiser-token" not in stored
    # What is stored is Fernet ciphertext that the configured key opens.
    row = Dataset.objects.get(dataset_id=ORGANISER)
    assert row.encrypted_access_token.startswith("gAAAA")
    assert row.get_access_token() == ORGANISER_TOKEN
    assert conf.get_dataset(ORGANISER).access_token == ORGANISER_TOKEN
    assert ORGANISER_TOKEN not in repr(conf.get_dataset(ORGANISER))


def test_the_same_token_encrypts_differently_each_time(settings):
    settings.CAPI = {"ENCRYPTION_KEYS": [Fernet.generate_key().decode()]}
    assert encrypt_token(TOKEN) != encrypt_token(TOKEN)


def test_without_keys_of_its_own_the_key_derives_from_secret_key_and_its_fallbacks(settings):
    settings.CAPI = {}
    settings.SECRET_KEY = "first-secret-key-for-the-test-0123456789"
    ciphertext = encrypt_token(TOKEN)
    assert decrypt_token(ciphertext) == TOKEN
    # SECRET_KEY rotated with the old one kept in the fallbacks: still readable.
    settings.SECRET_KEY = "second-secret-key-for-the-test-0123456789"
    settings.SECRET_KEY_FALLBACKS = ["first-secret-key-for-the-test-0123456789"]
    assert decrypt_token(ciphertext) == TOKEN
    # Dropped from the fallbacks too: unreadable, with an error that says what to do.
    settings.SECRET_KEY_FALLBACKS = []
    with pytest.raises(TokenDecryptionError, match="capi_rotate_tokens"):
        decrypt_token(ciphertext)


def test_key_rotation_with_the_command(settings):
    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    settings.CAPI = {"ENCRYPTION_KEYS": [old]}
    connect(ORGANISER, ORGANISER_TOKEN)
    connect(SECOND, SECOND_TOKEN)
    connect("888000111222333", None)  # no token: nothing to rotate
    before = Dataset.objects.get(dataset_id=ORGANISER).encrypted_access_token

    settings.CAPI = {"ENCRYPTION_KEYS": [new, old]}  # step 1: the new key first
    assert conf.get_dataset(ORGANISER).access_token == ORGANISER_TOKEN  # old key still reads
    out = io.StringIO()
    call_command("capi_rotate_tokens", stdout=out)  # step 2
    assert "2 access token(s) re-encrypted" in out.getvalue()
    after = Dataset.objects.get(dataset_id=ORGANISER).encrypted_access_token
    assert after != before
    assert ORGANISER_TOKEN not in raw_columns(ORGANISER)

    settings.CAPI = {"ENCRYPTION_KEYS": [new]}  # step 3: the old key removed
    assert conf.get_dataset(ORGANISER).access_token == ORGANISER_TOKEN
    assert conf.get_dataset(SECOND).access_token == SECOND_TOKEN
    settings.CAPI = {"ENCRYPTION_KEYS": [old]}  # the old key alone no longer opens them
    with pytest.raises(TokenDecryptionError):
        Dataset.objects.get(dataset_id=ORGANISER).get_access_token()


def test_rotation_changes_nothing_when_a_token_cannot_be_read(settings):
    lost, kept = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    settings.CAPI = {"ENCRYPTION_KEYS": [lost]}
    connect(ORGANISER, ORGANISER_TOKEN)
    settings.CAPI = {"ENCRYPTION_KEYS": [kept]}
    connect(SECOND, SECOND_TOKEN)
    second_before = Dataset.objects.get(dataset_id=SECOND).encrypted_access_token
    with pytest.raises(CommandError, match=ORGANISER) as caught:
        call_command("capi_rotate_tokens", stdout=io.StringIO())
    assert caught.value.returncode == 1
    assert Dataset.objects.get(dataset_id=SECOND).encrypted_access_token == second_before


def test_an_unreadable_token_becomes_no_token_and_the_log_shows_no_secret(settings, caplog):
    settings.CAPI = {"ENCRYPTION_KEYS": [Fernet.generate_key().decode()]}
    connect(ORGANISER, ORGANISER_TOKEN)
    ciphertext = Dataset.objects.get(dataset_id=ORGANISER).encrypted_access_token
    settings.CAPI = {"ENCRYPTION_KEYS": [Fernet.generate_key().decode()]}
    with caplog.at_level(logging.ERROR, logger="django_capi"):
        config = conf.get_dataset(ORGANISER)
    assert config.access_token is None
    assert "cannot be decrypted" in config.token_error
    assert ORGANISER in caplog.text
    assert ciphertext not in caplog.text and ORGANISER_TOKEN not in caplog.text


# --- one resolution order ------------------------------------------------------------------


def test_settings_datasets_keep_working_and_an_admin_row_wins(capi, settings):
    assert conf.get_dataset(OTHER_PIXEL).origin == conf.DatasetOrigin.SETTINGS
    connect(ORGANISER, ORGANISER_TOKEN, label="Organiser", default_country="gb")
    connect(OTHER_PIXEL, "EAAreplaced-in-the-admin", label="Outlet (admin)")

    datasets = conf.configured_datasets()
    assert list(datasets) == [PIXEL, OTHER_PIXEL, ORGANISER]
    assert datasets[PIXEL].access_token == TOKEN  # settings only
    assert datasets[OTHER_PIXEL].access_token == "EAAreplaced-in-the-admin"  # row wins
    assert datasets[OTHER_PIXEL].origin == conf.DatasetOrigin.DATABASE
    organiser = conf.get_dataset(ORGANISER)
    assert organiser.label == "Organiser"
    assert organiser.default_country == "GB"
    assert organiser.partner_agent is None
    # Settings-only resolution (used by system checks) never sees the rows.
    assert list(conf.settings_datasets()) == [PIXEL, OTHER_PIXEL]
    assert conf.settings_datasets()[OTHER_PIXEL].access_token != "EAAreplaced-in-the-admin"


def test_the_dataset_default_country_reads_national_phone_numbers(capi):
    connect(ORGANISER, ORGANISER_TOKEN, default_country="GB")
    uk = track("Lead", pixel_id=ORGANISER, user_data={"ph": "020 7946 0018"})
    us = track("Lead", pixel_id=PIXEL, user_data={"ph": "(415) 555-0132"})
    assert not uk.warnings and not us.warnings
    from django_capi.normalization.hashing import sha256_hex

    assert uk.payload["user_data"]["ph"] == sha256_hex("442079460018")
    assert us.payload["user_data"]["ph"] == sha256_hex("14155550132")


# --- delivery --------------------------------------------------------------------------------


@pytest.fixture
def organisers(capi, fake_api):
    """Two admin-managed datasets the fake API knows, with events waiting."""
    fake_api.set_token(ORGANISER, ORGANISER_TOKEN)
    fake_api.set_token(SECOND, SECOND_TOKEN)
    connect(ORGANISER, ORGANISER_TOKEN, label="Organiser")
    connect(SECOND, SECOND_TOKEN, label="Second")
    for n in range(3):
        purchase(ORGANISER, f"o-{n}")
        purchase(SECOND, f"s-{n}")
    return fake_api


def purchase(dataset_id: str, event_id: str) -> Event:
    return track(
        "Purchase",
        pixel_id=dataset_id,
        event_id=event_id,
        action_source="email",
        user_data={"em": f"{event_id}@example.com"},
        custom_data={"value": 10, "currency": "EUR"},
    )


def test_admin_datasets_are_delivered_with_their_own_token(organisers):
    engine.deliver_dataset(ORGANISER)
    engine.deliver_dataset(SECOND)
    assert sorted(organisers.received_ids(ORGANISER)) == ["o-0", "o-1", "o-2"]
    assert sorted(organisers.received_ids(SECOND)) == ["s-0", "s-1", "s-2"]


def test_a_revoked_token_pauses_one_dataset_and_a_new_one_resumes_it(organisers):
    organisers.set_token(ORGANISER, "EAAthe-token-meta-knows-now")
    report = engine.deliver_dataset(ORGANISER)
    assert report.paused
    state = DatasetState.objects.get(dataset_id=ORGANISER)
    assert state.is_paused and state.pause_code == 190
    # The other organiser is untouched.
    assert engine.deliver_dataset(SECOND).sent == 3
    assert Event.objects.filter(dataset_id=ORGANISER, status="pending").count() == 3

    # Staff paste the new token: the next run resumes at once and sends everything.
    row = Dataset.objects.get(dataset_id=ORGANISER)
    row.set_access_token("EAAthe-token-meta-knows-now")
    row.save()
    report = engine.deliver_dataset(ORGANISER)
    assert report.resumed and report.sent == 3
    assert not DatasetState.objects.get(dataset_id=ORGANISER).is_paused
    assert sorted(organisers.received_ids(ORGANISER)) == ["o-0", "o-1", "o-2"]


def test_one_datasets_throttling_never_slows_another(organisers):
    organisers.script(throttle(17), dataset_id=ORGANISER)
    throttled = engine.deliver_dataset(ORGANISER)
    assert throttled.throttled and throttled.sent == 0
    assert engine.deliver_dataset(SECOND).sent == 3
    purchase(ORGANISER, "o-late")
    assert engine.deliver_dataset(ORGANISER).throttled  # still backing off
    assert organisers.received_ids(ORGANISER) == []


def test_a_disabled_dataset_keeps_its_events_and_sends_them_once_enabled(organisers):
    Dataset.objects.filter(dataset_id=ORGANISER).update(enabled=False, disabled_reason="unpaid")
    assert engine.due_datasets() == [SECOND]
    report = engine.deliver_dataset(ORGANISER)
    assert report.disabled and report.state == "disabled" and report.requests == 0
    assert Event.objects.filter(dataset_id=ORGANISER, status="pending").count() == 3
    # Recording goes on while it is disabled.
    purchase(ORGANISER, "o-3")
    Dataset.objects.filter(dataset_id=ORGANISER).update(enabled=True)
    assert engine.deliver_dataset(ORGANISER).sent == 4
    assert organisers.received_ids(ORGANISER) == ["o-0", "o-1", "o-2", "o-3"]


def test_a_settings_dataset_can_be_disabled_too(capi, settings, fake_api):
    set_capi(settings, DATASETS={OTHER_PIXEL: {"ACCESS_TOKEN": "x", "ENABLED": False}})
    purchase(OTHER_PIXEL, "held")
    assert engine.deliver_dataset(OTHER_PIXEL).disabled
    assert OTHER_PIXEL not in engine.due_datasets()


# --- system checks ----------------------------------------------------------------------------


BASE = {"PIXEL_ID": PIXEL, "ACCESS_TOKEN": TOKEN}


def ids(messages):
    return [m.id for m in messages]


def test_checks_name_a_bad_encryption_key_and_a_bad_router(settings):
    good = Fernet.generate_key().decode()
    with override_settings(
        CAPI={"PIXEL_ID": PIXEL, "ACCESS_TOKEN": TOKEN, "ENCRYPTION_KEYS": [good, "nope"]}
    ):
        messages = checks.check_settings()
    assert ids(messages) == ["django_capi.E012"]
    assert "CAPI['ENCRYPTION_KEYS'][1]" in messages[0].msg
    with override_settings(
        CAPI={"PIXEL_ID": PIXEL, "ACCESS_TOKEN": TOKEN, "ROUTER": "no.such.router"}
    ):
        messages = checks.check_settings()
    assert ids(messages) == ["django_capi.E013"]
    assert "CAPI['ROUTER']" in messages[0].msg


def test_the_deploy_check_asks_for_keys_of_their_own(settings):
    with override_settings(CAPI=BASE):
        assert ids(checks.check_encryption_keys()) == ["django_capi.W006"]
    keys = [Fernet.generate_key().decode()]
    with override_settings(
        CAPI={"PIXEL_ID": PIXEL, "ACCESS_TOKEN": TOKEN, "ENCRYPTION_KEYS": keys}
    ):
        assert checks.check_encryption_keys() == []
