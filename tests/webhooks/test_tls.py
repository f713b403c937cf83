"""HTTPS receivers: the connection goes to the checked address, while SNI and the certificate check use the
host name (what makes the SSRF guard safe against DNS rebinding without giving up TLS)."""

from __future__ import annotations

import ssl
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from django.contrib.auth.models import User
from django.test import override_settings

from tests.webhooks.conftest import endpoint_for
from tests.webhooks.receiver import Receiver
from webhooks import services
from webhooks.models import DeliveryStatus

pytestmark = pytest.mark.django_db


def _name(common: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common)])


def _certificates(folder: Path, host: str) -> tuple[Path, Path, Path]:
    """A private CA, and a certificate for ``host`` that it signed."""
    now = datetime.now(UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = (x509.CertificateBuilder().subject_name(_name("Test CA")).issuer_name(_name("Test CA"))
          .public_key(ca_key.public_key()).serial_number(x509.random_serial_number())
          .not_valid_before(now - timedelta(minutes=1)).not_valid_after(now + timedelta(days=1))
          .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
          .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                       content_commitment=False, key_encipherment=False, data_encipherment=False,
                                       key_agreement=False, encipher_only=False, decipher_only=False), critical=True)
          .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
          .sign(ca_key, hashes.SHA256()))
    key = ec.generate_private_key(ec.SECP256R1())
    leaf = (x509.CertificateBuilder().subject_name(_name(host)).issuer_name(ca.subject)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(minutes=1)).not_valid_after(now + timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(host)]), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
            .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .sign(ca_key, hashes.SHA256()))
    paths = folder / "ca.pem", folder / "cert.pem", folder / "key.pem"
    paths[0].write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    paths[1].write_bytes(leaf.public_bytes(serialization.Encoding.PEM))
    paths[2].write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return paths


@pytest.fixture
def tls_receiver(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[Receiver, Path]]:
    ca, cert, key = _certificates(tmp_path, request.param)
    server = Receiver()
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    server.server.socket = context.wrap_socket(server.server.socket, server_side=True)
    server.thread.start()
    yield server, ca
    server.server.shutdown()


@pytest.mark.parametrize("tls_receiver", ["localhost"], indirect=True)
def test_an_https_receiver_is_reached_on_its_checked_address_with_its_own_name(
    tls_receiver: tuple[Receiver, Path], integrator: User
) -> None:
    receiver, ca = tls_receiver
    port = receiver.server.server_address[1]
    receiver.route("/tls")
    endpoint = endpoint_for(integrator, f"https://localhost:{port}/tls")
    receiver.set_secret("/tls", endpoint.secret)

    with override_settings(HEPTORA_WEBHOOK_ALLOWLIST=["localhost"], HEPTORA_WEBHOOK_CA_BUNDLE=str(ca)):
        delivery = services.endpoint_send_test(endpoint=endpoint)
        services.delivery_attempt(delivery_pk=delivery.pk)

    delivery.refresh_from_db()
    attempt = delivery.attempt_log.get()
    assert (delivery.status, attempt.response_status, attempt.error) == (DeliveryStatus.SUCCEEDED, 200, "")
    assert attempt.address == "127.0.0.1"
    [request] = receiver.at("/tls")
    assert request.verified
    assert request.headers["host"] == f"localhost:{port}"


@pytest.mark.parametrize("tls_receiver", ["other.example"], indirect=True)
def test_a_certificate_for_another_name_fails_the_attempt(
    tls_receiver: tuple[Receiver, Path], integrator: User
) -> None:
    receiver, ca = tls_receiver
    receiver.route("/tls")
    endpoint = endpoint_for(integrator, f"https://localhost:{receiver.server.server_address[1]}/tls")

    with override_settings(HEPTORA_WEBHOOK_ALLOWLIST=["localhost"], HEPTORA_WEBHOOK_CA_BUNDLE=str(ca)):
        delivery = services.endpoint_send_test(endpoint=endpoint)
        services.delivery_attempt(delivery_pk=delivery.pk)

    attempt = delivery.attempt_log.get()
    assert attempt.error.startswith("TLS failed:"), attempt.error
    assert "localhost" in attempt.error
    assert receiver.at("/tls") == []
