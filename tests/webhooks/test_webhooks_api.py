"""/api/v1/webhooks/: an integrator manages its own endpoints; nobody else sees or touches them."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import User
from django.test import override_settings
from guardian.shortcuts import assign_perm

from executions.models import Process
from tests.api_app.helpers import error_of, fields_of, integration
from tests.webhooks.receiver import Receiver
from webhooks import services
from webhooks.models import CallbackSecret, Delivery, DeliveryStatus, WebhookEndpoint

pytestmark = pytest.mark.django_db
WEBHOOKS = "/api/v1/webhooks/"


@pytest.fixture
def olga(db: None) -> User:
    return User.objects.create_user("olga", "olga@example.com", "x")


def create(client, body: dict):  # type: ignore[no-untyped-def]
    return client.post(WEBHOOKS, body, format="json")


def test_creating_a_webhook_answers_its_secret_once(receiver: Receiver, path: str, integrator: User) -> None:
    client = integration(integrator)
    url = receiver.route(path)

    response = create(client, {"url": url, "events": ["process.failed", "process.completed"]})

    assert response.status_code == 201
    body = response.json()
    endpoint = WebhookEndpoint.objects.get()
    assert body == {
        "webhookId": endpoint.public_id, "url": url, "events": ["process.completed", "process.failed"],
        "processId": None, "description": "", "active": True, "disabledReason": None, "consecutiveFailures": 0,
        "createdTime": body["createdTime"], "secret": endpoint.secret,
    }
    assert body["secret"].startswith("whsec_")
    assert (endpoint.owner, endpoint.created_by) == (integrator, f"user:{integrator.pk}")
    listed = client.get(WEBHOOKS).json()
    assert [w["webhookId"] for w in listed] == [endpoint.public_id]
    assert "secret" not in listed[0]
    assert "secret" not in client.get(f"{WEBHOOKS}{endpoint.public_id}").json()


def test_a_process_filter_must_name_a_process_the_owner_may_use(
    receiver: Receiver, path: str, integrator: User
) -> None:
    client = integration(integrator)
    url = receiver.route(path)

    refused = create(client, {"url": url, "events": ["process.completed"], "processId": "order-processing"})
    assign_perm("executions.execute_process", integrator, Process.objects.get(slug="order-processing"))
    accepted = create(client, {"url": url, "events": ["process.completed"], "processId": "order-processing"})

    assert error_of(refused) == (400, "invalid_webhook", "There is no process 'order-processing' that you may use.")
    assert fields_of(refused) == {"processId": ["There is no process 'order-processing' that you may use."]}
    assert accepted.status_code == 201
    assert accepted.json()["processId"] == "order-processing"


@pytest.mark.parametrize(("body", "fields"), [
    ({"events": ["process.completed"]}, {"url": ["This field is required."]}),
    ({"url": "https://x.example", "events": []}, {"events": ["Ensure this field has at least 1 elements."]}),
    ({"url": "https://x.example", "events": ["process.done"]}, {"events.0": ['"process.done" is not a valid choice.']}),
    ({"url": "https://x.example", "events": ["process.completed"], "secret": "mine"}, {"secret": ["Unknown field."]}),
    (["not", "an", "object"], {"body": ["The body must be a JSON object."]}),
])
def test_invalid_bodies_are_refused_field_by_field(integrator: User, body: object, fields: dict) -> None:
    response = integration(integrator).post(WEBHOOKS, body, format="json")

    assert error_of(response)[:2] == (400, "invalid_request")
    assert fields_of(response) == fields
    assert not WebhookEndpoint.objects.exists()


@override_settings(HEPTORA_WEBHOOK_REQUIRE_HTTPS=True)
def test_plain_http_is_refused_outside_development(receiver: Receiver, path: str, integrator: User) -> None:
    response = create(integration(integrator), {"url": receiver.route(path), "events": ["process.completed"]})

    assert error_of(response) == (400, "unsafe_url",
                                  "Use an https:// URL: plain http is accepted only in development (DEBUG).")


def test_others_cannot_see_or_touch_a_webhook(receiver: Receiver, path: str, integrator: User, olga: User) -> None:
    endpoint = WebhookEndpoint.objects.create(owner=integrator, url=receiver.route(path), events=["process.failed"])
    delivery = services.endpoint_send_test(endpoint=endpoint)
    Delivery.objects.filter(pk=delivery.pk).update(status=DeliveryStatus.FAILED)
    other = integration(olga, rate_key="api_key:olga")
    item = f"{WEBHOOKS}{endpoint.public_id}"

    answers = [other.get(item), other.patch(item, {"active": False}, format="json"), other.delete(item),
               other.post(f"{item}/test"), other.post(f"{item}/rotate-secret"), other.get(f"{item}/deliveries"),
               other.post(f"{WEBHOOKS}deliveries/{delivery.public_id}/redeliver")]

    assert [a.status_code for a in answers] == [404] * 7
    assert other.get(WEBHOOKS).json() == []
    before = endpoint.secret
    endpoint.refresh_from_db()
    assert (endpoint.is_active, endpoint.secret) == (True, before)
    assert Delivery.objects.count() == 1


def test_a_read_only_token_may_list_but_not_change(receiver: Receiver, path: str, integrator: User) -> None:
    reader = integration(integrator, scopes={"process:read"})

    listed = reader.get(WEBHOOKS)
    refused = create(reader, {"url": receiver.route(path), "events": ["process.completed"]})

    assert listed.status_code == 200
    assert error_of(refused) == (403, "permission_denied",
                                 "This token lacks the scope 'process:execute' this call needs.")
    assert not WebhookEndpoint.objects.exists()


def test_a_key_limited_to_some_processes_must_filter_on_one_of_them(
    receiver: Receiver, path: str, integrator: User
) -> None:
    limited = integration(integrator, processes={"order-processing"})

    response = create(limited, {"url": receiver.route(path), "events": ["process.completed"]})

    assert error_of(response) == (403, "permission_denied",
                                  "This API key is limited to some processes: give a processId.")


def test_update_disable_enable_and_delete(receiver: Receiver, path: str, integrator: User) -> None:
    client = integration(integrator)
    webhook_id = create(client, {"url": receiver.route(path), "events": ["process.completed"]}).json()["webhookId"]
    item = f"{WEBHOOKS}{webhook_id}"
    WebhookEndpoint.objects.filter(public_id=webhook_id).update(consecutive_failures=3)

    disabled = client.patch(item, {"active": False, "events": ["process.started"], "description": "shop"},
                            format="json").json()
    enabled = client.patch(item, {"active": True}, format="json").json()
    deleted = client.delete(item)

    assert (disabled["active"], disabled["events"], disabled["disabledReason"]) == (
        False, ["process.started"], "Disabled by its owner.")
    assert (enabled["active"], enabled["disabledReason"], enabled["consecutiveFailures"]) == (True, None, 0)
    assert deleted.status_code == 204
    assert not WebhookEndpoint.objects.exists()
    assert client.get(item).status_code == 404


def test_rotating_the_secret_answers_the_new_one(receiver: Receiver, path: str, integrator: User) -> None:
    client = integration(integrator)
    created = create(client, {"url": receiver.route(path), "events": ["process.completed"]}).json()

    rotated = client.post(f"{WEBHOOKS}{created['webhookId']}/rotate-secret").json()

    endpoint = WebhookEndpoint.objects.get()
    assert rotated == {"webhookId": created["webhookId"], "secret": endpoint.secret}
    assert rotated["secret"] != created["secret"]
    assert endpoint.previous_secret == created["secret"]


def test_test_event_delivery_log_and_redelivery_with_the_same_event_id(
    receiver: Receiver, path: str, integrator: User
) -> None:
    client = integration(integrator)
    created = create(client, {"url": receiver.route(path), "events": ["process.completed"]}).json()
    receiver.set_secret(path, created["secret"])
    item = f"{WEBHOOKS}{created['webhookId']}"

    queued = client.post(f"{item}/test")
    services.delivery_attempt(delivery_pk=Delivery.objects.get().pk)  # what the worker does
    log = client.get(f"{item}/deliveries").json()
    again = client.post(f"{WEBHOOKS}deliveries/{queued.json()['deliveryId']}/redeliver")

    assert queued.status_code == 202
    assert queued.json()["status"] == "pending"
    [delivery] = log["results"]
    assert (log["count"], delivery["status"], delivery["attempts"]) == (1, "succeeded", 1)
    assert delivery["payload"]["eventType"] == "webhook.test"
    [attempt] = delivery["attemptLog"]
    assert (attempt["responseStatus"], attempt["responseBody"], attempt["succeeded"]) == (200, "ok", True)
    assert attempt["requestHeaders"]["webhook-id"] == delivery["eventId"]
    assert again.status_code == 202
    assert (again.json()["eventId"], again.json()["redeliveryOf"]) == (delivery["eventId"], delivery["deliveryId"])
    assert client.get(f"{item}/deliveries?status=pending").json()["count"] == 1
    assert error_of(client.get(f"{item}/deliveries?status=lost"))[:2] == (400, "invalid_request")


def test_the_callback_secret_is_made_once_then_replaced(integrator: User) -> None:
    client = integration(integrator)

    first = client.post(f"{WEBHOOKS}callback-secret")
    second = client.post(f"{WEBHOOKS}callback-secret")

    assert first.status_code == 201
    assert second.status_code == 200
    assert first.json()["secret"].startswith("whsec_")
    assert second.json()["secret"] != first.json()["secret"]
    assert CallbackSecret.objects.get(owner=integrator).previous_secret == first.json()["secret"]
