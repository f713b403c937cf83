"""GET /api/v1/processes/ and /api/v1/processes/{processId}/: an integrator finds what it may start and how.

The list holds only the processes the caller may start (the same access rule every front door asks); the
detail publishes the parameters as JSON Schema generated from the one definition that validates them.
"""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth.models import Group, Permission, User
from django.test import Client

from api_app.callers import SCOPE_READ
from executions.models import Execution, Process
from executions.services import process_pause
from tests.api_app.helpers import error_of, integration, signed_in

pytestmark = pytest.mark.django_db

EVERY_PROCESS = [
    "data-sync", "failure-demo", "monthly-report", "order-processing", "report-generation", "sensitive-report",
    "test-echo", "test-once", "test-raise", "test-sleep", "test-steps",
]
ORDER_SUMMARY = {
    "processId": "order-processing",
    "name": "Order Processing",
    "description": "Validate an order, reserve stock, charge the payment, fulfil it and confirm it.",
    "steps": 5,
    "defaultTimeout": 300,
    "paused": False,
    "executeUrl": "/api/v1/processes/order-processing/execute",
}
ORDER_PARAMETERS_SCHEMA = {
    "type": "object",
    "properties": {
        "orderId": {"type": "string", "title": "Order ID", "minLength": 10, "maxLength": 15, "pattern": "^ORD-",
                    "example": "ORD-2024-001"},
        "priority": {"type": "string", "enum": ["Low", "Medium", "High"], "title": "Priority"},
        "customerName": {"type": "string", "title": "Customer Name", "maxLength": 200},
        "customerId": {"type": "string", "title": "Customer ID", "maxLength": 50},
        "amount": {"type": "number", "title": "Amount", "minimum": 0},
        "specialInstructions": {"type": "string", "title": "Special Instructions", "maxLength": 1000,
                                "description": "Only used when priority is High."},
        "emailNotification": {"type": "boolean", "title": "Email notification"},
        "metadata": {"type": "object", "title": "Metadata"},
    },
    "additionalProperties": False,
    "required": ["orderId", "priority"],
}


# --- Helpers and fixtures -------------------------------------------------------------------------------


def listed(response: Any) -> list[str]:
    assert response.status_code == 200, response.content
    return [process["processId"] for process in response.json()]


# --- The list -------------------------------------------------------------------------------------------


def test_a_staff_member_sees_only_the_processes_their_group_may_start(staff_user: User) -> None:
    response = signed_in(staff_user).get("/api/v1/processes/")

    assert listed(response) == ["order-processing", "test-echo", "test-steps"]
    assert response.json()[0] == ORDER_SUMMARY


def test_someone_allowed_to_start_nothing_sees_an_empty_list(outsider: User) -> None:
    assert listed(signed_in(outsider).get("/api/v1/processes/")) == []


def test_a_superuser_sees_every_registered_process(admin_user: User) -> None:
    assert listed(signed_in(admin_user).get("/api/v1/processes/")) == EVERY_PROCESS


def test_a_manager_whose_group_may_start_processes_globally_sees_them_all(manager: User, managers: Group) -> None:
    managers.permissions.add(Permission.objects.get(codename="execute_process"))

    assert listed(signed_in(manager).get("/api/v1/processes/")) == EVERY_PROCESS


def test_a_key_restricted_to_some_processes_lists_only_those_its_user_may_start(staff_user: User) -> None:
    client = integration(staff_user, processes={"test-echo", "report-generation"})

    # report-generation is allowed by the key but not by sam's permissions: the stricter rule wins.
    assert listed(client.get("/api/v1/processes/")) == ["test-echo"]


def test_a_read_only_token_may_list_processes(staff_user: User) -> None:
    client = integration(staff_user, scopes={SCOPE_READ})

    assert listed(client.get("/api/v1/processes/")) == ["order-processing", "test-echo", "test-steps"]


def test_a_paused_process_is_listed_as_paused(staff_user: User) -> None:
    process_pause(process=Process.objects.get(slug="test-echo"), reason="Maintenance")

    paused = {p["processId"]: p["paused"] for p in signed_in(staff_user).get("/api/v1/processes/").json()}
    assert paused == {"order-processing": False, "test-echo": True, "test-steps": False}


def test_an_anonymous_caller_is_asked_to_authenticate() -> None:
    response = Client(HTTP_HOST="localhost").get("/api/v1/processes/")

    assert error_of(response) == (401, "not_authenticated", "Authentication credentials were not provided.")
    assert response["WWW-Authenticate"] == 'Bearer realm="heptora"'


# --- The detail -----------------------------------------------------------------------------------------


def test_the_detail_publishes_the_parameters_as_json_schema(staff_user: User) -> None:
    response = signed_in(staff_user).get("/api/v1/processes/order-processing/")

    assert response.status_code == 200
    assert response.json() == {**ORDER_SUMMARY, "parameters": ORDER_PARAMETERS_SCHEMA}


def test_fields_shown_only_under_a_condition_are_not_required_in_the_schema(admin_user: User) -> None:
    schema = signed_in(admin_user).get("/api/v1/processes/report-generation/").json()["parameters"]

    # startDate and endDate are required only while period is "Custom": the schema cannot require them.
    assert schema["required"] == ["period"]
    assert schema["properties"]["startDate"] == {
        "type": "string", "format": "date", "title": "From", "description": "Only used when period is Custom.",
    }
    assert schema["properties"]["region"]["description"] == "Only used when regionalBreakdown is True."
    assert schema["properties"]["reportType"] == {
        "type": "string", "enum": ["Sales", "Finance", "Operations"], "title": "Report", "default": "Sales",
    }


def test_an_unknown_process_is_404(staff_user: User) -> None:
    response = signed_in(staff_user).get("/api/v1/processes/no-such-process/")

    assert error_of(response) == (404, "process_not_found", "There is no process with id 'no-such-process'.")


def test_a_process_the_caller_may_not_start_is_403(outsider: User) -> None:
    response = signed_in(outsider).get("/api/v1/processes/order-processing/")

    assert error_of(response) == (
        403, "permission_denied", "You are not allowed to start the process 'order-processing'.")
    assert "parameters" not in response.json()


def test_a_key_restricted_to_other_processes_may_not_read_this_one(staff_user: User) -> None:
    response = integration(staff_user, processes={"test-echo"}).get("/api/v1/processes/order-processing/")

    assert error_of(response) == (403, "permission_denied", "This API key may not use the process 'order-processing'.")


def test_reading_processes_starts_nothing(staff_user: User, outsider: User) -> None:
    signed_in(staff_user).get("/api/v1/processes/")
    signed_in(staff_user).get("/api/v1/processes/order-processing/")
    signed_in(outsider).get("/api/v1/processes/order-processing/")

    assert Execution.objects.count() == 0
