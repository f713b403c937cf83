"""`Idempotency-Key`: a client may repeat a start safely; the same key and body give the first execution.

The record is inserted in the same transaction as the execution. Under PostgreSQL a second, concurrent
request with the same key blocks on the unique index until the first commits, then finds its record; under
SQLite writers are serialised. Either way exactly one execution is created.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone
from rest_framework.exceptions import APIException, ValidationError
from rest_framework.request import Request

from api_app.models import IdempotencyRecord
from api_app.permissions import caller_of
from executions.models import Execution

TTL = timedelta(hours=24)


class IdempotencyConflict(APIException):
    status_code = 409
    default_code = "idempotency_conflict"
    default_detail = "This Idempotency-Key was already used with a different request body."


@dataclass(frozen=True)
class Outcome:
    status: int
    body: dict[str, Any]
    execution_id: str
    replayed: bool


def _caller_key(request: Request) -> str:
    caller = caller_of(request)
    return caller.rate_key if caller is not None else f"user:{request.user.pk}"


def _fingerprint(request: Request) -> str:
    canonical = json.dumps(request.data, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(f"{request.method} {request.path}\n{canonical}".encode()).hexdigest()


def execute_once(
    *, request: Request, key: str, start: Callable[[], Execution], body_of: Callable[[Execution], dict[str, Any]]
) -> Outcome:
    if not 1 <= len(key) <= 200:
        raise ValidationError({"Idempotency-Key": ["Use a key of 1 to 200 characters."]})
    caller, fingerprint = _caller_key(request), _fingerprint(request)
    for _ in range(3):
        record = IdempotencyRecord.objects.filter(caller=caller, key=key).first()
        if record is not None:
            if record.created_at < timezone.now() - TTL:
                IdempotencyRecord.objects.filter(pk=record.pk, created_at=record.created_at).delete()
                continue
            if record.request_hash != fingerprint:
                raise IdempotencyConflict()
            return Outcome(record.response_status, record.response_body,
                           record.response_body.get("executionId", ""), replayed=True)
        try:
            with transaction.atomic():
                record = IdempotencyRecord.objects.create(caller=caller, key=key, request_hash=fingerprint)
                execution = start()
                body = body_of(execution)
                IdempotencyRecord.objects.filter(pk=record.pk).update(execution=execution, response_body=body)
        except IntegrityError:
            continue  # another request with this key won the race: read its record
        return Outcome(202, body, execution.public_id, replayed=False)
    raise IdempotencyConflict("This Idempotency-Key is being used by another request right now; retry shortly.")


def idempotency_records_purge() -> int:
    deleted, _ = IdempotencyRecord.objects.filter(created_at__lt=timezone.now() - TTL).delete()
    return deleted
