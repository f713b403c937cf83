"""What the REST API keeps: integrators' API keys, trusted JWT issuers, idempotency records, the call log."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone


class ApiKey(models.Model):
    """A key for one integration. Only a hash is stored; the full key is shown once, when it is made."""

    name = models.CharField(max_length=100, help_text="The integration, e.g. 'Shopify orders'.")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_keys",
        help_text="The key acts as this user: their permissions apply.",
    )
    prefix = models.CharField(max_length=24, unique=True, help_text="The visible start of the key.")
    secret_hash = models.CharField(max_length=64)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    expires_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    revoked_reason = models.CharField(max_length=200, blank=True)
    replaced_by = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="replaces",
        help_text="Set when the key was rotated; this key keeps working until grace_until.",
    )
    grace_until = models.DateTimeField(null=True, blank=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    usage_count = models.PositiveBigIntegerField(default=0)
    allowed_processes = models.JSONField(
        default=list, blank=True, help_text="Process ids this key may use; empty for all the user may use."
    )
    allowed_ips = models.JSONField(default=list, blank=True, help_text="CIDR ranges; empty for any address.")
    rate_limit_per_minute = models.PositiveIntegerField(default=100)

    class Meta:
        ordering = ["-created_at"]
        verbose_name = "API key"

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"


class JwtAlgorithm(models.TextChoices):
    HS256 = "HS256", "HS256 (shared secret)"
    RS256 = "RS256", "RS256 (public key)"


class JwtIssuer(models.Model):
    """An identity provider whose signed tokens the API accepts."""

    issuer = models.CharField(max_length=300, unique=True, help_text="The token's 'iss' claim.")
    audience = models.CharField(max_length=300, help_text="The 'aud' claim tokens must carry.")
    algorithm = models.CharField(max_length=10, choices=JwtAlgorithm.choices)
    shared_secret = models.CharField(max_length=500, blank=True, help_text="For HS256.")
    public_key = models.TextField(blank=True, help_text="PEM, for RS256.")
    leeway_seconds = models.PositiveIntegerField(default=30)
    subject_field = models.CharField(
        max_length=20, default="username", choices=[("username", "user name"), ("email", "e-mail"), ("id", "user id")],
        help_text="Which user field the token's 'sub' names.",
    )
    is_active = models.BooleanField(default=True)
    rate_limit_per_minute = models.PositiveIntegerField(default=100)
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        ordering = ["issuer"]
        verbose_name = "JWT issuer"

    def __str__(self) -> str:
        return f"{self.issuer} ({self.algorithm})"


class IdempotencyRecord(models.Model):
    """The first answer to a request sent with an Idempotency-Key, replayed for 24 hours."""

    caller = models.CharField(max_length=120, help_text="Whose key space this is (keys are per caller).")
    key = models.CharField(max_length=200)
    request_hash = models.CharField(max_length=64)
    execution = models.ForeignKey("executions.Execution", null=True, on_delete=models.CASCADE, related_name="+")
    response_status = models.PositiveSmallIntegerField(default=202)
    response_body = models.JSONField(default=dict)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["caller", "key"], name="one_record_per_caller_and_key")]
        indexes = [models.Index(fields=["created_at"])]

    def __str__(self) -> str:
        return f"{self.caller}:{self.key}"


class ApiCall(models.Model):
    """One API request, for debugging integrations and answering support questions by request id."""

    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    request_id = models.CharField(max_length=100, db_index=True)
    method = models.CharField(max_length=10)
    path = models.CharField(max_length=500)
    status_code = models.PositiveSmallIntegerField()
    duration_ms = models.PositiveIntegerField()
    caller_kind = models.CharField(max_length=20, blank=True)
    caller_label = models.CharField(max_length=200, blank=True)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                             related_name="+")
    execution_id = models.CharField(max_length=40, blank=True, db_index=True)
    ip = models.GenericIPAddressField(null=True, blank=True)
    user_agent = models.CharField(max_length=300, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name = "API call"

    def __str__(self) -> str:
        return f"{self.method} {self.path} {self.status_code}"
