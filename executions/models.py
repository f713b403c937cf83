"""Processes, their executions and the events an execution records.

State changes go through :mod:`executions.services`; the legal status transitions are declared once, here,
in :data:`TRANSITIONS`, and enforced there with conditional updates so two writers can never both win.
"""

from __future__ import annotations

import secrets

from django.conf import settings
from django.db import models
from django.utils import timezone


class Process(models.Model):
    slug = models.SlugField("process id", max_length=100, unique=True)
    name = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    steps = models.PositiveIntegerField(default=1)
    default_timeout = models.PositiveIntegerField(help_text="Seconds an execution may run before it fails.")
    critical = models.BooleanField(default=False, help_text="Chat always asks for confirmation.")
    is_paused = models.BooleanField("paused", default=False)
    paused_at = models.DateTimeField(null=True, blank=True)
    pause_reason = models.CharField(max_length=300, blank=True)
    is_registered = models.BooleanField(
        "in code", default=True, help_text="False when the code no longer defines this process."
    )
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="owned_processes"
    )
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["slug"]
        verbose_name_plural = "processes"
        permissions = [
            ("execute_process", "Can start executions of the process"),
            ("view_process_executions", "Can see every execution of the process"),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.slug})"


class ExecutionStatus(models.TextChoices):
    AWAITING_APPROVAL = "awaiting_approval", "Awaiting approval"
    QUEUED = "queued", "Queued"
    RUNNING = "running", "Running"
    SUCCESS = "success", "Success"
    FAILED = "failed", "Failed"
    CANCELLED = "cancelled", "Cancelled"
    REJECTED = "rejected", "Rejected"
    EXPIRED = "expired", "Expired"


S = ExecutionStatus
# The one place that says which status may follow which. RUNNING -> QUEUED is the recovery of an
# execution whose worker died.
TRANSITIONS: dict[str, frozenset[str]] = {
    S.AWAITING_APPROVAL: frozenset({S.QUEUED, S.REJECTED, S.EXPIRED, S.CANCELLED}),
    S.QUEUED: frozenset({S.RUNNING, S.CANCELLED, S.FAILED}),
    S.RUNNING: frozenset({S.SUCCESS, S.FAILED, S.CANCELLED, S.QUEUED}),
    S.SUCCESS: frozenset(),
    S.FAILED: frozenset(),
    S.CANCELLED: frozenset(),
    S.REJECTED: frozenset(),
    S.EXPIRED: frozenset(),
}
TERMINAL_STATUSES = frozenset(s for s, nxt in TRANSITIONS.items() if not nxt)


def allowed_sources_for(target: str) -> list[str]:
    """Statuses from which ``target`` may be reached."""
    return [source for source, targets in TRANSITIONS.items() if target in targets]


class ExecutionSource(models.TextChoices):
    FORM = "form", "Web form"
    API = "api", "REST API"
    CHAT = "chat", "Chat"
    MANUAL = "manual", "Manual (admin)"
    SCHEDULE = "schedule", "Schedule"
    CLI = "cli", "Command line"


class ActorKind(models.TextChoices):
    USER = "user", "User"
    API_KEY = "api_key", "API key"
    OAUTH_CLIENT = "oauth_client", "OAuth client"
    JWT = "jwt", "JWT subject"
    CHAT = "chat", "Chat identity"
    SYSTEM = "system", "System (operator)"
    ANONYMOUS = "anonymous", "Anonymous (public form)"


def new_execution_id() -> str:
    return f"exec-{secrets.token_hex(8)}"


class Execution(models.Model):
    public_id = models.CharField("execution id", max_length=40, unique=True, default=new_execution_id, editable=False)
    process = models.ForeignKey(Process, on_delete=models.PROTECT, related_name="executions")
    status = models.CharField(max_length=20, choices=ExecutionStatus.choices, default=ExecutionStatus.QUEUED)
    source = models.CharField(max_length=10, choices=ExecutionSource.choices)
    parameters = models.JSONField(default=dict, blank=True)

    actor_kind = models.CharField(max_length=20, choices=ActorKind.choices)
    actor_label = models.CharField(max_length=200, help_text="Who started it, in words (user name, key prefix…).")
    actor_ref = models.CharField(max_length=200, blank=True, db_index=True,
                                 help_text='A stable reference to who started it, e.g. "api_key:42".')
    actor_user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="executions"
    )
    notify_email = models.EmailField(blank=True)
    timeout = models.PositiveIntegerField(help_text="Seconds")
    # Set when a listener keeps something for this execution in particular (a callbackUrl): its lifecycle
    # events then always run in a transaction that listener may write in (see lifecycle.needs_transaction).
    # db_default too: processes still running the code of the release before this column (during a deploy)
    # insert rows without it.
    watched = models.BooleanField(default=False, db_default=False, editable=False,
                                  help_text="A listener keeps a subscription for this execution alone.")

    current_step = models.PositiveIntegerField(default=0)
    total_steps = models.PositiveIntegerField(default=1)
    percent = models.PositiveSmallIntegerField(default=0)
    progress_message = models.CharField(max_length=300, blank=True)

    result = models.JSONField(null=True, blank=True)
    error_code = models.CharField(max_length=60, blank=True)
    error_message = models.TextField(blank=True)
    error_step = models.PositiveIntegerField(null=True, blank=True)

    attempt = models.PositiveIntegerField(default=0, help_text="How many times a worker has started it.")
    lease = models.CharField(max_length=40, blank=True, help_text="Token of the worker run that owns it.")
    worker = models.CharField(max_length=200, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    cancel_requested_at = models.DateTimeField(null=True, blank=True)
    retry_of = models.ForeignKey("self", null=True, blank=True, on_delete=models.SET_NULL, related_name="retries")

    created_at = models.DateTimeField(default=timezone.now, editable=False)
    queued_at = models.DateTimeField(null=True, blank=True)
    published_at = models.DateTimeField(null=True, blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["status", "created_at"]),
            models.Index(fields=["process", "created_at"]),
            models.Index(fields=["actor_user", "created_at"]),
        ]

    def __str__(self) -> str:
        return self.public_id

    @property
    def is_terminal(self) -> bool:
        return self.status in TERMINAL_STATUSES

    @property
    def duration_seconds(self) -> float | None:
        if not self.started_at:
            return None
        end = self.finished_at or timezone.now()
        return round((end - self.started_at).total_seconds(), 3)

    @property
    def progress_text(self) -> str:
        """"Step 2/5 — Charging payment (40%)", the line every front door shows."""
        if self.current_step == 0:
            return self.get_status_display()
        text = f"Step {self.current_step}/{self.total_steps}"
        if self.progress_message:
            text += f" — {self.progress_message}"
        return f"{text} ({self.percent}%)"


class EventKind(models.TextChoices):
    STATUS = "status", "Status change"
    STEP = "step", "Step"
    PROGRESS = "progress", "Progress"
    LOG = "log", "Log"


class EventLevel(models.TextChoices):
    DEBUG = "debug", "Debug"
    INFO = "info", "Info"
    WARNING = "warning", "Warning"
    ERROR = "error", "Error"


class ExecutionEvent(models.Model):
    execution = models.ForeignKey(Execution, on_delete=models.CASCADE, related_name="events")
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    kind = models.CharField(max_length=10, choices=EventKind.choices)
    level = models.CharField(max_length=10, choices=EventLevel.choices, default=EventLevel.INFO)
    message = models.TextField()
    data = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return f"{self.execution_id} {self.kind}: {self.message[:60]}"
