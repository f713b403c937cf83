"""processes_sync: the Process table follows the code, and keeps what admins set on each process."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth.models import User

from executions import services
from executions.actors import Actor
from executions.errors import ProcessNotFound
from executions.models import Execution, Process
from executions.services import SyncReport

pytestmark = pytest.mark.django_db

DEMO = ["data-sync", "failure-demo", "monthly-report", "order-processing", "report-generation", "sensitive-report"]
TEST_ONLY = ["test-echo", "test-once", "test-raise", "test-sleep", "test-steps"]


def snapshot() -> list[dict[str, Any]]:
    return list(Process.objects.order_by("slug").values())


def test_it_creates_a_row_for_every_process_in_the_code(settings: Any) -> None:
    settings.HEPTORA_DEFAULT_TIMEOUT = 120
    Process.objects.all().delete()

    report = services.processes_sync()

    assert report == SyncReport(created=sorted(DEMO + TEST_ONLY))
    assert list(Process.objects.values_list("slug", flat=True)) == sorted(DEMO + TEST_ONLY)
    order = Process.objects.get(slug="order-processing")
    assert (order.name, order.steps, order.default_timeout, order.critical) == ("Order Processing", 5, 300, False)
    assert order.description == "Validate an order, reserve stock, charge the payment, fulfil it and confirm it."
    assert (order.is_registered, order.is_paused, order.owner) == (True, False, None)
    echo = Process.objects.get(slug="test-echo")
    assert (echo.name, echo.steps, echo.default_timeout) == ("Echo", 2, 120)  # no timeout in code: site default


def test_running_it_again_changes_nothing() -> None:
    services.processes_sync()
    before = snapshot()

    report = services.processes_sync()

    assert report == SyncReport()
    assert snapshot() == before


def test_it_keeps_what_an_admin_set_on_a_process(admin_user: User) -> None:
    process = Process.objects.get(slug="order-processing")
    services.process_pause(process=process, reason="Warehouse closed")
    process.owner = admin_user
    process.save(update_fields=["owner"])
    paused_at = Process.objects.get(slug="order-processing").paused_at

    report = services.processes_sync()

    assert report == SyncReport()
    process = Process.objects.get(slug="order-processing")
    assert (process.is_paused, process.paused_at, process.pause_reason, process.owner) == (
        True, paused_at, "Warehouse closed", admin_user
    )


def test_it_restores_what_the_code_says_but_keeps_the_admin_fields(admin_user: User) -> None:
    Process.objects.filter(slug="order-processing").update(
        name="Orders (old name)", steps=2, default_timeout=5, is_paused=True, pause_reason="Audit", owner=admin_user
    )

    report = services.processes_sync()

    assert report == SyncReport(updated=["order-processing"])
    process = Process.objects.get(slug="order-processing")
    assert (process.name, process.steps, process.default_timeout) == ("Order Processing", 5, 300)
    assert (process.is_paused, process.pause_reason, process.owner) == (True, "Audit", admin_user)


def test_a_process_that_left_the_code_is_marked_unregistered_and_kept() -> None:
    Process.objects.create(slug="legacy-import", name="Legacy Import", default_timeout=60)

    first = services.processes_sync()
    second = services.processes_sync()

    assert first == SyncReport(unregistered=["legacy-import"])
    assert second == SyncReport()
    legacy = Process.objects.get(slug="legacy-import")
    assert (legacy.is_registered, legacy.name, legacy.default_timeout) == (False, "Legacy Import", 60)
    assert Process.objects.filter(is_registered=False).count() == 1


def test_the_history_of_a_process_that_left_the_code_is_kept() -> None:
    legacy = Process.objects.create(slug="legacy-import", name="Legacy Import", default_timeout=60)
    old = Execution.objects.create(process=legacy, status="success", source="cli", actor_kind="system",
                                   actor_label="cli:test", timeout=60)

    services.processes_sync()

    assert list(Execution.objects.filter(process__slug="legacy-import")) == [old]


def test_a_process_that_returns_to_the_code_is_registered_again() -> None:
    Process.objects.filter(slug="test-echo").update(is_registered=False)

    report = services.processes_sync()

    assert report == SyncReport(updated=["test-echo"])
    assert Process.objects.get(slug="test-echo").is_registered is True


def test_launching_a_process_that_left_the_code_says_it_does_not_exist(operator: Actor) -> None:
    Process.objects.create(slug="legacy-import", name="Legacy Import", default_timeout=60)
    services.processes_sync()

    with pytest.raises(ProcessNotFound) as caught:
        services.execution_start(process_id="legacy-import", parameters={}, source="cli", actor=operator)

    assert caught.value.message == "There is no process with id 'legacy-import'."
    assert Execution.objects.count() == 0


def test_a_process_row_without_code_cannot_be_launched_even_before_the_next_sync(operator: Actor) -> None:
    Process.objects.create(slug="legacy-import", name="Legacy Import", default_timeout=60)  # still "registered"

    with pytest.raises(ProcessNotFound) as caught:
        services.execution_start(process_id="legacy-import", parameters={}, source="cli", actor=operator)

    assert caught.value.message == "There is no process with id 'legacy-import'."
    assert Execution.objects.count() == 0
