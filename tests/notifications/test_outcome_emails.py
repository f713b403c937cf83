"""Whoever gave a notify e-mail hears how their execution ended."""

from __future__ import annotations

from datetime import timedelta
from email import message_from_string
from pathlib import Path

import pytest
from django.conf import settings
from django.core import mail
from django.db.models import QuerySet
from django.utils import timezone

from executions import services
from executions.actors import Actor
from executions.errors import InvalidTransition
from executions.models import Execution, ExecutionStatus
from notifications.models import Notification, NotificationStatus
from notifications.services import MAX_ATTEMPTS, notification_send, notifications_resend_pending
from tests.conftest import WorkerProcess, wait_for, wait_for_status

S = ExecutionStatus


def mails_to(address: str) -> list:
    folder = Path(settings.EMAIL_FILE_PATH)
    found = []
    for path in folder.glob("*.log") if folder.exists() else []:
        for chunk in path.read_text().split("-" * 79):
            if chunk.strip() and f"To: {address}" in chunk:
                found.append(message_from_string(chunk.strip()))
    return found


def cancelled_with_email(operator: Actor, monkeypatch: pytest.MonkeyPatch) -> Execution:
    """An execution that asked for an e-mail and was cancelled before it ran (no broker involved)."""
    monkeypatch.setattr("executions.services.execution_publish", lambda **kwargs: None)
    execution = services.execution_start(process_id="test-echo", parameters={"text": "hi"}, source="cli",
                                         actor=operator, notify_email="me@example.com")
    return services.execution_cancel(execution=execution, actor=operator)


@pytest.mark.django_db(transaction=True)
def test_the_requester_gets_an_email_with_the_result_when_the_order_completes(
    worker: WorkerProcess, operator: Actor
) -> None:
    execution = services.execution_start(
        process_id="order-processing", parameters={"orderId": "ORD-2024-777", "priority": "Low"}, source="api",
        actor=operator, notify_email="buyer@example.com",
    )
    execution = wait_for_status(execution, S.SUCCESS)
    wait_for(execution, lambda e: e.notifications.filter(status=NotificationStatus.SENT).exists())

    [message] = mails_to("buyer@example.com")
    assert message["Subject"] == f"Order Processing completed ({execution.public_id})"
    body = message.get_payload()
    assert f"Execution: {execution.public_id}" in body
    assert execution.result["summary"] in body


@pytest.mark.django_db(transaction=True)
def test_a_failure_email_says_which_step_failed_and_why(worker: WorkerProcess, operator: Actor) -> None:
    execution = services.execution_start(process_id="failure-demo", parameters={}, source="cli", actor=operator,
                                         notify_email="ops@example.com")
    execution = wait_for_status(execution, S.FAILED)
    wait_for(execution, lambda e: e.notifications.filter(status=NotificationStatus.SENT).exists())

    [message] = mails_to("ops@example.com")
    assert message["Subject"] == f"Failure Demo failed ({execution.public_id})"
    assert ("What went wrong (step 3 of 4): The payment gateway declined the request (demo failure)."
            in message.get_payload())


@pytest.mark.django_db
def test_no_email_is_written_when_nobody_asked_for_one(operator: Actor, django_capture_on_commit_callbacks) -> None:
    with django_capture_on_commit_callbacks():
        execution = services.execution_start(process_id="test-echo", parameters={"text": "hi"}, source="cli",
                                             actor=operator)
        services.execution_cancel(execution=execution, actor=operator)

    assert execution.status == S.CANCELLED
    assert not Notification.objects.exists()


@pytest.mark.django_db
def test_a_cancelled_execution_yields_exactly_one_pending_email(operator: Actor, monkeypatch) -> None:
    execution = cancelled_with_email(operator, monkeypatch)
    with pytest.raises(InvalidTransition, match="already finished"):  # a second cancel adds no message
        services.execution_cancel(execution=Execution.objects.get(pk=execution.pk), actor=operator)

    [notification] = Notification.objects.all()
    assert (notification.recipient, notification.event_type, notification.status) == (
        "me@example.com", "process.cancelled", NotificationStatus.PENDING)
    assert notification.subject == f"Echo was cancelled ({execution.public_id})"


@pytest.mark.django_db
def test_sending_marks_the_notification_sent_and_a_transport_error_is_recorded(operator: Actor, monkeypatch) -> None:
    cancelled_with_email(operator, monkeypatch)
    notification = Notification.objects.get()

    def refuse(*args, **kwargs):
        raise ConnectionRefusedError("SMTP server refused the connection")

    monkeypatch.setattr("notifications.services.send_mail", refuse)
    with pytest.raises(ConnectionRefusedError):
        notification_send(notification_pk=notification.pk)
    notification.refresh_from_db()
    assert (notification.status, notification.attempts) == (NotificationStatus.PENDING, 1)
    assert notification.last_error == "ConnectionRefusedError: SMTP server refused the connection"

    monkeypatch.undo()
    notification_send(notification_pk=notification.pk)
    notification.refresh_from_db()
    assert (notification.status, notification.attempts, notification.last_error) == (NotificationStatus.SENT, 2, "")
    assert [m.to for m in mail.outbox] == [["me@example.com"]]


@pytest.mark.django_db
def test_a_notification_whose_send_never_reached_the_broker_is_queued_again(operator: Actor, monkeypatch) -> None:
    queued: list[list[int]] = []
    monkeypatch.setattr("notifications.tasks.send_notification.apply_async",
                        lambda args, queue: queued.append(args))
    cancelled_with_email(operator, monkeypatch)
    notification = Notification.objects.get()
    queued.clear()  # what the cancel itself queued: pretend the broker lost it

    assert notifications_resend_pending() == []  # too young: its own task may still be on the way
    Notification.objects.filter(pk=notification.pk).update(created_at=timezone.now() - timedelta(minutes=3))

    assert notifications_resend_pending() == [notification.pk]
    assert queued == [[notification.pk]]


@pytest.mark.django_db
def test_a_notification_is_sent_once_even_when_two_senders_race(operator: Actor, monkeypatch) -> None:
    cancelled_with_email(operator, monkeypatch)
    notification = Notification.objects.get()
    real_update = QuerySet.update

    def another_sender_claims_first(queryset, **values):
        # Between our read and our claim, the other sender claims the same attempt.
        if "last_attempt_at" in values and not getattr(another_sender_claims_first, "done", False):
            another_sender_claims_first.done = True
            Notification.objects.filter(pk=notification.pk).update(attempts=1)
        return real_update(queryset, **values)

    monkeypatch.setattr(QuerySet, "update", another_sender_claims_first)
    assert notification_send(notification_pk=notification.pk) is None  # lost the claim: sends nothing
    monkeypatch.setattr(QuerySet, "update", real_update)

    assert mail.outbox == []
    notification.refresh_from_db()
    assert notification.attempts == 1


@pytest.mark.django_db
def test_a_notification_fails_for_good_after_its_last_attempt(operator: Actor, monkeypatch) -> None:
    cancelled_with_email(operator, monkeypatch)
    notification = Notification.objects.get()
    Notification.objects.filter(pk=notification.pk).update(attempts=MAX_ATTEMPTS - 1)

    def refuse(*args, **kwargs):
        raise TimeoutError("SMTP server did not answer")

    monkeypatch.setattr("notifications.services.send_mail", refuse)
    with pytest.raises(TimeoutError):
        notification_send(notification_pk=notification.pk)

    notification.refresh_from_db()
    assert (notification.status, notification.attempts) == (NotificationStatus.FAILED, MAX_ATTEMPTS)
    assert notification.last_error == "TimeoutError: SMTP server did not answer"
    assert notifications_resend_pending() == []


@pytest.mark.django_db
def test_a_notification_whose_last_attempt_died_with_its_worker_is_given_up_after_ten_minutes(
    operator: Actor, monkeypatch, caplog
) -> None:
    queued: list[list[int]] = []
    monkeypatch.setattr("notifications.tasks.send_notification.apply_async",
                        lambda args, queue: queued.append(args))
    cancelled_with_email(operator, monkeypatch)
    cancelled_with_email(operator, monkeypatch)
    abandoned, recent = Notification.objects.order_by("pk")
    queued.clear()
    # Both had their last attempt claimed and then their worker was killed mid-send (the broker does not
    # redeliver): no attempts left, still pending. One died 11 minutes ago, the other a minute ago.
    Notification.objects.filter(pk=abandoned.pk).update(
        attempts=MAX_ATTEMPTS, last_attempt_at=timezone.now() - timedelta(minutes=11))
    Notification.objects.filter(pk=recent.pk).update(
        attempts=MAX_ATTEMPTS, last_attempt_at=timezone.now() - timedelta(minutes=1))

    assert notifications_resend_pending() == []  # neither is sent again: the first may have gone out
    assert queued == []

    abandoned.refresh_from_db()
    assert abandoned.status == NotificationStatus.FAILED
    assert abandoned.last_error == (
        f"Gave up after {MAX_ATTEMPTS} attempts: the worker making the last one stopped before it finished.")
    assert f"notification {abandoned.pk} given up" in caplog.text
    recent.refresh_from_db()  # its worker may still be sending it
    assert (recent.status, recent.last_error) == (NotificationStatus.PENDING, "")
