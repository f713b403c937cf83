from __future__ import annotations

import getpass
from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from api_app import api_keys
from api_app.management import keys_cli


class Command(BaseCommand):
    help = "Revoke an API key: it stops working at once. Revoking a revoked key changes nothing."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("prefix", help="the key's prefix, e.g. hep_3f9a0c1d (see list_api_keys)")
        parser.add_argument("--reason", default="", help="kept with the key, e.g. 'leaked in a log'")

    def handle(self, *args: Any, **options: Any) -> None:
        key = keys_cli.key_with_prefix(options["prefix"])
        reason = options["reason"] or f"revoked from the command line by {getpass.getuser()}"
        if api_keys.api_key_revoke(key=key, reason=reason):
            self.stdout.write(f"Revoked {key.prefix} ({key.name}): it stops working now.")
        else:
            self.stdout.write(f"{key.prefix} ({key.name}) was already revoked on {keys_cli.when(key.revoked_at)} "
                              f"({key.revoked_reason or 'no reason given'}); nothing changed.")
