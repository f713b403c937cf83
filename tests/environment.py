"""Loaded with ``-p tests.environment`` so it runs before pytest-django starts Django.

It gives the whole run (and the real worker processes the tests start) one private var/ folder, one
private broker queue, the test processes, and short engine timings; the services themselves (SQLite or
PostgreSQL, filesystem broker or Redis) are whatever DATABASE_URL / REDIS_URL say, as in production.
"""

from __future__ import annotations

import os
import shutil
import tempfile

import pytest

_var = tempfile.mkdtemp(prefix="heptora-test-")
os.environ.update(
    {
        "HEPTORA_VAR_DIR": _var,
        "HEPTORA_QUEUE": f"heptora-test-{os.getpid()}",
        "HEPTORA_CACHE_PREFIX": f"heptora-test-{os.getpid()}",  # runs sharing a Redis never share counters
        "HEPTORA_PROCESS_MODULES": "tests.processes",
        "HEPTORA_DEMO_STEP_DELAY": "0",
        "HEPTORA_HEARTBEAT_SECONDS": "0.2",
        "HEPTORA_STALE_AFTER_SECONDS": "2",
        "HEPTORA_RECOVERY_INTERVAL": "1",
        "HEPTORA_TIMEOUT_GRACE": "2",
        "LOG_LEVEL": "WARNING",
        # Each API call's log row written in its own request, so tests read it at once (the batching
        # itself has its own test).
        "HEPTORA_API_CALL_LOG_BATCH": "1",
        # Webhooks: the product's 1-2-4-8-16 s schedule at a twentieth of the time, short timeouts, plain http
        # to the local receiver (127.0.0.1 allow-listed for the worker; SSRF tests clear it per test).
        "HEPTORA_WEBHOOK_BACKOFF_SCALE": "0.05",
        "HEPTORA_WEBHOOK_CONNECT_TIMEOUT": "1",
        "HEPTORA_WEBHOOK_READ_TIMEOUT": "0.5",
        "HEPTORA_WEBHOOK_ALLOWLIST": "127.0.0.1",
        "HEPTORA_WEBHOOK_REQUIRE_HTTPS": "false",
    }
)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    _purge_private_queues()
    shutil.rmtree(_var, ignore_errors=True)


def _purge_private_queues() -> None:
    """Runs sharing a Redis leave no messages behind (the filesystem broker goes with the var folder)."""
    if not os.environ.get("REDIS_URL"):
        return
    from heptora.celery import app

    queue = os.environ["HEPTORA_QUEUE"]
    with app.connection_for_write() as connection:
        channel = connection.default_channel
        for name in (queue, f"{queue}-unread"):
            channel.queue_purge(name)


def pytest_sessionstart(session: pytest.Session) -> None:
    """Fail the run at once (never skip) when a configured service is unreachable."""
    import redis
    from django.conf import settings

    redis_url = os.environ.get("REDIS_URL")
    if redis_url:
        try:
            redis.Redis.from_url(redis_url, socket_connect_timeout=3).ping()
        except redis.RedisError as exc:
            pytest.exit(f"REDIS_URL={redis_url} is unreachable: {exc}", returncode=3)
    db = settings.DATABASES["default"]
    if db["ENGINE"] == "django.db.backends.postgresql":
        import psycopg

        try:
            psycopg.connect(host=db["HOST"], port=db["PORT"] or 5432, user=db["USER"], password=db["PASSWORD"],
                            dbname="postgres", connect_timeout=3).close()
        except psycopg.Error as exc:
            pytest.exit(f"PostgreSQL at {db['HOST']}:{db['PORT']} (DATABASE_URL) is unreachable: {exc}", returncode=3)
