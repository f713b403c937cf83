"""A real worker delivers to a real receiver: success, the 1-2-4-8-16 schedule, timeouts, 410, 3xx, 429.

The schedule runs at HEPTORA_WEBHOOK_BACKOFF_SCALE = 0.05 (tests/environment.py): 50, 100, 200, 400, 800 ms,
the product's 1 s, 2 s, 4 s, 8 s, 16 s in the same ratios.
"""

from __future__ import annotations

import itertools
from email import message_from_string
from pathlib import Path

import pytest
from django.conf import settings
from django.contrib.auth.models import User

from tests.conftest import WorkerProcess
from tests.webhooks.conftest import endpoint_for, settled
from tests.webhooks.receiver import Receiver, Reply
from webhooks import services
from webhooks.models import DeliveryStatus

pytestmark = pytest.mark.django_db(transaction=True)
SCALE = 0.05
TOLERANCE = 0.01  # timers may fire a few milliseconds early


def gaps(received: list) -> list[float]:
    return [later.at - earlier.at for earlier, later in itertools.pairwise(received)]


def test_a_delivery_that_succeeds_at_once_is_sent_once_and_verifies(
    worker: WorkerProcess, receiver: Receiver, path: str, integrator: User
) -> None:
    endpoint = endpoint_for(integrator, receiver.route(path))
    receiver.set_secret(path, endpoint.secret)

    delivery = settled(services.endpoint_send_test(endpoint=endpoint))

    [request] = receiver.at(path)
    assert request.verified, request.error
    assert request.headers["webhook-id"] == delivery.event_id
    assert request.json["eventType"] == "webhook.test"
    assert delivery.status == DeliveryStatus.SUCCEEDED
    assert delivery.attempts == 1
    [attempt] = delivery.attempt_log.all()
    assert (attempt.response_status, attempt.succeeded, attempt.retry_in) == (200, True, None)
    assert attempt.address == "127.0.0.1"
    assert attempt.request_headers["webhook-signature"].startswith("v1,")


def test_a_receiver_failing_three_times_gets_four_attempts_after_1_2_4_units(
    worker: WorkerProcess, receiver: Receiver, path: str, integrator: User
) -> None:
    endpoint = endpoint_for(integrator, receiver.route(path, replies=[Reply(500)] * 3))
    receiver.set_secret(path, endpoint.secret)

    delivery = settled(services.endpoint_send_test(endpoint=endpoint))

    received = receiver.at(path)
    assert len(received) == 4
    assert {r.headers["webhook-id"] for r in received} == {delivery.event_id}  # the same id on every retry
    assert delivery.status == DeliveryStatus.SUCCEEDED
    attempts = list(delivery.attempt_log.all())
    assert [a.response_status for a in attempts] == [500, 500, 500, 200]
    assert [a.retry_in for a in attempts] == [1 * SCALE, 2 * SCALE, 4 * SCALE, None]
    for waited, planned in zip(gaps(received), [1, 2, 4], strict=True):
        assert waited >= planned * SCALE - TOLERANCE


def test_a_receiver_that_always_fails_gets_six_attempts_then_the_delivery_fails(
    worker: WorkerProcess, receiver: Receiver, path: str, integrator: User
) -> None:
    endpoint = endpoint_for(integrator, receiver.route(path, then=Reply(503, body="down for maintenance")))
    receiver.set_secret(path, endpoint.secret)

    delivery = settled(services.endpoint_send_test(endpoint=endpoint))

    assert delivery.status == DeliveryStatus.FAILED
    assert delivery.attempts == 6
    attempts = list(delivery.attempt_log.all())
    assert [a.retry_in for a in attempts] == [1 * SCALE, 2 * SCALE, 4 * SCALE, 8 * SCALE, 16 * SCALE, None]
    assert {(a.response_status, a.response_body, a.error) for a in attempts} == {(503, "down for maintenance",
                                                                                   "HTTP 503")}
    for waited, planned in zip(gaps(receiver.at(path)), [1, 2, 4, 8, 16], strict=True):
        assert waited >= planned * SCALE - TOLERANCE
    endpoint.refresh_from_db()
    assert (endpoint.is_active, endpoint.consecutive_failures) == (True, 1)


def test_a_slow_receiver_times_out_and_the_retry_succeeds(
    worker: WorkerProcess, receiver: Receiver, path: str, integrator: User
) -> None:
    endpoint = endpoint_for(integrator, receiver.route(path, replies=[Reply(200, delay=1.5)]))
    receiver.set_secret(path, endpoint.secret)

    delivery = settled(services.endpoint_send_test(endpoint=endpoint))

    first, second = delivery.attempt_log.all()
    assert first.response_status is None
    assert first.error == "Timed out waiting for the response (after 0.5 s)."
    assert 400 <= first.duration_ms < 1400
    assert (second.response_status, delivery.status) == (200, DeliveryStatus.SUCCEEDED)


def test_410_gone_fails_at_once_disables_the_endpoint_and_emails_its_owner(
    worker: WorkerProcess, receiver: Receiver, path: str, integrator: User
) -> None:
    endpoint = endpoint_for(integrator, receiver.route(path, then=Reply(410)))
    receiver.set_secret(path, endpoint.secret)

    delivery = settled(services.endpoint_send_test(endpoint=endpoint))

    assert (delivery.status, delivery.attempts, delivery.last_status_code) == (DeliveryStatus.FAILED, 1, 410)
    endpoint.refresh_from_db()
    assert endpoint.is_active is False
    assert endpoint.disabled_reason == "The receiver answered 410 Gone."
    [mail] = [m for m in _mails_to("ivan@example.com") if endpoint.public_id in m["Subject"]]
    assert "410 Gone" in mail.get_payload()


def test_a_redirect_is_a_failure_and_is_never_followed(
    worker: WorkerProcess, receiver: Receiver, path: str, integrator: User
) -> None:
    elsewhere = receiver.route(f"{path}/elsewhere")
    url = receiver.route(path, replies=[Reply(302, headers={"Location": elsewhere})])
    endpoint = endpoint_for(integrator, url)
    receiver.set_secret(path, endpoint.secret)

    delivery = settled(services.endpoint_send_test(endpoint=endpoint))

    first = delivery.attempt_log.first()
    assert (first.response_status, first.succeeded, first.retry_in) == (302, False, 1 * SCALE)
    assert first.error == "HTTP 302 (redirects are not followed)"
    assert receiver.at(f"{path}/elsewhere") == []
    assert (delivery.status, delivery.attempts) == (DeliveryStatus.SUCCEEDED, 2)  # the retry went to the same URL


def test_429_retry_after_is_honoured_in_place_of_a_shorter_backoff(
    worker: WorkerProcess, receiver: Receiver, path: str, integrator: User
) -> None:
    endpoint = endpoint_for(integrator, receiver.route(path, replies=[Reply(429, headers={"Retry-After": "6"})]))
    receiver.set_secret(path, endpoint.secret)

    delivery = settled(services.endpoint_send_test(endpoint=endpoint))

    first, second = delivery.attempt_log.all()
    assert (first.response_status, first.retry_in) == (429, 6 * SCALE)
    [waited] = gaps(receiver.at(path))
    assert waited >= 6 * SCALE - TOLERANCE
    assert second.succeeded


def _mails_to(address: str) -> list:
    folder = Path(settings.EMAIL_FILE_PATH)
    found = []
    for path in folder.glob("*.log") if folder.exists() else []:
        for chunk in path.read_text().split("-" * 79):
            if chunk.strip() and f"To: {address}" in chunk:
                found.append(message_from_string(chunk.strip()))
    return found
