"""Running one execution on a worker: claim it, run its process with a context, record the outcome."""

from __future__ import annotations

import json
import logging
import math
import os
import secrets
import socket
import threading
import time
import traceback
from datetime import timedelta
from typing import Any

from billiard.exceptions import SoftTimeLimitExceeded
from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from django.db import close_old_connections, connection
from django.db.models import Q
from django.utils import timezone

from executions import inserts, lifecycle, registry, services
from executions.models import EventKind, EventLevel, Execution, ExecutionEvent, ExecutionStatus

logger = logging.getLogger(__name__)
S = ExecutionStatus


class ExecutionCancelled(Exception):
    """Raised at a checkpoint when someone asked to cancel the execution."""


class ExecutionTimeout(Exception):
    """Raised at a checkpoint once the execution has run past its timeout."""


class LeaseLost(Exception):
    """This run no longer owns the execution (it was recovered elsewhere); stop without writing."""


class ProcessFailure(Exception):
    """Raise from a process to fail with a clear message and code, without a traceback in the log."""

    def __init__(self, message: str, *, code: str = "process_failed", details: Any = None) -> None:
        super().__init__(message)
        self.message, self.code, self.details = message, code, details


class ExecutionContext:
    """What a process gets to report progress, write log lines and honour cancellation and timeouts.

    Every ``step``/``progress`` call is a checkpoint: one conditional UPDATE that also tells whether a
    cancellation was requested or the run lost its lease.
    """

    def __init__(self, execution: Execution) -> None:
        self.execution = execution
        self.execution_id = execution.public_id
        self.process_id = execution.process.slug
        self.params: dict[str, Any] = dict(execution.parameters)
        self.attempt = execution.attempt
        self.total_steps = max(execution.total_steps, 1)
        self.current_step = 0
        self._lease = execution.lease
        self._deadline = (execution.started_at or timezone.now()) + timedelta(seconds=execution.timeout)

    def step(self, message: str) -> None:
        """Start the next step: "Step n/N — message"."""
        number = min(self.current_step + 1, self.total_steps)
        percent = math.floor((number - 1) * 100 / self.total_steps)
        self._update(
            current_step=number, percent=percent, progress_message=message[:300],
            kind=EventKind.STEP, text=f"Step {number}/{self.total_steps}: {message}",
        )
        self.current_step = number  # only once the checkpoint passed: a cancelled step never started

    def progress(self, percent: float | None = None, message: str | None = None) -> None:
        """Report progress within a step (percent of the whole execution, 0-100)."""
        fields: dict[str, Any] = {}
        if percent is not None:
            fields["percent"] = max(0, min(100, int(percent)))
        if message is not None:
            fields["progress_message"] = message[:300]
        text = message or f"{fields.get('percent', self.execution.percent)}%"
        self._update(kind=EventKind.PROGRESS, text=text, **fields)

    def log(self, message: str, *, level: str = EventLevel.INFO, **data: Any) -> None:
        services.execution_record_event(
            execution=self.execution, kind=EventKind.LOG, message=message, level=level, data=data
        )

    def check(self) -> None:
        """An explicit checkpoint for long loops that do not report progress."""
        self._update(kind=None, text="")

    def fail(self, message: str, *, code: str = "process_failed", details: Any = None) -> ProcessFailure:
        """``raise ctx.fail("Payment declined", code="payment_declined")``."""
        return ProcessFailure(message, code=code, details=details)

    def _update(self, *, kind: str | None, text: str, **fields: Any) -> None:
        if timezone.now() > self._deadline:
            raise ExecutionTimeout()
        now = timezone.now()
        mine = Execution.objects.filter(
            Q(pk=self.execution.pk, status=S.RUNNING, lease=self._lease, cancel_requested_at__isnull=True)
        )
        event = None
        if kind is not None and inserts.supported():  # the checkpoint and its event in one statement
            event = ExecutionEvent(execution=self.execution, kind=kind, level=EventLevel.INFO, message=text, data={})
            updated = inserts.update_with_event(mine, {"heartbeat_at": now, **fields}, event)
        else:
            updated = mine.update(heartbeat_at=now, **fields)
        if not updated:
            self.execution.refresh_from_db()
            if self.execution.status == S.RUNNING and self.execution.lease == self._lease:
                raise ExecutionCancelled()
            raise LeaseLost()
        for name, value in fields.items():
            setattr(self.execution, name, value)
        if kind is not None:
            if event is None:
                services.execution_record_event(execution=self.execution, kind=kind, message=text)
            lifecycle.publish(lifecycle.PROCESS_PROGRESS, self.execution, data={
                "step": self.execution.current_step, "totalSteps": self.total_steps,
                "percent": self.execution.percent, "message": self.execution.progress_message,
            })


class _Heartbeats:
    """Marks the executions this worker process is running alive, even inside one long step.

    One thread per worker process, started with its first run, beats for every run in progress each
    HEPTORA_HEARTBEAT_SECONDS; a run only registers and unregisters (a thread started and joined per run
    cost more than the run of a quick process).
    """

    def __init__(self) -> None:
        self._reset()

    def _reset(self) -> None:
        # Also in a forked child: it inherits the parent's runs and lock but not its thread.
        self._runs: dict[int, str] = {}
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    def add(self, execution_pk: int, lease: str) -> None:
        with self._lock:
            self._runs[execution_pk] = lease
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._beat, daemon=True, name="heartbeats")
                self._thread.start()

    def remove(self, execution_pk: int) -> None:
        with self._lock:
            self._runs.pop(execution_pk, None)

    def _beat(self) -> None:
        while True:
            time.sleep(settings.HEPTORA_HEARTBEAT_SECONDS)
            with self._lock:
                runs = list(self._runs.items())
            for execution_pk, lease in runs:
                try:
                    services.execution_mark_heartbeat(execution_pk=execution_pk, lease=lease)
                except Exception:
                    logger.exception("heartbeat for execution %s failed", execution_pk)
            if runs:
                try:
                    # A beat every few seconds does not need a connection held in between (nor one that a
                    # database restart broke meanwhile).
                    connection.close()
                except Exception:
                    logger.exception("closing the heartbeat's database connection failed")


_heartbeats = _Heartbeats()
os.register_at_fork(after_in_child=_heartbeats._reset)


def _run_is_dead(worker: str) -> bool:
    """True when ``worker`` ("host:pid") is a process on this machine that no longer exists."""
    host, _, pid = worker.rpartition(":")
    if host != socket.gethostname() or not pid.isdigit():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


def worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def run(execution_pk: int) -> str:
    """Run the execution ``execution_pk`` if it is queued. Returns the final (or current) status."""
    close_old_connections()
    # Claim first: the usual message finds its execution queued, and the claim is then the first and only
    # statement before the process runs (a read before it was a third of the enqueue-to-start time).
    lease = secrets.token_hex(8)
    claimed = services.execution_claim(execution_pk=execution_pk, lease=lease, worker=worker_name())
    if claimed is not None:
        return _run_claimed(claimed)
    execution = Execution.objects.select_related("process").filter(pk=execution_pk).first()
    if execution is None:
        logger.warning("execution pk=%s no longer exists; message dropped", execution_pk)
        return "missing"
    if execution.status == S.RUNNING:
        # A redelivered message (reject_on_worker_lost) for a run whose process is gone: recover now rather
        # than wait for the heartbeat to go stale. Otherwise another run may still be alive: drop it.
        stale = timezone.now() - timedelta(seconds=settings.HEPTORA_STALE_AFTER_SECONDS)
        if _run_is_dead(execution.worker) or (execution.heartbeat_at and execution.heartbeat_at < stale):
            logger.warning("%s: the run on %s is gone; recovering it", execution, execution.worker)
            services.execution_recover(execution=execution)
        else:
            logger.info("%s is already running on %s; duplicate message dropped", execution, execution.worker)
        return execution.status
    logger.info("%s is %s, not queued; message dropped", execution, execution.status)
    return execution.status


def _run_claimed(execution: Execution) -> str:
    definition = registry.get(execution.process.slug)
    lease = execution.lease
    if definition is None:
        _finish_failed(execution, lease, "process_not_registered",
                       f"The process '{execution.process.slug}' is not defined in this worker's code.")
        return S.FAILED
    ctx = ExecutionContext(execution)
    _heartbeats.add(execution.pk, lease)
    try:
        result = definition.func(ctx, dict(execution.parameters))
        if ctx._deadline < timezone.now():
            raise ExecutionTimeout()
    except LeaseLost:
        logger.warning("%s: this run lost its lease; stopping without writing", execution)
        return S.RUNNING
    except ExecutionCancelled:
        services.execution_transition(
            execution=execution, to=S.CANCELLED, expect_lease=lease, level=EventLevel.WARNING,
            message=f"Cancelled during step {ctx.current_step}/{ctx.total_steps}",
            event_data={"step": ctx.current_step},
        )
        return S.CANCELLED
    except (SoftTimeLimitExceeded, ExecutionTimeout):
        _finish_failed(execution, lease, "timeout",
                       f"Timed out after {execution.timeout} s during step {ctx.current_step}/{ctx.total_steps}.")
        return S.FAILED
    except ProcessFailure as failure:
        _finish_failed(execution, lease, failure.code, failure.message, details=failure.details)
        return S.FAILED
    except Exception as exc:
        logger.exception("%s: process %s raised", execution, execution.process.slug)
        _finish_failed(execution, lease, "process_error", f"{type(exc).__name__}: {exc}",
                       trace=traceback.format_exc(limit=20))
        return S.FAILED
    finally:
        _heartbeats.remove(execution.pk)

    try:
        result = _jsonable(result)
    except (TypeError, ValueError) as exc:
        _finish_failed(execution, lease, "invalid_result", f"The process returned a result that is not JSON: {exc}")
        return S.FAILED
    services.execution_transition(
        execution=execution, to=S.SUCCESS, expect_lease=lease, message="Completed successfully",
        result=result, percent=100, current_step=ctx.total_steps,
    )
    return S.SUCCESS


def _jsonable(value: Any) -> Any:
    return json.loads(DjangoJSONEncoder().encode(value))


def _finish_failed(
    execution: Execution, lease: str, code: str, message: str, *, details: Any = None, trace: str = ""
) -> None:
    step = execution.current_step
    data: dict[str, Any] = {"code": code, "step": step}
    if details is not None:
        data["details"] = _jsonable(details)
    if trace:
        data["traceback"] = trace  # for operators in admin / show_execution; never shown to requesters
    where = f" at step {step}/{execution.total_steps}" if step else ""
    services.execution_transition(
        execution=execution, to=S.FAILED, expect_lease=lease, level=EventLevel.ERROR,
        message=f"Failed{where}: {message}", event_data=data,
        error_code=code, error_message=message, error_step=step or None,
    )
