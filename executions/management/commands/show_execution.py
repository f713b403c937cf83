from __future__ import annotations

from typing import Any

from django.core.management.base import CommandError, CommandParser
from django.utils import timezone

from executions import selectors, services
from executions.errors import HeptoraError
from executions.management import cli


class Command(cli.HeptoraCommand):
    help = "Show one execution with its events."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("execution_id", help="e.g. exec-3f2a…")
        parser.add_argument("--json", action="store_true")

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            execution = services.execution_get(options["execution_id"])
        except HeptoraError as exc:
            raise CommandError(str(exc)) from None
        events = list(selectors.execution_events(execution=execution))
        if options["json"]:
            data = selectors.execution_as_dict(execution)
            data["events"] = [selectors.event_as_dict(e) for e in events]
            self.stdout.write(cli.dumps(data))
            return
        self.stdout.write(cli.summary_line(execution))
        self.stdout.write(f"Started by {execution.actor_label} via {execution.get_source_display()}; "
                          f"attempt {execution.attempt}; timeout {execution.timeout} s")
        self.stdout.write(f"Parameters: {cli.dumps(execution.parameters)}")
        if execution.result is not None:
            self.stdout.write(f"Result: {cli.dumps(execution.result)}")
        self.stdout.write("Events:")
        for event in events:
            at = timezone.localtime(event.created_at)
            self.stdout.write(f"  {at:%Y-%m-%d %H:%M:%S}  {event.level:<7} {event.message}")
