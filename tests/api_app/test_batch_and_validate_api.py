"""POST …/execute/batch and …/validate: many orders at once, and a dry run that starts nothing.

A batch accepts every valid item together and reports each invalid one with its field errors, in the order
sent; a batch with no valid item is a 400 that writes nothing. Validate runs the same checks as execute and
answers `valid` true or false, never creating an execution.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.test import Client

from api_app.callers import SCOPE_READ
from executions import hooks, services
from executions.models import ActorKind, Execution, ExecutionEvent, Process
from tests.api_app.helpers import DOC_BODY, assert_nothing_started, error_of, integration, post, signed_in

pytestmark = pytest.mark.django_db

BATCH = "/api/v1/processes/order-processing/execute/batch"
VALIDATE = "/api/v1/processes/order-processing/validate"
ERP_SYNC = "ERP sync (hep_0000test)"  # the actor label of the integration clients below
FIRST_ORDER = {"parameters": {"orderId": "ORD-2024-001", "priority": "high"}}
SECOND_ORDER = {"parameters": {"orderId": "ORD-2024-002", "priority": "Low", "amount": 99.5},
                "notifyEmail": "ops@company.com", "timeout": 120}
SHORT_ORDER = {"parameters": {"orderId": "ORD-1", "priority": "High"}}
SHORT_ORDER_ERRORS = {"parameters.orderId": ["Ensure this value has at least 10 characters (it has 5)."]}


# --- Helpers and fixtures -------------------------------------------------------------------------------


@pytest.fixture
def sam(staff_user: User) -> Client:
    return signed_in(staff_user)


@pytest.fixture
def published(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The execution pks sent to the broker, in order."""
    calls: list[int] = []
    monkeypatch.setattr(services, "execution_publish", lambda *, execution_pk, timeout: calls.append(execution_pk))
    return calls


@pytest.fixture
def approval_for_orders() -> Iterator[None]:
    def gate(*, process: Process, **_: Any) -> bool:
        return process.slug == "order-processing"

    hooks.register_approval_gate(gate)
    yield
    hooks.unregister_approval_gate(gate)


def rejected(index: int, fields: dict[str, list[str]]) -> dict[str, Any]:
    return {"index": index, "error": {"code": "invalid_parameters", "message": "Some parameters are not valid.",
                                      "fields": fields}}


# --- Batch ----------------------------------------------------------------------------------------------


def test_a_batch_accepts_the_valid_items_and_reports_the_invalid_ones_in_order(sam: Client) -> None:
    response = post(sam, {"items": [FIRST_ORDER, SHORT_ORDER, SECOND_ORDER]}, path=BATCH)

    assert response.status_code == 202, response.content
    body = response.json()
    first_id, second_id = body["items"][0]["executionId"], body["items"][2]["executionId"]
    assert body == {
        "accepted": 2,
        "rejected": 1,
        "items": [
            {"index": 0, "executionId": first_id, "status": "queued"},
            rejected(1, SHORT_ORDER_ERRORS),
            {"index": 2, "executionId": second_id, "status": "queued"},
        ],
    }


def test_each_accepted_item_is_an_api_execution_with_its_own_parameters_and_options(
    sam: Client, staff_user: User
) -> None:
    items = post(sam, {"items": [FIRST_ORDER, SHORT_ORDER, SECOND_ORDER]}, path=BATCH).json()["items"]

    first = Execution.objects.get(public_id=items[0]["executionId"])
    second = Execution.objects.get(public_id=items[2]["executionId"])
    assert Execution.objects.count() == 2
    assert (first.source, first.status, first.actor_user) == ("api", "queued", staff_user)
    assert (second.source, second.status, second.actor_user) == ("api", "queued", staff_user)
    assert first.parameters == {"orderId": "ORD-2024-001", "priority": "High"}
    assert (first.notify_email, first.timeout) == ("", 300)
    assert second.parameters == {"orderId": "ORD-2024-002", "priority": "Low", "amount": 99.5}
    assert (second.notify_email, second.timeout) == ("ops@company.com", 120)
    assert [e.message for e in ExecutionEvent.objects.order_by("id")] == [
        "Queued: started by sam via REST API", "Queued: started by sam via REST API"]


def test_the_accepted_items_are_published_together_once_the_batch_commits(
    sam: Client, published: list[int], django_capture_on_commit_callbacks: Any
) -> None:
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        items = post(sam, {"items": [FIRST_ORDER, SHORT_ORDER, SECOND_ORDER]}, path=BATCH).json()["items"]

    assert len(callbacks) == 1
    expected = [Execution.objects.get(public_id=items[i]["executionId"]).pk for i in (0, 2)]
    assert published == expected


def test_an_item_with_a_bad_timeout_or_address_is_rejected_on_its_own(sam: Client) -> None:
    bad_options = {**FIRST_ORDER, "timeout": 0, "notifyEmail": "ops"}

    response = post(sam, {"items": [bad_options, SECOND_ORDER]}, path=BATCH)

    assert response.status_code == 202
    assert response.json()["items"][0] == rejected(0, {
        "timeout": ["Timeout must be a whole number of seconds from 1 to 86400."],
        "notifyEmail": ["Enter a valid e-mail address."],
    })
    assert list(Execution.objects.values_list("parameters__orderId", flat=True)) == ["ORD-2024-002"]


def test_a_batch_by_an_api_caller_is_started_by_that_caller(staff_user: User) -> None:
    response = post(integration(staff_user, processes={"order-processing"}, label=ERP_SYNC),
                    {"items": [FIRST_ORDER]}, path=BATCH)

    assert response.status_code == 202
    execution = Execution.objects.get()
    assert (execution.actor_kind, execution.actor_label) == (ActorKind.API_KEY, "ERP sync (hep_0000test)")


def test_a_batch_with_no_valid_item_is_400_and_writes_nothing(sam: Client) -> None:
    response = post(sam, {"items": [SHORT_ORDER, {"parameters": {}}]}, path=BATCH)

    assert response.status_code == 400
    assert response.json() == {
        "accepted": 0,
        "rejected": 2,
        "items": [
            rejected(0, SHORT_ORDER_ERRORS),
            rejected(1, {"parameters.orderId": ["This field is required."],
                         "parameters.priority": ["This field is required."]}),
        ],
        "error": {"code": "invalid_parameters", "message": "No item of the batch is valid; nothing started.",
                  "requestId": response["X-Request-ID"]},
    }
    assert_nothing_started()


def test_an_empty_batch_is_400(sam: Client) -> None:
    response = post(sam, {"items": []}, path=BATCH)

    assert error_of(response) == (400, "invalid_request", "The request is not valid.")
    assert response.json()["error"]["fields"] == {"items": ["Ensure this field has at least 1 elements."]}
    assert_nothing_started()


def test_a_batch_without_items_is_400(sam: Client) -> None:
    response = post(sam, {}, path=BATCH)

    assert error_of(response) == (400, "invalid_request", "The request is not valid.")
    assert response.json()["error"]["fields"] == {"items": ["This field is required."]}
    assert_nothing_started()


def test_a_batch_over_the_documented_cap_of_500_is_400(sam: Client) -> None:
    response = post(sam, {"items": [FIRST_ORDER] * 501}, path=BATCH)

    assert error_of(response) == (400, "invalid_request", "The request is not valid.")
    assert response.json()["error"]["fields"] == {"items": ["Send at most 500 items in one batch (got 501)."]}
    assert_nothing_started()


def test_a_batch_over_a_lowered_cap_is_400(sam: Client, settings: Any) -> None:
    settings.HEPTORA_API_BATCH_MAX = 3

    response = post(sam, {"items": [FIRST_ORDER] * 4}, path=BATCH)

    assert response.status_code == 400, response.content
    assert response.json()["error"]["fields"] == {"items": ["Send at most 3 items in one batch (got 4)."]}
    assert_nothing_started()


def test_a_batch_item_with_an_unknown_field_refuses_the_whole_batch(sam: Client) -> None:
    response = post(sam, {"items": [FIRST_ORDER, {**SECOND_ORDER, "notifyEmial": "ops@company.com"}]}, path=BATCH)

    assert error_of(response) == (400, "invalid_request", "The request is not valid.")
    assert response.json()["error"]["fields"] == {"items.1.notifyEmial": ["Unknown field."]}
    assert_nothing_started()


def test_a_batch_for_a_paused_process_is_409(sam: Client) -> None:
    services.process_pause(process=Process.objects.get(slug="order-processing"), reason="Stock-take")

    response = post(sam, {"items": [FIRST_ORDER]}, path=BATCH)

    assert error_of(response) == (409, "process_paused", "The process 'order-processing' is paused and does not "
                                                         "accept new starts (Stock-take).")
    assert_nothing_started()


def test_a_batch_for_an_unknown_process_is_404(sam: Client) -> None:
    response = post(sam, {"items": [FIRST_ORDER]}, path="/api/v1/processes/no-such-process/execute/batch")

    assert error_of(response) == (404, "process_not_found", "There is no process with id 'no-such-process'.")
    assert_nothing_started()


def test_a_batch_by_someone_not_allowed_to_start_the_process_is_403(outsider: User) -> None:
    response = post(signed_in(outsider), {"items": [FIRST_ORDER]}, path=BATCH)

    assert error_of(response) == (
        403, "permission_denied", "You are not allowed to start the process 'order-processing'.")
    assert_nothing_started()


def test_a_batch_with_a_key_restricted_to_other_processes_is_403(staff_user: User) -> None:
    response = post(integration(staff_user, processes={"test-echo"}, label=ERP_SYNC),
                    {"items": [FIRST_ORDER]}, path=BATCH)

    assert error_of(response) == (403, "permission_denied", "This API key may not use the process 'order-processing'.")
    assert_nothing_started()


def test_a_batch_with_a_read_only_token_is_403(staff_user: User) -> None:
    response = post(integration(staff_user, scopes={SCOPE_READ}, label=ERP_SYNC),
                    {"items": [FIRST_ORDER]}, path=BATCH)

    assert error_of(response) == (
        403, "permission_denied", "This token lacks the scope 'process:execute' this call needs.")
    assert_nothing_started()


# --- Validate -------------------------------------------------------------------------------------------


def test_validate_answers_valid_with_the_parameters_as_they_would_be_stored(sam: Client) -> None:
    response = post(sam, DOC_BODY, path=VALIDATE)

    assert response.status_code == 200, response.content
    assert response.json() == {
        "valid": True,
        "parameters": {
            "orderId": "ORD-2024-001",
            "priority": "High",
            "customerId": "CUST-5432",
            "amount": 1500.0,
            "metadata": {"source": "mobile-app", "region": "US-West"},
        },
        "requiresApproval": False,
    }
    assert_nothing_started()


def test_validate_says_when_a_start_would_wait_for_approval(sam: Client, approval_for_orders: None) -> None:
    response = post(sam, FIRST_ORDER, path=VALIDATE)

    assert response.json() == {"valid": True, "parameters": {"orderId": "ORD-2024-001", "priority": "High"},
                               "requiresApproval": True}
    assert_nothing_started()


def test_validate_lists_the_field_errors_of_invalid_parameters(sam: Client) -> None:
    body = {"parameters": {"orderId": "ORD-1", "priority": "urgent"}, "timeout": 0}

    response = post(sam, body, path=VALIDATE)

    assert response.status_code == 200
    assert response.json() == {"valid": False, "fields": {
        "parameters.orderId": ["Ensure this value has at least 10 characters (it has 5)."],
        "parameters.priority": ["Select a valid choice. urgent is not one of the available choices."],
        "timeout": ["Timeout must be a whole number of seconds from 1 to 86400."],
    }}
    assert_nothing_started()


def test_validate_refuses_a_malformed_body_like_execute(sam: Client) -> None:
    response = post(sam, {**FIRST_ORDER, "notifyEmial": "ops@company.com"}, path=VALIDATE)

    assert error_of(response) == (400, "invalid_request", "The request is not valid.")
    assert response.json()["error"]["fields"] == {"notifyEmial": ["Unknown field."]}
    assert_nothing_started()


def test_validate_for_a_paused_process_is_409(sam: Client) -> None:
    services.process_pause(process=Process.objects.get(slug="order-processing"), reason="Stock-take")

    response = post(sam, FIRST_ORDER, path=VALIDATE)

    assert error_of(response) == (409, "process_paused", "The process 'order-processing' is paused and does not "
                                                         "accept new starts (Stock-take).")
    assert_nothing_started()


def test_validate_for_an_unknown_process_is_404(sam: Client) -> None:
    response = post(sam, FIRST_ORDER, path="/api/v1/processes/no-such-process/validate")

    assert error_of(response) == (404, "process_not_found", "There is no process with id 'no-such-process'.")
    assert_nothing_started()


def test_validate_by_someone_not_allowed_to_start_the_process_is_403(outsider: User) -> None:
    response = post(signed_in(outsider), FIRST_ORDER, path=VALIDATE)

    assert error_of(response) == (
        403, "permission_denied", "You are not allowed to start the process 'order-processing'.")
    assert_nothing_started()
