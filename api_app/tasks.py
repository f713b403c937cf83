from __future__ import annotations

from celery import shared_task

from api_app.idempotency import idempotency_records_purge


@shared_task(name="api_app.purge_idempotency_records", ignore_result=True)
def purge_idempotency_records() -> int:
    return idempotency_records_purge()
