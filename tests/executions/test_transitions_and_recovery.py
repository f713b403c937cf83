"""Legal status changes, concurrent writers, and the recovery of executions a dead worker left behind.

Recovery rows are set up by hand (a running execution whose heartbeat stopped, a queued one whose publish
was lost) so each rule is checked without a worker; the real-worker versions live in test_engine_worker.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone

from executions import services
from executions.actors import Actor
from executions.errors import InvalidTransition
from executions.models import (
    TERMINAL_STATUSES,
    TRANSITIONS,
    EventKind,
    EventLevel,
    Execution,
    ExecutionStatus,
    Process,
)
from executions.services import RecoveryReport

S = ExecutionStatus
pytestmark = pytest.mark.django_db


@pytest.fixture
def published(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, int]]:
    calls: list[dict[str, int]] = []
    monkeypatch.setattr(services, "execution_publish", lambda **kwargs: calls.append(kwargs))
    monkeypatch.setattr(services, "broker_backlog", lambda: 0)  # an empty queue: nothing is waiting there
    return calls


@pytest.fixture(autouse=True)
def engine_settings(settings: Any) -> None:
    settings.HEPTORA_STALE_AFTER_SECONDS = 30
    settings.HEPTORA_MAX_ATTEMPTS = 3


def start(operator: Actor, process_id: str = "test-echo", **kwargs: Any) -> Execution:
    parameters = {"text": "hello"} if process_id == "test-echo" else {}
    return services.execution_start(process_id=process_id, parameters=parameters, source="cli", actor=operator,
                                    **kwargs)


def set_status(execution: Execution, status: str, **fields: Any) -> Execution:
    Execution.objects.filter(pk=execution.pk).update(status=status, **fields)
    execution.refresh_from_db()
    return execution


def running(execution: Execution, *, attempt: int = 1, silent_for: int = 120, started_ago: int = 130,
            **fields: Any) -> Execution:
    """What a worker that claimed the execution and then died leaves in the row."""
    now = timezone.now()
    return set_status(
        execution, S.RUNNING, lease="lease-1", worker="w1@host", attempt=attempt, current_step=1,
        started_at=now - timedelta(seconds=started_ago), heartbeat_at=now - timedelta(seconds=silent_for), **fields,
    )


def status_events(execution: Execution) -> list[tuple[str, str, dict[str, Any]]]:
    return [(e.level, e.message, e.data) for e in execution.events.filter(kind=EventKind.STATUS).order_by("id")]


def recover(django_capture_on_commit_callbacks: Any) -> RecoveryReport:
    with django_capture_on_commit_callbacks(execute=True):
        return services.executions_recover_stalled()


# --- The transition table -------------------------------------------------------------------------------


def test_the_terminal_statuses_are_the_ones_an_execution_ends_in() -> None:
    assert {S.SUCCESS, S.FAILED, S.CANCELLED, S.REJECTED, S.EXPIRED} == TERMINAL_STATUSES
    assert all(TRANSITIONS[status] == frozenset() for status in TERMINAL_STATUSES)


def test_a_legal_transition_writes_the_status_an_event_and_the_finish_time(operator: Actor, published: list) -> None:
    execution = start(operator)

    moved = services.execution_transition(execution=execution, to=S.FAILED, message="Failed: no stock",
                                          event_data={"code": "no_stock"}, error_code="no_stock")

    assert moved is True
    stored = Execution.objects.get(pk=execution.pk)
    assert (stored.status, stored.error_code) == (S.FAILED, "no_stock")
    assert stored.finished_at is not None
    assert execution.status == S.FAILED  # the caller's copy is refreshed
    assert status_events(execution)[-1] == (
        EventLevel.INFO, "Failed: no stock", {"status": "failed", "code": "no_stock"}
    )


def test_an_illegal_transition_returns_false_and_writes_nothing(operator: Actor, published: list) -> None:
    execution = start(operator)

    moved = services.execution_transition(execution=execution, to=S.SUCCESS, message="Done", result={"ok": True})

    assert moved is False
    stored = Execution.objects.get(pk=execution.pk)
    assert (stored.status, stored.result, stored.finished_at) == (S.QUEUED, None, None)
    assert execution.events.count() == 1


@pytest.mark.parametrize("terminal", sorted(TERMINAL_STATUSES))
def test_an_execution_that_has_ended_cannot_move_to_any_status(
    operator: Actor, published: list, terminal: str
) -> None:
    execution = set_status(start(operator), terminal)

    moved = {to: services.execution_transition(execution=execution, to=to, message=f"to {to}") for to in S.values}

    assert moved == {to: False for to in S.values}
    assert Execution.objects.get(pk=execution.pk).status == terminal
    assert execution.events.count() == 1


def test_a_transition_for_a_worker_that_lost_its_lease_is_refused(operator: Actor, published: list) -> None:
    execution = running(start(operator))

    moved = services.execution_transition(execution=execution, to=S.SUCCESS, message="Done", expect_lease="lease-0")

    assert moved is False
    assert Execution.objects.get(pk=execution.pk).status == S.RUNNING
    assert execution.events.count() == 1


# --- Concurrent writers ---------------------------------------------------------------------------------


def test_of_two_concurrent_cancellers_exactly_one_wins(operator: Actor, published: list) -> None:
    execution = start(operator)
    first = Execution.objects.get(pk=execution.pk)
    second = Execution.objects.get(pk=execution.pk)  # read before the first write, as a second request would

    first_won = services.execution_transition(execution=first, to=S.CANCELLED, message="Cancelled by ada")
    second_won = services.execution_transition(execution=second, to=S.CANCELLED, message="Cancelled by maria")

    assert (first_won, second_won) == (True, False)
    assert status_events(execution) == [
        (EventLevel.INFO, "Queued: started by cli:test via Command line",
         {"status": "queued", "source": "cli", "actor": "cli:test"}),
        (EventLevel.INFO, "Cancelled by ada", {"status": "cancelled"}),
    ]


def test_the_slower_of_two_cancel_requests_hears_that_it_is_already_cancelled(
    operator: Actor, published: list
) -> None:
    execution = start(operator)
    first = Execution.objects.get(pk=execution.pk)
    second = Execution.objects.get(pk=execution.pk)
    services.execution_cancel(execution=first, actor=operator)

    with pytest.raises(InvalidTransition) as caught:
        services.execution_cancel(execution=second, actor=Actor.system("scheduler"))

    assert caught.value.message == (
        f"{execution.public_id} has already finished (cancelled); there is nothing to cancel."
    )
    assert [message for _, message, _ in status_events(execution)][1:] == ["Cancelled by cli:test"]


def test_a_cancel_that_races_a_worker_claim_becomes_a_request_to_stop(operator: Actor, published: list) -> None:
    execution = start(operator)
    stale_copy = Execution.objects.get(pk=execution.pk)  # still says queued
    running(execution, silent_for=0, started_ago=0)  # meanwhile a worker claimed it

    services.execution_cancel(execution=stale_copy, actor=operator)

    stored = Execution.objects.get(pk=execution.pk)
    assert stored.status == S.RUNNING
    assert stored.cancel_requested_at is not None
    assert [(e.kind, e.message) for e in execution.events.order_by("id")][1:] == [
        (EventKind.LOG, "Cancellation requested by cli:test; the process stops at its next step."),
    ]


# --- Recovery of running executions whose worker went silent --------------------------------------------


def test_a_silent_execution_with_attempts_left_is_queued_again_and_published(
    operator: Actor, published: list, django_capture_on_commit_callbacks: Any
) -> None:
    execution = running(start(operator), attempt=1)
    before = timezone.now()

    report = recover(django_capture_on_commit_callbacks)

    assert report == RecoveryReport(requeued=[execution.public_id])
    execution.refresh_from_db()
    assert execution.status == S.QUEUED
    assert (execution.lease, execution.worker, execution.attempt) == ("", "", 1)
    assert before <= execution.queued_at == execution.published_at <= timezone.now()
    assert execution.finished_at is None
    assert status_events(execution)[-1] == (
        EventLevel.WARNING, "Attempt 1 lost (worker w1@host stopped responding); queued again from the start.",
        {"status": "queued"},
    )
    assert published == [{"execution_pk": execution.pk, "timeout": 300}]


@pytest.mark.parametrize(("max_attempts", "attempt"), [(3, 3), (2, 2), (1, 1)])
def test_a_silent_execution_out_of_attempts_fails_with_worker_lost(
    operator: Actor, published: list, django_capture_on_commit_callbacks: Any, settings: Any,
    max_attempts: int, attempt: int,
) -> None:
    settings.HEPTORA_MAX_ATTEMPTS = max_attempts
    execution = running(start(operator), attempt=attempt)

    report = recover(django_capture_on_commit_callbacks)

    assert report == RecoveryReport(failed=[execution.public_id])
    execution.refresh_from_db()
    message = f"The worker running this execution was lost; after {attempt} attempts."
    assert (execution.status, execution.error_code, execution.error_message, execution.error_step) == (
        S.FAILED, "worker_lost", message, 1
    )
    assert execution.finished_at is not None
    assert status_events(execution)[-1] == (
        EventLevel.ERROR, f"Failed: {message}", {"status": "failed", "code": "worker_lost"}
    )
    assert published == []


def test_a_silent_execution_of_a_process_that_must_not_run_twice_fails_at_once(
    operator: Actor, published: list, django_capture_on_commit_callbacks: Any
) -> None:
    execution = running(start(operator, "test-once"), attempt=1)

    report = recover(django_capture_on_commit_callbacks)

    assert report == RecoveryReport(failed=[execution.public_id])
    execution.refresh_from_db()
    assert (execution.status, execution.error_code, execution.error_message) == (
        S.FAILED, "worker_lost", "The worker running this execution was lost; it may not run twice."
    )
    assert status_events(execution)[-1] == (
        EventLevel.ERROR, "Failed: The worker running this execution was lost; it may not run twice.",
        {"status": "failed", "code": "worker_lost"},
    )
    assert published == []


def test_a_silent_execution_past_its_time_limit_fails_with_timeout(
    operator: Actor, published: list, django_capture_on_commit_callbacks: Any
) -> None:
    execution = running(start(operator, timeout=60), attempt=1, started_ago=90, silent_for=45)

    report = recover(django_capture_on_commit_callbacks)

    assert report == RecoveryReport(failed=[execution.public_id])
    execution.refresh_from_db()
    message = "Timed out after 60 s (worker w1@host stopped responding)."
    assert (execution.status, execution.error_code, execution.error_message, execution.error_step) == (
        S.FAILED, "timeout", message, 1
    )
    assert status_events(execution)[-1] == (EventLevel.ERROR, f"Failed: {message}",
                                            {"status": "failed", "code": "timeout"})
    assert published == []


def test_an_execution_with_a_fresh_heartbeat_is_left_alone(
    operator: Actor, published: list, django_capture_on_commit_callbacks: Any
) -> None:
    execution = running(start(operator), silent_for=5, started_ago=400)  # past its timeout, but alive
    snapshot = Execution.objects.filter(pk=execution.pk).values().get()

    report = recover(django_capture_on_commit_callbacks)

    assert report == RecoveryReport()
    assert Execution.objects.filter(pk=execution.pk).values().get() == snapshot
    assert execution.events.count() == 1
    assert published == []


def test_recovery_ignores_executions_that_are_not_running(
    operator: Actor, published: list, django_capture_on_commit_callbacks: Any
) -> None:
    old = timezone.now() - timedelta(hours=1)
    ended = [set_status(start(operator), status, heartbeat_at=old, started_at=old, published_at=old)
             for status in (S.SUCCESS, S.FAILED, S.CANCELLED, S.AWAITING_APPROVAL)]

    report = recover(django_capture_on_commit_callbacks)

    assert report == RecoveryReport()
    assert [Execution.objects.get(pk=e.pk).status for e in ended] == [
        S.SUCCESS, S.FAILED, S.CANCELLED, S.AWAITING_APPROVAL
    ]
    assert published == []


def test_running_recovery_twice_recovers_an_execution_once(
    operator: Actor, published: list, django_capture_on_commit_callbacks: Any
) -> None:
    execution = running(start(operator), attempt=1)

    first = recover(django_capture_on_commit_callbacks)
    second = recover(django_capture_on_commit_callbacks)

    assert (first.requeued, second) == ([execution.public_id], RecoveryReport())
    assert published == [{"execution_pk": execution.pk, "timeout": 300}]
    assert len(status_events(execution)) == 2


def test_an_execution_the_user_asked_to_cancel_is_cancelled_not_run_again_when_its_worker_is_lost(
    operator: Actor, published: list, django_capture_on_commit_callbacks: Any
) -> None:
    execution = running(start(operator), attempt=1, cancel_requested_at=timezone.now() - timedelta(seconds=100))

    recover(django_capture_on_commit_callbacks)

    execution.refresh_from_db()
    assert execution.status == S.CANCELLED
    assert published == []


# --- Recovery of queued executions whose publish was lost -----------------------------------------------


def test_a_queued_execution_never_picked_up_is_published_again_once(operator: Actor, published: list) -> None:
    execution = set_status(start(operator), S.QUEUED, published_at=timezone.now() - timedelta(minutes=10))
    before = timezone.now()

    first = services.executions_recover_stalled()
    second = services.executions_recover_stalled()

    assert first == RecoveryReport(republished=[execution.public_id])
    assert second == RecoveryReport()
    assert published == [{"execution_pk": execution.pk, "timeout": 300}]
    execution.refresh_from_db()
    assert execution.status == S.QUEUED
    assert before <= execution.published_at <= timezone.now()
    assert execution.events.count() == 1


def test_a_recently_published_queued_execution_is_not_published_again(operator: Actor, published: list) -> None:
    published_at = timezone.now() - timedelta(seconds=100)  # republish waits max(5 x 30 s, 60 s) = 150 s
    execution = set_status(start(operator), S.QUEUED, published_at=published_at)

    report = services.executions_recover_stalled()

    assert report == RecoveryReport()
    assert published == []
    assert Execution.objects.get(pk=execution.pk).published_at == published_at


def test_a_silent_execution_of_a_process_no_longer_in_the_code_fails(
    published: list, django_capture_on_commit_callbacks: Any
) -> None:
    legacy = Process.objects.create(slug="legacy-import", name="Legacy Import", default_timeout=600)
    execution = running(Execution.objects.create(process=legacy, source="cli", actor_kind="system",
                                                 actor_label="cli:test", timeout=600), attempt=1)

    report = recover(django_capture_on_commit_callbacks)

    assert report == RecoveryReport(failed=[execution.public_id])
    execution.refresh_from_db()
    assert (execution.status, execution.error_code, execution.error_message) == (
        S.FAILED, "worker_lost", "The worker running this execution was lost; its process is no longer defined in code."
    )
    assert published == []


def test_a_waiting_execution_is_not_published_again_while_the_queue_still_holds_messages(
    operator: Actor, published: list, monkeypatch: pytest.MonkeyPatch
) -> None:
    execution = set_status(start(operator), S.QUEUED, published_at=timezone.now() - timedelta(minutes=30))
    monkeypatch.setattr(services, "broker_backlog", lambda: 250)  # a backlog, not a lost message

    assert services.executions_recover_stalled() == RecoveryReport()
    assert published == []
    execution.refresh_from_db()
    assert execution.published_at < timezone.now() - timedelta(minutes=29)
