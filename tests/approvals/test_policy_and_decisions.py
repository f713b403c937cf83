"""Sensitive work waits for a manager: who may start it, when approval applies, and how a decision lands."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import timedelta

import pytest
from django.contrib.auth.models import Group, User
from django.core import mail
from django.db import connection
from django.utils import timezone

from approvals import services
from approvals.models import ApprovalPolicy, ApprovalRequest, ApprovalStatus, OnTimeout, Quorum
from executions import services as executions_services
from executions.actors import Actor
from executions.errors import LaunchDenied
from executions.models import Execution, ExecutionStatus, Process
from notifications.models import Notification
from notifications.services import notification_send
from tests.approvals.conftest import REPORT

S = ExecutionStatus
pytestmark = pytest.mark.django_db


# --- Policy: who may start, and when approval applies ---------------------------------------------------


@pytest.mark.parametrize("source", ["form", "api", "chat", "manual", "cli", "schedule"])
def test_every_start_method_waits_for_approval_when_none_is_exempt(
    request_report: Callable[..., Execution], source: str
) -> None:
    execution = request_report(source=source)

    assert execution.status == S.AWAITING_APPROVAL
    assert execution.queued_at is None
    assert ApprovalRequest.objects.get(execution=execution).status == ApprovalStatus.PENDING


@pytest.mark.parametrize(("source", "held"), [("api", False), ("form", True), ("chat", True)])
def test_a_policy_may_exempt_the_api(
    request_report: Callable[..., Execution], policy: ApprovalPolicy, source: str, held: bool
) -> None:
    policy.exempt_sources = ["api"]
    policy.save()

    execution = request_report(source=source)

    assert (execution.status == S.AWAITING_APPROVAL) is held
    assert ApprovalRequest.objects.filter(execution=execution).exists() is held


def test_a_changed_policy_applies_to_the_very_next_start(
    request_report: Callable[..., Execution], policy: ApprovalPolicy
) -> None:
    assert request_report(source="api").status == S.AWAITING_APPROVAL  # the gate now remembers the policy

    policy.exempt_sources = ["api"]
    policy.save()
    assert request_report(source="api").status == S.QUEUED

    policy.delete()
    assert request_report(source="form").status == S.QUEUED


def test_a_process_without_a_policy_runs_at_once(staff_user: User) -> None:
    execution = executions_services.execution_start(
        process_id="order-processing", parameters={"orderId": "ORD-2024-001", "priority": "Low"}, source="form",
        actor=Actor.for_user(staff_user))

    assert execution.status == S.QUEUED
    assert not ApprovalRequest.objects.exists()


def test_a_policy_switched_off_holds_nothing(request_report: Callable[..., Execution], policy: ApprovalPolicy) -> None:
    policy.required = False
    policy.save()

    assert request_report().status == S.QUEUED


def test_people_outside_the_allowed_roles_cannot_even_ask(sensitive_report: Process, outsider: User) -> None:
    with pytest.raises(LaunchDenied):
        executions_services.execution_start(process_id="sensitive-report", parameters=REPORT, source="form",
                                            actor=Actor.for_user(outsider))

    assert not Execution.objects.exists()


def test_a_door_can_demand_approval_for_a_process_without_a_policy(staff_user: User, manager: User) -> None:
    """A form marked "requires approval" holds its starts; the default approvers (Managers) decide."""
    execution = executions_services.execution_start(
        process_id="order-processing", parameters={"orderId": "ORD-2024-001", "priority": "Low"}, source="form",
        actor=Actor.for_user(staff_user), require_approval=True)

    approval = ApprovalRequest.objects.get(execution=execution)
    assert execution.status == S.AWAITING_APPROVAL
    assert services.approval_can_decide(manager, approval)


# --- The request: approvers told, events recorded -------------------------------------------------------


def test_each_approver_is_emailed_a_personal_link_that_decides_nothing_by_itself(
    request_report: Callable[..., Execution], manager: User, max_manager: User, staff_user: User
) -> None:
    execution = request_report()

    notes = Notification.objects.filter(execution=execution).order_by("recipient")
    assert [n.recipient for n in notes] == ["maria@example.com", "max@example.com"]
    for note in notes:
        notification_send(notification_pk=note.pk)
    maria = next(m for m in mail.outbox if m.to == ["maria@example.com"])
    assert maria.subject == f"Approval needed: Sensitive Report Generation ({execution.public_id})"
    assert "sam asked to run a process that needs approval" in maria.body
    assert "department: Finance" in maria.body
    assert "opening the link decides nothing" in maria.body
    assert "/approvals/" in maria.body
    assert ApprovalRequest.objects.get(execution=execution).status == ApprovalStatus.PENDING


def test_the_requester_is_never_asked_to_approve_their_own_request(
    sensitive_report: Process, manager: User, max_manager: User
) -> None:
    execution = executions_services.execution_start(process_id="sensitive-report", parameters=REPORT,
                                                    source="form", actor=Actor.for_user(manager))

    assert list(Notification.objects.filter(execution=execution).values_list("recipient", flat=True)) == [
        "max@example.com"]


def test_the_execution_events_say_who_was_asked_and_by_when(request_report: Callable[..., Execution]) -> None:
    execution = request_report()

    messages = list(execution.events.values_list("message", flat=True))
    assert messages[0].startswith("Awaiting approval: started by sam via Web form")
    assert messages[1].startswith("Approval requested from Managers; 1 approval(s) needed by ")


# --- Deciding -------------------------------------------------------------------------------------------


def test_an_approval_queues_the_execution_and_is_kept_in_the_audit_trail(
    request_report: Callable[..., Execution], manager: User
) -> None:
    execution = request_report()
    approval = ApprovalRequest.objects.get(execution=execution)

    decision = services.approval_decide(request=approval, approver=manager, decision="approve",
                                        comment="Board meeting on Friday", via="admin")

    execution.refresh_from_db()
    assert decision.outcome == ApprovalStatus.APPROVED
    assert execution.status == S.QUEUED
    assert execution.queued_at is not None
    vote = approval.votes.get()
    assert (vote.approver, vote.decision, vote.comment, vote.via) == (manager, "approve", "Board meeting on Friday",
                                                                     "admin")
    assert execution.events.last().message == "Approved by maria: Board meeting on Friday"


def test_a_rejection_ends_the_execution_rejected_and_tells_the_requester(
    request_report: Callable[..., Execution], manager: User
) -> None:
    execution = executions_services.execution_start(
        process_id="sensitive-report", parameters=REPORT, source="form", notify_email="sam@example.com",
        actor=Actor.for_user(User.objects.get(username="sam")))
    approval = ApprovalRequest.objects.get(execution=execution)

    services.approval_decide(request=approval, approver=manager, decision="reject", comment="Use the summary report")

    execution.refresh_from_db()
    assert execution.status == S.REJECTED
    assert execution.finished_at is not None
    assert execution.events.last().message == "Rejected by maria: Use the summary report"
    told = Notification.objects.get(execution=execution, recipient="sam@example.com")
    assert told.event_type == "process.rejected"


def test_self_approval_is_refused_even_for_a_superuser(sensitive_report: Process, admin_user: User) -> None:
    execution = executions_services.execution_start(process_id="sensitive-report", parameters=REPORT,
                                                    source="form", actor=Actor.for_user(admin_user))
    approval = ApprovalRequest.objects.get(execution=execution)

    with pytest.raises(services.ApprovalDenied, match="someone else must approve"):
        services.approval_decide(request=approval, approver=admin_user, decision="approve")

    execution.refresh_from_db()
    assert execution.status == S.AWAITING_APPROVAL
    assert not approval.votes.exists()


def test_someone_who_is_not_an_approver_cannot_decide(
    request_report: Callable[..., Execution], outsider: User
) -> None:
    approval = ApprovalRequest.objects.get(execution=request_report())

    with pytest.raises(services.ApprovalDenied, match="not one of the approvers"):
        services.approval_decide(request=approval, approver=outsider, decision="approve")


def test_a_second_decision_on_a_decided_request_is_refused(
    request_report: Callable[..., Execution], manager: User, max_manager: User
) -> None:
    approval = ApprovalRequest.objects.get(execution=request_report())
    services.approval_decide(request=approval, approver=manager, decision="approve")

    with pytest.raises(services.ApprovalClosed, match="was already approved"):
        services.approval_decide(request=approval, approver=max_manager, decision="reject")


def test_two_of_the_approvers_are_needed_when_the_quorum_says_so(
    request_report: Callable[..., Execution], policy: ApprovalPolicy, manager: User, max_manager: User
) -> None:
    policy.quorum, policy.quorum_count = Quorum.COUNT, 2
    policy.save()
    execution = request_report()
    approval = ApprovalRequest.objects.get(execution=execution)

    first = services.approval_decide(request=approval, approver=manager, decision="approve")
    execution.refresh_from_db()
    assert (first.outcome, execution.status) == (ApprovalStatus.PENDING, S.AWAITING_APPROVAL)
    assert execution.events.last().message == "Approved by maria (1 of 2 approvals)"
    with pytest.raises(services.ApprovalClosed, match="already voted"):
        services.approval_decide(request=approval, approver=manager, decision="approve")

    second = services.approval_decide(request=approval, approver=max_manager, decision="approve")
    execution.refresh_from_db()
    assert (second.outcome, execution.status) == (ApprovalStatus.APPROVED, S.QUEUED)


def test_with_a_quorum_of_all_one_rejection_still_ends_it(
    request_report: Callable[..., Execution], policy: ApprovalPolicy, manager: User, max_manager: User
) -> None:
    policy.quorum = Quorum.ALL
    policy.save()
    execution = request_report()
    approval = ApprovalRequest.objects.get(execution=execution)
    assert approval.required_votes == 2

    services.approval_decide(request=approval, approver=manager, decision="approve")
    services.approval_decide(request=approval, approver=max_manager, decision="reject")

    execution.refresh_from_db()
    assert execution.status == S.REJECTED


def test_cancelling_a_waiting_request_closes_it(
    request_report: Callable[..., Execution], staff_user: User, manager: User
) -> None:
    execution = request_report()
    executions_services.execution_cancel(execution=execution, actor=Actor.for_user(staff_user))
    approval = ApprovalRequest.objects.get(execution=execution)

    assert approval.status == ApprovalStatus.CANCELLED
    with pytest.raises(services.ApprovalClosed, match="already cancelled"):
        services.approval_decide(request=approval, approver=manager, decision="approve")


@pytest.mark.django_db(transaction=True)
def test_two_managers_deciding_at_once_yield_exactly_one_decision(
    request_report: Callable[..., Execution], manager: User, max_manager: User
) -> None:
    execution = request_report()
    approval = ApprovalRequest.objects.get(execution=execution)
    outcomes: dict[str, str] = {}
    barrier = threading.Barrier(2)

    def decide(user: User, decision: str) -> None:
        barrier.wait()
        try:
            outcomes[user.username] = services.approval_decide(
                request=ApprovalRequest.objects.get(pk=approval.pk), approver=user, decision=decision).outcome
        except services.ApprovalClosed as exc:
            outcomes[user.username] = exc.message
        finally:
            connection.close()

    threads = [threading.Thread(target=decide, args=(manager, "approve")),
               threading.Thread(target=decide, args=(max_manager, "reject"))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)

    execution.refresh_from_db()
    assert approval.votes.count() == 1
    assert sorted(o.split(" ")[0] for o in outcomes.values()) in (["The", "approved"], ["The", "rejected"])
    assert execution.status in (S.QUEUED, S.REJECTED)
    assert execution.events.filter(message__regex=r"^(Approved|Rejected) by").count() == 1


# --- Deadlines ------------------------------------------------------------------------------------------


def test_an_undecided_request_expires_after_four_hours(
    request_report: Callable[..., Execution], manager: User
) -> None:
    execution = request_report()
    approval = ApprovalRequest.objects.get(execution=execution)
    assert approval.deadline - approval.created_at == timedelta(hours=4)

    services.approvals_expire_due(now=timezone.now() + timedelta(hours=3, minutes=59))
    execution.refresh_from_db()
    assert execution.status == S.AWAITING_APPROVAL

    report = services.approvals_expire_due(now=timezone.now() + timedelta(hours=4, seconds=1))
    execution.refresh_from_db()
    assert report.expired == [execution.public_id]
    assert execution.status == S.EXPIRED
    assert execution.events.last().message == "Expired: nobody decided in time"


def test_a_decision_after_the_deadline_is_refused_with_a_clear_message(
    request_report: Callable[..., Execution], manager: User
) -> None:
    approval = ApprovalRequest.objects.get(execution=request_report())

    with pytest.raises(services.ApprovalClosed, match=r"expired at .* it can no longer be decided"):
        services.approval_decide(request=approval, approver=manager, decision="approve",
                                 now=timezone.now() + timedelta(hours=5))


def test_approvers_who_have_not_voted_get_one_reminder_before_the_deadline(
    request_report: Callable[..., Execution], policy: ApprovalPolicy, manager: User, max_manager: User
) -> None:
    policy.quorum, policy.quorum_count = Quorum.COUNT, 2
    policy.save()
    execution = request_report()
    approval = ApprovalRequest.objects.get(execution=execution)
    services.approval_decide(request=approval, approver=manager, decision="approve")

    services.approvals_expire_due(now=timezone.now() + timedelta(hours=3))  # 1 h left: not yet
    assert not Notification.objects.filter(event_type__startswith="approval.reminder").exists()
    for _ in range(2):
        services.approvals_expire_due(now=timezone.now() + timedelta(hours=3, minutes=40))

    reminders = Notification.objects.filter(event_type__startswith="approval.reminder")
    assert [n.recipient for n in reminders] == ["max@example.com"]
    assert reminders.get().subject.startswith("Reminder: approval needed by ")


def test_a_policy_may_reject_at_the_timeout_instead(
    request_report: Callable[..., Execution], policy: ApprovalPolicy
) -> None:
    policy.on_timeout = OnTimeout.REJECT
    policy.save()
    execution = request_report()

    services.approvals_expire_due(now=timezone.now() + timedelta(hours=5))

    execution.refresh_from_db()
    assert execution.status == S.REJECTED
    assert ApprovalRequest.objects.get(execution=execution).status == ApprovalStatus.REJECTED


def test_a_policy_may_escalate_to_a_second_group_who_can_then_decide(
    request_report: Callable[..., Execution], policy: ApprovalPolicy, manager: User
) -> None:
    heads = Group.objects.create(name="Department heads")
    head = User.objects.create_user("hanna", "hanna@example.com", is_staff=True)
    head.groups.add(heads)
    policy.on_timeout = OnTimeout.ESCALATE
    policy.escalation_timeout_seconds = 3600
    policy.save()
    policy.escalation_groups.add(heads)
    execution = request_report()
    approval = ApprovalRequest.objects.get(execution=execution)
    assert not services.approval_can_decide(head, approval)

    later = timezone.now() + timedelta(hours=4, minutes=1)
    report = services.approvals_expire_due(now=later)

    approval.refresh_from_db()
    execution.refresh_from_db()
    assert report.escalated == [execution.public_id]
    assert execution.status == S.AWAITING_APPROVAL
    assert approval.deadline == later + timedelta(hours=1)
    assert services.approval_can_decide(head, approval)
    assert Notification.objects.filter(execution=execution, recipient="hanna@example.com",
                                       subject__startswith="Escalated to you").exists()
    assert "escalated to Department heads" in execution.events.last().message

    services.approvals_expire_due(now=later + timedelta(hours=1, seconds=1))  # nobody again: now it expires
    execution.refresh_from_db()
    assert execution.status == S.EXPIRED


def test_the_policy_refuses_unknown_start_methods_in_its_exemptions(policy: ApprovalPolicy) -> None:
    policy.exempt_sources = ["api", "fax"]

    with pytest.raises(Exception, match="Unknown start methods: fax"):
        policy.full_clean()
