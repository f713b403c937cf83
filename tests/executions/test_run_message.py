"""The message that sends an execution to a worker is the one Celery's own apply_async would send."""

from __future__ import annotations

import os
from typing import Any

from executions.tasks import run_execution, run_execution_send
from heptora.celery import app


def received(queue: str, count: int) -> list[Any]:
    with app.connection_for_read() as connection:
        simple = connection.SimpleQueue(queue)
        try:
            messages = [simple.get(timeout=5) for _ in range(count)]
            for message in messages:
                message.ack()
            return messages
        finally:
            simple.close()


def test_the_run_message_is_the_one_apply_async_sends() -> None:
    queue = f"{os.environ['HEPTORA_QUEUE']}-run-message"

    run_execution_send(execution_pk=42, queue=queue, soft_time_limit=60, time_limit=90)
    run_execution.apply_async(args=[42], queue=queue, soft_time_limit=60, time_limit=90, ignore_result=True)

    ours, celerys = received(queue, 2)
    ids = ("id", "root_id")
    assert {k: v for k, v in ours.headers.items() if k not in ids} == \
        {k: v for k, v in celerys.headers.items() if k not in ids}
    assert ours.headers["id"] == ours.headers["root_id"] != celerys.headers["id"]
    assert ours.decode() == celerys.decode() == [[42], {}, {"callbacks": None, "errbacks": None, "chain": None,
                                                          "chord": None}]
    assert (ours.content_type, ours.content_encoding) == (celerys.content_type, celerys.content_encoding)
