"""The shared local receiver, integrators' endpoints, and waiting for a delivery to settle."""

from __future__ import annotations

import itertools
import time
from collections.abc import Iterator

import pytest
from django.contrib.auth.models import User
from django.core.cache import cache

from tests.webhooks.receiver import Receiver
from webhooks.models import Delivery, DeliveryStatus, WebhookEndpoint

_paths = itertools.count(1)


@pytest.fixture(scope="session")
def receiver() -> Iterator[Receiver]:
    """One receiver for the whole run; each test listens on paths of its own."""
    server = Receiver()
    server.thread.start()
    yield server
    server.server.shutdown()


@pytest.fixture
def path() -> str:
    """A receiver path no other test uses."""
    return f"/hooks/{next(_paths)}"


@pytest.fixture(autouse=True)
def fresh_rate_limits(db: None) -> None:
    cache.clear()


@pytest.fixture
def integrator(db: None) -> User:
    """Ivan runs the shop's integration; he owns the webhooks."""
    return User.objects.create_user("ivan", "ivan@example.com", "x")


def endpoint_for(owner: User, url: str, events: list[str] | None = None) -> WebhookEndpoint:
    """An endpoint saved as the API would save it (the URL already checked)."""
    return WebhookEndpoint.objects.create(owner=owner, url=url, events=events or ["process.completed"])


def settled(delivery: Delivery, timeout: float = 15) -> Delivery:
    """Wait until the worker has finished with ``delivery`` (succeeded or failed)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        delivery.refresh_from_db()
        if delivery.status != DeliveryStatus.PENDING:
            return delivery
        time.sleep(0.03)
    raise AssertionError(f"{delivery.public_id} still pending after {timeout} s ({delivery.attempts} attempts, "
                         f"{delivery.last_error})")
