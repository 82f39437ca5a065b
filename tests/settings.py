"""Settings for django_capi's own test suite.

The database comes from DATABASE_URL (django-environ); without it the suite runs on SQLite.
"""

import json
import os
import socket

import environ

env = environ.Env()

SECRET_KEY = "django_capi-tests-not-secret"
DEBUG = False
USE_TZ = True
TIME_ZONE = "UTC"
ALLOWED_HOSTS = ["*"]

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django_capi",
    "tests.testapp",
]

MIDDLEWARE = [
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
]

ROOT_URLCONF = "tests.urls"
STATIC_URL = "/static/"

DATABASES = {"default": env.db("DATABASE_URL", default="sqlite:///:memory:")}
# Parallel runs against one server need test databases of their own names.
if os.environ.get("TEST_DATABASE_NAME"):
    DATABASES["default"]["TEST"] = {"NAME": os.environ["TEST_DATABASE_NAME"]}

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ]
        },
    }
]

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

CAPI = {
    "PIXEL_ID": "1234567890123456",
    "ACCESS_TOKEN": "EAAtest-token-never-to-be-seen",
    "API_BASE_URL": "http://127.0.0.1:9",
    "DEFAULT_COUNTRY": "US",
    # In-process tests deliver explicitly; the worker tests turn queueing on.
    "QUEUE_ON_COMMIT": False,
}
# Worker processes started by the tests get their CAPI overrides (fake API URL, short
# delays) through the environment.
CAPI.update(json.loads(os.environ.get("CAPI_TEST_OVERRIDES", "{}")))


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# The worker tests run their own redis-server on this port (so one test can stop the broker
# without touching anything else); the URL goes into the environment for worker processes.
if "CELERY_BROKER_URL" not in os.environ:
    os.environ["CELERY_BROKER_URL"] = f"redis://127.0.0.1:{_free_port()}/0"
CELERY_BROKER_URL = os.environ["CELERY_BROKER_URL"]
CELERY_TASK_IGNORE_RESULT = True
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
SILENCED_SYSTEM_CHECKS = ["django_capi.W003"]  # the tests talk to a fake API over http
