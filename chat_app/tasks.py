"""Celery tasks of the chat app: deliver pushed messages through their channel, expire unanswered requests."""

from __future__ import annotations

from celery import shared_task

from chat_app import services


@shared_task(name="chat_app.deliver_message", bind=True, max_retries=services.MESSAGE_MAX_ATTEMPTS - 1,
             acks_late=True)
def deliver_message(self, message_pk: int) -> bool:  # type: ignore[no-untyped-def]
    try:
        return services.message_deliver(message_pk=message_pk)
    except Exception as exc:  # the platform is down or refused: try again later, backing off
        countdown = min(services.MESSAGE_RETRY_MAX_SECONDS, 10 * 2**self.request.retries)
        raise self.retry(exc=exc, countdown=countdown) from exc


@shared_task(name="chat_app.redeliver_due", ignore_result=True)
def redeliver_due() -> int:
    return len(services.messages_redeliver_due())


@shared_task(name="chat_app.expire_requests")
def expire_requests() -> list[str]:
    return services.requests_expire()
