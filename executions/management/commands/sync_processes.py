from __future__ import annotations

from typing import Any

from executions import services
from executions.management import cli


class Command(cli.HeptoraCommand):
    help = "Bring the Process table in line with the processes defined in code."

    def handle(self, *args: Any, **options: Any) -> None:
        report = services.processes_sync()
        for label, slugs in (("created", report.created), ("updated", report.updated),
                             ("no longer in code", report.unregistered)):
            if slugs:
                self.stdout.write(f"{label}: {', '.join(slugs)}")
        if not (report.created or report.updated or report.unregistered):
            self.stdout.write("Processes are up to date.")
