"""The payments benchmark's HTTP anchor: a bare FastAPI endpoint that does one PostgreSQL INSERT per request.

It parses the same ``PaymentCreate`` body as ``POST /v1/payments``, inserts one row into a scratch
table with psycopg and commits, and answers a ``PaymentRead`` of the same shape — in a sync handler
like ours, with no authentication, no idempotency, no ORM and no middleware. Each thread of the
thread pool keeps one connection of its own (no pool library: the anchor must cost as little as can be).

Serve it with ``uvicorn finloop.bench.bare_insert_api:app`` and ``FINLOOP_BENCH_ANCHOR_DATABASE_URL``
set to a libpq URL of a database holding the table (``CREATE_TABLE``).
"""

from __future__ import annotations

import os
import threading
from datetime import UTC, datetime
from typing import Any

import psycopg
from fastapi import FastAPI

from finloop.core.ids import new_id
from finloop.payments.schemas import PaymentCreate, PaymentRead
from finloop.payments.state import PaymentStatus

DATABASE_URL_ENV = "FINLOOP_BENCH_ANCHOR_DATABASE_URL"
TABLE = "bench_bare_payments"
CREATE_TABLE = (f"CREATE TABLE IF NOT EXISTS {TABLE} (id varchar(40) PRIMARY KEY, merchant_id varchar(40) NOT NULL,"
                " amount bigint NOT NULL, currency varchar(3) NOT NULL, card_id varchar(40),"
                " created_at timestamptz NOT NULL)")
_INSERT = (f"INSERT INTO {TABLE} (id, merchant_id, amount, currency, card_id, created_at)"
           " VALUES (%s, %s, %s, %s, %s, %s)")

app = FastAPI(title="finloop bench anchor (one insert)")
_local = threading.local()


def _connection() -> psycopg.Connection[Any]:
    connection: psycopg.Connection[Any] | None = getattr(_local, "connection", None)
    if connection is None or connection.closed:
        connection = psycopg.connect(os.environ[DATABASE_URL_ENV])
        _local.connection = connection
    return connection


@app.get("/healthz", include_in_schema=False)
def healthz() -> dict[str, str]:
    return {"status": "ok"}


@app.post("/v1/payments", status_code=201, response_model=PaymentRead)
def create_payment(body: PaymentCreate) -> PaymentRead:
    now = datetime.now(UTC)
    payment_id = new_id("payment")
    connection = _connection()
    try:
        connection.execute(_INSERT, (payment_id, body.merchant_id, body.amount, body.currency, body.card_id, now))
        connection.commit()
    except psycopg.Error:
        connection.rollback()
        raise
    return PaymentRead(
        id=payment_id, merchant_id=body.merchant_id, customer_id=body.customer_id, purpose=body.purpose,
        amount=body.amount, currency=body.currency, captured_amount=body.amount, refunded_amount=0, fee_amount=0,
        method=body.method.value if body.method else None, capture_method=body.capture_method,
        status=PaymentStatus.SUCCEEDED, order_reference=body.order_reference, description=body.description,
        channel=None, next_action=None, failure_code=None, failure_message=None, is_disputed=False,
        ledger_entry_id=None, metadata=body.metadata, created_at=now, updated_at=now, succeeded_at=now,
        canceled_at=None)
