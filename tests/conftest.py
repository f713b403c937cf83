"""Shared actors and the real Celery worker the engine tests run against."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from django.contrib.auth.models import Group, User
from guardian.shortcuts import assign_perm

from executions.actors import Actor
from executions.models import Execution, Process

ROOT = Path(__file__).resolve().parent.parent
PASSWORD = "correct horse battery staple"


# --- Actors ---------------------------------------------------------------------------------------------


@pytest.fixture
def admin_user(db: None) -> User:
    return User.objects.create_superuser("ada", "ada@example.com", PASSWORD)


@pytest.fixture
def managers(db: None) -> Group:
    return Group.objects.get_or_create(name="Managers")[0]


@pytest.fixture
def manager(managers: Group) -> User:
    user = User.objects.create_user("maria", "maria@example.com", PASSWORD, is_staff=True)
    user.groups.add(managers)
    return user


@pytest.fixture
def staff_user(db: None) -> User:
    """A member of Staff allowed to start order-processing and the test processes."""
    staff = Group.objects.get_or_create(name="Staff")[0]
    user = User.objects.create_user("sam", "sam@example.com", PASSWORD)
    user.groups.add(staff)
    for process in Process.objects.filter(slug__in=["order-processing", "test-echo", "test-steps"]):
        assign_perm("executions.execute_process", staff, process)
    return user


@pytest.fixture
def outsider(db: None) -> User:
    return User.objects.create_user("olga", "olga@example.com", PASSWORD)


@pytest.fixture
def operator() -> Actor:
    return Actor.system("cli:test")


@pytest.fixture(autouse=True)
def forget_cached_definitions() -> Iterator[None]:
    """Each web and worker process keeps local copies of processes, forms, approval policies and API keys;
    a test's rows are rolled back (or flushed) without a signal, so no test may see another's copies."""
    yield
    from heptora.local_cache import GROUPS

    # The database cache's table is rolled back with the test (and may not be touched by a test without db).
    shared = "DatabaseCache" not in settings.CACHES["default"]["BACKEND"]
    for group in GROUPS:
        group.forget(shared=shared)


def database_work(queries: Any) -> list[str]:
    """The statements of a ``CaptureQueriesContext`` other than reads and writes of the shared cache, which
    the embedded default keeps in a database table (with Redis they are not SQL at all)."""
    table = settings.CACHES["default"].get("LOCATION", "") if "DatabaseCache" in settings.CACHES["default"][
        "BACKEND"] else None
    return [q["sql"] for q in queries.captured_queries if not (table and f'"{table}"' in q["sql"])]


# --- A real worker --------------------------------------------------------------------------------------


class WorkerProcess:
    """`celery worker` as a subprocess, on the test database and the run's private queue."""

    def __init__(self, log_path: Path, *, beat: bool = False, env: dict[str, str] | None = None,
                 args: list[str] | None = None) -> None:
        self.log_path = log_path
        self.beat = beat
        self.env = env or {}
        self.args = args or []
        self.popen: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 60) -> WorkerProcess:
        command = [sys.executable, "-m", "celery", "-A", "heptora", "worker", "--loglevel", "INFO",
                   "--concurrency", "2", "--without-gossip", "--without-mingle", "-n", f"test-{os.getpid()}@%h"]
        if self.beat:
            command += ["--beat", "--schedule", str(self.log_path.with_suffix(".schedule"))]
        command += self.args
        offset = self.log_path.stat().st_size if self.log_path.exists() else 0
        log = self.log_path.open("ab")
        self.popen = subprocess.Popen(command, cwd=ROOT, env={**os.environ, **_test_database_env(), **self.env},
                                      stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.popen.poll() is not None:
                raise RuntimeError(f"worker exited with {self.popen.returncode}:\n{self.log()[-3000:]}")
            if " ready." in self.log_path.read_text(errors="replace")[offset:]:
                return self
            time.sleep(0.1)
        raise RuntimeError(f"worker not ready after {timeout} s:\n{self.log()[-3000:]}")

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def kill(self) -> None:
        """SIGKILL the worker and its pool: what a crash or an OOM kill looks like."""
        if self.popen and self.popen.poll() is None:
            os.killpg(self.popen.pid, signal.SIGKILL)
            self.popen.wait(10)

    def stop(self) -> None:
        if self.popen and self.popen.poll() is None:
            os.killpg(self.popen.pid, signal.SIGTERM)
            try:
                self.popen.wait(3)  # tests have nothing left to finish; do not wait for a slow shutdown
            except subprocess.TimeoutExpired:
                self.kill()


def _test_database_env() -> dict[str, str]:
    """Point a subprocess at the database the tests use (test_<name>, or the SQLite test file)."""
    db = settings.DATABASES["default"]
    if db["ENGINE"] == "django.db.backends.sqlite3":
        return {"DATABASE_URL": f"sqlite:///{db['NAME']}", "SECRET_KEY": settings.SECRET_KEY}
    user = db.get("USER") or ""
    password = f":{db['PASSWORD']}" if db.get("PASSWORD") else ""
    auth = f"{user}{password}@" if user else ""
    url = f"postgres://{auth}{db.get('HOST') or '127.0.0.1'}:{db.get('PORT') or 5432}/{db['NAME']}"
    return {"DATABASE_URL": url, "SECRET_KEY": settings.SECRET_KEY}


@pytest.fixture(autouse=True)
def worker_keeps_to_its_tests(request: pytest.FixtureRequest) -> Iterator[None]:
    """The session's worker is shared, so a committed test's work must not outlive the test.

    A test that commits but does not ask for the worker publishes to a queue nobody reads; otherwise the
    worker would run that test's executions while the test's tables are being truncated (a deadlock). A
    test that does use the worker waits, before its tables are truncated, for the worker's last
    transaction (a webhook delivery, a notification) to end.
    """
    marker = request.node.get_closest_marker("django_db")
    committed = bool({"transactional_db", "live_server"} & set(request.fixturenames)) or bool(
        marker and marker.kwargs.get("transaction"))
    uses_worker = "worker" in request.fixturenames
    if committed and not uses_worker and "start_worker" not in request.fixturenames:
        overrides = request.getfixturevalue("settings")
        overrides.CELERY_TASK_DEFAULT_QUEUE = f"{os.environ['HEPTORA_QUEUE']}-unread"
    yield
    if committed and uses_worker:
        _wait_until_other_transactions_end()


def _wait_until_other_transactions_end(timeout: float = 10) -> None:
    from django.db import connection

    if connection.vendor != "postgresql":
        return  # SQLite serialises writers itself: the truncation just waits for the lock
    deadline = time.monotonic() + timeout
    with connection.cursor() as cursor:
        while time.monotonic() < deadline:
            cursor.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                "AND pid <> pg_backend_pid() AND backend_type = 'client backend' "
                "AND state IN ('active', 'idle in transaction')"
            )
            if cursor.fetchone()[0] == 0:
                return
            time.sleep(0.05)


@pytest.fixture(scope="session")
def worker(django_db_setup: None, tmp_path_factory: pytest.TempPathFactory) -> Iterator[WorkerProcess]:
    """One real worker for the session. Tests that use it need committed data: mark them transaction=True."""
    process = WorkerProcess(tmp_path_factory.mktemp("worker") / "worker.log").start()
    yield process
    process.stop()


@pytest.fixture
def subprocess_env(django_db_setup: None) -> dict[str, str]:
    """Environment for a manage.py subprocess that shares this test database."""
    return {**os.environ, **_test_database_env()}


@pytest.fixture
def start_worker(django_db_setup: None, tmp_path: Path, settings: Any) -> Iterator[Callable[..., WorkerProcess]]:
    """Start extra workers (with beat, or killed mid-run) that are stopped after the test.

    They and this test use a queue of their own, so the session's worker cannot take their executions.
    """
    started: list[WorkerProcess] = []
    queue = f"{os.environ['HEPTORA_QUEUE']}-{tmp_path.name}"
    settings.CELERY_TASK_DEFAULT_QUEUE = queue

    def start(**kwargs: Any) -> WorkerProcess:
        env = {"HEPTORA_QUEUE": queue, **kwargs.pop("env", {})}
        process = WorkerProcess(tmp_path / "worker.log", env=env, **kwargs).start()
        started.append(process)
        return process

    yield start
    for process in started:
        process.stop()


def wait_for(execution: Execution, predicate: Callable[[Execution], bool], timeout: float = 30) -> Execution:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        execution.refresh_from_db()
        if predicate(execution):
            return execution
        time.sleep(0.05)
    events = "\n".join(e.message for e in execution.events.all())
    raise AssertionError(f"{execution.public_id} still {execution.status} after {timeout} s; events:\n{events}")


def wait_for_status(execution: Execution, *statuses: str, timeout: float = 30) -> Execution:
    return wait_for(execution, lambda e: e.status in statuses, timeout)


# --- A real browser -------------------------------------------------------------------------------------
# Debian's Chromium driven by Playwright's Python API; never a downloaded browser (.ci/run installs the
# package). Tests that use it FAIL when it is missing.

CHROMIUM = "/usr/bin/chromium"
os.environ.setdefault("PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD", "1")


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    """One headless Chromium for the whole session."""
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: install Debian's chromium package (.ci/run does).")
    # Playwright's sync API runs an event loop in this thread; the tests' own ORM calls are still synchronous.
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"]
        )
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser: Any, live_server: Any) -> Iterator[Any]:
    context = browser.new_context(base_url=live_server.url, viewport={"width": 900, "height": 1100})
    context.set_default_timeout(15_000)
    tab = context.new_page()
    yield tab
    context.close()
