"""Receivers verify Heptora's signatures with the public standardwebhooks library; forgeries fail."""

from __future__ import annotations

import json
import time

import pytest
import urllib3
from django.contrib.auth.models import User
from standardwebhooks.webhooks import Webhook

from tests.webhooks.conftest import endpoint_for
from tests.webhooks.receiver import Receiver
from webhooks import services, signing
from webhooks.models import new_secret

pytestmark = pytest.mark.django_db


def sent(receiver: Receiver, path: str, integrator: User) -> tuple[str, dict[str, str], bytes]:
    """One real, signed test event as the receiver got it (sent in this process)."""
    endpoint = endpoint_for(integrator, receiver.route(path))
    receiver.set_secret(path, endpoint.secret)
    delivery = services.endpoint_send_test(endpoint=endpoint)
    services.delivery_attempt(delivery_pk=delivery.pk)
    [request] = receiver.at(path)
    assert request.verified, request.error
    return endpoint.secret, request.headers, request.body


def replay(receiver: Receiver, path: str, headers: dict[str, str], body: bytes) -> int:
    keep = {k: v for k, v in headers.items() if k.startswith("webhook-") or k == "content-type"}
    return urllib3.request("POST", receiver.base_url + path, body=body, headers=keep, retries=False).status


def test_the_signature_is_the_standard_webhooks_one(receiver: Receiver, path: str, integrator: User) -> None:
    secret, headers, body = sent(receiver, path, integrator)

    payload = Webhook(secret).verify(body, headers)
    assert payload["eventType"] == "webhook.test"
    assert headers["webhook-id"] == payload["eventId"]
    assert abs(int(headers["webhook-timestamp"]) - time.time()) < 5
    assert secret.startswith("whsec_")
    assert headers["webhook-signature"] == signing.sign(secret=secret, msg_id=headers["webhook-id"],
                                                       timestamp=int(headers["webhook-timestamp"]),
                                                       body=body.decode())


def test_a_tampered_body_is_rejected_by_the_receiver(receiver: Receiver, path: str, integrator: User) -> None:
    _secret, headers, body = sent(receiver, path, integrator)
    tampered = json.loads(body) | {"status": "success", "result": {"amount": 1_000_000}}

    assert replay(receiver, path, headers, json.dumps(tampered).encode()) == 400

    assert receiver.at(path)[-1].error == "No matching signature found"


def test_a_stale_timestamp_is_rejected_by_the_receiver(receiver: Receiver, path: str, integrator: User) -> None:
    secret, headers, body = sent(receiver, path, integrator)
    stale = int(time.time()) - 600  # ten minutes old: a replayed request
    resigned = {**headers, "webhook-timestamp": str(stale),
                "webhook-signature": signing.sign(secret=secret, msg_id=headers["webhook-id"], timestamp=stale,
                                                  body=body.decode())}

    assert replay(receiver, path, resigned, body) == 400

    assert receiver.at(path)[-1].error == "Message timestamp too old"


def test_after_a_rotation_both_secrets_verify_during_the_grace_period(
    receiver: Receiver, path: str, integrator: User
) -> None:
    endpoint = endpoint_for(integrator, receiver.route(path))
    old = endpoint.secret
    new = services.endpoint_rotate_secret(endpoint=endpoint).secret
    receiver.set_secret(path, old)

    delivery = services.endpoint_send_test(endpoint=endpoint)
    services.delivery_attempt(delivery_pk=delivery.pk)

    [request] = receiver.at(path)
    assert request.verified
    assert Webhook(new).verify(request.body, request.headers)["eventId"] == delivery.event_id
    assert len(request.headers["webhook-signature"].split(" ")) == 2
    assert new != old and new.startswith("whsec_")


def test_a_signature_made_with_another_secret_is_rejected(receiver: Receiver, path: str, integrator: User) -> None:
    _secret, headers, body = sent(receiver, path, integrator)
    forged_by = new_secret()
    forged = {**headers, "webhook-signature": signing.sign(
        secret=forged_by, msg_id=headers["webhook-id"], timestamp=int(headers["webhook-timestamp"]),
        body=body.decode())}

    assert replay(receiver, path, forged, body) == 400
