"""Local copies of processes and definitions: read once per process, renewed by any change anywhere."""

from __future__ import annotations

import pytest
from django.core.cache import cache
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext

from executions import services
from executions.actors import Actor
from executions.errors import ProcessPaused
from executions.models import Process
from heptora.local_cache import DEFINITIONS

pytestmark = pytest.mark.django_db
ORDER = {"orderId": "ORD-2024-001", "priority": "High"}


def start() -> str:
    return services.execution_start(process_id="order-processing", parameters=dict(ORDER), source="cli",
                                    actor=Actor.system("cli:test")).status


def test_a_process_row_is_read_once_then_served_from_the_local_copy() -> None:
    services.process_resolve("order-processing")
    with CaptureQueriesContext(connection) as queries:
        process = services.process_resolve("order-processing")

    assert process.slug == "order-processing"
    assert not any('FROM "executions_process"' in q["sql"] for q in queries)


def test_a_pause_made_in_another_process_refuses_the_very_next_start_here() -> None:
    assert start() == "queued"
    # Another web process pauses it: its row changes, and its receiver renews the shared token.
    Process.objects.filter(slug="order-processing").update(is_paused=True, pause_reason="month-end close")
    cache.set(DEFINITIONS.token_key, "renewed-by-another-process", None)

    with pytest.raises(ProcessPaused, match="month-end close"):
        start()


def test_a_pause_through_the_service_applies_to_the_next_start() -> None:
    assert start() == "queued"
    services.process_pause(process=Process.objects.get(slug="order-processing"), reason="audit")

    with pytest.raises(ProcessPaused, match="audit"):
        start()


def test_a_copy_handed_out_cannot_change_what_the_next_caller_gets() -> None:
    first = services.process_resolve("order-processing")
    first.name = "changed by a caller"

    assert services.process_resolve("order-processing").name != "changed by a caller"


def test_a_change_rolled_back_leaves_no_copy_behind() -> None:
    class Abandoned(Exception):
        pass

    with pytest.raises(Abandoned), transaction.atomic():
        services.process_pause(process=Process.objects.get(slug="order-processing"), reason="draft")
        assert services.process_resolve("order-processing").is_paused  # this transaction sees its own change
        raise Abandoned

    assert not services.process_resolve("order-processing").is_paused
    assert start() == "queued"
