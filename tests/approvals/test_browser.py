"""A manager approves a request in Django admin, in real headless Chromium against a live server."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from django.contrib.auth.models import User

from approvals.models import ApprovalRequest, ApprovalStatus
from executions.models import Execution, ExecutionStatus
from tests.conftest import PASSWORD

pytestmark = pytest.mark.django_db(transaction=True)


def test_a_manager_opens_the_queue_and_clicks_approve(
    page: Any, request_report: Callable[..., Execution], manager: User
) -> None:
    execution = request_report()
    page.goto("/admin/login/?next=/admin/approvals/approvalrequest/")
    page.fill("#id_username", "maria")
    page.fill("#id_password", PASSWORD)
    page.click("input[type=submit]")

    page.get_by_role("link", name=execution.public_id).click()
    page.wait_for_selector("#decision-form")
    assert "Quarterly board pack needs payroll" in page.content()
    page.fill("#decision-form textarea[name=comment]", "Fine for the board pack")
    page.get_by_role("button", name="Approve").click()
    page.wait_for_selector(".messagelist")

    assert f"Approved {execution.public_id}." in page.locator(".messagelist").inner_text()
    execution.refresh_from_db()
    # Released to the queue (a worker of this test run may already have picked it up).
    assert execution.status in (ExecutionStatus.QUEUED, ExecutionStatus.RUNNING, ExecutionStatus.SUCCESS)
    approval = ApprovalRequest.objects.get(execution=execution)
    assert approval.status == ApprovalStatus.APPROVED
    assert approval.votes.get().comment == "Fine for the board pack"
