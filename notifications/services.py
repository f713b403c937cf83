"""E-mail the person who asked to be told (``notify_email``) when an execution ends.

The row is written inside the transaction that ended the execution (so it exists exactly when the outcome
does), then sent by a Celery task after commit, with retries.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from django.conf import settings
from django.core.mail import send_mail
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.template.loader import render_to_string
from django.utils import timezone

from executions import lifecycle
from executions.models import Execution
from notifications.models import Notification, NotificationStatus

logger = logging.getLogger(__name__)

OUTCOME_EVENTS = (
    lifecycle.PROCESS_COMPLETED,
    lifecycle.PROCESS_FAILED,
    lifecycle.PROCESS_CANCELLED,
    lifecycle.PROCESS_REJECTED,
    lifecycle.PROCESS_EXPIRED,
)
OUTCOME_WORDS = {
    lifecycle.PROCESS_COMPLETED: "completed",
    lifecycle.PROCESS_FAILED: "failed",
    lifecycle.PROCESS_CANCELLED: "was cancelled",
    lifecycle.PROCESS_REJECTED: "was rejected",
    lifecycle.PROCESS_EXPIRED: "expired waiting for approval",
}


def notification_create_for_outcome(event: lifecycle.LifecycleEvent) -> None:
    """Lifecycle subscriber (phase "transaction"): the outcome e-mail's row, sent once the outcome commits."""
    if event.execution is not None and not event.execution.notify_email:
        return  # nobody to tell: no query on the worker's path
    execution = Execution.objects.select_related("process").get(pk=event.execution_pk)
    if not execution.notify_email:
        return
    context = {"execution": execution, "outcome": OUTCOME_WORDS[event.type]}
    try:
        with transaction.atomic():  # a savepoint: a duplicate must not abort the caller's transaction
            notification = Notification.objects.create(
                execution=execution,
                event_type=event.type,
                recipient=execution.notify_email,
                subject=f"{execution.process.name} {context['outcome']} ({execution.public_id})",
                body=render_to_string("notifications/execution_outcome.txt", context),
            )
    except IntegrityError:  # the outcome was announced again: send the existing row if it is still pending
        logger.info("notification for %s %s already exists", execution.public_id, event.type)
        pending = list(Notification.objects.filter(execution=execution, event_type=event.type,
                                                   status=NotificationStatus.PENDING).values_list("pk", flat=True))
        transaction.on_commit(lambda: [_enqueue(pk) for pk in pending])
        return
    transaction.on_commit(lambda: _enqueue(notification.pk))


def notification_may_follow(event_type: str, execution: Execution | None) -> bool:
    """``interested`` of the subscription: only an execution with an address to write to gets an e-mail."""
    return execution is None or bool(execution.notify_email)


def _enqueue(pk: int) -> None:
    from notifications.tasks import send_notification

    try:
        send_notification.apply_async(args=[pk], queue=settings.CELERY_TASK_DEFAULT_QUEUE)
    except Exception as exc:  # broker down: the row stays pending and the periodic resend picks it up
        logger.warning("could not queue notification %s (%s: %s); it will be resent", pk, type(exc).__name__, exc)


def notification_queue(*, execution: Execution, event_type: str, recipient: str, subject: str, body: str) -> bool:
    """Write an e-mail to send about ``execution`` in the caller's transaction and send it after commit.

    For messages another app sends on its own account (approvals e-mail approvers; a web form confirms
    "we received your request"); the row is the delivery log, retried like the outcome e-mails. One message
    per execution, ``event_type`` and recipient: a second call with the same three writes nothing and
    returns False.
    """

    try:
        with transaction.atomic():  # a savepoint: a duplicate must not abort the caller's transaction
            notification = Notification.objects.create(
                execution=execution, event_type=event_type[:40], recipient=recipient, subject=subject[:300], body=body
            )
    except IntegrityError:
        return False

    transaction.on_commit(lambda: _enqueue(notification.pk))
    return True


MAX_ATTEMPTS = 6


def notification_send(*, notification_pk: int) -> Notification | None:
    """Send one pending notification. Raises on a transport error so the caller can retry later.

    Each attempt is claimed with a conditional update first, so two senders (the task and the periodic
    resend) never send the same message twice at once.
    """
    notification = Notification.objects.filter(pk=notification_pk, status=NotificationStatus.PENDING).first()
    if notification is None:
        return None
    attempt = notification.attempts + 1
    claimed = Notification.objects.filter(
        pk=notification.pk, status=NotificationStatus.PENDING, attempts=notification.attempts
    ).update(attempts=attempt, last_attempt_at=timezone.now())
    if not claimed:
        return None
    try:
        send_mail(notification.subject, notification.body, settings.DEFAULT_FROM_EMAIL, [notification.recipient])
    except Exception as exc:
        failed = {"status": NotificationStatus.FAILED} if attempt >= MAX_ATTEMPTS else {}
        Notification.objects.filter(pk=notification.pk).update(
            last_error=f"{type(exc).__name__}: {exc}"[:2000], **failed
        )
        raise
    Notification.objects.filter(pk=notification.pk).update(
        status=NotificationStatus.SENT, sent_at=timezone.now(), last_error=""
    )
    notification.refresh_from_db()
    return notification


def _notifications_give_up_abandoned(*, stale_before: datetime) -> list[int]:
    """Mark FAILED the notifications whose last attempt was claimed but never finished; return their pks.

    A worker killed hard (SIGKILL, OOM) during the last attempt's ``send_mail`` leaves the row PENDING with
    no attempts left, and the broker does not redeliver the message, so nothing else would ever resolve it.
    Whether that e-mail went out is unknown; we say so rather than retry and risk sending it twice.
    """
    abandoned = Notification.objects.filter(
        status=NotificationStatus.PENDING, attempts__gte=MAX_ATTEMPTS, last_attempt_at__lt=stale_before
    ).values_list("pk", "attempts")[:500]
    given_up = []
    for pk, attempts in abandoned:
        # Conditional on the state we read: a sender that finishes meanwhile (SENT, or FAILED with the real
        # error) keeps its outcome instead of being overwritten by our guess.
        updated = Notification.objects.filter(
            pk=pk, status=NotificationStatus.PENDING, attempts=attempts, last_attempt_at__lt=stale_before
        ).update(
            status=NotificationStatus.FAILED,
            last_error=f"Gave up after {attempts} attempts: the worker making the last one stopped before it "
                       "finished.",
        )
        if updated:
            logger.warning("notification %s given up after %s attempts: its last attempt never finished",
                           pk, attempts)
            given_up.append(pk)
    return given_up


def notifications_resend_pending() -> list[int]:
    """Queue again the notifications whose send was lost (broker down) or whose retry is due (run by beat).

    Returns the pks queued again. Rows whose last attempt was abandoned by a dead worker are marked FAILED
    on the way (see ``_notifications_give_up_abandoned``) and are not in the returned list.
    """
    from notifications.tasks import send_notification

    now = timezone.now()
    # An attempt older than this is over one way or another: SMTP timeouts are far shorter.
    stale_before = now - timedelta(minutes=10)
    _notifications_give_up_abandoned(stale_before=stale_before)
    due = Notification.objects.filter(status=NotificationStatus.PENDING, attempts__lt=MAX_ATTEMPTS).filter(
        Q(last_attempt_at__isnull=True, created_at__lt=now - timedelta(minutes=2))
        | Q(last_attempt_at__lt=stale_before)
    )
    pks = list(due.values_list("pk", flat=True)[:500])
    for pk in pks:
        send_notification.apply_async(args=[pk], queue=settings.CELERY_TASK_DEFAULT_QUEUE)
    return pks

