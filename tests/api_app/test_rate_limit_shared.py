"""One API key's rate limit is one budget, however many web processes serve it.

Production runs N gunicorn processes behind a load balancer; an integrator allowed 10 requests a minute
must get 10, not 10 per process. The counters live in the shared cache: Redis on the production stack, the
database cache on the embedded default, so this test means the same on both. Two real gunicorn servers
on the test database and the run's cache share one key's budget: requests alternate between them, the
first 10 pass, the rest are refused with 429 and Retry-After, and RateLimit-Remaining counts down across
both servers.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from email.message import Message
from pathlib import Path

import pytest
from django.conf import settings
from django.contrib.auth.models import User

from api_app.api_keys import api_key_create
from api_app.throttling import WINDOW_SECONDS
from tests.conftest import PASSWORD, ROOT

pytestmark = pytest.mark.django_db(transaction=True)  # the servers must see the key: committed data

LIMIT = 10
REQUESTS_PER_SERVER = 6
WINDOW_MARGIN = 10  # seconds the burst may take before the minute window rolls over and refills the budget


# --- Two web processes ----------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass(frozen=True)
class Answer:
    server: str
    status: int
    headers: Message
    body: dict

    @property
    def remaining(self) -> int:
        return int(self.headers["RateLimit-Remaining"])


def get(url: str, *, key: str | None = None) -> tuple[int, Message, dict]:
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {key}"} if key else {})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.headers, json.loads(response.read() or b"{}")
    except urllib.error.HTTPError as error:
        with error:
            return error.code, error.headers, json.loads(error.read() or b"{}")


class WebServer:
    """`gunicorn heptora.wsgi`, one process, on the test database and the run's cache."""

    def __init__(self, name: str, log_path: Path, env: dict[str, str]) -> None:
        self.name = name
        self.port = free_port()
        self.log_path = log_path
        self.env = env
        self.popen: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 60) -> WebServer:
        command = [sys.executable, "-m", "gunicorn", "heptora.wsgi", "--bind", f"127.0.0.1:{self.port}",
                   "--workers", "1", "--no-control-socket", "--access-logfile", "-"]
        with self.log_path.open("ab") as log:
            self.popen = subprocess.Popen(command, cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT,
                                          start_new_session=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.popen.poll() is not None:
                raise RuntimeError(f"{self.name} exited with {self.popen.returncode}:\n{self.log()[-3000:]}")
            try:
                if get(f"{self.url}/health/")[0] == 200:
                    # Load the API code before the measured requests (anonymous calls are not counted).
                    get(f"{self.url}/api/v1/me")
                    return self
            except OSError:
                pass
            time.sleep(0.2)
        raise RuntimeError(f"{self.name} not ready after {timeout} s:\n{self.log()[-3000:]}")

    def get(self, path: str, *, key: str) -> Answer:
        status, headers, body = get(f"{self.url}{path}", key=key)
        return Answer(server=self.name, status=status, headers=headers, body=body)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def stop(self) -> None:
        if self.popen and self.popen.poll() is None:
            os.killpg(self.popen.pid, signal.SIGTERM)
            try:
                self.popen.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(self.popen.pid, signal.SIGKILL)
                self.popen.wait(10)


def window_with_time_left(margin: float) -> int:
    """The current rate-limit window, once at least ``margin`` seconds of it are left (waiting if need be)."""
    left = WINDOW_SECONDS - time.time() % WINDOW_SECONDS
    if left < margin:
        time.sleep(left + 0.2)
    return int(time.time() // WINDOW_SECONDS)


# --- Fixtures -------------------------------------------------------------------------------------------


@pytest.fixture
def shared_env(subprocess_env: dict[str, str]) -> dict[str, str]:
    """The test database, and the very cache this run uses: the same Redis database and key prefix."""
    env = {**subprocess_env, "HEPTORA_CACHE_PREFIX": os.environ["HEPTORA_CACHE_PREFIX"], "LOG_LEVEL": "WARNING"}
    if settings.CACHES["default"]["BACKEND"].endswith("RedisCache"):
        env["REDIS_URL"] = os.environ["REDIS_URL"]
    return env


@pytest.fixture
def integrator(db: None) -> User:
    return User.objects.create_user("ivan", "ivan@example.com", PASSWORD)


# --- The story ------------------------------------------------------------------------------------------


def test_two_web_processes_share_one_keys_budget_of_10_requests_a_minute(
    integrator: User, shared_env: dict[str, str], tmp_path: Path
) -> None:
    # Given an integration key allowed 10 requests a minute, and two web processes sharing the cache
    _row, key = api_key_create(user=integrator, name="Shop orders", rate_limit_per_minute=LIMIT)
    servers = [WebServer(name, tmp_path / f"{name}.log", shared_env) for name in ("web-1", "web-2")]
    try:
        for server in servers:
            server.start()

        # When the integration sends 6 requests to each, alternately, within one minute window
        window = window_with_time_left(WINDOW_MARGIN)
        answers = [server.get("/api/v1/me", key=key) for _ in range(REQUESTS_PER_SERVER) for server in servers]
        assert int(time.time() // WINDOW_SECONDS) == window, "the burst outlasted its minute window"

        # Then the first 10, 5 on each server, pass and the other 2 are refused: one budget, not one per process
        statuses = [(a.server, a.status) for a in answers]
        assert statuses == [(server.name, 200) for _ in range(LIMIT // 2) for server in servers] + [
            ("web-1", 429), ("web-2", 429)
        ], "\n".join([str(statuses)] + [server.log()[-2000:] for server in servers])
        # RateLimit-Remaining counts down across both servers, each one seeing the other's requests
        assert [a.remaining for a in answers] == [9, 8, 7, 6, 5, 4, 3, 2, 1, 0, 0, 0]
        assert {a.headers["RateLimit-Limit"] for a in answers} == {"10"}
        resets = {int(a.headers["RateLimit-Reset"]) for a in answers}
        assert all(1 <= reset <= WINDOW_SECONDS for reset in resets), resets
        for answer in answers[:LIMIT]:
            assert answer.headers["Retry-After"] is None
            assert answer.body["user"] == "ivan"
        for answer in answers[LIMIT:]:
            assert answer.headers["Retry-After"] == answer.headers["RateLimit-Reset"]
            assert 1 <= int(answer.headers["Retry-After"]) <= WINDOW_SECONDS
            assert answer.body["error"]["code"] == "rate_limited"
            assert answer.body["error"]["message"] == (
                f"Rate limit of 10 requests per minute exceeded; retry in {answer.headers['Retry-After']} s.")
    finally:
        for server in servers:
            server.stop()
