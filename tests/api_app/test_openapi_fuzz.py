"""The published OpenAPI document is a contract: schemathesis holds every operation to it.

An integrator with an API key allowed to start every process sends what schemathesis generates from
`/api/schema/` (documented examples, boundary and invalid values, random bodies and headers) to the
project's own WSGI application. Every answer must be a documented status code with the documented content
type, headers and body, and never a server error, whatever the body, path or header.

Deterministic and bounded: Hypothesis is derandomized and the number of examples per operation is small,
so the same requests go out on every run. Started executions only need to be queued: no worker runs here.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest
import schemathesis
from django.contrib.auth.models import User
from django.core.signals import request_finished, request_started
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections
from django.utils import timezone
from guardian.shortcuts import assign_perm
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.schemas import BaseSchema
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from api_app.api_keys import MAX_RATE_LIMIT, api_key_create
from executions import services
from executions.actors import Actor
from executions.models import Execution, ExecutionSource, ExecutionStatus, Process
from tests.conftest import PASSWORD

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]
ORDER = {"orderId": "ORD-2024-001", "priority": "High"}
MAX_EXAMPLES = 10  # random (fuzzing-phase) cases per operation, on top of the examples and coverage cases


@pytest.fixture
def integrator(db: None) -> User:
    """Ivan's system starts every registered process (the demo ones and the test ones)."""
    user = User.objects.create_user("ivan", "ivan@example.com", PASSWORD)
    for process in Process.objects.filter(is_registered=True):
        assign_perm("executions.execute_process", user, process)
    return user


@pytest.fixture
def api_key(integrator: User) -> str:
    _key, full_key = api_key_create(user=integrator, name="Schemathesis", rate_limit_per_minute=MAX_RATE_LIMIT)
    return full_key


@pytest.fixture
def no_broker(monkeypatch: pytest.MonkeyPatch) -> None:
    """Executions the fuzzer starts stay queued: no worker runs here, and nothing reaches a broker."""
    monkeypatch.setattr(services, "execution_publish", lambda **kwargs: None)


@pytest.fixture
def executions(integrator: User, no_broker: None) -> list[Execution]:
    """Ivan's orders: one still queued, one that succeeded, one that failed (as a worker would leave them)."""
    actor = Actor.for_user(integrator)
    started = [services.execution_start(process_id="order-processing", parameters=ORDER, source=ExecutionSource.API,
                                        actor=actor) for _ in range(3)]
    now = timezone.now()
    finished = {"started_at": now - timedelta(seconds=3), "finished_at": now, "attempt": 1}
    Execution.objects.filter(pk=started[1].pk).update(status=ExecutionStatus.SUCCESS, result={"status": "processed"},
                                                      current_step=5, total_steps=5, percent=100, **finished)
    Execution.objects.filter(pk=started[2].pk).update(status=ExecutionStatus.FAILED, error_code="process_error",
                                                      error_message="Payment declined", error_step=3, **finished)
    return started


@pytest.fixture
def in_process_requests() -> Iterator[None]:
    """Keep the test's database transaction open across requests, as Django's test client does.

    A real server closes the connection after each request; in a test that would end the transaction
    every example runs in.
    """
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    yield
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)


@pytest.fixture
def api_schema(api_key: str, executions: list[Execution], in_process_requests: None,
               request: pytest.FixtureRequest) -> BaseSchema:
    if not hasattr(request.node, "_nodeid"):
        # schemathesis 4.32.5's from_fixture renames the test node through `_nodeid`, which pytest 9.2 no
        # longer has (it is `_id` now); give it the attribute so the runner works (names stay unchanged).
        request.node._nodeid = request.node.nodeid
    config = schemathesis.Config.from_dict({
        "headers": {"Authorization": f"Bearer {api_key}"},
        # Half of the execution ids sent are ivan's own, so detail, events, cancel and retry answer for real.
        "dictionaries": {"executions": {"values": [e.public_id for e in executions]}},
        "parameters": {"path.execution_id": {"dictionary": "executions", "probability": 0.5}},
    })
    return schemathesis.openapi.from_wsgi("/api/schema/", get_wsgi_application(), config=config)


schema = schemathesis.pytest.from_fixture("api_schema")


@settings(max_examples=MAX_EXAMPLES, derandomize=True, deadline=None, database=None,
          suppress_health_check=list(HealthCheck))
@schema.parametrize()
def test_every_operation_answers_as_its_schema_documents(case: schemathesis.Case) -> None:
    case.call_and_validate(checks=CHECKS)
