"""Celery tasks: one per delivery attempt. Retries are scheduled here, exactly, with no jitter."""

from __future__ import annotations

from celery import shared_task

from webhooks import services


@shared_task(name="webhooks.deliver", acks_late=True, ignore_result=True)
def deliver(delivery_pk: int, attempts: int | None = None) -> None:
    """``attempts``: how many attempts the delivery had when this message was sent; a message that finds
    more was overtaken by another (a duplicate, a re-queue) and is dropped."""
    outcome = services.delivery_attempt(delivery_pk=delivery_pk, expect_attempts=attempts)
    if outcome is not None and outcome.retry_in is not None:
        services.deliveries_enqueue([delivery_pk], countdown=max(outcome.retry_in, 0.001),
                                    attempts=outcome.attempts)


@shared_task(name="webhooks.requeue_due", ignore_result=True)
def requeue_due() -> int:
    return len(services.deliveries_requeue_due())
