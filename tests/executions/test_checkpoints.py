"""A worker's checkpoint (a step, a progress report): the change and its event together, or neither."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest

from executions import engine, services
from executions.actors import Actor
from executions.models import EventKind, Execution

pytestmark = pytest.mark.django_db


def running(operator: Actor) -> engine.ExecutionContext:
    queued = services.execution_start(process_id="order-processing", source="cli", actor=operator,
                                      parameters={"orderId": "ORD-2024-001", "priority": "High"})
    claimed = services.execution_claim(execution_pk=queued.pk, lease="lease-1", worker="test:1")
    assert claimed is not None
    return engine.ExecutionContext(claimed)


def step_events(ctx: engine.ExecutionContext) -> list[str]:
    return list(Execution.objects.get(pk=ctx.execution.pk).events.filter(kind=EventKind.STEP)
                .values_list("message", flat=True))


def test_a_step_records_the_progress_and_its_event(operator: Actor) -> None:
    ctx = running(operator)

    ctx.step("Validating order data")
    ctx.step("Checking inventory")

    row = Execution.objects.get(pk=ctx.execution.pk)
    assert (row.current_step, row.percent, row.progress_message) == (2, 20, "Checking inventory")
    assert step_events(ctx) == ["Step 1/5: Validating order data", "Step 2/5: Checking inventory"]


def test_a_run_that_lost_its_lease_writes_neither_the_step_nor_its_event(operator: Actor) -> None:
    ctx = running(operator)
    ctx.step("Validating order data")
    Execution.objects.filter(pk=ctx.execution.pk).update(lease="taken-over-by-recovery")

    with pytest.raises(engine.LeaseLost):
        ctx.step("Checking inventory")

    assert Execution.objects.get(pk=ctx.execution.pk).current_step == 1
    assert step_events(ctx) == ["Step 1/5: Validating order data"]


def test_a_cancel_request_stops_the_run_at_its_next_step_without_an_event(operator: Actor) -> None:
    ctx = running(operator)
    services.execution_cancel(execution=Execution.objects.get(pk=ctx.execution.pk), actor=operator)

    with pytest.raises(engine.ExecutionCancelled):
        ctx.step("Validating order data")

    assert step_events(ctx) == []


@pytest.mark.django_db(transaction=True)
def test_a_long_run_keeps_beating_even_after_its_process_lost_the_heartbeat_thread(
    operator: Actor, settings: Any
) -> None:
    """One heartbeat thread per worker process marks its runs alive; should it ever die, the next run
    starts another instead of going stale (recovery would then start it a second time)."""
    settings.HEPTORA_HEARTBEAT_SECONDS = 0.05
    beats = engine._heartbeats
    dead = threading.Thread(target=lambda: None)
    dead.start()
    dead.join()
    beats._thread = dead
    ctx = running(operator)
    claimed_at = Execution.objects.get(pk=ctx.execution.pk).heartbeat_at

    beats.add(ctx.execution.pk, ctx.execution.lease)
    try:
        deadline = time.monotonic() + 5
        while Execution.objects.get(pk=ctx.execution.pk).heartbeat_at == claimed_at and time.monotonic() < deadline:
            time.sleep(0.02)
    finally:
        beats.remove(ctx.execution.pk)

    assert beats._thread is not dead and beats._thread.is_alive()
    assert Execution.objects.get(pk=ctx.execution.pk).heartbeat_at > claimed_at
