"""Heptora API benchmark: start the production stack on this machine, load it on 127.0.0.1, report.

Run it with ``bench/run.sh`` (which installs wrk when it is missing and cleans up on any exit); see
docs/benchmarks.md for what is measured and why. In one run, each figure the median of 3 rounds:

1. requests/s, p50 and p99 at 16 connections of
   * ``POST /bench/bare``: a bare DRF POST authenticated with the same API key (the floor),
   * ``POST /bench/nopublish/processes/order-processing/execute``: the execute path without the broker
     publish (see bench/views.py),
   * ``POST /api/v1/processes/order-processing/execute`` with the worker's consumer paused (web path only,
     publish included), and with the worker consuming on the same cores (production on one machine);
2. enqueue-to-start latency (Execution.created_at → started_at, read from the database) at ~20 and ~200
   executions/s through the execute endpoint, with the trivial ``bench-noop`` process;
3. worker drain rate for a backlog of N ``bench-noop`` executions (and of N/5 demo orders).

Everything it starts (gunicorn, a Celery worker) is stopped at the end, the dedicated database is dropped
and the dedicated Redis database flushed. Every load loop is bounded in requests and in seconds, and only
loopback addresses are ever targeted.
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import datetime as dt
import json
import os
import platform
import re
import secrets
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
import urllib.request
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench import loadgen  # noqa: E402

VENV_BIN = Path(sys.executable).parent
DOC = ROOT / "docs" / "benchmarks.md"
BEGIN, END = "<!-- bench:results:begin -->", "<!-- bench:results:end -->"
ORDER = {"parameters": {"orderId": "ORD-2024-001", "priority": "High", "customerName": "Ada Lovelace",
                        "amount": 129.99, "emailNotification": True, "email": "ada@example.com",
                        "metadata": {"channel": "shop"}}}
EXECUTE_PATH = "/api/v1/processes/order-processing/execute"
GOALS = {"ratio": 0.25, "execute_p99_ms": 100.0, "start_p50_ms": 5.0, "start_p99_ms": 15.0}


def log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", flush=True)


@dataclass
class Config:
    pg_url: str
    db_name: str
    redis_url: str
    rounds: int
    duration: float
    warmup: float
    connections: int
    rates: list[float]
    rate_seconds: float
    drain_n: int
    web_workers: int
    web_threads: int
    worker_connections: int
    worker_concurrency: int
    worker_nice: int
    write_docs: bool
    profile_seconds: float
    keep_db: bool
    budget_seconds: float
    wait_quiet: float
    out_dir: Path

    @property
    def database_url(self) -> str:
        return f"{self.pg_url.rstrip('/')}/{self.db_name}"


@dataclass
class Load:
    name: str
    rps: float
    p50_ms: float
    p99_ms: float
    requests: int
    errors: int
    generator: str
    split: str = ""


@dataclass
class Report:
    started: str = ""
    machine: dict[str, str] = field(default_factory=dict)
    setup: dict[str, Any] = field(default_factory=dict)
    throughput: dict[str, dict[str, Any]] = field(default_factory=dict)
    start_latency: list[dict[str, Any]] = field(default_factory=list)
    drain: list[dict[str, Any]] = field(default_factory=list)
    profile: dict[str, Any] = field(default_factory=dict)
    goals: list[dict[str, Any]] = field(default_factory=list)
    wall_seconds: float = 0.0


# --- The stack ------------------------------------------------------------------------------------------


class Stack:
    """gunicorn and one Celery worker, each in its own process group, stopped by :meth:`stop`."""

    def __init__(self, cfg: Config, env: dict[str, str]) -> None:
        self.cfg, self.env = cfg, env
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        self.port = _free_port()
        self.worker_node = f"bench-{os.getpid()}@{socket.gethostname()}"
        self.pgid_file = cfg.out_dir / "pgids"

    def _spawn(self, name: str, command: list[str]) -> subprocess.Popen[bytes]:
        log_file = (self.cfg.out_dir / f"{name}.log").open("ab")
        proc = subprocess.Popen(command, cwd=ROOT, env=self.env, stdout=log_file, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, start_new_session=True)
        self.procs[name] = proc
        with self.pgid_file.open("a") as f:  # bench/run.sh's trap kills these groups if we die hard
            f.write(f"{proc.pid}\n")
        return proc

    def start_web(self) -> None:
        # The Procfile's web line, on a free loopback port.
        self._spawn("gunicorn", [str(VENV_BIN / "gunicorn"), "heptora.wsgi", "--bind", f"127.0.0.1:{self.port}",
                                 "--workers", str(self.cfg.web_workers), "--threads", str(self.cfg.web_threads),
                                 "--access-logfile", "-",
                                 *(["--worker-connections", str(self.cfg.worker_connections)]
                                   if self.cfg.worker_connections and self.cfg.web_threads > 1 else [])])
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            self._check_alive("gunicorn")
            with contextlib.suppress(OSError), urllib.request.urlopen(
                    f"http://127.0.0.1:{self.port}/health/", timeout=2) as answer:
                if answer.status == 200:
                    return
            time.sleep(0.3)
        raise RuntimeError("gunicorn did not answer /health/ within 60 s; see " + str(self.cfg.out_dir))

    def start_worker(self) -> None:
        # The Procfile's worker line (prefork pool, the configured concurrency), with a name we can address.
        log_path = self.cfg.out_dir / "worker.log"
        offset = log_path.stat().st_size if log_path.exists() else 0
        nice = ["nice", "-n", str(self.cfg.worker_nice)] if self.cfg.worker_nice else []
        worker = self._spawn("worker", [*nice, str(VENV_BIN / "celery"), "-A", "heptora", "worker", "--loglevel",
                                        "INFO", "--concurrency", str(self.cfg.worker_concurrency),
                                        "-n", self.worker_node])
        if self.cfg.worker_nice:
            # Each component runs in a session of its own, and with the kernel's autogroup scheduling (on
            # here) a process's nice value only counts inside its session: the session's own weight is set
            # through /proc/<pid>/autogroup. (Under systemd the same knob is the unit's CPUWeight=.)
            with contextlib.suppress(OSError):
                Path(f"/proc/{worker.pid}/autogroup").write_text(str(self.cfg.worker_nice))
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            self._check_alive("worker")
            if " ready." in log_path.read_text(errors="replace")[offset:]:
                return
            time.sleep(0.2)
        raise RuntimeError(f"the Celery worker was not ready within 60 s; see {log_path}")

    def _check_alive(self, name: str) -> None:
        proc = self.procs[name]
        if proc.poll() is not None:
            raise RuntimeError(f"{name} exited with {proc.returncode}; see {self.cfg.out_dir / (name + '.log')}")

    def pid(self, name: str) -> int:
        return self.procs[name].pid

    def stop(self) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGTERM)
        deadline = time.monotonic() + 15
        for name, proc in self.procs.items():
            try:
                proc.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                log(f"{name} did not stop on SIGTERM; killing it")
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(5)
        # Pool processes of the worker share its group; make sure none outlived their parent.
        for proc in self.procs.values():
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, signal.SIGKILL)
        self.procs.clear()
        with contextlib.suppress(FileNotFoundError):
            self.pgid_file.unlink()


    def connection_split(self) -> list[int]:
        """Established client connections held by each gunicorn worker process, largest first."""
        established = set()
        for table in ("/proc/net/tcp", "/proc/net/tcp6"):
            with contextlib.suppress(OSError):
                for line in Path(table).read_text().splitlines()[1:]:
                    parts = line.split()
                    if parts[3] == "01" and int(parts[1].rsplit(":", 1)[1], 16) == self.port:
                        established.add(parts[9])
        master = self.pid("gunicorn")
        counts = []
        with contextlib.suppress(OSError):
            for child in Path(f"/proc/{master}/task/{master}/children").read_text().split():
                n = 0
                for fd in Path(f"/proc/{child}/fd").iterdir():
                    with contextlib.suppress(OSError):
                        target = os.readlink(fd)
                        n += target.startswith("socket:[") and target[8:-1] in established
                counts.append(n)
        return sorted(counts, reverse=True)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# --- Database, Redis, Django ----------------------------------------------------------------------------


def admin_sql(cfg: Config, *statements: str) -> None:
    import psycopg

    with psycopg.connect(f"{cfg.pg_url.rstrip('/')}/postgres", autocommit=True, connect_timeout=5) as conn:
        for statement in statements:
            conn.execute(statement)


def redis_client(cfg: Config) -> Any:
    import redis

    return redis.Redis.from_url(cfg.redis_url, socket_timeout=5)


def manage(env: dict[str, str], *args: str) -> str:
    done = subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=300)
    if done.returncode:
        raise RuntimeError(f"manage.py {' '.join(args)} failed:\n{done.stdout}\n{done.stderr}")
    return done.stdout


def setup_django(env: dict[str, str]) -> None:
    os.environ.update(env)
    import django

    django.setup()


def create_api_key() -> str:
    """A key for the demo 'integrator' (the user API integrations act as) with a limit the load never hits."""
    from django.contrib.auth import get_user_model
    from guardian.shortcuts import assign_perm

    from api_app import api_keys
    from executions.models import Process

    user = get_user_model().objects.get(username="integrator")
    assign_perm("executions.execute_process", user, Process.objects.get(slug="bench-noop"))
    _key, full_key = api_keys.api_key_create(user=user, name="benchmark",
                                             rate_limit_per_minute=api_keys.MAX_RATE_LIMIT)
    return full_key


# --- Worker control -------------------------------------------------------------------------------------


class Queue:
    def __init__(self, cfg: Config, stack: Stack) -> None:
        from django.conf import settings

        from heptora.celery import app

        self.app, self.stack, self.name = app, stack, settings.CELERY_TASK_DEFAULT_QUEUE
        self.redis = redis_client(cfg)

    def consume(self, on: bool) -> None:
        control = self.app.control.add_consumer if on else self.app.control.cancel_consumer
        replies = control(self.name, destination=[self.stack.worker_node], reply=True, timeout=5)
        if not replies:
            raise RuntimeError(f"the worker did not answer {'add' if on else 'cancel'}_consumer")

    def purge(self) -> None:
        with self.app.connection_for_write() as conn:
            conn.default_channel.queue_purge(self.name)

    def length(self) -> int:
        return int(self.redis.llen(self.name))

    def wait_idle(self, timeout: float = 60) -> bool:
        """Until the queue is empty and no execution runs (bounded)."""
        from executions.models import Execution

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.length() == 0 and not Execution.objects.filter(status="running").exists():
                return True
            time.sleep(0.2)
        return False


# --- Load -----------------------------------------------------------------------------------------------

WRK_SCRIPT = """
wrk.method = "POST"
wrk.body = %(body)s
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = %(auth)s
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'BENCH {"requests":%%.0f,"duration_us":%%.0f,"p50_us":%%.0f,"p99_us":%%.0f,"errors":%%.0f}\\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99),
    e.status + e.connect + e.read + e.write + e.timeout))
end
"""


def _lua_string(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


class Loader:
    def __init__(self, cfg: Config, port: int, key: str) -> None:
        self.cfg, self.port, self.key = cfg, port, key
        self.wrk = shutil.which("wrk")
        self.generator = (subprocess.run([self.wrk, "-v"], capture_output=True, text=True).stdout.split("\n")[0]
                          if self.wrk else "bench/loadgen.py (asyncio, closed loop)")

    @property
    def headers(self) -> dict[str, str]:
        return {"Content-Type": "application/json", "Authorization": f"Bearer {self.key}"}

    def closed(self, name: str, path: str, body: dict[str, Any], seconds: float) -> Load:
        raw = json.dumps(body, separators=(",", ":"))
        if self.wrk:
            script = self.cfg.out_dir / f"{name}.lua"
            script.write_text(WRK_SCRIPT % {"body": _lua_string(raw), "auth": _lua_string(f"Bearer {self.key}")})
            threads = min(2, self.cfg.connections)
            done = subprocess.run(
                [self.wrk, "-t", str(threads), "-c", str(self.cfg.connections), "-d", f"{max(1, round(seconds))}s",
                 "--timeout", "10s", "-s", str(script), f"http://127.0.0.1:{self.port}{path}"],
                capture_output=True, text=True, timeout=seconds + 30,
            )
            match = re.search(r"^BENCH (\{.*\})$", done.stdout, re.M)
            if done.returncode or not match:
                raise RuntimeError(f"wrk failed:\n{done.stdout}\n{done.stderr}")
            data = json.loads(match[1])
            return Load(name, data["requests"] / (data["duration_us"] / 1e6), data["p50_us"] / 1000,
                        data["p99_us"] / 1000, int(data["requests"]), int(data["errors"]), "wrk")
        summary = loadgen.closed_loop(host="127.0.0.1", port=self.port, path=path, headers=self.headers,
                                      body=raw.encode(), connections=self.cfg.connections, duration=seconds)
        bad = sum(n for status, n in summary.statuses.items() if status >= 400) + summary.errors
        return Load(name, summary.rps, loadgen.percentile(summary.latencies_ms, 50),
                    loadgen.percentile(summary.latencies_ms, 99), summary.requests, bad, "loadgen")

    def probe(self, path: str, body: dict[str, Any], expect: int) -> dict[str, Any]:
        request = urllib.request.Request(f"http://127.0.0.1:{self.port}{path}", method="POST",
                                         data=json.dumps(body).encode(), headers=self.headers)
        try:
            with urllib.request.urlopen(request, timeout=10) as answer:
                status, payload = answer.status, answer.read()
        except urllib.error.HTTPError as exc:
            status, payload = exc.code, exc.read()
        if status != expect:
            raise RuntimeError(f"POST {path} answered {status}, expected {expect}: {payload[:500]!r}")
        return json.loads(payload)


# --- Phases ---------------------------------------------------------------------------------------------

VARIANTS = [
    ("bare", "/bench/bare", "bare authenticated DRF POST (same API key)", None),
    ("nopublish", "/bench/nopublish/processes/order-processing/execute",
     "execute without the broker publish", False),
    ("execute_paused", EXECUTE_PATH, "execute, worker consumer paused (web path + publish)", False),
    ("execute", EXECUTE_PATH, "execute, worker consuming on the same 2 cores", True),
]


def phase_throughput(cfg: Config, loader: Loader, queue: Queue, stack: Stack, report: Report) -> None:
    loader.probe("/bench/bare", ORDER, 200)
    loader.probe("/bench/nopublish/processes/order-processing/execute", ORDER, 202)
    loader.probe(EXECUTE_PATH, ORDER, 202)
    runs: dict[str, list[Load]] = collections.defaultdict(list)
    consuming = True
    for round_no in range(1, cfg.rounds + 1):
        for key, path, _label, consume in VARIANTS:
            if consume is not None and consume != consuming:
                queue.consume(consume)
                consuming = consume
            if round_no == 1 and cfg.warmup:
                loader.closed(f"{key}-warmup", path, ORDER, cfg.warmup)
            splits: list[list[int]] = []
            probe = threading.Timer(min(2.0, cfg.duration / 2), lambda found=splits: found.append(
                stack.connection_split()))
            probe.start()
            load = loader.closed(key, path, ORDER, cfg.duration)
            probe.join()
            load.split = "/".join(map(str, splits[0])) if splits and splits[0] else "?"
            runs[key].append(load)
            log(f"round {round_no} {key:15s} {load.rps:7.1f} req/s  p50 {load.p50_ms:6.1f} ms  "
                f"p99 {load.p99_ms:6.1f} ms  ({load.requests} requests, {load.errors} errors, "
                f"connections per web worker {load.split})")
            if key.startswith("execute"):
                # Start every load from an empty queue: throw away what this one left (rows stay queued).
                queue.purge()
                if consuming and not queue.wait_idle(30):
                    log("warning: the worker did not go idle within 30 s")
    if not consuming:
        queue.purge()
        queue.consume(True)
    for key, _path, label, _consume in VARIANTS:
        loads = runs[key]
        report.throughput[key] = {
            "label": label,
            "rps": statistics.median(x.rps for x in loads),
            "p50_ms": statistics.median(x.p50_ms for x in loads),
            "p99_ms": statistics.median(x.p99_ms for x in loads),
            "rounds_rps": [round(x.rps, 1) for x in loads],
            "rounds_p99_ms": [round(x.p99_ms, 1) for x in loads],
            "splits": [x.split for x in loads],
            "requests": sum(x.requests for x in loads),
            "errors": sum(x.errors for x in loads),
            "generator": loads[0].generator,
        }


def phase_start_latency(cfg: Config, loader: Loader, queue: Queue, report: Report) -> None:
    from executions.models import Execution

    path = "/api/v1/processes/bench-noop/execute"
    loader.probe(path, {"parameters": {"n": 0}}, 202)
    for rate in cfg.rates:
        per_round: list[dict[str, Any]] = []
        for round_no in range(1, cfg.rounds + 1):
            queue.wait_idle(30)
            count = max(20, int(rate * cfg.rate_seconds))
            summary = loadgen.open_loop(
                host="127.0.0.1", port=loader.port, path=path, headers=loader.headers,
                body_for=lambda i: loadgen.json_body({"parameters": {"n": i}}),
                rate=rate, count=count, deadline=cfg.rate_seconds * 2 + 5, max_in_flight=64,
            )
            ids = []
            for result in summary.results:
                if result.status == 202:
                    ids.append(json.loads(result.body)["executionId"])
            queue.wait_idle(60)
            rows = list(Execution.objects.filter(public_id__in=ids).values_list("created_at", "started_at"))
            started = [(s - c).total_seconds() * 1000 for c, s in rows if s is not None]
            row = {
                "rate": rate, "round": round_no, "sent": summary.requests, "accepted": len(ids),
                "achieved_rate": summary.rps, "api_p50_ms": loadgen.percentile(summary.latencies_ms, 50),
                "api_p99_ms": loadgen.percentile(summary.latencies_ms, 99),
                "client_lag_p99_ms": loadgen.percentile([r.lag * 1000 for r in summary.results], 99),
                "started": len(started), "start_p50_ms": loadgen.percentile(started, 50),
                "start_p99_ms": loadgen.percentile(started, 99), "start_max_ms": max(started, default=float("nan")),
            }
            per_round.append(row)
            log(f"~{rate:g}/s round {round_no}: achieved {row['achieved_rate']:.1f}/s, {row['accepted']} accepted, "
                f"enqueue->start p50 {row['start_p50_ms']:.1f} ms p99 {row['start_p99_ms']:.1f} ms "
                f"(API p99 {row['api_p99_ms']:.1f} ms)")
        med = {k: statistics.median(r[k] for r in per_round) for k in per_round[0] if k not in ("rate", "round")}
        report.start_latency.append({"rate": rate, **med, "rounds_start_p99_ms": [round(r["start_p99_ms"], 1)
                                                                                   for r in per_round]})


def phase_drain(cfg: Config, loader: Loader, queue: Queue, report: Report) -> None:
    from django.conf import settings

    from executions.models import Execution

    cap = settings.HEPTORA_API_BATCH_MAX
    cases = [("bench-noop", cfg.drain_n, lambda i: {"parameters": {"n": i}}),
             ("order-processing", max(1, cfg.drain_n // 5), lambda i: dict(ORDER))]
    for process_id, n, body in cases:
        queue.wait_idle(60)
        queue.consume(False)
        ids: list[str] = []
        for start in range(0, n, cap):
            items = [body(i) for i in range(start, min(n, start + cap))]
            answer = loader.probe(f"/api/v1/processes/{process_id}/execute/batch", {"items": items}, 202)
            ids += [item["executionId"] for item in answer["items"] if "executionId" in item]
        deadline = time.monotonic() + 10
        while queue.length() < len(ids) and time.monotonic() < deadline:  # published on commit
            time.sleep(0.05)
        backlog = queue.length()
        began = time.monotonic()
        queue.consume(True)
        deadline = began + 180
        pending = Execution.objects.filter(public_id__in=ids).exclude(status__in=["success", "failed"])
        while pending.exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        wall = time.monotonic() - began
        rows = Execution.objects.filter(public_id__in=ids)
        done = rows.filter(status="success").count()
        first = min(r for r in rows.values_list("started_at", flat=True) if r)
        last = max(r for r in rows.values_list("finished_at", flat=True) if r)
        span = (last - first).total_seconds()
        entry = {"process": process_id, "n": len(ids), "backlog_seen": backlog, "succeeded": done,
                 "rate": done / span if span else float("nan"), "wall_s": wall, "span_s": span}
        report.drain.append(entry)
        log(f"drain {process_id}: {done}/{len(ids)} succeeded, {entry['rate']:.1f} executions/s "
            f"({span:.1f} s from the first start to the last finish)")


def cpu_ticks() -> dict[int, tuple[str, int]]:
    """CPU time (clock ticks, user + system) of every process on the machine: pid -> (command, ticks)."""
    ticks: dict[int, tuple[str, int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError, ValueError, IndexError):
            raw = stat.read_text()
            name = raw[raw.index("(") + 1:raw.rindex(")")]
            name = "kernel worker threads" if name.startswith(("kworker/", "ksoftirqd/")) else name
            fields = raw[raw.rindex(")") + 2:].split()
            ticks[int(stat.parent.name)] = (name, int(fields[11]) + int(fields[12]))  # utime, stime
    return ticks


def cpu_used(before: dict[int, tuple[str, int]], after: dict[int, tuple[str, int]]) -> dict[str, int]:
    """Ticks used between two snapshots, summed by command. Processes that started meanwhile count whole;
    those that ended meanwhile are lost (the load generator is counted separately, through rusage)."""
    used: collections.Counter[str] = collections.Counter()
    for pid, (name, ticks) in after.items():
        old = before.get(pid)
        used[name] += ticks - (old[1] if old and old[0] == name else 0)
    return dict(used)


def phase_cpu_split(cfg: Config, loader: Loader, report: Report) -> None:
    """Where the machine's CPU goes while execute is loaded (worker consuming): every process's CPU time,
    summed by command name (gunicorn, celery, postgres, redis-server, kernel threads), plus the load
    generator's (a child of this process), per execute request. No profiler runs meanwhile."""
    import resource

    seconds = max(3.0, cfg.duration)
    children0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    before, stat0 = cpu_ticks(), _proc_stat()
    load = loader.closed("execute-cpu", EXECUTE_PATH, ORDER, seconds)
    after, stat1 = cpu_ticks(), _proc_stat()
    children1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    hz = os.sysconf("SC_CLK_TCK")
    used = {name: ticks / hz for name, ticks in cpu_used(before, after).items()}
    used["load generator (wrk)" if loader.wrk else "load generator"] = (
        children1.ru_utime + children1.ru_stime - children0.ru_utime - children0.ru_stime)
    used = {k: v for k, v in used.items() if v > 0}
    delta = [b - a for a, b in zip(stat0, stat1, strict=True)]
    all_ticks = sum(delta[:8]) or 1
    idle_pct, steal_pct = 100 * (delta[3] + delta[4]) / all_ticks, 100 * delta[7] / all_ticks
    total = sum(used.values()) or 1
    rows = [{"process": name, "share": 100 * v / total, "ms_per_request": 1000 * v / max(1, load.requests)}
            for name, v in sorted(used.items(), key=lambda item: -item[1]) if 100 * v / total >= 1]
    report.profile.update({"rps_while_measured": load.rps, "cpu_split": rows, "idle_pct": idle_pct,
                           "steal_pct": steal_pct, "cpu_ms_per_request_total": 1000 * total / max(1, load.requests)})
    log(f"CPU while loading execute at {load.rps:.0f} req/s (idle {idle_pct:.0f}%, steal {steal_pct:.0f}%): "
        + ", ".join(f"{r['process']} {r['ms_per_request']:.2f} ms" for r in rows))


def _proc_stat() -> list[int]:
    return [int(x) for x in Path("/proc/stat").read_text().split("\n")[0].split()[1:]]


def phase_profile(cfg: Config, loader: Loader, stack: Stack, report: Report) -> None:
    """py-spy samples every gunicorn process while the execute endpoint is loaded (consumer running)."""
    py_spy = shutil.which("py-spy", path=f"{VENV_BIN}:{os.environ.get('PATH', '')}")
    if not py_spy:
        log("py-spy is not installed (pip install -r requirements/dev.txt); skipping the profile")
        return
    folded = cfg.out_dir / "execute-profile.folded"
    folded.unlink(missing_ok=True)
    seconds = cfg.profile_seconds
    spy = subprocess.Popen([py_spy, "record", "--pid", str(stack.pid("gunicorn")), "--subprocesses",
                            "--rate", "250", "--nonblocking", "--duration", f"{seconds:g}", "--format", "raw",
                            "--output", str(folded)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        time.sleep(1)
        load = loader.closed("execute-profiled", EXECUTE_PATH, ORDER, seconds - 2)
        spy.wait(seconds + 30)
    finally:
        if spy.poll() is None:
            spy.terminate()
            spy.wait(10)
    if not folded.exists():
        log(f"py-spy wrote no profile: {spy.stderr.read().decode()[-500:] if spy.stderr else ''}")
        return
    summary = summarize_folded(folded.read_text())
    report.profile.update({"rps_while_sampled": load.rps, "file": str(folded.relative_to(ROOT)), **summary})
    log(f"profile: {summary['samples']} samples in request threads; largest shares:")
    for row in summary["buckets"]:
        log(f"  {row['share']:5.1f}%  {row['bucket']}")


# What each inclusive share is reported under: (label, regular expression over a frame "func (file:line)").
PROFILE_BUCKETS = [
    ("whole request (WSGIHandler.__call__)", r"(?:^|\.)__call__ \(django/core/handlers/wsgi\.py"),
    ("API key authentication (api_keys.authenticate)", r"(?:^|\.)authenticate \(api_app/api_keys\.py"),
    ("  cached key row read (_verified_row)", r"(?:^|\.)_verified_row \(api_app/api_keys\.py"),
    ("  usage counter (_count_use)", r"(?:^|\.)_count_use \(api_app/api_keys\.py"),
    ("rate limit (rate_limit_take)", r"(?:^|\.)rate_limit_take \(api_app/throttling\.py"),
    ("body serializer (_validated)", r"(?:^|\.)_validated \(api_app/views/processes\.py"),
    ("launch path (execution_start)", r"(?:^|\.)execution_start \(executions/services\.py"),
    ("  resolve process (process_resolve)", r"(?:^|\.)process_resolve \(executions/services\.py"),
    ("  permission check (process_can_execute)", r"(?:^|\.)process_can_execute \(executions/access\.py"),
    ("  parameters (launch_plan)", r"(?:^|\.)launch_plan \(executions/services\.py"),
    ("  INSERT execution + event (_create)", r"(?:^|\.)_create \(executions/services\.py"),
    ("  commit + on-commit callbacks (atomic __exit__)", r"(?:^|\.)__exit__ \(django/db/transaction\.py"),
    ("  broker publish (execution_publish)", r"(?:^|\.)execution_publish \(executions/services\.py"),
    ("response body (accepted_body)", r"(?:^|\.)accepted_body \(api_app/views/processes\.py"),
    ("call log (api_call_record)", r"(?:^|\.)api_call_record \(api_app/calls\.py"),
    ("  ApiCall INSERT (ApiCall.objects.create)", r"(?:^|\.)create \(django/db/models/query\.py"),
    ("logging (Logger.info)", r"(?:^|\.)info \(logging/__init__\.py"),
    ("DB connection health check (close_old_connections)", r"close_old_connections|_ensure_healthy|is_usable"),
    ("gunicorn access log", r"(?:^|\.)access \(gunicorn/glogging\.py"),
    ("all database cursor execute", r"(?:^|\.)execute \(django/db/backends/utils\.py"),
    ("all Redis commands (redis client execute_command)", r"(?:^|\.)execute_command \(redis/client\.py"),
]


_WSGI = re.compile(r"(?:^|\.)__call__ \(django/core/handlers/wsgi\.py")


def _short(frame: str) -> str:
    frame = re.sub(r"\([^()]*?/site-packages/", "(", frame)
    frame = re.sub(r"\([^()]*?/lib/python3\.\d+/", "(", frame)
    return frame.replace(str(ROOT) + "/", "")


def summarize_folded(text: str) -> dict[str, Any]:
    """Inclusive shares of request-thread samples (stacks under a WSGI request) by frame and by bucket."""
    inclusive: collections.Counter[str] = collections.Counter()
    self_time: collections.Counter[str] = collections.Counter()
    total = 0
    for line in text.splitlines():
        stack, _, count = line.rpartition(" ")
        if not count.isdigit():
            continue
        frames = [_short(f) for f in stack.split(";")]
        if not any(_WSGI.search(f) for f in frames):
            continue  # idle threads, the gunicorn arbiter, accept loops
        n = int(count)
        total += n
        for frame in set(frames):
            inclusive[_strip_line(frame)] += n
        self_time[_strip_line(frames[-1])] += n
    buckets = []
    for label, pattern in PROFILE_BUCKETS:
        rx = re.compile(pattern)
        # Stacks are counted once per bucket even when the function recurses or appears twice.
        hits = 0
        for line in text.splitlines():
            stack, _, count = line.rpartition(" ")
            if not count.isdigit():
                continue
            frames = [_short(f) for f in stack.split(";")]
            if any(_WSGI.search(f) for f in frames) and any(
                    rx.search(f) for f in frames):
                hits += int(count)
        buckets.append({"bucket": label, "share": 100 * hits / total if total else 0.0})
    project = re.compile(r"\((api_app|executions|forms_app|heptora|bench)/")
    return {
        "samples": total,
        "buckets": buckets,
        "inclusive": [{"frame": f, "share": 100 * n / total} for f, n in inclusive.most_common(60)
                      if project.search(f) or "django/db" in f or "celery" in f or "kombu" in f or "redis" in f][:40],
        "self": [{"frame": f, "share": 100 * n / total} for f, n in self_time.most_common(25)],
    }


def _strip_line(frame: str) -> str:
    return re.sub(r":\d+\)$", ")", frame)


def cpu_busy(seconds: float = 2.0) -> float:
    """Percent of all cores busy over ``seconds`` (from /proc/stat): how loaded the machine already is."""
    def snapshot() -> tuple[int, int]:
        fields = [int(x) for x in Path("/proc/stat").read_text().split("\n")[0].split()[1:]]
        idle = fields[3] + fields[4]  # idle + iowait
        return sum(fields[:8]), idle

    total0, idle0 = snapshot()
    time.sleep(seconds)
    total1, idle1 = snapshot()
    return 100.0 * (1 - (idle1 - idle0) / max(1, total1 - total0))


def wait_quiet(limit_seconds: float, threshold: float = 15.0) -> float:
    """Wait (bounded) until the machine's background load falls under ``threshold`` percent; return the
    last reading, which the report records."""
    deadline = time.monotonic() + limit_seconds
    busy = cpu_busy()
    while busy > threshold and time.monotonic() < deadline:
        log(f"the machine is already {busy:.0f}% busy with other work; waiting for it to calm down")
        time.sleep(5)
        busy = cpu_busy()
    return busy


# --- Machine and report ---------------------------------------------------------------------------------


def machine_facts(cfg: Config, loader: Loader) -> dict[str, str]:
    def first(path: str, key: str) -> str:
        with contextlib.suppress(OSError):
            for line in Path(path).read_text().splitlines():
                if line.startswith(key):
                    return line.split(":", 1)[1].strip() if ":" in line else line.split("=", 1)[1].strip('"')
        return "?"

    import django
    import psycopg

    with psycopg.connect(cfg.database_url, connect_timeout=5) as conn:
        pg = conn.execute("SHOW server_version").fetchone()[0]
    redis_version = redis_client(cfg).info("server").get("redis_version", "?")
    mem_kb = first("/proc/meminfo", "MemTotal").split()[0]
    versions = {}
    for module in ("celery", "gunicorn", "rest_framework"):
        with contextlib.suppress(Exception):
            versions[module] = __import__(module).__version__
    return {
        "nproc": str(len(os.sched_getaffinity(0))),
        "cpu": first("/proc/cpuinfo", "model name"),
        "memory": f"{int(mem_kb) / 1024 / 1024:.1f} GiB" if mem_kb.isdigit() else "?",
        "os": first("/etc/os-release", "PRETTY_NAME"),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "postgres": pg.split(" ")[0],
        "redis": redis_version,
        "django": django.get_version(),
        "drf": versions.get("rest_framework", "?"),
        "celery": versions.get("celery", "?"),
        "gunicorn": versions.get("gunicorn", "?"),
        "load generator": loader.generator,
    }


def judge(report: Report) -> None:
    tp = report.throughput
    goals = []
    if "bare" in tp and "execute" in tp:
        for key, where in (("execute_paused", "web path, worker paused"), ("execute", "worker consuming")):
            ratio = tp[key]["rps"] / tp["bare"]["rps"]
            goals.append({"goal": f"execute >= {GOALS['ratio']}x bare throughput ({where})",
                          "value": f"{ratio:.2f}x", "met": ratio >= GOALS["ratio"]})
        p99 = tp["execute"]["p99_ms"]
        goals.append({"goal": f"execute p99 <= {GOALS['execute_p99_ms']:g} ms at 16 clients, worker on the same cores",
                      "value": f"{p99:.1f} ms", "met": p99 <= GOALS["execute_p99_ms"]})
    for row in report.start_latency:
        goals.append({"goal": f"enqueue-to-start p50 <= {GOALS['start_p50_ms']:g} ms at ~{row['rate']:g}/s",
                      "value": f"{row['start_p50_ms']:.1f} ms", "met": row["start_p50_ms"] <= GOALS["start_p50_ms"]})
        goals.append({"goal": f"enqueue-to-start p99 <= {GOALS['start_p99_ms']:g} ms at ~{row['rate']:g}/s",
                      "value": f"{row['start_p99_ms']:.1f} ms", "met": row["start_p99_ms"] <= GOALS["start_p99_ms"]})
    report.goals = goals


def render(report: Report, cfg: Config) -> str:
    m, tp = report.machine, report.throughput
    web_line = (f"{cfg.web_workers} sync workers (the Procfile's line)" if cfg.web_threads == 1 else
                f"{cfg.web_workers} workers x {cfg.web_threads} threads "
                f"(`--worker-connections {cfg.worker_connections or 'default'}`)")
    out = [
        f"Run {report.started} by `bench/run.sh` ({report.wall_seconds / 60:.1f} min wall time). "
        "Figures are the median of the rounds shown.",
        "",
        f"**Machine:** {m.get('nproc')} cores ({m.get('cpu')}), {m.get('memory')} memory, {m.get('os')} "
        f"(kernel {m.get('kernel')}); Python {m.get('python')}, PostgreSQL {m.get('postgres')}, Redis "
        f"{m.get('redis')}; Django {m.get('django')}, DRF {m.get('drf')}, Celery {m.get('celery')}, gunicorn "
        f"{m.get('gunicorn')}; load generator {m.get('load generator')}.",
        "",
        f"**Background:** other work used {report.setup.get('background_busy_before_pct', '?')}% of the cores "
        f"just before the run; load average at the end {report.setup.get('load_average_at_end', '?')} (the "
        "benchmark's own processes included).",
        "",
        f"**Stack:** gunicorn `heptora.wsgi` {web_line}, one Celery "
        f"worker `--concurrency {cfg.worker_concurrency}` (prefork) at `nice -n {cfg.worker_nice}`, PostgreSQL "
        f"database `{cfg.db_name}`, Redis `{cfg.redis_url}`, `HEPTORA_DEMO_STEP_DELAY=0`, `LOG_LEVEL=INFO`; "
        "server, worker, databases and load generator all share the same cores.",
        "",
        f"### Requests/s and latency at {cfg.connections} connections ({cfg.rounds} rounds of "
        f"{cfg.duration:g} s each, interleaved)",
        "",
        "| endpoint | req/s | p50 ms | p99 ms | x bare | core-ms / request | rounds (req/s) "
        "| connections per web worker |",
        "| --- | ---: | ---: | ---: | ---: | ---: | --- | --- |",
    ]
    cores = int(m.get("nproc", "2") or 2)
    for key, _path, _label, _consume in VARIANTS:
        if key not in tp:
            continue
        row = tp[key]
        ratio = row["rps"] / tp["bare"]["rps"] if "bare" in tp else float("nan")
        # sync workers close each connection after its response: no lasting split to show
        splits = ", ".join(row.get("splits", [])) if cfg.web_threads > 1 else "one request per connection"
        out.append(f"| {row['label']} | {row['rps']:.0f} | {row['p50_ms']:.1f} | {row['p99_ms']:.1f} | "
                   f"{ratio:.2f} | {cores * 1000 / row['rps']:.1f} | {', '.join(map(str, row['rounds_rps']))} | "
                   f"{splits} |")
    errors = sum(row["errors"] for row in tp.values())
    out += ["", f"Errors (non-2xx, socket errors) across all rounds: {errors}. \"core-ms / request\" is "
            f"{cores} cores x 1000 / (req/s): the machine time one request takes, load generator included."]
    if "execute_paused" in tp and "nopublish" in tp:
        publish = cores * 1000 / tp["execute_paused"]["rps"] - cores * 1000 / tp["nopublish"]["rps"]
        out.append(f"Paused-consumer execute minus no-publish execute: {publish:+.2f} core-ms per request, the price "
                   "of the broker publish as far as the round-to-round spread above lets it show (the profile below "
                   "prices it directly).")
    if report.start_latency:
        out += ["", "### Enqueue-to-start latency (`bench-noop` through the execute endpoint, open loop)", "",
                "| target rate | achieved /s | executions / round | start p50 ms | start p99 ms | start max ms | "
                "API p50 ms | API p99 ms | rounds (start p99 ms) |",
                "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |"]
        for row in report.start_latency:
            out.append(f"| {row['rate']:g}/s | {row['achieved_rate']:.1f} | {row['accepted']:.0f} | "
                       f"{row['start_p50_ms']:.1f} | {row['start_p99_ms']:.1f} | {row['start_max_ms']:.1f} | "
                       f"{row['api_p50_ms']:.1f} | {row['api_p99_ms']:.1f} | "
                       f"{', '.join(map(str, row['rounds_start_p99_ms']))} |")
        out += ["", "Enqueue-to-start is `started_at - created_at` of each execution, read from the database: "
                "commit, publish, Redis, the worker's prefork hand-off and the claim UPDATE."]
    if report.drain:
        out += ["", "### Worker drain rate (backlog queued with the consumer paused, then released)", "",
                "| process | backlog | succeeded | executions/s | first start to last finish |",
                "| --- | ---: | ---: | ---: | ---: |"]
        for row in report.drain:
            out.append(f"| `{row['process']}` | {row['n']} | {row['succeeded']} | {row['rate']:.0f} | "
                       f"{row['span_s']:.1f} s |")
    if report.goals:
        out += ["", "### Goals (issue 3)", "", "| goal | measured | met |", "| --- | ---: | --- |"]
        for goal in report.goals:
            out.append(f"| {goal['goal']} | {goal['value']} | {'yes' if goal['met'] else '**no**'} |")
    if report.profile.get("cpu_split"):
        p = report.profile
        out += ["", f"### Where the CPU goes while execute is loaded ({p['rps_while_measured']:.0f} req/s, worker "
                f"consuming; the cores were {p['idle_pct']:.0f}% idle, {p['steal_pct']:.0f}% stolen by the host)", "",
                "| process | CPU ms per execute request | share |", "| --- | ---: | ---: |"]
        for row in p["cpu_split"]:
            out.append(f"| {row['process']} | {row['ms_per_request']:.2f} | {row['share']:.0f}% |")
        out.append(f"| all | {p['cpu_ms_per_request_total']:.2f} | 100% |")
    if report.profile.get("buckets"):
        out += ["", f"### Where the execute request's time goes (py-spy, {report.profile['samples']} samples "
                "of gunicorn request threads, worker consuming; waits on PostgreSQL and Redis count)", "",
                "| part of the request | share of request samples (inclusive) |", "| --- | ---: |"]
        for row in report.profile["buckets"]:
            out.append(f"| {row['bucket']} | {row['share']:.1f}% |")
    return "\n".join(out) + "\n"


def write_doc(section: str) -> None:
    text = DOC.read_text() if DOC.exists() else "# Benchmarks\n"
    block = f"{BEGIN}\n{section}{END}"
    if BEGIN in text and END in text:
        text = re.sub(re.escape(BEGIN) + r".*?" + re.escape(END), lambda _: block, text, flags=re.S)
    else:
        text = text.rstrip("\n") + "\n\n## Latest results\n\n" + block + "\n"
    DOC.write_text(text)


# --- Main -----------------------------------------------------------------------------------------------


def parse_args(argv: list[str]) -> Config:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--pg-url", default=os.environ.get("BENCH_PG_URL", "postgres://postgres@127.0.0.1:5432"),
                   help="PostgreSQL server (loopback), without the database name")
    p.add_argument("--db-name", default="heptora_bench", help="created at the start, dropped at the end")
    p.add_argument("--redis-url", default=os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/12"),
                   help="a Redis database number of its own: it is flushed at the start and the end")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--duration", type=float, default=6.0, help="seconds per throughput round")
    p.add_argument("--warmup", type=float, default=2.0, help="seconds of warm-up before each endpoint's first round")
    p.add_argument("--connections", type=int, default=16)
    p.add_argument("--rates", default="20,200", help="executions/s for the enqueue-to-start phase")
    p.add_argument("--rate-seconds", type=float, default=5.0, help="seconds of load per rate and round")
    p.add_argument("--drain-n", type=int, default=2000, help="bench-noop backlog for the drain rate")
    p.add_argument("--web-workers", type=int, default=4)
    p.add_argument("--web-threads", type=int, default=1)
    p.add_argument("--worker-connections", type=int, default=-1, metavar="N",
                   help="gunicorn --worker-connections; default: connections / web workers, so that the load "
                        "generator's connections, all opened at once, spread evenly (0: gunicorn's default)")
    p.add_argument("--worker-concurrency", type=int, default=4)
    p.add_argument("--worker-nice", type=int, default=10,
                   help="CPU priority of the worker, as the Procfile's HEPTORA_WORKER_NICE (0: same as the server)")
    p.add_argument("--profile", type=float, default=0.0, metavar="SECONDS",
                   help="also sample gunicorn with py-spy under execute load for SECONDS (e.g. 12)")
    p.add_argument("--no-docs", action="store_true", help="do not update docs/benchmarks.md")
    p.add_argument("--keep-db", action="store_true", help="leave the benchmark database for inspection")
    p.add_argument("--budget", type=float, default=600, help="seconds; phases left when it is spent are skipped")
    p.add_argument("--wait-quiet", type=float, default=120, metavar="SECONDS",
                   help="wait up to SECONDS for other work on the machine to calm down before starting")
    p.add_argument("--quick", action="store_true", help="a smoke run: 1 round of 2 s, small backlog, no docs")
    a = p.parse_args(argv)
    if a.quick:
        a.rounds, a.duration, a.warmup, a.rate_seconds, a.drain_n, a.no_docs = 1, 2.0, 1.0, 1.5, 200, True
    for url in (a.pg_url, a.redis_url):
        loadgen.assert_loopback(urlsplit(url).hostname or "")
    if not re.fullmatch(r"[a-z_][a-z0-9_]{0,62}", a.db_name) or a.db_name in ("postgres", "heptora"):
        raise SystemExit(f"--db-name {a.db_name!r}: use a dedicated name such as heptora_bench")
    if urlsplit(a.redis_url).path.strip("/") in ("", "0"):
        raise SystemExit("--redis-url must name a dedicated database number (e.g. /12): it is flushed")
    out_dir = ROOT / "var" / "bench"
    out_dir.mkdir(parents=True, exist_ok=True)
    return Config(pg_url=a.pg_url, db_name=a.db_name, redis_url=a.redis_url, rounds=a.rounds,
                  duration=a.duration, warmup=a.warmup, connections=a.connections,
                  rates=[float(r) for r in a.rates.split(",") if r.strip()], rate_seconds=a.rate_seconds,
                  drain_n=a.drain_n, web_workers=a.web_workers, web_threads=a.web_threads,
                  worker_connections=(-(-a.connections // a.web_workers) if a.worker_connections < 0
                                      else a.worker_connections),
                  worker_concurrency=a.worker_concurrency, worker_nice=a.worker_nice,
                  write_docs=not a.no_docs, profile_seconds=a.profile,
                  keep_db=a.keep_db, budget_seconds=a.budget, wait_quiet=a.wait_quiet,
                  out_dir=out_dir)


def bench_env(cfg: Config) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HEPTORA_", "DJANGO_"))}
    env.update({
        "DATABASE_URL": cfg.database_url,
        "REDIS_URL": cfg.redis_url,
        "SECRET_KEY": "bench-only-" + secrets.token_urlsafe(24),
        "DJANGO_SETTINGS_MODULE": "heptora.settings",
        "DEBUG": "false",
        "LOG_LEVEL": "INFO",
        "HEPTORA_DEMO_STEP_DELAY": "0",
        "HEPTORA_BENCH_ENDPOINTS": "1",
        "HEPTORA_PROCESS_MODULES": "bench.processes",
        "PYTHONPATH": str(ROOT),
        "PATH": f"{VENV_BIN}:{os.environ.get('PATH', '')}",
    })
    return env


def main(argv: list[str]) -> int:
    cfg = parse_args(argv)
    began = time.monotonic()
    report = Report(started=dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"))

    def on_signal(signum: int, _frame: Any) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, on_signal)

    def left() -> float:
        return cfg.budget_seconds - (time.monotonic() - began)

    env = bench_env(cfg)
    stack = Stack(cfg, env)
    created = False
    try:
        report.setup["background_busy_before_pct"] = round(wait_quiet(cfg.wait_quiet), 1)
        log(f"background CPU use before starting: {report.setup['background_busy_before_pct']}% of all cores")
        began = time.monotonic()  # the budget counts from here
        log(f"creating database {cfg.db_name} and flushing {cfg.redis_url}")
        (cfg.out_dir / "db").write_text(cfg.db_name)  # for bench/run.sh's trap, should this process die hard
        admin_sql(cfg, f'DROP DATABASE IF EXISTS "{cfg.db_name}" WITH (FORCE)', f'CREATE DATABASE "{cfg.db_name}"')
        created = True
        redis_client(cfg).flushdb()
        log("migrate + seed_demo")
        manage(env, "migrate", "--noinput")
        manage(env, "seed_demo")
        setup_django(env)
        key = create_api_key()
        log("starting gunicorn and the Celery worker")
        stack.start_web()
        stack.start_worker()
        queue = Queue(cfg, stack)
        loader = Loader(cfg, stack.port, key)
        report.machine = machine_facts(cfg, loader)
        report.setup.update({k: (str(v) if isinstance(v, Path) else v) for k, v in asdict(cfg).items()})
        log(f"gunicorn on 127.0.0.1:{stack.port}; load generator: {loader.generator}")

        phase_throughput(cfg, loader, queue, stack, report)
        if left() > 60:
            phase_start_latency(cfg, loader, queue, report)
        else:
            log("time budget spent: skipping the enqueue-to-start phase")
        if left() > 45:
            phase_drain(cfg, loader, queue, report)
        else:
            log("time budget spent: skipping the drain phase")
        if left() > cfg.duration + 15:
            queue.wait_idle(30)
            phase_cpu_split(cfg, loader, report)
        if cfg.profile_seconds and left() > cfg.profile_seconds + 20:
            queue.wait_idle(30)
            phase_profile(cfg, loader, stack, report)
        report.wall_seconds = time.monotonic() - began
        report.setup["load_average_at_end"] = " ".join(Path("/proc/loadavg").read_text().split()[:3])
        judge(report)
        section = render(report, cfg)
        print("\n" + section)
        (cfg.out_dir / "results.json").write_text(json.dumps(asdict(report), indent=2, default=str))
        if cfg.write_docs:
            write_doc(section)
            log(f"wrote the results into {DOC.relative_to(ROOT)}")
        return 0
    finally:
        log("stopping gunicorn and the worker")
        stack.stop()
        with contextlib.suppress(Exception):
            from django.db import connections

            connections.close_all()
        if cfg.keep_db:
            (cfg.out_dir / "db").unlink(missing_ok=True)
            log(f"kept database {cfg.db_name} (--keep-db)")
        elif created:
            with contextlib.suppress(Exception):
                admin_sql(cfg, f'DROP DATABASE IF EXISTS "{cfg.db_name}" WITH (FORCE)')
                log(f"dropped database {cfg.db_name}")
                (cfg.out_dir / "db").unlink(missing_ok=True)
        with contextlib.suppress(Exception):
            redis_client(cfg).flushdb()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
