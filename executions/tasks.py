"""Celery tasks of the execution engine. Tasks take ids, re-read rows, and call engine/services."""

from __future__ import annotations

import dataclasses
import functools
import logging
import os
from typing import Any

from celery import shared_task
from celery.utils.nodenames import anon_nodename
from kombu.utils.uuid import uuid

from executions import engine, services

logger = logging.getLogger(__name__)


@shared_task(name="executions.run", acks_late=True, reject_on_worker_lost=True, ignore_result=True)
def run_execution(execution_pk: int) -> str:
    return engine.run(execution_pk)


def run_execution_send(*, execution_pk: int, queue: str, soft_time_limit: int, time_limit: int) -> None:
    """Send one ``executions.run`` message: the message ``apply_async`` sends, for half its cost.

    Every start sends one, on the request's path. ``apply_async`` spends most of its time on what a run
    message never uses (routing, chains and callbacks, task signals, option merging); here Celery's own
    ``as_task_v2`` builds the message (so its protocol stays Celery's) and kombu publishes it to the queue,
    retrying a lost broker connection by the app's ``task_publish_retry_policy`` as ``apply_async`` does.
    """
    app = run_execution.app
    task_id = uuid()
    serializer, retry_policy, origin = _publish_settings(os.getpid())
    message = app.amqp.as_task_v2(
        task_id, run_execution.name, args=[execution_pk], kwargs={}, time_limit=time_limit,
        soft_time_limit=soft_time_limit, root_id=task_id, ignore_result=True,
        # What Celery would compute for these (with saferepr, and the node name per message), given.
        argsrepr=f"[{int(execution_pk)}]", kwargsrepr="{}", origin=origin,
    )
    with app.producer_pool.acquire(block=True) as producer:
        producer.publish(
            message.body, exchange="", routing_key=queue, serializer=serializer,
            headers=message.headers, **message.properties, retry=True, retry_policy=retry_policy,
        )


@functools.cache
def _publish_settings(pid: int) -> tuple[str, dict[str, Any], str]:
    """The app's serializer and publish retry policy, and this process's node name (per pid: a forked
    process names itself)."""
    conf = run_execution.app.conf
    return conf.task_serializer, conf.task_publish_retry_policy, anon_nodename()


@shared_task(name="executions.recover_stalled", ignore_result=True)
def recover_stalled() -> dict[str, list[str]]:
    report = services.executions_recover_stalled()
    summary = dataclasses.asdict(report)
    if any(summary.values()):
        logger.warning("recovery: %s", summary)
    return summary
