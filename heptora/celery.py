"""The Celery application: one per deployment, configured from Django settings (``CELERY_*``)."""

import os
from typing import Any

from celery import Celery
from celery.signals import worker_init, worker_process_init

from heptora.startup import freeze_loaded_objects

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "heptora.settings")

app = Celery("heptora")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@worker_init.connect
@worker_process_init.connect
def _freeze_loaded_objects(**_: Any) -> None:
    # Before the pool forks (worker_init: Django, the tasks and the views are loaded by then), and in each
    # pool process after its own start-up (worker_process_init): see heptora.startup.
    freeze_loaded_objects()
