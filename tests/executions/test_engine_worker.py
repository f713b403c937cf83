"""The execution engine on a real Celery worker process: what a requester and an operator would see."""

from __future__ import annotations

import os
import re
import signal
import time

import pytest
from django.db import transaction

from executions import services
from executions.actors import Actor
from executions.models import EventKind, Execution, ExecutionStatus
from tests.conftest import WorkerProcess, wait_for, wait_for_status

S = ExecutionStatus
pytestmark = pytest.mark.django_db(transaction=True)


def start(process_id: str, operator: Actor, **params: object) -> Execution:
    return services.execution_start(process_id=process_id, parameters=params, source="cli", actor=operator)


def test_an_order_runs_to_success_reporting_each_step(worker: WorkerProcess, operator: Actor) -> None:
    execution = start("order-processing", operator, orderId="ORD-2024-001", priority="high")

    execution = wait_for_status(execution, S.SUCCESS, S.FAILED)

    assert execution.status == S.SUCCESS
    assert execution.parameters["priority"] == "High"
    assert execution.result["orderId"] == "ORD-2024-001"
    assert execution.result["confirmationNumber"].startswith("CONF-")
    assert (execution.current_step, execution.total_steps, execution.percent) == (5, 5, 100)
    assert execution.attempt == 1
    assert execution.started_at <= execution.finished_at
    steps = [e.message for e in execution.events.filter(kind=EventKind.STEP)]
    assert steps == [
        "Step 1/5: Validating order",
        "Step 2/5: Checking inventory",
        "Step 3/5: Charging payment",
        "Step 4/5: Fulfilling order",
        "Step 5/5: Sending confirmation",
    ]
    statuses = [e.data["status"] for e in execution.events.filter(kind=EventKind.STATUS)]
    assert statuses == ["queued", "running", "success"]


def test_progress_is_visible_while_the_execution_runs(worker: WorkerProcess, operator: Actor) -> None:
    execution = start("test-steps", operator, delay=0.1)

    seen = wait_for(execution, lambda e: e.status == S.RUNNING and e.current_step >= 3)

    assert seen.progress_text.startswith(f"Step {seen.current_step}/20 — Step number {seen.current_step}")
    assert 0 < seen.percent < 100
    assert wait_for_status(execution, S.SUCCESS).percent == 100


def test_a_process_that_raises_ends_failed_with_the_error_recorded(worker: WorkerProcess, operator: Actor) -> None:
    execution = wait_for_status(start("test-raise", operator), S.FAILED, S.SUCCESS)

    assert execution.status == S.FAILED
    assert execution.error_code == "process_error"
    assert execution.error_message == "ZeroDivisionError: division by zero"
    assert execution.error_step == 2
    failure = execution.events.get(kind=EventKind.STATUS, data__status="failed")
    assert failure.message == "Failed at step 2/3: ZeroDivisionError: division by zero"
    assert "Traceback" in failure.data["traceback"]


def test_a_failure_raised_by_the_process_keeps_its_code_and_message(worker: WorkerProcess, operator: Actor) -> None:
    execution = wait_for_status(start("failure-demo", operator), S.FAILED, S.SUCCESS)

    assert (execution.error_code, execution.error_step) == ("gateway_declined", 3)
    assert execution.error_message == "The payment gateway declined the request (demo failure)."


def test_an_execution_past_its_timeout_fails_with_code_timeout(worker: WorkerProcess, operator: Actor) -> None:
    execution = services.execution_start(
        process_id="test-sleep", parameters={"seconds": 20}, source="api", actor=operator, timeout=1
    )

    execution = wait_for_status(execution, S.FAILED, S.SUCCESS, timeout=15)

    assert execution.error_code == "timeout"
    assert execution.error_message == "Timed out after 1 s during step 1/1."
    assert (execution.finished_at - execution.started_at).total_seconds() < 5


def test_cancelling_a_queued_execution_means_it_never_runs(worker: WorkerProcess, operator: Actor) -> None:
    with transaction.atomic():  # the message is published on commit, after the cancel
        execution = start("test-echo", operator, text="never")
        services.execution_cancel(execution=execution, actor=operator)

    # The worker receives the message and must drop it: give it the time to do so.
    wait_for(execution, lambda e: f"{execution.public_id} is cancelled, not queued" in worker.log(), timeout=15)
    execution.refresh_from_db()
    assert execution.status == S.CANCELLED
    assert execution.attempt == 0
    assert execution.started_at is None
    assert not execution.events.filter(kind=EventKind.STEP).exists()


def test_cancelling_a_running_execution_stops_it_at_the_next_step(worker: WorkerProcess, operator: Actor) -> None:
    execution = start("test-steps", operator, delay=0.2)
    wait_for(execution, lambda e: e.status == S.RUNNING and e.current_step >= 2)

    services.execution_cancel(execution=execution, actor=operator)

    execution = wait_for_status(execution, S.CANCELLED, S.SUCCESS)
    assert execution.status == S.CANCELLED
    assert 2 <= execution.current_step < 20
    messages = [e.message for e in execution.events.all()]
    assert "Cancellation requested by cli:test; the process stops at its next step." in messages
    assert messages[-1] == f"Cancelled during step {execution.current_step}/20"
    # the refused checkpoint wrote no step event: one per step that began
    assert execution.events.filter(kind=EventKind.STEP).count() == execution.current_step


def test_an_execution_whose_worker_was_killed_is_recovered_and_completed(
    start_worker, operator: Actor
) -> None:
    doomed = start_worker()
    execution = start("test-steps", operator, delay=0.25)
    wait_for(execution, lambda e: e.status == S.RUNNING and e.current_step >= 2)

    doomed.kill()  # SIGKILL to the whole worker: no chance to record anything
    time.sleep(0.5)
    execution.refresh_from_db()
    assert execution.status == S.RUNNING  # the row still claims to run: only recovery can tell otherwise
    start_worker(beat=True)  # a new worker with beat, whose periodic recovery finds the silent execution

    execution = wait_for_status(execution, S.SUCCESS, S.FAILED, timeout=60)
    assert execution.status == S.SUCCESS
    assert execution.attempt == 2
    assert execution.result == {"steps": 20, "attempt": 2}
    lost = execution.events.get(data__status="queued", message__startswith="Attempt 1 lost")
    assert re.fullmatch(r"Attempt 1 lost \(worker .+:\d+ stopped responding\); queued again from the start\.",
                        lost.message)


def test_a_process_that_must_not_run_twice_fails_when_its_worker_is_lost(start_worker, operator: Actor) -> None:
    doomed = start_worker()
    execution = start("test-once", operator)
    wait_for_status(execution, S.RUNNING)

    doomed.kill()
    start_worker(beat=True)

    execution = wait_for_status(execution, S.FAILED, timeout=60)
    assert execution.error_code == "worker_lost"
    assert execution.error_message == "The worker running this execution was lost; it may not run twice."


def test_an_execution_whose_pool_process_died_is_restarted_at_once_by_its_redelivered_message(
    start_worker, operator: Actor
) -> None:
    # No beat, and a stale period far longer than the test: only the redelivered message
    # (acks_late + reject_on_worker_lost) can bring this execution back.
    start_worker(env={"HEPTORA_STALE_AFTER_SECONDS": "300"})
    execution = start("test-steps", operator, delay=0.25)
    execution = wait_for(execution, lambda e: e.status == S.RUNNING and e.current_step >= 2)

    child_pid = int(execution.worker.rsplit(":", 1)[1])
    os.kill(child_pid, signal.SIGKILL)  # what the kernel's OOM killer does to one pool process

    execution = wait_for_status(execution, S.SUCCESS, S.FAILED, timeout=30)
    assert execution.status == S.SUCCESS
    assert execution.attempt == 2
    starts = execution.events.filter(kind=EventKind.STATUS, data__status="running")
    assert [e.data["attempt"] for e in starts] == [1, 2]
    assert execution.events.filter(message__startswith="Attempt 1 lost").count() == 1


def messages_in_queue() -> int:
    # Redis has no empty lists: the broker cannot be asked about an empty queue (None), which is 0 here.
    return services.broker_backlog() or 0


def test_a_worker_stopped_for_a_deploy_finishes_its_runs_and_leaves_the_rest_to_the_next_worker(
    start_worker, operator: Actor
) -> None:
    # A warm shutdown (SIGTERM to the worker, as a deploy or systemd stop sends it) while the worker holds
    # more executions than it runs at once (2 running, 3 taken from the queue and waiting in the worker):
    # those it had not started go back to the queue, so nothing is lost and nothing runs twice.
    old = start_worker(args=["--prefetch-multiplier", "3"])
    executions = [start("test-steps", operator, delay=0.05) for _ in range(5)]
    wait_for(executions[0], lambda e: e.status == S.RUNNING and e.current_step >= 2)
    deadline = time.monotonic() + 10
    while messages_in_queue() != 0 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert messages_in_queue() == 0  # the worker holds all five: two running, three waiting in it

    assert old.popen is not None
    os.kill(old.popen.pid, signal.SIGTERM)
    old.popen.wait(30)
    assert old.popen.returncode == 0
    finished = Execution.objects.filter(pk__in=[e.pk for e in executions], status=S.SUCCESS).count()
    assert finished >= 1  # what was running ran to its end
    queued = Execution.objects.filter(pk__in=[e.pk for e in executions], status=S.QUEUED).count()
    assert queued == len(executions) - finished
    assert messages_in_queue() == queued  # what it had not started is back in the queue

    start_worker()
    for execution in executions:
        execution = wait_for_status(execution, S.SUCCESS, S.FAILED, timeout=30)
        assert execution.status == S.SUCCESS
        assert execution.attempt == 1


def test_the_run_task_is_acknowledged_late_and_rejected_when_its_worker_is_lost() -> None:
    from executions.tasks import run_execution

    assert run_execution.acks_late is True
    assert run_execution.reject_on_worker_lost is True
