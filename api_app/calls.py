"""The API call log: one row per request, so an integration's history can be read back by request id."""

from __future__ import annotations

import logging

from django.http import HttpRequest

from api_app.models import ApiCall

logger = logging.getLogger("heptora.api")


def api_call_record(
    *, request: HttpRequest, status_code: int, duration_ms: int, caller_kind: str, caller_label: str,
    user_id: int | None, execution_id: str = "",
) -> None:
    request_id = getattr(request, "request_id", "")
    logger.info("api %s %s %s %dms caller=%s exec=%s req=%s", request.method, request.path, status_code,
                duration_ms, caller_label or "-", execution_id or "-", request_id)
    try:
        ApiCall.objects.create(
            request_id=request_id, method=request.method or "", path=request.get_full_path()[:500],
            status_code=status_code, duration_ms=duration_ms, caller_kind=caller_kind, caller_label=caller_label[:200],
            user_id=user_id, execution_id=execution_id, ip=request.META.get("REMOTE_ADDR") or None,
            user_agent=request.headers.get("User-Agent", "")[:300],
        )
    except Exception:  # the log must never turn a served request into an error
        logger.exception("could not record API call %s", request_id)
