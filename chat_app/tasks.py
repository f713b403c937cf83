"""Celery tasks of the chat app: deliver pushed messages through their channel, expire unanswered requests."""

from __future__ import annotations

import logging

from celery import shared_task

from chat_app import services

logger = logging.getLogger(__name__)


@shared_task(name="chat_app.deliver_message", bind=True, max_retries=services.MESSAGE_MAX_ATTEMPTS - 1,
             acks_late=True)
def deliver_message(self, message_pk: int) -> bool:  # type: ignore[no-untyped-def]
    try:
        return services.message_deliver(message_pk=message_pk)
    except Exception as exc:  # the platform is down or refused: try again later, backing off
        if not services.message_attempts_left(message_pk=message_pk):
            logger.error("chat message %s not delivered after %s attempts: %s", message_pk,
                         services.MESSAGE_MAX_ATTEMPTS, exc)
            return False  # the count is the message's, whichever copy of this task made the attempts
        raise self.retry(exc=exc, countdown=services.message_retry_wait(self.request.retries)) from exc


@shared_task(name="chat_app.redeliver_due", ignore_result=True)
def redeliver_due() -> int:
    return len(services.messages_redeliver_due())


@shared_task(name="chat_app.expire_requests")
def expire_requests() -> list[str]:
    return services.requests_expire()
