"""Process-local copies of rows that every request reads and that rarely change, kept honest by a shared token.

Every start reads the process row, its parameter definition and its approval gate; every API request reads
its API key. Reading them from the database (or unpickling them from Redis) on every request was a fifth of
an execute request's time, yet they change a few times a day. So each web or worker process keeps its own
copies in memory, grouped in named :class:`LocalCache` instances, and one shared cache entry per group holds
a *generation token*. A change to any row of a group (a ``post_save``/``post_delete`` receiver, or the code
that writes it) calls :meth:`LocalCache.changed`, which stores a new random token; a reader whose copies were
made under another token drops them all and reads again. So a change applies to the very next request in
every process, at the price of one small cache GET per request (one for all groups: see :func:`pinned`).

An API request does not even pay that GET: it pins its groups optimistically (:func:`optimistic`) and reads
the tokens in the round trip that counts its API key's use (:func:`confirm`).

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
from django.db.models.signals import m2m_changed, post_delete, post_save

logger = logging.getLogger(__name__)
T = TypeVar("T")
_MISSING = object()
Token = int  # random; an int, so that the cache stores it as plain text (a pipeline can read it back)


class _Pins(threading.local):
    """Per thread: {group name: token} for the current unit of work, and the names not yet confirmed."""

    def __init__(self) -> None:
        self.tokens: dict[str, Token] | None = None
        self.unconfirmed: dict[str, LocalCache] = {}
        # groups this thread changed in its open transaction, with this thread's own copies of them
        # (savepoint depth of the change, copies)
        self.changed_in_transaction: dict[str, tuple[int, dict[Any, Any]]] = {}


_pins = _Pins()


class LocalCache:
    """One group of process-local copies (``"definitions"``, ``"api-keys"``) and its shared token."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.token_key = f"heptora:generation:{name}"
        self._copies: dict[Any, Any] = {}
        self._token: Token | None = None
        self._lock = threading.Lock()

    def get(self, key: Any, build: Callable[[], T]) -> T:
        """The copy of ``key``, made with ``build()`` if this process has none under the current token.

        ``build`` must return a value nobody mutates: it is shared by every thread of the process. None (no
        such row) is never kept, so made-up keys cannot fill the memory.
        """
        return self._get(key, build, self._current_token())

    def peek(self, key: Any, build: Callable[[], T]) -> T:
        """Like :meth:`get`, but under an :func:`optimistic` pin it does not confirm the token first: the
        caller must :func:`confirm` it later (in a round trip it makes anyway) and read again if it changed."""
        pins = _pins.tokens
        if pins is not None and self.name in pins:
            return self._get(key, build, pins[self.name])
        return self.get(key, build)

    def _private_copies(self) -> dict[Any, Any] | None:
        """This thread's own copies while its open transaction has changed the group, else None."""
        if not _pins.changed_in_transaction:
            return None
        connection = transaction.get_connection()
        if not connection.in_atomic_block:
            _pins.changed_in_transaction.clear()  # that transaction is over (committed or rolled back)
            return None
        entry = _pins.changed_in_transaction.get(self.name)
        if entry is None:
            return None
        depth, copies = entry
        if len(connection.savepoint_ids) < depth:  # the savepoint of the change ended: released or rolled back
            copies = {}
            _pins.changed_in_transaction[self.name] = (len(connection.savepoint_ids), copies)
        return copies

    def _get(self, key: Any, build: Callable[[], T], token: Token) -> T:
        private = self._private_copies()
        if private is not None:
            return self._get_private(private, key, build)
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

    def renew_on_change(self, *models: type) -> None:
        """Renew this group whenever a row of ``models`` is saved or deleted (call from ``AppConfig.ready``).

        A save that touched only ``last_login`` (every sign-in) changes nothing a copy relies on.
        """
        for model in models:
            uid = f"local-cache-{self.name}-{model._meta.label_lower}"
            post_save.connect(self._on_row_change, sender=model, weak=False, dispatch_uid=f"{uid}-save")
            post_delete.connect(self._on_row_change, sender=model, weak=False, dispatch_uid=f"{uid}-delete")

    def renew_on_m2m_change(self, *through_models: type) -> None:
        """Renew this group whenever rows are added to or removed from these many-to-many relations."""
        for through in through_models:
            m2m_changed.connect(self._on_m2m_change, sender=through, weak=False,
                                dispatch_uid=f"local-cache-{self.name}-{through._meta.label_lower}-m2m")

    def _on_m2m_change(self, action: str, **kwargs: Any) -> None:
        if action in ("post_add", "post_remove", "post_clear"):
            self.changed()

    def _on_row_change(self, sender: type, update_fields: frozenset[str] | None = None, **kwargs: Any) -> None:
        if update_fields is not None and set(update_fields) <= {"last_login"}:
            return
        self.changed()

    @staticmethod
    def _get_private(private: dict[Any, Any], key: Any, build: Callable[[], T]) -> T:
        value = private.get(key, _MISSING)
        if value is _MISSING:
            value = build()
            if value is not None:
                private[key] = value
        return value

    def changed(self) -> None:
        """Make every process read this group again: now, and again when the current transaction commits.

        Until this thread's transaction ends, its copies of the group are its own (kept apart from the
        process's shared ones): they may hold rows that are not committed, which no other thread may see
        and which a rollback must not leave behind."""
        connection = transaction.get_connection()
        if connection.in_atomic_block:
            _pins.changed_in_transaction[self.name] = (len(connection.savepoint_ids), {})
        self._renew()
        transaction.on_commit(self._renew_committed)

    def _renew_committed(self) -> None:
        _pins.changed_in_transaction.pop(self.name, None)  # committed: this thread shares copies again
        self._renew()

    def forget(self, *, shared: bool = True) -> None:
        """Drop this process's copies and (``shared``) the shared token, outside any transaction (tests: their
        rows are rolled back or flushed, which no signal reports). The next reader starts a new generation."""
        if shared:
            cache.delete(self.token_key)
        _pins.changed_in_transaction.pop(self.name, None)
        with self._lock:
            self._copies.clear()
            self._token = None

    def _renew(self) -> None:
        token = secrets.randbits(62)
        try:
            with transaction.atomic():  # the database cache may fail (no table yet) without aborting ours
                cache.set(self.token_key, token, None)
        except DatabaseError:
            # The embedded database cache before `createcachetable` (migrate syncs the processes first): no
            # process can hold copies under a token that could not be stored either.
            logger.warning("could not store the %s generation token (no cache table yet?)", self.name)
        if _pins.tokens is not None and self.name in _pins.tokens:
            _pins.tokens[self.name] = token  # this thread's own later reads see its change
            _pins.unconfirmed.pop(self.name, None)
        with self._lock:
            self._copies.clear()
            self._token = token

    def _current_token(self) -> Token:
        pins = _pins.tokens
        if pins is not None and self.name in pins:
            if _pins.unconfirmed:
                confirm(_tokens_read(list(_pins.unconfirmed.values()), stored=True))
            return pins[self.name]
        return _tokens_read([self])[self.name]


def _tokens_read(groups: list[LocalCache], *, stored: bool = False) -> dict[str, Token | None]:
    """The shared tokens of ``groups`` (one round trip). A missing one starts a new generation, unless
    ``stored`` (the raw values, for :func:`confirm`, which does that itself)."""
    found = cache.get_many([g.token_key for g in groups])
    tokens: dict[str, Token | None] = {}
    for group in groups:
        token = found.get(group.token_key)
        tokens[group.name] = token if stored else (token if token is not None else _generation_start(group))
    return tokens


def _generation_start(group: LocalCache) -> Token:
    # First use, or the shared cache lost the token: start a generation (add: of two processes, one wins).
    candidate = secrets.randbits(62)
    if cache.add(group.token_key, candidate, None):
        return candidate
    token = cache.get(group.token_key)
    if type(token) is not int:  # an entry of another shape (an older release): replace it
        cache.set(group.token_key, candidate, None)
        return candidate
    return token


@contextmanager
def pinned(*groups: LocalCache) -> Iterator[None]:
    """Read the tokens of ``groups`` once (one cache round trip) for everything this thread does inside.

    A start pins its groups so that its several reads (process, definition, gate) cost one GET together
    and see one consistent generation. Nested pins reuse the outer ones.
    """
    with _pinning(groups, optimistic=False):
        yield


@contextmanager
def optimistic(*groups: LocalCache) -> Iterator[None]:
    """Pin ``groups`` to the tokens this process already holds, to be confirmed later in one round trip.

    An API request authenticates with an API key and then counts its use and its rate limit in the shared
    cache: that round trip also reads the tokens (:func:`token_keys_unconfirmed` / :func:`confirm`), so the
    request pays no round trip of its own for them. Whatever reads a copy with :meth:`LocalCache.get`
    before that confirms the tokens first; only :meth:`LocalCache.peek` reads without confirming.
    """
    with _pinning(groups, optimistic=True):
        yield


@contextmanager
def _pinning(groups: tuple[LocalCache, ...], *, optimistic: bool) -> Iterator[None]:
    outer = _pins.tokens is not None
    if not outer:
        _pins.tokens, _pins.unconfirmed = {}, {}
    pins = _pins.tokens
    assert pins is not None
    wanted = [g for g in groups if g.name not in pins]
    held = {g.name: g._token for g in wanted} if optimistic else {}
    fresh = [g for g in wanted if held.get(g.name) is None]  # nothing held yet: read now
    pins.update(_tokens_read(fresh) if fresh else {})  # type: ignore[arg-type]
    for group in wanted:
        if group not in fresh:
            pins[group.name] = held[group.name]  # type: ignore[assignment]
            _pins.unconfirmed[group.name] = group
    try:
        yield
    finally:
        if outer:
            for group in wanted:
                pins.pop(group.name, None)
                _pins.unconfirmed.pop(group.name, None)
        else:
            _pins.tokens, _pins.unconfirmed = None, {}


def token_keys_unconfirmed() -> list[str]:
    """The cache keys of this thread's unconfirmed tokens, for a caller to read in its own round trip."""
    return [group.token_key for group in _pins.unconfirmed.values()]


def confirm(found: dict[str, Token | None]) -> set[str]:
    """Settle this thread's unconfirmed pins with the tokens read (by group name or token key); returns
    the names of the groups whose copies were out of date (they are dropped, and pinned to the new token)."""
    changed: set[str] = set()
    for name, group in list(_pins.unconfirmed.items()):
        token = found.get(name, found.get(group.token_key))
        if token is None:
            token = _generation_start(group)
        if _pins.tokens is not None and _pins.tokens.get(name) != token:
            _pins.tokens[name] = token
            changed.add(name)
        del _pins.unconfirmed[name]
    return changed


# The groups. "definitions": what a start reads of a process (its row, parameter definition, approval gate),
# changed by Process, FormDefinition, FormField and ApprovalPolicy writes. "api-keys": API key rows with
# their users, changed by any key write and by user saves and deletes. "webhook-endpoints": the active
# endpoints with their owners, read on every status change, changed by endpoint and user writes. "grants":
# the permissions found granted (user, permission, process), changed by any write to users, groups,
# permissions, their memberships and guardian's object permissions.
DEFINITIONS = LocalCache("definitions")
API_KEYS = LocalCache("api-keys")
WEBHOOK_ENDPOINTS = LocalCache("webhook-endpoints")
GRANTS = LocalCache("grants")
# Every group, for code that reads copies on behalf of listeners it does not know (a status change).
GROUPS = (DEFINITIONS, API_KEYS, WEBHOOK_ENDPOINTS, GRANTS)
