"""Messages Heptora sends people (e-mail today), kept as rows so that none is lost and each is auditable."""

from __future__ import annotations

from django.db import models
from django.utils import timezone


class NotificationStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    SENT = "sent", "Sent"
    FAILED = "failed", "Failed"


class Notification(models.Model):
    execution = models.ForeignKey("executions.Execution", on_delete=models.CASCADE, related_name="notifications")
    event_type = models.CharField(max_length=40)
    channel = models.CharField(max_length=20, default="email")
    recipient = models.CharField(max_length=254)
    subject = models.CharField(max_length=300)
    body = models.TextField()
    status = models.CharField(max_length=10, choices=NotificationStatus.choices, default=NotificationStatus.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    last_attempt_at = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    sent_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            # One message per outcome and recipient, however often the event is published.
            models.UniqueConstraint(fields=["execution", "event_type", "recipient"], name="one_notification_per_event")
        ]

    def __str__(self) -> str:
        return f"{self.channel} to {self.recipient}: {self.subject}"
