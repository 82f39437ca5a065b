"""Settings for the example project (the demo shop).

Zero-setup defaults (SQLite next to this file); everything real comes from the environment
through django-environ: DATABASE_URL, CAPI_PIXEL_ID, CAPI_ACCESS_TOKEN, CAPI_API_BASE_URL,
CAPI_TEST_EVENT_CODE.
"""

from pathlib import Path

import environ

BASE_DIR = Path(__file__).resolve().parent
env = environ.Env()

DEBUG = env.bool("DJANGO_DEBUG", default=True)
SECRET_KEY = env.str("DJANGO_SECRET_KEY", default="example-project-not-secret")
ALLOWED_HOSTS = env.list("DJANGO_ALLOWED_HOSTS", default=["localhost", "127.0.0.1"])
USE_TZ = True
TIME_ZONE = "UTC"

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django_capi",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "example_project.urls"
WSGI_APPLICATION = "example_project.wsgi.application"

DATABASES = {"default": env.db("DATABASE_URL", default=f"sqlite:///{BASE_DIR / 'db.sqlite3'}")}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

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

STATIC_URL = "static/"

# The demo's dataset. Without a real token events stay in the local database; point
# CAPI_API_BASE_URL at a sandbox to see them leave.
CAPI = {
    "PIXEL_ID": env.str("CAPI_PIXEL_ID", default="1234567890123456"),
    "ACCESS_TOKEN": env.str("CAPI_ACCESS_TOKEN", default="demo-token-not-real"),
    "API_BASE_URL": env.str("CAPI_API_BASE_URL", default="https://graph.facebook.com"),
    "TEST_EVENT_CODE": env.str("CAPI_TEST_EVENT_CODE", default="") or None,
    "DEFAULT_COUNTRY": env.str("CAPI_DEFAULT_COUNTRY", default="US"),
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "loggers": {"django_capi": {"handlers": ["console"], "level": "INFO"}},
}

# Celery: Redis when CELERY_BROKER_URL is set; without it tasks run eagerly in-process so the
# demo needs no broker (events then leave right after the request's transaction commits).
CELERY_BROKER_URL = env.str("CELERY_BROKER_URL", default="")
CELERY_TASK_ALWAYS_EAGER = not CELERY_BROKER_URL
CELERY_BEAT_SCHEDULE = {
    "capi-deliver-due": {"task": "django_capi.deliver_due", "schedule": 60.0},
}
