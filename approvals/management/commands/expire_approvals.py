from __future__ import annotations

from typing import Any

from approvals import services
from executions.management import cli


class Command(cli.HeptoraCommand):
    help = "Remind, escalate, expire or reject the approval requests whose time has come (beat runs this too)."

    def handle(self, *args: Any, **options: Any) -> None:
        report = services.approvals_expire_due()
        for label, ids in (("reminded", report.reminded), ("escalated", report.escalated),
                           ("expired", report.expired), ("rejected", report.rejected)):
            if ids:
                self.stdout.write(f"{label}: {', '.join(ids)}")
        if not any((report.reminded, report.escalated, report.expired, report.rejected)):
            self.stdout.write("Nothing was due.")
