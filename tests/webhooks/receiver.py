"""A webhook receiver on 127.0.0.1, as an integrator would write one: it verifies each request with the
public ``standardwebhooks`` library and answers as a test tells it to (fail N times, redirect, sleep…)."""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from standardwebhooks.webhooks import Webhook, WebhookVerificationError


@dataclass(frozen=True)
class Reply:
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    body: str = "ok"
    delay: float = 0.0


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes
    at: float
    verified: bool
    error: str = ""

    @property
    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class Route:
    secrets: list[str]
    replies: list[Reply]
    then: Reply


class Receiver:
    def __init__(self) -> None:
        self.routes: dict[str, Route] = {}
        self.received: list[Received] = []
        self.lock = threading.Lock()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def route(self, path: str, *, secret: str | list[str] = "", replies: list[Reply] | None = None,
              then: Reply | None = None) -> str:
        """Answer ``path`` with ``replies`` in turn, then ``then`` (200 by default); verify with ``secret``."""
        with self.lock:
            self.routes[path] = Route([secret] if isinstance(secret, str) else secret, list(replies or []),
                                      then or Reply())
        return self.base_url + path

    def set_secret(self, path: str, secret: str) -> None:
        with self.lock:
            self.routes[path].secrets = [secret]

    def at(self, path: str) -> list[Received]:
        with self.lock:
            return [r for r in self.received if r.path == path]

    def wait_for(self, path: str, count: int, timeout: float = 15) -> list[Received]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            got = self.at(path)
            if len(got) >= count:
                return got
            time.sleep(0.02)
        raise AssertionError(f"{path} received {len(self.at(path))} requests, expected {count}")

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                headers = {k.lower(): v for k, v in self.headers.items()}
                with receiver.lock:
                    route = receiver.routes.get(self.path)
                    reply = (route.replies.pop(0) if route.replies else route.then) if route else Reply(404)
                    verified, error = False, "no such route"
                    if route:
                        verified, error = _verify(route.secrets, body, headers)
                    receiver.received.append(Received(self.path, headers, body, time.monotonic(), verified, error))
                if route and not verified:
                    reply = Reply(400, body=f"signature rejected: {error}")
                if reply.delay:
                    time.sleep(reply.delay)
                try:
                    self.send_response(reply.status)
                    for name, value in reply.headers.items():
                        self.send_header(name, value)
                    payload = reply.body.encode()
                    self.send_header("Content-Length", str(len(payload)))
                    self.end_headers()
                    self.wfile.write(payload)
                except OSError:
                    pass  # the sender gave up (a timeout test)

        return Handler


def _verify(secrets: list[str], body: bytes, headers: dict[str, str]) -> tuple[bool, str]:
    error = "no secret"
    for secret in filter(None, secrets):
        try:
            Webhook(secret).verify(body, headers)
            return True, ""
        except WebhookVerificationError as exc:
            error = str(exc)
    return False, error
