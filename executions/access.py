"""Who may do what to processes and executions: the one place every door asks.

Rules: an operator (system actor: manage.py, the scheduler) may do anything; a superuser may do anything;
otherwise the user needs the permission globally (through a group, e.g. ``Managers``) or on that process
(django-guardian object permission).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from django.db.models import Q, QuerySet
from guardian.shortcuts import get_objects_for_user

from executions.models import Execution, Process

if TYPE_CHECKING:
    from executions.actors import Actor

EXECUTE = "executions.execute_process"
VIEW_ALL = "executions.view_process_executions"


def _user_has(actor: Actor, perm: str, process: Process) -> bool:
    user = actor.user
    if user is None or not user.is_active:
        return False
    return user.has_perm(perm) or user.has_perm(perm, process)


def process_can_execute(actor: Actor, process: Process) -> bool:
    return actor.is_system or _user_has(actor, EXECUTE, process)


def execution_can_view(actor: Actor, execution: Execution) -> bool:
    if actor.is_system:
        return True
    if actor.user is not None and actor.user.is_active and execution.actor_user_id == actor.user.pk:
        return True
    return _user_has(actor, VIEW_ALL, execution.process)


def execution_can_control(actor: Actor, execution: Execution) -> bool:
    """Cancel or retry: whoever started it, or whoever may see all of that process's executions."""
    return execution_can_view(actor, execution)


def processes_executable_by(actor: Actor) -> QuerySet[Process]:
    processes = Process.objects.filter(is_registered=True)
    if actor.is_system:
        return processes
    if actor.user is None or not actor.user.is_active:
        return processes.none()
    # One query for global, group and object permissions together.
    return get_objects_for_user(actor.user, EXECUTE, klass=processes, accept_global_perms=True)


def executions_visible_to(actor: Actor) -> QuerySet[Execution]:
    """The executions ``actor`` may see: their own, plus every execution of processes they may oversee."""
    executions = Execution.objects.select_related("process")
    if actor.is_system:
        return executions
    user = actor.user
    if user is None or not user.is_active:
        return executions.none()
    if user.is_superuser or user.has_perm(VIEW_ALL):
        return executions
    overseen = get_objects_for_user(user, VIEW_ALL, klass=Process, accept_global_perms=False)
    return executions.filter(Q(actor_user=user) | Q(process__in=overseen))


def oversees_any_process(actor: Actor) -> bool:
    """Whether the actor may see all executions of at least one process (admin shows them the list)."""
    if actor.is_system:
        return True
    user = actor.user
    if user is None or not user.is_active:
        return False
    return user.has_perm(VIEW_ALL) or get_objects_for_user(user, VIEW_ALL, klass=Process).exists()
