from __future__ import annotations

from typing import Any

from django.core.management.base import CommandError, CommandParser

from executions import selectors, services
from executions.errors import HeptoraError
from executions.management import cli
from executions.models import ExecutionSource, ExecutionStatus


class Command(cli.HeptoraCommand):
    help = "Start a process. With --wait, follow its progress and exit non-zero unless it succeeds."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("process_id", help="e.g. order-processing")
        parser.add_argument("--param", action="append", metavar="KEY=VALUE", help="a parameter (repeatable)")
        parser.add_argument("--params-json", metavar="JSON", help="parameters as one JSON object")
        parser.add_argument("--wait", action="store_true", help="follow progress until the execution ends")
        parser.add_argument("--json", action="store_true", help="print the execution as JSON")
        parser.add_argument("--timeout", type=int, help="seconds before the execution fails with 'timeout'")
        parser.add_argument("--notify-email", default="", help="address told about the outcome")
        parser.add_argument("--user", help="start as this Heptora user (their permissions apply)")

    def handle(self, *args: Any, **options: Any) -> None:
        params = cli.parse_params(options["param"], options["params_json"])
        try:
            execution = services.execution_start(
                process_id=options["process_id"], parameters=params, source=ExecutionSource.CLI,
                actor=cli.actor_for(options["user"]), notify_email=options["notify_email"],
                timeout=options["timeout"],
            )
        except HeptoraError as exc:
            raise CommandError(str(exc)) from None
        progress = self.stderr.write if options["json"] else self.stdout.write
        if not options["json"]:
            self.stdout.write(f"Started {execution.public_id} ({execution.process.name}): {execution.status}")
        if options["wait"]:
            execution = cli.wait_for(execution, progress)
        if options["json"]:
            self.stdout.write(cli.dumps(selectors.execution_as_dict(execution)))
        elif options["wait"]:
            self.stdout.write(cli.summary_line(execution))
            if execution.result is not None:
                self.stdout.write(cli.dumps(execution.result))
        if options["wait"] and execution.status != ExecutionStatus.SUCCESS:
            raise CommandError(f"{execution.public_id} ended {execution.status}.", returncode=cli.EXIT_FAILED)
