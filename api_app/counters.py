"""Atomic counters in the shared cache, in one round trip on Redis.

Django's cache API needs two or three Redis commands to count (``add``, then ``incr``, which itself asks
``EXISTS`` before ``INCRBY``); the rate limit and the API key usage counter count on every request. On
Redis this sends ``SET key 0 NX [EX timeout]`` and ``INCR key`` in one pipeline; with any other cache (the
embedded database cache) it falls back to ``add`` / ``incr``.
"""

from __future__ import annotations

from django.core.cache import cache, caches
from django.core.cache.backends.redis import RedisCache


def counter_incr(key: str, *, timeout: int | None) -> int:
    """Add 1 to the counter ``key`` (created at 0 with ``timeout`` seconds to live) and return its value."""
    return counters_incr([(key, timeout)])[0]


def counters_incr(counters: list[tuple[str, int | None]]) -> list[int]:
    """Add 1 to each ``(key, timeout)`` counter, all in one round trip on Redis; their new values in order."""
    backend = caches["default"]
    if isinstance(backend, RedisCache):
        client = backend._cache.get_client(None, write=True)
        pipe = client.pipeline(transaction=False)
        for key, timeout in counters:
            full_key = backend.make_and_validate_key(key)
            pipe.set(full_key, 0, nx=True, ex=timeout)
            pipe.incr(full_key)
        return [int(value) for value in pipe.execute()[1::2]]
    return [_incr_portable(key, timeout) for key, timeout in counters]


def _incr_portable(key: str, timeout: int | None) -> int:
    if cache.add(key, 1, timeout):
        return 1
    try:
        return cache.incr(key)
    except ValueError:  # expired between add and incr
        cache.add(key, 1, timeout)
        return 1
