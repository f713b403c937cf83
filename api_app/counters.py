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
    return counters_incr([(key, timeout)])[0][0]


def counters_incr(counters: list[tuple[str, int | None]], *, also_read: list[str] = ()) -> tuple[list[int], dict]:
    """Add 1 to each ``(key, timeout)`` counter and read the integer entries ``also_read``, all in one round trip
    on Redis; the counters' new values in order, and {key: value or None} of what was read."""
    backend = caches["default"]
    if isinstance(backend, RedisCache):
        client = backend._cache.get_client(None, write=True)
        pipe = client.pipeline(transaction=False)
        for key, timeout in counters:
            full_key = backend.make_and_validate_key(key)
            pipe.set(full_key, 0, nx=True, ex=timeout)
            pipe.incr(full_key)
        for key in also_read:
            pipe.get(backend.make_and_validate_key(key))
        results = pipe.execute()
        counted = results[: 2 * len(counters)]
        read = results[2 * len(counters):]
        return ([int(value) for value in counted[1::2]],
                {key: _int_or_none(value) for key, value in zip(also_read, read, strict=True)})
    read = cache.get_many(list(also_read)) if also_read else {}
    return [_incr_portable(key, timeout) for key, timeout in counters], read


def _int_or_none(value: bytes | None) -> int | None:
    # Django's Redis serializer stores an int as its digits (anything else pickled): integers only here.
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None


def _incr_portable(key: str, timeout: int | None) -> int:
    if cache.add(key, 1, timeout):
        return 1
    try:
        return cache.incr(key)
    except ValueError:  # expired between add and incr
        cache.add(key, 1, timeout)
        return 1
