"""An operator manages integrators' keys with manage.py: create, list, revoke, rotate.

Every mistake is answered with one line and a non-zero exit, and changes nothing.
"""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from io import StringIO

import pytest
from django.contrib.auth.models import User
from django.core.management import call_command
from django.core.management.base import CommandError
from django.test import Client
from django.utils import timezone

from api_app import api_keys
from api_app.models import ApiKey
from tests.conftest import ROOT

pytestmark = pytest.mark.django_db

ONCE = "Copy the key now: it will not be shown again (Heptora keeps only a hash of it)."
KEY_LINE = r"hep_[0-9a-f]{8}_[A-Za-z0-9]{43}"


def command(*args: str) -> list[str]:
    out = StringIO()
    call_command(*args, stdout=out, stderr=StringIO(), no_color=True)
    return out.getvalue().splitlines()


def command_error(*args: str) -> str:
    with pytest.raises(CommandError) as raised:
        call_command(*args, stdout=StringIO(), stderr=StringIO(), no_color=True)
    return str(raised.value)


def me_status(full_key: str, address: str = "127.0.0.1") -> int:
    return Client(HTTP_HOST="localhost").get("/api/v1/me", HTTP_AUTHORIZATION=f"Bearer {full_key}",
                                             REMOTE_ADDR=address).status_code


def when(value: datetime | None) -> str:
    return timezone.localtime(value).strftime("%Y-%m-%d %H:%M %Z") if value else "-"


# --- create_api_key -------------------------------------------------------------------------------------


def test_it_creates_a_key_and_prints_it_once_with_a_warning(staff_user: User) -> None:
    lines = command("create_api_key", "sam", "--name", "Shop orders")

    key = ApiKey.objects.get()
    assert lines[0] == f"Created API key 'Shop orders' ({key.prefix}) for sam."
    assert lines[1] == "Processes: all the user may start; addresses: any; rate limit: 100/min; expires: never."
    assert lines[2].startswith(f"{key.prefix}_")
    assert lines[3:] == [ONCE]
    assert (key.user, key.name, key.expires_at, key.allowed_processes, key.allowed_ips,
            key.rate_limit_per_minute) == (staff_user, "Shop orders", None, [], [], 100)
    assert me_status(lines[2]) == 200


def test_it_creates_a_restricted_key_that_expires(staff_user: User) -> None:
    before = timezone.now()

    lines = command("create_api_key", "sam", "--name", "ERP", "--expires-in-days", "30",
                    "--process", "order-processing", "--process", "test-echo",
                    "--ip", "203.0.113.0/24", "--ip", "2001:db8::1", "--rate-limit", "20")

    key = ApiKey.objects.get()
    assert before + timedelta(days=30) <= key.expires_at <= timezone.now() + timedelta(days=30)
    assert (key.allowed_processes, key.allowed_ips, key.rate_limit_per_minute) == (
        ["order-processing", "test-echo"], ["203.0.113.0/24", "2001:db8::1/128"], 20)
    assert lines[1] == ("Processes: order-processing, test-echo; addresses: 203.0.113.0/24, 2001:db8::1/128; "
                        f"rate limit: 20/min; expires: {when(key.expires_at)}.")
    assert (me_status(lines[2], "203.0.113.4"), me_status(lines[2], "198.51.100.4")) == (200, 401)


@pytest.mark.parametrize(("given", "expected"), [
    ("2030-01-31T18:00:00Z", datetime(2030, 1, 31, 18, 0, tzinfo=UTC)),
    ("2030-01-31T18:00:00+02:00", datetime(2030, 1, 31, 16, 0, tzinfo=UTC)),
    ("2030-01-31", timezone.make_aware(datetime(2030, 1, 31))),
])
def test_it_takes_an_expiry_moment_in_iso_8601(staff_user: User, given: str, expected: datetime) -> None:
    command("create_api_key", "sam", "--name", "Trial", "--expires-at", given)

    assert ApiKey.objects.get().expires_at == expected


@pytest.mark.parametrize(("args", "message"), [
    (["nobody", "--name", "Shop"], "There is no user named 'nobody'."),
    (["sam", "--name", "Shop", "--ip", "10.0.0.0/33"],
     "'10.0.0.0/33' is not an IP address or CIDR range, e.g. 203.0.113.0/24."),
    (["sam", "--name", "Shop", "--ip", "office"], "'office' is not an IP address or CIDR range, e.g. 203.0.113.0/24."),
    (["sam", "--name", "Shop", "--expires-at", "next tuesday"],
     "--expires-at 'next tuesday' is not an ISO 8601 date or time, e.g. 2027-01-31T18:00."),
    (["sam", "--name", "Shop", "--expires-at", "9999-12-31T23:00:00-05:00"],
     "--expires-at '9999-12-31T23:00:00-05:00' is not an ISO 8601 date or time, e.g. 2027-01-31T18:00."),
    (["sam", "--name", "Shop", "--expires-at", "2020-01-01T00:00:00Z"], "The expiry must be in the future."),
    (["sam", "--name", "Shop", "--expires-in-days", "0"], "--expires-in-days must be between 1 and 36500."),
    (["sam", "--name", "Shop", "--expires-in-days", "99999999"], "--expires-in-days must be between 1 and 36500."),
    (["sam", "--name", "Shop", "--expires-in-days", "3", "--expires-at", "2030-01-01"],
     "Error: argument --expires-at: not allowed with argument --expires-in-days"),
    (["sam", "--name", "Shop", "--process", "order-processing", "--process", "no-such-process"],
     "There is no process with id 'no-such-process'."),
    (["sam", "--name", "Shop", "--rate-limit", "0"],
     "The rate limit must be between 1 and 1000000 requests per minute."),
    (["sam", "--name", " "], "Give the key a name: the integration that will use it."),
    (["sam"], "Error: the following arguments are required: --name"),
])
def test_create_refuses_mistakes_in_one_line_and_makes_no_key(staff_user: User, args: list[str],
                                                              message: str) -> None:
    assert command_error("create_api_key", *args) == message
    assert not ApiKey.objects.exists()


def test_create_refuses_an_inactive_user(staff_user: User) -> None:
    staff_user.is_active = False
    staff_user.save(update_fields=["is_active"])

    assert command_error("create_api_key", "sam", "--name", "Shop") == "The user 'sam' is not active."
    assert not ApiKey.objects.exists()


# --- list_api_keys --------------------------------------------------------------------------------------


@pytest.fixture
def keys_in_every_state(staff_user: User, admin_user: User) -> dict[str, ApiKey]:
    """One key per status: Sam's shop and ERP keys, and Ada's keys for a trial, a leak and a rotation."""
    shop, shop_key = api_keys.api_key_create(user=staff_user, name="Shop orders")
    Client(HTTP_HOST="localhost").get("/api/v1/me", HTTP_AUTHORIZATION=f"Bearer {shop_key}")
    erp, _ = api_keys.api_key_create(user=staff_user, name="ERP", expires_at=timezone.now() + timedelta(days=7))
    trial, _ = api_keys.api_key_create(user=admin_user, name="Trial")
    ApiKey.objects.filter(pk=trial.pk).update(expires_at=timezone.now() - timedelta(days=1))
    leaked, _ = api_keys.api_key_create(user=admin_user, name="Leaked")
    api_keys.api_key_revoke(key=leaked, reason="posted in a chat")
    rotated, _ = api_keys.api_key_create(user=admin_user, name="Rotated")
    replacement, _ = api_keys.api_key_rotate(key=rotated)
    for key in (shop, erp, trial, leaked, rotated, replacement):
        key.refresh_from_db()
    return {"shop": shop, "erp": erp, "trial": trial, "leaked": leaked, "rotated": rotated,
            "replacement": replacement}


def test_it_lists_every_key_with_status_expiry_and_use(keys_in_every_state: dict[str, ApiKey]) -> None:
    k = keys_in_every_state

    lines = command("list_api_keys")

    assert lines[0] == f"{'PREFIX':<13} {'NAME':<24} {'USER':<12} {'STATUS':<13} {'EXPIRES':<20} {'LAST USED':<20} USES"

    def row(key: ApiKey, status: str, uses: int) -> str:
        return (f"{key.prefix:<13} {key.name:<24} {key.user.username:<12} {status:<13} {when(key.expires_at):<20} "
                f"{when(key.last_used_at):<20} {uses}")

    assert lines[1:] == [
        row(k["replacement"], "active", 0), row(k["rotated"], "rotated-grace", 0), row(k["leaked"], "revoked", 0),
        row(k["trial"], "expired", 0), row(k["erp"], "active", 0), row(k["shop"], "active", 1),
    ]
    assert k["shop"].last_used_at is not None


def test_it_lists_one_users_keys_as_json(keys_in_every_state: dict[str, ApiKey]) -> None:
    shop, erp = keys_in_every_state["shop"], keys_in_every_state["erp"]

    listed = json.loads("\n".join(command("list_api_keys", "--user", "sam", "--json")))

    def iso(value: datetime | None) -> str | None:
        return value.isoformat().replace("+00:00", "Z") if value else None

    assert listed == [
        {"prefix": erp.prefix, "name": "ERP", "user": "sam", "status": "active", "createdAt": iso(erp.created_at),
         "expiresAt": iso(erp.expires_at), "lastUsedAt": None, "usageCount": 0, "revokedAt": None,
         "revokedReason": "", "replacedBy": None, "graceUntil": None, "allowedProcesses": [], "allowedIps": [],
         "rateLimitPerMinute": 100},
        {"prefix": shop.prefix, "name": "Shop orders", "user": "sam", "status": "active",
         "createdAt": iso(shop.created_at), "expiresAt": None, "lastUsedAt": iso(shop.last_used_at),
         "usageCount": 1, "revokedAt": None, "revokedReason": "", "replacedBy": None, "graceUntil": None,
         "allowedProcesses": [], "allowedIps": [], "rateLimitPerMinute": 100},
    ]


def test_the_json_list_shows_revocation_and_rotation(keys_in_every_state: dict[str, ApiKey]) -> None:
    k = keys_in_every_state

    listed = {item["prefix"]: item for item in json.loads("\n".join(command("list_api_keys", "--json")))}

    leaked, rotated = listed[k["leaked"].prefix], listed[k["rotated"].prefix]
    assert (leaked["status"], leaked["revokedReason"]) == ("revoked", "posted in a chat")
    assert leaked["revokedAt"] == k["leaked"].revoked_at.isoformat().replace("+00:00", "Z")
    assert (rotated["status"], rotated["replacedBy"]) == ("rotated-grace", k["replacement"].prefix)
    assert rotated["graceUntil"] == k["rotated"].grace_until.isoformat().replace("+00:00", "Z")


def test_it_says_so_when_there_are_no_keys(staff_user: User) -> None:
    assert command("list_api_keys") == ["There are no API keys."]
    assert command("list_api_keys", "--user", "sam") == ["sam has no API keys."]
    assert command("list_api_keys", "--json") == ["[]"]


def test_list_refuses_an_unknown_user(db: None) -> None:
    assert command_error("list_api_keys", "--user", "nobody") == "There is no user named 'nobody'."


# --- revoke_api_key -------------------------------------------------------------------------------------


@pytest.fixture
def shop_key(staff_user: User) -> tuple[ApiKey, str]:
    return api_keys.api_key_create(user=staff_user, name="Shop orders")


def test_it_revokes_a_key_which_stops_at_once(shop_key: tuple[ApiKey, str]) -> None:
    key, full_key = shop_key
    assert me_status(full_key) == 200

    assert command("revoke_api_key", key.prefix, "--reason", "leaked in a log") == [
        f"Revoked {key.prefix} (Shop orders): it stops working now."]

    key.refresh_from_db()
    assert key.revoked_reason == "leaked in a log"
    assert me_status(full_key) == 401


def test_revoking_again_says_so_and_changes_nothing(shop_key: tuple[ApiKey, str]) -> None:
    key, _ = shop_key
    command("revoke_api_key", key.prefix.removeprefix("hep_"))
    key.refresh_from_db()
    first = (key.revoked_at, key.revoked_reason)
    assert key.revoked_reason.startswith("revoked from the command line by ")

    assert command("revoke_api_key", key.prefix, "--reason", "again") == [
        f"{key.prefix} (Shop orders) was already revoked on {when(key.revoked_at)} ({key.revoked_reason}); "
        "nothing changed."]

    key.refresh_from_db()
    assert (key.revoked_at, key.revoked_reason) == first


def test_revoke_refuses_an_unknown_prefix(shop_key: tuple[ApiKey, str]) -> None:
    assert command_error("revoke_api_key", "hep_00000000") == "There is no API key with prefix 'hep_00000000'."
    assert not ApiKey.objects.filter(revoked_at__isnull=False).exists()


# --- rotate_api_key -------------------------------------------------------------------------------------


def test_it_rotates_a_key_and_the_old_one_works_for_24_hours(shop_key: tuple[ApiKey, str]) -> None:
    old, old_key = shop_key

    lines = command("rotate_api_key", old.prefix)

    old.refresh_from_db()
    new = old.replaced_by
    assert new is not None
    assert lines[0] == f"Rotated {old.prefix} (Shop orders): the new key is {new.prefix}."
    assert lines[1] == "Processes: all the user may start; addresses: any; rate limit: 100/min; expires: never."
    assert lines[2].startswith(f"{new.prefix}_")
    assert lines[3:] == [ONCE, f"The old key {old.prefix} keeps working until {when(old.grace_until)}, then stops."]
    assert timedelta(hours=23, minutes=59) < old.grace_until - timezone.now() <= timedelta(hours=24)
    assert (me_status(old_key), me_status(lines[2])) == (200, 200)


def test_it_rotates_with_the_grace_period_asked_for(shop_key: tuple[ApiKey, str]) -> None:
    old, _ = shop_key

    command("rotate_api_key", old.prefix, "--grace-hours", "1.5")

    old.refresh_from_db()
    assert timedelta(minutes=89) < old.grace_until - timezone.now() <= timedelta(minutes=90)


def test_rotating_without_grace_stops_the_old_key_now(shop_key: tuple[ApiKey, str]) -> None:
    old, old_key = shop_key
    assert me_status(old_key) == 200

    lines = command("rotate_api_key", old.prefix, "--grace-hours", "0")

    assert lines[-1] == f"The old key {old.prefix} stopped working now."
    assert (me_status(old_key), me_status(lines[2])) == (401, 200)


@pytest.mark.parametrize(("args", "message"), [
    (["hep_00000000"], "There is no API key with prefix 'hep_00000000'."),
    (["{prefix}", "--grace-hours", "-1"], "--grace-hours must be between 0 and 720."),
    (["{prefix}", "--grace-hours", "721"], "--grace-hours must be between 0 and 720."),
    (["{prefix}", "--grace-hours", "nan"], "--grace-hours must be between 0 and 720."),
    (["{prefix}", "--grace-hours", "soon"], "Error: argument --grace-hours: invalid float value: 'soon'"),
])
def test_rotate_refuses_mistakes_and_makes_no_key(shop_key: tuple[ApiKey, str], args: list[str],
                                                  message: str) -> None:
    key, _ = shop_key

    assert command_error("rotate_api_key", *[a.format(prefix=key.prefix) for a in args]) == message
    assert list(ApiKey.objects.values_list("pk", "replaced_by")) == [(key.pk, None)]


def test_rotate_refuses_a_revoked_or_already_rotated_key(shop_key: tuple[ApiKey, str]) -> None:
    key, _ = shop_key
    command("rotate_api_key", key.prefix)

    assert command_error("rotate_api_key", key.prefix) == (
        f"{key.prefix} was already rotated; rotate its replacement instead.")
    replacement = ApiKey.objects.get(pk=key.pk).replaced_by
    assert replacement is not None
    api_keys.api_key_revoke(key=replacement)
    assert command_error("rotate_api_key", replacement.prefix) == (
        f"{replacement.prefix} is revoked; create a new key instead.")
    assert ApiKey.objects.count() == 2


# --- From a real shell ----------------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_a_mistake_in_the_shell_is_one_line_on_stderr_and_exit_status_1(subprocess_env: dict[str, str]) -> None:
    env = {"SECRET_KEY": "test-only-secret-key", **subprocess_env}  # settings want one whenever DATABASE_URL is set
    for args, message in [
        (["create_api_key", "nobody", "--name", "Shop"], "There is no user named 'nobody'."),
        (["revoke_api_key", "hep_00000000"], "There is no API key with prefix 'hep_00000000'."),
    ]:
        done = subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT, env=env,
                              capture_output=True, text=True, timeout=120)

        assert (done.returncode, done.stdout, done.stderr) == (1, "", f"CommandError: {message}\n")
