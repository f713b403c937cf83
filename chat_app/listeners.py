"""Execution updates pushed into the conversation that started the execution (a lifecycle subscriber).

Subscribed in ``ChatAppConfig.ready`` for the commit phase: it runs wherever the change happened (the web
process for a cancel, the worker for progress) after the change committed. Progress is said at milestones
(a finished step) and at most every HEPTORA_CHAT_PROGRESS_INTERVAL seconds; the interval is enforced with a
conditional UPDATE on the watch row, so two processes never both say it.
"""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from chat_app import replies
from chat_app.channels import Button
from chat_app.models import ExecutionWatch
from chat_app.services import message_push
from executions import lifecycle
from executions.models import ExecutionSource

EVENTS = (
    lifecycle.PROCESS_STARTED,
    lifecycle.PROCESS_PROGRESS,
    lifecycle.PROCESS_COMPLETED,
    lifecycle.PROCESS_FAILED,
    lifecycle.PROCESS_CANCELLED,
    lifecycle.PROCESS_REJECTED,
    lifecycle.PROCESS_EXPIRED,
)
TEMPLATES = {
    lifecycle.PROCESS_STARTED: "update_started",
    lifecycle.PROCESS_COMPLETED: "update_completed",
    lifecycle.PROCESS_FAILED: "update_failed",
    lifecycle.PROCESS_CANCELLED: "update_cancelled",
    lifecycle.PROCESS_REJECTED: "update_rejected",
    lifecycle.PROCESS_EXPIRED: "update_expired",
}


def execution_update_post(event: lifecycle.LifecycleEvent) -> None:
    if event.source and event.source != ExecutionSource.CHAT:
        return  # only chat starts and chat retries are watched: no query for every other execution's events
    watch = (ExecutionWatch.objects.select_related("conversation__identity", "execution__process")
             .filter(execution_id=event.execution_pk).first())
    if watch is None:
        return  # not started from chat
    execution, conversation = watch.execution, watch.conversation
    if event.type == lifecycle.PROCESS_PROGRESS:
        _progress(watch, event)
        return
    buttons = []
    step_name = ""
    if event.type == lifecycle.PROCESS_FAILED:
        buttons = [Button("Retry", f"retry {execution.public_id}")]
        step = execution.events.filter(kind="step", message__startswith=f"Step {execution.error_step}/").last()
        step_name = step.message.split(": ", 1)[-1] if step and execution.error_step else ""
    text = replies.render(TEMPLATES[event.type], process=execution.process, execution=execution,
                          duration=replies.duration(execution), summary=replies.result_summary(execution.result),
                          step_name=step_name)
    with transaction.atomic():
        message_push(conversation=conversation, text=text, buttons=buttons, execution=execution)


def _progress(watch: ExecutionWatch, event: lifecycle.LifecycleEvent) -> None:
    """ "Step 2/5 completed (40%)" when step 3 begins, unless an update was said less than the interval ago."""
    done = int(event.data.get("step") or 0) - 1
    if done < 1:
        return
    now = timezone.now()
    interval = timedelta(seconds=settings.HEPTORA_CHAT_PROGRESS_INTERVAL)
    with transaction.atomic():
        claimed = ExecutionWatch.objects.filter(
            Q(last_progress_at__isnull=True) | Q(last_progress_at__lte=now - interval),
            pk=watch.pk, last_step_reported__lt=done,
        ).update(last_step_reported=done, last_progress_at=now)
        if not claimed:
            return
        text = replies.render("update_progress", step=done, total=event.data.get("totalSteps") or 1,
                              percent=event.data.get("percent", 0), execution=watch.execution)
        message_push(conversation=watch.conversation, text=text, execution=watch.execution)
