"""The Celery app the benchmark's worker runs."""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "benchmarks.settings")

app = Celery("django_capi_benchmark")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks(["django_capi"])
