"""A worker's claim and an execution's outcome: the status change and its event together, in one statement
when no listener may write, in a transaction with the listeners when one may, and never half of either."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.db import connection
from django.test.utils import CaptureQueriesContext

from executions import lifecycle, services
from executions.actors import Actor
from executions.models import EventKind, Execution, ExecutionStatus
from webhooks import services as webhook_services
from webhooks.models import CallbackSecret, Delivery, WebhookEndpoint

pytestmark = pytest.mark.django_db
S = ExecutionStatus
ORDER = {"orderId": "ORD-2024-001", "priority": "High", "metadata": {"channel": "shop", "tags": ["a", "b"]}}


@pytest.fixture(autouse=True)
def published(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(services, "execution_publish", lambda **kwargs: None)


@pytest.fixture
def everything_in_a_transaction() -> Iterator[None]:
    """A transaction listener with no say about when it writes: every change goes the transaction way."""
    def listener(event: lifecycle.LifecycleEvent) -> None:
        pass

    lifecycle.subscribe(listener, phase="transaction")
    yield
    lifecycle.unsubscribe(listener)


def queued(operator: Actor, **kwargs: Any) -> Execution:
    return services.execution_start(process_id="order-processing", source="cli", actor=operator,
                                    parameters=ORDER, notify_email=kwargs.pop("notify_email", ""), **kwargs)


def run_to_success(execution: Execution) -> tuple[Execution, list[str], list[str]]:
    """Claim and finish ``execution`` as a worker does; the SQL of the claim and of the outcome."""
    with CaptureQueriesContext(connection) as claim:
        claimed = services.execution_claim(execution_pk=execution.pk, lease="lease-1", worker="host:1")
    assert claimed is not None
    with CaptureQueriesContext(connection) as outcome:
        assert services.execution_transition(execution=claimed, to=S.SUCCESS, expect_lease="lease-1",
                                             message="Completed successfully", result={"ok": True}, percent=100)
    return claimed, [q["sql"] for q in claim.captured_queries], [q["sql"] for q in outcome.captured_queries]


def status_events(execution: Execution) -> list[tuple[str, dict[str, Any]]]:
    return [(e.message, e.data) for e in execution.events.filter(kind=EventKind.STATUS).order_by("id")]


def writes_to_executions(sql: list[str]) -> list[str]:
    return [s for s in sql if "executions_execution" in s and s.lstrip().startswith(("UPDATE", "WITH"))]


def test_with_nobody_listening_a_claim_and_an_outcome_are_one_statement_each(operator: Actor) -> None:
    """The usual worker run (no webhook endpoint, no callback, no e-mail): no transaction, no read-back.
    (The first run of a worker process reads the endpoints and the process once, for its local copies.)"""
    run_to_success(queued(operator))
    claimed, claim_sql, outcome_sql = run_to_success(queued(operator))

    if connection.vendor == "postgresql":
        assert len(claim_sql) == 1 and claim_sql[0].startswith("WITH changed AS (UPDATE"), claim_sql
        assert len(outcome_sql) == 1 and outcome_sql[0].startswith("WITH changed AS (UPDATE"), outcome_sql
    assert status_events(claimed) == [
        ("Queued: started by cli:test via Command line", {"status": "queued", "source": "cli", "actor": "cli:test"}),
        ("Started on host:1 (attempt 1)", {"status": "running", "attempt": 1}),
        ("Completed successfully", {"status": "success"}),
    ]


@pytest.mark.parametrize("prepared", [True, False], ids=["prepared statements", "behind a pooler without them"])
def test_a_run_stores_its_start_and_its_result(operator: Actor, settings: Any, prepared: bool) -> None:
    settings.HEPTORA_DB_PREPARED_STATEMENTS = prepared

    claimed, _, _ = run_to_success(queued(operator))

    stored = Execution.objects.get(pk=claimed.pk)
    assert (stored.status, stored.result, stored.percent, stored.attempt, stored.lease) == (
        S.SUCCESS, {"ok": True}, 100, 1, "lease-1")
    assert stored.started_at is not None and stored.finished_at >= stored.started_at
    assert (claimed.status, claimed.result, claimed.finished_at) == (stored.status, stored.result, stored.finished_at)


def test_the_claimed_row_is_the_row_as_stored(operator: Actor) -> None:
    """What the claim hands the process (parameters, times, attempt) is exactly what a fresh read gives."""
    claimed = services.execution_claim(execution_pk=queued(operator, timeout=120).pk, lease="lease-1",
                                       worker="host:1")
    assert claimed is not None

    stored = Execution.objects.get(pk=claimed.pk)
    fields = [f.attname for f in Execution._meta.concrete_fields]
    assert {f: getattr(claimed, f) for f in fields} == {f: getattr(stored, f) for f in fields}
    assert claimed.parameters["metadata"] == {"channel": "shop", "tags": ["a", "b"]}
    assert (claimed.status, claimed.attempt, claimed.lease, claimed.timeout) == (S.RUNNING, 1, "lease-1", 120)
    assert claimed.process.slug == "order-processing"


def test_the_one_statement_way_stores_exactly_what_the_transaction_way_stores(
    operator: Actor, request: pytest.FixtureRequest
) -> None:
    one, _, _ = run_to_success(queued(operator))
    request.getfixturevalue("everything_in_a_transaction")
    other, claim_sql, _ = run_to_success(queued(operator))

    if connection.vendor == "postgresql":
        assert len(claim_sql) > 1  # the UPDATE in a transaction the listener joins
    skip = {"id", "public_id", "created_at", "queued_at", "published_at", "heartbeat_at", "started_at",
            "finished_at"}
    rows = [Execution.objects.filter(pk=e.pk).values().get() for e in (one, other)]
    assert {k: v for k, v in rows[0].items() if k not in skip} == {k: v for k, v in rows[1].items() if k not in skip}
    assert status_events(one) == status_events(other)


def test_a_second_claim_of_the_same_execution_gets_nothing_and_writes_nothing(operator: Actor) -> None:
    execution = queued(operator)
    assert services.execution_claim(execution_pk=execution.pk, lease="lease-1", worker="host:1") is not None

    assert services.execution_claim(execution_pk=execution.pk, lease="lease-2", worker="host:2") is None

    execution.refresh_from_db()
    assert (execution.lease, execution.attempt) == ("lease-1", 1)
    assert [m for m, _ in status_events(execution)][1:] == ["Started on host:1 (attempt 1)"]


def test_an_outcome_after_a_cancel_finished_the_execution_changes_nothing(operator: Actor) -> None:
    claimed = services.execution_claim(execution_pk=queued(operator).pk, lease="lease-1", worker="host:1")
    assert claimed is not None
    Execution.objects.filter(pk=claimed.pk).update(status=S.CANCELLED)

    assert not services.execution_transition(execution=claimed, to=S.SUCCESS, expect_lease="lease-1",
                                             message="Completed successfully")

    assert Execution.objects.get(pk=claimed.pk).status == S.CANCELLED
    assert "Completed successfully" not in [m for m, _ in status_events(claimed)]


def test_an_execution_with_a_callback_hears_its_start_and_end_from_the_transaction_way(
    operator: Actor, staff_user: User
) -> None:
    CallbackSecret.objects.create(owner=staff_user)
    execution = queued(operator)
    seen_before_attach = Execution.objects.get(pk=execution.pk)  # a copy that does not know of the callback
    webhook_services.callback_attach(execution=execution, owner=staff_user, url="http://127.0.0.1:9/cb")

    claimed = services.execution_claim(execution_pk=execution.pk, lease="lease-1", worker="host:1")
    assert claimed is not None and claimed.watched
    # A writer holding a row from before the callback was attached still ends up in the transaction.
    seen_before_attach.lease, seen_before_attach.status = "lease-1", S.RUNNING
    assert not seen_before_attach.watched
    assert services.execution_transition(execution=seen_before_attach, to=S.SUCCESS, expect_lease="lease-1",
                                         message="Completed successfully")

    assert sorted(Delivery.objects.filter(execution=execution).values_list("event_type", flat=True)) == [
        "process.completed", "process.started"]


def test_an_endpoint_for_another_process_costs_a_transaction_but_hears_nothing(
    operator: Actor, staff_user: User
) -> None:
    from executions.models import Process

    other = Process.objects.exclude(slug="order-processing").first()
    assert other is not None
    WebhookEndpoint.objects.create(owner=staff_user, url="http://127.0.0.1:9/hook",
                                   events=["process.started", "process.completed"], process=other)

    claimed, claim_sql, outcome_sql = run_to_success(queued(operator))

    assert Delivery.objects.count() == 0
    assert claimed.status == S.SUCCESS
    if connection.vendor == "postgresql":
        # Before the claim the process is unknown: any endpoint for starts means a transaction; the outcome
        # knows its process, and no endpoint of that process listens.
        assert len(claim_sql) > 1 and len(outcome_sql) == 1


def test_an_endpoint_for_every_process_hears_the_start_and_the_end(operator: Actor, admin_user: User) -> None:
    WebhookEndpoint.objects.create(owner=admin_user, url="http://127.0.0.1:9/hook",
                                   events=["process.started", "process.completed"])

    claimed, claim_sql, outcome_sql = run_to_success(queued(operator))

    assert sorted(Delivery.objects.filter(execution=claimed).values_list("event_type", flat=True)) == [
        "process.completed", "process.started"]
    if connection.vendor == "postgresql":
        assert len(claim_sql) > 1 and len(outcome_sql) > 1  # in a transaction with the deliveries


def test_an_outcome_e_mail_is_written_with_the_outcome(operator: Actor) -> None:
    from notifications.models import Notification

    claimed, _, outcome_sql = run_to_success(queued(operator, notify_email="ada@example.com"))

    assert list(Notification.objects.filter(execution=claimed).values_list("event_type", flat=True)) == [
        "process.completed"]
    if connection.vendor == "postgresql":
        assert len(outcome_sql) > 1
