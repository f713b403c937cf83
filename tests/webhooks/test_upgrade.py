"""Upgrading a running installation: executions that already had a callbackUrl keep hearing their events."""

from __future__ import annotations

import pytest
from django.core.management import call_command
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.utils import timezone

BEFORE = [("executions", "0003_actor_kind_anonymous"), ("webhooks", "0001_initial")]
AFTER = [("executions", "0004_execution_watched"), ("webhooks", "0002_watch_executions_with_callbacks")]


@pytest.mark.django_db(transaction=True)
def test_an_execution_waiting_with_a_callback_when_the_upgrade_runs_is_watched_after_it() -> None:
    executor = MigrationExecutor(connection)
    executor.migrate(BEFORE)
    old = executor.loader.project_state(BEFORE).apps
    try:
        user = old.get_model("auth", "User").objects.create(username="ivan")
        process = old.get_model("executions", "Process").objects.get(slug="order-processing")
        Execution = old.get_model("executions", "Execution")
        fields = {"process": process, "source": "api", "actor_kind": "user", "actor_label": "ivan", "timeout": 60,
                  "status": "awaiting_approval", "created_at": timezone.now()}
        called_back = Execution.objects.create(public_id="exec-with-callback", **fields)
        Execution.objects.create(public_id="exec-without", **fields)
        old.get_model("webhooks", "ExecutionCallback").objects.create(
            execution=called_back, owner=user, url="https://example.com/cb")

        executor = MigrationExecutor(connection)
        executor.migrate(AFTER)
    finally:
        call_command("migrate", verbosity=0)  # the rest of the run needs the latest schema

    from executions.models import Execution as Current

    assert dict(Current.objects.values_list("public_id", "watched")) == {
        "exec-with-callback": True, "exec-without": False}
