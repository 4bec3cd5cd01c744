"""Webhook test helpers: a real HTTP receiver on a free 127.0.0.1 port, and a Standard Webhooks verifier
whose notion of "now" is the test's frozen clock (the library checks the timestamp against the wall clock)."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, tzinfo
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import standardwebhooks.webhooks

from finloop.core.clock import FrozenClock


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class Receiver:
    """An HTTP server that is down until ``start()``; it then answers POSTs with the queued status codes
    (200 once the queue is empty) and records every request."""

    port: int
    statuses: list[int] = field(default_factory=list)
    received: list[Received] = field(default_factory=list)
    _server: ThreadingHTTPServer | None = None
    _thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hooks/finloop"

    def start(self) -> None:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length", "0")))
                receiver.received.append(Received(self.path, {k.lower(): v for k, v in self.headers.items()}, body))
                status = receiver.statuses.pop(0) if receiver.statuses else 200
                answer = b'{"ok":true}' if status < 300 else b"receiver is unwell " * 100
                self.send_response(status)
                self.send_header("content-length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, format: str, *args: object) -> None:
                pass

        ThreadingHTTPServer.allow_reuse_address = True
        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    """Down (connections refused) until the test starts it."""
    server = Receiver(free_port())
    yield server
    server.stop()


@pytest.fixture
def verifier_clock(clock: FrozenClock, monkeypatch: pytest.MonkeyPatch) -> FrozenClock:
    """Make ``standardwebhooks`` check timestamps against the frozen clock, as a receiver in sync with us would."""

    class FrozenDatetime(datetime):
        @classmethod
        def now(cls, tz: tzinfo | None = None) -> FrozenDatetime:  # type: ignore[override]
            at = clock.now() if tz is None else clock.now().astimezone(tz)
            return cls.fromtimestamp(at.timestamp(), tz=at.tzinfo)

    monkeypatch.setattr(standardwebhooks.webhooks, "datetime", FrozenDatetime)
    return clock
