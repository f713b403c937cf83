"""GET/POST /api/v1/executions/…: an integrator follows, cancels and retries the executions it may see.

A caller sees its own executions, plus every execution of the processes it oversees (the
`view_process_executions` permission, globally through a group or on one process). Anything else answers
404, exactly as for an id that does not exist, so the API never tells whether someone else's execution
exists.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

import pytest
from django.contrib.auth.models import Group, Permission, User
from django.test import Client
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from guardian.shortcuts import assign_perm

from api_app import serializers
from api_app.callers import SCOPE_READ
from executions import services
from executions.actors import Actor
from executions.models import EventKind, Execution, ExecutionStatus, Process
from tests.api_app.helpers import error_of, integration, links_of, member_of_staff, signed_in

pytestmark = pytest.mark.django_db

S = ExecutionStatus
ORDER = {"orderId": "ORD-2024-001", "priority": "High"}
VIEW_ALL = "executions.view_process_executions"


# --- Helpers and fixtures -------------------------------------------------------------------------------


def start(user: User, process_id: str = "order-processing", **options: Any) -> Execution:
    parameters = dict(ORDER) if process_id == "order-processing" else {"text": "hello"}
    return services.execution_start(process_id=process_id, parameters=parameters, source="api",
                                    actor=Actor.for_user(user), **options)


def finish(execution: Execution, status: str, **fields: Any) -> Execution:
    """Stand in for a worker that ran the execution to ``status``."""
    now = timezone.now()
    Execution.objects.filter(pk=execution.pk).update(status=status, started_at=now - timedelta(seconds=3),
                                                      finished_at=now, attempt=1, **fields)
    execution.refresh_from_db()
    return execution


def ids_listed(client: Client, **query: str) -> list[str]:
    response = client.get(f"/api/v1/executions/?{urlencode(query)}")
    assert response.status_code == 200, response.content
    return [execution["executionId"] for execution in response.json()["results"]]


def not_visible(execution_id: str) -> tuple[int, str, str]:
    return 404, "not_found", f"There is no execution with id '{execution_id}' that you may see."


@pytest.fixture
def tom(staff_user: User) -> User:
    """sam's colleague in Staff."""
    return member_of_staff("tom")


@pytest.fixture
def four(staff_user: User, tom: User) -> dict[str, Execution]:
    """sam's order and echo, then tom's order and echo, started in that order."""
    return {
        "sam_order": start(staff_user),
        "sam_echo": start(staff_user, "test-echo"),
        "tom_order": start(tom),
        "tom_echo": start(tom, "test-echo"),
    }


def ids(four: dict[str, Execution], *names: str) -> list[str]:
    return [four[name].public_id for name in names]


# --- Who sees what --------------------------------------------------------------------------------------


def test_a_caller_lists_only_their_own_executions_newest_first(
    staff_user: User, tom: User, four: dict[str, Execution]
) -> None:
    assert ids_listed(signed_in(staff_user)) == ids(four, "sam_echo", "sam_order")
    assert ids_listed(signed_in(tom)) == ids(four, "tom_echo", "tom_order")


def test_someone_who_started_nothing_lists_nothing(outsider: User, four: dict[str, Execution]) -> None:
    response = signed_in(outsider).get("/api/v1/executions/")

    assert response.json() == {"count": 0, "next": None, "previous": None, "results": []}


def test_a_group_with_the_view_permission_sees_every_execution(
    manager: User, managers: Group, four: dict[str, Execution]
) -> None:
    managers.permissions.add(Permission.objects.get(codename="view_process_executions"))

    assert ids_listed(signed_in(manager)) == ids(four, "tom_echo", "tom_order", "sam_echo", "sam_order")


def test_the_view_permission_on_one_process_shows_that_process_executions(
    outsider: User, four: dict[str, Execution]
) -> None:
    assign_perm(VIEW_ALL, outsider, Process.objects.get(slug="order-processing"))

    assert ids_listed(signed_in(outsider)) == ids(four, "tom_order", "sam_order")


def test_a_superuser_sees_every_execution(admin_user: User, four: dict[str, Execution]) -> None:
    assert ids_listed(signed_in(admin_user)) == ids(four, "tom_echo", "tom_order", "sam_echo", "sam_order")


def test_a_key_restricted_to_some_processes_lists_only_their_executions(
    staff_user: User, four: dict[str, Execution]
) -> None:
    assert ids_listed(integration(staff_user, processes={"test-echo"})) == ids(four, "sam_echo")


# --- Filters and pages ----------------------------------------------------------------------------------


def test_the_list_filters_by_status(staff_user: User, four: dict[str, Execution]) -> None:
    services.execution_cancel(execution=four["sam_echo"], actor=Actor.for_user(staff_user))
    client = signed_in(staff_user)

    assert ids_listed(client, status="cancelled") == ids(four, "sam_echo")
    assert ids_listed(client, status="queued") == ids(four, "sam_order")
    assert ids_listed(client, status="success") == []


def test_the_list_filters_by_process(staff_user: User, four: dict[str, Execution]) -> None:
    client = signed_in(staff_user)

    assert ids_listed(client, process="order-processing") == ids(four, "sam_order")
    assert ids_listed(client, process="no-such-process") == []


def test_the_list_filters_by_creation_time(staff_user: User, four: dict[str, Execution]) -> None:
    Execution.objects.filter(pk=four["sam_order"].pk).update(
        created_at=datetime(2024, 11, 3, 10, 30, tzinfo=UTC))
    client = signed_in(staff_user)

    assert ids_listed(client, since="2024-11-03T10:30:01Z") == ids(four, "sam_echo")
    assert ids_listed(client, since="2024-11-03T10:30:00Z") == ids(four, "sam_echo", "sam_order")
    # The same moment written in another time zone.
    assert ids_listed(client, since="2024-11-03T12:30:01+02:00") == ids(four, "sam_echo")


def test_an_unknown_status_filter_is_400(staff_user: User) -> None:
    response = signed_in(staff_user).get("/api/v1/executions/?status=done")

    assert (response.status_code, response.json()["error"]["code"]) == (400, "invalid_request")
    assert response.json()["error"]["fields"] == {"status": [
        "Use one of: awaiting_approval, queued, running, success, failed, cancelled, rejected, expired."]}


def test_a_since_filter_that_is_not_a_date_time_is_400(staff_user: User) -> None:
    response = signed_in(staff_user).get("/api/v1/executions/?since=yesterday")

    assert response.status_code == 400
    assert response.json()["error"]["fields"] == {"since": ["Use an ISO 8601 date-time, e.g. 2024-11-03T10:30:00Z."]}


@pytest.mark.parametrize("since", ["9999-12-31T23:59:59-23:59", "0001-01-01T00:00:00+23:59"])
def test_a_since_filter_beyond_the_calendar_is_400_not_500(staff_user: User, since: str) -> None:
    response = signed_in(staff_user).get(f"/api/v1/executions/?{urlencode({'since': since})}")

    assert response.status_code == 400, response.content
    assert list(response.json()["error"]["fields"]) == ["since"]


def test_the_list_is_paginated_with_page_size(staff_user: User) -> None:
    started = [start(staff_user).public_id for _ in range(5)]
    newest_first = started[::-1]
    client = signed_in(staff_user)

    first = client.get("/api/v1/executions/?pageSize=2").json()
    last = client.get("/api/v1/executions/?page=3&pageSize=2").json()

    assert first["count"] == 5
    assert first["next"] == "http://localhost/api/v1/executions/?page=2&pageSize=2"
    assert first["previous"] is None
    assert [e["executionId"] for e in first["results"]] == newest_first[:2]
    assert last["next"] is None
    assert last["previous"] == "http://localhost/api/v1/executions/?page=2&pageSize=2"
    assert [e["executionId"] for e in last["results"]] == newest_first[4:]


# --- Detail ---------------------------------------------------------------------------------------------


def test_the_detail_shows_status_progress_result_errors_and_times(staff_user: User) -> None:
    execution = start(staff_user, notify_email="sam@example.com")

    response = signed_in(staff_user).get(f"/api/v1/executions/{execution.public_id}")

    assert response.status_code == 200
    body = response.json()
    assert set(body) == set(serializers.ExecutionDetail().fields)
    assert body == {
        "executionId": execution.public_id,
        "processId": "order-processing",
        "status": "queued",
        "source": "api",
        "startedBy": "sam",
        "parameters": ORDER,
        "progress": {"step": 0, "totalSteps": 5, "percent": 0, "message": ""},
        "result": None,
        "errors": None,
        "attempt": 0,
        "cancelRequested": False,
        "createdTime": body["createdTime"],
        "startTime": None,
        "endTime": None,
        "durationSeconds": None,
        "timeout": 300,
        "notifyEmail": "sam@example.com",
        "retryOf": None,
        "links": links_of(execution.public_id),
    }
    assert body["createdTime"].endswith("Z")
    assert parse_datetime(body["createdTime"]) == execution.created_at


def test_the_detail_of_a_failed_execution_carries_its_error(staff_user: User) -> None:
    execution = finish(start(staff_user), S.FAILED, current_step=3, percent=60, progress_message="Charging payment",
                       error_code="gateway_declined", error_step=3,
                       error_message="The payment gateway declined the request (demo failure).")

    body = signed_in(staff_user).get(f"/api/v1/executions/{execution.public_id}").json()

    assert body["status"] == "failed"
    assert body["progress"] == {"step": 3, "totalSteps": 5, "percent": 60, "message": "Charging payment"}
    assert body["errors"] == [{"code": "gateway_declined", "step": 3,
                               "message": "The payment gateway declined the request (demo failure)."}]
    assert body["durationSeconds"] == 3.0
    assert parse_datetime(body["endTime"]) == execution.finished_at


def test_someone_elses_execution_is_404_exactly_like_one_that_does_not_exist(
    staff_user: User, four: dict[str, Execution]
) -> None:
    client = signed_in(staff_user)
    theirs = four["tom_order"].public_id

    hidden = client.get(f"/api/v1/executions/{theirs}")
    missing = client.get("/api/v1/executions/exec-0000000000000000")

    assert error_of(hidden) == not_visible(theirs)
    assert error_of(missing) == not_visible("exec-0000000000000000")


def test_the_view_permission_on_the_process_opens_the_detail(outsider: User, four: dict[str, Execution]) -> None:
    assign_perm(VIEW_ALL, outsider, Process.objects.get(slug="order-processing"))
    client = signed_in(outsider)

    assert client.get(f"/api/v1/executions/{four['tom_order'].public_id}").status_code == 200
    tom_echo = four["tom_echo"].public_id
    assert error_of(client.get(f"/api/v1/executions/{tom_echo}")) == not_visible(tom_echo)


def test_a_key_restricted_to_other_processes_cannot_read_this_execution(staff_user: User) -> None:
    execution_id = start(staff_user).public_id

    response = integration(staff_user, processes={"test-echo"}).get(f"/api/v1/executions/{execution_id}")

    assert error_of(response) == not_visible(execution_id)


# --- Events ---------------------------------------------------------------------------------------------


def test_the_events_are_the_execution_log_and_after_returns_only_newer_ones(staff_user: User) -> None:
    execution = start(staff_user)
    services.execution_record_event(execution=execution, kind=EventKind.STEP, message="Step 1/5: Validating order")
    services.execution_record_event(execution=execution, kind=EventKind.LOG, message="Order is well-formed.",
                                    data={"checksum": 42})
    client = signed_in(staff_user)

    events = client.get(f"/api/v1/executions/{execution.public_id}/events").json()
    newer = client.get(f"/api/v1/executions/{execution.public_id}/events?after={events[0]['id']}").json()

    assert [(e["kind"], e["level"], e["message"], e["data"]) for e in events] == [
        ("status", "info", "Queued: started by sam via REST API",
         {"status": "queued", "source": "api", "actor": "sam"}),
        ("step", "info", "Step 1/5: Validating order", {}),
        ("log", "info", "Order is well-formed.", {"checksum": 42}),
    ]
    assert set(events[0]) == set(serializers.ExecutionEventOut().fields)
    assert newer == events[1:]
    assert client.get(f"/api/v1/executions/{execution.public_id}/events?after={events[2]['id']}").json() == []


def test_an_after_that_is_not_an_event_id_is_400(staff_user: User) -> None:
    execution = start(staff_user)

    response = signed_in(staff_user).get(f"/api/v1/executions/{execution.public_id}/events?after=latest")

    assert response.status_code == 400
    assert response.json()["error"]["fields"] == {"after": ["Use an event id (a whole number)."]}


def test_someone_elses_events_are_404(staff_user: User, four: dict[str, Execution]) -> None:
    theirs = four["tom_order"].public_id

    assert error_of(signed_in(staff_user).get(f"/api/v1/executions/{theirs}/events")) == not_visible(theirs)


# --- Cancel ---------------------------------------------------------------------------------------------


def test_cancelling_a_queued_execution_ends_it_at_once(staff_user: User) -> None:
    execution = start(staff_user)

    response = signed_in(staff_user).post(f"/api/v1/executions/{execution.public_id}/cancel")

    assert response.status_code == 202
    assert (response.json()["executionId"], response.json()["status"]) == (execution.public_id, "cancelled")
    execution.refresh_from_db()
    assert execution.status == S.CANCELLED
    assert execution.events.order_by("id").last().message == "Cancelled by sam"


def test_cancelling_a_running_execution_asks_it_to_stop_at_its_next_step(staff_user: User) -> None:
    execution = start(staff_user)
    services.execution_claim(execution_pk=execution.pk, lease="lease-1", worker="worker-1")

    response = signed_in(staff_user).post(f"/api/v1/executions/{execution.public_id}/cancel")

    assert response.status_code == 202
    assert (response.json()["status"], response.json()["cancelRequested"]) == ("running", True)


def test_cancelling_a_finished_execution_is_409_and_changes_nothing(staff_user: User) -> None:
    execution = finish(start(staff_user), S.SUCCESS, result={"status": "processed"})

    response = signed_in(staff_user).post(f"/api/v1/executions/{execution.public_id}/cancel")

    assert error_of(response) == (409, "invalid_state", f"{execution.public_id} has already finished (success); "
                                                        "there is nothing to cancel.")
    execution.refresh_from_db()
    assert execution.status == S.SUCCESS


def test_someone_elses_execution_cannot_be_cancelled(staff_user: User, four: dict[str, Execution]) -> None:
    theirs = four["tom_order"]

    response = signed_in(staff_user).post(f"/api/v1/executions/{theirs.public_id}/cancel")

    assert error_of(response) == not_visible(theirs.public_id)
    theirs.refresh_from_db()
    assert theirs.status == S.QUEUED


def test_a_manager_who_sees_every_execution_may_cancel_any(
    manager: User, managers: Group, four: dict[str, Execution]
) -> None:
    managers.permissions.add(Permission.objects.get(codename="view_process_executions"))

    response = signed_in(manager).post(f"/api/v1/executions/{four['sam_order'].public_id}/cancel")

    assert response.status_code == 202
    assert four["sam_order"].events.order_by("id").last().message == "Cancelled by maria"


def test_a_read_only_token_cannot_cancel(staff_user: User) -> None:
    execution = start(staff_user)

    response = integration(staff_user, scopes={SCOPE_READ}).post(f"/api/v1/executions/{execution.public_id}/cancel")

    assert error_of(response) == (
        403, "permission_denied", "This token lacks the scope 'process:execute' this call needs.")
    execution.refresh_from_db()
    assert execution.status == S.QUEUED


# --- Retry ----------------------------------------------------------------------------------------------


def test_retrying_a_failed_execution_starts_a_new_one_that_points_back(staff_user: User) -> None:
    failed = finish(start(staff_user, notify_email="sam@example.com", timeout=120), S.FAILED,
                    error_code="process_error", error_message="ZeroDivisionError: division by zero")
    client = signed_in(staff_user)

    response = client.post(f"/api/v1/executions/{failed.public_id}/retry")

    assert response.status_code == 202, response.content
    new_id = response.json()["executionId"]
    assert response.json() == {"executionId": new_id, "processId": "order-processing", "status": "queued",
                               "links": links_of(new_id)}
    assert response["Location"] == f"/api/v1/executions/{new_id}"
    retry = Execution.objects.get(public_id=new_id)
    assert (retry.retry_of, retry.source, retry.parameters) == (failed, "api", ORDER)
    assert (retry.notify_email, retry.timeout) == ("sam@example.com", 120)
    detail = client.get(f"/api/v1/executions/{new_id}").json()
    assert (detail["retryOf"], detail["status"]) == (failed.public_id, "queued")
    failed.refresh_from_db()
    assert failed.status == S.FAILED


def test_retrying_a_successful_execution_is_409_and_starts_nothing(staff_user: User) -> None:
    done = finish(start(staff_user), S.SUCCESS, result={"status": "processed"})

    response = signed_in(staff_user).post(f"/api/v1/executions/{done.public_id}/retry")

    assert error_of(response) == (409, "invalid_state", f"{done.public_id} is success; only failed, cancelled, "
                                                        "expired or rejected executions can be retried.")
    assert list(Execution.objects.values_list("public_id", flat=True)) == [done.public_id]


def test_retrying_into_a_paused_process_is_409_and_starts_nothing(staff_user: User) -> None:
    failed = finish(start(staff_user), S.FAILED, error_code="process_error", error_message="boom")
    services.process_pause(process=failed.process, reason="Payment gateway outage")

    response = signed_in(staff_user).post(f"/api/v1/executions/{failed.public_id}/retry")

    assert error_of(response) == (409, "process_paused", "The process 'order-processing' is paused and does not "
                                                         "accept new starts (Payment gateway outage).")
    assert Execution.objects.count() == 1


def test_someone_elses_execution_cannot_be_retried(staff_user: User, tom: User) -> None:
    theirs = finish(start(tom), S.FAILED, error_code="process_error", error_message="boom")

    response = signed_in(staff_user).post(f"/api/v1/executions/{theirs.public_id}/retry")

    assert error_of(response) == not_visible(theirs.public_id)
    assert Execution.objects.count() == 1


def test_a_key_restricted_to_other_processes_cannot_retry(staff_user: User) -> None:
    failed = finish(start(staff_user), S.FAILED, error_code="process_error", error_message="boom")

    response = integration(staff_user, processes={"test-echo"}).post(f"/api/v1/executions/{failed.public_id}/retry")

    assert error_of(response) == not_visible(failed.public_id)
    assert Execution.objects.count() == 1


def test_a_read_only_token_cannot_retry(staff_user: User) -> None:
    failed = finish(start(staff_user), S.FAILED, error_code="process_error", error_message="boom")

    response = integration(staff_user, scopes={SCOPE_READ}).post(f"/api/v1/executions/{failed.public_id}/retry")

    assert response.status_code == 403
    assert Execution.objects.count() == 1
