"""The launch path (execution_start, approve, cancel, retry) as every front door sees it, without a worker.

The broker is stood in by recording `execution_publish`: a launch must reach it only once its transaction
commits, and a refused launch must leave no trace at all.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from typing import Any

import pytest
from django.contrib.auth.models import Group, Permission, User
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext
from guardian.shortcuts import assign_perm

from executions import hooks, lifecycle, services
from executions.actors import Actor
from executions.errors import InvalidParameters, InvalidTransition, LaunchDenied, ProcessNotFound, ProcessPaused
from executions.models import ActorKind, EventKind, EventLevel, Execution, ExecutionEvent, ExecutionStatus, Process

S = ExecutionStatus
ORDER = {"orderId": "ORD-2024-001", "priority": "High"}
REQUIRED_MISSING = {"orderId": ["This field is required."], "priority": ["This field is required."]}
KNOWN_ORDER_PARAMETERS = (
    "amount, customerId, customerName, emailNotification, metadata, orderId, priority, specialInstructions"
)


# --- Helpers and fixtures -------------------------------------------------------------------------------


@pytest.fixture
def published(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, int]]:
    """Every message the launch path sends to the broker, in order."""
    calls: list[dict[str, int]] = []
    monkeypatch.setattr(services, "execution_publish", lambda **kwargs: calls.append(kwargs))
    return calls


@pytest.fixture
def announced() -> Iterator[list[lifecycle.LifecycleEvent]]:
    """Lifecycle events, recorded as they are published (transaction phase)."""
    events: list[lifecycle.LifecycleEvent] = []

    def record(event: lifecycle.LifecycleEvent) -> None:
        events.append(event)

    lifecycle.subscribe(record, phase="transaction")
    yield events
    lifecycle.unsubscribe(record)


@pytest.fixture
def approval_for_orders() -> Iterator[list[dict[str, Any]]]:
    """An approval gate that holds every order-processing start; yields the calls it received."""
    calls: list[dict[str, Any]] = []

    def gate(*, process: Process, actor: Actor, source: str, parameters: dict[str, Any]) -> bool:
        calls.append({"process": process.slug, "actor": actor.label, "source": source, "parameters": parameters})
        return process.slug == "order-processing"

    hooks.register_approval_gate(gate)
    yield calls
    hooks.unregister_approval_gate(gate)


def start(actor: Actor, process_id: str = "order-processing", parameters: Any = None, **kwargs: Any) -> Execution:
    return services.execution_start(
        process_id=process_id,
        parameters=dict(ORDER) if parameters is None else parameters,
        source=kwargs.pop("source", "api"),
        actor=actor,
        **kwargs,
    )


def events_of(execution: Execution) -> list[tuple[str, str, str, dict[str, Any]]]:
    return [(e.kind, e.level, e.message, e.data) for e in execution.events.order_by("id")]


def assert_nothing_written(published: list[dict[str, int]]) -> None:
    assert Execution.objects.count() == 0
    assert ExecutionEvent.objects.count() == 0
    assert published == []


def member_of_staff(username: str) -> User:
    user = User.objects.create_user(username, f"{username}@example.com", "pw")
    user.groups.add(Group.objects.get(name="Staff"))
    return user


# --- A launch that succeeds -----------------------------------------------------------------------------


@pytest.mark.django_db
def test_a_launch_saves_a_queued_execution_with_who_started_it_and_how(staff_user: User, published: list) -> None:
    execution = start(Actor.for_user(staff_user), notify_email="sam@example.com")

    execution.refresh_from_db()
    assert re.fullmatch(r"exec-[0-9a-f]{16}", execution.public_id)
    assert execution.process.slug == "order-processing"
    assert execution.status == S.QUEUED
    assert execution.source == "api"
    assert execution.parameters == {"orderId": "ORD-2024-001", "priority": "High"}
    assert (execution.actor_kind, execution.actor_label, execution.actor_user) == (ActorKind.USER, "sam", staff_user)
    assert execution.notify_email == "sam@example.com"
    assert (execution.timeout, execution.total_steps, execution.attempt) == (300, 5, 0)
    assert execution.queued_at == execution.published_at == execution.created_at
    assert execution.retry_of is None
    assert events_of(execution) == [
        (EventKind.STATUS, EventLevel.INFO, "Queued: started by sam via REST API",
         {"status": "queued", "source": "api", "actor": "sam"}),
    ]


@pytest.mark.django_db
def test_a_launch_writes_the_execution_and_its_event_in_one_statement_when_no_listener_joins(
    operator: Actor, published: list, django_capture_on_commit_callbacks: Any
) -> None:
    """On PostgreSQL the usual start is one round trip: both rows in one atomic statement, no transaction
    block. A listener that writes in the start's transaction gets the two INSERTs in a transaction."""
    with CaptureQueriesContext(connection) as queries, django_capture_on_commit_callbacks(execute=True):
        execution = start(operator)

    writes = [q["sql"] for q in queries.captured_queries
              if q["sql"].lstrip().startswith(("INSERT", "WITH")) and "executions_execution" in q["sql"]]
    assert len(writes) == (1 if connection.vendor == "postgresql" else 2)
    execution.refresh_from_db()
    assert execution.status == S.QUEUED
    assert [e.message for e in execution.events.all()] == ["Queued: started by cli:test via REST API"]
    assert published == [{"execution_pk": execution.pk, "timeout": 300}]


@pytest.mark.django_db
def test_the_one_statement_start_stores_exactly_what_djangos_own_inserts_store(
    operator: Actor, published: list
) -> None:
    """The one-statement start reuses its SQL and prepares each value as Django's compiler does: every
    column of both rows matches a start written by Django's own INSERTs (the transaction path)."""
    parameters = {"orderId": "ORD-2024-007", "priority": "High", "metadata": {"source": "shop", "tags": ["a", "b"]}}
    one = start(operator, parameters=parameters, notify_email="ops@example.com", timeout=120)
    lifecycle.subscribe(noop_listener, phase="transaction")  # forces the two-INSERT path
    try:
        two = start(operator, parameters=parameters, notify_email="ops@example.com", timeout=120)
    finally:
        lifecycle.unsubscribe(noop_listener)

    skip = {"id", "public_id", "created_at", "queued_at", "published_at"}
    rows = [Execution.objects.filter(pk=e.pk).values().get() for e in (one, two)]
    assert {k: v for k, v in rows[0].items() if k not in skip} == {k: v for k, v in rows[1].items() if k not in skip}
    assert rows[0]["parameters"]["metadata"] == {"source": "shop", "tags": ["a", "b"]}
    events = [ExecutionEvent.objects.filter(execution=e).values("kind", "level", "message", "data").get()
              for e in (one, two)]
    assert events[0] == events[1]


def noop_listener(event: lifecycle.LifecycleEvent) -> None:
    pass


@pytest.mark.django_db
def test_a_listener_that_writes_in_the_starts_transaction_sees_both_rows(
    operator: Actor, published: list
) -> None:
    rows_seen: list[tuple[int, int]] = []

    def count_rows(event: lifecycle.LifecycleEvent) -> None:
        rows_seen.append((Execution.objects.filter(pk=event.execution_pk).count(),
                          ExecutionEvent.objects.filter(execution_id=event.execution_pk).count()))

    lifecycle.subscribe(count_rows, phase="transaction")
    try:
        with CaptureQueriesContext(connection) as queries:
            start(operator)
    finally:
        lifecycle.unsubscribe(count_rows)

    assert rows_seen == [(1, 1)]
    assert sum(q["sql"].lstrip().startswith("INSERT") and "executions_execution" in q["sql"]
               for q in queries.captured_queries) == 2


@pytest.mark.django_db
def test_each_execution_gets_its_own_id(operator: Actor, published: list) -> None:
    ids = {start(operator).public_id for _ in range(5)}

    assert len(ids) == 5
    assert all(re.fullmatch(r"exec-[0-9a-f]{16}", public_id) for public_id in ids)


@pytest.mark.django_db
def test_the_event_names_the_door_the_execution_came_through(operator: Actor, published: list) -> None:
    by_form = start(operator, source="form")
    by_chat = start(operator, source="chat")

    assert by_form.events.get().message == "Queued: started by cli:test via Web form"
    assert by_chat.events.get().message == "Queued: started by cli:test via Chat"


@pytest.mark.django_db
def test_it_refuses_an_unknown_source(operator: Actor, published: list) -> None:
    with pytest.raises(ValueError, match=r"^Unknown source 'fax'$"):
        start(operator, source="fax")

    assert_nothing_written(published)


@pytest.mark.django_db
def test_the_broker_hears_of_a_launch_only_when_its_transaction_commits(
    operator: Actor, published: list, django_capture_on_commit_callbacks: Any
) -> None:
    with django_capture_on_commit_callbacks(execute=True):
        execution = start(operator)
        assert published == []  # still inside the transaction

    assert published == [{"execution_pk": execution.pk, "timeout": 300}]


@pytest.mark.django_db
def test_a_launch_rolled_back_with_its_transaction_is_never_published(
    operator: Actor, published: list, django_capture_on_commit_callbacks: Any
) -> None:
    with (
        django_capture_on_commit_callbacks(execute=True) as callbacks,
        pytest.raises(RuntimeError),
        transaction.atomic(),
    ):
        start(operator)
        raise RuntimeError("the caller's transaction fails after the launch")

    assert callbacks == []
    assert_nothing_written(published)


@pytest.mark.django_db(transaction=True)
def test_a_broker_outage_at_commit_leaves_the_execution_queued_instead_of_failing_the_launch(
    operator: Actor, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def broker_down(**kwargs: int) -> None:
        raise ConnectionError("broker unreachable")

    monkeypatch.setattr(services, "execution_publish", broker_down)

    with caplog.at_level(logging.WARNING, logger="executions.services"):
        execution = start(operator)

    execution.refresh_from_db()
    assert execution.status == S.QUEUED
    assert [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING] == [
        f"could not publish execution pk={execution.pk} to the broker (ConnectionError: broker unreachable); "
        "it stays queued and will be published again by recovery"
    ]
    assert not any(r.exc_info for r in caplog.records)  # one line for operators, no traceback


# --- Who may start a process ----------------------------------------------------------------------------


@pytest.mark.django_db
def test_it_refuses_an_unknown_process_and_writes_nothing(operator: Actor, published: list) -> None:
    with pytest.raises(ProcessNotFound) as caught:
        start(operator, "order-cancellation")

    assert caught.value.message == "There is no process with id 'order-cancellation'."
    assert (caught.value.code, caught.value.http_status) == ("process_not_found", 404)
    assert_nothing_written(published)


@pytest.mark.django_db
def test_it_refuses_a_paused_process_with_its_reason_and_writes_nothing(operator: Actor, published: list) -> None:
    services.process_pause(process=Process.objects.get(slug="order-processing"), reason="Payment gateway maintenance")

    with pytest.raises(ProcessPaused) as caught:
        start(operator)

    assert caught.value.message == (
        "The process 'order-processing' is paused and does not accept new starts (Payment gateway maintenance)."
    )
    assert (caught.value.code, caught.value.http_status) == ("process_paused", 409)
    assert_nothing_written(published)


@pytest.mark.django_db
def test_a_paused_process_without_a_reason_says_only_that_it_is_paused(operator: Actor, published: list) -> None:
    services.process_pause(process=Process.objects.get(slug="order-processing"))

    with pytest.raises(ProcessPaused) as caught:
        start(operator)

    assert caught.value.message == "The process 'order-processing' is paused and does not accept new starts."
    assert_nothing_written(published)


@pytest.mark.django_db
def test_a_resumed_process_accepts_starts_again(operator: Actor, published: list) -> None:
    process = Process.objects.get(slug="order-processing")
    services.process_pause(process=process, reason="Maintenance")
    services.process_resume(process=process)

    assert start(operator).status == S.QUEUED


@pytest.mark.django_db
def test_it_refuses_an_outsider_and_writes_nothing(outsider: User, published: list) -> None:
    with pytest.raises(LaunchDenied) as caught:
        start(Actor.for_user(outsider))

    assert caught.value.message == "You are not allowed to start the process 'order-processing'."
    assert (caught.value.code, caught.value.http_status) == ("permission_denied", 403)
    assert_nothing_written(published)


@pytest.mark.django_db
def test_an_outsider_learns_nothing_about_a_paused_process(outsider: User, published: list) -> None:
    services.process_pause(process=Process.objects.get(slug="order-processing"), reason="Secret migration")

    with pytest.raises(LaunchDenied):
        start(Actor.for_user(outsider))

    assert_nothing_written(published)


@pytest.mark.django_db
def test_staff_may_start_a_process_granted_to_their_group(staff_user: User, published: list) -> None:
    execution = start(Actor.for_user(staff_user))

    assert (execution.status, execution.actor_user) == (S.QUEUED, staff_user)


@pytest.mark.django_db
def test_staff_may_not_start_a_process_not_granted_to_their_group(staff_user: User, published: list) -> None:
    with pytest.raises(LaunchDenied) as caught:
        start(Actor.for_user(staff_user), "data-sync", {"system": "ERP"})

    assert caught.value.message == "You are not allowed to start the process 'data-sync'."
    assert_nothing_written(published)


@pytest.mark.django_db
def test_a_user_granted_one_process_directly_may_start_that_process_only(outsider: User, published: list) -> None:
    assign_perm("executions.execute_process", outsider, Process.objects.get(slug="data-sync"))
    actor = Actor.for_user(outsider)

    execution = start(actor, "data-sync", {"system": "ERP"})
    with pytest.raises(LaunchDenied):
        start(actor)

    assert execution.status == S.QUEUED
    assert list(Execution.objects.values_list("process__slug", flat=True)) == ["data-sync"]


@pytest.mark.django_db
def test_a_group_with_the_global_permission_may_start_every_process(
    manager: User, managers: Group, published: list
) -> None:
    managers.permissions.add(Permission.objects.get(codename="execute_process"))

    execution = start(Actor.for_user(manager), "data-sync", {"system": "CRM"})

    assert execution.status == S.QUEUED


@pytest.mark.django_db
def test_an_inactive_user_is_refused_even_with_the_permission(staff_user: User, published: list) -> None:
    staff_user.is_active = False
    staff_user.save(update_fields=["is_active"])

    with pytest.raises(LaunchDenied):
        start(Actor.for_user(staff_user))

    assert_nothing_written(published)


@pytest.mark.django_db
def test_an_inactive_superuser_is_refused(admin_user: User, published: list) -> None:
    admin_user.is_active = False
    admin_user.save(update_fields=["is_active"])

    with pytest.raises(LaunchDenied):
        start(Actor.for_user(admin_user))

    assert_nothing_written(published)


@pytest.mark.django_db
def test_a_superuser_may_start_any_process(admin_user: User, published: list) -> None:
    execution = start(Actor.for_user(admin_user), "data-sync", {"system": "ERP"})

    assert (execution.status, execution.actor_label) == (S.QUEUED, "ada")


@pytest.mark.django_db
def test_the_operator_may_start_any_process(operator: Actor, published: list) -> None:
    execution = start(operator, "data-sync", {"system": "ERP"}, source="cli")

    assert (execution.status, execution.actor_kind, execution.actor_user) == (S.QUEUED, ActorKind.SYSTEM, None)
    assert execution.events.get().message == "Queued: started by cli:test via Command line"


# --- Parameters -----------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_it_refuses_invalid_parameters_naming_each_field_and_writes_nothing(operator: Actor, published: list) -> None:
    with pytest.raises(InvalidParameters) as caught:
        start(operator, parameters={"orderId": "ORD-1", "priority": "urgent", "colour": "red"})

    assert caught.value.field_errors == {
        "colour": [f"Unknown parameter. Known parameters: {KNOWN_ORDER_PARAMETERS}."],
        "orderId": ["Ensure this value has at least 10 characters (it has 5)."],
        "priority": ["Select a valid choice. urgent is not one of the available choices."],
    }
    assert (caught.value.code, caught.value.http_status) == ("invalid_parameters", 400)
    assert_nothing_written(published)


@pytest.mark.django_db
def test_it_names_the_required_parameters_that_are_missing(operator: Actor, published: list) -> None:
    with pytest.raises(InvalidParameters) as caught:
        start(operator, parameters={})

    assert caught.value.field_errors == REQUIRED_MISSING
    assert str(caught.value) == (
        "Some parameters are not valid. orderId: This field is required.; priority: This field is required."
    )
    assert_nothing_written(published)


@pytest.mark.django_db
def test_no_parameters_at_all_counts_as_an_empty_object(operator: Actor, published: list) -> None:
    with pytest.raises(InvalidParameters) as caught:
        services.execution_start(process_id="order-processing", parameters=None, source="api", actor=operator)

    assert caught.value.field_errors == REQUIRED_MISSING
    assert start(operator, "test-raise", parameters={}).parameters == {}


@pytest.mark.django_db
def test_a_lower_case_priority_is_stored_in_its_canonical_spelling(operator: Actor, published: list) -> None:
    execution = start(operator, parameters={"orderId": "ORD-2024-001", "priority": "high"})

    execution.refresh_from_db()
    assert execution.parameters == {"orderId": "ORD-2024-001", "priority": "High"}


@pytest.mark.django_db
@pytest.mark.parametrize("parameters", [["ORD-2024-001", "High"], "orderId=ORD-2024-001", 42])
def test_it_refuses_parameters_that_are_not_an_object(operator: Actor, published: list, parameters: Any) -> None:
    with pytest.raises(InvalidParameters) as caught:
        start(operator, parameters=parameters)

    assert caught.value.field_errors == {"parameters": ["Parameters must be an object of name/value pairs."]}
    assert_nothing_written(published)


# --- Timeout --------------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_without_a_timeout_the_process_default_applies(operator: Actor, published: list, settings: Any) -> None:
    settings.HEPTORA_DEFAULT_TIMEOUT = 300

    assert start(operator).timeout == 300  # order-processing declares 300 s
    assert start(operator, "test-sleep", {}).timeout == 60  # test-sleep declares 60 s
    assert start(operator, "test-echo", {"text": "hi"}).timeout == 300  # no declaration: the site default


@pytest.mark.django_db
@pytest.mark.parametrize("timeout", [0, -1, True, "10", 10.5, 3601])
def test_it_refuses_a_timeout_that_is_not_a_whole_number_of_seconds_in_range(
    operator: Actor, published: list, settings: Any, timeout: Any
) -> None:
    settings.HEPTORA_MAX_TIMEOUT = 3600

    with pytest.raises(InvalidParameters) as caught:
        start(operator, timeout=timeout)

    assert caught.value.field_errors == {"timeout": ["Timeout must be a whole number of seconds from 1 to 3600."]}
    assert_nothing_written(published)


@pytest.mark.django_db
def test_it_accepts_the_smallest_and_the_largest_timeout_and_passes_it_to_the_broker(
    operator: Actor, published: list, settings: Any, django_capture_on_commit_callbacks: Any
) -> None:
    settings.HEPTORA_MAX_TIMEOUT = 3600

    with django_capture_on_commit_callbacks(execute=True):
        shortest = start(operator, timeout=1)
        longest = start(operator, timeout=3600)

    assert (shortest.timeout, longest.timeout) == (1, 3600)
    assert published == [
        {"execution_pk": shortest.pk, "timeout": 1},
        {"execution_pk": longest.pk, "timeout": 3600},
    ]


# --- The approval gate ----------------------------------------------------------------------------------


@pytest.mark.django_db
def test_a_start_that_needs_approval_waits_and_is_not_published(
    staff_user: User,
    published: list,
    approval_for_orders: list,
    announced: list,
    django_capture_on_commit_callbacks: Any,
) -> None:
    with django_capture_on_commit_callbacks(execute=True):
        execution = start(Actor.for_user(staff_user), parameters={"orderId": "ORD-2024-001", "priority": "high"})

    execution.refresh_from_db()
    assert execution.status == S.AWAITING_APPROVAL
    assert (execution.queued_at, execution.published_at) == (None, None)
    assert published == []
    assert approval_for_orders == [{"process": "order-processing", "actor": "sam", "source": "api",
                                    "parameters": {"orderId": "ORD-2024-001", "priority": "High"}}]
    assert [e for e in events_of(execution) if e[0] == "status"] == [  # approvals adds its own log line
        (EventKind.STATUS, EventLevel.INFO, "Awaiting approval: started by sam via REST API",
         {"status": "awaiting_approval", "source": "api", "actor": "sam"}),
    ]
    assert [(e.type, e.execution_id) for e in announced] == [("process.awaiting_approval", execution.public_id)]


@pytest.mark.django_db
def test_a_gate_that_says_no_lets_the_start_through(
    operator: Actor, published: list, approval_for_orders: list
) -> None:
    execution = start(operator, "test-echo", {"text": "hi"})

    assert execution.status == S.QUEUED
    assert [call["process"] for call in approval_for_orders] == ["test-echo"]


@pytest.mark.django_db
def test_approving_queues_the_execution_and_publishes_it_on_commit(
    operator: Actor, published: list, approval_for_orders: list, django_capture_on_commit_callbacks: Any
) -> None:
    execution = start(operator)

    with django_capture_on_commit_callbacks(execute=True):
        approved = services.execution_approve(execution=execution, message="Approved by ada")
        assert published == []

    assert approved is True
    assert execution.status == S.QUEUED
    assert execution.queued_at is not None
    assert execution.published_at == execution.queued_at
    assert published == [{"execution_pk": execution.pk, "timeout": 300}]
    assert events_of(execution)[-1] == (EventKind.STATUS, EventLevel.INFO, "Approved by ada", {"status": "queued"})


@pytest.mark.django_db
def test_approving_twice_queues_and_publishes_once(
    operator: Actor, published: list, approval_for_orders: list, django_capture_on_commit_callbacks: Any
) -> None:
    execution = start(operator)
    services.execution_approve(execution=execution, message="Approved by ada")

    with django_capture_on_commit_callbacks(execute=True):
        again = services.execution_approve(execution=execution, message="Approved by maria")

    assert again is False
    assert published == []
    assert [e.message for e in execution.events.filter(kind="status")] == [
        "Awaiting approval: started by cli:test via REST API",
        "Approved by ada",
    ]


# --- Cancel ---------------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_cancelling_a_queued_execution_cancels_it_at_once(
    operator: Actor, published: list, announced: list
) -> None:
    execution = start(operator)

    returned = services.execution_cancel(execution=execution, actor=operator)

    execution.refresh_from_db()
    assert returned == execution
    assert execution.status == S.CANCELLED
    assert execution.finished_at is not None
    assert events_of(execution)[-1] == (
        EventKind.STATUS, EventLevel.INFO, "Cancelled by cli:test", {"status": "cancelled", "by": "cli:test"}
    )
    cancelled = announced[-1]
    assert (cancelled.type, cancelled.execution_id, cancelled.process_id, cancelled.status, cancelled.data) == (
        "process.cancelled", execution.public_id, "order-processing", "cancelled", {"by": "cli:test"}
    )


@pytest.mark.django_db
def test_cancelling_an_execution_awaiting_approval_cancels_it(
    operator: Actor, published: list, approval_for_orders: list
) -> None:
    execution = start(operator)

    services.execution_cancel(execution=execution, actor=operator)

    assert execution.status == S.CANCELLED


@pytest.mark.django_db
def test_cancelling_a_running_execution_asks_it_to_stop_at_its_next_step(operator: Actor, published: list) -> None:
    execution = start(operator)
    Execution.objects.filter(pk=execution.pk).update(status=S.RUNNING, lease="lease-1")
    execution.refresh_from_db()

    services.execution_cancel(execution=execution, actor=operator)

    assert execution.status == S.RUNNING
    assert execution.cancel_requested_at is not None
    assert events_of(execution)[-1] == (
        EventKind.LOG, EventLevel.WARNING,
        "Cancellation requested by cli:test; the process stops at its next step.", {},
    )


@pytest.mark.django_db
def test_cancelling_a_finished_execution_is_refused_and_changes_nothing(operator: Actor, published: list) -> None:
    execution = start(operator)
    Execution.objects.filter(pk=execution.pk).update(status=S.SUCCESS)
    execution.refresh_from_db()

    with pytest.raises(InvalidTransition) as caught:
        services.execution_cancel(execution=execution, actor=operator)

    assert caught.value.message == f"{execution.public_id} has already finished (success); there is nothing to cancel."
    assert (caught.value.code, caught.value.http_status) == ("invalid_state", 409)
    execution.refresh_from_db()
    assert (execution.status, execution.finished_at) == (S.SUCCESS, None)
    assert execution.events.count() == 1


# --- Retry ----------------------------------------------------------------------------------------------


def failed_execution(actor: Actor) -> Execution:
    execution = start(actor, notify_email="ops@example.com", timeout=120)
    services.execution_transition(execution=execution, to=S.FAILED, message="Failed: gateway declined",
                                  error_code="gateway_declined")
    return execution


@pytest.mark.django_db
def test_retrying_starts_a_new_execution_that_points_at_the_original(operator: Actor, published: list) -> None:
    original = failed_execution(operator)

    retry = services.execution_retry(execution=original, actor=operator, source="cli")

    retry.refresh_from_db()
    original.refresh_from_db()
    assert retry.pk != original.pk
    assert retry.public_id != original.public_id
    assert retry.retry_of == original
    assert list(original.retries.all()) == [retry]
    assert (retry.status, retry.source) == (S.QUEUED, "cli")
    assert retry.parameters == original.parameters == {"orderId": "ORD-2024-001", "priority": "High"}
    assert (retry.timeout, retry.notify_email) == (120, "ops@example.com")
    assert events_of(retry) == [
        (EventKind.STATUS, EventLevel.INFO,
         f"Queued: started by cli:test via Command line (retry of {original.public_id})",
         {"status": "queued", "source": "cli", "actor": "cli:test"}),
    ]
    assert (original.status, original.error_code) == (S.FAILED, "gateway_declined")


@pytest.mark.django_db
@pytest.mark.parametrize("status", [S.FAILED, S.CANCELLED, S.EXPIRED, S.REJECTED])
def test_an_execution_that_ended_without_success_can_be_retried(operator: Actor, published: list, status: str) -> None:
    original = start(operator)
    Execution.objects.filter(pk=original.pk).update(status=status)
    original.refresh_from_db()

    retry = services.execution_retry(execution=original, actor=operator, source="api")

    assert (retry.status, retry.retry_of) == (S.QUEUED, original)


@pytest.mark.django_db
@pytest.mark.parametrize(("status", "words"), [
    (S.SUCCESS, "success"), (S.QUEUED, "queued"), (S.RUNNING, "running"), (S.AWAITING_APPROVAL, "awaiting approval"),
])
def test_it_refuses_to_retry_an_execution_that_succeeded_or_has_not_ended(
    operator: Actor, published: list, status: str, words: str
) -> None:
    original = start(operator)
    Execution.objects.filter(pk=original.pk).update(status=status)
    original.refresh_from_db()

    with pytest.raises(InvalidTransition) as caught:
        services.execution_retry(execution=original, actor=operator, source="api")

    assert caught.value.message == (
        f"{original.public_id} is {words}; only failed, cancelled, expired or rejected executions can be retried."
    )
    assert Execution.objects.count() == 1


@pytest.mark.django_db
def test_a_retry_follows_the_launch_rules_of_today(operator: Actor, published: list) -> None:
    original = failed_execution(operator)
    services.process_pause(process=original.process, reason="Maintenance")

    with pytest.raises(ProcessPaused):
        services.execution_retry(execution=original, actor=operator, source="api")

    assert Execution.objects.count() == 1


# --- Who may cancel or retry ----------------------------------------------------------------------------


@pytest.mark.django_db
def test_the_user_who_started_an_execution_may_cancel_it(staff_user: User, published: list) -> None:
    execution = start(Actor.for_user(staff_user))

    services.execution_cancel(execution=execution, actor=Actor.for_user(staff_user))

    assert execution.status == S.CANCELLED


@pytest.mark.django_db
def test_someone_who_may_see_all_executions_of_the_process_may_cancel_them(
    staff_user: User, manager: User, published: list
) -> None:
    execution = start(Actor.for_user(staff_user))
    assign_perm("executions.view_process_executions", manager, execution.process)

    services.execution_cancel(execution=execution, actor=Actor.for_user(manager))

    assert execution.status == S.CANCELLED
    assert execution.events.last().message == "Cancelled by maria"


@pytest.mark.django_db
def test_the_superuser_and_the_operator_may_cancel_any_execution(
    staff_user: User, admin_user: User, operator: Actor, published: list
) -> None:
    first, second = start(Actor.for_user(staff_user)), start(Actor.for_user(staff_user))

    services.execution_cancel(execution=first, actor=Actor.for_user(admin_user))
    services.execution_cancel(execution=second, actor=operator)

    assert (first.status, second.status) == (S.CANCELLED, S.CANCELLED)


@pytest.mark.django_db
@pytest.mark.parametrize("who", ["outsider", "colleague"])
def test_others_may_not_cancel_and_nothing_changes(staff_user: User, outsider: User, published: list, who: str) -> None:
    execution = start(Actor.for_user(staff_user))
    # A colleague may start the same process, but sees only their own executions.
    user = outsider if who == "outsider" else member_of_staff("carl")

    with pytest.raises(LaunchDenied) as caught:
        services.execution_cancel(execution=execution, actor=Actor.for_user(user))

    assert caught.value.message == f"You are not allowed to cancel {execution.public_id}."
    execution.refresh_from_db()
    assert (execution.status, execution.finished_at) == (S.QUEUED, None)
    assert execution.events.count() == 1


@pytest.mark.django_db
def test_a_deactivated_user_may_no_longer_cancel_what_they_started(staff_user: User, published: list) -> None:
    execution = start(Actor.for_user(staff_user))
    staff_user.is_active = False
    staff_user.save(update_fields=["is_active"])

    with pytest.raises(LaunchDenied) as caught:
        services.execution_cancel(execution=execution, actor=Actor.for_user(staff_user))

    assert caught.value.message == f"You are not allowed to cancel {execution.public_id}."
    execution.refresh_from_db()
    assert execution.status == S.QUEUED
    assert execution.events.count() == 1


@pytest.mark.django_db
def test_the_user_who_started_an_execution_may_retry_it(staff_user: User, published: list) -> None:
    original = failed_execution(Actor.for_user(staff_user))

    retry = services.execution_retry(execution=original, actor=Actor.for_user(staff_user), source="form")

    assert (retry.retry_of, retry.actor_user) == (original, staff_user)


@pytest.mark.django_db
def test_someone_who_may_see_all_executions_of_the_process_may_retry_them(
    staff_user: User, published: list
) -> None:
    original = failed_execution(Actor.for_user(staff_user))
    colleague = member_of_staff("carl")
    assign_perm("executions.view_process_executions", colleague, original.process)

    retry = services.execution_retry(execution=original, actor=Actor.for_user(colleague), source="api")

    assert (retry.retry_of, retry.actor_label) == (original, "carl")


@pytest.mark.django_db
@pytest.mark.parametrize("who", ["outsider", "colleague"])
def test_others_may_not_retry_and_no_execution_is_created(
    staff_user: User, outsider: User, published: list, who: str
) -> None:
    original = failed_execution(Actor.for_user(staff_user))
    user = outsider if who == "outsider" else member_of_staff("carl")

    with pytest.raises(LaunchDenied) as caught:
        services.execution_retry(execution=original, actor=Actor.for_user(user), source="api")

    assert caught.value.message == f"You are not allowed to retry {original.public_id}."
    assert list(Execution.objects.all()) == [original]
