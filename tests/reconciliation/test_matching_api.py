"""End to end over HTTP: real sandbox payments, the channel's bill imported, a run, a write-off, statements."""

from __future__ import annotations

import io
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import openpyxl
import polars as pl
from fastapi.testclient import TestClient

from finloop.db.uow import Database
from finloop.payments.connectors.sandbox.app import InProcessSandbox
from finloop.payments.connectors.sandbox.engine import ChannelProfile
from finloop.reconciliation import service as imports
from tests.conftest import TenantHandle
from tests.payments.conftest import Shop, sandbox, shop, tokenize  # noqa: F401  (fixtures)

DAY = date(2026, 3, 2)


def _pay(client: TestClient, shop: Shop, amount: int) -> dict[str, Any]:  # noqa: F811
    response = client.post("/v1/payments", headers=shop.tenant.headers, json={
        "merchant_id": shop.merchant_id, "amount": amount, "currency": "CNY", "method": "card",
        "card_id": tokenize(client, shop.tenant), "confirm": True})
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    assert body["status"] == "succeeded", body
    return body


def _import_bills(db: Database, shop: Shop, box: InProcessSandbox) -> None:  # noqa: F811
    with db.uow() as uow:
        for code in shop.channels:
            content = box.providers[code].bill(box.engine.bill(code, DAY), DAY, code).content
            imports.import_file(uow, shop.tenant.id, format="generic", content=content, source=code,
                                business_date=DAY)
        uow.commit()


def test_run_resolve_and_statements_over_http(client: TestClient, shop: Shop, sandbox: InProcessSandbox,  # noqa: F811
                                              db: Database, other_tenant: TenantHandle) -> None:
    headers = shop.tenant.headers
    for code in shop.channels:
        sandbox.engine.configure(code, ChannelProfile(success_share=Decimal(1), latency_ms=(1, 2, 3)))
    first, second = _pay(client, shop, 10_000), _pay(client, shop, 5_000)
    refund = client.post(f"/v1/payments/{first['id']}/refunds", headers=headers, json={"amount": 3_000})
    assert refund.status_code == 201, refund.text
    _import_bills(db, shop, sandbox)
    late = _pay(client, shop, 2_500)  # after the bill was cut: missing at the channel

    runs = {}
    for code in shop.channels:
        response = client.post("/v1/reconciliation/runs", headers=headers,
                               json={"source": code, "business_date": DAY.isoformat()})
        assert response.status_code == 201, response.text
        runs[code] = response.json()
    by_class: dict[str, int] = {}
    for run in runs.values():
        for cls, count in run["counts"]["by_class"].items():
            by_class[cls] = by_class.get(cls, 0) + count
    assert by_class == {"missing_at_channel": 1}
    assert sum(r["matched_count"] for r in runs.values()) == 3  # two payments and the refund
    again = client.post("/v1/reconciliation/runs", headers=headers,
                        json={"source": late["channel"], "business_date": DAY.isoformat()})
    assert again.json()["id"] == runs[late["channel"]]["id"]  # idempotent
    assert client.get(f"/v1/reconciliation/runs/{again.json()['id']}", headers=headers).json()[
        "discrepancies_now"] == {"missing_at_channel": {"open": 1}}

    listed = client.get("/v1/reconciliation/discrepancies", headers=headers,
                        params={"class": "missing_at_channel", "status": "open"}).json()
    assert [d["record_id"] for d in listed["data"]] == [late["id"]]
    item = listed["data"][0]
    assert item["difference"] == -(late["amount"] - late["fee_amount"])
    assigned = client.post(f"/v1/reconciliation/discrepancies/{item['id']}/assign", headers=headers,
                           json={"assignee": "ops"})
    assert assigned.status_code == 200 and assigned.json()["status"] == "investigating"
    noted = client.post(f"/v1/reconciliation/discrepancies/{item['id']}/notes", headers=headers,
                        json={"text": "the channel lost it"})
    assert noted.status_code == 201 and [n["text"] for n in noted.json()["notes"]] == ["the channel lost it"]
    bad = client.post(f"/v1/reconciliation/discrepancies/{item['id']}/resolve", headers=headers,
                      json={"action": "explode"})
    assert bad.status_code == 400
    resolved = client.post(f"/v1/reconciliation/discrepancies/{item['id']}/resolve", headers=headers,
                           json={"action": "write_off", "reason": "lost at the channel"})
    assert resolved.status_code == 200, resolved.text
    entry_id = resolved.json()["adjusting_entry_id"]
    entry = client.get(f"/v1/ledger/entries/{entry_id}", headers=headers)
    if entry.status_code == 200:  # the ledger's read route, when present
        assert sum(p["amount"] for p in entry.json()["postings"]) == 0
    twice = client.post(f"/v1/reconciliation/discrepancies/{item['id']}/resolve", headers=headers,
                        json={"action": "write_off"})
    assert twice.status_code == 409 and twice.json()["error"]["code"] == "discrepancy_resolved"

    # The bank side: the custody statement shows each channel's clearing batch and an unknown credit.
    from finloop.clearing import service as clearing
    from finloop.reconciliation.statement_writer import Movement, camt053

    with db.uow() as uow:
        # Routing may have sent every payment through one channel: the other's batch then nets to nothing.
        batches = [(b.channel_code, b.expected_net_amount)
                   for b in clearing.build_batches(uow, shop.tenant.id, business_date=DAY) if b.expected_net_amount]
        uow.commit()
    assert batches and all(amount > 0 for _, amount in batches)
    movements = [Movement(amount=amount, direction="credit", value_on=DAY, description=f"{code} settlement",
                          kind="settlement") for code, amount in batches]
    movements.append(Movement(amount=777, direction="credit", value_on=DAY, description="interest", kind="other"))
    statement_file = camt053(account="CUSTODY-1", currency="CNY", opening_balance=0, movements=movements,
                             statement_id="S-0302", created_at=datetime(2026, 3, 2, 18, 0, tzinfo=UTC),
                             opening_on=DAY, closing_on=DAY)
    with db.uow() as uow:
        imports.import_file(uow, shop.tenant.id, format="camt053", content=statement_file, source="custody",
                            business_date=DAY)
        uow.commit()
    bank = client.post("/v1/reconciliation/runs", headers=headers,
                       json={"source": "custody", "business_date": DAY.isoformat()})
    assert bank.status_code == 201, bank.text
    assert bank.json()["counts"]["by_class"] == {"missing_on_platform": 1}
    assert bank.json()["counts"]["by_rule"] == {"many_to_one": len(batches)}

    # Tenant isolation and bad input.
    assert client.get(f"/v1/reconciliation/discrepancies/{item['id']}", headers=other_tenant.headers
                      ).status_code == 404
    assert client.get(f"/v1/reconciliation/runs/{again.json()['id']}", headers=other_tenant.headers
                      ).status_code == 404
    assert client.get("/v1/reconciliation/discrepancies", headers=other_tenant.headers).json()["data"] == []
    assert client.post("/v1/reconciliation/runs", headers=headers,
                       json={"source": "", "business_date": "2026-03-02"}).status_code == 400
    nothing = client.post("/v1/reconciliation/runs", headers=headers,
                          json={"source": "custody", "business_date": "2026-03-03"})
    assert nothing.status_code == 409 and nothing.json()["error"]["code"] == "no_file"
    assert client.post("/v1/reconciliation/runs", headers=headers,
                       json={"source": "x", "business_date": "0001-01-01"}).status_code == 400
    assert client.get("/v1/reconciliation/discrepancies", headers=headers,
                      params={"class": "nope"}).status_code == 400

    # Unified statement of the day: totals equal what was paid, refunded and charged.
    paid = [first, second, late]
    statement = client.get("/v1/reconciliation/statements", headers=headers,
                           params={"period": "daily", "on": DAY.isoformat()})
    assert statement.status_code == 200, statement.text
    by_type = {row["type"]: row for row in statement.json()["totals"]["type"]}
    assert by_type["payment"]["net"] == sum(p["amount"] for p in paid)
    assert by_type["refund"]["net"] == -3_000
    fees = sum(p["fee_amount"] for p in paid) - refund.json()["fee_returned_amount"]
    assert by_type["fee"]["net"] == -fees
    by_channel = statement.json()["totals"]["channel"]
    assert sum(row["net"] for row in by_channel) == sum(p["amount"] for p in paid) - 3_000 - fees
    csv = client.get("/v1/reconciliation/statements", headers=headers,
                     params={"period": "monthly", "on": "2026-03-31", "format": "csv"})
    assert csv.status_code == 200 and csv.headers["content-type"].startswith("text/csv")
    assert pl.read_csv(io.BytesIO(csv.content))["amount"].sum() == sum(p["amount"] for p in paid) - 3_000 - fees
    xlsx = client.get("/v1/reconciliation/statements", headers=headers,
                      params={"period": "weekly", "on": "2026-03-04", "format": "xlsx"})
    assert xlsx.status_code == 200
    workbook = openpyxl.load_workbook(io.BytesIO(xlsx.content))
    assert workbook.sheetnames == ["lines", "by_channel", "by_merchant_id", "by_method", "by_type"]
    assert client.get("/v1/reconciliation/statements", headers=headers,
                      params={"period": "yearly", "on": "2026-03-02"}).status_code == 400
    assert client.get("/v1/reconciliation/statements", headers=headers,
                      params={"period": "daily", "on": "2026-02-30"}).status_code == 400
    empty = client.get("/v1/reconciliation/statements", headers=other_tenant.headers,
                       params={"period": "daily", "on": DAY.isoformat()})
    assert empty.json()["lines"] == []
