from __future__ import annotations

from typing import Any

from django.core.management.base import CommandError, CommandParser

from executions import services
from executions.errors import HeptoraError
from executions.management import cli
from executions.models import ExecutionSource


class Command(cli.HeptoraCommand):
    help = "Start a failed, cancelled, expired or rejected execution again, as a new execution."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("execution_id")

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            original = services.execution_get(options["execution_id"])
            execution = services.execution_retry(execution=original, actor=cli.actor_for(None),
                                                 source=ExecutionSource.CLI)
        except HeptoraError as exc:
            raise CommandError(str(exc)) from None
        self.stdout.write(f"Started {execution.public_id} (retry of {original.public_id}): {execution.status}")
