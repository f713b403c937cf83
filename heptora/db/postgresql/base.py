"""Django's PostgreSQL backend with a cheaper connection health check, and prepared statements on request.

Django's ``CONN_HEALTH_CHECKS`` runs ``SELECT 1`` before the first query of every request on a reused
connection: under load that is one database round trip out of every handful, spent on a connection that
answered a query a moment ago. Here a connection is checked only after it has been idle for
``HEALTH_CHECK_IDLE_SECONDS``; a busy one is trusted. What that gives up: if PostgreSQL restarts, a
connection that served a request less than that long before may fail the next request once (the API
answers it 503, "try again") before Django drops it. A connection idle for longer, the usual case after a
restart, is checked and replaced as before.

Prepared statements: Django sends every statement as text with its values inlined (client-side binding),
so PostgreSQL parses and plans it every time. :meth:`DatabaseWrapper.prepared_cursor` gives the two
statements every start runs (the permission check and the one-statement INSERT) a cursor that binds on the
server and prepares them once per connection; later executions send only the values. It is still
Django's cursor wrapper (errors, query logging, ``CaptureQueriesContext``). ``HEPTORA_DB_PREPARED_STATEMENTS``
(on by default) turns it off for a connection pooler in transaction mode that cannot keep prepared
statements (PgBouncer before 1.21, or without ``max_prepared_statements``).
"""

from __future__ import annotations

import time
from typing import Any

import psycopg
from django.conf import settings
from django.db.backends.postgresql import base

HEALTH_CHECK_IDLE_SECONDS = 1.0


class _PreparingCursor(psycopg.Cursor):
    """Server-side binding, and every statement prepared (Django turns psycopg's own threshold off)."""

    def execute(self, query: Any, params: Any = None, *, prepare: bool | None = None,
                binary: bool | None = None) -> Any:
        return super().execute(query, params, prepare=True, binary=binary)


class DatabaseWrapper(base.DatabaseWrapper):
    _used_at: float = 0.0

    def prepared_cursor(self) -> Any:
        """A cursor whose statements PostgreSQL prepares once per connection; for the hot, fixed statements
        only (each distinct SQL text stays prepared on the connection). Falls back to a plain cursor when
        ``HEPTORA_DB_PREPARED_STATEMENTS`` is off."""
        if not getattr(settings, "HEPTORA_DB_PREPARED_STATEMENTS", True):
            return self.cursor()
        self.close_if_health_check_failed()
        self.ensure_connection()
        with self.wrap_database_errors:
            return self._prepare_cursor(_PreparingCursor(self.connection))

    def close_if_unusable_or_obsolete(self) -> None:
        # Called at the start and the end of every request. health_check_done is set by the first query of
        # a request, so it says whether the request now ending used (and got answers from) the connection.
        used = self.health_check_done and not self.errors_occurred
        super().close_if_unusable_or_obsolete()
        if used and self.connection is not None:
            self._used_at = time.monotonic()

    def close_if_health_check_failed(self) -> None:
        if (self.connection is not None and self.health_check_enabled and not self.health_check_done
                and time.monotonic() - self._used_at < HEALTH_CHECK_IDLE_SECONDS):
            self.health_check_done = True
            return
        super().close_if_health_check_failed()
