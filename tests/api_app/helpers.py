"""Helpers shared by the REST API endpoint tests (execute, executions, processes, batch/validate, conventions).

Plain functions only; the autouse `fresh_rate_limits` fixture lives in tests/api_app/conftest.py.
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth.models import Group, User
from django.http import HttpResponse
from django.test import Client
from rest_framework.test import APIClient

from api_app.callers import ApiCaller
from api_app.models import IdempotencyRecord
from executions.actors import Actor
from executions.models import ActorKind, Execution, ExecutionEvent

EXECUTE = "/api/v1/processes/order-processing/execute"
# The request body of the product documentation ("Pass process-specific variables through the API").
DOC_BODY = {
    "processId": "order-processing",
    "parameters": {
        "orderId": "ORD-2024-001",
        "customerId": "CUST-5432",
        "amount": 1500.00,
        "priority": "high",
        "metadata": {"source": "mobile-app", "region": "US-West"},
    },
    "notifyEmail": "user@company.com",
    "timeout": 300,
}
SHOPIFY_KEY_LABEL = "Shopify orders (hep_0000test)"


def signed_in(user: User) -> Client:
    """A browser session logged in as ``user``."""
    client = Client(HTTP_HOST="localhost")
    client.force_login(user)
    return client


def integration(user: User, *, processes: set[str] | None = None, scopes: set[str] | None = None,
                rate_limit: int = 100, rate_key: str = "api_key:test", label: str = SHOPIFY_KEY_LABEL) -> APIClient:
    """An integrator's client authenticated as an API caller acting for ``user``.

    ``processes``/``scopes`` None means no restriction; ``rate_limit`` is per minute, counted in ``rate_key``'s
    bucket; ``label`` is the actor label an API key would give.
    """
    caller = ApiCaller(
        actor=Actor.for_user(user, kind=ActorKind.API_KEY, label=label),
        rate_key=rate_key,
        rate_limit_per_minute=rate_limit,
        allowed_processes=frozenset(processes) if processes is not None else None,
        scopes=frozenset(scopes) if scopes is not None else None,
    )
    client = APIClient(HTTP_HOST="localhost")
    client.force_authenticate(user=user, token=caller)
    return client


def post(client: Client, body: Any, *, path: str = EXECUTE, **headers: Any) -> HttpResponse:
    """POST ``body`` as JSON to ``path`` (order-processing's execute by default); ``headers`` as ``HTTP_…``."""
    return client.post(path, body, content_type="application/json", **headers)


def error_of(response: HttpResponse) -> tuple[int, str, str]:
    """The status code, error code and message of an error response."""
    error = response.json()["error"]
    return response.status_code, error["code"], error["message"]


def fields_of(response: HttpResponse) -> dict[str, list[str]]:
    """The per-field messages of an error response."""
    return response.json()["error"]["fields"]


def assert_nothing_started() -> None:
    """No execution, event or idempotency record was written."""
    assert Execution.objects.count() == 0
    assert ExecutionEvent.objects.count() == 0
    assert IdempotencyRecord.objects.count() == 0


def links_of(execution_id: str) -> dict[str, str]:
    """The `links` an execution's representation carries."""
    return {
        "self": f"/api/v1/executions/{execution_id}",
        "events": f"/api/v1/executions/{execution_id}/events",
        "cancel": f"/api/v1/executions/{execution_id}/cancel",
    }


def member_of_staff(username: str) -> User:
    """A new user in the Staff group."""
    user = User.objects.create_user(username, f"{username}@example.com", "pw")
    user.groups.add(Group.objects.get(name="Staff"))
    return user
