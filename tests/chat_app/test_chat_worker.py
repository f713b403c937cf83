"""End to end: a chat confirmation starts a real execution on a real Celery worker, and the conversation
hears how it went."""

from __future__ import annotations

import re
import time
from typing import Any

import pytest

from chat_app.models import Message
from executions.models import Execution, ExecutionStatus
from tests.chat_app.conftest import Person
from tests.conftest import WorkerProcess, wait_for_status

pytestmark = pytest.mark.django_db(transaction=True)


def pushed_texts(execution: Execution, until: str, timeout: float = 15) -> list[str]:
    deadline = time.monotonic() + timeout
    while True:
        texts = list(Message.objects.filter(pushed=True, execution=execution).order_by("id")
                     .values_list("text", flat=True))
        if any(until in t for t in texts) or time.monotonic() > deadline:
            return texts
        time.sleep(0.05)


def test_confirming_in_chat_runs_the_order_and_its_result_arrives(worker: WorkerProcess, staff_user: Any) -> None:
    sam = Person(user=staff_user)
    sam.says("proces ordr ORD-2024-001 as high priority")
    [started] = sam.says("confirm")
    execution = Execution.objects.get()
    assert started.startswith(f"Order Processing started (ID: {execution.public_id})")

    execution = wait_for_status(execution, ExecutionStatus.SUCCESS, ExecutionStatus.FAILED)
    texts = pushed_texts(execution, "completed in")

    assert execution.status == ExecutionStatus.SUCCESS
    assert texts[:2] == [f"Order Processing ({execution.public_id}) is running.", "Step 1/5 completed (20%)."]
    assert re.fullmatch(rf"Order Processing completed in \d+\.\d s \({execution.public_id}\)\.\n"
                        rf"{re.escape(execution.result['summary'])}", texts[-1]), texts
    assert len(texts) == 3  # the other milestones came within 30 s of the first


def test_a_failure_on_the_worker_arrives_with_its_step_and_a_retry_button(
    worker: WorkerProcess, admin_user: Any
) -> None:
    ada = Person(user=admin_user)
    ada.says("run the failure demo")
    ada.says("confirm")
    execution = wait_for_status(Execution.objects.get(), ExecutionStatus.FAILED)

    texts = pushed_texts(execution, "failed at")

    assert texts[-1] == (f"Failure Demo failed at step 3/4 (Calling payment gateway) ({execution.public_id}): "
                         "The payment gateway declined the request (demo failure).")
    ada.says(f"status {execution.public_id}")
    assert ada.buttons() == ["Retry"]
