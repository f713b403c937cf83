"""Where approvers decide: the admin queue, the e-mailed link, the API, manage.py; and the approved run."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import timedelta
from io import StringIO

import pytest
from django.contrib.auth.models import Group, User
from django.core.management import call_command
from django.test import Client
from django.utils import timezone

from approvals import services
from approvals.models import ApprovalPolicy, ApprovalRequest, ApprovalStatus
from executions.models import Execution, ExecutionStatus
from tests.api_app.helpers import integration, signed_in
from tests.conftest import WorkerProcess, wait_for_status

S = ExecutionStatus
pytestmark = pytest.mark.django_db
QUEUE = "/admin/approvals/approvalrequest/"


# --- The admin queue ------------------------------------------------------------------------------------


def test_a_manager_sees_only_the_requests_they_may_decide(
    request_report: Callable[..., Execution], manager: User, staff_user: User
) -> None:
    mine = request_report()
    other_process = Group.objects.create(name="Finance heads")
    policy = ApprovalPolicy.objects.get(process__slug="sensitive-report")
    policy.approver_groups.set([other_process])
    not_mine = request_report()

    page = signed_in(manager).get(QUEUE)

    assert page.status_code == 200
    html = page.content.decode()
    assert mine.public_id in html
    assert not_mine.public_id not in html
    assert "Sensitive Report Generation" in html
    assert "sam via Web form" in html
    assert "3h 59m" in html  # time left


def test_the_queue_opens_on_pending_requests(request_report: Callable[..., Execution], manager: User) -> None:
    decided = request_report()
    services.approval_decide(request=ApprovalRequest.objects.get(execution=decided), approver=manager,
                             decision="reject")
    waiting = request_report()

    html = signed_in(manager).get(QUEUE).content.decode()

    assert waiting.public_id in html
    assert decided.public_id not in html
    assert decided.public_id in signed_in(manager).get(QUEUE + "?status=all").content.decode()


def test_a_manager_approves_from_the_request_page_with_a_comment(
    request_report: Callable[..., Execution], manager: User
) -> None:
    execution = request_report()
    approval = ApprovalRequest.objects.get(execution=execution)
    client = signed_in(manager)

    page = client.get(f"{QUEUE}{approval.pk}/change/")
    assert page.status_code == 200
    assert 'name="decision" value="approve"' in page.content.decode()
    assert "Quarterly board pack needs payroll" in page.content.decode()  # the parameters are shown
    response = client.post(f"{QUEUE}{approval.pk}/decide/", {"decision": "approve", "comment": "OK for the board"})

    assert response.status_code == 302
    execution.refresh_from_db()
    assert execution.status == S.QUEUED
    assert approval.votes.get().comment == "OK for the board"
    assert "Approved exec-" in client.get(response.url).content.decode()


def test_bulk_rejection_asks_for_a_comment_first_then_rejects_each(
    request_report: Callable[..., Execution], manager: User
) -> None:
    first, second = request_report(), request_report()
    ids = [str(a.pk) for a in ApprovalRequest.objects.all()]
    client = signed_in(manager)

    confirm = client.post(QUEUE, {"action": "reject_selected", "_selected_action": ids})
    assert confirm.status_code == 200
    assert "You are about to <strong>reject</strong>" in confirm.content.decode()
    assert Execution.objects.filter(status=S.AWAITING_APPROVAL).count() == 2

    client.post(QUEUE, {"action": "reject_selected", "_selected_action": ids, "confirm": "yes",
                        "comment": "Budget freeze"})

    for execution in (first, second):
        execution.refresh_from_db()
        assert execution.status == S.REJECTED
        assert execution.events.last().message == "Rejected by maria: Budget freeze"


def test_a_manager_cannot_decide_their_own_request_in_admin(sensitive_report: object, manager: User) -> None:
    from executions import services as executions_services
    from executions.actors import Actor
    from tests.approvals.conftest import REPORT

    execution = executions_services.execution_start(process_id="sensitive-report", parameters=REPORT,
                                                    source="form", actor=Actor.for_user(manager))
    approval = ApprovalRequest.objects.get(execution=execution)
    client = signed_in(manager)

    assert execution.public_id not in client.get(QUEUE).content.decode()
    client.post(f"{QUEUE}{approval.pk}/decide/", {"decision": "approve"})
    execution.refresh_from_db()
    assert execution.status == S.AWAITING_APPROVAL


# --- The e-mailed link ----------------------------------------------------------------------------------


def test_opening_the_link_shows_the_request_and_decides_nothing(
    request_report: Callable[..., Execution], manager: User
) -> None:
    execution = request_report()
    approval = ApprovalRequest.objects.get(execution=execution)
    link = f"/approvals/{services.approval_link_token(approval, manager)}/"

    assert Client().get(link).status_code == 302  # a mail scanner, not signed in: sent to sign in
    page = signed_in(manager).get(link)

    assert page.status_code == 200
    assert "Approve" in page.content.decode()
    execution.refresh_from_db()
    assert execution.status == S.AWAITING_APPROVAL
    assert not approval.votes.exists()


def test_the_approver_decides_on_the_link_page_with_a_post(
    request_report: Callable[..., Execution], manager: User
) -> None:
    execution = request_report()
    approval = ApprovalRequest.objects.get(execution=execution)
    link = f"/approvals/{services.approval_link_token(approval, manager)}/"
    client = signed_in(manager)

    response = client.post(link, {"decision": "reject", "comment": "Not this month"}, follow=True)

    execution.refresh_from_db()
    assert execution.status == S.REJECTED
    assert approval.votes.get().via == "link"
    assert "You rejected" in response.content.decode()


def test_a_link_sent_to_another_approver_or_tampered_with_is_refused(
    request_report: Callable[..., Execution], manager: User, max_manager: User
) -> None:
    approval = ApprovalRequest.objects.get(execution=request_report())
    token = services.approval_link_token(approval, manager)

    assert signed_in(max_manager).get(f"/approvals/{token}/").status_code == 403
    assert signed_in(manager).get(f"/approvals/{token[:-2]}xx/").status_code == 404


# --- The API --------------------------------------------------------------------------------------------


def test_an_approver_approves_through_the_api(
    request_report: Callable[..., Execution], manager: User
) -> None:
    execution = request_report(source="api")

    response = integration(manager).post(f"/api/v1/executions/{execution.public_id}/approve",
                                         {"comment": "Fine"}, format="json")

    assert response.status_code == 200, response.content
    assert response.json()["status"] == "queued"
    assert ApprovalRequest.objects.get(execution=execution).votes.get().via == "api"


def test_the_api_refuses_self_approval_strangers_and_late_decisions(
    request_report: Callable[..., Execution], manager: User, staff_user: User, outsider: User
) -> None:
    execution = request_report(source="api")
    url = f"/api/v1/executions/{execution.public_id}/approve"

    own = integration(staff_user).post(url, {}, format="json")
    assert own.status_code == 403
    assert "someone else must approve" in own.json()["error"]["message"]
    assert integration(outsider).post(url, {}, format="json").status_code == 404
    assert integration(manager).post(url, {"verdict": "yes"}, format="json").status_code == 400

    integration(manager).post(f"/api/v1/executions/{execution.public_id}/reject", {}, format="json")
    again = integration(manager).post(url, {}, format="json")
    assert again.status_code == 409
    assert again.json()["error"]["code"] == "approval_closed"


def test_an_execution_that_needs_no_approval_has_nothing_to_decide(staff_user: User) -> None:
    from executions import services as executions_services
    from executions.actors import Actor

    execution = executions_services.execution_start(
        process_id="order-processing", parameters={"orderId": "ORD-2024-001", "priority": "Low"}, source="api",
        actor=Actor.for_user(staff_user))

    response = integration(staff_user).post(f"/api/v1/executions/{execution.public_id}/approve", {}, format="json")

    assert response.status_code == 404
    assert "does not need approval" in response.json()["error"]["message"]


# --- manage.py ------------------------------------------------------------------------------------------


def test_list_approvals_shows_the_pending_ones(request_report: Callable[..., Execution], manager: User) -> None:
    waiting = request_report()
    done = request_report()
    services.approval_decide(request=ApprovalRequest.objects.get(execution=done), approver=manager,
                             decision="approve")
    out = StringIO()

    call_command("list_approvals", "--pending", stdout=out)

    assert waiting.public_id in out.getvalue()
    assert done.public_id not in out.getvalue()
    assert "min left" in out.getvalue()
    out = StringIO()
    call_command("list_approvals", "--json", stdout=out)
    rows = [json.loads(line) for line in out.getvalue().splitlines()]
    assert {r["executionId"]: r["status"] for r in rows} == {waiting.public_id: "pending", done.public_id: "approved"}


def test_expire_approvals_ends_the_overdue_ones(request_report: Callable[..., Execution]) -> None:
    execution = request_report()
    ApprovalRequest.objects.update(deadline=timezone.now() - timedelta(seconds=1))
    out = StringIO()

    call_command("expire_approvals", stdout=out)

    assert out.getvalue().strip() == f"expired: {execution.public_id}"
    execution.refresh_from_db()
    assert execution.status == S.EXPIRED
    out = StringIO()
    call_command("expire_approvals", stdout=out)
    assert out.getvalue().strip() == "Nothing was due."


def test_seed_demo_sets_up_the_products_sensitive_report_example() -> None:
    call_command("seed_demo", stdout=StringIO())
    call_command("seed_demo", stdout=StringIO())  # idempotent

    policy = ApprovalPolicy.objects.get(process__slug="sensitive-report")
    assert (policy.required, policy.exempt_sources, policy.quorum, policy.timeout_seconds) == (True, [], "any", 14400)
    assert list(policy.approver_groups.values_list("name", flat=True)) == ["Managers"]
    staff = User.objects.get(username="staff")
    assert staff.has_perm("executions.execute_process", policy.process)


# --- The approved execution really runs -----------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_an_approved_request_runs_on_a_worker_to_success(
    worker: WorkerProcess, request_report: Callable[..., Execution], manager: User
) -> None:
    execution = request_report()
    approval = ApprovalRequest.objects.get(execution=execution)

    services.approval_decide(request=approval, approver=manager, decision="approve", comment="Go")

    execution = wait_for_status(execution, S.SUCCESS, S.FAILED)
    assert execution.status == S.SUCCESS
    assert execution.result["summary"].startswith("Finance 2024-11: payroll $")
    statuses = [e.data["status"] for e in execution.events.filter(kind="status")]
    assert statuses == ["awaiting_approval", "queued", "running", "success"]
    assert ApprovalRequest.objects.get(pk=approval.pk).status == ApprovalStatus.APPROVED
