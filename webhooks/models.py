"""Webhook subscriptions, per-execution callbacks, and their deliveries and attempts (the delivery log).

A delivery is a row written in the same transaction as the status change that causes it; each attempt to
send it is a row too. Secrets are kept as given (``whsec_…``): signing needs the secret itself.
"""

from __future__ import annotations

import base64
import secrets

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone

SECRET_PREFIX = "whsec_"


def new_secret() -> str:
    """A Standard Webhooks secret: ``whsec_`` + base64 of 32 random bytes."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(32)).decode()


def new_endpoint_id() -> str:
    return f"wh_{secrets.token_hex(8)}"


def new_delivery_id() -> str:
    return f"dlv_{secrets.token_hex(10)}"


def new_event_id() -> str:
    return f"evt_{secrets.token_hex(12)}"


class WebhookEndpoint(models.Model):
    """A URL that receives the chosen lifecycle events of the executions its owner may see."""

    public_id = models.CharField("webhook id", max_length=40, unique=True, default=new_endpoint_id, editable=False)
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="webhook_endpoints",
                              help_text="Events are sent only for executions this user may see.")
    created_by = models.CharField(max_length=200, blank=True, help_text='Who made it, e.g. "api_key:42".')
    url = models.CharField("URL", max_length=2000)
    description = models.CharField(max_length=200, blank=True)
    events = models.JSONField(default=list, help_text="Event types, e.g. process.completed.")
    process = models.ForeignKey("executions.Process", null=True, blank=True, on_delete=models.CASCADE,
                                related_name="webhook_endpoints", help_text="Only this process's executions.")
    is_active = models.BooleanField("active", default=True)
    disabled_at = models.DateTimeField(null=True, blank=True)
    disabled_reason = models.CharField(max_length=300, blank=True)
    consecutive_failures = models.PositiveIntegerField(
        default=0, help_text="Deliveries failed in a row (after all their retries); reset by a success.")
    secret = models.CharField(max_length=100, default=new_secret)
    previous_secret = models.CharField(max_length=100, blank=True)
    previous_secret_expires_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name = "webhook endpoint"

    def __str__(self) -> str:
        return f"{self.public_id} → {self.url}"


class CallbackSecret(models.Model):
    """The secret that signs a user's per-execution callbacks (``callbackUrl``)."""

    owner = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="callback_secret")
    secret = models.CharField(max_length=100, default=new_secret)
    previous_secret = models.CharField(max_length=100, blank=True)
    previous_secret_expires_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    rotated_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"callback secret of {self.owner}"


class ExecutionCallback(models.Model):
    """A URL given with one execute request: it receives that execution's events."""

    execution = models.OneToOneField("executions.Execution", on_delete=models.CASCADE, related_name="callback")
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="execution_callbacks")
    url = models.CharField("URL", max_length=2000)
    is_active = models.BooleanField("active", default=True)
    disabled_reason = models.CharField(max_length=300, blank=True)
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    def __str__(self) -> str:
        return f"callback of {self.execution_id} → {self.url}"


class DeliveryStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    SUCCEEDED = "succeeded", "Succeeded"
    FAILED = "failed", "Failed"


class Delivery(models.Model):
    """One event for one receiver. Its body (and so its event id) never changes across retries."""

    public_id = models.CharField("delivery id", max_length=40, unique=True, default=new_delivery_id, editable=False)
    event_id = models.CharField(max_length=40, db_index=True, help_text="The webhook-id header; the dedupe key.")
    event_type = models.CharField(max_length=40)
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="webhook_deliveries")
    endpoint = models.ForeignKey(WebhookEndpoint, null=True, blank=True, on_delete=models.CASCADE,
                                 related_name="deliveries")
    callback = models.ForeignKey(ExecutionCallback, null=True, blank=True, on_delete=models.CASCADE,
                                 related_name="deliveries")
    execution = models.ForeignKey("executions.Execution", null=True, blank=True, on_delete=models.SET_NULL,
                                  related_name="webhook_deliveries")
    body = models.TextField(help_text="The exact JSON sent (and signed).")
    source_key = models.CharField(max_length=200, blank=True, help_text="Makes a repeated publish harmless.")
    redelivery_of = models.ForeignKey("self", null=True, blank=True, on_delete=models.SET_NULL,
                                      related_name="redeliveries")
    status = models.CharField(max_length=10, choices=DeliveryStatus.choices, default=DeliveryStatus.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField(default=timezone.now)
    claimed_until = models.DateTimeField(null=True, blank=True, help_text="An attempt is in flight until then.")
    last_status_code = models.PositiveIntegerField(null=True, blank=True)
    last_error = models.TextField(blank=True)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    completed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name_plural = "deliveries"
        indexes = [models.Index(fields=["status", "next_attempt_at"]), models.Index(fields=["owner", "created_at"])]
        constraints = [
            models.UniqueConstraint(fields=["source_key"], condition=Q(redelivery_of__isnull=True) & ~Q(source_key=""),
                                    name="one_delivery_per_event_and_receiver"),
            models.CheckConstraint(condition=Q(endpoint__isnull=True) | Q(callback__isnull=True),
                                   name="delivery_has_one_receiver"),
        ]

    def __str__(self) -> str:
        return f"{self.public_id} {self.event_type} ({self.status})"

    @property
    def url(self) -> str:
        target = self.endpoint or self.callback
        return target.url if target else ""


class DeliveryAttempt(models.Model):
    """One HTTP request of a delivery, as sent and as answered."""

    delivery = models.ForeignKey(Delivery, on_delete=models.CASCADE, related_name="attempt_log")
    number = models.PositiveIntegerField()
    started_at = models.DateTimeField(default=timezone.now)
    duration_ms = models.PositiveIntegerField(default=0)
    url = models.CharField("URL", max_length=2000)
    address = models.CharField(max_length=60, blank=True, help_text="The IP address connected to.")
    request_headers = models.JSONField(default=dict)
    request_body = models.TextField()
    response_status = models.PositiveIntegerField(null=True, blank=True)
    response_body = models.TextField(blank=True, help_text="The start of the response body.")
    error = models.TextField(blank=True)
    succeeded = models.BooleanField(default=False)
    retry_in = models.FloatField(null=True, blank=True, help_text="Seconds until the next attempt; empty if none.")

    class Meta:
        ordering = ["delivery", "number"]
        constraints = [models.UniqueConstraint(fields=["delivery", "number"], name="one_attempt_per_number")]

    def __str__(self) -> str:
        return f"{self.delivery_id} #{self.number}: {self.response_status or self.error[:40]}"
