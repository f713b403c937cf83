"""The README's first Quick start command, run the way a new user runs it, on the embedded default."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def get(url: str) -> tuple[int, str]:
    with urllib.request.urlopen(url, timeout=5) as response:
        return response.status, response.read().decode()


def test_dev_up_serves_admin_and_runs_a_demo_order_to_success(tmp_path: Path) -> None:
    port = free_port()
    # A new user's environment: no database or broker configured, so the embedded default applies.
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL", "HEPTORA_PROCESS_MODULES")}
    env.update(HEPTORA_VAR_DIR=str(tmp_path / "var"), HEPTORA_BIND=f"127.0.0.1:{port}", HEPTORA_QUEUE="heptora",
               HEPTORA_DEMO_STEP_DELAY="0.05")
    log = (tmp_path / "up.log").open("wb")
    up = subprocess.Popen([str(ROOT / "dev"), "up"], cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
                          start_new_session=True)
    try:
        deadline = time.monotonic() + 120
        while True:
            assert up.poll() is None, (tmp_path / "up.log").read_text()
            try:
                if get(f"http://127.0.0.1:{port}/health/") == (200, '{"status": "ok"}'):
                    break
            except OSError:
                pass
            assert time.monotonic() < deadline, (tmp_path / "up.log").read_text()
            time.sleep(0.5)
        output = (tmp_path / "up.log").read_text()
        assert f"Admin:  http://127.0.0.1:{port}/admin/   (user admin, password heptora-demo)" in output

        status, page = get(f"http://127.0.0.1:{port}/admin/login/")
        assert status == 200 and "Heptora" in page
        assert get(f"http://127.0.0.1:{port}/static/admin/css/base.css")[0] == 200

        run = subprocess.run(
            [sys.executable, "manage.py", "run_process", "order-processing", "--param", "orderId=ORD-2024-001",
             "--param", "priority=High", "--wait", "--json"],
            cwd=ROOT, env=env, capture_output=True, text=True, timeout=120,
        )
        assert run.returncode == 0, run.stderr
        execution = json.loads(run.stdout)
        assert execution["status"] == "success"
        assert execution["result"]["orderId"] == "ORD-2024-001"
        assert "Step 5/5: Sending confirmation" in run.stderr
    finally:
        os.killpg(up.pid, signal.SIGTERM)
        try:
            up.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(up.pid, signal.SIGKILL)
