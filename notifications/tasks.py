from __future__ import annotations

import logging

from celery import shared_task

from notifications import services

logger = logging.getLogger(__name__)
MAX_RETRIES = 5


@shared_task(name="notifications.send", bind=True, acks_late=True, max_retries=MAX_RETRIES, ignore_result=True)
def send_notification(self, notification_pk: int) -> None:  # type: ignore[no-untyped-def]
    try:
        services.notification_send(notification_pk=notification_pk)
    except Exception as exc:
        if self.request.retries >= MAX_RETRIES:
            services.notification_mark_failed(notification_pk=notification_pk)
            logger.error("notification %s failed for good: %s", notification_pk, exc)
            return
        raise self.retry(exc=exc, countdown=2 ** self.request.retries * 10) from None
