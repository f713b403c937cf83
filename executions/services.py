"""Writes of the executions app: the launch path, status changes, cancel, retry and recovery.

Every door (forms, API, chat, admin, manage.py, the scheduler) starts work through :func:`execution_start`,
so the same rules and the same errors apply whichever way a person or system comes in.
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone

from executions import access, hooks, inserts, lifecycle, registry
from executions.actors import Actor
from executions.errors import (
    ExecutionNotFound,
    InvalidParameters,
    InvalidTransition,
    LaunchDenied,
    ProcessNotFound,
    ProcessPaused,
)
from executions.models import (
    TERMINAL_STATUSES,
    TRANSITIONS,
    EventKind,
    EventLevel,
    Execution,
    ExecutionEvent,
    ExecutionSource,
    ExecutionStatus,
    Process,
    allowed_sources_for,
)
from heptora.local_cache import DEFINITIONS, GRANTS, GROUPS, pinned

logger = logging.getLogger(__name__)
S = ExecutionStatus


# --- Processes ------------------------------------------------------------------------------------------


@dataclass
class SyncReport:
    created: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    unregistered: list[str] = field(default_factory=list)


def processes_sync() -> SyncReport:
    """Bring the Process table in line with the registry (idempotent). Admin-set fields are kept."""
    report = SyncReport()
    definitions = registry.all_definitions()
    with transaction.atomic():
        for definition in definitions:
            values = {
                "name": definition.name,
                "description": definition.description,
                "steps": definition.steps,
                "default_timeout": definition.timeout or settings.HEPTORA_DEFAULT_TIMEOUT,
                "critical": definition.critical,
                "is_registered": True,
            }
            process, created = Process.objects.get_or_create(slug=definition.slug, defaults=values)
            if created:
                report.created.append(definition.slug)
                continue
            changed = [name for name, value in values.items() if getattr(process, name) != value]
            if changed:
                for name in changed:
                    setattr(process, name, values[name])
                process.save(update_fields=[*changed, "updated_at"])
                report.updated.append(definition.slug)
        gone = Process.objects.filter(is_registered=True).exclude(slug__in=[d.slug for d in definitions])
        report.unregistered = list(gone.values_list("slug", flat=True))
        gone.update(is_registered=False)
        DEFINITIONS.changed()  # update() sends no signals
    return report


def process_pause(*, process: Process, reason: str = "") -> Process:
    process.is_paused, process.paused_at, process.pause_reason = True, timezone.now(), reason[:300]
    process.save(update_fields=["is_paused", "paused_at", "pause_reason", "updated_at"])
    return process


def process_resume(*, process: Process) -> Process:
    process.is_paused, process.paused_at, process.pause_reason = False, None, ""
    process.save(update_fields=["is_paused", "paused_at", "pause_reason", "updated_at"])
    return process


def process_resolve(process_id: str) -> Process:
    """The runnable Process for a public process id, or :class:`ProcessNotFound`.

    Read from this process's local copy (no query in the steady state; any change to a process row renews
    it, see :mod:`heptora.local_cache`), and handed out as a copy of its own that the caller may change.
    """
    process = DEFINITIONS.get(("process", process_id), lambda: _process_row(process_id))
    if process is None or registry.get(process_id) is None:
        raise ProcessNotFound(f"There is no process with id '{process_id}'.")
    return copy.copy(process)


def _process_row(process_id: str) -> Process | None:
    return Process.objects.filter(slug=process_id, is_registered=True).first()


# --- The launch path ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class LaunchPlan:
    """What the launch path decided for one start, before anything is written."""

    process: Process
    parameters: dict[str, Any]
    timeout: int
    notify_email: str
    needs_approval: bool


def launch_check(*, process_id: str, actor: Actor, authorized_by: str = "") -> Process:
    """The checks that do not depend on the parameters: the process exists, the actor may start it, it runs.

    ``authorized_by`` names a front door that already decided, on its own published terms, that this actor
    may start the process (``"form:order-processing"``: a web form open to anyone with the link, or to a
    role). The door is then answerable for that decision; without it the process permission decides.
    """
    process = process_resolve(process_id)
    if not authorized_by and not access.process_can_execute(actor, process):
        raise LaunchDenied(f"You are not allowed to start the process '{process.slug}'.")
    if process.is_paused:
        reason = f" ({process.pause_reason})" if process.pause_reason else ""
        raise ProcessPaused(f"The process '{process.slug}' is paused and does not accept new starts{reason}.")
    return process


def launch_plan(
    *, process: Process, parameters: Any, source: str, actor: Actor, notify_email: str = "", timeout: Any = None,
    require_approval: bool = False,
) -> LaunchPlan:
    """Validate one start's parameters and options and apply the approval gate. Writes nothing."""
    if source not in ExecutionSource.values:
        raise ValueError(f"Unknown source {source!r}")
    errors: dict[str, list[str]] = {}
    cleaned: dict[str, Any] = {}
    try:
        cleaned = _parameters_clean(process, parameters, source=source)
    except InvalidParameters as exc:
        errors.update(exc.field_errors)
    try:
        timeout = _timeout_clean(process, timeout)
    except InvalidParameters as exc:
        errors.update(exc.field_errors)
    if notify_email:
        try:
            validate_email(notify_email)
        except ValidationError:
            errors["notifyEmail"] = ["Enter a valid e-mail address."]
    if errors:
        raise InvalidParameters(errors)
    # A door may demand approval for its own starts (a form marked "requires approval"); the gates may add it.
    needs_approval = require_approval or hooks.approval_required(
        process=process, actor=actor, source=source, parameters=cleaned
    )
    return LaunchPlan(process, cleaned, timeout, notify_email or "", needs_approval)


def execution_start(
    *,
    process_id: str,
    parameters: Any,
    source: str,
    actor: Actor,
    notify_email: str = "",
    timeout: int | None = None,
    retry_of: Execution | None = None,
    authorized_by: str = "",
    require_approval: bool = False,
) -> Execution:
    """Start ``process_id``: resolve, authorize, validate, apply the approval gate, save, enqueue on commit.

    Raises ProcessNotFound, ProcessPaused, LaunchDenied or InvalidParameters; on any of them nothing is
    written.
    """
    with pinned(DEFINITIONS, GRANTS):  # the process row, its definition and its gate: one cache GET together
        process = launch_check(process_id=process_id, actor=actor, authorized_by=authorized_by)
        plan = launch_plan(process=process, parameters=parameters, source=source, actor=actor,
                           notify_email=notify_email, timeout=timeout, require_approval=require_approval)
    event_type = lifecycle.PROCESS_AWAITING_APPROVAL if plan.needs_approval else lifecycle.PROCESS_QUEUED
    if inserts.supported() and not lifecycle.needs_transaction(event_type):
        # The usual start: the execution and its first event in one statement, which is atomic by itself,
        # and no listener needs to write in the same transaction. One round trip instead of four.
        [execution] = _create(plans=[plan], source=source, actor=actor, retry_of=retry_of, one_statement=True)
    else:
        with transaction.atomic():
            [execution] = _create(plans=[plan], source=source, actor=actor, retry_of=retry_of)
    logger.info("execution %s of %s %s by %s via %s", execution.public_id, process.slug, execution.status,
                actor.label, source)
    return execution


@dataclass(frozen=True)
class BatchItem:
    parameters: Any
    notify_email: str = ""
    timeout: Any = None


def executions_start_batch(
    *, process_id: str, items: list[BatchItem], source: str, actor: Actor
) -> list[Execution | InvalidParameters]:
    """Start many executions of one process: each valid item is accepted, each invalid one says why.

    The valid ones are saved in one transaction (bulk inserts) and published together after commit.
    """
    outcomes: list[LaunchPlan | InvalidParameters] = []
    with pinned(DEFINITIONS, GRANTS):
        process = launch_check(process_id=process_id, actor=actor)
        for item in items:
            try:
                outcomes.append(launch_plan(process=process, parameters=item.parameters, source=source,
                                            actor=actor, notify_email=item.notify_email, timeout=item.timeout))
            except InvalidParameters as exc:
                outcomes.append(exc)
    plans = [o for o in outcomes if isinstance(o, LaunchPlan)]
    with transaction.atomic():
        created = iter(_create(plans=plans, source=source, actor=actor) if plans else [])
    return [next(created) if isinstance(o, LaunchPlan) else o for o in outcomes]


def _create(
    *, plans: list[LaunchPlan], source: str, actor: Actor, retry_of: Execution | None = None,
    one_statement: bool = False,
) -> list[Execution]:
    """Insert the executions and their first events, announce them, and publish the queued ones on commit."""
    now = timezone.now()
    executions = []
    for plan in plans:
        status = S.AWAITING_APPROVAL if plan.needs_approval else S.QUEUED
        executions.append(Execution(
            process=plan.process, status=status, source=source, parameters=plan.parameters,
            actor_kind=actor.kind, actor_label=actor.label[:200], actor_ref=actor.ref[:200], actor_user=actor.user,
            notify_email=plan.notify_email, timeout=plan.timeout, total_steps=plan.process.steps,
            retry_of=retry_of, created_at=now,
            queued_at=None if plan.needs_approval else now, published_at=None if plan.needs_approval else now,
        ))
    via = ExecutionSource(source).label
    retry_note = f" (retry of {retry_of.public_id})" if retry_of else ""
    events = []
    for execution in executions:
        verb = "Awaiting approval" if execution.status == S.AWAITING_APPROVAL else "Queued"
        events.append(ExecutionEvent(
            execution=execution, kind=EventKind.STATUS, level=EventLevel.INFO,
            message=f"{verb}: started by {actor.label} via {via}{retry_note}",
            data={"status": execution.status, "source": source, "actor": actor.label},
        ))
    if one_statement and len(executions) == 1:
        inserts.execution_and_event_insert(executions[0], events[0])
    else:
        if len(executions) == 1:
            executions[0].save(force_insert=True)
        else:
            Execution.objects.bulk_create(executions)
        for execution, event in zip(executions, events, strict=True):
            event.execution = execution  # the primary key is known now
        ExecutionEvent.objects.bulk_create(events)
    for execution in executions:
        lifecycle.publish(lifecycle.EVENT_FOR_STATUS[execution.status], execution)
    queued = [(e.pk, e.timeout) for e in executions if e.status == S.QUEUED]
    if queued:
        # robust: a broker outage must not turn saved executions into an error for the caller; they stay
        # queued and executions_recover_stalled publishes them again.
        transaction.on_commit(lambda: _publish_all(queued), robust=True)
    return executions


def _publish_all(queued: list[tuple[int, int]]) -> None:
    for pk, timeout in queued:
        try:
            execution_publish(execution_pk=pk, timeout=timeout)
        except Exception as exc:  # broker down: the row is safe; recovery publishes it when the broker is back
            logger.warning("could not publish execution pk=%s to the broker (%s: %s); it stays queued and "
                           "will be published again by recovery", pk, type(exc).__name__, exc)


def _parameters_clean(process: Process, parameters: Any, *, source: str) -> dict[str, Any]:
    if parameters is None:
        parameters = {}
    if not isinstance(parameters, dict):
        raise InvalidParameters({"parameters": ["Parameters must be an object of name/value pairs."]})
    definition = hooks.parameter_definition()
    if definition is None:
        return dict(parameters)
    return definition.clean(process, parameters, source=source)


def _timeout_clean(process: Process, timeout: Any) -> int:
    if timeout is None:
        return process.default_timeout
    maximum = settings.HEPTORA_MAX_TIMEOUT
    if isinstance(timeout, bool) or not isinstance(timeout, int) or not 1 <= timeout <= maximum:
        raise InvalidParameters({"timeout": [f"Timeout must be a whole number of seconds from 1 to {maximum}."]})
    return timeout


def _enqueue_on_commit(execution: Execution) -> None:
    transaction.on_commit(lambda: _publish_all([(execution.pk, execution.timeout)]), robust=True)


def execution_publish(*, execution_pk: int, timeout: int) -> None:
    """Send the execution's task to the broker (only ids cross the broker, never rows)."""
    from executions.tasks import run_execution_send

    run_execution_send(execution_pk=execution_pk, queue=settings.CELERY_TASK_DEFAULT_QUEUE,
                       soft_time_limit=timeout, time_limit=timeout + settings.HEPTORA_TIMEOUT_GRACE)


# --- Status changes -------------------------------------------------------------------------------------


def execution_transition(
    *,
    execution: Execution,
    to: str,
    message: str,
    expect_lease: str | None = None,
    from_statuses: tuple[str, ...] | None = None,
    only_if: Q | None = None,
    level: str = EventLevel.INFO,
    event_data: dict[str, Any] | None = None,
    **fields: Any,
) -> bool:
    """Move ``execution`` to status ``to`` if the transition is legal from its current stored status.

    A conditional UPDATE makes the check and the write one step, so of two concurrent writers exactly one
    wins; the loser gets False and nothing is written. On success the in-memory row is refreshed, an event
    row is written and the lifecycle event published, in one transaction. ``from_statuses`` narrows the
    legal sources to the ones the caller decided on (a cancel that saw "queued" must not end a run).
    """
    sources = allowed_sources_for(to)
    if from_statuses is not None:
        sources = [status for status in sources if status in from_statuses]
    now = timezone.now()
    values: dict[str, Any] = {"status": to, **fields}
    if not TRANSITIONS[to]:  # terminal
        values.setdefault("finished_at", now)
    event_type = lifecycle.EVENT_FOR_STATUS[to]

    def change(*, unwatched_only: bool) -> Execution | None:
        event = ExecutionEvent(execution_id=execution.pk, kind=EventKind.STATUS, level=level, message=message,
                               data={"status": to, **(event_data or {})})
        return _change(execution.pk, sources, values, event, lease=expect_lease, only_if=only_if,
                       unwatched_only=unwatched_only)

    def announce(changed: Execution) -> None:
        _adopt(execution, changed)
        _announce(execution, event_type, event_data, to)

    if _change_announced(event_type, execution, change, announce) is None:
        return False
    logger.info("execution %s of %s: %s (%s)", execution.public_id, execution.process.slug, to, message)
    return True


def _change_announced(event_type: str, known: Execution | None, change: Callable[..., Execution | None],
                      announce: Callable[[Execution], None]) -> Execution | None:
    """Make a status change (``change(unwatched_only=…)``) and announce it; the row as changed, or None.

    The usual change (nobody subscribed, nobody watching: ``lifecycle.needs_transaction``) is one statement,
    atomic by itself, that matches only an unwatched row. When a listener may write, or that statement did
    not match (another status, or the row is watched after all), it is decided again in a transaction the
    listeners join. ``known``: the row as the caller holds it, or None when it has not read it (a claim).
    """
    # The listeners' local copies (webhook endpoints, definitions, grants) at one generation: one cache GET.
    with pinned(*GROUPS):
        if inserts.supported() and not lifecycle.needs_transaction(event_type, known):
            changed = change(unwatched_only=True)
            if changed is not None:
                announce(changed)
                return changed
        with transaction.atomic():
            changed = change(unwatched_only=False)
            if changed is not None:
                announce(changed)
            return changed


def _change(execution_pk: int, sources: list[str], values: dict[str, Any], event: ExecutionEvent, *,
            lease: str | None, only_if: Q | None, unwatched_only: bool) -> Execution | None:
    """UPDATE the execution if its status is one of ``sources`` (and the rest of the condition holds) and
    write ``event`` for it; the row as updated, or None."""
    if inserts.supported() and only_if is None and not any(hasattr(v, "resolve_expression") for v in values.values()):
        return inserts.status_change_returning(pk=execution_pk, statuses=sources, values=values, event=event,
                                               lease=lease, unwatched_only=unwatched_only)
    condition = Q(pk=execution_pk, status__in=sources)
    if lease is not None:
        condition &= Q(lease=lease)
    if only_if is not None:
        condition &= only_if
    if unwatched_only:
        condition &= Q(watched=False)
    executions = Execution.objects.filter(condition)
    if inserts.supported():
        return inserts.update_returning_with_event(executions, values, event)
    if executions.update(**values) != 1:
        return None
    changed = Execution.objects.get(pk=execution_pk)
    event.save(force_insert=True)
    return changed


def _adopt(execution: Execution, changed: Execution) -> None:
    """Make the caller's ``execution`` the row as changed (callers hold on to it), keeping its process."""
    process = execution.process if Execution.process.is_cached(execution) else None
    for column in Execution._meta.concrete_fields:
        setattr(execution, column.attname, getattr(changed, column.attname))
    execution.process = process if process is not None and process.pk == execution.process_id \
        else process_by_pk(execution.process_id)


def _announce(execution: Execution, event_type: str, event_data: dict[str, Any] | None, to: str) -> None:
    lifecycle.publish(event_type, execution, data=event_data)
    if to == S.QUEUED:
        _enqueue_on_commit(execution)


def process_by_pk(pk: int) -> Process:
    """The process row of an execution, from this process's local copy (a copy the caller may change)."""
    process = DEFINITIONS.get(("process-pk", pk), lambda: Process.objects.filter(pk=pk).first())
    if process is None:
        raise Process.DoesNotExist(f"no process with pk={pk}")  # PROTECT: an execution's process stays
    return copy.copy(process)


def execution_watch(*, execution: Execution) -> None:
    """Mark ``execution`` as one a listener keeps something for in particular (a callbackUrl), so that each
    of its later lifecycle events runs in a transaction the listener may write in. Call in the transaction
    that started it."""
    if not execution.watched:
        Execution.objects.filter(pk=execution.pk).update(watched=True)
        execution.watched = True


def _event(
    execution: Execution, kind: str, message: str, *, level: str = EventLevel.INFO, data: dict[str, Any] | None = None
) -> ExecutionEvent:
    return ExecutionEvent.objects.create(execution=execution, kind=kind, level=level, message=message, data=data or {})


def execution_record_event(
    *, execution: Execution, kind: str, message: str, level: str = EventLevel.INFO, data: dict[str, Any] | None = None
) -> ExecutionEvent:
    return _event(execution, kind, message, level=level, data=data)


def execution_approve(*, execution: Execution, message: str) -> bool:
    """Release an execution that was awaiting approval into the queue (called by the approvals app)."""
    now = timezone.now()
    return execution_transition(execution=execution, to=S.QUEUED, message=message, queued_at=now, published_at=now)


def execution_get(execution_id: str) -> Execution:
    execution = Execution.objects.select_related("process").filter(public_id=execution_id).first()
    if execution is None:
        raise ExecutionNotFound(f"There is no execution with id '{execution_id}'.")
    return execution


def execution_cancel(*, execution: Execution, actor: Actor) -> Execution:
    """Cancel: at once if it has not started, at the next step if it is running."""
    if not access.execution_can_control(actor, execution):
        raise LaunchDenied(f"You are not allowed to cancel {execution.public_id}.")
    message = f"Cancelled by {actor.label}"
    for _ in range(3):  # the status may move under us (queued -> running); re-read and decide again
        if execution.status in (S.QUEUED, S.AWAITING_APPROVAL):
            if execution_transition(execution=execution, to=S.CANCELLED, message=message,
                                    from_statuses=(S.QUEUED, S.AWAITING_APPROVAL), event_data={"by": actor.label}):
                return execution
        elif execution.status == S.RUNNING:
            updated = Execution.objects.filter(
                pk=execution.pk, status=S.RUNNING, cancel_requested_at__isnull=True
            ).update(cancel_requested_at=timezone.now())
            if updated:
                _event(execution, EventKind.LOG, f"Cancellation requested by {actor.label}; "
                       "the process stops at its next step.", level=EventLevel.WARNING)
                execution.refresh_from_db()
                return execution
            execution.refresh_from_db()
            if execution.status == S.RUNNING:
                return execution  # already requested
            continue
        else:
            raise InvalidTransition(
                f"{execution.public_id} has already finished ({execution.get_status_display().lower()}); "
                "there is nothing to cancel."
            )
        execution.refresh_from_db()
    return execution


RETRYABLE = (S.FAILED, S.CANCELLED, S.EXPIRED, S.REJECTED)


def execution_retry(
    *, execution: Execution, actor: Actor, source: str, authorized_by: str = "", require_approval: bool = False
) -> Execution:
    """Start a new execution with the same process and parameters; the original stays as history.

    The original row is locked while deciding, so a double click makes one retry, not two.
    ``authorized_by`` and ``require_approval`` are the door's own terms, as for :func:`execution_start`
    (a form retries on the form's authority).
    """
    if not access.execution_can_control(actor, execution):
        raise LaunchDenied(f"You are not allowed to retry {execution.public_id}.")
    with transaction.atomic():
        original = Execution.objects.select_for_update().select_related("process").get(pk=execution.pk)
        if original.status not in RETRYABLE:
            raise InvalidTransition(
                f"{original.public_id} is {original.get_status_display().lower()}; only failed, cancelled, "
                "expired or rejected executions can be retried."
            )
        pending = original.retries.exclude(status__in=TERMINAL_STATUSES).first()
        if pending is not None:
            raise InvalidTransition(f"{original.public_id} is already being retried as {pending.public_id}.")
        return execution_start(
            process_id=original.process.slug,
            parameters=original.parameters,
            source=source,
            actor=actor,
            notify_email=original.notify_email,
            timeout=original.timeout,
            retry_of=original,
            authorized_by=authorized_by,
            require_approval=require_approval,
        )


# --- Recovery -------------------------------------------------------------------------------------------


@dataclass
class RecoveryReport:
    requeued: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    cancelled: list[str] = field(default_factory=list)
    republished: list[str] = field(default_factory=list)


def executions_recover_stalled() -> RecoveryReport:
    """Find executions a dead worker left behind and move them on (run by beat, safe to run anywhere).

    * running, heartbeat older than HEPTORA_STALE_AFTER_SECONDS: requeued for another attempt, or failed
      with ``timeout`` (past its time limit) or ``worker_lost`` (out of attempts / not restartable);
    * queued but not picked up for a while (the publish was lost, e.g. broker down at commit): published
      again. Duplicate messages are harmless: only one worker can claim a queued execution.
    """
    report = RecoveryReport()
    now = timezone.now()
    stale_before = now - timedelta(seconds=settings.HEPTORA_STALE_AFTER_SECONDS)
    stalled = Execution.objects.select_related("process").filter(status=S.RUNNING, heartbeat_at__lt=stale_before)
    for execution in stalled:
        execution_recover(execution=execution, now=now, report=report)
    republish_before = now - timedelta(seconds=settings.HEPTORA_REPUBLISH_AFTER_SECONDS)
    unpicked = Execution.objects.filter(status=S.QUEUED, published_at__lt=republish_before)
    # While the queue still holds messages, a waiting execution is backlog, not a lost publish: republishing
    # it would only pile up duplicates. Republish when the queue is empty (or cannot be asked).
    if not unpicked.exists() or (broker_backlog() or 0) > 0:
        return report
    for execution in unpicked:
        if Execution.objects.filter(pk=execution.pk, status=S.QUEUED, published_at=execution.published_at).update(
            published_at=now
        ):
            execution_publish(execution_pk=execution.pk, timeout=execution.timeout)
            report.republished.append(execution.public_id)
    return report


def broker_backlog() -> int | None:
    """Messages waiting in the executions queue, or None when the broker cannot be asked."""
    from celery import current_app

    try:
        with current_app.connection_for_read() as connection:
            declared = connection.default_channel.queue_declare(
                queue=settings.CELERY_TASK_DEFAULT_QUEUE, passive=True
            )
            return int(declared.message_count)
    except Exception:
        logger.warning("could not read the length of queue %s", settings.CELERY_TASK_DEFAULT_QUEUE)
        return None


def execution_recover(*, execution: Execution, now: Any = None, report: RecoveryReport | None = None) -> None:
    """Requeue or fail one running execution whose worker stopped sending heartbeats."""
    now = now or timezone.now()
    report = report if report is not None else RecoveryReport()
    definition = registry.get(execution.process.slug)
    lease = execution.lease
    silent = f"worker {execution.worker or '?'} stopped responding"
    deadline = (execution.started_at or now) + timedelta(seconds=execution.timeout)
    restartable = definition is not None and definition.restart_on_worker_lost
    if execution.cancel_requested_at is not None:
        # The person asked it to stop; a dead worker is no reason to start it again.
        if execution_transition(
            execution=execution, to=S.CANCELLED, expect_lease=lease, level=EventLevel.WARNING,
            message=f"Cancelled: the cancellation was requested and the {silent}.",
        ):
            report.cancelled.append(execution.public_id)
    elif now > deadline:
        if _fail(execution, lease, "timeout", f"Timed out after {execution.timeout} s ({silent})."):
            report.failed.append(execution.public_id)
    elif restartable and execution.attempt < settings.HEPTORA_MAX_ATTEMPTS:
        if execution_transition(
            execution=execution, to=S.QUEUED, expect_lease=lease, level=EventLevel.WARNING,
            only_if=Q(cancel_requested_at__isnull=True),  # a cancel that arrives meanwhile wins next round
            message=f"Attempt {execution.attempt} lost ({silent}); queued again from the start.",
            lease="", worker="", queued_at=now, published_at=now, cancel_requested_at=None,
        ):
            report.requeued.append(execution.public_id)
    else:
        if definition is None:
            why = "its process is no longer defined in code"
        elif not restartable:
            why = "it may not run twice"
        else:
            why = f"after {execution.attempt} attempts"
        if _fail(execution, lease, "worker_lost", f"The worker running this execution was lost; {why}."):
            report.failed.append(execution.public_id)


def _fail(execution: Execution, lease: str, code: str, message: str) -> bool:
    return execution_transition(
        execution=execution, to=S.FAILED, expect_lease=lease, level=EventLevel.ERROR,
        message=f"Failed: {message}", event_data={"code": code},
        error_code=code, error_message=message, error_step=execution.current_step or None,
    )


def execution_mark_heartbeat(*, execution_pk: int, lease: str) -> bool:
    return bool(
        Execution.objects.filter(pk=execution_pk, status=S.RUNNING, lease=lease).update(heartbeat_at=timezone.now())
    )


def execution_claim(*, execution_pk: int, lease: str, worker: str) -> Execution | None:
    """Take a queued execution for this worker run; None when it is not (or no longer) queued.

    The claim, its event and the lifecycle announcement commit together, so listeners that write rows in
    the transaction phase (webhook deliveries) never miss a start. When no listener may write (nobody
    subscribed to starts, the execution not watched), the claim and its event are one statement.
    """
    now = timezone.now()
    values = {"status": S.RUNNING, "lease": lease, "worker": worker[:200], "heartbeat_at": now, "started_at": now,
              "current_step": 0, "percent": 0, "progress_message": ""}
    execution = _change_announced(
        lifecycle.PROCESS_STARTED, None,
        lambda unwatched_only: _claim(execution_pk, values, worker, unwatched_only=unwatched_only),
        lambda claimed: lifecycle.publish(lifecycle.PROCESS_STARTED, claimed, data={"attempt": claimed.attempt}),
    )
    if execution is None:
        return None
    logger.info("execution %s of %s: running on %s (attempt %s)", execution.public_id, execution.process.slug,
                worker, execution.attempt)
    return execution


def _claim(execution_pk: int, values: dict[str, Any], worker: str, *, unwatched_only: bool) -> Execution | None:
    prefix = f"Started on {worker} (attempt "
    if inserts.supported():
        # The attempt this claim starts is known only to the UPDATE: the event's text and data take it
        # from the updated row, in the same statement.
        event = ExecutionEvent(kind=EventKind.STATUS, level=EventLevel.INFO, message="", data={})
        execution = inserts.status_change_returning(
            pk=execution_pk, statuses=[S.QUEUED], values=values, increment=("attempt",), event=event,
            unwatched_only=unwatched_only, event_from_row={
                "message": ("%s::text || changed.attempt || ')'", (prefix,)),
                "data": ("jsonb_build_object('status', %s::text, 'attempt', changed.attempt)", (S.RUNNING,)),
            })
        if execution is None:
            return None
    else:
        queued = Execution.objects.filter(pk=execution_pk, status=S.QUEUED)
        if unwatched_only:
            queued = queued.filter(watched=False)
        if not queued.update(attempt=F("attempt") + 1, **values):
            return None
        execution = Execution.objects.get(pk=execution_pk)
        _event(execution, EventKind.STATUS, f"{prefix}{execution.attempt})",
               data={"status": S.RUNNING, "attempt": execution.attempt})
    execution.process = process_by_pk(execution.process_id)
    return execution
