"""The HTTP anchor: a bare FastAPI endpoint with the ledger's request and response shapes, nothing else.

It parses the same ``TransferCreate`` body and answers an ``EntryRead`` of the same size, in a sync
handler like the real one, with no authentication, no database and no middleware. Serve it with
``uvicorn finloop.bench.bare_api:app``.
"""

from __future__ import annotations

from datetime import UTC, datetime

from fastapi import FastAPI

from finloop.core.ids import new_id
from finloop.ledger.domain import Side
from finloop.ledger.schemas import EntryRead, PostingRead, TransferCreate

app = FastAPI(title="finloop bench anchor")


@app.get("/healthz", include_in_schema=False)
def healthz() -> dict[str, str]:
    return {"status": "ok"}


@app.post("/v1/transfers", status_code=201, response_model=EntryRead)
def create_transfer(body: TransferCreate) -> EntryRead:
    now = datetime.now(UTC)
    amount = body.amount or 0
    currency = body.currency or ""
    return EntryRead(
        id=new_id("entry"), key=body.key or "", kind="transfer", description=body.description, effective_at=now,
        business_date=now.date(), created_at=now, batch_id=None, hold_id=None, reverses_id=None,
        metadata=body.metadata,
        postings=[PostingRead(account_id=body.debit_account_id or "", direction=Side.DEBIT, amount=amount,
                              currency=currency),
                  PostingRead(account_id=body.credit_account_id or "", direction=Side.CREDIT, amount=amount,
                              currency=currency)])
