from __future__ import annotations

import json
from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from api_app import api_keys
from api_app.management import keys_cli


class Command(BaseCommand):
    help = "List API keys, newest first: status, expiry, last use and number of uses."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--user", help="only this user's keys")
        parser.add_argument("--json", action="store_true")

    def handle(self, *args: Any, **options: Any) -> None:
        user = keys_cli.user_named(options["user"]) if options["user"] else None
        keys = api_keys.api_keys_list(user=user)
        if options["json"]:
            self.stdout.write(json.dumps([keys_cli.key_as_dict(key) for key in keys], indent=2))
            return
        if not keys:
            self.stdout.write(f"{user.get_username()} has no API keys." if user else "There are no API keys.")
            return
        self.stdout.write(f"{'PREFIX':<13} {'NAME':<24} {'USER':<12} {'STATUS':<13} {'EXPIRES':<20} "
                          f"{'LAST USED':<20} USES")
        for key in keys:
            self.stdout.write(
                f"{key.prefix:<13} {key.name[:24]:<24} {key.user.get_username()[:12]:<12} "
                f"{api_keys.api_key_status(key=key):<13} {keys_cli.when(key.expires_at):<20} "
                f"{keys_cli.when(key.last_used_at):<20} {key.usage_count}"
            )
