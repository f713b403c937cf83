from __future__ import annotations

from typing import Any

from django.core.management.base import CommandError, CommandParser
from django.utils import timezone

from executions import selectors
from executions.management import cli
from executions.models import ExecutionStatus


class Command(cli.HeptoraCommand):
    help = "List recent executions, newest first."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--status", help=f"one of: {', '.join(ExecutionStatus.values)}")
        parser.add_argument("--process", help="process id, e.g. order-processing")
        parser.add_argument("--limit", type=int, default=20)
        parser.add_argument("--json", action="store_true")

    def handle(self, *args: Any, **options: Any) -> None:
        status = options["status"]
        if status and status not in ExecutionStatus.values:
            raise CommandError(f"Unknown status '{status}'. Use one of: {', '.join(ExecutionStatus.values)}.")
        if options["limit"] < 1:
            raise CommandError("--limit must be at least 1.")
        executions = list(
            selectors.executions_list(status=status, process_id=options["process"], limit=options["limit"])
        )
        if options["json"]:
            self.stdout.write(cli.dumps([selectors.execution_as_dict(e) for e in executions]))
            return
        if not executions:
            self.stdout.write("No executions match.")
            return
        self.stdout.write(f"{'EXECUTION':<22} {'PROCESS':<20} {'STATUS':<18} {'SOURCE':<8} {'CREATED':<20} PROGRESS")
        for e in executions:
            created = timezone.localtime(e.created_at).strftime("%Y-%m-%d %H:%M:%S")
            self.stdout.write(f"{e.public_id:<22} {e.process.slug:<20} {e.status:<18} {e.source:<8} {created:<20} "
                              f"{e.progress_text}")
