"""An operator registers an integration's OAuth client from the shell and hands over the credentials once."""

from __future__ import annotations

import re
import subprocess
import sys
from io import StringIO

import pytest
from django.contrib.auth.hashers import check_password
from django.contrib.auth.models import User
from django.core.management import call_command
from django.core.management.base import CommandError
from django.test import Client
from oauth2_provider.models import Application

from tests.api_app.conftest import oauth_token_request
from tests.conftest import ROOT

pytestmark = pytest.mark.django_db

OUTPUT = re.compile(
    r"\ACreated OAuth client 'ERP orders' acting as sam\.\n"
    r"client_id:     (?P<client_id>[A-Za-z0-9]{40})\n"
    r"client_secret: (?P<secret>[A-Za-z0-9]{128})\n"
    r"Store the secret now: it is kept only as a hash and cannot be shown again\.\n"
    r"Get a token:   curl -u '(?P=client_id):<client_secret>' -d grant_type=client_credentials "
    r"-d scope='(?P<scope>[a-z: ]+)' https://<your host>/o/token/\n\Z"
)


def command(*args: str) -> str:
    out = StringIO()
    call_command("create_oauth_client", *args, stdout=out, stderr=StringIO())
    return out.getvalue()


def command_error(*args: str) -> str:
    with pytest.raises(CommandError) as raised:
        call_command("create_oauth_client", *args, stdout=StringIO(), stderr=StringIO())
    return str(raised.value)


def test_it_registers_a_client_and_shows_its_secret_once(staff_user: User) -> None:
    printed = OUTPUT.match(command("sam", "--name", "ERP orders"))

    assert printed is not None
    application = Application.objects.get()
    assert application.client_id == printed["client_id"]
    assert (application.name, application.user, application.client_type, application.authorization_grant_type) == (
        "ERP orders", staff_user, "confidential", "client-credentials")
    assert printed["scope"] == "process:execute process:read"
    assert application.client_secret != printed["secret"]
    assert check_password(printed["secret"], application.client_secret)


def test_the_printed_credentials_get_a_token_that_acts_as_the_user(staff_user: User) -> None:
    printed = OUTPUT.match(command("sam", "--name", "ERP orders", "--scope", "process:execute"))
    assert printed is not None
    http = Client(HTTP_HOST="localhost")

    token = oauth_token_request(http, printed["client_id"], printed["secret"], printed["scope"])
    whoami = http.get("/api/v1/me", HTTP_AUTHORIZATION=f"Bearer {token.json()['access_token']}")

    assert printed["scope"] == "process:execute"
    assert token.status_code == 200
    assert whoami.json() == {"kind": "oauth_client", "label": "oauth:ERP orders", "user": "sam",
                             "scopes": ["process:execute"], "allowedProcesses": None, "rateLimitPerMinute": 100}


def test_repeated_scopes_are_printed_once(staff_user: User) -> None:
    printed = OUTPUT.match(command("sam", "--name", "ERP orders", "--scope", "process:read  process:read"))

    assert printed is not None
    assert printed["scope"] == "process:read"


def test_it_refuses_an_unknown_user() -> None:
    assert command_error("nobody", "--name", "ERP orders") == "There is no user named 'nobody'."
    assert Application.objects.count() == 0


def test_it_refuses_an_inactive_user(staff_user: User) -> None:
    staff_user.is_active = False
    staff_user.save(update_fields=["is_active"])

    assert command_error("sam", "--name", "ERP orders") == "The user 'sam' is inactive; a client cannot act as them."
    assert Application.objects.count() == 0


def test_it_refuses_an_unknown_scope(staff_user: User) -> None:
    assert command_error("sam", "--name", "ERP orders", "--scope", "process:read admin") == (
        "Unknown scope 'admin'; choose from: process:execute, process:read.")
    assert Application.objects.count() == 0


def test_it_refuses_an_empty_scope(staff_user: User) -> None:
    assert command_error("sam", "--name", "ERP orders", "--scope", " ") == (
        "--scope must name at least one scope: process:execute, process:read.")
    assert Application.objects.count() == 0


def test_it_refuses_an_empty_name(staff_user: User) -> None:
    assert command_error("sam", "--name", "  ") == "--name must not be empty."
    assert Application.objects.count() == 0


def test_it_refuses_a_name_already_in_use(staff_user: User) -> None:
    command("sam", "--name", "ERP orders")

    assert command_error("sam", "--name", "ERP orders") == (
        "An OAuth client named 'ERP orders' already exists; choose another name.")
    assert Application.objects.count() == 1


def test_it_needs_a_name(staff_user: User) -> None:
    assert command_error("sam") == "Error: the following arguments are required: --name"
    assert Application.objects.count() == 0


def test_an_error_is_one_line_and_a_failing_exit_status(subprocess_env: dict[str, str]) -> None:
    env = {"SECRET_KEY": "test-only-secret-key", **subprocess_env}  # settings require one beside DATABASE_URL
    result = subprocess.run([sys.executable, "manage.py", "create_oauth_client", "nobody", "--name", "ERP orders"],
                            cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)

    assert (result.returncode, result.stdout, result.stderr) == (
        1, "", "CommandError: There is no user named 'nobody'.\n")
