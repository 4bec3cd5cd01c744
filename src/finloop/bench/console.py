"""Console benchmark: pages a signed-in user gets per second, beside a bare FastAPI endpoint in the same run.

The database is a temporary SQLite file (the embedded default) with ``payments`` payments of one merchant,
inserted in bulk. Each page is requested through the whole stack in-process (ASGI, the session cookie's
check, the queries, the template), one request at a time; the anchor is a FastAPI app with one route
that returns an HTML body of the payments list's size, requested the same way. Slices alternate between the
page and the anchor so a noisy neighbour slows both; the ratio is the figure that survives it.
"""

from __future__ import annotations

import secrets
import statistics
import tempfile
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

ROUNDS = 3


def _rate(get: Callable[[], Any], seconds: float) -> tuple[float, list[float]]:
    """Requests per second and per-request milliseconds over ``seconds``."""
    samples: list[float] = []
    deadline = time.perf_counter() + seconds
    while time.perf_counter() < deadline:
        t0 = time.perf_counter()
        get()
        samples.append((time.perf_counter() - t0) * 1000)
    return len(samples) / sum(samples) * 1000, samples


def _seed(db: Any, payments: int) -> tuple[str, str, str]:
    """A tenant, a merchant, ``payments`` succeeded payments, and a console session; returns
    (tenant id, session token, one payment id)."""
    from finloop.payments import service as payment_service
    from finloop.payments.models import Payment
    from finloop.tenancy import service as tenancy

    with db.uow() as uow:
        tenant = tenancy.create_tenant(uow, name="Bench", actor="bench")
        merchant = payment_service.create_merchant(uow, tenant.id, reference="bench", name="Bench Shop")
        user = tenancy.create_user(uow, tenant.id, email="finance@bench.test", password=secrets.token_urlsafe(16),
                                   roles=["finance"], actor="bench")
        _, token = tenancy.start_session(uow, tenant.id, user.id, ttl_seconds=3600, channel="console")
        now = uow.clock.now()
        rows = []
        for i in range(payments):
            at = now - timedelta(seconds=payments - i)
            rows.append(dict(id=uow.ids.new("payment"), tenant_id=tenant.id, merchant_id=merchant.id, purpose="order",
                             amount=1_000 + i % 9_000, currency="CNY", captured_amount=1_000 + i % 9_000,
                             refunded_amount=0, fee_amount=6, method="card", capture_method="automatic",
                             status="succeeded", order_reference=f"order-{i}", description="", meta={},
                             channel=("unionpay", "paypal", "globalcard")[i % 3], is_disputed=False, version=1,
                             created_at=at, updated_at=at, succeeded_at=at))
        uow.session.bulk_insert_mappings(Payment, rows)
        uow.commit()
        return tenant.id, token, rows[-1]["id"]


def run(*, payments: int = 20_000, seconds: float = 3.0) -> dict[str, Any]:
    from fastapi import FastAPI
    from fastapi.responses import HTMLResponse
    from fastapi.testclient import TestClient

    from finloop.app import create_app
    from finloop.config import Settings
    from finloop.console.auth import SESSION_COOKIE
    from finloop.db.migrate import upgrade
    from finloop.db.uow import Database

    with tempfile.TemporaryDirectory() as folder:
        url = f"sqlite:///{Path(folder) / 'bench.db'}"
        upgrade(url)
        db = Database(url)
        _, token, payment_id = _seed(db, payments)
        app = create_app(Settings(database_url=url, log_level="WARNING"), database=db, access_log=False)
        client = TestClient(app)
        client.cookies.set(SESSION_COOKIE, token, path="/console")
        pages = {"payments_list": "/console/payments", "payment_detail": f"/console/payments/{payment_id}",
                 "overview": "/console", "payments_csv_export": "/console/payments?format=csv"}
        bodies = {name: client.get(path) for name, path in pages.items()}
        for name, response in bodies.items():
            assert response.status_code == 200, (name, response.status_code, response.text[:300])
        body = bodies["payments_list"].text

        bare = FastAPI()

        @bare.get("/page")
        def page() -> HTMLResponse:
            return HTMLResponse(body)

        anchor_client = TestClient(bare)
        figures: dict[str, Any] = {"payments": payments, "seconds_per_figure": seconds, "rounds": ROUNDS}
        anchor_rates: list[float] = []
        measured: dict[str, list[float]] = {name: [] for name in pages}
        samples: dict[str, list[float]] = {name: [] for name in pages}
        for _ in range(ROUNDS):
            rate, _ = _rate(lambda: anchor_client.get("/page"), seconds / ROUNDS)
            anchor_rates.append(rate)
            for name, path in pages.items():
                rate, times = _rate(lambda path=path: client.get(path), seconds / ROUNDS)  # type: ignore[misc]
                measured[name].append(rate)
                samples[name].extend(times)
        anchor = statistics.median(anchor_rates)
        figures["anchor_bare_fastapi_html_per_s"] = round(anchor, 1)
        for name in pages:
            rate = statistics.median(measured[name])
            ordered = sorted(samples[name])
            figures[name] = {"per_s": round(rate, 1), "p50_ms": round(ordered[len(ordered) // 2], 2),
                             "p99_ms": round(ordered[int(len(ordered) * 0.99)], 2),
                             "bytes": len(bodies[name].content), "ratio_to_anchor": round(rate / anchor, 3)}
        db.dispose()
    return figures
