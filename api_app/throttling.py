"""Rate limits per caller (API key, OAuth client, JWT subject, or signed-in user), shared by every web
process through the cache (Redis in production), announced on every response.

A fixed one-minute window: `RateLimit-Limit`, `RateLimit-Remaining`, `RateLimit-Reset` (seconds to the next
window) on each response, and `Retry-After` with the 429.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from django.conf import settings
from rest_framework.request import Request

from api_app.counters import counter_incr
from api_app.permissions import caller_of

WINDOW_SECONDS = 60


@dataclass(frozen=True)
class RateState:
    limit: int
    remaining: int
    reset: int

    @property
    def exceeded(self) -> bool:
        return self.remaining < 0

    def headers(self) -> dict[str, str]:
        headers = {
            "RateLimit-Limit": str(self.limit),
            "RateLimit-Remaining": str(max(self.remaining, 0)),
            "RateLimit-Reset": str(self.reset),
        }
        if self.exceeded:
            headers["Retry-After"] = str(self.reset)
        return headers


def rate_limit_take(request: Request) -> RateState | None:
    """Count this request against its caller's limit; None for callers we do not limit (anonymous).

    An authenticator may have counted it already, in the round trip that counts its own use (API keys).
    """
    caller = caller_of(request)
    if caller is not None and caller.rate_counted is not None:
        return caller.rate_counted
    if caller is not None:
        bucket, limit = caller.rate_key, caller.rate_limit_per_minute
    elif request.user and request.user.is_authenticated:
        bucket, limit = f"user:{request.user.pk}", settings.HEPTORA_API_RATE_LIMIT
    else:
        return None
    key, timeout, finish = rate_counter(bucket, limit)
    return finish(counter_incr(key, timeout=timeout))  # atomic across web processes on Redis


def rate_counter(bucket: str, limit: int) -> tuple[str, int, Callable[[int], RateState]]:
    """The counter to add this request to (key, lifetime) and how to read the state from its new value."""
    now = time.time()
    window = int(now // WINDOW_SECONDS)
    reset = max(1, int((window + 1) * WINDOW_SECONDS - now + 0.999))
    return (f"heptora:rl:{bucket}:{window}", WINDOW_SECONDS + 5,
            lambda count: RateState(limit=limit, remaining=limit - count, reset=reset))
