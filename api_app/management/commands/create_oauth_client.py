from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser
from oauth2_provider.models import get_application_model
from oauth2_provider.settings import oauth2_settings

from api_app.callers import SCOPE_EXECUTE, SCOPE_READ
from api_app.oauth import oauth_client_create

DEFAULT_SCOPE = f"{SCOPE_EXECUTE} {SCOPE_READ}"


class Command(BaseCommand):
    help = ("Register an OAuth 2.0 client (client credentials grant) that acts as the given user, and print its "
            "client id and secret. The secret is shown only this once.")

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("username", help="The user the client acts as: their process permissions apply.")
        parser.add_argument("--name", required=True, help="The integration, e.g. 'ERP orders'.")
        parser.add_argument(
            "--scope", default=DEFAULT_SCOPE,
            help=f"The scopes the client will request, space-separated (default: '{DEFAULT_SCOPE}'). "
                 "Printed in the token request to copy; a token without a scope gets only process:read.",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        name = options["name"].strip()
        if not name:
            raise CommandError("--name must not be empty.")
        scopes = options["scope"].split()
        choices = ", ".join(oauth2_settings.SCOPES)
        if not scopes:
            raise CommandError(f"--scope must name at least one scope: {choices}.")
        unknown = [scope for scope in scopes if scope not in oauth2_settings.SCOPES]
        if unknown:
            raise CommandError(f"Unknown scope '{unknown[0]}'; choose from: {choices}.")
        owner = get_user_model()._default_manager.filter(username=options["username"]).first()
        if owner is None:
            raise CommandError(f"There is no user named '{options['username']}'.")
        if not owner.is_active:
            raise CommandError(f"The user '{owner.get_username()}' is inactive; a client cannot act as them.")
        if get_application_model().objects.filter(name=name).exists():
            raise CommandError(f"An OAuth client named '{name}' already exists; choose another name.")
        try:
            application, secret = oauth_client_create(owner=owner, name=name)
        except ValidationError as exc:
            raise CommandError(" ".join(exc.messages)) from None
        scope = " ".join(dict.fromkeys(scopes))
        self.stdout.write(f"Created OAuth client '{application.name}' acting as {owner.get_username()}.")
        self.stdout.write(f"client_id:     {application.client_id}")
        self.stdout.write(f"client_secret: {secret}")
        self.stdout.write("Store the secret now: it is kept only as a hash and cannot be shown again.")
        self.stdout.write(f"Get a token:   curl -u '{application.client_id}:<client_secret>' "
                          f"-d grant_type=client_credentials -d scope='{scope}' https://<your host>/o/token/")
