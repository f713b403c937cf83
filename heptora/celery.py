"""The Celery application: one per deployment, configured from Django settings (``CELERY_*``)."""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "heptora.settings")

app = Celery("heptora")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
