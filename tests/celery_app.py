"""The Celery app the worker tests start real worker processes with.

Configured from Django settings (``CELERY_*``), like a host project's ``celery.py``.
"""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.settings")

app = Celery("django_capi_tests")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks(["django_capi"])
