from __future__ import annotations

import logging

from celery import shared_task

from notifications import services

logger = logging.getLogger(__name__)


@shared_task(name="notifications.send", bind=True, acks_late=True, ignore_result=True)
def send_notification(self, notification_pk: int) -> None:  # type: ignore[no-untyped-def]
    try:
        services.notification_send(notification_pk=notification_pk)
    except Exception as exc:
        if self.request.retries + 1 >= services.MAX_ATTEMPTS:
            logger.error("notification %s failed for good: %s", notification_pk, exc)
            return
        raise self.retry(exc=exc, countdown=2 ** self.request.retries * 10, max_retries=services.MAX_ATTEMPTS) from None


@shared_task(name="notifications.resend_pending", ignore_result=True)
def resend_pending() -> int:
    return len(services.notifications_resend_pending())
