"""Who may do what to processes and executions: the one place every door asks.

Rules: an operator (system actor: manage.py, the scheduler) may do anything; a superuser may do anything;
otherwise the user needs the permission globally (through a group, e.g. ``Managers``) or on that process
(django-guardian object permission).
"""

from __future__ import annotations

from functools import cache
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group, Permission, User
from django.contrib.contenttypes.models import ContentType
from django.db import connection
from django.db.models import Q, QuerySet
from guardian.shortcuts import get_objects_for_user
from guardian.utils import get_group_obj_perms_model, get_user_obj_perms_model

from executions.models import Execution, Process
from heptora.local_cache import GRANTS

if TYPE_CHECKING:
    from executions.actors import Actor

EXECUTE = "executions.execute_process"
VIEW_ALL = "executions.view_process_executions"


def _user_has(actor: Actor, perm: str, process: Process) -> bool:
    user = actor.user
    if user is None or not user.is_active:
        return False
    if user.is_superuser:  # as User.has_perm: an active superuser has every permission
        return True
    # The common "yes" in one query, kept in a local copy; anything else (a "no", another backend) is left
    # to the backends, every time.
    if GRANTS.get((user.pk, perm, process.pk), lambda: _granted_by_rows(user, perm, process) or None):
        return True
    return user.has_perm(perm) or user.has_perm(perm, process)


# --- One query for the usual "yes" ---------------------------------------------------------------------
# Every API call that starts a process asks "may this user start this process?". Through the backends that
# is four queries (ModelBackend: the user's and their groups' permissions; guardian: the user's and their
# groups' permissions on the object), about a third of an execute request's time. _granted_by_rows asks the
# same four tables in ONE query. It is trusted only for a "yes", and only with the stock backends and
# models, where a row in one of these tables is exactly what makes them answer yes; a "no" (or any other
# setup) still goes through user.has_perm, so custom backends, vetoes and exotic setups decide as before.
# A "yes" is then kept in the "grants" local copy (heptora.local_cache): any write to users, groups,
# permissions, memberships or object permissions renews it (executions.apps), so a permission taken away
# stops the very next start in every process, and the usual start asks no query at all.

_STOCK_BACKENDS = {"django.contrib.auth.backends.ModelBackend", "guardian.backends.ObjectPermissionBackend"}


def _grant_sql() -> str | None:
    """The query for :func:`_granted_by_rows`, or None when the setup is not the stock one it mirrors."""
    if set(settings.AUTHENTICATION_BACKENDS) != _STOCK_BACKENDS or get_user_model() is not User:
        return None
    return _stock_grant_sql()


@cache
def _stock_grant_sql() -> str | None:
    user_perms, group_perms = get_user_obj_perms_model(Process), get_group_obj_perms_model(Process)
    if not user_perms.objects.is_generic() or not group_perms.objects.is_generic():
        return None
    q = connection.ops.quote_name

    def table(model: Any) -> str:
        return q(model._meta.db_table)

    def col(model: Any, name: str) -> str:
        return q(model._meta.get_field(name).column)

    direct, member, grouped = User.user_permissions.through, User.groups.through, Group.permissions.through
    perm_id, ctype_id = q(Permission._meta.pk.column), q(ContentType._meta.pk.column)
    return (
        f"SELECT 1 FROM {table(Permission)} p JOIN {table(ContentType)} ct"
        f" ON ct.{ctype_id} = p.{col(Permission, 'content_type')}"
        f" WHERE ct.{col(ContentType, 'app_label')} = %s AND p.{col(Permission, 'codename')} = %s AND ("
        # ModelBackend: the permission given to the user, or to one of their groups
        f" EXISTS (SELECT 1 FROM {table(direct)} d WHERE d.{col(direct, 'permission')} = p.{perm_id}"
        f" AND d.{col(direct, 'user')} = %s)"
        f" OR EXISTS (SELECT 1 FROM {table(grouped)} g JOIN {table(member)} m"
        f" ON m.{col(member, 'group')} = g.{col(grouped, 'group')} WHERE g.{col(grouped, 'permission')} = p.{perm_id}"
        f" AND m.{col(member, 'user')} = %s)"
        # guardian: the permission on this object, given to the user or to one of their groups
        f" OR (p.{col(Permission, 'content_type')} = %s AND ("
        f" EXISTS (SELECT 1 FROM {table(user_perms)} uo WHERE uo.{col(user_perms, 'permission')} = p.{perm_id}"
        f" AND uo.{col(user_perms, 'user')} = %s AND uo.{col(user_perms, 'content_type')} = %s"
        f" AND uo.{col(user_perms, 'object_pk')} = %s)"
        f" OR EXISTS (SELECT 1 FROM {table(group_perms)} go JOIN {table(member)} m2"
        f" ON m2.{col(member, 'group')} = go.{col(group_perms, 'group')}"
        f" WHERE go.{col(group_perms, 'permission')} = p.{perm_id} AND m2.{col(member, 'user')} = %s"
        f" AND go.{col(group_perms, 'content_type')} = %s AND go.{col(group_perms, 'object_pk')} = %s)))"
        f") LIMIT 1"
    )


def _granted_by_rows(user: Any, perm: str, process: Process) -> bool:
    sql = _grant_sql()
    if sql is None:
        return False
    app_label, _, codename = perm.partition(".")
    ctype = ContentType.objects.get_for_model(Process).pk  # cached per process by Django
    pk, obj = user.pk, str(process.pk)
    prepared = getattr(connection, "prepared_cursor", None)  # parsed and planned once per connection
    with prepared() if prepared is not None else connection.cursor() as cursor:
        cursor.execute(sql, [app_label, codename, pk, pk, ctype, pk, ctype, obj, pk, ctype, obj])
        return cursor.fetchone() is not None


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
