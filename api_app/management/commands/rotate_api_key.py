from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from api_app import api_keys
from api_app.management import keys_cli

DEFAULT_HOURS = api_keys.DEFAULT_GRACE.total_seconds() / 3600


class Command(BaseCommand):
    help = ("Replace an API key with a new one (same user, name, expiry and restrictions). The old key keeps "
            f"working for a grace period ({DEFAULT_HOURS:g} hours unless --grace-hours says otherwise).")

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("prefix", help="the key's prefix, e.g. hep_3f9a0c1d (see list_api_keys)")
        parser.add_argument("--grace-hours", type=float, default=DEFAULT_HOURS, metavar="H",
                            help=f"how long the old key keeps working (default {DEFAULT_HOURS:g}; 0: stop it now)")

    def handle(self, *args: Any, **options: Any) -> None:
        key = keys_cli.key_with_prefix(options["prefix"])
        hours = options["grace_hours"]
        if not 0 <= hours <= api_keys.MAX_GRACE / timedelta(hours=1):  # also refuses nan
            raise CommandError(f"--grace-hours must be between 0 and {api_keys.MAX_GRACE / timedelta(hours=1):g}.")
        try:
            new_key, full_key = api_keys.api_key_rotate(key=key, grace=timedelta(hours=hours))
        except api_keys.ApiKeyError as exc:
            raise CommandError(exc.message) from None
        self.stdout.write(f"Rotated {key.prefix} ({key.name}): the new key is {new_key.prefix}.")
        keys_cli.show_once(self.stdout, new_key, full_key, self.style.WARNING)
        if hours > 0:
            self.stdout.write(f"The old key {key.prefix} keeps working until {keys_cli.when(key.grace_until)}, "
                              "then stops.")
        else:
            self.stdout.write(f"The old key {key.prefix} stopped working now.")
