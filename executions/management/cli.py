"""Shared pieces of the operations commands: parsing, actor, rendering, waiting."""

from __future__ import annotations

import getpass
import json
import time
from collections.abc import Callable
from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError
from django.db import DatabaseError
from django.utils import timezone

from executions import selectors
from executions.actors import Actor
from executions.models import Execution, ExecutionStatus

S = ExecutionStatus


class HeptoraCommand(BaseCommand):
    """An operations command: infrastructure failures become one line and a non-zero exit."""

    def execute(self, *args: Any, **options: Any) -> Any:
        try:
            return super().execute(*args, **options)
        except DatabaseError as exc:
            first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise CommandError(
                f"The database is not available or not migrated ({first_line}). "
                "Check DATABASE_URL and run: manage.py migrate"
            ) from None
EXIT_FAILED = 1
EXIT_INTERRUPTED = 130


def actor_for(username: str | None) -> Actor:
    """The operator (``cli:<os user>``), or the named Heptora user whose permissions then apply."""
    if not username:
        return Actor.system(f"cli:{getpass.getuser()}")
    user = get_user_model().objects.filter(username=username).first()
    if user is None:
        raise CommandError(f"There is no user named '{username}'.")
    return Actor.for_user(user)


def parse_params(pairs: list[str] | None, params_json: str | None) -> dict[str, Any]:
    params: dict[str, Any] = {}
    if params_json:
        try:
            loaded = json.loads(params_json)
        except json.JSONDecodeError as exc:
            raise CommandError(f"--params-json is not valid JSON: {exc.msg} at position {exc.pos}.") from None
        if not isinstance(loaded, dict):
            raise CommandError("--params-json must be a JSON object, for example '{\"orderId\": \"ORD-2024-001\"}'.")
        params.update(loaded)
    for pair in pairs or []:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise CommandError(f"--param {pair!r} must look like key=value, for example --param priority=High.")
        params[key.strip()] = value
    return params


def when(value: Any) -> str:
    return timezone.localtime(value).strftime("%H:%M:%S") if value else "-"


def summary_line(execution: Execution) -> str:
    line = f"{execution.public_id}  {execution.process.slug}  {execution.status}"
    if execution.status == S.RUNNING:
        line += f"  {execution.progress_text}"
    if execution.status == S.FAILED:
        where = f" at step {execution.error_step}/{execution.total_steps}" if execution.error_step else ""
        line += f"{where}: {execution.error_message} ({execution.error_code})"
    if execution.duration_seconds is not None and execution.is_terminal:
        line += f"  in {execution.duration_seconds:.1f} s"
    return line


def wait_for(
    execution: Execution, write: Callable[[str], None], *, poll: float = 0.2, idle_hint_after: float = 10.0
) -> Execution:
    """Print new events until the execution ends; returns the final row."""
    last_event = 0
    started = time.monotonic()
    hinted = False
    try:
        while True:
            for event in selectors.execution_events(execution=execution, after_id=last_event):
                write(f"{when(event.created_at)}  {event.message}")
                last_event = event.id
            execution.refresh_from_db()
            if execution.is_terminal:
                return execution
            waited = time.monotonic() - started
            if execution.status == S.QUEUED and waited > idle_hint_after and not hinted:
                write(f"Still queued after {int(waited)} s: is a worker running? "
                      "Start one with: celery -A heptora worker")
                hinted = True
            time.sleep(poll)
    except KeyboardInterrupt:
        raise CommandError(
            f"Stopped waiting; {execution.public_id} goes on ({execution.status}). "
            f"Follow it with: manage.py show_execution {execution.public_id}",
            returncode=EXIT_INTERRUPTED,
        ) from None


def dumps(data: Any) -> str:
    return json.dumps(data, indent=2, default=str)
