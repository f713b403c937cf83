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
    backend = caches["default"]
    if isinstance(backend, RedisCache):
        full_key = backend.make_and_validate_key(key)
        client = backend._cache.get_client(full_key, write=True)
        pipe = client.pipeline(transaction=False)
        pipe.set(full_key, 0, nx=True, ex=timeout)
        pipe.incr(full_key)
        return int(pipe.execute()[1])
    if cache.add(key, 1, timeout):
        return 1
    try:
        return cache.incr(key)
    except ValueError:  # expired between add and incr
        cache.add(key, 1, timeout)
        return 1
