from __future__ import annotations

from typing import Any

from executions.management import cli
from heptora.local_cache import GROUPS


class Command(cli.HeptoraCommand):
    help = ("Make every web and worker process read again what it keeps in memory (processes, forms, approval "
            "policies, API keys, webhook endpoints, permissions granted). Run it after changing those rows "
            "outside Heptora (SQL, another tool): Django's signals never hear of such changes.")

    def handle(self, *args: Any, **options: Any) -> None:
        for group in GROUPS:
            group.changed()
        self.stdout.write(f"Renewed: {', '.join(group.name for group in GROUPS)}. Every process reads them again "
                          "on its next request.")
