"""POST /api/v1/processes/{processId}/execute: an integrator's system starts a process.

The body is the product documentation's example; the answer is 202 with the execution id at once. Every
refusal (bad body, unknown or paused process, no permission, no credentials) answers with the one error
shape and starts nothing. An `Idempotency-Key` makes a retried request safe, even two at the same moment.
"""

from __future__ import annotations

import json
import re
import subprocess
import threading
import time
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
import requests
from django.contrib.auth.models import User
from django.db import connections
from django.http import HttpResponse
from django.test import Client
from django.utils import timezone

from api_app.api_keys import api_key_create
from api_app.callers import SCOPE_EXECUTE, SCOPE_READ
from api_app.models import IdempotencyRecord
from executions import services
from executions.models import ActorKind, Execution, Process
from tests.api_app.helpers import (
    DOC_BODY,
    EXECUTE,
    assert_nothing_started,
    error_of,
    fields_of,
    integration,
    links_of,
    member_of_staff,
    post,
    signed_in,
)
from tests.conftest import WorkerProcess

# The body of the documentation's cURL and Python examples.
CURL_BODY = {"parameters": {"orderId": "ORD-2024-001", "priority": "high"}}
EXECUTION_ID = re.compile(r"exec-[0-9a-f]{16}")


# --- The product documentation's example ----------------------------------------------------------------


@pytest.mark.django_db
def test_the_documented_body_starts_a_queued_execution_at_once(staff_user: User) -> None:
    response = post(signed_in(staff_user), DOC_BODY)

    assert response.status_code == 202, response.content
    body = response.json()
    execution_id = body["executionId"]
    assert EXECUTION_ID.fullmatch(execution_id)
    assert body == {"executionId": execution_id, "processId": "order-processing", "status": "queued",
                    "links": links_of(execution_id)}
    assert response["Location"] == f"/api/v1/executions/{execution_id}"


@pytest.mark.django_db
def test_the_execution_keeps_the_cleaned_parameters_and_the_options(staff_user: User) -> None:
    execution_id = post(signed_in(staff_user), DOC_BODY).json()["executionId"]

    execution = Execution.objects.get()
    assert execution.public_id == execution_id
    assert execution.parameters == {
        "orderId": "ORD-2024-001",
        "priority": "High",  # "high" is accepted and stored in its canonical spelling
        "customerId": "CUST-5432",
        "amount": 1500.0,
        "metadata": {"source": "mobile-app", "region": "US-West"},
    }
    assert (execution.process.slug, execution.status, execution.source) == ("order-processing", "queued", "api")
    assert (execution.notify_email, execution.timeout) == ("user@company.com", 300)
    assert (execution.actor_kind, execution.actor_label, execution.actor_user) == ("user", "sam", staff_user)


@pytest.mark.django_db
def test_an_api_caller_is_recorded_as_who_started_it(staff_user: User) -> None:
    post(integration(staff_user), CURL_BODY)

    execution = Execution.objects.get()
    assert (execution.actor_kind, execution.actor_label, execution.actor_user) == (
        ActorKind.API_KEY, "Shopify orders (hep_0000test)", staff_user)
    assert execution.events.get().message == "Queued: started by Shopify orders (hep_0000test) via REST API"


@pytest.mark.django_db
def test_the_documented_curl_example_works_with_a_real_api_key(staff_user: User) -> None:
    _key, full_key = api_key_create(user=staff_user, name="Shopify orders")

    response = Client(HTTP_HOST="localhost").post(
        EXECUTE, json.dumps(CURL_BODY), content_type="application/json", HTTP_AUTHORIZATION=f"Bearer {full_key}")

    assert response.status_code == 202, response.content
    execution = Execution.objects.get()
    assert response.json()["executionId"] == execution.public_id
    assert execution.parameters == {"orderId": "ORD-2024-001", "priority": "High"}
    assert execution.actor_kind == ActorKind.API_KEY
    assert execution.actor_label == f"Shopify orders ({full_key[:12]})"


@pytest.mark.django_db(transaction=True)
def test_the_documented_curl_command_runs_against_a_live_server(staff_user: User, live_server: Any) -> None:
    _key, full_key = api_key_create(user=staff_user, name="Shopify orders")

    completed = subprocess.run(
        ["curl", "-sS", "-X", "POST", f"{live_server.url}{EXECUTE}",
         "-H", f"Authorization: Bearer {full_key}", "-H", "Content-Type: application/json",
         "-d", json.dumps(CURL_BODY, indent=2)],
        capture_output=True, text=True, timeout=30, check=True,
    )

    execution_id = json.loads(completed.stdout)["executionId"]
    assert Execution.objects.get().public_id == execution_id


@pytest.mark.django_db(transaction=True)
def test_the_documented_python_example_prints_the_execution_id(staff_user: User, live_server: Any) -> None:
    _key, full_key = api_key_create(user=staff_user, name="Shopify orders")
    headers = {"Authorization": f"Bearer {full_key}", "Content-Type": "application/json"}

    response = requests.post(f"{live_server.url}{EXECUTE}", json=CURL_BODY, headers=headers, timeout=30)

    assert response.status_code == 202
    assert response.json()["executionId"] == Execution.objects.get().public_id


# --- Invalid bodies: 400 with the field errors, nothing started -----------------------------------------


@pytest.mark.django_db
def test_invalid_parameters_and_options_are_listed_field_by_field(staff_user: User) -> None:
    body = {"parameters": {"orderId": "123", "priority": "urgent"}, "timeout": 0, "notifyEmail": "not-an-address"}

    response = post(signed_in(staff_user), body)

    assert error_of(response) == (400, "invalid_parameters", "Some parameters are not valid.")
    assert fields_of(response) == {
        "parameters.orderId": ["Ensure this value has at least 10 characters (it has 3).", 'Must start with "ORD-".'],
        "parameters.priority": ["Select a valid choice. urgent is not one of the available choices."],
        "timeout": ["Timeout must be a whole number of seconds from 1 to 86400."],
        "notifyEmail": ["Enter a valid e-mail address."],
    }
    assert_nothing_started()


@pytest.mark.django_db
def test_missing_required_parameters_are_named(staff_user: User) -> None:
    response = post(signed_in(staff_user), {"parameters": {}})

    assert error_of(response) == (400, "invalid_parameters", "Some parameters are not valid.")
    assert fields_of(response) == {"parameters.orderId": ["This field is required."],
                                   "parameters.priority": ["This field is required."]}
    assert_nothing_started()


@pytest.mark.django_db
def test_an_unknown_parameter_is_refused_naming_the_known_ones(staff_user: User) -> None:
    body = {"parameters": {**CURL_BODY["parameters"], "colour": "red"}}

    response = post(signed_in(staff_user), body)

    assert fields_of(response) == {"parameters.colour": [
        "Unknown parameter. Known parameters: amount, customerId, customerName, emailNotification, metadata, "
        "orderId, priority, specialInstructions."]}
    assert_nothing_started()


@pytest.mark.django_db
def test_a_misspelt_top_level_field_is_an_error_not_ignored(staff_user: User) -> None:
    response = post(signed_in(staff_user), {**CURL_BODY, "notifyEmial": "user@company.com"})

    assert error_of(response) == (400, "invalid_request", "The request is not valid.")
    assert fields_of(response) == {"notifyEmial": ["Unknown field."]}
    assert_nothing_started()


@pytest.mark.django_db
def test_a_process_id_in_the_body_must_match_the_url(staff_user: User) -> None:
    response = post(signed_in(staff_user), {**CURL_BODY, "processId": "report-generation"})

    assert error_of(response) == (400, "invalid_request", "The request is not valid.")
    assert fields_of(response) == {"processId": ["Does not match the process in the URL ('order-processing')."]}
    assert_nothing_started()


@pytest.mark.django_db
@pytest.mark.parametrize("body", ["[]", '["ORD-2024-001"]', '"ORD-2024-001"', "42", "null"])
def test_a_body_that_is_not_a_json_object_is_refused(staff_user: User, body: str) -> None:
    response = post(signed_in(staff_user), body)

    assert error_of(response) == (400, "invalid_request", "The request is not valid.")
    assert fields_of(response) == {"body": ["The body must be a JSON object."]}
    assert_nothing_started()


@pytest.mark.django_db
@pytest.mark.parametrize(("body", "fields"), [
    ({"parameters": ["ORD-2024-001"]}, {"parameters": ['Expected a dictionary of items but got type "list".']}),
    ({"parameters": None}, {"parameters": ["This field may not be null."]}),
    ({**CURL_BODY, "timeout": "soon"}, {"timeout": ["A valid integer is required."]}),
    ({**CURL_BODY, "timeout": True}, {"timeout": ["A valid integer is required."]}),
    ({**CURL_BODY, "notifyEmail": None}, {"notifyEmail": ["This field may not be null."]}),
])
def test_fields_of_the_wrong_type_are_refused(staff_user: User, body: dict[str, Any],
                                              fields: dict[str, list[str]]) -> None:
    response = post(signed_in(staff_user), body)

    assert error_of(response) == (400, "invalid_request", "The request is not valid.")
    assert fields_of(response) == fields
    assert_nothing_started()


@pytest.mark.django_db
def test_a_body_that_is_not_valid_json_is_refused(staff_user: User) -> None:
    response = post(signed_in(staff_user), '{"parameters": {"orderId": "ORD-2024-001",}}')

    status, code, message = error_of(response)
    assert (status, code) == (400, "invalid_json")
    assert message.startswith("The body is not valid JSON: ")
    assert_nothing_started()


@pytest.mark.django_db
def test_a_body_that_is_not_json_at_all_is_415(staff_user: User) -> None:
    response = signed_in(staff_user).post(EXECUTE, "orderId=ORD-2024-001&priority=high",
                                          content_type="application/x-www-form-urlencoded")

    assert error_of(response) == (
        415, "unsupported_media_type", 'Unsupported media type "application/x-www-form-urlencoded" in request.')
    assert_nothing_started()


def _nested(depth: int) -> dict[str, Any]:
    value: dict[str, Any] = {}
    for _ in range(depth):
        value = {"a": value}
    return value


HOSTILE_BODIES = {
    "json nested deeper than the parser can follow": "[" * 100_000,
    "metadata nested 900 levels deep": json.dumps(
        {"parameters": {**CURL_BODY["parameters"], "metadata": _nested(900)}}),
    "a body over the upload size limit": json.dumps(
        {"parameters": {**CURL_BODY["parameters"], "metadata": {"notes": "x" * 3_000_000}}}),
}


@pytest.mark.django_db
@pytest.mark.parametrize("body", HOSTILE_BODIES.values(), ids=HOSTILE_BODIES.keys())
def test_it_never_answers_500_to_a_body_a_client_can_send(staff_user: User, body: str) -> None:
    response = post(signed_in(staff_user), body)

    assert response.status_code in (400, 413), response.content
    assert response.json()["error"]["code"] in ("invalid_json", "invalid_parameters", "too_large")
    assert_nothing_started()


# --- Refusals that are not about the body ---------------------------------------------------------------


@pytest.mark.django_db
def test_an_unknown_process_is_404(staff_user: User) -> None:
    response = post(signed_in(staff_user), CURL_BODY, path="/api/v1/processes/order-procesing/execute")

    assert error_of(response) == (404, "process_not_found", "There is no process with id 'order-procesing'.")
    assert_nothing_started()


@pytest.mark.django_db
def test_a_paused_process_is_409_with_the_reason(staff_user: User) -> None:
    services.process_pause(process=Process.objects.get(slug="order-processing"), reason="Warehouse stock-take")

    response = post(signed_in(staff_user), CURL_BODY)

    assert error_of(response) == (409, "process_paused", "The process 'order-processing' is paused and does not "
                                                         "accept new starts (Warehouse stock-take).")
    assert_nothing_started()


@pytest.mark.django_db
def test_someone_not_allowed_to_start_the_process_gets_403(outsider: User) -> None:
    response = post(signed_in(outsider), CURL_BODY)

    assert error_of(response) == (
        403, "permission_denied", "You are not allowed to start the process 'order-processing'.")
    assert_nothing_started()


@pytest.mark.django_db
def test_a_key_restricted_to_other_processes_may_not_start_this_one(staff_user: User) -> None:
    response = post(integration(staff_user, processes={"test-echo"}), CURL_BODY)

    assert error_of(response) == (403, "permission_denied", "This API key may not use the process 'order-processing'.")
    assert_nothing_started()


@pytest.mark.django_db
def test_a_key_restricted_to_this_process_may_start_it(staff_user: User) -> None:
    response = post(integration(staff_user, processes={"order-processing"}), CURL_BODY)

    assert response.status_code == 202
    assert Execution.objects.count() == 1


@pytest.mark.django_db
def test_a_read_only_token_may_not_start_a_process(staff_user: User) -> None:
    response = post(integration(staff_user, scopes={SCOPE_READ}), CURL_BODY)

    assert error_of(response) == (
        403, "permission_denied", "This token lacks the scope 'process:execute' this call needs.")
    assert_nothing_started()


@pytest.mark.django_db
def test_a_token_with_the_execute_scope_may_start_a_process(staff_user: User) -> None:
    assert post(integration(staff_user, scopes={SCOPE_EXECUTE}), CURL_BODY).status_code == 202


@pytest.mark.django_db
def test_an_anonymous_caller_is_401_with_a_bearer_challenge() -> None:
    response = post(Client(HTTP_HOST="localhost"), CURL_BODY)

    assert error_of(response) == (401, "not_authenticated", "Authentication credentials were not provided.")
    assert response["WWW-Authenticate"] == 'Bearer realm="heptora"'
    assert_nothing_started()


# --- Idempotency-Key ------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_repeating_a_request_with_its_idempotency_key_returns_the_first_execution(staff_user: User) -> None:
    client = signed_in(staff_user)

    first = post(client, DOC_BODY, HTTP_IDEMPOTENCY_KEY="shopify-order-1001")
    again = post(client, DOC_BODY, HTTP_IDEMPOTENCY_KEY="shopify-order-1001")

    assert (first.status_code, again.status_code) == (202, 202)
    assert again.json() == first.json()
    assert again["Location"] == first["Location"]
    assert "Idempotent-Replayed" not in first
    assert again["Idempotent-Replayed"] == "true"
    assert list(Execution.objects.values_list("public_id", flat=True)) == [first.json()["executionId"]]


@pytest.mark.django_db
def test_the_same_body_with_its_keys_in_another_order_is_the_same_request(staff_user: User) -> None:
    client = signed_in(staff_user)
    reordered = json.dumps(dict(reversed(list(DOC_BODY.items()))))

    first = post(client, DOC_BODY, HTTP_IDEMPOTENCY_KEY="shopify-order-1001")
    again = post(client, reordered, HTTP_IDEMPOTENCY_KEY="shopify-order-1001")

    assert again.json()["executionId"] == first.json()["executionId"]
    assert Execution.objects.count() == 1


@pytest.mark.django_db
def test_the_same_key_with_a_different_body_is_409(staff_user: User) -> None:
    client = signed_in(staff_user)
    post(client, DOC_BODY, HTTP_IDEMPOTENCY_KEY="shopify-order-1001")
    other_order = {**DOC_BODY, "parameters": {**DOC_BODY["parameters"], "orderId": "ORD-2024-002"}}

    response = post(client, other_order, HTTP_IDEMPOTENCY_KEY="shopify-order-1001")

    assert error_of(response) == (409, "idempotency_conflict",
                                  "This Idempotency-Key was already used with a different request body.")
    assert Execution.objects.get().parameters["orderId"] == "ORD-2024-001"


@pytest.mark.django_db
def test_a_key_first_used_more_than_24_hours_ago_starts_a_new_execution(staff_user: User) -> None:
    client = signed_in(staff_user)
    first = post(client, DOC_BODY, HTTP_IDEMPOTENCY_KEY="shopify-order-1001").json()["executionId"]
    IdempotencyRecord.objects.update(created_at=timezone.now() - timedelta(hours=24, minutes=1))

    response = post(client, DOC_BODY, HTTP_IDEMPOTENCY_KEY="shopify-order-1001")

    assert response.status_code == 202
    assert "Idempotent-Replayed" not in response
    second = response.json()["executionId"]
    assert second != first
    assert set(Execution.objects.values_list("public_id", flat=True)) == {first, second}
    assert IdempotencyRecord.objects.get().execution.public_id == second


@pytest.mark.django_db
def test_a_key_used_23_hours_ago_is_still_replayed(staff_user: User) -> None:
    client = signed_in(staff_user)
    first = post(client, DOC_BODY, HTTP_IDEMPOTENCY_KEY="shopify-order-1001").json()["executionId"]
    IdempotencyRecord.objects.update(created_at=timezone.now() - timedelta(hours=23))

    response = post(client, DOC_BODY, HTTP_IDEMPOTENCY_KEY="shopify-order-1001")

    assert (response.json()["executionId"], response["Idempotent-Replayed"]) == (first, "true")
    assert Execution.objects.count() == 1


@pytest.mark.django_db
def test_keys_belong_to_their_caller_so_two_users_may_use_the_same_key(staff_user: User) -> None:
    colleague = member_of_staff("tom")

    mine = post(signed_in(staff_user), DOC_BODY, HTTP_IDEMPOTENCY_KEY="order-1001")
    theirs = post(signed_in(colleague), DOC_BODY, HTTP_IDEMPOTENCY_KEY="order-1001")

    assert (mine.status_code, theirs.status_code) == (202, 202)
    assert "Idempotent-Replayed" not in theirs
    assert mine.json()["executionId"] != theirs.json()["executionId"]
    owners = dict(Execution.objects.values_list("public_id", "actor_user__username"))
    assert owners == {mine.json()["executionId"]: "sam", theirs.json()["executionId"]: "tom"}


@pytest.mark.django_db
def test_a_refused_request_does_not_use_up_its_key(staff_user: User) -> None:
    client = signed_in(staff_user)
    invalid = {"parameters": {"orderId": "ORD-2024-001"}}

    refused = post(client, invalid, HTTP_IDEMPOTENCY_KEY="order-1001")
    fixed = post(client, CURL_BODY, HTTP_IDEMPOTENCY_KEY="order-1001")

    assert (refused.status_code, fixed.status_code) == (400, 202)
    assert "Idempotent-Replayed" not in fixed
    assert Execution.objects.get().public_id == fixed.json()["executionId"]


@pytest.mark.django_db
def test_an_idempotency_key_longer_than_200_characters_is_refused(staff_user: User) -> None:
    response = post(signed_in(staff_user), CURL_BODY, HTTP_IDEMPOTENCY_KEY="k" * 201)

    assert error_of(response) == (400, "invalid_request", "The request is not valid.")
    assert fields_of(response) == {"Idempotency-Key": ["Use a key of 1 to 200 characters."]}
    assert_nothing_started()


@pytest.fixture
def slow_start(monkeypatch: pytest.MonkeyPatch) -> None:
    """Hold each start for a moment after its idempotency record is written, so two requests truly overlap."""
    real_start = services.execution_start

    def slow(**kwargs: Any) -> Execution:
        time.sleep(0.5)
        return real_start(**kwargs)

    monkeypatch.setattr(services, "execution_start", slow)


def concurrently(*requests_: Callable[[], HttpResponse]) -> list[HttpResponse]:
    """Send the requests at the same moment from threads, each on its own database connection."""
    barrier = threading.Barrier(len(requests_))
    responses: list[HttpResponse | BaseException | None] = [None] * len(requests_)

    def send(index: int) -> None:
        try:
            barrier.wait(timeout=10)
            responses[index] = requests_[index]()
        except BaseException as exc:  # reported below, on the test's thread
            responses[index] = exc
        finally:
            connections.close_all()

    threads = [threading.Thread(target=send, args=(index,)) for index in range(len(requests_))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    for response in responses:
        if not isinstance(response, HttpResponse):
            raise AssertionError(f"a request did not complete: {response!r}")
    return responses  # type: ignore[return-value]


@pytest.mark.django_db(transaction=True)
def test_two_identical_requests_at_the_same_moment_start_one_execution(staff_user: User, slow_start: None) -> None:
    shop, shop_retry = signed_in(staff_user), signed_in(staff_user)

    responses = concurrently(
        lambda: post(shop, DOC_BODY, HTTP_IDEMPOTENCY_KEY="shopify-order-1001"),
        lambda: post(shop_retry, DOC_BODY, HTTP_IDEMPOTENCY_KEY="shopify-order-1001"),
    )

    assert [r.status_code for r in responses] == [202, 202], [r.content for r in responses]
    assert responses[0].json() == responses[1].json()
    assert sorted(r.get("Idempotent-Replayed", "") for r in responses) == ["", "true"]
    assert list(Execution.objects.values_list("public_id", flat=True)) == [responses[0].json()["executionId"]]
    assert IdempotencyRecord.objects.count() == 1


# --- On a real worker -----------------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_an_order_started_through_the_api_runs_to_success_and_is_readable_through_get(
    staff_user: User, worker: WorkerProcess
) -> None:
    client = signed_in(staff_user)
    execution_id = post(client, DOC_BODY).json()["executionId"]

    deadline = time.monotonic() + 30
    detail = client.get(f"/api/v1/executions/{execution_id}").json()
    while detail["status"] not in ("success", "failed") and time.monotonic() < deadline:
        time.sleep(0.1)
        detail = client.get(f"/api/v1/executions/{execution_id}").json()

    assert detail["status"] == "success", detail
    assert detail["result"]["orderId"] == "ORD-2024-001"
    assert detail["result"]["status"] == "processed"
    assert detail["result"]["confirmationNumber"].startswith("CONF-")
    assert detail["progress"] == {"step": 5, "totalSteps": 5, "percent": 100, "message": "Sending confirmation"}
    assert (detail["attempt"], detail["errors"]) == (1, None)
    assert detail["startTime"] is not None and detail["endTime"] is not None
    events = client.get(f"/api/v1/executions/{execution_id}/events").json()
    assert [e["message"] for e in events if e["kind"] == "step"] == [
        "Step 1/5: Validating order",
        "Step 2/5: Checking inventory",
        "Step 3/5: Charging payment",
        "Step 4/5: Fulfilling order",
        "Step 5/5: Sending confirmation",
    ]
    assert [e["data"]["status"] for e in events if e["kind"] == "status"] == ["queued", "running", "success"]
