"""The wealth API: happy paths, bad input (a 4xx and nothing written), tenant isolation; and the CLI."""

from __future__ import annotations

from datetime import datetime

from fastapi.testclient import TestClient
from sqlalchemy import func, select
from typer.testing import CliRunner

from finloop.cli import app as cli_app
from finloop.core.clock import FrozenClock
from finloop.db.uow import Database
from finloop.ledger.models import Entry
from finloop.wealth.models import FundOrder
from tests.conftest import TenantHandle
from tests.wealth.conftest import Investors, make_investors


def count(db: Database, model: type[Entry] | type[FundOrder], tenant_id: str) -> int:
    with db.uow(read_only=True) as uow:
        total = uow.session.scalar(select(func.count()).select_from(model).where(model.tenant_id == tenant_id))
        return int(total or 0)


def test_wealth_api(client: TestClient, db: Database, clock: FrozenClock, investors: Investors,
                    other_tenant: TenantHandle) -> None:
    i, h = investors, investors.tenant.headers
    created = client.post("/v1/funds", headers=h, json={
        "code": "MMF2", "name": "Second", "currency": "CNY", "fast_redemption_daily_limit": 1_000})
    assert created.status_code == 201, created.text
    assert created.json()["min_subscription_amount"] == 1 and created.json()["status"] == "open"
    for bad, param in (({"code": "mmf 3", "name": "x", "currency": "CNY", "fast_redemption_daily_limit": 1}, "code"),
                       ({"code": "MMF3", "name": "x", "currency": "XXZ", "fast_redemption_daily_limit": 1},
                        "currency"),
                       ({"code": "MMF3", "name": "x", "currency": "CNY", "fast_redemption_daily_limit": 1.5},
                        "fast_redemption_daily_limit")):
        response = client.post("/v1/funds", headers=h, json=bad)
        assert response.status_code == 400 and param in (response.json()["error"]["param"] or ""), response.text
    assert client.post("/v1/funds", headers=h, json={"code": "MMF2", "name": "Again", "currency": "CNY",
                                                     "fast_redemption_daily_limit": 1}).status_code == 409
    assert [f["code"] for f in client.get("/v1/funds", headers=h).json()["data"]] == ["MMF1", "MMF2"]

    published = client.post(f"/v1/funds/{i.fund_id}/prices", headers=h,
                            json={"price_on": "2026-03-02", "income_per_10k": "0.6523", "annualised_7d": "0.0238"})
    assert published.status_code == 201, published.text
    assert published.json()["annualised_7d"] == "0.0238"
    wrong = client.post(f"/v1/funds/{i.fund_id}/prices", headers=h,
                        json={"price_on": "2026-03-01", "income_per_10k": "0.6523", "annualised_7d": "0.05"})
    assert wrong.status_code == 400 and wrong.json()["error"]["code"] == "annualised_yield_inconsistent"
    future = client.post(f"/v1/funds/{i.fund_id}/prices", headers=h,
                         json={"price_on": "2026-03-09", "income_per_10k": "0.6"})
    assert future.status_code == 400 and future.json()["error"]["param"] == "price_on"
    for bad_price in ({"income_per_10k": "-0.1"}, {"income_per_10k": "0.1234567"}, {"income_per_10k": "NaN"},
                      {"price_on": "1999-12-31"}, {"annualised_7d": "2"}):
        response = client.post(f"/v1/funds/{i.fund_id}/prices", headers=h,
                               json={"price_on": "2026-02-27", "income_per_10k": "0.6", **bad_price})
        assert response.status_code == 400, (bad_price, response.text)
    changed = client.post(f"/v1/funds/{i.fund_id}/prices", headers=h,
                          json={"price_on": "2026-03-02", "income_per_10k": "0.7"})
    assert changed.status_code == 409
    prices = client.get(f"/v1/funds/{i.fund_id}/prices", headers=h).json()
    assert [p["income_per_10k"] for p in prices["data"]] == ["0.6523"]

    entries_before = count(db, Entry, i.tenant.id)
    too_much = client.post("/v1/fund-orders", headers=h, json={
        "fund_id": i.fund_id, "kind": "subscribe", "holder_kind": "customer", "holder_id": i.customer_id,
        "amount": 1_000_001})
    assert too_much.status_code == 422 and too_much.json()["error"]["code"] == "insufficient_funds"
    assert count(db, Entry, i.tenant.id) == entries_before and count(db, FundOrder, i.tenant.id) == 0
    for bad_order in ({"kind": "buy"}, {"amount": 0}, {"amount": "100"}, {"holder_kind": "promoter"},
                      {"holder_id": "nobody"}, {"extra": 1}):
        body = {"fund_id": i.fund_id, "kind": "subscribe", "holder_kind": "customer", "holder_id": i.customer_id,
                "amount": 1_000, **bad_order}
        response = client.post("/v1/fund-orders", headers=h, json=body)
        assert 400 <= response.status_code < 500, (bad_order, response.text)
    assert count(db, FundOrder, i.tenant.id) == 0

    sub = client.post("/v1/fund-orders", headers=h, json={
        "fund_id": i.fund_id, "kind": "subscribe", "holder_kind": "customer", "holder_id": i.customer_id,
        "amount": 300_000})
    assert sub.status_code == 201, sub.text
    redeem = client.post("/v1/fund-orders", headers=h, json={
        "fund_id": i.fund_id, "kind": "redeem", "holder_kind": "customer", "holder_id": i.customer_id,
        "amount": 100_000})
    assert redeem.json()["status"] == "pending" and redeem.json()["settle_on"] == "2026-03-03"
    listed = client.get("/v1/fund-orders", headers=h, params={"kind": "redeem", "holder_id": i.customer_id}).json()
    assert [o["id"] for o in listed["data"]] == [redeem.json()["id"]]
    assert client.get(f"/v1/fund-orders/{sub.json()['id']}", headers=h).json()["amount"] == 300_000

    sweep = client.put(f"/v1/sweeps/customer/{i.customer_id}", headers=h,
                       json={"fund_id": i.fund_id, "keep_amount": 100_000, "min_sweep_amount": 500})
    assert sweep.status_code == 200, sweep.text
    assert client.get(f"/v1/sweeps/customer/{i.customer_id}", headers=h).json()["keep_amount"] == 100_000
    assert client.put(f"/v1/sweeps/customer/{i.customer_id}", headers=h,
                      json={"fund_id": i.fund_id, "keep_amount": -1}).status_code == 400

    statement = client.get(f"/v1/fund-holdings/customer/{i.customer_id}", headers=h,
                           params={"from_on": "2026-03-01", "to_on": "2026-03-31"})
    assert statement.status_code == 200, statement.text
    body = statement.json()
    assert body["holdings"] == [{"fund_id": i.fund_id, "fund_code": "MMF1", "currency": "CNY",
                                 "account_id": body["holdings"][0]["account_id"], "amount": 200_000}]
    assert len(body["subscriptions"]) == 1 and len(body["redemptions"]) == 1
    assert client.get(f"/v1/fund-holdings/customer/{i.customer_id}", headers=h,
                      params={"from_on": "2026-03-05", "to_on": "2026-03-01"}).status_code == 400

    # Another tenant sees none of it.
    o = other_tenant.headers
    assert client.get(f"/v1/funds/{i.fund_id}", headers=o).status_code == 404
    assert client.get(f"/v1/funds/{i.fund_id}/prices", headers=o).status_code == 404
    assert client.get(f"/v1/fund-orders/{sub.json()['id']}", headers=o).status_code == 404
    assert client.get("/v1/fund-orders", headers=o).json()["data"] == []
    assert client.get(f"/v1/fund-holdings/customer/{i.customer_id}", headers=o).status_code == 404
    assert client.get(f"/v1/sweeps/customer/{i.customer_id}", headers=o).status_code == 404
    assert client.post("/v1/fund-orders", headers=o, json={
        "fund_id": i.fund_id, "kind": "subscribe", "holder_kind": "customer", "holder_id": i.customer_id,
        "amount": 1_000}).status_code == 404
    assert client.post(f"/v1/funds/{i.fund_id}/prices", headers=o,
                       json={"price_on": "2026-03-02", "income_per_10k": "0.6"}).status_code == 404


def test_wealth_cli(cli: CliRunner, db: Database, clock: FrozenClock, tenant: TenantHandle) -> None:
    i = make_investors(db, tenant)
    with db.uow() as uow:
        from finloop.wealth import service as wealth

        wealth.place_order(uow, tenant.id, fund_id=i.fund_id, kind="subscribe", holder_kind="customer",
                           holder_id=i.customer_id, amount=100_000)
        uow.commit()
    clock.set(datetime(2026, 3, 4, 1, 0, tzinfo=clock.now().tzinfo))
    published = cli.invoke(cli_app, ["wealth", "publish", "--tenant", tenant.id, "--fund", "MMF1",
                                     "--date", "2026-03-03", "--per-10k", "0.6523", "--annualised", "0.0238"])
    assert published.exit_code == 0, published.output
    bad = cli.invoke(cli_app, ["wealth", "publish", "--tenant", tenant.id, "--fund", "MMF1", "--date", "2026-03-03",
                               "--per-10k", "abc"])
    assert bad.exit_code != 0
    accrued = cli.invoke(cli_app, ["wealth", "accrue", "--tenant", tenant.id, "--date", "2026-03-03"])
    assert accrued.exit_code == 0 and "income=6\n" in accrued.output, accrued.output  # 100,000 * 0.6523 / 10,000
    again = cli.invoke(cli_app, ["wealth", "accrue", "--tenant", tenant.id, "--date", "2026-03-03"])
    assert "already accrued" in again.output
    weekend = cli.invoke(cli_app, ["wealth", "accrue", "--tenant", tenant.id, "--date", "2026-03-07"])
    assert weekend.exit_code == 1
    statement = cli.invoke(cli_app, ["wealth", "statement", "--tenant", tenant.id, "--holder-kind", "customer",
                                     "--holder-id", i.customer_id, "--from", "2026-03-01", "--to", "2026-03-31"])
    assert statement.exit_code == 0, statement.output
    assert "MMF1 100006 CNY" in statement.output and "total income: 6 CNY" in statement.output
