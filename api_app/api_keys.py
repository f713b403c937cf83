"""API keys: ``Authorization: Bearer hep_<prefix>_<secret>``, one key per integration.

A key looks like ``hep_3f9a0c1d_Xq4…`` (43 random letters and digits after the prefix). The table keeps the
visible prefix (``hep_3f9a0c1d``, unique) and the SHA-256 of the whole key; the key itself exists only in the
answer to :func:`api_key_create` / :func:`api_key_rotate`, which is the one time anyone sees it.

Lifecycle
  * expiry: optional ``expires_at``; the key stops at that moment.
  * revoke: stops the key at once (also on every web process: see "Cache" below). Idempotent.
  * rotate: makes a new key with the same user, name, expiry and restrictions; the old key keeps working
    for a grace period (``DEFAULT_GRACE``, 24 hours, at most ``MAX_GRACE``) so the integration can switch
    over without an outage, then stops.

Restrictions: ``allowed_processes`` (empty: every process the user may start) and ``allowed_ips`` (CIDR
ranges; empty: any address). The address checked is ``REMOTE_ADDR``: behind a reverse proxy or load
balancer that is the proxy's address unless the server is set up to put the client's address there
(gunicorn ``--forwarded-allow-ips`` with a proxy that sets it, or a trusted-proxy middleware). Never trust
``X-Forwarded-For`` from the open internet.

Cache (the hot path)
  Every API request authenticates, so each web process keeps a local copy of every verified key row with
  its user (:data:`heptora.local_cache.API_KEYS`). Expiry and grace are compared with the clock on every
  request, so a copy never extends them. Any change to a key (create, revoke, rotate, edit, delete) and
  any save or delete of a user (deactivation, a changed permission flag) renews the group's shared token,
  so every web process reads the rows again on its next request: a revoked key, or a deactivated user's
  key, stops on the very next request.

Usage (``last_used_at``, ``usage_count``)
  Writing the row on every request would add a write (and a commit) to every call and make one row hot.
  Instead each use is counted in the cache, and the first use in every ``USAGE_WRITE_SECONDS`` window per
  key writes the counted uses with one ``F()`` UPDATE. So ``last_used_at`` is at most that many seconds
  behind, and uses not yet written are added back by :func:`api_key_usage` and :func:`api_keys_list`. On
  Redis the counter is atomic; the embedded database cache increments by read-and-write, so under
  concurrent requests there a few uses can go uncounted.
"""

from __future__ import annotations

import contextlib
import copy
import hashlib
import hmac
import ipaddress
import re
import secrets
import string
import time
from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from django.core.cache import cache
from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone
from rest_framework.exceptions import AuthenticationFailed
from rest_framework.request import Request

from api_app.callers import ApiCaller
from api_app.counters import counters_incr
from api_app.models import ApiKey
from api_app.throttling import RateState, rate_counter
from executions import services as executions_services
from executions.actors import Actor
from executions.errors import HeptoraError, ProcessNotFound
from executions.models import ActorKind
from heptora import local_cache
from heptora.local_cache import API_KEYS

if TYPE_CHECKING:
    from django.contrib.auth.models import AbstractBaseUser

API_KEY_PREFIX = "hep_"
DEFAULT_GRACE = timedelta(hours=24)
MAX_GRACE = timedelta(days=30)
MAX_RATE_LIMIT = 1_000_000
USAGE_WRITE_SECONDS = 30

_ALPHABET = string.ascii_letters + string.digits  # no '_' or '-': the whole key selects with a double click
_SECRET_LENGTH = 43  # 43 characters of 62 symbols: 256 bits
_SHAPE = re.compile(r"hep_([0-9a-z]{8})_([A-Za-z0-9]{32,128})")
_DUMMY_HASH = "0" * 64

NOT_VALID = "The API key is not valid."


class ApiKeyStatus:
    ACTIVE = "active"
    EXPIRED = "expired"
    REVOKED = "revoked"
    ROTATED_GRACE = "rotated-grace"  # replaced, still accepted until grace_until
    ROTATED = "rotated"  # replaced, grace over


class ApiKeyError(HeptoraError):
    """A key cannot be made or changed like that; ``field`` names the setting at fault, if one is."""

    code = "invalid_api_key_settings"

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


class ApiKeyNotFound(HeptoraError):
    code = "api_key_not_found"
    http_status = 404


# --- Keys and hashes ------------------------------------------------------------------------------------


def _hash(full_key: str) -> str:
    # SHA-256, not a password hash: a slow hash (PBKDF2, argon2) protects LOW-entropy secrets from guessing
    # after a leak. These keys are 256 random bits, which no amount of fast hashing can search, and the
    # check runs on every API request, where a slow hash would cost tens of milliseconds each time.
    return hashlib.sha256(full_key.encode()).hexdigest()


def _new_key() -> tuple[str, str]:
    prefix = f"{API_KEY_PREFIX}{secrets.token_hex(4)}"
    secret = "".join(secrets.choice(_ALPHABET) for _ in range(_SECRET_LENGTH))
    return prefix, f"{prefix}_{secret}"


def _cache_key(prefix: str) -> str:
    return f"heptora:api_key:v1:{prefix}"  # the usage counters' names


def _forget(prefix: str) -> None:
    """Make every web process re-read the key rows on its next request (and again on commit)."""
    API_KEYS.changed()


def normalize_prefix(value: str) -> str:
    """``hep_3f9a0c1d``, ``3f9a0c1d`` or a whole key → ``hep_3f9a0c1d``."""
    value = value.strip()
    if match := _SHAPE.fullmatch(value):
        return f"{API_KEY_PREFIX}{match[1]}"
    return value if value.startswith(API_KEY_PREFIX) else f"{API_KEY_PREFIX}{value}"


# --- Validation -----------------------------------------------------------------------------------------


def ip_ranges_clean(values: Iterable[str]) -> list[str]:
    """CIDR ranges as the key stores them: ``10.0.0.7`` → ``10.0.0.7/32``, ``10.0.0.7/24`` → ``10.0.0.0/24``."""
    ranges: list[str] = []
    for value in values:
        try:
            network = str(ipaddress.ip_network(value.strip(), strict=False))
        except ValueError:
            raise ApiKeyError(f"'{value}' is not an IP address or CIDR range, e.g. 203.0.113.0/24.",
                              field="allowed_ips") from None
        if network not in ranges:
            ranges.append(network)
    return ranges


def process_ids_clean(values: Iterable[str]) -> list[str]:
    ids: list[str] = []
    for value in values:
        try:
            process_id = executions_services.process_resolve(value.strip()).slug
        except ProcessNotFound as exc:
            raise ApiKeyError(exc.message, field="allowed_processes") from None
        if process_id not in ids:
            ids.append(process_id)
    return ids


def settings_clean(
    *,
    name: str,
    expires_at: datetime | None,
    allowed_processes: Iterable[str],
    allowed_ips: Iterable[str],
    rate_limit_per_minute: int,
    current_expiry: datetime | None = None,
) -> dict[str, Any]:
    """A key's settings, checked and normalized; :class:`ApiKeyError` names the first one at fault.

    The expiry must lie in the future unless it is ``current_expiry`` (the key's own, left unchanged).
    """
    name = name.strip()
    if not name:
        raise ApiKeyError("Give the key a name: the integration that will use it.", field="name")
    if len(name) > ApiKey._meta.get_field("name").max_length:
        raise ApiKeyError("The name is longer than 100 characters.", field="name")
    if expires_at is not None and expires_at != current_expiry and expires_at <= timezone.now():
        raise ApiKeyError("The expiry must be in the future.", field="expires_at")
    if not 1 <= rate_limit_per_minute <= MAX_RATE_LIMIT:
        raise ApiKeyError(f"The rate limit must be between 1 and {MAX_RATE_LIMIT} requests per minute.",
                          field="rate_limit_per_minute")
    return {
        "name": name,
        "expires_at": expires_at,
        "allowed_processes": process_ids_clean(allowed_processes),
        "allowed_ips": ip_ranges_clean(allowed_ips),
        "rate_limit_per_minute": rate_limit_per_minute,
    }


# --- Services -------------------------------------------------------------------------------------------


def api_key_create(
    *,
    user: AbstractBaseUser,
    name: str,
    expires_at: datetime | None = None,
    allowed_processes: Iterable[str] = (),
    allowed_ips: Iterable[str] = (),
    rate_limit_per_minute: int = 100,
    created_by: AbstractBaseUser | None = None,
) -> tuple[ApiKey, str]:
    """A new key and the full key text: the only time it is available. Store it now."""
    if not user.is_active:
        raise ApiKeyError(f"The user '{user.get_username()}' is not active.", field="user")
    fields = settings_clean(name=name, expires_at=expires_at, allowed_processes=allowed_processes,
                            allowed_ips=allowed_ips, rate_limit_per_minute=rate_limit_per_minute)
    return _insert({**fields, "user": user, "created_by": created_by})


def _insert(fields: dict[str, Any]) -> tuple[ApiKey, str]:
    for _attempt in range(5):  # 32 random prefix bits: a clash is rare; try another prefix if it happens
        prefix, full_key = _new_key()
        try:
            with transaction.atomic():
                key = ApiKey.objects.create(prefix=prefix, secret_hash=_hash(full_key), **fields)
        except IntegrityError:
            continue
        return key, full_key
    raise RuntimeError("Could not find a free API key prefix in 5 attempts.")  # pragma: no cover


def api_key_update(
    *,
    key: ApiKey,
    name: str,
    expires_at: datetime | None,
    allowed_processes: Iterable[str],
    allowed_ips: Iterable[str],
    rate_limit_per_minute: int,
) -> ApiKey:
    """Change a key's settings (admin); every web process sees the change on its next request."""
    stored = ApiKey.objects.values_list("expires_at", flat=True).get(pk=key.pk)
    fields = settings_clean(name=name, expires_at=expires_at, allowed_processes=allowed_processes,
                            allowed_ips=allowed_ips, rate_limit_per_minute=rate_limit_per_minute,
                            current_expiry=stored)
    for field, value in fields.items():
        setattr(key, field, value)
    key.save(update_fields=list(fields))
    _forget(key.prefix)
    return key


def api_key_revoke(*, key: ApiKey, reason: str = "") -> bool:
    """Stop the key now. True if this call revoked it; False if it already was (nothing changes then)."""
    now = timezone.now()
    revoked = ApiKey.objects.filter(pk=key.pk, revoked_at__isnull=True).update(
        revoked_at=now, revoked_reason=reason.strip()[:200]
    )
    _forget(key.prefix)
    key.refresh_from_db(fields=["revoked_at", "revoked_reason"])
    return bool(revoked)


def api_key_rotate(
    *, key: ApiKey, grace: timedelta = DEFAULT_GRACE, created_by: AbstractBaseUser | None = None
) -> tuple[ApiKey, str]:
    """A replacement key (same user, name, expiry and restrictions) and its full text, shown this once.

    The old key keeps working until now + ``grace`` (24 hours by default; 0 stops it at once), then stops.
    """
    if grace < timedelta(0) or grace > MAX_GRACE:
        raise ApiKeyError(f"The grace period must be between 0 and {MAX_GRACE.days} days.", field="grace")
    status = api_key_status(key=key)
    if status in (ApiKeyStatus.ROTATED_GRACE, ApiKeyStatus.ROTATED):
        raise ApiKeyError(f"{key.prefix} was already rotated; rotate its replacement instead.")
    if status != ApiKeyStatus.ACTIVE:
        raise ApiKeyError(f"{key.prefix} is {status}; create a new key instead.")
    with transaction.atomic():
        new_key, full_key = _insert({
            "user_id": key.user_id, "name": key.name, "expires_at": key.expires_at,
            "allowed_processes": key.allowed_processes, "allowed_ips": key.allowed_ips,
            "rate_limit_per_minute": key.rate_limit_per_minute, "created_by": created_by,
        })
        grace_until = timezone.now() + grace
        # Conditional, so of two concurrent rotations (or a rotation and a revoke) one wins cleanly.
        rotated = ApiKey.objects.filter(pk=key.pk, replaced_by__isnull=True, revoked_at__isnull=True).update(
            replaced_by=new_key, grace_until=grace_until
        )
        if not rotated:
            raise ApiKeyError(f"{key.prefix} was rotated or revoked meanwhile; nothing changed.")
    _forget(key.prefix)
    key.replaced_by, key.grace_until = new_key, grace_until
    return new_key, full_key


def api_key_usage_write(*, key_id: int, prefix: str) -> None:
    """Write the uses counted in the cache (and the time) to the row."""
    pending_key = f"{_cache_key(prefix)}:uses"
    uses = cache.get(pending_key) or 0
    if uses:
        # Uses counted meanwhile stay pending for the next write. ValueError: the counter expired just now
        # (only the database cache gives it a lifetime); the uses read are written all the same.
        with contextlib.suppress(ValueError):
            cache.decr(pending_key, uses)
    ApiKey.objects.filter(pk=key_id).update(usage_count=F("usage_count") + uses, last_used_at=timezone.now())


_next_write_try: dict[str, float] = {}  # per process: when to next try to be the one that writes a key's use


def _count_use(key: ApiKey) -> tuple[RateState, set[str]]:
    """Count one use of the key and one request against its rate limit, in one round trip that also confirms
    the request's optimistic local copies (:func:`heptora.local_cache.optimistic`); the limit's state and the
    groups whose copies were out of date."""
    rate_key, rate_timeout, rate_state = rate_counter(f"api_key:{key.pk}", key.rate_limit_per_minute)
    (_uses, count), tokens = counters_incr([(f"{_cache_key(key.prefix)}:uses", None), (rate_key, rate_timeout)],
                                           also_read=local_cache.token_keys_unconfirmed())
    stale = local_cache.confirm(tokens)
    # One writer per key and window across all processes (cache.add); each process asks at most once a window.
    now = time.monotonic()
    if _next_write_try.get(key.prefix, 0.0) <= now:
        _next_write_try[key.prefix] = now + USAGE_WRITE_SECONDS
        if cache.add(f"{_cache_key(key.prefix)}:written", 1, USAGE_WRITE_SECONDS):
            api_key_usage_write(key_id=key.pk, prefix=key.prefix)
    return rate_state(count), stale


# --- Selectors ------------------------------------------------------------------------------------------


def api_key_status(*, key: ApiKey, now: datetime | None = None) -> str:
    now = now or timezone.now()
    if key.revoked_at is not None:
        return ApiKeyStatus.REVOKED
    if key.replaced_by_id is not None and (key.grace_until is None or key.grace_until <= now):
        return ApiKeyStatus.ROTATED
    if key.expires_at is not None and key.expires_at <= now:
        return ApiKeyStatus.EXPIRED
    if key.replaced_by_id is not None:
        return ApiKeyStatus.ROTATED_GRACE
    return ApiKeyStatus.ACTIVE


def api_key_usage(*, key: ApiKey) -> int:
    """Uses so far, counting those not yet written to the row."""
    return key.usage_count + (cache.get(f"{_cache_key(key.prefix)}:uses") or 0)


def api_key_by_prefix(*, prefix: str) -> ApiKey:
    prefix = normalize_prefix(prefix)
    key = ApiKey.objects.select_related("user", "replaced_by").filter(prefix=prefix).first()
    if key is None:
        raise ApiKeyNotFound(f"There is no API key with prefix '{prefix}'.")
    return key


def api_keys_list(*, user: AbstractBaseUser | None = None) -> list[ApiKey]:
    """Keys, newest first; ``usage_count`` includes uses not yet written to the row."""
    keys = ApiKey.objects.select_related("user", "replaced_by").order_by("-created_at", "-id")
    if user is not None:
        keys = keys.filter(user=user)
    listed = list(keys)
    pending = cache.get_many([f"{_cache_key(k.prefix)}:uses" for k in listed])
    for key in listed:
        key.usage_count += pending.get(f"{_cache_key(key.prefix)}:uses") or 0
    return listed


# --- Authentication -------------------------------------------------------------------------------------

_REFUSALS = {
    ApiKeyStatus.REVOKED: "The API key has been revoked.",
    ApiKeyStatus.ROTATED: "The API key was rotated and its grace period is over; use the new key.",
    ApiKeyStatus.EXPIRED: "The API key has expired.",
}


def _verified_row(prefix: str) -> ApiKey | None:
    return API_KEYS.get(prefix, lambda: _key_row(prefix))


def _key_row(prefix: str) -> ApiKey | None:
    # The user's password hash stays out of the copy: nothing on the API path reads it.
    return ApiKey.objects.select_related("user").defer("user__password").filter(prefix=prefix).first()


def authenticate(token: str, request: Request) -> ApiCaller:
    """The caller for a ``hep_…`` token, or 401. Says nothing about a key until its secret has matched.

    The key row comes from this process's local copy. Under the API views' optimistic pin its currency is
    confirmed in the round trip that counts the use; a copy found out of date there, or one that would
    refuse the key, is checked again against the current row before anything is decided.
    """
    match = _SHAPE.fullmatch(token)
    if match is None:
        raise AuthenticationFailed(NOT_VALID)
    offered, prefix = _hash(token), f"{API_KEY_PREFIX}{match[1]}"
    key = API_KEYS.peek(prefix, lambda: _key_row(prefix))
    try:
        key = _checked(key, offered, request)
    except AuthenticationFailed:
        if key is None:  # read from the database just now (a missing row is never copied)
            raise
        key = _checked(_verified_row(prefix), offered, request)  # confirms the copies first
    rate_state, stale = _count_use(key)
    if API_KEYS.name in stale:  # the copy checked above was out of date: the current row decides
        key = _checked(_verified_row(prefix), offered, request)
    # The request's own user object: Django caches a user's permissions on the object it asks, and the
    # shared copy must never carry one request's answers into the next (a removed permission saves no user).
    user = copy.copy(key.user)
    return ApiCaller(
        actor=Actor.for_user(user, kind=ActorKind.API_KEY, label=f"{key.name} ({key.prefix})",
                             ref=f"api_key:{key.pk}"),
        rate_key=f"api_key:{key.pk}",
        rate_limit_per_minute=key.rate_limit_per_minute,
        allowed_processes=frozenset(key.allowed_processes) or None,
        scopes=None,
        api_key_id=key.pk,
        rate_counted=rate_state,
    )


def _checked(key: ApiKey | None, offered: str, request: Request) -> ApiKey:
    # Compare even when there is no such key, so the secret check costs the same either way.
    if not hmac.compare_digest(key.secret_hash if key else _DUMMY_HASH, offered) or key is None:
        raise AuthenticationFailed(NOT_VALID)
    # The caller holds the secret from here on, so telling them why the key is refused leaks nothing.
    refusal = _REFUSALS.get(api_key_status(key=key))
    if refusal:
        raise AuthenticationFailed(refusal)
    if not key.user.is_active:
        raise AuthenticationFailed("The API key's user account is not active.")
    if key.allowed_ips:
        address = request.META.get("REMOTE_ADDR") or ""
        if not _address_allowed(address, key.allowed_ips):
            raise AuthenticationFailed(f"This API key may not be used from {address or 'an unknown address'}.")
    return key


def _address_allowed(address: str, ranges: list[str]) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped  # ::ffff:203.0.113.9 from a dual-stack socket is 203.0.113.9
    return any(ip in ipaddress.ip_network(cidr) for cidr in ranges)
