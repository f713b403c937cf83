"""Reads of the executions app."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.db.models import QuerySet

from executions.models import Execution, ExecutionEvent


def executions_list(
    *, status: str | None = None, process_id: str | None = None, since: datetime | None = None, limit: int = 20
) -> QuerySet[Execution]:
    executions = Execution.objects.select_related("process")
    if status:
        executions = executions.filter(status=status)
    if process_id:
        executions = executions.filter(process__slug=process_id)
    if since:
        executions = executions.filter(created_at__gte=since)
    return executions.order_by("-created_at", "-id")[:limit]


def execution_events(*, execution: Execution, after_id: int = 0) -> QuerySet[ExecutionEvent]:
    return execution.events.filter(id__gt=after_id).order_by("id")


def _iso(value: datetime | None) -> str | None:
    return value.isoformat().replace("+00:00", "Z") if value else None


def execution_as_dict(execution: Execution) -> dict[str, Any]:
    """The execution in the public camelCase shape (the CLI's --json and, later, the API)."""
    errors = None
    if execution.error_code:
        errors = [{"code": execution.error_code, "message": execution.error_message, "step": execution.error_step}]
    return {
        "executionId": execution.public_id,
        "processId": execution.process.slug,
        "status": execution.status,
        "source": execution.source,
        "startedBy": execution.actor_label,
        "parameters": execution.parameters,
        "progress": {
            "step": execution.current_step,
            "totalSteps": execution.total_steps,
            "percent": execution.percent,
            "message": execution.progress_message,
        },
        "result": execution.result,
        "errors": errors,
        "attempt": execution.attempt,
        "cancelRequested": execution.cancel_requested_at is not None and not execution.is_terminal,
        "createdTime": _iso(execution.created_at),
        "startTime": _iso(execution.started_at),
        "endTime": _iso(execution.finished_at),
        "durationSeconds": execution.duration_seconds,
        "timeout": execution.timeout,
        "notifyEmail": execution.notify_email or None,
        "retryOf": execution.retry_of.public_id if execution.retry_of_id else None,
    }


def event_as_dict(event: ExecutionEvent) -> dict[str, Any]:
    return {"id": event.id, "time": _iso(event.created_at), "kind": event.kind, "level": event.level,
            "message": event.message, "data": {k: v for k, v in event.data.items() if k != "traceback"}}
