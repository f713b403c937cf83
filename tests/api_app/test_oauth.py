"""An integrator's system signs in with OAuth 2.0 client credentials: token from /o/token/, then the API.

The client acts as its owner (sam, a Staff member allowed to start the test processes); its scopes can only
narrow what sam may do.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.http import HttpResponse
from django.test import Client
from django.utils import timezone
from oauth2_provider.models import AccessToken, Application
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.test import APIRequestFactory
from rest_framework.views import APIView

from api_app.authentication import BearerAuthentication
from api_app.callers import SCOPE_EXECUTE, ApiCaller
from api_app.oauth import oauth_client_create
from api_app.permissions import HasScope
from tests.api_app.conftest import oauth_token_request

BOTH = "process:execute process:read"
REFUSED = "The access token is not valid or has expired."
NO_OWNER = "This OAuth client has no active owner account to act as; ask an administrator to assign one."

pytestmark = pytest.mark.django_db


class StandInExecuteView(APIView):
    """Stands in for POST /api/v1/processes/{id}/execute until it lands: it needs process:execute."""

    permission_classes = [HasScope]
    required_scope = SCOPE_EXECUTE

    def post(self, request: Request) -> Response:
        return Response({"accepted": True}, status=202)


@pytest.fixture
def http() -> Client:
    return Client(HTTP_HOST="localhost")


@pytest.fixture
def erp(staff_user: User) -> tuple[Application, str]:
    """The ERP's client, registered for sam; returns it with its plain secret."""
    return oauth_client_create(owner=staff_user, name="ERP orders")


def token_for(http: Client, erp: tuple[Application, str], scope: str | None = BOTH) -> str:
    application, secret = erp
    response = oauth_token_request(http, application.client_id, secret, scope)
    assert response.status_code == 200, response.content
    return str(response.json()["access_token"])


def me(http: Client, token: str) -> HttpResponse:
    return http.get("/api/v1/me", HTTP_AUTHORIZATION=f"Bearer {token}")


def assert_refused(response: HttpResponse, message: str) -> None:
    assert response.status_code == 401
    assert response["WWW-Authenticate"] == 'Bearer realm="heptora"'
    assert response.json() == {
        "error": {"code": "not_authenticated", "message": message, "requestId": response["X-Request-ID"]}
    }


def stand_in_execute(token: str) -> Response:
    request = APIRequestFactory().post("/stand-in/execute", {}, format="json", SERVER_NAME="localhost",
                                       HTTP_AUTHORIZATION=f"Bearer {token}")
    response: Response = StandInExecuteView.as_view()(request)
    return response


# --- Getting a token and using it ---------------------------------------------------------------------


def test_a_client_gets_a_token_and_the_api_takes_it_for_its_owner(http: Client, erp: tuple[Application, str]) -> None:
    application, secret = erp

    response = oauth_token_request(http, application.client_id, secret, BOTH)

    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"access_token", "token_type", "expires_in", "scope"}
    assert (body["token_type"], body["expires_in"], body["scope"]) == ("Bearer", 3600, BOTH)
    token = AccessToken.objects.get()
    assert (token.application, token.user, token.scope) == (application, None, BOTH)

    whoami = me(http, body["access_token"])

    assert whoami.status_code == 200
    assert whoami.json() == {
        "kind": "oauth_client",
        "label": "oauth:ERP orders",
        "user": "sam",
        "scopes": ["process:execute", "process:read"],
        "allowedProcesses": None,
        "rateLimitPerMinute": 100,
    }


def test_a_token_carries_only_the_scopes_the_client_asked_for(http: Client, erp: tuple[Application, str]) -> None:
    token = token_for(http, erp, scope="process:read")

    assert me(http, token).json()["scopes"] == ["process:read"]


def test_a_client_that_asks_for_no_scope_may_only_read(http: Client, erp: tuple[Application, str]) -> None:
    application, secret = erp
    response = oauth_token_request(http, application.client_id, secret, scope=None)

    assert response.json()["scope"] == "process:read"
    assert me(http, response.json()["access_token"]).json()["scopes"] == ["process:read"]


def test_the_client_is_counted_by_its_client_id_not_its_address(http: Client, erp: tuple[Application, str]) -> None:
    """A client-credentials token has no user of its own: its rate limit bucket is the client."""
    application, _ = erp
    token = token_for(http, erp)
    request = APIRequestFactory().get("/api/v1/me", SERVER_NAME="localhost", HTTP_AUTHORIZATION=f"Bearer {token}")

    user, caller = BearerAuthentication().authenticate(Request(request))  # type: ignore[misc]

    assert isinstance(caller, ApiCaller)
    assert user.get_username() == "sam"
    assert caller.actor.user == user
    assert (caller.actor.kind, caller.actor.label) == ("oauth_client", "oauth:ERP orders")
    assert caller.rate_key == f"oauth:{application.client_id}"
    assert caller.scopes == frozenset({"process:execute", "process:read"})


def test_an_unnamed_client_is_labelled_by_its_client_id(http: Client, staff_user: User) -> None:
    application, secret = oauth_client_create(owner=staff_user, name="")

    whoami = me(http, token_for(http, (application, secret)))

    assert whoami.json()["label"] == f"oauth:{application.client_id}"


def test_the_operator_can_set_the_rate_limit_for_oauth_clients(http: Client, erp: tuple[Application, str],
                                                               settings: Any) -> None:
    settings.HEPTORA_API_RATE_LIMIT = 250

    assert me(http, token_for(http, erp)).json()["rateLimitPerMinute"] == 250


# --- The token endpoint refuses bad client credentials ------------------------------------------------


def test_the_token_endpoint_refuses_a_wrong_client_secret(http: Client, erp: tuple[Application, str]) -> None:
    application, _ = erp

    response = oauth_token_request(http, application.client_id, "not-the-secret", BOTH)

    assert response.status_code == 401
    assert response.json() == {"error": "invalid_client"}
    assert AccessToken.objects.count() == 0


def test_the_token_endpoint_refuses_an_unknown_client(http: Client, erp: tuple[Application, str]) -> None:
    _, secret = erp

    response = oauth_token_request(http, "no-such-client", secret, BOTH)

    assert response.status_code == 401
    assert response.json() == {"error": "invalid_client"}
    assert AccessToken.objects.count() == 0


def test_the_token_endpoint_refuses_a_scope_we_do_not_have(http: Client, erp: tuple[Application, str]) -> None:
    application, secret = erp

    response = oauth_token_request(http, application.client_id, secret, "process:execute admin")

    assert response.status_code == 400
    assert response.json() == {"error": "invalid_scope"}
    assert AccessToken.objects.count() == 0


# --- The API refuses tokens it should not honour ----------------------------------------------------------


def test_an_expired_token_is_refused(http: Client, erp: tuple[Application, str]) -> None:
    token = token_for(http, erp)
    AccessToken.objects.update(expires=timezone.now() - timedelta(seconds=1))

    assert_refused(me(http, token), REFUSED)


def test_a_revoked_token_is_refused(http: Client, erp: tuple[Application, str]) -> None:
    application, secret = erp
    token = token_for(http, erp)

    revoked = http.post("/o/revoke_token/", {"token": token, "client_id": application.client_id,
                                             "client_secret": secret})

    assert revoked.status_code == 200
    assert AccessToken.objects.count() == 0
    assert_refused(me(http, token), REFUSED)


def test_a_made_up_token_is_refused(http: Client, erp: tuple[Application, str]) -> None:
    token_for(http, erp)

    assert_refused(me(http, "Zm9vYmFyYmF6cXV4MTIzNDU2Nzg5MA"), REFUSED)


def test_a_token_is_refused_once_its_owner_is_deactivated(http: Client, erp: tuple[Application, str],
                                                          staff_user: User) -> None:
    token = token_for(http, erp)
    staff_user.is_active = False
    staff_user.save(update_fields=["is_active"])

    assert_refused(me(http, token), NO_OWNER)


def test_a_token_of_a_client_without_an_owner_is_refused(http: Client, erp: tuple[Application, str]) -> None:
    application, _ = erp
    token = token_for(http, erp)
    Application.objects.filter(pk=application.pk).update(user=None)

    assert_refused(me(http, token), NO_OWNER)


# --- Scopes decide which calls a token may make -----------------------------------------------------------


def test_a_read_only_token_may_not_start_a_process(http: Client, erp: tuple[Application, str]) -> None:
    token = token_for(http, erp, scope="process:read")

    response = stand_in_execute(token)

    assert response.status_code == 403
    assert response.data == {"error": {"code": "permission_denied",
                                       "message": "This token lacks the scope 'process:execute' this call needs.",
                                       "requestId": ""}}


def test_an_execute_token_may_start_a_process(http: Client, erp: tuple[Application, str]) -> None:
    token = token_for(http, erp, scope="process:execute")

    response = stand_in_execute(token)

    assert (response.status_code, response.data) == (202, {"accepted": True})


def test_an_execute_token_may_also_read(http: Client, erp: tuple[Application, str]) -> None:
    token = token_for(http, erp, scope="process:execute")

    whoami = me(http, token)

    assert (whoami.status_code, whoami.json()["scopes"]) == (200, ["process:execute"])
