"""Real sandbox payments and refunds: the refund fee policy of the payment's schedule, the day's clearing
batches against our records and the ledger, and the channel's settlement clearing the receivable."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from finloop.clearing import service as clearing
from finloop.cli import app
from finloop.core.clock import FrozenClock
from finloop.core.errors import Conflict, NotFound
from finloop.db.uow import Database
from finloop.ledger import service as ledger
from finloop.payments.connectors.sandbox.app import InProcessSandbox
from finloop.payments.connectors.sandbox.engine import ChannelProfile
from finloop.payments.postings import HOT_SHARDS, channel_receivable_code
from finloop.settlement.accounts import bank_account_code
from finloop.tenancy.calendar import get_calendar
from finloop.worker.runner import Runner
from tests.conftest import make_tenant
from tests.payments.conftest import Shop, tokenize


def _pay(client: TestClient, shop: Shop, amount: int) -> dict[str, Any]:
    response = client.post("/v1/payments", headers=shop.tenant.headers, json={
        "merchant_id": shop.merchant_id, "amount": amount, "currency": "CNY", "method": "card",
        "card_id": tokenize(client, shop.tenant), "confirm": True})
    assert response.status_code == 201 and response.json()["status"] == "succeeded", response.text
    return response.json()  # type: ignore[no-any-return]


def _refund(client: TestClient, shop: Shop, payment: dict[str, Any], amount: int) -> dict[str, Any]:
    response = client.post(f"/v1/payments/{payment['id']}/refunds", headers=shop.tenant.headers,
                           json={"amount": amount})
    assert response.status_code == 201 and response.json()["status"] == "succeeded", response.text
    return response.json()  # type: ignore[no-any-return]


def _schedules(client: TestClient, shop: Shop, policy: str) -> list[str]:
    ids = []
    for code in shop.channels:
        response = client.post("/v1/fee-schedules", headers=shop.tenant.headers, json={
            "channel": code, "method": "card", "kind": "percentage", "rate": "0.01", "refund_fee_policy": policy})
        assert response.status_code == 201, response.text
        ids.append(response.json()["id"])
    return ids


def _balance(db: Database, tenant_id: str, code: str) -> int:
    with db.uow(read_only=True) as uow:
        account = ledger.find_account_by_code(uow, tenant_id, code, "CNY")
        return 0 if account is None else ledger.balances(account).posted


def test_a_day_of_payments_clears_and_settles(client: TestClient, shop: Shop, sandbox: InProcessSandbox,
                                              db: Database, cli: CliRunner, clock: FrozenClock) -> None:
    for code in shop.channels:
        sandbox.engine.configure(code, ChannelProfile(success_share=Decimal(1), latency_ms=(5, 10, 20)))
    headers, tenant_id = shop.tenant.headers, shop.tenant.id
    retained = _schedules(client, shop, "retained")
    first = _pay(client, shop, 10_000)
    assert _refund(client, shop, first, 4_000)["fee_returned_amount"] == 0
    clock.advance(timedelta(seconds=1))  # a schedule applies to instants after it is retired, not at it
    for schedule_id in retained:
        assert client.post(f"/v1/fee-schedules/{schedule_id}/retire", headers=headers).status_code == 200
    _schedules(client, shop, "proportional")
    second = _pay(client, shop, 9_999)
    returned = [_refund(client, shop, second, 3_333)["fee_returned_amount"] for _ in range(3)]
    assert sum(returned) == second["fee_amount"] > 0 and returned == [20, 20, 20]
    # The first payment keeps the schedule that priced it, retired since.
    assert _refund(client, shop, first, 6_000)["fee_returned_amount"] == 0
    third = _pay(client, shop, 5_000)
    payments = [first, second, third]
    # The monthly volume so far (captures of the channel this month) picks the band of the next payment.
    channel = third["channel"]
    volume = sum(p["captured_amount"] for p in payments if p["channel"] == channel)
    response = client.post("/v1/fee-schedules", headers=headers, json={
        "channel": channel, "method": "qr", "kind": "tiered_by_monthly_volume",
        "tiers": [{"up_to": volume - 1, "rate": "0.01"}, {"rate": "0.001"}]})
    assert response.status_code == 201, response.text
    quote = client.post("/v1/fee-schedules/quote", headers=headers, json={
        "channel": channel, "method": "qr", "amount": 10_000, "currency": "CNY"}).json()
    assert quote["fee_amount"] == 10 and f"monthly volume {volume}" in quote["explanation"], (volume, quote)

    with db.uow(read_only=True) as uow:
        today = get_calendar(uow, tenant_id).business_date(uow.clock.now())
    run = client.post("/v1/clearing-batches/run", headers=headers, json={"business_date": today.isoformat()})
    assert run.status_code == 200, run.text
    batches = run.json()["data"]
    assert {b["channel"] for b in batches} == {p["channel"] for p in payments}
    for batch in batches:
        mine = [p for p in payments if p["channel"] == batch["channel"]]
        refunds = [r for p in mine for r in client.get("/v1/refunds", headers=headers,
                                                       params={"payment_id": p["id"]}).json()["data"]]
        assert (batch["payments_count"], batch["payments_gross_amount"], batch["payment_fees_amount"]) == (
            len(mine), sum(p["captured_amount"] for p in mine), sum(p["fee_amount"] for p in mine))
        assert (batch["refunds_count"], batch["refunds_gross_amount"], batch["refund_fee_returns_amount"]) == (
            len(refunds), sum(r["amount"] for r in refunds), sum(r["fee_returned_amount"] for r in refunds))
        assert batch["expected_net_amount"] == (batch["payments_gross_amount"] - batch["payment_fees_amount"]
                                                - batch["refunds_gross_amount"] + batch["refund_fee_returns_amount"])
        shards = {str(s): _balance(db, tenant_id, channel_receivable_code(batch["channel"], s))
                  for s in range(HOT_SHARDS)}
        assert batch["shard_amounts"] == {s: v for s, v in shards.items() if v}
        assert batch["status"] == "open" and batch["currency"] == "CNY" and batch["business_date"] == today.isoformat()
    again = client.post("/v1/clearing-batches/run", headers=headers, json={"business_date": today.isoformat()})
    assert [{**b, "computed_at": None} for b in again.json()["data"]] == [{**b, "computed_at": None}
                                                                          for b in batches]

    short, *rest = batches
    with db.uow() as uow:
        found = clearing.find_clearing_batch(uow, tenant_id, channel_code=short["channel"], business_date=today,
                                             currency="CNY")
        assert found is not None and found.id == short["id"] and found.expected_net_amount == short[
            "expected_net_amount"]
        entry = clearing.record_channel_settlement(uow, tenant_id, short["id"], amount=short["expected_net_amount"] - 7,
                                                   received_on=today, reference="UP-20260302")
        for batch in rest:
            clearing.record_channel_settlement(uow, tenant_id, batch["id"], amount=batch["expected_net_amount"],
                                               received_on=today, reference="PP-1", bank_account="operating")
        uow.commit()
    with db.uow() as uow:  # idempotent; a different settlement of the same batch is refused
        assert clearing.record_channel_settlement(uow, tenant_id, short["id"], amount=short["expected_net_amount"] - 7,
                                                  received_on=today, reference="UP-20260302") == entry
        with pytest.raises(Conflict):
            clearing.record_channel_settlement(uow, tenant_id, short["id"], amount=short["expected_net_amount"],
                                               received_on=today, reference="UP-20260302")
    for batch in batches:
        assert all(_balance(db, tenant_id, channel_receivable_code(batch["channel"], s)) == 0
                   for s in range(HOT_SHARDS))
    assert _balance(db, tenant_id, bank_account_code("custody")) == short["expected_net_amount"] - 7
    assert _balance(db, tenant_id, clearing.settlement_differences_code(short["channel"])) == 7
    assert _balance(db, tenant_id, bank_account_code("operating")) == sum(b["expected_net_amount"] for b in rest)
    settled = client.get(f"/v1/clearing-batches/{short['id']}", headers=headers).json()
    assert (settled["status"], settled["difference_amount"], settled["settlement_entry_id"]) == ("settled", -7, entry)
    rerun = client.post("/v1/clearing-batches/run", headers=headers, json={"business_date": today.isoformat()})
    assert {b["status"] for b in rerun.json()["data"]} == {"settled"}
    listed = client.get("/v1/clearing-batches", headers=headers, params={
        "channel": short["channel"], "from_date": today.isoformat(), "to_date": today.isoformat(),
        "status": "settled"}).json()
    assert [b["id"] for b in listed["data"]] == [short["id"]]
    assert client.get("/v1/clearing-batches", headers=headers, params={"status": "open"}).json()["data"] == []

    other = make_tenant(db, "Rival")
    assert client.get(f"/v1/clearing-batches/{short['id']}", headers=other.headers).status_code == 404
    assert client.get("/v1/clearing-batches", headers=other.headers).json()["data"] == []
    with db.uow() as uow, pytest.raises(NotFound):
        clearing.record_channel_settlement(uow, other.id, short["id"], amount=1, received_on=today,
                                           reference="x")

    shown = cli.invoke(app, ["clearing", "batches", "--tenant", tenant_id, "--date", today.isoformat()])
    assert shown.exit_code == 0 and short["id"] in shown.output, shown.output
    ran = cli.invoke(app, ["clearing", "run", "--tenant", tenant_id, "--date", today.isoformat()])
    assert ran.exit_code == 0 and f"{len(batches)} clearing batches" in ran.output, ran.output
    schedules = cli.invoke(app, ["clearing", "schedules", "--tenant", tenant_id])
    assert schedules.exit_code == 0 and "retired" in schedules.output, schedules.output

    # The worker's job builds the batches of a closed day (here: refreshes nothing, all are settled).
    clock.advance(timedelta(days=1))
    report = Runner(db, only=["clearing.run"]).run_pass()
    ran_today = [o for o in report.outcomes if o.tenant_id == tenant_id and o.business_date == today]
    assert [(o.job, o.status, o.processed) for o in ran_today] == [("clearing.run", "succeeded", len(batches))]
