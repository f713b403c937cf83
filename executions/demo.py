"""Demo data: groups, users and permissions on the demo processes (used by ``manage.py seed_demo``)."""

from __future__ import annotations

from collections.abc import Callable

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group, Permission
from guardian.shortcuts import assign_perm

from executions.models import Process
from executions.services import processes_sync

DEMO_PROCESSES = ["order-processing", "report-generation", "data-sync", "monthly-report", "failure-demo"]
# user name -> (groups, is_superuser, is_staff)
DEMO_USERS = {
    "admin": ([], True, True),
    "manager": (["Managers"], False, True),
    "staff": (["Staff"], False, False),
    "integrator": ([], False, False),
}


def seed(write: Callable[[str], None], *, reset_passwords: bool = False) -> None:
    processes_sync()
    managers, _ = Group.objects.get_or_create(name="Managers")
    staff, _ = Group.objects.get_or_create(name="Staff")
    # Managers see and control every execution in admin; Staff may start the demo processes and see
    # their own executions.
    manager_perms = Permission.objects.filter(
        content_type__app_label="executions",
        codename__in=["view_process", "view_execution", "view_executionevent", "view_process_executions",
                      "change_process", "execute_process"],
    )
    managers.permissions.add(*manager_perms)
    User = get_user_model()
    password = settings.HEPTORA_DEMO_PASSWORD
    users = {}
    for username, (groups, superuser, is_staff) in DEMO_USERS.items():
        user = User.objects.filter(username=username).first()
        if user is None:
            user = User(username=username, email=f"{username}@example.com", is_superuser=superuser,
                        is_staff=is_staff, is_active=True)
            user.set_password(password)
            user.save()
            user.groups.add(*Group.objects.filter(name__in=groups))
            write(f"created user {username}")
        elif reset_passwords:
            # Only on request: an operator may have changed a password or disabled a demo user on purpose.
            user.set_password(password)
            user.save(update_fields=["password"])
            write(f"reset the password of {username}")
        users[username] = user
    for process in Process.objects.filter(slug__in=DEMO_PROCESSES):
        assign_perm("executions.execute_process", staff, process)
        assign_perm("executions.execute_process", users["integrator"], process)
    write(f"demo users: {', '.join(DEMO_USERS)} (password from HEPTORA_DEMO_PASSWORD)")
