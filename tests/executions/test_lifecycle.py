"""The lifecycle subscription point that webhooks, approvals, chat and notifications listen on.

"transaction" handlers run inside the change's transaction and share its fate; "commit" handlers run only
once it has committed, so these tests use real commits (transaction=True) where the difference matters.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from django.contrib.auth.models import Group
from django.db import connection, transaction

from executions import lifecycle, services
from executions.actors import Actor
from executions.lifecycle import LifecycleEvent
from executions.models import Execution, ExecutionEvent, ExecutionStatus

S = ExecutionStatus


@pytest.fixture(autouse=True)
def no_broker(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(services, "execution_publish", lambda **kwargs: None)


@pytest.fixture
def subscribe() -> Iterator[Callable[..., None]]:
    """Subscribe handlers for one test; every one of them is unsubscribed afterwards."""
    handlers: list[Callable[[LifecycleEvent], None]] = []

    def add(handler: Callable[[LifecycleEvent], None], **kwargs: Any) -> None:
        handlers.append(handler)
        lifecycle.subscribe(handler, **kwargs)

    yield add
    for handler in handlers:
        lifecycle.unsubscribe(handler)


def start(operator: Actor, text: str = "hello") -> Execution:
    return services.execution_start(process_id="test-echo", parameters={"text": text}, source="cli", actor=operator)


# --- Transaction phase ----------------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_a_transaction_handler_runs_inside_the_transaction_that_made_the_change(
    operator: Actor, subscribe: Callable[..., None]
) -> None:
    seen: list[tuple[str, bool, str]] = []

    def handler(event: LifecycleEvent) -> None:
        stored = Execution.objects.get(pk=event.execution_pk).status  # the change is visible to it
        seen.append((event.type, connection.in_atomic_block, stored))

    subscribe(handler, phase="transaction")

    execution = start(operator)

    assert seen == [("process.queued", True, "queued")]
    assert not connection.in_atomic_block
    assert execution.status == S.QUEUED


@pytest.mark.django_db(transaction=True)
def test_rows_a_transaction_handler_writes_are_rolled_back_with_the_change(
    operator: Actor, subscribe: Callable[..., None]
) -> None:
    def handler(event: LifecycleEvent) -> None:
        Group.objects.create(name=f"listener saw {event.execution_id}")

    subscribe(handler, phase="transaction")

    with pytest.raises(RuntimeError), transaction.atomic():
        start(operator)
        assert Group.objects.filter(name__startswith="listener saw").count() == 1
        raise RuntimeError("the surrounding transaction fails")

    assert Group.objects.filter(name__startswith="listener saw").count() == 0
    assert Execution.objects.count() == 0


@pytest.mark.django_db(transaction=True)
def test_a_failing_transaction_handler_undoes_the_launch(operator: Actor, subscribe: Callable[..., None]) -> None:
    def handler(event: LifecycleEvent) -> None:
        raise LookupError("cannot write the approval request")

    subscribe(handler, phase="transaction")

    with pytest.raises(LookupError, match=r"^cannot write the approval request$"):
        start(operator)

    assert Execution.objects.count() == 0
    assert ExecutionEvent.objects.count() == 0


# --- Commit phase ---------------------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_a_commit_handler_runs_only_after_the_transaction_commits(
    operator: Actor, subscribe: Callable[..., None]
) -> None:
    seen: list[tuple[str, bool]] = []
    subscribe(lambda event: seen.append((event.type, connection.in_atomic_block)))

    with transaction.atomic():
        execution = start(operator)
        services.execution_cancel(execution=execution, actor=operator)
        assert seen == []

    assert seen == [("process.queued", False), ("process.cancelled", False)]


@pytest.mark.django_db(transaction=True)
def test_a_commit_handler_is_never_called_for_a_change_that_was_rolled_back(
    operator: Actor, subscribe: Callable[..., None]
) -> None:
    seen: list[LifecycleEvent] = []
    subscribe(seen.append)

    with pytest.raises(RuntimeError), transaction.atomic():
        start(operator)
        raise RuntimeError("the surrounding transaction fails")

    assert seen == []
    assert Execution.objects.count() == 0


@pytest.mark.django_db(transaction=True)
def test_a_commit_handler_is_not_called_for_a_rolled_back_savepoint_but_is_for_the_rest(
    operator: Actor, subscribe: Callable[..., None]
) -> None:
    seen: list[str] = []
    subscribe(lambda event: seen.append(event.execution_id))

    with transaction.atomic():
        kept = start(operator, "kept")
        with pytest.raises(RuntimeError), transaction.atomic():
            start(operator, "undone")
            raise RuntimeError("inner block fails")

    assert seen == [kept.public_id]
    assert list(Execution.objects.values_list("public_id", flat=True)) == [kept.public_id]


@pytest.mark.django_db(transaction=True)
def test_a_handler_receives_what_happened_to_which_execution(operator: Actor, subscribe: Callable[..., None]) -> None:
    seen: list[LifecycleEvent] = []
    subscribe(seen.append)

    execution = start(operator)
    services.execution_cancel(execution=execution, actor=operator)

    assert [(e.type, e.execution_pk, e.execution_id, e.process_id, e.status, e.data) for e in seen] == [
        ("process.queued", execution.pk, execution.public_id, "test-echo", "queued", {}),
        ("process.cancelled", execution.pk, execution.public_id, "test-echo", "cancelled", {"by": "cli:test"}),
    ]
    assert seen[0].occurred_at <= seen[1].occurred_at


@pytest.mark.django_db(transaction=True)
def test_a_failing_commit_handler_is_logged_and_does_not_stop_the_others_or_the_caller(
    operator: Actor, subscribe: Callable[..., None], caplog: pytest.LogCaptureFixture
) -> None:
    seen: list[str] = []

    def broken(event: LifecycleEvent) -> None:
        raise ValueError("listener bug")

    subscribe(broken)
    subscribe(lambda event: seen.append(event.type))

    with caplog.at_level(logging.ERROR, logger="executions.lifecycle"):
        execution = start(operator)

    assert execution.status == S.QUEUED
    assert Execution.objects.filter(pk=execution.pk, status=S.QUEUED).exists()
    assert seen == ["process.queued"]
    failures = [r for r in caplog.records if r.name == "executions.lifecycle"]
    assert [r.getMessage() for r in failures] == [
        f"Lifecycle handler {broken!r} failed for process.queued {execution.public_id}"
    ]
    assert failures[0].exc_info[1].args == ("listener bug",)


# --- Choosing events ------------------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_a_handler_subscribed_to_some_events_hears_only_those(operator: Actor, subscribe: Callable[..., None]) -> None:
    seen: list[str] = []
    subscribe(lambda event: seen.append(event.type), events=[lifecycle.PROCESS_CANCELLED, lifecycle.PROCESS_FAILED])

    cancelled = start(operator)
    services.execution_cancel(execution=cancelled, actor=operator)
    failed = start(operator)
    services.execution_transition(execution=failed, to=S.FAILED, message="Failed: boom", event_data={"code": "x"})
    start(operator)

    assert seen == ["process.cancelled", "process.failed"]


@pytest.mark.django_db(transaction=True)
def test_it_refuses_to_subscribe_to_events_that_do_not_exist(operator: Actor) -> None:
    seen: list[str] = []

    def handler(event: LifecycleEvent) -> None:
        seen.append(event.type)

    try:
        with pytest.raises(ValueError, match=r"^Unknown lifecycle events: process\.exploded, process\.finished$"):
            lifecycle.subscribe(handler, events=["process.queued", "process.finished", "process.exploded"],
                                phase="transaction")
        start(operator)
    finally:
        lifecycle.unsubscribe(handler)

    assert seen == []  # not subscribed at all, not even to the event that exists


@pytest.mark.django_db(transaction=True)
def test_subscribing_the_same_handler_twice_calls_it_once(operator: Actor, subscribe: Callable[..., None]) -> None:
    seen: list[str] = []

    def handler(event: LifecycleEvent) -> None:
        seen.append(event.type)

    subscribe(handler)
    subscribe(handler)

    start(operator)

    assert seen == ["process.queued"]


@pytest.mark.django_db(transaction=True)
def test_an_unsubscribed_handler_is_no_longer_called(operator: Actor) -> None:
    seen: list[str] = []

    def handler(event: LifecycleEvent) -> None:
        seen.append(event.type)

    lifecycle.subscribe(handler)
    lifecycle.subscribe(handler, phase="transaction")
    lifecycle.unsubscribe(handler)

    start(operator)

    assert seen == []
