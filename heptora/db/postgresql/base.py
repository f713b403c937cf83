"""Django's PostgreSQL backend with a cheaper connection health check.

Django's ``CONN_HEALTH_CHECKS`` runs ``SELECT 1`` before the first query of every request on a reused
connection: under load that is one database round trip out of every handful, spent on a connection that
answered a query a moment ago. Here a connection is checked only after it has been idle for
``HEALTH_CHECK_IDLE_SECONDS``; a busy one is trusted. What that gives up: if PostgreSQL restarts, a
connection that served a request less than that long before may fail the next request once (the API
answers it 503, "try again") before Django drops it. A connection idle for longer, the usual case after a
restart, is checked and replaced as before.
"""

from __future__ import annotations

import time

from django.db.backends.postgresql import base

HEALTH_CHECK_IDLE_SECONDS = 1.0


class DatabaseWrapper(base.DatabaseWrapper):
    _used_at: float = 0.0

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
