"""People and policies for the approval stories: Sam (Staff) asks, Maria and Max (Managers) decide."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from django.contrib.auth.models import Group, User
from guardian.shortcuts import assign_perm

from approvals.models import ApprovalPolicy
from executions import services
from executions.actors import Actor
from executions.models import Execution, Process
from tests.conftest import PASSWORD

REPORT = {"department": "Finance", "period": "2024-11", "reason": "Quarterly board pack needs payroll"}


@pytest.fixture
def sensitive_report(managers: Group) -> Process:
    """The product's example: Managers and Staff may start it; any one Manager approves; 4 hours."""
    process = Process.objects.get(slug="sensitive-report")
    staff = Group.objects.get_or_create(name="Staff")[0]
    for group in (managers, staff):
        assign_perm("executions.execute_process", group, process)
    policy = ApprovalPolicy.objects.create(process=process)
    policy.approver_groups.add(managers)
    return process


@pytest.fixture
def policy(sensitive_report: Process) -> ApprovalPolicy:
    return sensitive_report.approval_policy


@pytest.fixture
def max_manager(managers: Group) -> User:
    user = User.objects.create_user("max", "max@example.com", PASSWORD, is_staff=True)
    user.groups.add(managers)
    return user


@pytest.fixture
def request_report(staff_user: User, sensitive_report: Process) -> Callable[..., Execution]:
    """Sam asks for a sensitive report (through the web form unless told otherwise)."""

    def ask(source: str = "form", user: User | None = None, **parameters: str) -> Execution:
        return services.execution_start(process_id="sensitive-report", parameters={**REPORT, **parameters},
                                        source=source, actor=Actor.for_user(user or staff_user))

    return ask
