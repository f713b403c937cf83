"""The API call log: one row per request, so an integration's history can be read back by request id.

Rows are written in batches: each request adds its row to this process's buffer, and the buffer is
written with one bulk INSERT when it holds ``HEPTORA_API_CALL_LOG_BATCH`` rows or its oldest row is
``HEPTORA_API_CALL_LOG_FLUSH_SECONDS`` old (a background thread per web process sees to the second), and at
exit. An INSERT and a commit of their own per request were an eighth of an execute request's time. What
that gives up: a web process killed with SIGKILL loses the rows of its last second (the log lines,
written at once, still have them). A batch of 1 writes each row in its own request, as before.
"""

from __future__ import annotations

import atexit
import logging
import threading

from django.conf import settings
from django.db import close_old_connections, connection
from django.http import HttpRequest

from api_app.models import ApiCall

logger = logging.getLogger("heptora.api")


class _CallBuffer:
    def __init__(self) -> None:
        self._rows: list[ApiCall] = []
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None

    def add(self, row: ApiCall) -> None:
        with self._lock:
            self._rows.append(row)
            full = len(self._rows) >= settings.HEPTORA_API_CALL_LOG_BATCH
            if not full and (self._thread is None or not self._thread.is_alive()):
                # Started lazily, so that each gunicorn worker (forked after import) gets its own.
                self._thread = threading.Thread(target=self._run, name="api-call-log", daemon=True)
                self._thread.start()
        if full:
            self.flush()

    def flush(self) -> int:
        with self._lock:
            rows, self._rows = self._rows, []
        if not rows:
            return 0
        try:
            ApiCall.objects.bulk_create(rows)
        except Exception:  # the log must never turn a served request into an error
            logger.exception("could not record %d API call(s) (request ids %s)", len(rows),
                             ", ".join(r.request_id for r in rows[:5]))
            return 0
        return len(rows)

    def _run(self) -> None:
        while True:
            self._wake.wait(settings.HEPTORA_API_CALL_LOG_FLUSH_SECONDS)
            self._wake.clear()
            close_old_connections()  # this thread's own connection: honour CONN_MAX_AGE, drop broken ones
            self.flush()
            with self._lock:
                if not self._rows:  # idle: end; the next request starts a new thread
                    self._thread = None
                    connection.close()
                    return


_buffer = _CallBuffer()
atexit.register(_buffer.flush)


def api_calls_flush() -> int:
    """Write the buffered call log rows now (tests, shutdown); returns how many were written."""
    return _buffer.flush()


def api_call_record(
    *, request: HttpRequest, status_code: int, duration_ms: int, caller_kind: str, caller_label: str,
    user_id: int | None, execution_id: str = "",
) -> None:
    request_id = getattr(request, "request_id", "")
    logger.info("api %s %s %s %dms caller=%s exec=%s req=%s", request.method, request.path, status_code,
                duration_ms, caller_label or "-", execution_id or "-", request_id)
    _buffer.add(ApiCall(
        request_id=request_id, method=request.method or "", path=request.get_full_path()[:500],
        status_code=status_code, duration_ms=duration_ms, caller_kind=caller_kind, caller_label=caller_label[:200],
        user_id=user_id, execution_id=execution_id, ip=request.META.get("REMOTE_ADDR") or None,
        user_agent=request.headers.get("User-Agent", "")[:300],
    ))
