"""Lifecycle events reach subscribers and callbackUrl receivers, in the product's payload, on a real worker."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.core import mail
from django.core.management import call_command
from django.core.management.base import CommandError
from django.test import override_settings
from django.utils import timezone

from executions import services as execution_services
from executions.actors import Actor
from executions.models import Execution
from tests.api_app.helpers import DOC_BODY, EXECUTE, error_of, fields_of, integration
from tests.conftest import WorkerProcess, wait_for_status
from tests.webhooks.conftest import endpoint_for, settled
from tests.webhooks.receiver import Receiver, Reply
from webhooks import services
from webhooks.models import CallbackSecret, Delivery, DeliveryStatus, ExecutionCallback, WebhookEndpoint

ISO_Z = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")


@pytest.mark.django_db(transaction=True)
def test_an_order_started_through_the_api_is_announced_to_its_webhook_and_its_callback(
    worker: WorkerProcess, receiver: Receiver, staff_user: User
) -> None:
    hooked, called_back = "/e2e/webhook", "/e2e/callback"
    client = integration(staff_user)
    created = client.post("/api/v1/webhooks/", {"url": receiver.route(hooked), "processId": "order-processing",
                                                "events": ["process.completed", "process.failed"]}, format="json")
    callback_secret = client.post("/api/v1/webhooks/callback-secret").json()["secret"]
    receiver.set_secret(hooked, created.json()["secret"])
    receiver.route(called_back, secret=callback_secret)

    started = client.post(EXECUTE, {**DOC_BODY, "callbackUrl": receiver.base_url + called_back}, format="json")

    assert started.status_code == 202, started.content
    execution = wait_for_status(Execution.objects.get(public_id=started.json()["executionId"]), "success")
    [completed] = receiver.wait_for(hooked, 1)
    assert completed.verified, completed.error
    payload = completed.json
    assert list(payload) == ["eventType", "executionId", "processId", "status", "startTime", "endTime", "result",
                             "errors", "timestamp", "eventId"]
    assert {k: payload[k] for k in ("eventType", "executionId", "processId", "status", "errors")} == {
        "eventType": "process.completed", "executionId": execution.public_id, "processId": "order-processing",
        "status": "success", "errors": None}
    assert payload["result"] == execution.result
    assert payload["result"]["orderId"] == "ORD-2024-001"
    assert payload["result"]["confirmationNumber"].startswith("CONF-")
    assert all(ISO_Z.match(payload[k]) for k in ("startTime", "endTime", "timestamp"))
    assert payload["eventId"] == completed.headers["webhook-id"]
    # The callback hears every public event of that one execution, signed with the caller's callback secret.
    callbacks = receiver.wait_for(called_back, 2)
    assert all(r.verified for r in callbacks), [r.error for r in callbacks]
    assert sorted(r.json["eventType"] for r in callbacks) == ["process.completed", "process.started"]
    assert {r.json["executionId"] for r in callbacks} == {execution.public_id}


@pytest.mark.django_db(transaction=True)
def test_redeliver_webhooks_sends_failed_events_again_with_the_same_webhook_id(
    worker: WorkerProcess, receiver: Receiver, path: str, integrator: User
) -> None:
    endpoint = endpoint_for(integrator, receiver.route(path, replies=[Reply(500)] * 6))
    receiver.set_secret(path, endpoint.secret)
    failed = settled(services.endpoint_send_test(endpoint=endpoint))
    assert failed.status == DeliveryStatus.FAILED

    call_command("redeliver_webhooks", "--failed", "--since", "1h", "--endpoint", endpoint.public_id)

    again = settled(Delivery.objects.get(redelivery_of=failed))
    assert again.status == DeliveryStatus.SUCCEEDED
    received = receiver.at(path)
    assert len(received) == 7
    assert {r.headers["webhook-id"] for r in received} == {failed.event_id}
    assert received[-1].verified
    assert received[-1].body.decode() == failed.body


@pytest.mark.django_db(transaction=True)
def test_a_delivery_whose_task_never_reached_the_broker_is_queued_again_by_beat(
    worker: WorkerProcess, receiver: Receiver, path: str, integrator: User, monkeypatch: pytest.MonkeyPatch
) -> None:
    endpoint = endpoint_for(integrator, receiver.route(path))
    receiver.set_secret(path, endpoint.secret)
    with monkeypatch.context() as broker_down:
        broker_down.setattr(services, "deliveries_enqueue", lambda pks, **kwargs: None)
        delivery = services.endpoint_send_test(endpoint=endpoint)
    Delivery.objects.filter(pk=delivery.pk).update(next_attempt_at=timezone.now() - timedelta(minutes=5))

    assert services.deliveries_requeue_due() == [delivery.pk]

    assert settled(delivery).status == DeliveryStatus.SUCCEEDED
    assert services.deliveries_requeue_due() == []


# --- Without a worker -----------------------------------------------------------------------------------


@pytest.mark.django_db
def test_callback_url_needs_a_callback_secret_and_a_safe_url(staff_user: User) -> None:
    client = integration(staff_user)

    no_secret = client.post(EXECUTE, {**DOC_BODY, "callbackUrl": "http://127.0.0.1:9/cb"}, format="json")
    CallbackSecret.objects.create(owner=staff_user)
    with override_settings(HEPTORA_WEBHOOK_ALLOWLIST=[]):
        unsafe = client.post(EXECUTE, {**DOC_BODY, "callbackUrl": "http://10.0.0.1/cb"}, format="json")
    batch = client.post(f"{EXECUTE}/batch", {"items": [{"parameters": DOC_BODY["parameters"]}, {
        "parameters": DOC_BODY["parameters"], "callbackUrl": "ftp://x"}]}, format="json")

    assert error_of(no_secret)[:2] == (400, "no_callback_secret")
    assert fields_of(no_secret)["callbackUrl"][0].startswith("Create your callback signing secret first")
    assert error_of(unsafe)[:2] == (400, "unsafe_url")
    assert fields_of(unsafe)["callbackUrl"][0].startswith("10.0.0.1 is a private or reserved address.")
    assert fields_of(batch) == {"items.1.callbackUrl": ["Use an https:// URL."]}
    assert not Execution.objects.exists()


@pytest.mark.django_db
def test_a_callback_for_an_execution_awaiting_approval_hears_that_at_once(
    staff_user: User, monkeypatch: pytest.MonkeyPatch, django_capture_on_commit_callbacks
) -> None:
    CallbackSecret.objects.create(owner=staff_user)
    monkeypatch.setattr("executions.hooks.approval_required", lambda **kwargs: True)

    with django_capture_on_commit_callbacks():
        response = integration(staff_user).post(EXECUTE, {**DOC_BODY, "callbackUrl": "http://127.0.0.1:9/cb"},
                                                format="json")

    assert response.json()["status"] == "awaiting_approval"
    callback = ExecutionCallback.objects.get()
    [delivery] = callback.deliveries.all()
    assert (delivery.event_type, delivery.owner) == ("process.awaiting_approval", staff_user)


@pytest.mark.django_db
def test_an_endpoint_hears_only_of_executions_its_owner_may_see(
    receiver: Receiver, path: str, staff_user: User, integrator: User, operator: Actor,
    monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("executions.services.execution_publish", lambda **kwargs: None)
    mine = endpoint_for(staff_user, receiver.route(path), events=["process.cancelled"])
    not_mine = endpoint_for(integrator, receiver.route(path), events=["process.cancelled"])
    by_sam = execution_services.execution_start(process_id="test-echo", parameters={"text": "hi"}, source="api",
                                                actor=Actor.for_user(staff_user))

    execution_services.execution_cancel(execution=by_sam, actor=operator)

    assert [d.endpoint for d in Delivery.objects.all()] == [mine]
    assert not not_mine.deliveries.exists()


@pytest.mark.django_db
@override_settings(HEPTORA_WEBHOOK_DISABLE_AFTER_FAILURES=2, HEPTORA_WEBHOOK_RETRY_SCHEDULE=[])
def test_an_endpoint_failing_deliveries_in_a_row_is_disabled_and_its_owner_told(
    receiver: Receiver, path: str, integrator: User
) -> None:
    endpoint = endpoint_for(integrator, receiver.route(path, then=Reply(500)))
    receiver.set_secret(path, endpoint.secret)

    for _ in range(2):
        services.delivery_attempt(delivery_pk=services.endpoint_send_test(endpoint=endpoint).pk)

    endpoint.refresh_from_db()
    assert (endpoint.is_active, endpoint.consecutive_failures) == (False, 2)
    assert endpoint.disabled_reason == "2 deliveries in a row failed."
    [message] = mail.outbox
    assert message.to == ["ivan@example.com"]
    assert message.subject == f"Heptora disabled your webhook {endpoint.public_id}"
    # A real event for a disabled endpoint is not written at all; a queued one is failed unsent.
    queued = Delivery.objects.create(event_id="evt_x", event_type="process.completed", owner=integrator,
                                     endpoint=endpoint, body="{}")
    services.delivery_attempt(delivery_pk=queued.pk)
    queued.refresh_from_db()
    assert (queued.status, queued.attempts) == (DeliveryStatus.FAILED, 0)
    assert queued.last_error == "Not sent: the receiver is disabled. 2 deliveries in a row failed."


@pytest.mark.django_db
def test_an_endpoint_disabled_for_failing_hears_of_no_later_event(
    receiver: Receiver, path: str, staff_user: User, operator: Actor, monkeypatch: pytest.MonkeyPatch,
    settings: Any
) -> None:
    """Endpoints are read from a local copy on every status change; disabling one must reach that copy."""
    settings.HEPTORA_WEBHOOK_DISABLE_AFTER_FAILURES, settings.HEPTORA_WEBHOOK_RETRY_SCHEDULE = 2, []
    monkeypatch.setattr("executions.services.execution_publish", lambda **kwargs: None)
    endpoint = endpoint_for(staff_user, receiver.route(path, then=Reply(500)), events=["process.cancelled"])
    first, second = (execution_services.execution_start(process_id="test-echo", parameters={"text": "hi"},
                                                        source="api", actor=Actor.for_user(staff_user))
                     for _ in range(2))
    execution_services.execution_cancel(execution=first, actor=operator)
    [announced] = Delivery.objects.filter(endpoint=endpoint)  # the copy of the endpoints is in use now
    for _ in range(2):
        services.delivery_attempt(delivery_pk=services.endpoint_send_test(endpoint=endpoint).pk)
    assert not WebhookEndpoint.objects.get(pk=endpoint.pk).is_active  # two failures in a row

    execution_services.execution_cancel(execution=second, actor=operator)

    assert not Delivery.objects.filter(endpoint=endpoint, event_type="process.cancelled").exclude(
        pk=announced.pk).exists()


@pytest.mark.django_db
def test_a_duplicate_task_message_never_makes_a_second_attempt(receiver: Receiver, path: str,
                                                               integrator: User) -> None:
    endpoint = endpoint_for(integrator, receiver.route(path, then=Reply(500)))
    receiver.set_secret(path, endpoint.secret)
    delivery = services.endpoint_send_test(endpoint=endpoint)
    first = services.delivery_attempt(delivery_pk=delivery.pk, expect_attempts=0)
    Delivery.objects.filter(pk=delivery.pk).update(next_attempt_at=timezone.now())

    duplicate = services.delivery_attempt(delivery_pk=delivery.pk, expect_attempts=0)

    assert first is not None and (first.attempts, first.retry_in) == (1, 0.05)
    assert duplicate is None
    assert len(receiver.at(path)) == 1


@pytest.mark.django_db
def test_redeliver_webhooks_refuses_to_run_without_a_selection(integrator: User) -> None:
    with pytest.raises(CommandError, match="Say what to redeliver"):
        call_command("redeliver_webhooks")
    with pytest.raises(CommandError, match="There is no webhook 'wh_nope'"):
        call_command("redeliver_webhooks", "--endpoint", "wh_nope")
    with pytest.raises(CommandError, match="--since 'yesterday'"):
        call_command("redeliver_webhooks", "--since", "yesterday")
    assert not WebhookEndpoint.objects.exists()
