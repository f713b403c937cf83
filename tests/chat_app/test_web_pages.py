"""The web chat's pages: sign-in, the full-page chat, the widget script and account linking."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth.models import User
from django.test import Client

from chat_app.models import ChatIdentity
from tests.api_app.helpers import signed_in
from tests.chat_app.conftest import Person
from tests.conftest import PASSWORD

pytestmark = pytest.mark.django_db


def test_the_chat_page_asks_anonymous_visitors_to_sign_in_and_signs_in_non_staff_users(staff_user: User) -> None:
    browser = Client(HTTP_HOST="localhost")
    assert browser.get("/chat/").url == "/accounts/login/?next=/chat/"

    response = browser.post("/accounts/login/?next=/chat/", {"username": "sam", "password": PASSWORD, "next": "/chat/"})

    assert response.url == "/chat/"
    page = browser.get("/chat/")
    assert page.status_code == 200
    assert b'<div id="heptora-chat" data-mode="page"></div>' in page.content
    assert b'<script src="/chat/widget.js"></script>' in page.content


def test_a_wrong_password_is_refused() -> None:
    response = Client(HTTP_HOST="localhost").post("/accounts/login/", {"username": "nobody", "password": "x"})
    assert response.status_code == 200
    assert b"We could not sign you in" in response.content


def test_the_widget_script_carries_its_configuration_and_sets_the_csrf_cookie(staff_user: User) -> None:
    response = signed_in(staff_user).get("/chat/widget.js")
    assert response.status_code == 200
    assert response["Content-Type"] == "application/javascript; charset=utf-8"
    body = response.content.decode()
    assert body.startswith('window.HEPTORA_CHAT_CONFIG = {"api": "/api/v1/chat/messages", '
                           '"css": "/static/chat_app/widget.css", "login": "/accounts/login/", "signedIn": true};')
    assert 'role: "log", "aria-live": "polite"' in body
    assert "csrftoken" in response.cookies
    anonymous = Client(HTTP_HOST="localhost").get("/chat/widget.js").content.decode()
    assert '"signedIn": false' in anonymous


def test_the_link_page_gives_a_one_time_code_that_links_a_chat_identity(staff_user: User) -> None:
    browser = signed_in(staff_user)
    assert b"Get a one-time code" in browser.get("/chat/link/").content

    page = browser.post("/chat/link/").content.decode()

    code = page.split("<code>link ", 1)[1].split("</code>", 1)[0]
    assert len(code) == 9 and code[4] == "-"
    telegram = Person(channel="telegram", identity="777")
    assert telegram.says(f"link {code}")[0].startswith("Linked: this telegram account now acts as sam")
    identity = ChatIdentity.objects.get(channel="telegram")
    assert identity.user == staff_user
    assert "telegram: 777" in browser.get("/chat/link/").content.decode()

    browser.post("/chat/link/", {"unlink": identity.pk})

    identity.refresh_from_db()
    assert identity.user is None


def test_nobody_unlinks_someone_elses_identity(staff_user: User, outsider: User) -> None:
    identity = ChatIdentity.objects.create(channel="slack", external_id="U9", user=staff_user)
    signed_in(outsider).post("/chat/link/", {"unlink": identity.pk})
    signed_in(outsider).post("/chat/link/", {"unlink": "not-a-number"})
    identity.refresh_from_db()
    assert identity.user == staff_user


def test_the_link_page_needs_a_signed_in_person(settings: Any) -> None:
    response = Client(HTTP_HOST="localhost").post("/chat/link/")
    assert response.status_code == 302 and response.url.startswith("/accounts/login/")
