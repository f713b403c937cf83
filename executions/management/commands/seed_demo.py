from __future__ import annotations

import importlib
from typing import Any

from django.apps import apps
from django.core.management.base import CommandParser
from django.db import transaction

from executions.management import cli


class Command(cli.HeptoraCommand):
    help = "Create or refresh the demo processes, groups, users and permissions (idempotent)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--reset-passwords", action="store_true",
                            help="set the demo users' passwords back to HEPTORA_DEMO_PASSWORD")

    def handle(self, *args: Any, **options: Any) -> None:
        # Each app may ship a `demo` module with seed(write, *, reset_passwords); executions goes first.
        with transaction.atomic():
            for config in apps.get_app_configs():
                try:
                    module = importlib.import_module(f"{config.name}.demo")
                except ModuleNotFoundError as exc:
                    if exc.name != f"{config.name}.demo":
                        raise
                    continue
                module.seed(self.stdout.write, reset_passwords=options["reset_passwords"])
        self.stdout.write(self.style.SUCCESS("Demo data is ready."))
