"""Ada, the admin, makes keys for integrations in the Django admin, watches their use, revokes and rotates."""

from __future__ import annotations

import re
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.test import Client
from django.urls import reverse

from api_app import api_keys
from api_app.models import ApiKey

pytestmark = pytest.mark.django_db

KEYS = reverse("admin:api_app_apikey_changelist")
ADD = reverse("admin:api_app_apikey_add")
KEY_IN_MESSAGE = re.compile(r"(hep_[0-9a-f]{8}_[A-Za-z0-9]{43})")


@pytest.fixture
def as_admin(admin_user: User) -> Client:
    client = Client(HTTP_HOST="localhost")
    client.force_login(admin_user)
    return client


@pytest.fixture
def shop_key(staff_user: User) -> tuple[ApiKey, str]:
    return api_keys.api_key_create(user=staff_user, name="Shop orders")


def messages_of(response: Any) -> list[str]:
    return [str(m) for m in response.context["messages"]]


def me_status(full_key: str, address: str = "127.0.0.1") -> int:
    return Client(HTTP_HOST="localhost").get("/api/v1/me", HTTP_AUTHORIZATION=f"Bearer {full_key}",
                                             REMOTE_ADDR=address).status_code


def change_url(key: ApiKey) -> str:
    return reverse("admin:api_app_apikey_change", args=[key.pk])


def add_form(user: User, **fields: str) -> dict[str, Any]:
    return {"user": user.pk, "name": "Shop orders", "expires_at_0": "", "expires_at_1": "",
            "allowed_processes": "", "allowed_ips": "", "rate_limit_per_minute": "100", **fields}


def test_adding_a_key_shows_it_once_and_it_works(as_admin: Client, staff_user: User, admin_user: User) -> None:
    response = as_admin.post(ADD, add_form(staff_user, allowed_processes="order-processing\ntest-echo",
                                           allowed_ips="203.0.113.0/24, 198.51.100.7"), follow=True)

    key = ApiKey.objects.get()
    shown = [m for m in messages_of(response) if KEY_IN_MESSAGE.search(m)]
    assert shown == [f"The new API key is {KEY_IN_MESSAGE.search(shown[0])[1]} — copy it now: it will not be "
                     "shown again."]
    full_key = KEY_IN_MESSAGE.search(shown[0])[1]
    assert response.redirect_chain == [(KEYS, 302)]
    assert (key.user, key.created_by, key.allowed_processes, key.allowed_ips) == (
        staff_user, admin_user, ["order-processing", "test-echo"], ["203.0.113.0/24", "198.51.100.7/32"])
    assert me_status(full_key, "203.0.113.20") == 200

    for page in (as_admin.get(KEYS).content.decode(), as_admin.get(change_url(key)).content.decode()):
        assert full_key[13:] not in page
        assert key.secret_hash not in page
        assert key.prefix in page


def test_the_add_form_refuses_bad_settings_and_makes_no_key(as_admin: Client, staff_user: User) -> None:
    response = as_admin.post(ADD, add_form(staff_user, allowed_ips="office network"))

    assert response.status_code == 200
    assert response.context["adminform"].form.errors == {
        "allowed_ips": ["'office network' is not an IP address or CIDR range, e.g. 203.0.113.0/24."]}
    assert not ApiKey.objects.exists()


def test_the_add_form_refuses_an_unknown_process(as_admin: Client, staff_user: User) -> None:
    response = as_admin.post(ADD, add_form(staff_user, allowed_processes="order-processing\nno-such-process"))

    assert response.context["adminform"].form.errors == {
        "allowed_processes": ["There is no process with id 'no-such-process'."]}
    assert not ApiKey.objects.exists()


def test_the_list_shows_status_last_use_and_uses(as_admin: Client, shop_key: tuple[ApiKey, str]) -> None:
    key, full_key = shop_key
    for _ in range(3):
        assert me_status(full_key) == 200

    response = as_admin.get(KEYS)

    row = next(r for r in response.context["cl"].result_list if r.pk == key.pk)
    admin = response.context["cl"].model_admin
    assert (admin.status(row), admin.uses(row)) == ("active", 3)
    assert b"Shop orders" in response.content
    assert key.secret_hash.encode() not in response.content


def test_the_change_form_keeps_the_prefix_and_history_read_only_and_never_shows_the_hash(
    as_admin: Client, shop_key: tuple[ApiKey, str]
) -> None:
    key, _ = shop_key

    form = as_admin.get(change_url(key)).context["adminform"].form

    assert sorted(form.fields) == ["allowed_ips", "allowed_processes", "expires_at", "name", "rate_limit_per_minute"]


def test_editing_a_key_takes_effect_on_its_next_call(as_admin: Client, shop_key: tuple[ApiKey, str]) -> None:
    key, full_key = shop_key
    assert me_status(full_key) == 200

    response = as_admin.post(change_url(key), {"name": "Shop orders", "expires_at_0": "", "expires_at_1": "",
                                               "allowed_processes": "", "allowed_ips": "203.0.113.0/24",
                                               "rate_limit_per_minute": "100"})

    assert response.status_code == 302
    key.refresh_from_db()
    assert key.allowed_ips == ["203.0.113.0/24"]
    assert (me_status(full_key), me_status(full_key, "203.0.113.1")) == (401, 200)


def test_the_revoke_action_stops_the_selected_keys(as_admin: Client, shop_key: tuple[ApiKey, str]) -> None:
    key, full_key = shop_key
    assert me_status(full_key) == 200

    response = as_admin.post(KEYS, {"action": "revoke_keys", "_selected_action": [key.pk]}, follow=True)

    assert messages_of(response) == [f"Revoked {key.prefix}."]
    key.refresh_from_db()
    assert key.revoked_reason == "revoked in the admin by ada"
    assert me_status(full_key) == 401


def test_the_rotate_action_shows_the_new_key_once_and_the_old_one_keeps_working(
    as_admin: Client, shop_key: tuple[ApiKey, str]
) -> None:
    old, old_key = shop_key

    response = as_admin.post(KEYS, {"action": "rotate_keys", "_selected_action": [old.pk]}, follow=True)

    [message] = messages_of(response)
    new_key = KEY_IN_MESSAGE.search(message)[1]
    old.refresh_from_db()
    assert old.replaced_by is not None and new_key.startswith(old.replaced_by.prefix)
    assert message.startswith(f"{old.prefix} was rotated; the new key is {new_key} — copy it now")
    assert (me_status(old_key), me_status(new_key)) == (200, 200)


def test_the_rotate_action_explains_a_key_it_cannot_rotate(as_admin: Client, shop_key: tuple[ApiKey, str]) -> None:
    key, _ = shop_key
    api_keys.api_key_revoke(key=key)

    response = as_admin.post(KEYS, {"action": "rotate_keys", "_selected_action": [key.pk]}, follow=True)

    assert messages_of(response) == [f"{key.prefix} is revoked; create a new key instead."]
    assert ApiKey.objects.count() == 1


def test_keys_cannot_be_deleted_only_revoked(as_admin: Client, shop_key: tuple[ApiKey, str]) -> None:
    key, _ = shop_key

    assert as_admin.get(reverse("admin:api_app_apikey_delete", args=[key.pk])).status_code == 403
    actions = [name for name, _label in as_admin.get(KEYS).context["action_form"].fields["action"].choices]
    assert actions == ["", "revoke_keys", "rotate_keys"]
    assert ApiKey.objects.filter(pk=key.pk).exists()
