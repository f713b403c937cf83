from __future__ import annotations

import dataclasses
from typing import Any

from executions import services
from executions.management import cli


class Command(cli.HeptoraCommand):
    help = "Requeue or fail executions whose worker died (beat runs this every HEPTORA_RECOVERY_INTERVAL s)."

    def handle(self, *args: Any, **options: Any) -> None:
        summary = dataclasses.asdict(services.executions_recover_stalled())
        self.stdout.write("  ".join(f"{label}: {len(ids)}" for label, ids in summary.items()))
        for label, ids in summary.items():
            for execution_id in ids:
                self.stdout.write(f"  {label} {execution_id}")
