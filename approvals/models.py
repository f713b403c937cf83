"""Approval policies per process, the requests they raise, and every vote cast on them.

Who may decide a request is recorded as django-guardian object permissions on the request
(``approvals.decide_approvalrequest``), given to the policy's approver groups and users when the request is
raised (and to the escalation groups when it escalates), so the admin queue is one permission query.
"""

from __future__ import annotations

from django.conf import settings
from django.contrib.auth.models import Group
from django.core.exceptions import ValidationError
from django.db import models
from django.utils import timezone

from executions.models import Execution, ExecutionSource, Process

FOUR_HOURS = 4 * 3600


class Quorum(models.TextChoices):
    ANY = "any", "Any one approver"
    COUNT = "count", "N of the approvers"
    ALL = "all", "All the approvers"


class OnTimeout(models.TextChoices):
    EXPIRE = "expire", "Expire the request"
    REJECT = "reject", "Reject the request"
    ESCALATE = "escalate", "Escalate to a second group of approvers"


class ApprovalPolicy(models.Model):
    process = models.OneToOneField(Process, on_delete=models.CASCADE, related_name="approval_policy")
    required = models.BooleanField("approval required", default=True)
    exempt_sources = models.JSONField(
        default=list, blank=True,
        help_text='Start methods that skip approval, e.g. ["api"] ("Approval workflows: API optional").',
    )
    approver_groups = models.ManyToManyField(Group, blank=True, related_name="+")
    approver_users = models.ManyToManyField(settings.AUTH_USER_MODEL, blank=True, related_name="+")
    quorum = models.CharField(max_length=10, choices=Quorum.choices, default=Quorum.ANY)
    quorum_count = models.PositiveSmallIntegerField(
        default=1, help_text="With “N of the approvers”: how many approvals are needed."
    )
    timeout_seconds = models.PositiveIntegerField(
        default=FOUR_HOURS, help_text="How long approvers have to decide (4 hours = 14400)."
    )
    on_timeout = models.CharField(max_length=10, choices=OnTimeout.choices, default=OnTimeout.EXPIRE)
    escalation_groups = models.ManyToManyField(Group, blank=True, related_name="+")
    escalation_timeout_seconds = models.PositiveIntegerField(
        default=FOUR_HOURS, help_text="After escalating: how long the second group has."
    )
    reminder_before_seconds = models.PositiveIntegerField(
        default=1800, help_text="Remind the approvers who have not voted this long before the deadline (0: never)."
    )

    class Meta:
        verbose_name_plural = "approval policies"

    def __str__(self) -> str:
        return f"Approval policy of {self.process.slug}"

    def clean(self) -> None:
        unknown = set(self.exempt_sources or []) - set(ExecutionSource.values)
        if unknown:
            raise ValidationError({"exempt_sources": f"Unknown start methods: {', '.join(sorted(unknown))}. "
                                                     f"Known: {', '.join(ExecutionSource.values)}."})
        if self.quorum == Quorum.COUNT and self.quorum_count < 1:
            raise ValidationError({"quorum_count": "At least one approval is needed."})
        if self.timeout_seconds < 60:
            raise ValidationError({"timeout_seconds": "Give approvers at least a minute."})

    def applies_to(self, source: str) -> bool:
        return self.required and source not in (self.exempt_sources or [])


class ApprovalStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    APPROVED = "approved", "Approved"
    REJECTED = "rejected", "Rejected"
    EXPIRED = "expired", "Expired"
    CANCELLED = "cancelled", "Cancelled"


class ApprovalRequest(models.Model):
    execution = models.OneToOneField(Execution, on_delete=models.CASCADE, related_name="approval")
    status = models.CharField(max_length=10, choices=ApprovalStatus.choices, default=ApprovalStatus.PENDING,
                              db_index=True)
    required_votes = models.PositiveSmallIntegerField(default=1)
    deadline = models.DateTimeField(db_index=True)
    escalated_at = models.DateTimeField(null=True, blank=True)
    reminded_at = models.DateTimeField(null=True, blank=True)
    decided_at = models.DateTimeField(null=True, blank=True)
    decision_comment = models.TextField(blank=True)
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        ordering = ["deadline", "pk"]
        permissions = [("decide_approvalrequest", "Can approve or reject the request")]

    def __str__(self) -> str:
        return f"Approval of {self.execution.public_id} ({self.get_status_display().lower()})"


class Vote(models.TextChoices):
    APPROVE = "approve", "Approve"
    REJECT = "reject", "Reject"


class ApprovalVote(models.Model):
    request = models.ForeignKey(ApprovalRequest, on_delete=models.CASCADE, related_name="votes")
    approver = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="approval_votes")
    decision = models.CharField(max_length=10, choices=Vote.choices)
    comment = models.TextField(blank=True)
    via = models.CharField(max_length=20, help_text="admin, link, api or chat")
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        ordering = ["created_at", "pk"]
        constraints = [models.UniqueConstraint(fields=["request", "approver"], name="one_vote_per_approver")]

    def __str__(self) -> str:
        return f"{self.approver} {self.decision}d {self.request.execution.public_id}"
