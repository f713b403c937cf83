"""The one subscription point for execution lifecycle events.

The engine publishes; listener apps (webhooks, approvals, chat, notifications) subscribe in their
``AppConfig.ready``. The core never calls a listener by name.

Two phases:

* ``"transaction"`` handlers run inside the transaction that changed the execution. Use them only to write
  rows that must exist if and only if the change happened (a webhook delivery, an approval request).
* ``"commit"`` handlers (the default) run after that transaction commits: send, enqueue, push. A failing
  commit handler is logged and does not affect the others or the caller.

A transaction handler may say when it would write nothing (``interested``), so that the usual status change
(nobody subscribed, nobody watching) is one statement without a transaction: see :func:`needs_transaction`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, Literal

from django.db import transaction
from django.utils import timezone

if TYPE_CHECKING:
    from executions.models import Execution

logger = logging.getLogger(__name__)

# Public event names (webhooks expose the first four to integrators under these exact names).
PROCESS_STARTED = "process.started"
PROCESS_COMPLETED = "process.completed"
PROCESS_FAILED = "process.failed"
PROCESS_CANCELLED = "process.cancelled"
PROCESS_QUEUED = "process.queued"
PROCESS_AWAITING_APPROVAL = "process.awaiting_approval"
PROCESS_REJECTED = "process.rejected"
PROCESS_EXPIRED = "process.expired"
PROCESS_PROGRESS = "process.progress"

EVENT_TYPES = (
    PROCESS_QUEUED,
    PROCESS_AWAITING_APPROVAL,
    PROCESS_STARTED,
    PROCESS_PROGRESS,
    PROCESS_COMPLETED,
    PROCESS_FAILED,
    PROCESS_CANCELLED,
    PROCESS_REJECTED,
    PROCESS_EXPIRED,
)

# The event announced when an execution enters a status.
EVENT_FOR_STATUS = {
    "queued": PROCESS_QUEUED,
    "awaiting_approval": PROCESS_AWAITING_APPROVAL,
    "running": PROCESS_STARTED,
    "success": PROCESS_COMPLETED,
    "failed": PROCESS_FAILED,
    "cancelled": PROCESS_CANCELLED,
    "rejected": PROCESS_REJECTED,
    "expired": PROCESS_EXPIRED,
}

Phase = Literal["transaction", "commit"]


@dataclass(frozen=True)
class LifecycleEvent:
    type: str
    execution_pk: int
    execution_id: str
    process_id: str
    status: str
    occurred_at: datetime
    data: dict[str, Any] = field(default_factory=dict)
    source: str = ""  # the door the execution came through (ExecutionSource): "api", "chat", …
    # The row as the publisher just wrote it, for "transaction" handlers (same transaction, so current) that
    # would otherwise read it again; "commit" handlers run later and should read the row themselves.
    execution: Execution | None = field(default=None, compare=False, repr=False)


Handler = Callable[[LifecycleEvent], None]
# interested(event_type, execution): False only when the handler would write nothing for that event of that
# execution, given that the execution is not ``watched`` (those always get a transaction). ``execution`` is
# None when the row is not read yet (a worker's claim): answer for any unwatched execution.
Interest = Callable[[str, "Execution | None"], bool]


@dataclass(frozen=True)
class _Subscription:
    handler: Handler
    events: frozenset[str] | None
    phase: Phase
    interested: Interest | None = None


_subscriptions: list[_Subscription] = []


def subscribe(handler: Handler, *, events: Iterable[str] | None = None, phase: Phase = "commit",
              interested: Interest | None = None) -> None:
    """Call ``handler`` for each lifecycle event (or only for ``events``).

    ``interested`` (transaction handlers only): a cheap check, without a query, of whether the handler may
    write for an event; without it, every event it hears runs in a transaction.
    """
    wanted = frozenset(events) if events is not None else None
    unknown = (wanted or frozenset()) - set(EVENT_TYPES)
    if unknown:
        raise ValueError(f"Unknown lifecycle events: {', '.join(sorted(unknown))}")
    if interested is not None and phase != "transaction":
        raise ValueError("interested= is for transaction handlers")
    sub = _Subscription(handler, wanted, phase, interested)
    if sub not in _subscriptions:
        _subscriptions.append(sub)


def unsubscribe(handler: Handler) -> None:
    _subscriptions[:] = [s for s in _subscriptions if s.handler is not handler]


def needs_transaction(event_type: str, execution: Execution | None = None) -> bool:
    """May a subscriber write rows in the transaction of ``event_type`` for ``execution``? If not, a writer
    that makes the change in one statement need not open a transaction for it.

    ``execution`` None: for an execution whose row is not read yet, and which the writer makes sure is not
    ``watched`` (a worker's claim puts ``watched = false`` into its UPDATE and falls back to a transaction
    when that does not match).
    """
    for sub in _subscriptions:
        if sub.phase != "transaction" or (sub.events is not None and event_type not in sub.events):
            continue
        if sub.interested is None or (execution is not None and execution.watched):
            return True
        if sub.interested(event_type, execution):
            return True
    return False


def publish(event_type: str, execution: Execution, data: dict[str, Any] | None = None) -> LifecycleEvent:
    """Announce ``event_type`` for ``execution``. Call inside the transaction that made the change."""
    event = LifecycleEvent(
        type=event_type,
        execution_pk=execution.pk,
        execution_id=execution.public_id,
        process_id=execution.process.slug,
        status=execution.status,
        occurred_at=timezone.now(),
        data=data or {},
        source=execution.source,
        execution=execution,
    )
    for sub in list(_subscriptions):
        if sub.events is not None and event_type not in sub.events:
            continue
        if sub.phase == "transaction":
            sub.handler(event)
        else:
            transaction.on_commit(_guarded(sub.handler, event))
    return event


def _guarded(handler: Handler, event: LifecycleEvent) -> Callable[[], None]:
    def run() -> None:
        try:
            handler(event)
        except Exception:  # A listener's bug must not break the engine or the other listeners.
            logger.exception("Lifecycle handler %r failed for %s %s", handler, event.type, event.execution_id)

    return run
