"""Admin: webhook endpoints with their delivery log, the secret shown once, and redelivery."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import User
from django.test import Client
from django.urls import reverse

from tests.webhooks.conftest import endpoint_for
from tests.webhooks.receiver import Receiver
from webhooks import services
from webhooks.models import Delivery, DeliveryStatus, WebhookEndpoint

pytestmark = pytest.mark.django_db


@pytest.fixture
def as_admin(admin_user: User) -> Client:
    client = Client()
    client.force_login(admin_user)
    return client


def test_an_admin_adds_an_endpoint_and_sees_its_secret_once(
    as_admin: Client, receiver: Receiver, path: str, integrator: User
) -> None:
    url = receiver.route(path)

    response = as_admin.post(reverse("admin:webhooks_webhookendpoint_add"), {
        "owner": integrator.pk, "url": url, "events": ["process.completed", "process.failed"], "description": "",
        "is_active": "on", "deliveries-TOTAL_FORMS": "0", "deliveries-INITIAL_FORMS": "0",
    }, follow=True)

    endpoint = WebhookEndpoint.objects.get()
    assert (endpoint.owner, endpoint.url, endpoint.events) == (integrator, url, ["process.completed", "process.failed"])
    shown = [str(m) for m in response.context["messages"]]
    assert f"Signing secret of {endpoint.public_id} (shown only now): {endpoint.secret}" in shown
    page = as_admin.get(reverse("admin:webhooks_webhookendpoint_change", args=[endpoint.pk])).content.decode()
    assert endpoint.secret not in page


def test_an_internal_url_is_refused_in_the_form(as_admin: Client, integrator: User, settings) -> None:  # type: ignore[no-untyped-def]
    settings.HEPTORA_WEBHOOK_ALLOWLIST = []

    response = as_admin.post(reverse("admin:webhooks_webhookendpoint_add"), {
        "owner": integrator.pk, "url": "http://169.254.169.254/", "events": ["process.completed"],
        "deliveries-TOTAL_FORMS": "0", "deliveries-INITIAL_FORMS": "0",
    })

    assert response.status_code == 200
    assert "169.254.169.254 is a cloud metadata address." in response.content.decode()
    assert not WebhookEndpoint.objects.exists()


def test_the_delivery_log_shows_attempts_and_redeliver_keeps_the_event_id(
    as_admin: Client, receiver: Receiver, path: str, integrator: User
) -> None:
    endpoint = endpoint_for(integrator, receiver.route(path))
    delivery = services.endpoint_send_test(endpoint=endpoint)
    services.delivery_attempt(delivery_pk=delivery.pk)

    endpoint_page = as_admin.get(reverse("admin:webhooks_webhookendpoint_change", args=[endpoint.pk]))
    delivery_page = as_admin.get(reverse("admin:webhooks_delivery_change", args=[delivery.pk]))
    listing = as_admin.get(reverse("admin:webhooks_delivery_changelist"))
    as_admin.post(reverse("admin:webhooks_delivery_changelist"),
                  {"action": "redeliver", "_selected_action": [delivery.pk]})

    assert delivery.public_id in endpoint_page.content.decode()
    assert "webhook-signature" in delivery_page.content.decode()
    assert listing.status_code == 200
    again = Delivery.objects.get(redelivery_of=delivery)
    assert (again.event_id, again.body, again.status) == (delivery.event_id, delivery.body, DeliveryStatus.PENDING)
