"""What the API key commands share: finding users and keys, reading dates, printing a key once."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import CommandError, OutputWrapper
from django.utils import timezone

from api_app import api_keys
from api_app.models import ApiKey
from executions.errors import HeptoraError

MAX_DAYS = 36500
ONCE = "Copy the key now: it will not be shown again (Heptora keeps only a hash of it)."


def user_named(username: str) -> Any:
    user = get_user_model().objects.filter(username=username).first()
    if user is None:
        raise CommandError(f"There is no user named '{username}'.")
    return user


def key_with_prefix(prefix: str) -> ApiKey:
    try:
        return api_keys.api_key_by_prefix(prefix=prefix)
    except HeptoraError as exc:
        raise CommandError(exc.message) from None


def expiry(days: int | None, at: str | None) -> datetime | None:
    """``--expires-in-days`` or ``--expires-at`` (ISO 8601; a date means its first minute, local time)."""
    if days is not None:
        if not 1 <= days <= MAX_DAYS:
            raise CommandError(f"--expires-in-days must be between 1 and {MAX_DAYS}.")
        return timezone.now() + timedelta(days=days)
    if at is None:
        return None
    try:
        when = datetime.fromisoformat(at.strip())
        when = timezone.make_aware(when) if timezone.is_naive(when) else when
        when.astimezone(UTC)  # the database keeps UTC: 9999-12-31T23:00-05:00 has no UTC time
    except (ValueError, OverflowError):
        raise CommandError(f"--expires-at '{at}' is not an ISO 8601 date or time, e.g. 2027-01-31T18:00.") from None
    return when


def when(value: datetime | None) -> str:
    return timezone.localtime(value).strftime("%Y-%m-%d %H:%M %Z") if value else "-"


def iso(value: datetime | None) -> str | None:
    return value.isoformat().replace("+00:00", "Z") if value else None


def show_once(out: OutputWrapper, key: ApiKey, full_key: str, warn: Callable[[str], str]) -> None:
    """The key's settings, the key on a line of its own, and the warning that this is the only time."""
    out.write(
        f"Processes: {', '.join(key.allowed_processes) or 'all the user may start'}; "
        f"addresses: {', '.join(key.allowed_ips) or 'any'}; rate limit: {key.rate_limit_per_minute}/min; "
        f"expires: {when(key.expires_at) if key.expires_at else 'never'}."
    )
    out.write(full_key)
    out.write(ONCE, warn)


def key_as_dict(key: ApiKey) -> dict[str, Any]:
    return {
        "prefix": key.prefix,
        "name": key.name,
        "user": key.user.get_username(),
        "status": api_keys.api_key_status(key=key),
        "createdAt": iso(key.created_at),
        "expiresAt": iso(key.expires_at),
        "lastUsedAt": iso(key.last_used_at),
        "usageCount": key.usage_count,
        "revokedAt": iso(key.revoked_at),
        "revokedReason": key.revoked_reason,
        "replacedBy": key.replaced_by.prefix if key.replaced_by else None,
        "graceUntil": iso(key.grace_until),
        "allowedProcesses": key.allowed_processes,
        "allowedIps": key.allowed_ips,
        "rateLimitPerMinute": key.rate_limit_per_minute,
    }
