"""Settings for the delivery benchmark: a database of its own, the worker path as in production."""

import json
import os

import environ

env = environ.Env()

SECRET_KEY = "django_capi-benchmark-not-secret"
USE_TZ = True
INSTALLED_APPS = ["django.contrib.contenttypes", "django_capi"]
DATABASES = {
    "default": env.db("BENCH_DATABASE_URL", default="postgres://postgres@127.0.0.1:5432/capi_bench")
}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
CAPI = {
    "PIXEL_ID": "1234567890123456",
    "ACCESS_TOKEN": "EAAbenchmark-token",
    "QUEUE_ON_COMMIT": False,
    "DEFAULT_COUNTRY": "US",
    "TASK_TIME_BUDGET": 30,
}
CAPI.update(json.loads(os.environ.get("CAPI_BENCH_OVERRIDES", "{}")))
CELERY_BROKER_URL = os.environ.get("CELERY_BROKER_URL", "redis://127.0.0.1:6379/14")
CELERY_TASK_IGNORE_RESULT = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
SILENCED_SYSTEM_CHECKS = ["django_capi.W003"]
