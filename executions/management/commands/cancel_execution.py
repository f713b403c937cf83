from __future__ import annotations

from typing import Any

from django.core.management.base import CommandError, CommandParser

from executions import services
from executions.errors import HeptoraError
from executions.management import cli
from executions.models import ExecutionStatus


class Command(cli.HeptoraCommand):
    help = "Cancel an execution: at once if it has not started, at its next step if it is running."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("execution_id")

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            execution = services.execution_get(options["execution_id"])
            execution = services.execution_cancel(execution=execution, actor=cli.actor_for(None))
        except HeptoraError as exc:
            raise CommandError(str(exc)) from None
        if execution.status == ExecutionStatus.CANCELLED:
            self.stdout.write(f"{execution.public_id} cancelled.")
        else:
            self.stdout.write(f"{execution.public_id} is running; cancellation requested, it stops at its next step.")
