"""Reads of the webhooks app, and the public camelCase shapes of endpoints and deliveries.

Ownership is decided here, once: a user sees and manages only the endpoints and deliveries they own.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.db.models import QuerySet

from webhooks.models import Delivery, DeliveryAttempt, WebhookEndpoint


def endpoints_owned_by(owner: AbstractBaseUser) -> QuerySet[WebhookEndpoint]:
    return WebhookEndpoint.objects.filter(owner=owner).select_related("process").order_by("-created_at", "-id")


def endpoint_owned_by(owner: AbstractBaseUser, webhook_id: str) -> WebhookEndpoint | None:
    return endpoints_owned_by(owner).filter(public_id=webhook_id).first()


def deliveries_of(endpoint: WebhookEndpoint) -> QuerySet[Delivery]:
    return endpoint.deliveries.select_related("redelivery_of").prefetch_related("attempt_log").order_by(
        "-created_at", "-id")


def delivery_owned_by(owner: AbstractBaseUser, delivery_id: str) -> Delivery | None:
    return Delivery.objects.filter(owner=owner, public_id=delivery_id).select_related("endpoint", "callback").first()


def iso(value: datetime | None) -> str | None:
    return value.isoformat().replace("+00:00", "Z") if value else None


def endpoint_as_dict(endpoint: WebhookEndpoint, *, with_secret: bool = False) -> dict[str, Any]:
    data: dict[str, Any] = {
        "webhookId": endpoint.public_id,
        "url": endpoint.url,
        "events": endpoint.events,
        "processId": endpoint.process.slug if endpoint.process_id else None,
        "description": endpoint.description,
        "active": endpoint.is_active,
        "disabledReason": endpoint.disabled_reason or None,
        "consecutiveFailures": endpoint.consecutive_failures,
        "createdTime": iso(endpoint.created_at),
    }
    if with_secret:
        data["secret"] = endpoint.secret
    return data


def attempt_as_dict(attempt: DeliveryAttempt) -> dict[str, Any]:
    return {
        "number": attempt.number,
        "time": iso(attempt.started_at),
        "durationMs": attempt.duration_ms,
        "url": attempt.url,
        "requestHeaders": attempt.request_headers,
        "responseStatus": attempt.response_status,
        "responseBody": attempt.response_body,
        "error": attempt.error or None,
        "succeeded": attempt.succeeded,
        "retryIn": attempt.retry_in,
    }


def delivery_as_dict(delivery: Delivery) -> dict[str, Any]:
    return {
        "deliveryId": delivery.public_id,
        "eventId": delivery.event_id,
        "eventType": delivery.event_type,
        "status": delivery.status,
        "attempts": delivery.attempts,
        "nextAttemptTime": iso(delivery.next_attempt_at) if delivery.status == "pending" else None,
        "lastStatusCode": delivery.last_status_code,
        "lastError": delivery.last_error or None,
        "createdTime": iso(delivery.created_at),
        "completedTime": iso(delivery.completed_at),
        "redeliveryOf": delivery.redelivery_of.public_id if delivery.redelivery_of_id else None,
        "payload": json.loads(delivery.body),
        "attemptLog": [attempt_as_dict(a) for a in delivery.attempt_log.all()],
    }
