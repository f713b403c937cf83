"""An integrator's system calls the API with a key made for it: `Authorization: Bearer hep_…`.

Sam's shop gets a key named "Shop orders". Every story goes through `GET /api/v1/me` as the shop would.
A refusal is a 401 with `WWW-Authenticate: Bearer realm="heptora"` and one sentence; until the secret has
matched, that sentence is the same whether or not a key with that prefix exists.
"""

from __future__ import annotations

import hashlib
import re
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import pytest
from django.apps import apps
from django.contrib.auth.models import Group, Permission, User
from django.core.cache import cache
from django.db import connection, models
from django.http import HttpResponse
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from api_app import api_keys
from api_app.models import ApiKey
from heptora.local_cache import API_KEYS

pytestmark = pytest.mark.django_db

NOT_VALID = "The API key is not valid."
REALM = 'Bearer realm="heptora"'
KEY_SHAPE = re.compile(r"hep_[0-9a-f]{8}_[A-Za-z0-9]{43}")


@pytest.fixture
def http() -> Client:
    return Client(HTTP_HOST="localhost")


@pytest.fixture
def shop_key(staff_user: User) -> tuple[ApiKey, str]:
    return api_keys.api_key_create(user=staff_user, name="Shop orders")


@pytest.fixture
def travel(monkeypatch: pytest.MonkeyPatch) -> Callable[[timedelta], datetime]:
    """Move the clock forward: `travel(timedelta(hours=25))`; returns the new now."""
    real_now = timezone.now

    def to(offset: timedelta) -> datetime:
        later = real_now() + offset
        monkeypatch.setattr(timezone, "now", lambda: later)
        return later

    return to


def me(http: Client, token: str, **extra: Any) -> HttpResponse:
    return http.get("/api/v1/me", HTTP_AUTHORIZATION=f"Bearer {token}", **extra)


def refusal(response: HttpResponse) -> tuple[int, str | None, str, str]:
    error = response.json()["error"]
    return response.status_code, response.headers.get("WWW-Authenticate"), error["code"], error["message"]


def tampered(full_key: str) -> str:
    return full_key[:-1] + ("A" if full_key[-1] != "A" else "B")


# --- A working key --------------------------------------------------------------------------------------


def test_a_new_key_works_at_once_and_acts_as_its_user(http: Client, shop_key: tuple[ApiKey, str]) -> None:
    key, full_key = shop_key

    response = me(http, full_key)

    assert response.status_code == 200
    assert response.json() == {
        "kind": "api_key", "label": f"Shop orders ({key.prefix})", "user": "sam", "scopes": None,
        "allowedProcesses": None, "rateLimitPerMinute": 100,
    }


def test_a_key_carries_its_process_restriction_and_rate_limit(http: Client, staff_user: User) -> None:
    key, full_key = api_keys.api_key_create(user=staff_user, name="ERP", allowed_processes=["test-echo",
                                            "order-processing"], rate_limit_per_minute=500)

    body = me(http, full_key).json()

    assert (body["allowedProcesses"], body["rateLimitPerMinute"]) == (["order-processing", "test-echo"], 500)
    assert key.allowed_processes == ["test-echo", "order-processing"]


def test_the_key_has_the_documented_shape_and_only_its_hash_is_kept(
    http: Client, shop_key: tuple[ApiKey, str]
) -> None:
    key, full_key = shop_key
    assert KEY_SHAPE.fullmatch(full_key)
    assert key.prefix == full_key[:12]
    assert key.secret_hash == hashlib.sha256(full_key.encode()).hexdigest()

    assert me(http, full_key).status_code == 200

    secret = full_key[13:]
    for model in apps.get_models():
        for field in model._meta.concrete_fields:
            if isinstance(field, (models.CharField, models.TextField)):
                assert not model.objects.filter(**{f"{field.name}__contains": secret}).exists(), (
                    f"{model.__name__}.{field.name} holds the key")
    stored = ApiKey.objects.values().get(pk=key.pk)
    assert all(secret not in str(value) for value in stored.values())


def test_two_keys_never_share_a_prefix_or_a_secret(staff_user: User) -> None:
    made = [api_keys.api_key_create(user=staff_user, name=f"Shop {n}")[1] for n in range(20)]

    assert len({k[:12] for k in made}) == 20
    assert len({k[13:] for k in made}) == 20


# --- Refusals before the secret matched: all alike ------------------------------------------------------


def test_it_asks_for_credentials_when_there_are_none(http: Client) -> None:
    response = http.get("/api/v1/me")

    assert refusal(response) == (401, REALM, "not_authenticated", "Authentication credentials were not provided.")


@pytest.mark.parametrize("garbled", [
    "hep_", "hep_12345678", "hep_12345678_", "hep_12345678_short", "hep_XYZ12345_" + "a" * 43,
    "hep_1234567_" + "a" * 43, "hep_12345678_" + "a" * 42 + "!", "hep_12345678-" + "a" * 43,
])
def test_it_refuses_a_garbled_key_as_not_valid(http: Client, garbled: str) -> None:
    assert refusal(me(http, garbled)) == (401, REALM, "not_authenticated", NOT_VALID)


def test_an_unknown_key_and_a_tampered_one_get_the_same_answer(
    http: Client, shop_key: tuple[ApiKey, str]
) -> None:
    key, full_key = shop_key
    unknown = "hep_00000000_" + full_key[13:]

    answers = [me(http, token) for token in (unknown, tampered(full_key), full_key[:-1], full_key + "x")]

    assert [refusal(a) for a in answers] == [(401, REALM, "not_authenticated", NOT_VALID)] * 4
    assert len({a.content.replace(a.headers["X-Request-ID"].encode(), b"") for a in answers}) == 1
    key.refresh_from_db()
    assert (key.usage_count, key.last_used_at) == (0, None)


def test_a_tampered_key_is_refused_even_when_the_real_one_is_cached(
    http: Client, shop_key: tuple[ApiKey, str]
) -> None:
    _key, full_key = shop_key
    assert me(http, full_key).status_code == 200

    assert refusal(me(http, tampered(full_key))) == (401, REALM, "not_authenticated", NOT_VALID)


def test_the_secret_of_one_key_does_not_open_another(http: Client, staff_user: User,
                                                     shop_key: tuple[ApiKey, str]) -> None:
    other, _ = api_keys.api_key_create(user=staff_user, name="ERP")
    _key, full_key = shop_key

    assert refusal(me(http, f"{other.prefix}_{full_key[13:]}")) == (401, REALM, "not_authenticated", NOT_VALID)


# --- Expiry ---------------------------------------------------------------------------------------------


def test_it_rejects_an_expired_key(http: Client, staff_user: User) -> None:
    key, full_key = api_keys.api_key_create(user=staff_user, name="Trial", expires_at=timezone.now()
                                            + timedelta(days=1))
    ApiKey.objects.filter(pk=key.pk).update(expires_at=timezone.now() - timedelta(seconds=1))

    assert refusal(me(http, full_key)) == (401, REALM, "not_authenticated", "The API key has expired.")


def test_a_cached_key_still_expires_on_time(
    http: Client, staff_user: User, travel: Callable[[timedelta], datetime]
) -> None:
    _key, full_key = api_keys.api_key_create(user=staff_user, name="Trial",
                                             expires_at=timezone.now() + timedelta(minutes=5))
    assert me(http, full_key).status_code == 200

    travel(timedelta(minutes=5, seconds=1))

    assert refusal(me(http, full_key)) == (401, REALM, "not_authenticated", "The API key has expired.")


# --- Revocation -----------------------------------------------------------------------------------------


def test_a_revoked_key_stops_at_once_even_while_cached(http: Client, shop_key: tuple[ApiKey, str]) -> None:
    key, full_key = shop_key
    assert me(http, full_key).status_code == 200
    with CaptureQueriesContext(connection) as queries:
        assert me(http, full_key).status_code == 200
    assert not any('FROM "api_app_apikey"' in q["sql"] for q in queries), "the second call should use the cache"

    assert api_keys.api_key_revoke(key=key, reason="leaked in a log") is True

    assert refusal(me(http, full_key)) == (401, REALM, "not_authenticated", "The API key has been revoked.")
    assert refusal(me(http, full_key)) == (401, REALM, "not_authenticated", "The API key has been revoked.")


def test_a_key_revoked_by_another_web_process_is_refused_on_the_next_request_here(
    http: Client, staff_user: User, django_capture_on_commit_callbacks: Any
) -> None:
    with django_capture_on_commit_callbacks(execute=True):  # made and committed, as an admin would
        key, full_key = api_keys.api_key_create(user=staff_user, name="Shop orders")
    assert me(http, full_key).status_code == 200  # this process now holds a copy of the active key
    # Another web process revokes it: the row changes there, and its receiver renews the shared token.
    ApiKey.objects.filter(pk=key.pk).update(revoked_at=timezone.now())
    cache.set(API_KEYS.token_key, 4242, None)

    assert refusal(me(http, full_key)) == (401, REALM, "not_authenticated", "The API key has been revoked.")


def test_a_key_extended_by_another_web_process_is_accepted_although_this_copy_says_expired(
    http: Client, staff_user: User, travel: Callable[[timedelta], None], django_capture_on_commit_callbacks: Any
) -> None:
    with django_capture_on_commit_callbacks(execute=True):
        key, full_key = api_keys.api_key_create(user=staff_user, name="Shop orders",
                                                expires_at=timezone.now() + timedelta(minutes=5))
    assert me(http, full_key).status_code == 200
    travel(timedelta(minutes=6))
    assert refusal(me(http, full_key))[3] == "The API key has expired."
    ApiKey.objects.filter(pk=key.pk).update(expires_at=timezone.now() + timedelta(days=30))  # elsewhere
    cache.set(API_KEYS.token_key, 4343, None)

    assert me(http, full_key).status_code == 200


def test_revoking_twice_changes_nothing_the_second_time(shop_key: tuple[ApiKey, str]) -> None:
    key, _ = shop_key
    assert api_keys.api_key_revoke(key=key, reason="leaked in a log") is True
    first = ApiKey.objects.get(pk=key.pk)

    assert api_keys.api_key_revoke(key=key, reason="again") is False

    again = ApiKey.objects.get(pk=key.pk)
    assert (again.revoked_at, again.revoked_reason) == (first.revoked_at, "leaked in a log")
    assert (key.revoked_at, key.revoked_reason) == (first.revoked_at, "leaked in a log")


# --- Rotation -------------------------------------------------------------------------------------------


def test_after_rotation_both_keys_work_during_the_grace_period(
    http: Client, shop_key: tuple[ApiKey, str]
) -> None:
    old, old_key = shop_key
    assert me(http, old_key).status_code == 200
    before = timezone.now()

    new, new_key = api_keys.api_key_rotate(key=old)

    assert me(http, old_key).json()["label"] == f"Shop orders ({old.prefix})"
    assert me(http, new_key).json()["label"] == f"Shop orders ({new.prefix})"
    old.refresh_from_db()
    assert old.replaced_by == new
    assert before + timedelta(hours=24) <= old.grace_until <= timezone.now() + timedelta(hours=24)
    assert api_keys.api_key_status(key=old) == "rotated-grace"


def test_the_old_key_is_refused_once_its_24_hour_grace_is_over(
    http: Client, shop_key: tuple[ApiKey, str], travel: Callable[[timedelta], datetime]
) -> None:
    old, old_key = shop_key
    _new, new_key = api_keys.api_key_rotate(key=old)
    assert me(http, old_key).status_code == 200

    travel(timedelta(hours=24, seconds=1))

    assert refusal(me(http, old_key)) == (
        401, REALM, "not_authenticated", "The API key was rotated and its grace period is over; use the new key.")
    assert me(http, new_key).status_code == 200


def test_the_old_key_is_refused_when_its_grace_ended_in_the_past(
    http: Client, shop_key: tuple[ApiKey, str]
) -> None:
    old, old_key = shop_key
    _new, new_key = api_keys.api_key_rotate(key=old, grace=timedelta(hours=2))
    ApiKey.objects.filter(pk=old.pk).update(grace_until=timezone.now() - timedelta(seconds=1))

    assert refusal(me(http, old_key))[3] == "The API key was rotated and its grace period is over; use the new key."
    assert me(http, new_key).status_code == 200


def test_rotating_without_grace_stops_the_cached_old_key_at_once(
    http: Client, shop_key: tuple[ApiKey, str]
) -> None:
    old, old_key = shop_key
    assert me(http, old_key).status_code == 200

    _new, new_key = api_keys.api_key_rotate(key=old, grace=timedelta(0))

    assert refusal(me(http, old_key))[0:2] == (401, REALM)
    assert me(http, new_key).status_code == 200


def test_the_new_key_keeps_the_old_keys_settings(http: Client, staff_user: User, admin_user: User) -> None:
    expires = timezone.now() + timedelta(days=90)
    old, _ = api_keys.api_key_create(user=staff_user, name="ERP", expires_at=expires,
                                     allowed_processes=["order-processing"], allowed_ips=["203.0.113.0/24"],
                                     rate_limit_per_minute=30)

    new, new_key = api_keys.api_key_rotate(key=old, created_by=admin_user)

    assert (new.user, new.name, new.expires_at, new.allowed_processes, new.allowed_ips, new.rate_limit_per_minute,
            new.created_by) == (staff_user, "ERP", expires, ["order-processing"], ["203.0.113.0/24"], 30, admin_user)
    assert new.prefix != old.prefix
    assert me(http, new_key, REMOTE_ADDR="203.0.113.5").json()["allowedProcesses"] == ["order-processing"]


@pytest.mark.parametrize(("state", "message"), [
    ("revoked", "{prefix} is revoked; create a new key instead."),
    ("expired", "{prefix} is expired; create a new key instead."),
    ("rotated", "{prefix} was already rotated; rotate its replacement instead."),
])
def test_it_refuses_to_rotate_a_key_that_no_longer_works_or_was_rotated(
    shop_key: tuple[ApiKey, str], state: str, message: str
) -> None:
    key, _ = shop_key
    if state == "revoked":
        api_keys.api_key_revoke(key=key)
    elif state == "expired":
        ApiKey.objects.filter(pk=key.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
        key.refresh_from_db()
    else:
        api_keys.api_key_rotate(key=key)
    keys_before = ApiKey.objects.count()

    with pytest.raises(api_keys.ApiKeyError) as refused:
        api_keys.api_key_rotate(key=key)

    assert refused.value.message == message.format(prefix=key.prefix)
    assert ApiKey.objects.count() == keys_before


def test_a_rotation_racing_another_rotation_changes_nothing(shop_key: tuple[ApiKey, str]) -> None:
    key, _ = shop_key
    stale_copy = ApiKey.objects.get(pk=key.pk)
    first, _ = api_keys.api_key_rotate(key=key)

    with pytest.raises(api_keys.ApiKeyError) as refused:
        api_keys.api_key_rotate(key=stale_copy)

    assert refused.value.message == f"{key.prefix} was rotated or revoked meanwhile; nothing changed."
    assert list(ApiKey.objects.order_by("pk").values_list("pk", flat=True)) == [key.pk, first.pk]
    assert ApiKey.objects.get(pk=key.pk).replaced_by_id == first.pk


# --- Where a key may be used from -----------------------------------------------------------------------


@pytest.fixture
def office_key(staff_user: User) -> str:
    return api_keys.api_key_create(user=staff_user, name="Office ERP",
                                   allowed_ips=["203.0.113.0/24", "2001:db8::/32"])[1]


@pytest.mark.parametrize("address", ["203.0.113.9", "203.0.113.255", "2001:db8::7", "::ffff:203.0.113.9"])
def test_a_key_restricted_to_ranges_works_from_inside_them(http: Client, office_key: str, address: str) -> None:
    assert me(http, office_key, REMOTE_ADDR=address).status_code == 200


@pytest.mark.parametrize("address", ["198.51.100.7", "203.0.114.1", "2001:db9::1", "127.0.0.1"])
def test_a_key_restricted_to_ranges_is_refused_from_outside(http: Client, office_key: str, address: str) -> None:
    assert refusal(me(http, office_key, REMOTE_ADDR=address)) == (
        401, REALM, "not_authenticated", f"This API key may not be used from {address}.")


def test_the_address_check_also_applies_to_a_cached_key(http: Client, office_key: str) -> None:
    assert me(http, office_key, REMOTE_ADDR="203.0.113.9").status_code == 200

    assert refusal(me(http, office_key, REMOTE_ADDR="198.51.100.7"))[3] == (
        "This API key may not be used from 198.51.100.7.")


# --- The key's user -------------------------------------------------------------------------------------


def test_it_refuses_the_key_of_an_inactive_user(http: Client, shop_key: tuple[ApiKey, str],
                                                staff_user: User) -> None:
    _key, full_key = shop_key
    staff_user.is_active = False
    staff_user.save(update_fields=["is_active"])

    assert refusal(me(http, full_key)) == (
        401, REALM, "not_authenticated", "The API key's user account is not active.")


def test_deactivating_the_user_stops_a_key_already_in_use_on_the_next_request(
    http: Client, shop_key: tuple[ApiKey, str], staff_user: User
) -> None:
    _key, full_key = shop_key
    assert me(http, full_key).status_code == 200  # the key row and its user are now copied in this process

    admin_copy = User.objects.get(pk=staff_user.pk)
    admin_copy.is_active = False
    admin_copy.save()  # as the admin's user page saves it

    assert refusal(me(http, full_key)) == (
        401, REALM, "not_authenticated", "The API key's user account is not active.")


def test_a_permission_taken_from_the_keys_group_refuses_the_very_next_start(
    http: Client, outsider: User, django_capture_on_commit_callbacks: Any
) -> None:
    """The key row and its user are shared copies; what Django caches of a user's permissions must not be."""
    desk = Group.objects.create(name="Order desk")
    may_start = Permission.objects.get(content_type__app_label="executions", codename="execute_process")
    desk.permissions.add(may_start)
    outsider.groups.add(desk)
    with django_capture_on_commit_callbacks(execute=True):
        _key, full_key = api_keys.api_key_create(user=outsider, name="Order desk")
    auth = {"HTTP_AUTHORIZATION": f"Bearer {full_key}"}
    assert http.get("/api/v1/processes/", **auth).status_code == 200  # asks for the user's permissions
    start = lambda: http.post("/api/v1/processes/order-processing/execute",  # noqa: E731
                              {"parameters": {"orderId": "ORD-2024-001", "priority": "High"}},
                              content_type="application/json", **auth)
    assert start().status_code == 202

    desk.permissions.remove(may_start)  # saves no user, renews nothing

    assert start().status_code == 403


def test_it_makes_no_key_for_an_inactive_user(staff_user: User) -> None:
    staff_user.is_active = False
    staff_user.save(update_fields=["is_active"])

    with pytest.raises(api_keys.ApiKeyError) as refused:
        api_keys.api_key_create(user=staff_user, name="Shop orders")

    assert (refused.value.message, refused.value.field) == ("The user 'sam' is not active.", "user")
    assert not ApiKey.objects.exists()


# --- Use is recorded ------------------------------------------------------------------------------------


def test_it_records_when_and_how_often_a_key_is_used_writing_the_row_at_most_once_a_window(
    http: Client, shop_key: tuple[ApiKey, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(api_keys, "USAGE_WRITE_SECONDS", 1)
    key, full_key = shop_key
    before = timezone.now()

    assert me(http, full_key).status_code == 200

    key.refresh_from_db()
    assert key.usage_count == 1
    assert before <= key.last_used_at <= timezone.now()
    first_use = key.last_used_at

    for _ in range(2):
        assert me(http, full_key).status_code == 200
    key.refresh_from_db()
    assert (key.usage_count, key.last_used_at) == (1, first_use)  # not written yet...
    assert api_keys.api_key_usage(key=key) == 3  # ...but counted
    assert [k.usage_count for k in api_keys.api_keys_list()] == [3]

    time.sleep(2.1)  # the window is 1 s; the database cache keeps expiry times to the whole second
    assert me(http, full_key).status_code == 200

    key.refresh_from_db()
    assert key.usage_count == 4
    assert key.last_used_at > first_use
    assert api_keys.api_key_usage(key=key) == 4


def test_refused_calls_are_not_counted_as_use(http: Client, shop_key: tuple[ApiKey, str]) -> None:
    key, full_key = shop_key
    api_keys.api_key_revoke(key=key)

    me(http, full_key)
    me(http, tampered(full_key))

    key.refresh_from_db()
    assert (key.usage_count, key.last_used_at, api_keys.api_key_usage(key=key)) == (0, None, 0)


# --- Settings are checked -------------------------------------------------------------------------------


@pytest.mark.parametrize(("settings", "field", "message"), [
    ({"name": "  "}, "name", "Give the key a name: the integration that will use it."),
    ({"name": "x" * 101}, "name", "The name is longer than 100 characters."),
    ({"allowed_ips": ["10.0.0.300/8"]}, "allowed_ips", "'10.0.0.300/8' is not an IP address or CIDR range, "
                                                       "e.g. 203.0.113.0/24."),
    ({"allowed_processes": ["no-such-process"]}, "allowed_processes", "There is no process with id 'no-such-process'."),
    ({"rate_limit_per_minute": 0}, "rate_limit_per_minute",
     "The rate limit must be between 1 and 1000000 requests per minute."),
    ({"expires_at": "past"}, "expires_at", "The expiry must be in the future."),
])
def test_it_refuses_settings_that_make_no_sense(staff_user: User, settings: dict[str, Any], field: str,
                                               message: str) -> None:
    if settings.get("expires_at") == "past":
        settings = {"expires_at": timezone.now() - timedelta(minutes=1)}

    with pytest.raises(api_keys.ApiKeyError) as refused:
        api_keys.api_key_create(user=staff_user, **{"name": "Shop orders", **settings})

    assert (refused.value.field, refused.value.message) == (field, message)
    assert not ApiKey.objects.exists()


def test_it_stores_address_ranges_in_their_plain_form(staff_user: User) -> None:
    key, _ = api_keys.api_key_create(user=staff_user, name="Office",
                                     allowed_ips=[" 10.1.2.3 ", "10.1.2.3/24", "2001:DB8::/32", "10.1.2.0/24"])

    assert key.allowed_ips == ["10.1.2.3/32", "10.1.2.0/24", "2001:db8::/32"]


def test_an_edit_takes_effect_on_the_next_call_even_while_cached(
    http: Client, shop_key: tuple[ApiKey, str]
) -> None:
    key, full_key = shop_key
    assert me(http, full_key).status_code == 200

    api_keys.api_key_update(key=key, name="Shop orders (EU)", expires_at=None, allowed_processes=["test-echo"],
                            allowed_ips=["203.0.113.0/24"], rate_limit_per_minute=10)

    assert refusal(me(http, full_key))[3] == "This API key may not be used from 127.0.0.1."
    assert me(http, full_key, REMOTE_ADDR="203.0.113.1").json() == {
        "kind": "api_key", "label": f"Shop orders (EU) ({key.prefix})", "user": "sam", "scopes": None,
        "allowedProcesses": ["test-echo"], "rateLimitPerMinute": 10,
    }
