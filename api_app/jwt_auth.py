"""JWT bearer tokens from the identity providers an administrator configured (``JwtIssuer``).

How a token is checked, in order:

1. Its unverified ``iss`` claim picks an *active* ``JwtIssuer``; any other issuer is refused before any
   key is touched. Nothing else from the unverified token is trusted, not even the header's ``alg``.
2. The signature is verified with that issuer's ONE configured algorithm and key: the shared secret for
   HS256, the PEM public key (loaded as an RSA key object) for RS256. So ``alg: none``, an HS256 token
   sent to an RS256 issuer (including one "signed" with the issuer's public key as the HMAC secret), and
   any algorithm not configured for the issuer are refused.
3. ``exp``, ``iss``, ``aud`` and ``sub`` are required; ``aud`` must be the issuer's audience; ``exp``,
   ``nbf`` and ``iat`` are checked with the issuer's leeway.
4. ``sub`` names an active user through the issuer's ``subject_field`` (user name, e-mail or id); the
   token then acts as that user, whose process permissions apply.

Refusals are 401s in one sentence that never echoes the token, the key or the library's wording.
"""

from __future__ import annotations

import hashlib
import logging
from functools import lru_cache
from typing import Any

import jwt
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPublicKey
from cryptography.hazmat.primitives.serialization import load_pem_public_key
from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser
from rest_framework.exceptions import AuthenticationFailed
from rest_framework.request import Request

from api_app.callers import SCOPE_EXECUTE, SCOPE_READ, ApiCaller
from api_app.models import JwtAlgorithm, JwtIssuer
from executions.actors import Actor
from executions.models import ActorKind

logger = logging.getLogger(__name__)

API_SCOPES = frozenset({SCOPE_EXECUTE, SCOPE_READ})
REQUIRED_CLAIMS = ["exp", "iss", "aud", "sub"]
RATE_KEY_MAX = 120  # IdempotencyRecord.caller

MALFORMED = "The token is not a well-formed JWT."
UNKNOWN_ISSUER = "Tokens from this issuer are not accepted."
BAD_SIGNATURE = "The token's signature could not be verified."
EXPIRED = "The token has expired."
NOT_YET_VALID = "The token is not valid yet."
WRONG_AUDIENCE = "The token is not meant for this API (wrong audience)."
INVALID = "The token is not valid."
UNKNOWN_SUBJECT = "The token's subject is not an active user here."
BAD_SCOPES = "The token's scope claim is not readable."


def authenticate(token: str, request: Request) -> ApiCaller:
    issuer = _issuer_of(token)
    claims = _verified_claims(token, issuer)
    subject = claims["sub"]
    user = _user_for(issuer, subject)
    label = f"jwt:{issuer.issuer}:{subject}"
    return ApiCaller(
        actor=Actor.for_user(user, kind=ActorKind.JWT, label=label),
        rate_key=rate_key_for(label),
        rate_limit_per_minute=issuer.rate_limit_per_minute,
        scopes=scopes_of(claims),
    )


def rate_key_for(label: str) -> str:
    """The subject's rate limit bucket: ``jwt:<iss>:<sub>``, or a digest of it when that is too long or odd.

    The key also names the caller's idempotency key space (120 characters) and goes into cache keys, while
    ``iss`` may be 300 characters and ``sub`` anything; a digest keeps one bucket per subject regardless.
    """
    if len(label) <= RATE_KEY_MAX and label.isprintable() and " " not in label:
        return label
    return f"jwt:sha256:{hashlib.sha256(label.encode()).hexdigest()}"


def scopes_of(claims: dict[str, Any]) -> frozenset[str]:
    """The API scopes a verified token grants.

    The first of these claims that is present decides: ``scope`` (a space-separated string, RFC 8693),
    ``scp`` (a list, or a string as some providers send it), ``permissions`` (a list). Only the API's own
    scopes (``process:execute``, ``process:read``) are kept; others (``openid``, ``profile``…) are ignored,
    so a token whose claim names neither API scope may do nothing.

    A token with none of these claims carries its user's own permissions for both reading and executing:
    it grants ``process:read`` and ``process:execute``, and the user's object permissions still decide
    which processes and executions it may touch.
    """
    for name in ("scope", "scp", "permissions"):
        if name not in claims:
            continue
        value = claims[name]
        if isinstance(value, str):
            granted = value.split()
        elif isinstance(value, list) and all(isinstance(item, str) for item in value):
            granted = value
        else:
            raise AuthenticationFailed(BAD_SCOPES)
        return API_SCOPES.intersection(granted)
    return API_SCOPES


def _issuer_of(token: str) -> JwtIssuer:
    try:  # parses the header and payload; verifies nothing
        unverified = jwt.decode(token, options={"verify_signature": False})
    except jwt.PyJWTError:
        raise AuthenticationFailed(MALFORMED) from None
    name = unverified.get("iss")
    issuer = JwtIssuer.objects.filter(issuer=name, is_active=True).first() if isinstance(name, str) else None
    if issuer is None:
        raise AuthenticationFailed(UNKNOWN_ISSUER)
    return issuer


def _verified_claims(token: str, issuer: JwtIssuer) -> dict[str, Any]:
    try:
        key = _verification_key(issuer)
    except ValueError:
        _log_unusable_key(issuer)
        raise AuthenticationFailed(BAD_SIGNATURE) from None
    try:
        claims: dict[str, Any] = jwt.decode(
            token,
            key,
            algorithms=[issuer.algorithm],
            audience=issuer.audience,
            issuer=issuer.issuer,
            leeway=issuer.leeway_seconds,
            options={"require": REQUIRED_CLAIMS, "enforce_minimum_key_length": True},
        )
    except jwt.ExpiredSignatureError:
        raise AuthenticationFailed(EXPIRED) from None
    except jwt.ImmatureSignatureError:
        raise AuthenticationFailed(NOT_YET_VALID) from None
    except jwt.MissingRequiredClaimError as exc:
        raise AuthenticationFailed(f"The token must carry the '{exc.claim}' claim.") from None
    except jwt.InvalidAudienceError:
        raise AuthenticationFailed(WRONG_AUDIENCE) from None
    except jwt.InvalidIssuerError:  # pragma: no cover - the issuer was found by this very claim
        raise AuthenticationFailed(UNKNOWN_ISSUER) from None
    except (jwt.InvalidSignatureError, jwt.InvalidAlgorithmError):
        raise AuthenticationFailed(BAD_SIGNATURE) from None
    except jwt.InvalidKeyError:  # e.g. a secret shorter than 32 bytes, or a PEM text as an HS256 secret
        _log_unusable_key(issuer)
        raise AuthenticationFailed(BAD_SIGNATURE) from None
    except jwt.PyJWTError:
        raise AuthenticationFailed(INVALID) from None
    if not isinstance(claims["sub"], str) or not claims["sub"]:
        raise AuthenticationFailed(UNKNOWN_SUBJECT)
    return claims


def _log_unusable_key(issuer: JwtIssuer) -> None:
    """The issuer's configured key cannot verify anything: an operator's problem, not the caller's."""
    logger.error("JWT issuer %r (id %s) has an unusable %s key; fix it in the admin", issuer.issuer, issuer.pk,
                 issuer.algorithm)


def _verification_key(issuer: JwtIssuer) -> str | RSAPublicKey:
    if issuer.algorithm == JwtAlgorithm.HS256:
        if not issuer.shared_secret:
            raise ValueError("no shared secret")
        return issuer.shared_secret
    if issuer.algorithm == JwtAlgorithm.RS256:
        return rsa_public_key(issuer.public_key)
    raise ValueError(f"unsupported algorithm {issuer.algorithm!r}")


@lru_cache(maxsize=64)
def rsa_public_key(pem: str) -> RSAPublicKey:
    """The RSA public key in a PEM text (cached: parsing costs more than verifying).

    Handing PyJWT a key *object* rather than text means the key can never be read as an HMAC secret.
    Raises ValueError for anything else (a private key, a certificate, an EC key, garbage).
    """
    try:
        key = load_pem_public_key(pem.strip().encode())
    except UnsupportedAlgorithm as exc:
        raise ValueError("unsupported key type") from exc
    if not isinstance(key, RSAPublicKey):
        raise ValueError("not an RSA public key")
    return key


def _user_for(issuer: JwtIssuer, subject: str) -> AbstractBaseUser:
    users = get_user_model()._default_manager.filter(is_active=True)
    if issuer.subject_field == "email":
        matches = users.filter(email__iexact=subject)
    elif issuer.subject_field == "id":
        if not (subject.isascii() and subject.isdigit()) or len(subject) > 18:
            raise AuthenticationFailed(UNKNOWN_SUBJECT)
        matches = users.filter(pk=int(subject))
    else:
        matches = users.filter(**{get_user_model().USERNAME_FIELD: subject})
    found = list(matches[:2])
    if len(found) != 1:  # none, or an e-mail address two accounts share
        raise AuthenticationFailed(UNKNOWN_SUBJECT)
    return found[0]
