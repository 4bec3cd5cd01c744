"""Request ids, access logs and Prometheus metrics.

A plain ASGI middleware rather than Starlette's BaseHTTPMiddleware: the latter runs every request
through an extra task and memory stream, which costs more than the rest of this module put together.
It runs on every request, so it keeps to cheap operations: the request id is 16 random bytes in hex
(``uuid.uuid4`` builds a UUID object only to print it), and the labelled metric children are looked
up once per route and status, not on every request (docs/adr/0003-api-hot-path.md).
"""

from __future__ import annotations

import os
import re
import time
from typing import Any

import structlog
from fastapi import FastAPI, Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest
from starlette.types import ASGIApp, Message, Receive, Scope, Send

log = structlog.get_logger("finloop.access")
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._\-]{1,64}$")


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter("finloop_http_requests_total", "HTTP requests", ["method", "route", "status"],
                                registry=self.registry)
        self.latency = Histogram("finloop_http_request_seconds", "HTTP request latency", ["method", "route"],
                                 registry=self.registry,
                                 buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5))
        # The children of each label set: ``labels()`` validates and locks on every call. The label sets
        # are bounded (a route template, not a path, and a status), so these stay small.
        self._counters: dict[tuple[str, str, int], Any] = {}
        self._histograms: dict[tuple[str, str], Any] = {}

    def observe(self, method: str, route: str, status: int, seconds: float) -> None:
        counter = self._counters.get((method, route, status))
        if counter is None:
            counter = self._counters[(method, route, status)] = self.requests.labels(method, route, str(status))
        histogram = self._histograms.get((method, route))
        if histogram is None:
            histogram = self._histograms[(method, route)] = self.latency.labels(method, route)
        counter.inc()
        histogram.observe(seconds)


def route_template(scope: Scope) -> str:
    """The matched route's path template with its router prefix (``/v1/accounts/{account_id}``), so that
    metrics have one series per route, not per id."""
    effective = (scope.get("fastapi") or {}).get("effective_route_context")
    path = getattr(effective, "path", None) or getattr(scope.get("route"), "path", None)
    return str(path) if path else "unmatched"


def new_request_id() -> str:
    return f"req_{os.urandom(16).hex()}"


class ObservabilityMiddleware:
    """Binds a request id (the caller's ``X-Request-Id`` when well-formed) to every log line of the
    request, echoes it in the response, counts and times the request by route template."""

    def __init__(self, app: ASGIApp, metrics: Metrics, access_log: bool) -> None:
        self.app = app
        self.metrics = metrics
        self.access_log = access_log

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        incoming = ""
        for name, value in scope.get("headers", []):
            if name == b"x-request-id":
                incoming = value.decode("latin-1")
                break
        request_id = incoming if incoming and _REQUEST_ID.match(incoming) else new_request_id()
        request_id_header = (b"x-request-id", request_id.encode())
        status = 500
        started = time.perf_counter()

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [*message.get("headers", []), request_id_header]
            await send(message)

        tokens = structlog.contextvars.bind_contextvars(request_id=request_id)
        try:
            await self.app(scope, receive, send_with_id)
        finally:
            structlog.contextvars.reset_contextvars(**tokens)
            elapsed = time.perf_counter() - started
            route = route_template(scope)
            method = scope.get("method", "")
            self.metrics.observe(method, route, status, elapsed)
            if self.access_log:
                state: Any = scope.get("state", {})
                log.info("request", request_id=request_id, method=method, route=route, status=status,
                         ms=round(elapsed * 1000, 2), tenant_id=state.get("tenant_id") if isinstance(state, dict)
                         else None)


def install(app: FastAPI, *, access_log: bool = True) -> Metrics:
    metrics = Metrics()
    app.add_middleware(ObservabilityMiddleware, metrics=metrics, access_log=access_log)

    @app.get("/metrics", include_in_schema=False)
    def _metrics() -> Response:
        return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)

    return metrics
