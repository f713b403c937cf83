"""A small, bounded HTTP/1.1 load generator on asyncio (no dependency), for 127.0.0.1 only.

Two shapes:

* :func:`closed_loop`: N keep-alive connections, each sending its next request as soon as the previous
  answer arrived, for a fixed time and at most ``max_requests`` requests (what wrk does; used when wrk is
  not installed).
* :func:`open_loop`: requests at a fixed rate (request i is due at ``start + i / rate``), at most ``count``
  of them and never past ``deadline`` seconds, on a pool of at most ``max_in_flight`` connections; a
  request that finds no free connection waits, and that wait is reported (``lag``), so an overloaded server
  shows up as a lower achieved rate rather than as unbounded queueing in the client.

Every loop is bounded in count and in time, and only loopback addresses are accepted.
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

LOOPBACK_NAMES = {"localhost"}
IDLE_RECONNECT_SECONDS = 1.0  # gunicorn closes idle keep-alive connections after 2 s


def assert_loopback(host: str) -> None:
    if host in LOOPBACK_NAMES:
        return
    try:
        address = ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        raise SystemExit(f"refusing to load {host!r}: the benchmark only targets loopback addresses") from None
    if not address.is_loopback:
        raise SystemExit(f"refusing to load {host}: the benchmark only targets loopback addresses")


@dataclass
class Result:
    sent_at: float  # monotonic, when the request was written
    latency: float  # seconds until the whole answer was read
    status: int
    body: bytes = b""
    lag: float = 0.0  # open loop: how late the request left compared to its schedule


@dataclass
class Summary:
    requests: int
    duration: float
    latencies_ms: list[float]
    statuses: dict[int, int]
    errors: int
    results: list[Result] = field(default_factory=list)

    @property
    def rps(self) -> float:
        return self.requests / self.duration if self.duration else 0.0


def percentile(values: list[float], pct: float) -> float:
    """Nearest-rank percentile (pct in 0..100) of ``values``; NaN for an empty list."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = max(1, min(len(ordered), int(-(-pct * len(ordered) // 100))))
    return ordered[rank - 1]


class Connection:
    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None
        self.last_used = 0.0

    async def _ensure(self) -> None:
        idle = time.monotonic() - self.last_used
        if self.writer is not None and (idle > IDLE_RECONNECT_SECONDS or self.reader.at_eof()):  # type: ignore[union-attr]
            self.close()
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)

    async def request(self, raw: bytes, timeout: float) -> tuple[int, bytes]:
        await self._ensure()
        assert self.reader is not None and self.writer is not None
        try:
            self.writer.write(raw)
            await self.writer.drain()
            head = await asyncio.wait_for(self.reader.readuntil(b"\r\n\r\n"), timeout)
            status = int(head[9:12])
            headers = {}
            for line in head.decode("latin-1").split("\r\n")[1:]:
                name, _, value = line.partition(":")
                headers[name.strip().lower()] = value.strip()
            if "content-length" in headers:
                body = await asyncio.wait_for(self.reader.readexactly(int(headers["content-length"])), timeout)
            elif headers.get("transfer-encoding", "").lower() == "chunked":
                body = await asyncio.wait_for(self._chunked(), timeout)
            else:  # no length: the body runs to the end of the connection
                body = await asyncio.wait_for(self.reader.read(), timeout)
                headers["connection"] = "close"
            if headers.get("connection", "").lower() == "close":
                self.close()
            self.last_used = time.monotonic()
            return status, body
        except BaseException:
            self.close()
            raise

    async def _chunked(self) -> bytes:
        assert self.reader is not None
        parts = []
        while True:
            size = int((await self.reader.readuntil(b"\r\n")).split(b";")[0], 16)
            if size == 0:
                await self.reader.readuntil(b"\r\n")
                return b"".join(parts)
            parts.append(await self.reader.readexactly(size))
            await self.reader.readexactly(2)

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
        self.reader = self.writer = None


def build_request(host: str, port: int, path: str, headers: dict[str, str], body: bytes) -> bytes:
    lines = [f"POST {path} HTTP/1.1", f"Host: {host}:{port}", f"Content-Length: {len(body)}",
             "Connection: keep-alive", *(f"{k}: {v}" for k, v in headers.items())]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


async def _closed_loop(host: str, port: int, raw: bytes, connections: int, duration: float, max_requests: int,
                       timeout: float) -> Summary:
    results: list[Result] = []
    errors = 0
    stop_at = time.monotonic() + duration
    budget = [max_requests]

    async def client() -> None:
        nonlocal errors
        conn = Connection(host, port)
        try:
            while time.monotonic() < stop_at and budget[0] > 0:
                budget[0] -= 1
                sent = time.monotonic()
                try:
                    status, _ = await conn.request(raw, timeout)
                except (TimeoutError, OSError, asyncio.IncompleteReadError, ValueError):
                    errors += 1
                    continue
                results.append(Result(sent, time.monotonic() - sent, status))
        finally:
            conn.close()

    started = time.monotonic()
    await asyncio.gather(*(client() for _ in range(connections)))
    elapsed = time.monotonic() - started
    return _summary(results, elapsed, errors)


def closed_loop(*, host: str, port: int, path: str, headers: dict[str, str], body: bytes, connections: int,
                duration: float, max_requests: int = 1_000_000, timeout: float = 10.0) -> Summary:
    assert_loopback(host)
    raw = build_request(host, port, path, headers, body)
    return asyncio.run(_closed_loop(host, port, raw, connections, duration, max_requests, timeout))


async def _open_loop(host: str, port: int, path: str, headers: dict[str, str], body_for: Callable[[int], bytes],
                     rate: float, count: int, deadline: float, max_in_flight: int, timeout: float) -> Summary:
    pool = [Connection(host, port) for _ in range(max_in_flight)]
    free: asyncio.Queue[Connection] = asyncio.Queue()
    for conn in pool:
        free.put_nowait(conn)
    results: list[Result] = []
    errors = 0
    tasks: list[asyncio.Task[None]] = []

    async def one(conn: Connection, raw: bytes, lag: float) -> None:
        nonlocal errors
        sent = time.monotonic()
        try:
            status, answer = await conn.request(raw, timeout)
            results.append(Result(sent, time.monotonic() - sent, status, answer, lag))
        except (TimeoutError, OSError, asyncio.IncompleteReadError, ValueError):
            errors += 1
        finally:
            free.put_nowait(conn)

    started = time.monotonic()
    stop_at = started + deadline
    for i in range(count):
        due = started + i / rate
        now = time.monotonic()
        if due > now:
            await asyncio.sleep(due - now)
        if time.monotonic() >= stop_at:
            break
        try:
            conn = await asyncio.wait_for(free.get(), max(0.001, stop_at - time.monotonic()))
        except TimeoutError:
            break
        raw = build_request(host, port, path, headers, body_for(i))
        tasks.append(asyncio.create_task(one(conn, raw, time.monotonic() - due)))
    sending = time.monotonic() - started
    if tasks:
        await asyncio.wait(tasks, timeout=timeout + 1)
    for conn in pool:
        conn.close()
    summary = _summary(results, sending, errors)
    return summary


def open_loop(*, host: str, port: int, path: str, headers: dict[str, str], body_for: Callable[[int], bytes],
              rate: float, count: int, deadline: float, max_in_flight: int = 64, timeout: float = 10.0) -> Summary:
    """``count`` requests at ``rate`` per second (stopping at ``deadline`` seconds); ``requests / duration``
    of the summary is the rate actually achieved."""
    assert_loopback(host)
    return asyncio.run(_open_loop(host, port, path, headers, body_for, rate, count, deadline, max_in_flight,
                                  timeout))


def _summary(results: list[Result], elapsed: float, errors: int) -> Summary:
    statuses: dict[int, int] = {}
    for r in results:
        statuses[r.status] = statuses.get(r.status, 0) + 1
    return Summary(requests=len(results), duration=elapsed, latencies_ms=[r.latency * 1000 for r in results],
                   statuses=statuses, errors=errors, results=results)


def json_body(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":")).encode()
