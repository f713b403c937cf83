"""A fresh install's first `migrate`, on each database the project supports, with the cache in the database.

`migrate` syncs the processes (and so renews the local-copy tokens) before `createcachetable` has made the
cache table: that must neither fail nor leave the migration's transaction broken.
"""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from django.conf import settings

ROOT = Path(__file__).resolve().parent.parent


def run(command: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "manage.py", *command], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=240)


def fresh_env(tmp_path: Path, database_url: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")}  # no Redis: cache in DB
    env.update(DATABASE_URL=database_url, SECRET_KEY="fresh-install-test", HEPTORA_VAR_DIR=str(tmp_path / "var"))
    return env


@pytest.fixture
def fresh_database(tmp_path: Path) -> Iterator[str]:
    """An empty database on the server the tests use (PostgreSQL), or a new SQLite file."""
    db = settings.DATABASES["default"]
    if db["ENGINE"] == "django.db.backends.sqlite3":
        yield f"sqlite:///{tmp_path / 'fresh.sqlite3'}"
        return
    name = f"heptora_fresh_{uuid.uuid4().hex[:10]}"
    server = dict(host=db.get("HOST") or "127.0.0.1", port=db.get("PORT") or 5432, user=db.get("USER") or "",
                  password=db.get("PASSWORD") or "", dbname="postgres", autocommit=True)
    with psycopg.connect(**server) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    auth = f"{server['user']}:{server['password']}@" if server["password"] else f"{server['user']}@"
    try:
        yield f"postgres://{auth}{server['host']}:{server['port']}/{name}"
    finally:
        with psycopg.connect(**server) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def test_a_fresh_install_migrates_then_makes_its_cache_table(tmp_path: Path, fresh_database: str) -> None:
    env = fresh_env(tmp_path, fresh_database)

    migrated = run(["migrate", "--noinput"], env)
    assert migrated.returncode == 0, migrated.stderr[-2000:]
    made = run(["createcachetable"], env)
    assert made.returncode == 0, made.stderr[-2000:]
    listed = run(["list_executions"], env)
    assert listed.returncode == 0, listed.stderr[-2000:]
