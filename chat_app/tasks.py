"""Celery tasks of the chat app: deliver pushed messages through their channel, expire unanswered requests."""

from __future__ import annotations

from celery import shared_task

from chat_app import services


@shared_task(name="chat_app.deliver_message", bind=True, max_retries=5, acks_late=True)
def deliver_message(self, message_pk: int) -> bool:  # type: ignore[no-untyped-def]
    try:
        return services.message_deliver(message_pk=message_pk)
    except Exception as exc:  # the platform is down or refused: try again later, backing off
        raise self.retry(exc=exc, countdown=min(600, 10 * 2**self.request.retries)) from exc


@shared_task(name="chat_app.expire_requests")
def expire_requests() -> list[str]:
    return services.requests_expire()
