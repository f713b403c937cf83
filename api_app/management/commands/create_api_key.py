from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from api_app import api_keys
from api_app.management import keys_cli


class Command(BaseCommand):
    help = "Create an API key that acts as a user. The key is printed once; only its hash is kept."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("username", help="the key acts as this user: their permissions apply")
        parser.add_argument("--name", required=True, help="the integration, e.g. 'Shop orders'")
        expiry = parser.add_mutually_exclusive_group()
        expiry.add_argument("--expires-in-days", type=int, metavar="D", help="the key stops after D days")
        expiry.add_argument("--expires-at", metavar="ISO", help="the key stops then, e.g. 2027-01-31T18:00")
        parser.add_argument("--process", action="append", default=[], metavar="P",
                            help="allow only this process id (repeatable; default: all the user may start)")
        parser.add_argument("--ip", action="append", default=[], metavar="CIDR",
                            help="allow only this address range (repeatable; default: any)")
        parser.add_argument("--rate-limit", type=int, default=100, metavar="N", help="requests per minute (100)")

    def handle(self, *args: Any, **options: Any) -> None:
        user = keys_cli.user_named(options["username"])
        try:
            key, full_key = api_keys.api_key_create(
                user=user, name=options["name"],
                expires_at=keys_cli.expiry(options["expires_in_days"], options["expires_at"]),
                allowed_processes=options["process"], allowed_ips=options["ip"],
                rate_limit_per_minute=options["rate_limit"],
            )
        except api_keys.ApiKeyError as exc:
            raise CommandError(exc.message) from None
        self.stdout.write(f"Created API key '{key.name}' ({key.prefix}) for {user.get_username()}.")
        keys_cli.show_once(self.stdout, key, full_key, self.style.WARNING)
