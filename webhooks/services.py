"""Webhooks: subscriptions, callbacks, and signed, retried, logged deliveries of lifecycle events.

``deliveries_create_for_event`` runs inside the transaction that changed the execution (a "transaction"
lifecycle subscriber), so a delivery exists exactly when its cause does; the rows are queued on commit, and
``deliveries_requeue_due`` (beat) queues again any that never reached the broker. ``delivery_attempt``
makes one claimed attempt and says when the next one is due.
"""

from __future__ import annotations

import copy
import json
import logging
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import Any

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.core.mail import send_mail
from django.db import IntegrityError, transaction
from django.db.models import F, Q, QuerySet
from django.utils import timezone

from executions import access, lifecycle, selectors
from executions import services as executions_services
from executions.actors import Actor
from executions.errors import HeptoraError
from executions.models import Execution, Process
from heptora.local_cache import WEBHOOK_ENDPOINTS
from webhooks import signing, transport
from webhooks.models import (
    CallbackSecret,
    Delivery,
    DeliveryAttempt,
    DeliveryStatus,
    ExecutionCallback,
    WebhookEndpoint,
    new_event_id,
    new_secret,
)

logger = logging.getLogger(__name__)

# The lifecycle events an integrator may subscribe to (queued and progress stay internal).
PUBLIC_EVENTS = (
    lifecycle.PROCESS_STARTED,
    lifecycle.PROCESS_COMPLETED,
    lifecycle.PROCESS_FAILED,
    lifecycle.PROCESS_CANCELLED,
    lifecycle.PROCESS_AWAITING_APPROVAL,
    lifecycle.PROCESS_REJECTED,
    lifecycle.PROCESS_EXPIRED,
)
TEST_EVENT = "webhook.test"
USER_AGENT = "Heptora-Webhooks/1.0"


class WebhookError(HeptoraError):
    """A request about webhooks that cannot be done; ``field`` names the input at fault, if one is."""

    code = "invalid_webhook"

    def __init__(self, message: str, *, field: str | None = None, code: str | None = None,
                 http_status: int = 400) -> None:
        super().__init__(message, code=code)
        self.field = field
        self.http_status = http_status


# --- Subscriptions --------------------------------------------------------------------------------------


def url_check(url: str) -> str:
    """The URL as it will be called, or WebhookError (field "url") saying why it may not be."""
    url = (url or "").strip()
    if not url:
        raise WebhookError("Give the URL that receives the events.", field="url")
    if len(url) > 2000:
        raise WebhookError("The URL is longer than 2000 characters.", field="url")
    try:
        transport.destination_check(url)
    except transport.UnsafeDestination as exc:
        raise WebhookError(str(exc), field="url", code="unsafe_url") from None
    return url


def events_check(events: Any) -> list[str]:
    if not isinstance(events, list) or not events or not all(isinstance(e, str) for e in events):
        raise WebhookError(f"Give a list of one or more events: {', '.join(PUBLIC_EVENTS)}.", field="events")
    unknown = [e for e in events if e not in PUBLIC_EVENTS]
    if unknown:
        raise WebhookError(f"Unknown event(s) {', '.join(unknown)}; use: {', '.join(PUBLIC_EVENTS)}.",
                           field="events")
    return [e for e in PUBLIC_EVENTS if e in events]  # canonical order, no duplicates


def process_check(*, owner: AbstractBaseUser, process_id: str) -> Process:
    """A process the owner may start, or whose executions they may all see."""
    process = Process.objects.filter(slug=process_id, is_registered=True).first()
    actor = Actor.for_user(owner)
    if process is None or not (access.process_can_execute(actor, process)
                               or access.executions_visible_to(actor).filter(process=process).exists()):
        raise WebhookError(f"There is no process '{process_id}' that you may use.", field="processId")
    return process


def endpoint_create(
    *, owner: AbstractBaseUser, url: str, events: list[str], process_id: str | None = None, description: str = "",
    created_by: str = "",
) -> WebhookEndpoint:
    endpoint = WebhookEndpoint(owner=owner, url=url_check(url), events=events_check(events),
                               process=process_check(owner=owner, process_id=process_id) if process_id else None,
                               description=description[:200], created_by=created_by[:200])
    endpoint.save(force_insert=True)
    logger.info("webhook %s created for %s → %s", endpoint.public_id, owner, endpoint.url)
    return endpoint


_UNSET: Any = object()


def endpoint_update(
    *, endpoint: WebhookEndpoint, url: str | None = None, events: list[str] | None = None,
    process_id: str | None = _UNSET, description: str | None = None, is_active: bool | None = None,
) -> WebhookEndpoint:
    """Change what is given. Enabling a disabled endpoint clears its failure count."""
    fields = ["updated_at"]
    if url is not None:
        endpoint.url = url_check(url)
        fields.append("url")
    if events is not None:
        endpoint.events = events_check(events)
        fields.append("events")
    if process_id is not _UNSET:
        endpoint.process = process_check(owner=endpoint.owner, process_id=process_id) if process_id else None
        fields.append("process")
    if description is not None:
        endpoint.description = description[:200]
        fields.append("description")
    if is_active is not None and is_active != endpoint.is_active:
        endpoint.is_active = is_active
        endpoint.disabled_at = None if is_active else timezone.now()
        endpoint.disabled_reason = "" if is_active else "Disabled by its owner."
        endpoint.consecutive_failures = 0
        fields += ["is_active", "disabled_at", "disabled_reason", "consecutive_failures"]
    endpoint.save(update_fields=fields)
    return endpoint


def endpoint_delete(*, endpoint: WebhookEndpoint) -> None:
    endpoint.delete()


def _rotated(current: str) -> dict[str, Any]:
    grace = timedelta(hours=settings.HEPTORA_WEBHOOK_SECRET_GRACE_HOURS)
    return {"secret": new_secret(), "previous_secret": current if grace else "",
            "previous_secret_expires_at": timezone.now() + grace if grace else None}


def endpoint_rotate_secret(*, endpoint: WebhookEndpoint) -> WebhookEndpoint:
    """A new secret; the old one still signs (as a second signature) for HEPTORA_WEBHOOK_SECRET_GRACE_HOURS."""
    for name, value in _rotated(endpoint.secret).items():
        setattr(endpoint, name, value)
    endpoint.save(update_fields=["secret", "previous_secret", "previous_secret_expires_at", "updated_at"])
    return endpoint


def callback_secret_rotate(*, owner: AbstractBaseUser) -> tuple[CallbackSecret, bool]:
    """Create the owner's callback secret, or replace it (the old one signs too during the grace period)."""
    with transaction.atomic():
        current = CallbackSecret.objects.select_for_update().filter(owner=owner).first()
        if current is None:
            return CallbackSecret.objects.create(owner=owner), True
        for name, value in _rotated(current.secret).items():
            setattr(current, name, value)
        current.rotated_at = timezone.now()
        current.save(update_fields=["secret", "previous_secret", "previous_secret_expires_at", "rotated_at"])
        return current, False


def _signing_secrets(holder: WebhookEndpoint | CallbackSecret) -> list[str]:
    secrets = [holder.secret]
    expires = holder.previous_secret_expires_at
    if holder.previous_secret and expires and expires > timezone.now():
        secrets.append(holder.previous_secret)
    return secrets


# --- Callbacks (callbackUrl of one execute request) ------------------------------------------------------


def callback_check(*, owner: AbstractBaseUser | None, url: str) -> str:
    """Check a callbackUrl before the execution is started (nothing is written)."""
    if owner is None:
        raise WebhookError("Callbacks need a caller that acts as a user.", field="callbackUrl")
    if not CallbackSecret.objects.filter(owner=owner).exists():
        raise WebhookError(
            "Create your callback signing secret first: POST /api/v1/webhooks/callback-secret (it is shown once, "
            "and signs every callback you ask for).", field="callbackUrl", code="no_callback_secret",
        )
    try:
        return url_check(url)
    except WebhookError as exc:
        exc.field = "callbackUrl"
        raise


def callback_attach(*, execution: Execution, owner: AbstractBaseUser, url: str) -> ExecutionCallback:
    """Send ``execution``'s events to ``url`` too. Call in the transaction that started it (the API does)."""
    callback = ExecutionCallback.objects.create(execution=execution, owner=owner, url=url)
    executions_services.execution_watch(execution=execution)  # its later events must ask for callbacks
    # Its first event (queued, or awaiting approval) was announced before this row existed: catch up.
    event_type = lifecycle.EVENT_FOR_STATUS.get(execution.status)
    if event_type in PUBLIC_EVENTS:
        event = lifecycle.LifecycleEvent(type=event_type, execution_pk=execution.pk,
                                         execution_id=execution.public_id, process_id=execution.process.slug,
                                         status=execution.status, occurred_at=timezone.now())
        _create_and_enqueue(event, execution, endpoints=[], callbacks=[callback])
    return callback


# --- Deliveries: created with their cause ---------------------------------------------------------------


def deliveries_create_for_event(event: lifecycle.LifecycleEvent) -> None:
    """Lifecycle subscriber (phase "transaction"): a delivery per interested endpoint and callback."""
    endpoints = [e for e in WEBHOOK_ENDPOINTS.get("active", _active_endpoints)
                 if event.type in e.events and (e.process_id is None or e.process.slug == event.process_id)]
    # Callbacks exist only for executions marked watched when they were attached (no query for the others).
    watched = event.execution is None or event.execution.watched
    callbacks = list(ExecutionCallback.objects.filter(execution_id=event.execution_pk, is_active=True)) \
        if watched else []
    if not endpoints and not callbacks:
        return
    execution = Execution.objects.select_related("process", "retry_of").get(pk=event.execution_pk)
    # An endpoint hears only of executions its owner may see.
    # An owner object of its own for each check: the copies are shared, and Django caches permissions on
    # the user object it asks (a permission removed later saves no user).
    endpoints = [e for e in endpoints if access.execution_can_view(Actor.for_user(copy.copy(e.owner)), execution)]
    _create_and_enqueue(event, execution, endpoints=endpoints, callbacks=callbacks)


def deliveries_may_follow(event_type: str, execution: Execution | None) -> bool:
    """``interested`` of the subscription: may an active endpoint want ``event_type`` of this execution?
    (Callbacks belong to watched executions, which always get a transaction.)"""
    process_pk = execution.process_id if execution is not None else None
    return any(event_type in e.events and (e.process_id is None or process_pk is None or e.process_id == process_pk)
               for e in WEBHOOK_ENDPOINTS.get("active", _active_endpoints))


def _active_endpoints() -> list[WebhookEndpoint]:
    # A local copy (heptora.local_cache): every status change of every execution asks, endpoints rarely change.
    return list(WebhookEndpoint.objects.filter(is_active=True).select_related("owner", "process"))


def _iso(value: datetime | None) -> str | None:
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ") if value else None


def payload_for(*, event_type: str, execution: Execution, event_id: str, occurred_at: datetime) -> dict[str, Any]:
    """The product's webhook payload, plus the event id (also sent as the webhook-id header)."""
    data = selectors.execution_as_dict(execution)
    return {
        "eventType": event_type,
        "executionId": data["executionId"],
        "processId": data["processId"],
        "status": data["status"],
        "startTime": _iso(execution.started_at),
        "endTime": _iso(execution.finished_at),
        "result": data["result"],
        "errors": data["errors"],
        "timestamp": _iso(occurred_at),
        "eventId": event_id,
    }


def _body(payload: dict[str, Any]) -> str:
    return json.dumps(payload, separators=(",", ":"), ensure_ascii=False, default=str)


def _create_and_enqueue(event: lifecycle.LifecycleEvent, execution: Execution, *,
                        endpoints: list[WebhookEndpoint], callbacks: list[ExecutionCallback]) -> list[int]:
    attempt = event.data.get("attempt", 0) if event.type == lifecycle.PROCESS_STARTED else 0
    created: list[int] = []
    targets: list[tuple[str, dict[str, Any]]] = [
        (f"endpoint:{e.pk}", {"endpoint": e, "owner_id": e.owner_id}) for e in endpoints
    ] + [(f"callback:{c.pk}", {"callback": c, "owner_id": c.owner_id}) for c in callbacks]
    for target, fields in targets:
        event_id = new_event_id()
        body = _body(payload_for(event_type=event.type, execution=execution, event_id=event_id,
                                 occurred_at=event.occurred_at))
        try:
            with transaction.atomic():  # a savepoint: a repeated publish must not abort the caller's transaction
                delivery = Delivery.objects.create(
                    event_id=event_id, event_type=event.type, execution=execution, body=body,
                    source_key=f"{target}:{execution.pk}:{event.type}:{attempt}", **fields,
                )
        except IntegrityError:
            logger.info("delivery of %s %s to %s already exists", event.type, execution.public_id, target)
            continue
        created.append(delivery.pk)
    if created:
        transaction.on_commit(lambda: deliveries_enqueue(created), robust=True)
    return created


def deliveries_enqueue(pks: list[int], *, countdown: float = 0, attempts: int | None = None) -> None:
    """Put the deliveries' tasks on the broker. A broker outage is logged: beat queues them again later."""
    from webhooks.tasks import deliver

    for pk in pks:
        try:
            deliver.apply_async(args=[pk, attempts], countdown=countdown or None,
                                queue=settings.CELERY_TASK_DEFAULT_QUEUE)
        except Exception as exc:
            logger.warning("could not queue webhook delivery %s (%s: %s); it will be queued again", pk,
                           type(exc).__name__, exc)


def endpoint_send_test(*, endpoint: WebhookEndpoint) -> Delivery:
    """A ``webhook.test`` event to the endpoint, signed and logged like any other (even when it is disabled)."""
    event_id = new_event_id()
    payload = {"eventType": TEST_EVENT, "executionId": None,
               "processId": endpoint.process.slug if endpoint.process_id else None, "status": None,
               "startTime": None, "endTime": None,
               "result": {"message": "A test event from Heptora: your endpoint receives and verifies webhooks."},
               "errors": None, "timestamp": _iso(timezone.now()), "eventId": event_id}
    with transaction.atomic():
        delivery = Delivery.objects.create(event_id=event_id, event_type=TEST_EVENT, owner_id=endpoint.owner_id,
                                           endpoint=endpoint, body=_body(payload))
        transaction.on_commit(lambda: deliveries_enqueue([delivery.pk]), robust=True)
    return delivery


def delivery_redeliver(*, delivery: Delivery) -> Delivery:
    """Send the same event again (same body, same event id and webhook-id) as a new delivery."""
    target = delivery.endpoint or delivery.callback
    if target is None:
        raise WebhookError("Its receiver no longer exists.", code="invalid_state", http_status=409)
    if not target.is_active and delivery.event_type != TEST_EVENT:
        raise WebhookError("Its receiver is disabled: enable it first.", code="invalid_state", http_status=409)
    with transaction.atomic():
        again = Delivery.objects.create(
            event_id=delivery.event_id, event_type=delivery.event_type, owner_id=delivery.owner_id,
            endpoint_id=delivery.endpoint_id, callback_id=delivery.callback_id, execution_id=delivery.execution_id,
            body=delivery.body, redelivery_of=delivery,
        )
        transaction.on_commit(lambda: deliveries_enqueue([again.pk]), robust=True)
    logger.info("delivery %s redelivered as %s (event %s)", delivery.public_id, again.public_id, again.event_id)
    return again


def deliveries_for_redelivery(*, failed_only: bool = False, since: datetime | None = None,
                              endpoint: WebhookEndpoint | None = None) -> QuerySet[Delivery]:
    """The latest delivery of each event (never one already redelivered), narrowed by the filters."""
    deliveries = Delivery.objects.filter(redeliveries__isnull=True).exclude(status=DeliveryStatus.PENDING)
    if failed_only:
        deliveries = deliveries.filter(status=DeliveryStatus.FAILED)
    if since is not None:
        deliveries = deliveries.filter(created_at__gte=since)
    if endpoint is not None:
        deliveries = deliveries.filter(endpoint=endpoint)
    return deliveries.select_related("endpoint", "callback").order_by("created_at", "id")


def deliveries_requeue_due() -> list[int]:
    """Queue again the deliveries whose task never reached the broker, or was lost with a worker (beat)."""
    now = timezone.now()
    overdue = now - timedelta(seconds=settings.HEPTORA_WEBHOOK_REQUEUE_AFTER_SECONDS)
    due = Delivery.objects.filter(status=DeliveryStatus.PENDING, next_attempt_at__lt=overdue).filter(
        Q(claimed_until__isnull=True) | Q(claimed_until__lt=now))
    pks = list(due.values_list("pk", flat=True)[:500])
    if pks:
        # Not queued again before another HEPTORA_WEBHOOK_REQUEUE_AFTER_SECONDS, however long the queue.
        Delivery.objects.filter(pk__in=pks).update(next_attempt_at=now)
        deliveries_enqueue(pks)  # whatever their attempts: a lost message's successor must not be dropped
    return pks


# --- Deliveries: attempts -------------------------------------------------------------------------------


@dataclass(frozen=True)
class AttemptOutcome:
    attempted: bool
    retry_in: float | None  # seconds until the task must run again; None when the delivery is settled
    attempts: int = 0  # the delivery's attempts so far


def retry_delay(attempt: int) -> float | None:
    """Seconds before the next attempt after failed attempt number ``attempt``; None when retries are spent."""
    schedule = settings.HEPTORA_WEBHOOK_RETRY_SCHEDULE
    if attempt > len(schedule):
        return None
    return schedule[attempt - 1] * settings.HEPTORA_WEBHOOK_BACKOFF_SCALE


def retry_after_seconds(value: str | None) -> float | None:
    """A Retry-After header (seconds or an HTTP date) in seconds, capped by HEPTORA_WEBHOOK_RETRY_AFTER_MAX."""
    if not value:
        return None
    value = value.strip()
    try:
        seconds = float(int(value))
    except ValueError:
        try:
            seconds = (parsedate_to_datetime(value) - timezone.now()).total_seconds()
        except (TypeError, ValueError, OverflowError):
            return None
    return max(0.0, min(seconds, settings.HEPTORA_WEBHOOK_RETRY_AFTER_MAX))


def delivery_attempt(*, delivery_pk: int, expect_attempts: int | None = None) -> AttemptOutcome | None:
    """Make the delivery's next attempt if it is due and nobody else is making it. None: nothing to do.

    ``expect_attempts`` (from the task's message): None, or the attempts the delivery must still have.
    """
    delivery = Delivery.objects.filter(pk=delivery_pk, status=DeliveryStatus.PENDING).select_related(
        "endpoint", "callback", "owner").first()
    if delivery is None or (expect_attempts is not None and delivery.attempts != expect_attempts):
        return None
    now = timezone.now()
    early = (delivery.next_attempt_at - now).total_seconds()
    if early > 0.005:  # arrived before its time: wait for it
        return AttemptOutcome(attempted=False, retry_in=early, attempts=delivery.attempts)
    target = delivery.endpoint or delivery.callback
    if target is None or (not target.is_active and delivery.event_type != TEST_EVENT):
        reason = target.disabled_reason if target is not None else ""
        Delivery.objects.filter(pk=delivery.pk, status=DeliveryStatus.PENDING).update(
            status=DeliveryStatus.FAILED, completed_at=now, claimed_until=None,
            last_error=f"Not sent: the receiver is disabled. {reason}".strip())
        return AttemptOutcome(attempted=False, retry_in=None, attempts=delivery.attempts)
    number = delivery.attempts + 1
    lease = settings.HEPTORA_WEBHOOK_CONNECT_TIMEOUT + settings.HEPTORA_WEBHOOK_READ_TIMEOUT + 30
    claimed = Delivery.objects.filter(pk=delivery.pk, status=DeliveryStatus.PENDING, attempts=delivery.attempts).filter(
        Q(claimed_until__isnull=True) | Q(claimed_until__lt=now)
    ).update(attempts=number, claimed_until=now + timedelta(seconds=lease))
    if not claimed:
        return None
    timestamp = int(time.time())
    holder: WebhookEndpoint | CallbackSecret | None = delivery.endpoint
    if holder is None:
        holder = CallbackSecret.objects.filter(owner_id=delivery.owner_id).first()
    headers = {
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
        "webhook-id": delivery.event_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": signing.signature_header(
            secrets=_signing_secrets(holder) if holder else [], msg_id=delivery.event_id, timestamp=timestamp,
            body=delivery.body),
    }
    started = timezone.now()
    result = transport.post(target.url, delivery.body.encode(), headers)
    return _record(delivery=delivery, target=target, number=number, started=started, headers=headers, result=result)


def _record(*, delivery: Delivery, target: WebhookEndpoint | ExecutionCallback, number: int, started: datetime,
            headers: dict[str, str], result: transport.HttpResult) -> AttemptOutcome:
    status = result.status
    succeeded = status is not None and 200 <= status < 300
    gone = status == 410
    retry_in = None if succeeded or gone else retry_delay(number)
    error = result.error
    if status is not None and not succeeded:
        error = error or f"HTTP {status}" + (" (redirects are not followed)" if 300 <= status < 400 else "")
    if retry_in is not None and status in (429, 503):
        asked = retry_after_seconds(result.headers.get("retry-after"))
        if asked is not None:
            retry_in = max(retry_in, asked * settings.HEPTORA_WEBHOOK_BACKOFF_SCALE)
    DeliveryAttempt.objects.create(
        delivery=delivery, number=number, started_at=started, duration_ms=result.duration_ms, url=target.url,
        address=result.address, request_headers=headers, request_body=delivery.body, response_status=status,
        response_body=result.body_excerpt, error=error, succeeded=succeeded, retry_in=retry_in,
    )
    # The endpoint's state first, so that whoever sees the delivery settled also sees its consequences.
    if succeeded and isinstance(target, WebhookEndpoint) and target.consecutive_failures:
        WebhookEndpoint.objects.filter(pk=target.pk).update(consecutive_failures=0)
    if gone:
        _disable(target, "The receiver answered 410 Gone.")
    elif retry_in is None and not succeeded and isinstance(target, WebhookEndpoint):
        WebhookEndpoint.objects.filter(pk=target.pk).update(consecutive_failures=F("consecutive_failures") + 1)
        threshold = settings.HEPTORA_WEBHOOK_DISABLE_AFTER_FAILURES
        if WebhookEndpoint.objects.filter(pk=target.pk, consecutive_failures__gte=threshold).exists():
            _disable(target, f"{threshold} deliveries in a row failed.")
    now = timezone.now()
    values: dict[str, Any] = {"last_status_code": status, "last_error": error, "claimed_until": None}
    if succeeded:
        values.update(status=DeliveryStatus.SUCCEEDED, completed_at=now)
    elif retry_in is None:
        values.update(status=DeliveryStatus.FAILED, completed_at=now)
    else:
        values.update(next_attempt_at=now + timedelta(seconds=retry_in))
    Delivery.objects.filter(pk=delivery.pk, attempts=number).update(**values)
    logger.info("delivery %s attempt %s → %s %s", delivery.public_id, number, status, error[:200])
    return AttemptOutcome(attempted=True, retry_in=retry_in, attempts=number)


def _disable(target: WebhookEndpoint | ExecutionCallback, reason: str) -> None:
    now = timezone.now()
    if isinstance(target, ExecutionCallback):
        ExecutionCallback.objects.filter(pk=target.pk).update(is_active=False, disabled_reason=reason)
        return
    if not WebhookEndpoint.objects.filter(pk=target.pk, is_active=True).update(
            is_active=False, disabled_at=now, disabled_reason=reason):
        return  # already disabled: its owner has been told
    WEBHOOK_ENDPOINTS.changed()  # update() sends no signal; no process may keep creating deliveries for it
    logger.warning("webhook %s disabled: %s", target.public_id, reason)
    owner = target.owner
    if not owner.email:
        return
    try:
        send_mail(
            f"Heptora disabled your webhook {target.public_id}",
            f"Heptora stopped sending events to {target.url}.\n\nWhy: {reason}\n\n"
            "Fix the receiver, then enable the webhook again (PATCH /api/v1/webhooks/"
            f"{target.public_id} with {{\"active\": true}}, or in admin) and redeliver what it missed "
            "(POST /api/v1/webhooks/deliveries/<deliveryId>/redeliver).\n",
            settings.DEFAULT_FROM_EMAIL, [owner.email],
        )
    except Exception as exc:  # the endpoint is disabled either way; the log says so
        logger.warning("could not e-mail %s about webhook %s (%s: %s)", owner.email, target.public_id,
                       type(exc).__name__, exc)
