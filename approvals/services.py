"""Approvals: the gate on the launch path, the request raised for a held execution, votes and deadlines.

Flow: the launch path asks :func:`approval_gate`; a held execution is saved ``awaiting_approval`` and the
``process.awaiting_approval`` lifecycle event makes :func:`approval_request_create` raise the request in
the same transaction (approvers get the decide permission and an e-mail). :func:`approval_decide` records
a vote under a row lock, so two managers deciding at once yield exactly one decision; enough approvals
queue the execution, one rejection ends it ``rejected``. :func:`approvals_expire_due` (beat and
``manage.py expire_approvals``) reminds, escalates, expires or rejects at the deadline.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core import signing
from django.db import transaction
from django.db.models import QuerySet
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone
from guardian.shortcuts import assign_perm, get_objects_for_user, get_users_with_perms

from approvals.models import ApprovalPolicy, ApprovalRequest, ApprovalStatus, ApprovalVote, OnTimeout, Quorum, Vote
from executions import lifecycle
from executions import services as executions_services
from executions.errors import HeptoraError
from executions.models import EventKind, EventLevel, Execution, ExecutionStatus, Process
from heptora.local_cache import DEFINITIONS
from notifications import services as notifications

if TYPE_CHECKING:
    from django.contrib.auth.models import AbstractBaseUser

    from executions.actors import Actor

logger = logging.getLogger(__name__)

DECIDE = "approvals.decide_approvalrequest"
LINK_SALT = "heptora.approvals.link"


class ApprovalNotFound(HeptoraError):
    code = "approval_not_found"
    http_status = 404


class ApprovalDenied(HeptoraError):
    code = "permission_denied"
    http_status = 403


class ApprovalClosed(HeptoraError):
    """The request was already decided, expired or cancelled."""

    code = "approval_closed"
    http_status = 409


# --- The gate (registered on the launch path) -----------------------------------------------------------


def approval_gate(*, process: Process, actor: Actor, source: str, parameters: dict[str, Any]) -> bool:
    """True when ``process`` started from ``source`` must wait for approval under its policy.

    On every start's path, so the policy's answer is read from this process's local copy (no query in the
    steady state), renewed everywhere when a policy is saved or deleted (``ApprovalsConfig.ready``).
    """
    gate = DEFINITIONS.get(("gate", process.slug), lambda: _gate_of(process))
    return gate["required"] and source not in gate["exempt"]


def _gate_of(process: Process) -> dict[str, Any]:
    policy = ApprovalPolicy.objects.filter(process=process).first()
    return {"required": bool(policy and policy.required), "exempt": frozenset(policy.exempt_sources if policy else ())}


# --- Raising a request ----------------------------------------------------------------------------------


def _approver_groups_and_users(policy: ApprovalPolicy | None) -> tuple[list[Group], list[AbstractBaseUser]]:
    if policy is None:  # held by a door (a form marked "requires approval") on a process without a policy
        group = Group.objects.filter(name=settings.HEPTORA_DEFAULT_APPROVER_GROUP).first()
        return ([group] if group else []), []
    return list(policy.approver_groups.all()), list(policy.approver_users.all())


def _eligible(groups: list[Group], users: list[AbstractBaseUser], requester_id: int | None) -> list[Any]:
    people = {u.pk: u for u in users if u.is_active}
    for user in get_user_model().objects.filter(groups__in=groups, is_active=True).distinct():
        people[user.pk] = user
    people.pop(requester_id, None)  # nobody approves their own request
    return list(people.values())


def approval_request_create(event: lifecycle.LifecycleEvent) -> None:
    """Lifecycle listener (transaction phase) for ``process.awaiting_approval``: raise the request."""
    execution = Execution.objects.select_related("process", "actor_user").get(pk=event.execution_pk)
    if ApprovalRequest.objects.filter(execution=execution).exists():
        return
    policy = ApprovalPolicy.objects.filter(process=execution.process).first()
    groups, users = _approver_groups_and_users(policy)
    eligible = _eligible(groups, users, execution.actor_user_id)
    quorum = policy.quorum if policy else Quorum.ANY
    needed = {Quorum.ANY: 1, Quorum.COUNT: policy.quorum_count if policy else 1,
              Quorum.ALL: max(1, len(eligible))}[quorum]
    timeout = policy.timeout_seconds if policy else settings.HEPTORA_APPROVAL_TIMEOUT
    now = timezone.now()
    request = ApprovalRequest.objects.create(
        execution=execution, required_votes=needed, created_at=now, deadline=now + timedelta(seconds=timeout)
    )
    for group in groups:
        assign_perm(DECIDE, group, request)
    for user in users:
        assign_perm(DECIDE, user, request)
    who = ", ".join([g.name for g in groups] + [u.get_username() for u in users]) or "nobody (no approvers set)"
    executions_services.execution_record_event(
        execution=execution, kind=EventKind.LOG,
        message=f"Approval requested from {who}; {needed} approval(s) needed by {request.deadline:%Y-%m-%d %H:%M} UTC",
        data={"approval": "requested", "approvers": who, "requiredVotes": needed,
              "deadline": request.deadline.isoformat()},
    )
    if not eligible:
        logger.warning("approval of %s: no active approver can decide it", execution.public_id)
    _notify(request, eligible, kind="approval.requested")


def approval_request_close_for(event: lifecycle.LifecycleEvent) -> None:
    """Lifecycle listener: an execution cancelled while awaiting approval closes its pending request."""
    ApprovalRequest.objects.filter(execution_id=event.execution_pk, status=ApprovalStatus.PENDING).update(
        status=ApprovalStatus.CANCELLED, decided_at=timezone.now(), decision_comment="Cancelled by the requester."
    )


# --- Who may decide -------------------------------------------------------------------------------------


def approval_can_decide(user: AbstractBaseUser, request: ApprovalRequest) -> bool:
    """May ``user`` vote on ``request``? Approvers (and superusers) may; the requester never may."""
    if not user.is_active or request.execution.actor_user_id == user.pk:
        return False
    return user.is_superuser or user.has_perm(DECIDE, request)


def approvals_decidable_by(user: AbstractBaseUser) -> QuerySet[ApprovalRequest]:
    """Every request ``user`` may decide (the admin queue shows the pending ones), never their own."""
    requests = ApprovalRequest.objects.select_related("execution", "execution__process", "execution__actor_user")
    if not user.is_active:
        return requests.none()
    if not user.is_superuser:
        requests = get_objects_for_user(user, DECIDE, klass=requests, accept_global_perms=False)
    return requests.exclude(execution__actor_user=user)


def approval_for_execution(execution_id: str) -> ApprovalRequest:
    request = ApprovalRequest.objects.select_related("execution", "execution__process").filter(
        execution__public_id=execution_id).first()
    if request is None:
        raise ApprovalNotFound(f"{execution_id} has no approval request.")
    return request


# --- Deciding -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Decision:
    request: ApprovalRequest
    vote: ApprovalVote
    outcome: str  # the request's status after this vote: pending, approved or rejected


def approval_decide(
    *, request: ApprovalRequest, approver: AbstractBaseUser, decision: str, comment: str = "", via: str = "admin",
    now: Any = None,
) -> Decision:
    """Record ``approver``'s vote. Raises ApprovalDenied (not an approver, or their own request),
    ApprovalClosed (already decided, expired, past its deadline, or this approver already voted)."""
    if decision not in Vote.values:
        raise ValueError(f"Unknown decision {decision!r}")
    now = now or timezone.now()
    public_id = request.execution.public_id
    if request.execution.actor_user_id == approver.pk:
        raise ApprovalDenied(f"You started {public_id}; someone else must approve or reject it.")
    if not approval_can_decide(approver, request):
        raise ApprovalDenied(f"You are not one of the approvers of {public_id}.")
    with transaction.atomic():
        # The row lock serializes deciders: the second one sees the first one's outcome.
        locked = ApprovalRequest.objects.select_for_update().select_related("execution", "execution__process").get(
            pk=request.pk)
        if locked.status != ApprovalStatus.PENDING:
            raise ApprovalClosed(f"The request for {public_id} was already {locked.get_status_display().lower()}.")
        if locked.deadline <= now:
            raise ApprovalClosed(f"The request for {public_id} expired at {locked.deadline:%Y-%m-%d %H:%M} UTC; "
                                 "it can no longer be decided.")
        if locked.votes.filter(approver=approver).exists():
            raise ApprovalClosed(f"You have already voted on {public_id}.")
        vote = ApprovalVote.objects.create(request=locked, approver=approver, decision=decision,
                                           comment=comment[:2000], via=via, created_at=now)
        who = approver.get_username()
        said = f": {comment}" if comment else ""
        execution = locked.execution
        if decision == Vote.REJECT:
            _close(locked, ApprovalStatus.REJECTED, now, comment)
            executions_services.execution_transition(
                execution=execution, to=ExecutionStatus.REJECTED, from_statuses=(ExecutionStatus.AWAITING_APPROVAL,),
                message=f"Rejected by {who}{said}", level=EventLevel.WARNING,
                event_data={"by": who, "comment": comment, "via": via},
            )
        else:
            approvals = locked.votes.filter(decision=Vote.APPROVE).count()
            if approvals >= locked.required_votes:
                _close(locked, ApprovalStatus.APPROVED, now, comment)
                executions_services.execution_approve(execution=execution, message=f"Approved by {who}{said}")
            else:
                executions_services.execution_record_event(
                    execution=execution, kind=EventKind.LOG,
                    message=f"Approved by {who}{said} ({approvals} of {locked.required_votes} approvals)",
                    data={"approval": "vote", "by": who, "comment": comment, "via": via},
                )
    logger.info("approval of %s: %s by %s via %s", public_id, decision, approver.get_username(), via)
    return Decision(request=locked, vote=vote, outcome=locked.status)


def _close(request: ApprovalRequest, status: str, now: Any, comment: str = "") -> None:
    request.status, request.decided_at, request.decision_comment = status, now, comment
    request.save(update_fields=["status", "decided_at", "decision_comment"])


# --- Deadlines ------------------------------------------------------------------------------------------


@dataclass
class DeadlineReport:
    reminded: list[str]
    escalated: list[str]
    expired: list[str]
    rejected: list[str]


def approvals_expire_due(*, now: Any = None) -> DeadlineReport:
    """Remind, escalate, expire or reject the pending requests whose time has come (beat runs this)."""
    now = now or timezone.now()
    report = DeadlineReport([], [], [], [])
    for request in ApprovalRequest.objects.filter(status=ApprovalStatus.PENDING, deadline__lte=now):
        _handle_deadline(request.pk, now, report)
    due_reminders = ApprovalRequest.objects.filter(status=ApprovalStatus.PENDING, reminded_at__isnull=True,
                                                   deadline__gt=now).select_related("execution__process")
    for request in due_reminders:
        policy = ApprovalPolicy.objects.filter(process=request.execution.process).first()
        before = policy.reminder_before_seconds if policy else settings.HEPTORA_APPROVAL_REMINDER_BEFORE
        if before and request.deadline - timedelta(seconds=before) <= now:
            _remind(request, now)
            report.reminded.append(request.execution.public_id)
    return report


def _handle_deadline(pk: int, now: Any, report: DeadlineReport) -> None:
    with transaction.atomic():
        request = ApprovalRequest.objects.select_for_update().select_related(
            "execution", "execution__process").filter(pk=pk, status=ApprovalStatus.PENDING, deadline__lte=now).first()
        if request is None:  # decided meanwhile
            return
        execution = request.execution
        policy = ApprovalPolicy.objects.filter(process=execution.process).first()
        action = policy.on_timeout if policy else OnTimeout.EXPIRE
        if action == OnTimeout.ESCALATE and request.escalated_at is None and policy.escalation_groups.exists():
            groups = list(policy.escalation_groups.all())
            request.escalated_at = now
            request.deadline = now + timedelta(seconds=policy.escalation_timeout_seconds)
            request.reminded_at = None
            request.save(update_fields=["escalated_at", "deadline", "reminded_at"])
            for group in groups:
                assign_perm(DECIDE, group, request)
            names = ", ".join(g.name for g in groups)
            executions_services.execution_record_event(
                execution=execution, kind=EventKind.LOG, level=EventLevel.WARNING,
                message=f"Nobody decided in time; escalated to {names} until {request.deadline:%Y-%m-%d %H:%M} UTC",
                data={"approval": "escalated", "to": names, "deadline": request.deadline.isoformat()},
            )
            _notify(request, _eligible(groups, [], execution.actor_user_id), kind="approval.escalated")
            report.escalated.append(execution.public_id)
            return
        if action == OnTimeout.REJECT:
            _close(request, ApprovalStatus.REJECTED, now, "Rejected automatically: nobody decided in time.")
            executions_services.execution_transition(
                execution=execution, to=ExecutionStatus.REJECTED, from_statuses=(ExecutionStatus.AWAITING_APPROVAL,),
                message="Rejected automatically: nobody decided in time", level=EventLevel.WARNING,
                event_data={"by": "timeout"},
            )
            report.rejected.append(execution.public_id)
            return
        _close(request, ApprovalStatus.EXPIRED, now, "Nobody decided in time.")
        executions_services.execution_transition(
            execution=execution, to=ExecutionStatus.EXPIRED, from_statuses=(ExecutionStatus.AWAITING_APPROVAL,),
            message="Expired: nobody decided in time", level=EventLevel.WARNING, event_data={"by": "timeout"},
        )
        report.expired.append(execution.public_id)


def _remind(request: ApprovalRequest, now: Any) -> None:
    with transaction.atomic():
        if not ApprovalRequest.objects.filter(pk=request.pk, status=ApprovalStatus.PENDING,
                                              reminded_at__isnull=True).update(reminded_at=now):
            return
        voted = set(request.votes.values_list("approver_id", flat=True))
        people = [u for u in approvers_of(request) if u.pk not in voted]
        _notify(request, people, kind="approval.reminder")


def approvers_of(request: ApprovalRequest) -> list[Any]:
    """The active people who may decide ``request`` now (through a group or by name), requester excluded."""
    users = get_users_with_perms(request, only_with_perms_in=["decide_approvalrequest"], with_group_users=True)
    return [u for u in users if u.is_active and u.pk != request.execution.actor_user_id]


# --- E-mail with a signed link per approver -------------------------------------------------------------


def approval_link_token(request: ApprovalRequest, approver: AbstractBaseUser) -> str:
    return signing.dumps({"r": request.pk, "u": approver.pk}, salt=LINK_SALT, compress=True)


def approval_from_link(token: str, user: AbstractBaseUser) -> ApprovalRequest:
    """The request a decision link points to, for the signed-in ``user`` it was sent to.

    The link only identifies the request; opening it decides nothing (mail scanners and link previews open
    links), and the decision still needs the signed-in approver's own POST.
    """
    try:
        data = signing.loads(token, salt=LINK_SALT, max_age=settings.HEPTORA_APPROVAL_LINK_MAX_AGE)
    except signing.SignatureExpired:
        raise ApprovalNotFound("This approval link has expired. Open the approval queue in admin instead.") from None
    except signing.BadSignature:
        raise ApprovalNotFound("This approval link is not valid. Check that it was copied whole.") from None
    if data.get("u") != user.pk:
        raise ApprovalDenied("This approval link was sent to someone else. Sign in as that approver, or open "
                             "the approval queue in admin.")
    request = ApprovalRequest.objects.select_related("execution", "execution__process",
                                                     "execution__actor_user").filter(pk=data.get("r")).first()
    if request is None:
        raise ApprovalNotFound("This approval request no longer exists.")
    return request


SUBJECTS = {
    "approval.requested": "Approval needed: {process} ({execution})",
    "approval.reminder": "Reminder: approval needed by {deadline} UTC: {process} ({execution})",
    "approval.escalated": "Escalated to you: approval needed: {process} ({execution})",
}


def _notify(request: ApprovalRequest, people: list[Any], *, kind: str) -> None:
    execution = request.execution
    base = settings.HEPTORA_BASE_URL.rstrip("/")
    for person in people:
        if not person.email:
            continue
        link = base + reverse("approvals:decide", args=[approval_link_token(request, person)])
        context = {"request": request, "execution": execution, "approver": person, "link": link, "kind": kind,
                   "requester": execution.actor_label, "parameters": execution.parameters}
        subject = SUBJECTS[kind].format(process=execution.process.name, execution=execution.public_id,
                                        deadline=f"{request.deadline:%Y-%m-%d %H:%M}")
        notifications.notification_queue(
            execution=execution, event_type=f"{kind}:{request.escalated_at is not None:d}", recipient=person.email,
            subject=subject, body=render_to_string("approvals/approval_email.txt", context),
        )
