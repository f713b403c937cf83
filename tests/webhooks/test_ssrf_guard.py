"""Webhooks never reach internal addresses: refused at registration, and again at every connection."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import User
from django.test import override_settings

from tests.api_app.helpers import error_of, fields_of, integration
from tests.webhooks.conftest import endpoint_for
from tests.webhooks.receiver import Receiver
from webhooks import services, transport
from webhooks.models import DeliveryStatus, WebhookEndpoint

NO_ALLOWLIST = override_settings(HEPTORA_WEBHOOK_ALLOWLIST=[])


@NO_ALLOWLIST
@pytest.mark.parametrize(("url", "why"), [
    ("http://169.254.169.254/latest/meta-data/", "a cloud metadata address"),
    ("http://[fd00:ec2::254]/", "a cloud metadata address"),
    ("http://10.0.0.1/hook", "a private or reserved address"),
    ("http://192.168.1.10/hook", "a private or reserved address"),
    ("http://172.16.0.1/hook", "a private or reserved address"),
    ("http://100.64.0.1/hook", "a private or reserved address"),
    ("http://0.0.0.0/hook", "an unspecified address"),
    ("http://0.1.2.3/hook", "a private or reserved address"),
    ("http://127.0.0.1:8000/hook", "a loopback address"),
    ("http://[::1]/hook", "a loopback address"),
    ("http://[::ffff:127.0.0.1]/hook", "an IPv6 form of 127.0.0.1, a loopback address"),
    ("http://[::ffff:a9fe:a9fe]/hook", "an IPv6 form of 169.254.169.254, a cloud metadata address"),
    ("http://[64:ff9b::a00:1]/hook", "an IPv6 form of 10.0.0.1, a private or reserved address"),
    ("http://169.254.1.1/hook", "a link-local address"),
    ("http://[fe80::1]/hook", "a link-local address"),
    ("http://224.0.0.1/hook", "a multicast address"),
    ("http://240.0.0.1/hook", "a private or reserved address"),
])
def test_it_refuses_internal_addresses(url: str, why: str) -> None:
    with pytest.raises(transport.UnsafeDestination) as refused:
        transport.destination_check(url, require_https=False)
    assert f" is {why}. Webhooks are never sent to" in str(refused.value)


@NO_ALLOWLIST
def test_it_refuses_a_host_name_that_resolves_to_loopback() -> None:
    with pytest.raises(transport.UnsafeDestination) as refused:
        transport.destination_check("http://localhost:8000/hook", require_https=False)
    assert str(refused.value).startswith("'localhost' resolves to 127.0.0.1, which is a loopback address.")


@pytest.mark.parametrize("allowlist", [["127.0.0.1"], ["127.0.0.0/8"], ["localhost"]])
def test_the_allowlist_lets_an_operator_permit_a_host_or_a_range(allowlist: list[str]) -> None:
    with override_settings(HEPTORA_WEBHOOK_ALLOWLIST=allowlist):
        destination = transport.destination_check("http://localhost:8000/hook?x=1", require_https=False)
    assert (destination.host, destination.port, destination.target) == ("localhost", 8000, "/hook?x=1")
    assert destination.addresses[0] == "127.0.0.1"


@pytest.mark.parametrize(("url", "message"), [
    ("ftp://example.com/x", "Use an https:// URL."),
    ("http://example.com/x", "Use an https:// URL: plain http is accepted only in development (DEBUG)."),
    ("https://user:pw@example.com/x", "The URL must not contain a user name or password."),
    ("https:///x", "The URL has no host."),
    ("https://example.com:99999/x", "The URL is not valid (Port out of range 0-65535)."),
    ("https://no-such-host.invalid/x", "The host 'no-such-host.invalid' could not be resolved."),
    ("https://a\x00b.example/x", "The host 'a\x00b.example' could not be resolved."),
])
def test_it_refuses_urls_it_cannot_or_may_not_call(url: str, message: str) -> None:
    with pytest.raises(transport.UnsafeDestination) as refused:
        transport.destination_check(url, require_https=True)
    assert str(refused.value) == message


@NO_ALLOWLIST
@pytest.mark.parametrize("url", ["http://169.254.169.254/", "http://10.0.0.1/hook", "http://localhost:9/hook"])
def test_registering_an_internal_url_is_refused_with_a_clear_400(integrator: User, url: str) -> None:
    response = integration(integrator).post("/api/v1/webhooks/", {"url": url, "events": ["process.completed"]},
                                            format="json")

    status, code, message = error_of(response)
    assert (status, code) == (400, "unsafe_url")
    assert "Webhooks are never sent to loopback, private" in message
    assert fields_of(response) == {"url": [message]}
    assert not WebhookEndpoint.objects.exists()


@pytest.mark.django_db
def test_an_address_allowed_at_registration_is_checked_again_when_connecting(
    receiver: Receiver, path: str, integrator: User
) -> None:
    """DNS rebinding, or an allow-list tightened since: the connection itself is refused."""
    endpoint = endpoint_for(integrator, receiver.route(path))
    delivery = services.endpoint_send_test(endpoint=endpoint)

    with NO_ALLOWLIST:
        outcome = services.delivery_attempt(delivery_pk=delivery.pk)

    assert outcome is not None and outcome.retry_in is not None
    attempt = delivery.attempt_log.get()
    assert attempt.error.startswith("Refused: 127.0.0.1 is a loopback address.")
    assert attempt.response_status is None
    assert receiver.at(path) == []
    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.PENDING
