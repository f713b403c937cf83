"""Demo: the product's "Sensitive Report Generation" (can start: Managers and Staff; requires approval from
any one of the Managers, for every start method including the API; timeout 4 hours)."""

from __future__ import annotations

from collections.abc import Callable

from django.contrib.auth.models import Group, Permission
from guardian.shortcuts import assign_perm

from approvals.models import FOUR_HOURS, ApprovalPolicy, OnTimeout, Quorum
from executions.models import Process


def seed(write: Callable[[str], None], *, reset_passwords: bool = False) -> None:
    process = Process.objects.filter(slug="sensitive-report").first()
    if process is None:  # not registered in this deployment's code
        return
    managers, _ = Group.objects.get_or_create(name="Managers")
    staff, _ = Group.objects.get_or_create(name="Staff")
    for group in (managers, staff):
        assign_perm("executions.execute_process", group, process)
    # Managers use the approval queue in admin.
    managers.permissions.add(*Permission.objects.filter(content_type__app_label="approvals",
                                                        codename="view_approvalpolicy"))
    policy, created = ApprovalPolicy.objects.get_or_create(process=process, defaults={
        "required": True, "exempt_sources": [], "quorum": Quorum.ANY, "timeout_seconds": FOUR_HOURS,
        "on_timeout": OnTimeout.EXPIRE,
    })
    if created:
        policy.approver_groups.add(managers)
        write("approval policy for sensitive-report: any one of Managers, 4 hours")
