"""Who may start a process: the one-query check agrees with the permission backends on every grant route.

access._granted_by_rows answers the usual "yes" in one query; the backends (ModelBackend and guardian)
keep the last word on everything else. These tests pin that both give the same answer for each way a
permission can be held, and that the check costs one query where it used to cost four.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from django.contrib.auth.models import Group, Permission, User
from django.db import connection
from django.test import override_settings
from django.test.utils import CaptureQueriesContext
from guardian.shortcuts import assign_perm, remove_perm
from guardian.utils import get_user_obj_perms_model

from executions import access
from executions.actors import Actor
from executions.models import Process
from tests.conftest import database_work

EXECUTE = access.EXECUTE


def backends_say(user: User, perm: str, process: Process) -> bool:
    fresh = User.objects.get(pk=user.pk)  # no permission caches from earlier checks
    return fresh.is_active and (fresh.has_perm(perm) or fresh.has_perm(perm, process))


def may_start(user: User, process: Process) -> bool:
    return access.process_can_execute(Actor.for_user(User.objects.get(pk=user.pk)), process)


@pytest.fixture
def order(db: None) -> Process:
    return Process.objects.get(slug="order-processing")


@pytest.fixture
def other(db: None) -> Process:
    return Process.objects.get(slug="report-generation")


def _global_user(user: User, process: Process) -> None:
    user.user_permissions.add(Permission.objects.get(codename="execute_process"))


def _global_group(user: User, process: Process) -> None:
    group = Group.objects.create(name="Runners")
    group.permissions.add(Permission.objects.get(codename="execute_process"))
    user.groups.add(group)


def _object_user(user: User, process: Process) -> None:
    assign_perm(EXECUTE, user, process)


def _object_group(user: User, process: Process) -> None:
    group = Group.objects.create(name="Order desk")
    assign_perm(EXECUTE, group, process)
    user.groups.add(group)


def _other_permission_only(user: User, process: Process) -> None:
    assign_perm("executions.view_process_executions", user, process)
    user.user_permissions.add(Permission.objects.get(codename="view_process_executions"))


def _nothing(user: User, process: Process) -> None:
    pass


ROUTES: dict[str, tuple[Callable[[User, Process], None], bool, bool]] = {
    # route: (grant, may start the granted process, may start another process)
    "user permission": (_global_user, True, True),
    "group permission": (_global_group, True, True),
    "user permission on the process": (_object_user, True, False),
    "group permission on the process": (_object_group, True, False),
    "another permission only": (_other_permission_only, False, False),
    "nothing": (_nothing, False, False),
}


@pytest.mark.parametrize("route", list(ROUTES))
def test_the_one_query_check_agrees_with_the_backends(route: str, order: Process, other: Process) -> None:
    grant, on_order, on_other = ROUTES[route]
    user = User.objects.create_user("ida")
    grant(user, order)

    assert may_start(user, order) is on_order == backends_say(user, EXECUTE, order)
    assert may_start(user, other) is on_other == backends_say(user, EXECUTE, other)
    # The fast path alone never says yes where the backends say no.
    assert access._granted_by_rows(user, EXECUTE, order) is on_order
    assert access._granted_by_rows(user, EXECUTE, other) is on_other


@pytest.mark.parametrize("route", ["user permission", "user permission on the process",
                                   "group permission on the process"])
def test_an_inactive_user_may_start_nothing(route: str, order: Process) -> None:
    user = User.objects.create_user("ida")
    ROUTES[route][0](user, order)
    User.objects.filter(pk=user.pk).update(is_active=False)
    assert not may_start(user, order)
    assert not backends_say(user, EXECUTE, order)


def test_a_superuser_may_start_anything_without_a_query(order: Process, django_assert_num_queries: Any) -> None:
    user = User.objects.get(pk=User.objects.create_superuser("root", "root@example.com", "x").pk)
    with django_assert_num_queries(0):
        assert access.process_can_execute(Actor.for_user(user), order)


def test_a_granted_user_costs_one_query_then_none(order: Process) -> None:
    """The "yes" is kept in the process's local copy of grants: later starts ask no query."""
    user = User.objects.create_user("ida")
    assign_perm(EXECUTE, user, order)
    access.process_can_execute(Actor.for_user(User.objects.get(pk=user.pk)), order)  # warm the content types
    access_copies_forget()
    first, second = User.objects.get(pk=user.pk), User.objects.get(pk=user.pk)
    with CaptureQueriesContext(connection) as asked:
        assert access.process_can_execute(Actor.for_user(first), order)
    with CaptureQueriesContext(connection) as asked_again:
        assert access.process_can_execute(Actor.for_user(second), order)

    assert len(database_work(asked)) == 1
    assert database_work(asked_again) == []


def access_copies_forget() -> None:
    from heptora.local_cache import GRANTS

    GRANTS.forget(shared=False)


def _leave_group(user: User, process: Process) -> None:
    user.groups.remove(*user.groups.all())


def _group_loses_permission(user: User, process: Process) -> None:
    for group in user.groups.all():
        group.permissions.clear()


def _object_permission_removed(user: User, process: Process) -> None:
    remove_perm(EXECUTE, user, process)


def _group_object_permission_removed(user: User, process: Process) -> None:
    for group in user.groups.all():
        remove_perm(EXECUTE, group, process)


def _direct_permission_removed(user: User, process: Process) -> None:
    user.user_permissions.remove(Permission.objects.get(codename="execute_process"))


def _group_deleted(user: User, process: Process) -> None:
    Group.objects.filter(user=user).delete()


REVOCATIONS = {
    "removed from the group": ("group permission", _leave_group),
    "the group loses the permission": ("group permission", _group_loses_permission),
    "the group is deleted": ("group permission on the process", _group_deleted),
    "the object permission is removed": ("user permission on the process", _object_permission_removed),
    "the group's object permission is removed": ("group permission on the process",
                                                 _group_object_permission_removed),
    "the user permission is removed": ("user permission", _direct_permission_removed),
}


@pytest.mark.parametrize("revocation", list(REVOCATIONS))
def test_a_permission_taken_away_stops_the_very_next_start(revocation: str, order: Process) -> None:
    route, revoke = REVOCATIONS[revocation]
    user = User.objects.create_user("ida")
    ROUTES[route][0](user, order)
    assert may_start(user, order)  # and the "yes" is now kept

    revoke(user, order)

    assert not may_start(user, order)
    assert not backends_say(user, EXECUTE, order)


@pytest.mark.django_db(transaction=True)  # as another process sees it: committed, not this test's own change
def test_a_permission_taken_away_by_another_process_stops_the_next_start_here(order: Process) -> None:
    """Another web or worker process revoked it (here: a write no signal reports, and the new generation
    token it stores): this process's kept "yes" is not used again."""
    from django.core.cache import cache

    from heptora.local_cache import GRANTS

    user = User.objects.create_user("ida")
    assign_perm(EXECUTE, user, order)
    assert may_start(user, order)

    get_user_obj_perms_model(Process).objects.filter(user=user).update(object_pk="0")  # no signal here
    assert may_start(user, order)  # nobody said anything changed: the kept answer stands
    cache.set(GRANTS.token_key, 12345, None)  # what the other process's write stored

    assert not may_start(user, order)


def test_other_backends_leave_the_decision_to_them(order: Process) -> None:
    user = User.objects.create_user("ida")
    assign_perm(EXECUTE, user, order)
    with override_settings(AUTHENTICATION_BACKENDS=["django.contrib.auth.backends.ModelBackend"]):
        assert not access._granted_by_rows(user, EXECUTE, order)  # not trusted: guardian is not configured
        assert not may_start(User.objects.get(pk=user.pk), order)  # and ModelBackend alone says no


@pytest.mark.django_db(transaction=True)
def test_after_a_change_made_in_sql_the_operator_renews_the_copies_and_it_applies(order: Process) -> None:
    """docs/deploy.md, "Changes made outside Heptora": a permission taken away in SQL, then
    ``manage.py renew_local_copies``."""
    from io import StringIO

    from django.core.management import call_command
    from django.db import connection

    user = User.objects.create_user("ida")
    assign_perm(EXECUTE, user, order)
    assert may_start(user, order)
    with connection.cursor() as cursor:
        cursor.execute(f"DELETE FROM {get_user_obj_perms_model(Process)._meta.db_table}")
    assert may_start(user, order)  # nobody told this process

    out = StringIO()
    call_command("renew_local_copies", stdout=out)

    assert not may_start(user, order)
    assert out.getvalue().startswith("Renewed: definitions, api-keys, webhook-endpoints, grants.")


def test_object_permissions_on_other_things_leave_the_kept_grants_alone(
    order: Process, monkeypatch: pytest.MonkeyPatch
) -> None:
    """guardian keeps every model's object permissions in the same tables (an approval request's deciders
    too); only permissions on processes renew the grants of every process."""
    from heptora.local_cache import GRANTS

    renewals: list[str] = []
    monkeypatch.setattr(GRANTS, "changed", lambda: renewals.append("renewed"))
    user = User.objects.create_user("ida")
    renewals.clear()  # a new user is a user write

    group = Group.objects.create(name="Reviewers")
    renewals.clear()  # so is a new group
    assign_perm("auth.change_group", user, group)
    assert renewals == []

    assign_perm(EXECUTE, user, order)
    assert renewals == ["renewed"]
