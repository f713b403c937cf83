"""A company's identity provider signs JWTs for its systems; Heptora accepts them from configured issuers.

Two issuers are configured: Acme's login service signs with a shared secret (HS256) and names users by
user name; the corporate SSO signs with an RSA key (RS256) and names users by e-mail address. Every token
the API should not honour is refused with a 401 whose one-sentence message names the problem and nothing
of the keys, the library or the token.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from collections.abc import Callable
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from django.contrib.auth.models import User
from django.http import HttpResponse
from django.test import Client
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.test import APIRequestFactory
from rest_framework.views import APIView

from api_app.authentication import BearerAuthentication
from api_app.callers import SCOPE_EXECUTE, ApiCaller
from api_app.models import JwtAlgorithm, JwtIssuer
from api_app.permissions import HasScope

ACME = "https://login.acme.example/"
ACME_AUDIENCE = "heptora-api"
ACME_SECRET = "acme-shared-secret-for-heptora-signing-0123456789abcdef0123456789"
SSO = "https://sso.example.org"
SSO_AUDIENCE = "https://heptora.example.com/api"

MALFORMED = "The token is not a well-formed JWT."
UNKNOWN_ISSUER = "Tokens from this issuer are not accepted."
BAD_SIGNATURE = "The token's signature could not be verified."
EXPIRED = "The token has expired."
NOT_YET_VALID = "The token is not valid yet."
WRONG_AUDIENCE = "The token is not meant for this API (wrong audience)."
UNKNOWN_SUBJECT = "The token's subject is not an active user here."
BAD_SCOPES = "The token's scope claim is not readable."

pytestmark = pytest.mark.django_db


# --- Keys, issuers and tokens -----------------------------------------------------------------------------


@pytest.fixture(scope="session")
def sso_private_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture(scope="session")
def intruder_private_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def public_pem(key: rsa.RSAPrivateKey) -> str:
    return key.public_key().public_bytes(serialization.Encoding.PEM,
                                         serialization.PublicFormat.SubjectPublicKeyInfo).decode()


@pytest.fixture
def acme(db: None) -> JwtIssuer:
    return JwtIssuer.objects.create(issuer=ACME, audience=ACME_AUDIENCE, algorithm=JwtAlgorithm.HS256,
                                    shared_secret=ACME_SECRET, subject_field="username", leeway_seconds=30)


@pytest.fixture
def sso(db: None, sso_private_key: rsa.RSAPrivateKey) -> JwtIssuer:
    return JwtIssuer.objects.create(issuer=SSO, audience=SSO_AUDIENCE, algorithm=JwtAlgorithm.RS256,
                                    public_key=public_pem(sso_private_key), subject_field="email",
                                    leeway_seconds=30, rate_limit_per_minute=30)


@pytest.fixture
def http() -> Client:
    return Client(HTTP_HOST="localhost")


def claims(issuer: str = ACME, audience: str = ACME_AUDIENCE, subject: str = "sam", **changes: Any) -> dict[str, Any]:
    """A fresh token's claims; pass name=None to leave a claim out."""
    now = int(time.time())
    payload: dict[str, Any] = {"iss": issuer, "aud": audience, "sub": subject, "iat": now, "exp": now + 300}
    payload.update(changes)
    return {name: value for name, value in payload.items() if value is not None}


def acme_token(**changes: Any) -> str:
    return jwt.encode(claims(**changes), ACME_SECRET, algorithm="HS256")


def sso_token(key: rsa.RSAPrivateKey, **changes: Any) -> str:
    return jwt.encode(claims(issuer=SSO, audience=SSO_AUDIENCE, subject="sam@example.com", **changes), key,
                      algorithm="RS256")


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def forged(header: dict[str, Any], payload: dict[str, Any], sign: Callable[[bytes], bytes] | None = None) -> str:
    """A token built by hand, the way an attacker would, with no library refusing to help."""
    signing_input = f"{b64(json.dumps(header).encode())}.{b64(json.dumps(payload).encode())}"
    signature = b64(sign(signing_input.encode())) if sign else ""
    return f"{signing_input}.{signature}"


def hs256_with(secret: bytes) -> Callable[[bytes], bytes]:
    return lambda message: hmac.new(secret, message, hashlib.sha256).digest()


def me(http: Client, token: str) -> HttpResponse:
    return http.get("/api/v1/me", HTTP_AUTHORIZATION=f"Bearer {token}")


def assert_refused(response: HttpResponse, message: str) -> None:
    """401, the Bearer challenge, and exactly one sentence: no library wording, key or token in the body."""
    assert response.status_code == 401
    assert response["WWW-Authenticate"] == 'Bearer realm="heptora"'
    assert response.json() == {
        "error": {"code": "not_authenticated", "message": message, "requestId": response["X-Request-ID"]}
    }


def caller_for(token: str) -> ApiCaller:
    request = APIRequestFactory().get("/api/v1/me", SERVER_NAME="localhost", HTTP_AUTHORIZATION=f"Bearer {token}")
    _, caller = BearerAuthentication().authenticate(Request(request))  # type: ignore[misc]
    assert isinstance(caller, ApiCaller)
    return caller


# --- Accepted tokens --------------------------------------------------------------------------------------


def test_an_hs256_token_from_acme_acts_as_the_user_it_names(http: Client, acme: JwtIssuer, staff_user: User) -> None:
    response = me(http, acme_token())

    assert response.status_code == 200
    assert response.json() == {
        "kind": "jwt",
        "label": "jwt:https://login.acme.example/:sam",
        "user": "sam",
        "scopes": ["process:execute", "process:read"],
        "allowedProcesses": None,
        "rateLimitPerMinute": 100,
    }


def test_an_rs256_token_from_the_sso_acts_as_the_user_with_that_email(
    http: Client, sso: JwtIssuer, staff_user: User, sso_private_key: rsa.RSAPrivateKey,
) -> None:
    response = me(http, sso_token(sso_private_key))

    assert response.status_code == 200
    assert response.json() == {
        "kind": "jwt",
        "label": "jwt:https://sso.example.org:sam@example.com",
        "user": "sam",
        "scopes": ["process:execute", "process:read"],
        "allowedProcesses": None,
        "rateLimitPerMinute": 30,
    }


def test_a_subject_can_name_the_user_by_id(http: Client, acme: JwtIssuer, staff_user: User) -> None:
    acme.subject_field = "id"
    acme.save(update_fields=["subject_field"])

    response = me(http, acme_token(subject=str(staff_user.pk)))

    assert (response.status_code, response.json()["user"]) == (200, "sam")


def test_each_subject_of_an_issuer_has_its_own_rate_limit_bucket(acme: JwtIssuer, staff_user: User) -> None:
    caller = caller_for(acme_token())

    assert caller.rate_key == "jwt:https://login.acme.example/:sam"
    assert (caller.actor.kind, caller.actor.user) == ("jwt", staff_user)


def test_a_subject_too_long_for_a_bucket_name_gets_a_digest_of_it(sso: JwtIssuer,
                                                                  sso_private_key: rsa.RSAPrivateKey) -> None:
    email = f"{'a' * 64}@{'b' * 60}.example.com"
    User.objects.create_user("long", email)
    label = f"jwt:https://sso.example.org:{email}"

    caller = caller_for(sso_token(sso_private_key, sub=email))

    assert caller.actor.label == label
    assert caller.rate_key == f"jwt:sha256:{hashlib.sha256(label.encode()).hexdigest()}"
    assert caller_for(sso_token(sso_private_key, sub=email)).rate_key == caller.rate_key


def test_a_token_just_past_its_expiry_is_accepted_within_the_leeway(http: Client, acme: JwtIssuer,
                                                                    staff_user: User) -> None:
    response = me(http, acme_token(exp=int(time.time()) - 10))

    assert response.status_code == 200


# --- Scopes ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("scope_claims", "scopes"), [
    ({"scope": "process:read"}, ["process:read"]),
    ({"scope": "openid process:execute profile"}, ["process:execute"]),
    ({"scp": ["process:read", "process:execute"]}, ["process:execute", "process:read"]),
    ({"scp": "process:read"}, ["process:read"]),
    ({"permissions": ["process:execute"]}, ["process:execute"]),
    ({"scope": "process:read", "permissions": ["process:execute"]}, ["process:read"]),
])
def test_a_scope_claim_restricts_what_the_token_may_do(http: Client, acme: JwtIssuer, staff_user: User,
                                                       scope_claims: dict[str, Any], scopes: list[str]) -> None:
    response = me(http, acme_token(**scope_claims))

    assert response.json()["scopes"] == scopes


def test_a_token_whose_scope_claim_names_no_api_scope_may_do_nothing(http: Client, acme: JwtIssuer,
                                                                      staff_user: User) -> None:
    token = acme_token(scope="openid email")

    response = me(http, token)

    assert caller_for(token).scopes == frozenset()
    assert response.status_code == 403
    assert response.json() == {"error": {"code": "permission_denied",
                                          "message": "This token lacks the scope 'process:read' this call needs.",
                                          "requestId": response["X-Request-ID"]}}


def test_a_token_without_a_scope_claim_may_read_and_execute_as_its_user(acme: JwtIssuer, staff_user: User) -> None:
    assert caller_for(acme_token()).scopes == frozenset({"process:read", "process:execute"})


class StandInExecuteView(APIView):
    """Stands in for POST /api/v1/processes/{id}/execute until it lands: it needs process:execute."""

    permission_classes = [HasScope]
    required_scope = SCOPE_EXECUTE

    def post(self, request: Request) -> Response:
        return Response({"accepted": True}, status=202)


def stand_in_execute(token: str) -> Response:
    request = APIRequestFactory().post("/stand-in/execute", {}, format="json", SERVER_NAME="localhost",
                                       HTTP_AUTHORIZATION=f"Bearer {token}")
    response: Response = StandInExecuteView.as_view()(request)
    return response


def test_a_read_only_token_may_not_start_a_process(acme: JwtIssuer, staff_user: User) -> None:
    response = stand_in_execute(acme_token(scope="process:read"))

    assert response.status_code == 403
    assert response.data == {"error": {"code": "permission_denied",
                                       "message": "This token lacks the scope 'process:execute' this call needs.",
                                       "requestId": ""}}


def test_a_token_without_a_scope_claim_may_start_a_process(acme: JwtIssuer, staff_user: User) -> None:
    response = stand_in_execute(acme_token())

    assert (response.status_code, response.data) == (202, {"accepted": True})


def test_an_unreadable_scope_claim_is_refused(http: Client, acme: JwtIssuer, staff_user: User) -> None:
    assert_refused(me(http, acme_token(scope=["process:read", 7])), BAD_SCOPES)


# --- Refused: the issuer ----------------------------------------------------------------------------------


def test_a_token_from_an_unknown_issuer_is_refused(http: Client, acme: JwtIssuer, staff_user: User) -> None:
    assert_refused(me(http, acme_token(iss="https://evil.example/")), UNKNOWN_ISSUER)


def test_a_token_without_an_issuer_is_refused(http: Client, acme: JwtIssuer, staff_user: User) -> None:
    assert_refused(me(http, acme_token(iss=None)), UNKNOWN_ISSUER)


def test_a_token_from_a_deactivated_issuer_is_refused(http: Client, acme: JwtIssuer, staff_user: User) -> None:
    acme.is_active = False
    acme.save(update_fields=["is_active"])

    assert_refused(me(http, acme_token()), UNKNOWN_ISSUER)


def test_an_issuer_claim_that_is_not_a_string_is_refused(http: Client, acme: JwtIssuer, staff_user: User) -> None:
    token = forged({"alg": "HS256", "typ": "JWT"}, claims(iss=[ACME]), hs256_with(ACME_SECRET.encode()))

    assert_refused(me(http, token), UNKNOWN_ISSUER)


# --- Refused: the signature and the algorithm -------------------------------------------------------------


def test_an_unsigned_alg_none_token_is_refused(http: Client, acme: JwtIssuer, sso: JwtIssuer,
                                               staff_user: User) -> None:
    assert_refused(me(http, forged({"alg": "none", "typ": "JWT"}, claims())), BAD_SIGNATURE)
    assert_refused(me(http, forged({"alg": "none", "typ": "JWT"},
                                   claims(issuer=SSO, audience=SSO_AUDIENCE, subject="sam@example.com"))),
                   BAD_SIGNATURE)


def test_an_hs256_token_signed_with_the_sso_public_key_is_refused(
    http: Client, sso: JwtIssuer, staff_user: User, sso_private_key: rsa.RSAPrivateKey,
) -> None:
    """The classic algorithm confusion attack: the public key is public, so it must never work as a secret."""
    payload = claims(issuer=SSO, audience=SSO_AUDIENCE, subject="sam@example.com")
    for secret in (public_pem(sso_private_key), public_pem(sso_private_key).strip(), sso.public_key):
        token = forged({"alg": "HS256", "typ": "JWT"}, payload, hs256_with(secret.encode()))

        assert_refused(me(http, token), BAD_SIGNATURE)


def test_an_hs256_token_sent_to_an_rs256_issuer_is_refused(http: Client, sso: JwtIssuer, staff_user: User) -> None:
    token = jwt.encode(claims(issuer=SSO, audience=SSO_AUDIENCE, subject="sam@example.com"), ACME_SECRET,
                       algorithm="HS256")

    assert_refused(me(http, token), BAD_SIGNATURE)


def test_an_rs256_token_sent_to_an_hs256_issuer_is_refused(http: Client, acme: JwtIssuer, staff_user: User,
                                                           sso_private_key: rsa.RSAPrivateKey) -> None:
    token = jwt.encode(claims(), sso_private_key, algorithm="RS256")

    assert_refused(me(http, token), BAD_SIGNATURE)


def test_an_algorithm_the_issuer_does_not_use_is_refused_even_with_the_right_secret(
    http: Client, acme: JwtIssuer, staff_user: User,
) -> None:
    assert_refused(me(http, jwt.encode(claims(), ACME_SECRET, algorithm="HS512")), BAD_SIGNATURE)


def test_a_token_signed_with_another_secret_is_refused(http: Client, acme: JwtIssuer, staff_user: User) -> None:
    token = jwt.encode(claims(), "a-guessed-secret-that-is-long-enough-0123456789", algorithm="HS256")

    assert_refused(me(http, token), BAD_SIGNATURE)


def test_a_token_signed_with_another_rsa_key_is_refused(http: Client, sso: JwtIssuer, staff_user: User,
                                                        intruder_private_key: rsa.RSAPrivateKey) -> None:
    assert_refused(me(http, sso_token(intruder_private_key)), BAD_SIGNATURE)


def test_a_token_whose_payload_was_changed_after_signing_is_refused(
    http: Client, acme: JwtIssuer, staff_user: User, admin_user: User,
) -> None:
    """Sam's genuine token, edited to say it is Ada (a superuser), keeps Sam's signature: refused."""
    header, _, signature = acme_token().split(".")
    tampered = f"{header}.{b64(json.dumps(claims(subject='ada')).encode())}.{signature}"

    assert_refused(me(http, tampered), BAD_SIGNATURE)


def test_a_token_with_a_damaged_signature_is_refused(http: Client, acme: JwtIssuer, staff_user: User) -> None:
    header, payload, signature = acme_token().split(".")
    damaged = f"{header}.{payload}.{signature[:-4]}{'AAAA' if signature[-4:] != 'AAAA' else 'BBBB'}"

    assert_refused(me(http, damaged), BAD_SIGNATURE)


# --- Refused: the claims ----------------------------------------------------------------------------------


def test_a_token_for_another_audience_is_refused(http: Client, acme: JwtIssuer, staff_user: User) -> None:
    assert_refused(me(http, acme_token(aud="some-other-api")), WRONG_AUDIENCE)


def test_an_expired_token_is_refused(http: Client, acme: JwtIssuer, staff_user: User) -> None:
    assert_refused(me(http, acme_token(exp=int(time.time()) - 31)), EXPIRED)


def test_a_token_not_valid_yet_is_refused(http: Client, acme: JwtIssuer, staff_user: User) -> None:
    assert_refused(me(http, acme_token(nbf=int(time.time()) + 120)), NOT_YET_VALID)


@pytest.mark.parametrize("claim", ["exp", "aud", "sub"])
def test_a_token_without_a_required_claim_is_refused(http: Client, acme: JwtIssuer, staff_user: User,
                                                     claim: str) -> None:
    assert_refused(me(http, acme_token(**{claim: None})), f"The token must carry the '{claim}' claim.")


def test_a_token_with_an_unreadable_expiry_is_refused(http: Client, acme: JwtIssuer, staff_user: User) -> None:
    assert_refused(me(http, acme_token(exp="tomorrow")), "The token is not valid.")


# --- Refused: the subject ---------------------------------------------------------------------------------


def test_a_token_for_an_unknown_user_is_refused(http: Client, acme: JwtIssuer, staff_user: User) -> None:
    assert_refused(me(http, acme_token(subject="nobody")), UNKNOWN_SUBJECT)


def test_a_token_for_a_deactivated_user_is_refused(http: Client, acme: JwtIssuer, staff_user: User) -> None:
    staff_user.is_active = False
    staff_user.save(update_fields=["is_active"])

    assert_refused(me(http, acme_token()), UNKNOWN_SUBJECT)


@pytest.mark.parametrize("subject", ["sam", "-1", "\uff11\uff12", "99999999999999999999"])
def test_a_subject_that_is_no_user_id_is_refused(http: Client, acme: JwtIssuer, staff_user: User,
                                                 subject: str) -> None:
    acme.subject_field = "id"
    acme.save(update_fields=["subject_field"])

    assert_refused(me(http, acme_token(subject=subject)), UNKNOWN_SUBJECT)


def test_an_email_two_accounts_share_names_nobody(http: Client, sso: JwtIssuer, staff_user: User,
                                                  sso_private_key: rsa.RSAPrivateKey) -> None:
    User.objects.create_user("sam2", "SAM@example.com")

    assert_refused(me(http, sso_token(sso_private_key)), UNKNOWN_SUBJECT)


# --- Refused: not a JWT at all ----------------------------------------------------------------------------


@pytest.mark.parametrize("token", [
    "not.a.jwt",
    f"{b64(b'{not json')}.{b64(json.dumps(claims()).encode())}.c2ln",
    f"{b64(json.dumps({'alg': 'HS256'}).encode())}.{b64(b'[1, 2, 3]')}.c2ln",
    f"{b64(json.dumps({'alg': 'HS256'}).encode())}.{b64(json.dumps(claims()).encode())}.!!!",
    "..",
])
def test_a_malformed_token_is_refused(http: Client, acme: JwtIssuer, staff_user: User, token: str) -> None:
    assert_refused(me(http, token), MALFORMED)


# --- A misconfigured issuer fails closed -------------------------------------------------------------------


def test_an_issuer_with_an_unusable_key_refuses_its_tokens_and_tells_the_operator(
    http: Client, sso: JwtIssuer, staff_user: User, sso_private_key: rsa.RSAPrivateKey,
    caplog: pytest.LogCaptureFixture,
) -> None:
    JwtIssuer.objects.filter(pk=sso.pk).update(public_key="-----BEGIN PUBLIC KEY-----\ngarbage\n")

    assert_refused(me(http, sso_token(sso_private_key)), BAD_SIGNATURE)
    assert [r.getMessage() for r in caplog.records if r.name == "api_app.jwt_auth"] == [
        f"JWT issuer 'https://sso.example.org' (id {sso.pk}) has an unusable RS256 key; fix it in the admin"
    ]


# --- An administrator configures an issuer in the admin ---------------------------------------------------

ISSUER_FORM = {"issuer": "https://idp.example.net", "audience": "heptora", "is_active": "on", "algorithm": "HS256",
               "shared_secret": "", "public_key": "", "subject_field": "username", "leeway_seconds": "30",
               "rate_limit_per_minute": "100", "_save": "Save"}


@pytest.fixture
def admin_http(admin_user: User) -> Client:
    http = Client(HTTP_HOST="localhost")
    http.force_login(admin_user)
    return http


def add_issuer(admin_http: Client, **fields: str) -> dict[str, list[str]]:
    """Submit the admin's "add JWT issuer" form; returns its errors (none when it saved)."""
    response = admin_http.post("/admin/api_app/jwtissuer/add/", ISSUER_FORM | fields)
    if response.status_code == 302:
        return {}
    assert response.status_code == 200
    return {name: list(errors) for name, errors in response.context["adminform"].form.errors.items()}


def private_pem(key: rsa.RSAPrivateKey) -> str:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption()).decode()


def test_the_admin_saves_an_hs256_issuer_with_a_long_secret(admin_http: Client, staff_user: User) -> None:
    assert add_issuer(admin_http, shared_secret=ACME_SECRET) == {}

    issuer = JwtIssuer.objects.get()
    assert (issuer.issuer, issuer.algorithm, issuer.shared_secret, issuer.public_key) == (
        "https://idp.example.net", "HS256", ACME_SECRET, "")
    token = jwt.encode(claims(issuer="https://idp.example.net", audience="heptora"), ACME_SECRET, algorithm="HS256")
    assert me(Client(HTTP_HOST="localhost"), token).status_code == 200


def test_the_admin_saves_an_rs256_issuer_with_a_public_key(admin_http: Client, staff_user: User,
                                                           sso_private_key: rsa.RSAPrivateKey) -> None:
    assert add_issuer(admin_http, algorithm="RS256", public_key=f"\n{public_pem(sso_private_key)}\n\n") == {}

    issuer = JwtIssuer.objects.get()
    assert (issuer.algorithm, issuer.shared_secret, issuer.public_key) == (
        "RS256", "", public_pem(sso_private_key))
    token = jwt.encode(claims(issuer="https://idp.example.net", audience="heptora"), sso_private_key,
                       algorithm="RS256")
    assert me(Client(HTTP_HOST="localhost"), token).status_code == 200


@pytest.mark.parametrize(("fields", "errors"), [
    ({}, {"shared_secret": ["HS256 needs the shared secret the issuer signs with."]}),
    ({"shared_secret": "too-short-0123456789"}, {"shared_secret": ["Use a secret of at least 32 characters."]}),
    ({"shared_secret": "-----BEGIN PUBLIC KEY-----0123456789abcdef0123456789"},
     {"shared_secret": ["This looks like a PEM key; HS256 needs a shared secret."]}),
    ({"shared_secret": ACME_SECRET, "public_key": "PUBLIC KEY"},
     {"public_key": ["HS256 uses the shared secret only; leave the public key empty."]}),
    ({"algorithm": "RS256"}, {"public_key": ["RS256 needs the issuer's public key (PEM)."]}),
    ({"algorithm": "RS256", "public_key": "-----BEGIN PUBLIC KEY-----\ngarbage\n-----END PUBLIC KEY-----"},
     {"public_key": ["This is not an RSA public key in PEM form (-----BEGIN PUBLIC KEY----- …)."]}),
    ({"algorithm": "none", "shared_secret": ACME_SECRET},
     {"algorithm": ["Select a valid choice. none is not one of the available choices."]}),
])
def test_the_admin_refuses_an_issuer_that_could_not_verify_tokens(admin_http: Client, fields: dict[str, str],
                                                                  errors: dict[str, list[str]]) -> None:
    assert add_issuer(admin_http, **fields) == errors
    assert JwtIssuer.objects.count() == 0


def test_the_admin_refuses_both_a_secret_and_a_public_key_for_rs256(admin_http: Client,
                                                                    sso_private_key: rsa.RSAPrivateKey) -> None:
    errors = add_issuer(admin_http, algorithm="RS256", public_key=public_pem(sso_private_key),
                        shared_secret=ACME_SECRET)

    assert errors == {"shared_secret": ["RS256 uses the public key only; leave the shared secret empty."]}
    assert JwtIssuer.objects.count() == 0


def test_the_admin_refuses_a_private_key(admin_http: Client, sso_private_key: rsa.RSAPrivateKey) -> None:
    errors = add_issuer(admin_http, algorithm="RS256", public_key=private_pem(sso_private_key))

    assert errors == {"public_key": [
        "This is a private key. Paste only the PUBLIC key; keep the private key with the issuer."]}
    assert JwtIssuer.objects.count() == 0


def test_the_admin_refuses_a_short_rsa_key(admin_http: Client) -> None:
    weak = rsa.generate_private_key(public_exponent=65537, key_size=1024)

    errors = add_issuer(admin_http, algorithm="RS256", public_key=public_pem(weak))

    assert errors == {"public_key": ["This RSA key has 1024 bits; use at least 2048."]}
    assert JwtIssuer.objects.count() == 0


def test_the_admin_refuses_a_key_that_is_not_rsa(admin_http: Client) -> None:
    ec_key = ec.generate_private_key(ec.SECP256R1()).public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode()

    errors = add_issuer(admin_http, algorithm="RS256", public_key=ec_key)

    assert errors == {"public_key": ["This is not an RSA public key in PEM form (-----BEGIN PUBLIC KEY----- …)."]}
    assert JwtIssuer.objects.count() == 0
