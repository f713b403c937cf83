"""Celery tasks of the execution engine. Tasks take ids, re-read rows, and call engine/services."""

from __future__ import annotations

import dataclasses
import logging

from celery import shared_task

from executions import engine, services

logger = logging.getLogger(__name__)


@shared_task(name="executions.run", acks_late=True, reject_on_worker_lost=True, ignore_result=True)
def run_execution(execution_pk: int) -> str:
    return engine.run(execution_pk)


@shared_task(name="executions.recover_stalled", ignore_result=True)
def recover_stalled() -> dict[str, list[str]]:
    report = services.executions_recover_stalled()
    summary = dataclasses.asdict(report)
    if any(summary.values()):
        logger.warning("recovery: %s", summary)
    return summary
