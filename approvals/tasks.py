"""Periodic work of the approvals app (run by beat every HEPTORA_APPROVAL_CHECK_INTERVAL seconds)."""

from __future__ import annotations

import dataclasses
import logging

from celery import shared_task

from approvals import services

logger = logging.getLogger(__name__)


@shared_task(name="approvals.expire_due", ignore_result=True)
def expire_due() -> dict[str, list[str]]:
    report = dataclasses.asdict(services.approvals_expire_due())
    if any(report.values()):
        logger.info("approval deadlines: %s", report)
    return report
