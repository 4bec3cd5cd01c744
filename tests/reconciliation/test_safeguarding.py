"""Safeguarding: the custody statement's balance against everything the ledger owes, per currency and day."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta

from fastapi.testclient import TestClient
from sqlalchemy import select
from typer.testing import CliRunner

from finloop.cli import app as cli_app
from finloop.core.clock import FrozenClock
from finloop.db.uow import Database
from finloop.ledger import service as ledger
from finloop.ledger.domain import AccountType, BalanceRule, PostingSpec, TransferSpec
from finloop.payments.postings import AccountSpec, ensure_account
from finloop.reconciliation import safeguarding, service
from finloop.reconciliation.statement_writer import Movement, camt053
from finloop.settlement.accounts import Bucket, PartyKind, bank_account_code, party_account_code
from finloop.webhooks.models import WebhookMessage
from finloop.worker.runner import Runner
from tests.conftest import TenantHandle

DAY = date(2026, 3, 2)
NEXT = date(2026, 3, 3)
LIABILITY = BalanceRule.DEBITS_MUST_NOT_EXCEED_CREDITS


def _owe(db: Database, tenant_id: str, key: str, amounts: dict[str, int], currency: str = "CNY") -> None:
    """Money arrives in custody and is owed: Dr assets:bank:custody, Cr each liability."""
    with db.uow() as uow:
        custody = ensure_account(uow, tenant_id, AccountSpec(bank_account_code("custody"), AccountType.ASSET),
                                 currency)
        postings = [PostingSpec(custody, sum(amounts.values()), currency)]
        for code, amount in amounts.items():
            account = ensure_account(uow, tenant_id, AccountSpec(code, AccountType.LIABILITY, LIABILITY), currency)
            postings.append(PostingSpec(account, -amount, currency))
        ledger.post_transfer(uow, tenant_id, TransferSpec(key, tuple(postings), "custody in"))
        uow.commit()


def _statement(closing: int, on: date, currency: str = "CNY") -> bytes:
    return camt053(account="CUSTODY-CNY-01", currency=currency, opening_balance=0,
                   movements=[Movement(closing, "credit", on, None, f"B{on:%d}", "in")], statement_id=f"S{on:%d}",
                   created_at=datetime(on.year, on.month, on.day, 20, tzinfo=UTC), opening_on=on, closing_on=on)


def _alerts(db: Database) -> list[dict]:  # type: ignore[type-arg]
    with db.uow(read_only=True) as uow:
        return [json.loads(message.payload)["data"] for message in uow.session.scalars(
            select(WebhookMessage).where(WebhookMessage.type == safeguarding.SHORTFALL_TOPIC)
            .order_by(WebhookMessage.created_at, WebhookMessage.id))]


def test_custody_balance_against_what_is_owed(db: Database, clock: FrozenClock, tenant: TenantHandle,
                                              other_tenant: TenantHandle) -> None:
    merchant = party_account_code(PartyKind.MERCHANT, "mer_1", Bucket.AVAILABLE)
    promoter = party_account_code(PartyKind.PROMOTER, "pro_1", Bucket.PENDING)
    _owe(db, tenant.id, "in-1", {merchant: 60_000, promoter: 10_000, "liabilities:customer:cus_1:wallet": 30_000})
    _owe(db, tenant.id, "in-usd", {merchant: 500}, currency="USD")
    # Not owed to others: the platform's own liabilities are not counted.
    _owe(db, tenant.id, "in-2", {"liabilities:tax:vat": 999})

    with db.uow() as uow:
        checks = {c.currency: c for c in safeguarding.run_check(uow, tenant.id, on=DAY)}
        uow.commit()
    assert {(c.status, c.owed_amount, c.bank_balance) for c in checks.values()} == {
        ("no_statement", 100_000, None), ("no_statement", 500, None)}
    assert checks["CNY"].breakdown == {"owed": {"merchant": 60_000, "promoter": 10_000, "customer": 30_000},
                                       "fund_assets": 0, "ledger_custody_balance": 100_999}
    assert [a["status"] for a in _alerts(db)] == ["no_statement", "no_statement"]

    with db.uow() as uow:
        service.import_file(uow, tenant.id, format="camt053", content=_statement(100_000, DAY), source="custody")
        cny = {c.currency: c for c in safeguarding.run_check(uow, tenant.id, on=DAY)}["CNY"]
        uow.commit()
    assert (cny.status, cny.shortfall_amount, cny.bank_balance, cny.id) == ("ok", 0, 100_000, checks["CNY"].id)

    # Next day: 5,000 more owed, the bank shows only 4,000 of it.
    clock.advance(timedelta(days=1))
    _owe(db, tenant.id, "in-3", {merchant: 5_000})
    with db.uow() as uow:
        service.import_file(uow, tenant.id, format="camt053", content=_statement(104_000, NEXT), source="custody")
        short = {c.currency: c for c in safeguarding.run_check(uow, tenant.id, on=NEXT)}["CNY"]
        uow.commit()
    assert (short.status, short.owed_amount, short.bank_balance, short.shortfall_amount) == (
        "shortfall", 105_000, 104_000, 1_000)
    [alert] = [a for a in _alerts(db) if a["checked_on"] == "2026-03-03" and a["currency"] == "CNY"]
    assert (alert["status"], alert["shortfall_amount"], alert["checked_on"], alert["currency"]) == (
        "shortfall", 1_000, "2026-03-03", "CNY")
    count = len(_alerts(db))
    with db.uow() as uow:
        again = {c.currency: c for c in safeguarding.run_check(uow, tenant.id, on=NEXT)}["CNY"]
        # The day before is still judged on that day's books and statement.
        before = {c.currency: c for c in safeguarding.run_check(uow, tenant.id, on=DAY)}["CNY"]
        uow.commit()
    assert (again.id, again.shortfall_amount) == (short.id, 1_000) and len(_alerts(db)) == count
    assert (before.status, before.owed_amount, before.bank_balance) == ("ok", 100_000, 100_000)

    with db.uow() as uow:
        assert safeguarding.run_check(uow, other_tenant.id, on=NEXT) == []
        listed = safeguarding.list_checks(uow, tenant.id, status="shortfall")
        assert [c.id for c in listed] == [short.id]


def test_safeguarding_routes_cli_and_job(db: Database, clock: FrozenClock, client: TestClient, cli: CliRunner,
                                        tenant: TenantHandle, other_tenant: TenantHandle,
                                        tmp_path) -> None:  # type: ignore[no-untyped-def]
    _owe(db, tenant.id, "in-1", {party_account_code(PartyKind.MERCHANT, "mer_1", Bucket.PENDING): 2_000})
    path = tmp_path / "custody.xml"
    path.write_bytes(_statement(1_500, DAY))
    result = cli.invoke(cli_app, ["reconciliation", "import", "--tenant", tenant.id, "--format", "camt053",
                                  "--source", "custody", "--file", str(path)])
    assert result.exit_code == 0, result.output
    assert "1 lines" in result.output
    bad = tmp_path / "bad.csv"
    bad.write_bytes(b"type,reference\n")
    result = cli.invoke(cli_app, ["reconciliation", "import", "--tenant", tenant.id, "--format", "generic",
                                  "--source", "g", "--file", str(bad)])
    assert result.exit_code == 1 and "file_rejected" in result.output

    result = cli.invoke(cli_app, ["reconciliation", "safeguard", "--tenant", tenant.id, "--date", "2026-03-02"])
    assert result.exit_code == 2 and "shortfall" in result.output  # a shortfall fails the command

    run = client.post("/v1/reconciliation/safeguarding/run", json={"on": "2026-03-02"}, headers=tenant.headers)
    assert run.status_code == 200, run.text
    [check] = run.json()["data"]
    assert (check["status"], check["owed_amount"], check["bank_balance"], check["shortfall_amount"]) == (
        "shortfall", 2_000, 1_500, 500)
    listed = client.get("/v1/reconciliation/safeguarding", params={"status": "shortfall"}, headers=tenant.headers)
    assert [c["id"] for c in listed.json()["data"]] == [check["id"]]
    assert client.get("/v1/reconciliation/safeguarding", headers=other_tenant.headers).json()["data"] == []
    assert client.get("/v1/reconciliation/safeguarding", params={"status": "bad"},
                      headers=tenant.headers).status_code == 400
    assert client.post("/v1/reconciliation/safeguarding/run", json={"on": "soon"},
                       headers=tenant.headers).status_code == 400
    assert len(_alerts(db)) == 1  # the CLI raised it; the API re-run found the same shortfall

    # The worker runs the check once the day is closed (and the custody statement usually in).
    clock.advance(timedelta(days=2))
    report = Runner(db, only=["reconciliation.safeguard"]).run_pass()
    ran = [(o.job, o.status, o.processed) for o in report.outcomes if o.tenant_id == tenant.id
           and o.business_date == DAY]
    assert ran == [("reconciliation.safeguard", "succeeded", 1)]
    # The next day has no newer statement: judged on the latest one, still short — one alert per day.
    assert sorted(a["checked_on"] for a in _alerts(db)) == ["2026-03-02", "2026-03-03"]
