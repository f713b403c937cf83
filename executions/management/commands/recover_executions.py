from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand

from executions import services


class Command(BaseCommand):
    help = "Requeue or fail executions whose worker died (beat runs this every HEPTORA_RECOVERY_INTERVAL s)."

    def handle(self, *args: Any, **options: Any) -> None:
        report = services.executions_recover_stalled()
        self.stdout.write(f"requeued: {len(report.requeued)}  failed: {len(report.failed)}  "
                          f"republished: {len(report.republished)}")
        for label, ids in (("requeued", report.requeued), ("failed", report.failed),
                           ("republished", report.republished)):
            for execution_id in ids:
                self.stdout.write(f"  {label} {execution_id}")
