"""Process-local copies of rows that every request reads and that rarely change, kept honest by a shared token.

Every start reads the process row, its parameter definition and its approval gate; every API request reads
its API key. Reading them from the database (or unpickling them from Redis) on every request was a fifth of
an execute request's time, yet they change a few times a day. So each web or worker process keeps its own
copies in memory, grouped in named :class:`LocalCache` instances, and one shared cache entry per group holds
a *generation token*. A change to any row of a group (a ``post_save``/``post_delete`` receiver, or the code
that writes it) calls :meth:`LocalCache.changed`, which stores a new random token; a reader whose copies were
made under another token drops them all and reads again. So a change applies to the very next request in
every process, at the price of one small cache GET per request (one for all groups: see :func:`pinned`).

Why a random token and not a counter: if the shared cache is flushed or evicts the entry, a counter would
start again at values some process may already hold copies for; a fresh random token never matches.

Ordering: :meth:`changed` sets a new token at once and again after the transaction commits. A reader that
copied the old rows between the two (the change was not visible to it yet) holds them under the first new
token, which the second replaces.
"""

from __future__ import annotations

import logging
import secrets
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

from django.core.cache import cache
from django.db import DatabaseError, transaction

logger = logging.getLogger(__name__)
T = TypeVar("T")
_MISSING = object()
_pins = threading.local()  # per thread: {group name: token} read once for the current unit of work


class LocalCache:
    """One group of process-local copies (``"definitions"``, ``"api-keys"``) and its shared token."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.token_key = f"heptora:generation:{name}"
        self._copies: dict[Any, Any] = {}
        self._token: str | None = None
        self._lock = threading.Lock()

    def get(self, key: Any, build: Callable[[], T]) -> T:
        """The copy of ``key``, made with ``build()`` if this process has none under the current token.

        ``build`` must return a value nobody mutates: it is shared by every thread of the process. None (no
        such row) is never kept, so made-up keys cannot fill the memory.
        """
        token = self._current_token()
        with self._lock:
            if token != self._token:
                self._copies.clear()
                self._token = token
            value = self._copies.get(key, _MISSING)
        if value is not _MISSING:
            return value
        value = build()
        with self._lock:
            if value is not None and self._token == token:  # a newer token arrived: do not file it under that
                self._copies[key] = value
        return value

    def changed(self) -> None:
        """Make every process read this group again: now, and again when the current transaction commits."""
        self._renew()
        transaction.on_commit(self._renew)

    def forget(self, *, shared: bool = True) -> None:
        """Drop this process's copies and (``shared``) the shared token, outside any transaction (tests: their
        rows are rolled back or flushed, which no signal reports). The next reader starts a new generation."""
        if shared:
            cache.delete(self.token_key)
        with self._lock:
            self._copies.clear()
            self._token = None

    def _renew(self) -> None:
        token = secrets.token_hex(8)
        try:
            cache.set(self.token_key, token, None)
        except DatabaseError:
            # The embedded database cache before `createcachetable` (migrate syncs the processes first): no
            # process can hold copies under a token that could not be stored either.
            logger.warning("could not store the %s generation token (no cache table yet?)", self.name)
        pins = getattr(_pins, "tokens", None)
        if pins is not None and self.name in pins:
            pins[self.name] = token  # this thread's own later reads see its change
        with self._lock:
            self._copies.clear()
            self._token = token

    def _current_token(self) -> str:
        pins = getattr(_pins, "tokens", None)
        if pins is not None and self.name in pins:
            return pins[self.name]
        return _tokens_read([self])[self.name]


def _tokens_read(groups: list[LocalCache]) -> dict[str, str]:
    found = cache.get_many([g.token_key for g in groups])
    tokens = {}
    for group in groups:
        token = found.get(group.token_key)
        if token is None:  # first use, or the shared cache lost it: start a generation (add: one wins)
            candidate = secrets.token_hex(8)
            token = candidate if cache.add(group.token_key, candidate, None) else cache.get(group.token_key)
            token = token or candidate
        tokens[group.name] = token
    return tokens


@contextmanager
def pinned(*groups: LocalCache) -> Iterator[None]:
    """Read the tokens of ``groups`` once (one cache round trip) for everything this thread does inside.

    A request or a start pins its groups so that its several reads (process, definition, gate, API key)
    cost one GET together and see one consistent generation. Nested pins reuse the outer ones.
    """
    pins = getattr(_pins, "tokens", None)
    outer = pins is not None
    if not outer:
        pins = _pins.tokens = {}
    wanted = [g for g in groups if g.name not in pins]
    added = list(_tokens_read(wanted).items()) if wanted else []
    pins.update(added)
    try:
        yield
    finally:
        if outer:
            for name, _ in added:
                pins.pop(name, None)
        else:
            _pins.tokens = None


# The groups. "definitions": what a start reads of a process (its row, parameter definition, approval gate),
# changed by Process, FormDefinition, FormField and ApprovalPolicy writes. "api-keys": API key rows with
# their users, changed by any key write and by user saves and deletes.
DEFINITIONS = LocalCache("definitions")
API_KEYS = LocalCache("api-keys")
