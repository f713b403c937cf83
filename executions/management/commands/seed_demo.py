from __future__ import annotations

import importlib
from typing import Any

from django.apps import apps
from django.core.management.base import BaseCommand
from django.db import transaction


class Command(BaseCommand):
    help = "Create or refresh the demo processes, groups, users and permissions (idempotent)."

    def handle(self, *args: Any, **options: Any) -> None:
        # Each app may ship a `demo` module with seed(write); the executions app goes first.
        with transaction.atomic():
            for config in apps.get_app_configs():
                try:
                    module = importlib.import_module(f"{config.name}.demo")
                except ModuleNotFoundError as exc:
                    if exc.name != f"{config.name}.demo":
                        raise
                    continue
                module.seed(self.stdout.write)
        self.stdout.write(self.style.SUCCESS("Demo data is ready."))
