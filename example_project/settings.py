"""Settings for the example project (the demo shop).

Zero-setup defaults (SQLite next to this file, delivery by a background thread, events
printed by the console transport); everything real comes from the environment through
django-environ:

- ``DATABASE_URL``: e.g. ``postgres://postgres@127.0.0.1:5432/shop``.
- ``CELERY_BROKER_URL``: e.g. ``redis://127.0.0.1:6379/0``; then Celery workers deliver.
- ``CAPI_PIXEL_ID``, ``CAPI_ACCESS_TOKEN``: your dataset; with a token, events go to Meta.
- ``CAPI_API_BASE_URL``: another Graph API (a sandbox); ``CAPI_TEST_EVENT_CODE``.
- ``CAPI_TRANSPORT``: ``console``, ``graph_api`` or ``locmem`` (default: ``graph_api`` when a
  token or base URL is given, else ``console``).
- ``DEMO_CAPI``: ``off`` runs the same shop with django_capi switched off (no middleware, no
  events recorded, the pixel tags render nothing; see ``capi_off.py``), a baseline for
  ``python -m benchmarks.load``.
"""

from pathlib import Path

import django
import environ

BASE_DIR = Path(__file__).resolve().parent
env = environ.Env()

DEBUG = env.bool("DJANGO_DEBUG", default=True)
SECRET_KEY = env.str("DJANGO_SECRET_KEY", default="example-project-not-secret")
ALLOWED_HOSTS = env.list("DJANGO_ALLOWED_HOSTS", default=["localhost", "127.0.0.1", "[::1]"])
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
    "example_project.shop",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    # After the session and auth middleware: CONSENT callables may use them.
    "django_capi.middleware.CapiMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "example_project.urls"
WSGI_APPLICATION = "example_project.wsgi.application"

DATABASES = {"default": env.db("DATABASE_URL", default=f"sqlite:///{BASE_DIR / 'db.sqlite3'}")}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # The web server and the delivery loop write at the same time: wait for the lock.
    options = DATABASES["default"].setdefault("OPTIONS", {})
    options.setdefault("timeout", 20)
    if django.VERSION >= (5, 1):
        options.setdefault("transaction_mode", "IMMEDIATE")
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                # The capi template tags read consent and the CSP nonce from the request.
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "example_project.shop.context_processors.shop",
            ]
        },
    }
]

STATIC_URL = "static/"
SESSION_ENGINE = "django.contrib.sessions.backends.signed_cookies"
SESSION_COOKIE_HTTPONLY = True

# --- The Conversions API -------------------------------------------------------------------
CAPI_ACCESS_TOKEN = env.str("CAPI_ACCESS_TOKEN", default="")
CAPI_API_BASE_URL = env.str("CAPI_API_BASE_URL", default="")
_TRANSPORTS = {
    "console": "django_capi.transports.console.ConsoleTransport",
    "graph_api": "django_capi.transports.graph_api.GraphAPITransport",
    "locmem": "django_capi.transports.locmem.LocmemTransport",
}
_transport = env.str(
    "CAPI_TRANSPORT",
    default="graph_api" if (CAPI_ACCESS_TOKEN or CAPI_API_BASE_URL) else "console",
)

CAPI = {
    "PIXEL_ID": env.str("CAPI_PIXEL_ID", default="1234567890123456"),
    # Without a real token, a placeholder (the console transport and sandboxes need none).
    "ACCESS_TOKEN": CAPI_ACCESS_TOKEN or "demo-token-not-real",
    "API_BASE_URL": CAPI_API_BASE_URL or "https://graph.facebook.com",
    "TEST_EVENT_CODE": env.str("CAPI_TEST_EVENT_CODE", default="") or None,
    "DEFAULT_COUNTRY": env.str("CAPI_DEFAULT_COUNTRY", default="US"),
    "TRANSPORT": _TRANSPORTS.get(_transport, _transport),
    # The shop side.
    "ORDER_ADAPTER": "example_project.shop.capi.ShopOrderAdapter",
    "CONSENT": "example_project.shop.consent.visitor_consents",
    "TRUSTED_PROXIES": env.list("CAPI_TRUSTED_PROXIES", default=[]),
    "PIXEL_ADVANCED_MATCHING": True,
    # With a broker, each commit that records events queues a Celery task; without one the
    # `demo` command's delivery loop sends them.
    "QUEUE_ON_COMMIT": bool(env.str("CELERY_BROKER_URL", default="")),
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "[%(asctime)s] %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "loggers": {"django_capi": {"handlers": ["console"], "level": "INFO"}},
}

# Celery: Redis (or any broker) when CELERY_BROKER_URL is set: `celery -A example_project
# worker -B`, or `python manage.py demo`, which starts one.
CELERY_BROKER_URL = env.str("CELERY_BROKER_URL", default="")
CELERY_TASK_IGNORE_RESULT = True
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_BEAT_SCHEDULE = {
    "capi-deliver-due": {"task": "django_capi.deliver_due", "schedule": 60.0},
}

# The same shop without django_capi's work, for a baseline (see capi_off.py).
if not env.bool("DEMO_CAPI", default=True):
    MIDDLEWARE.remove("django_capi.middleware.CapiMiddleware")
    INSTALLED_APPS.append("example_project.capi_off.CapiOffConfig")
    TEMPLATES[0]["OPTIONS"]["libraries"] = {"capi": "example_project.capi_off"}
    SILENCED_SYSTEM_CHECKS = ["templates.W003"]  # that "capi" library replaces django_capi's
