"""The settlement API and CLI: profiles, FX rates, runs, batches, reserves, statements; bad input and tenants."""

from __future__ import annotations

import json
from datetime import date, timedelta

from finloop.cli import app
from tests.settlement.conftest import Shop
from tests.settlement.test_settlement import MON, TUE, after_close


def test_profiles_rates_runs_batches_reserves_and_statements(client, tenant, other_tenant, clock, shop: Shop) -> None:
    h, o = tenant.headers, other_tenant.headers
    path = f"/v1/settlement-profiles/merchant/{shop.merchant_id}"
    assert client.get(path, headers=h).status_code == 404
    put = client.put(path, headers=h, json={"cycle": "t_plus_n", "offset_days": 0, "reserve_rate": "0.1",
                                            "reserve_days": 10, "settlement_currency": "CNY"})
    assert put.status_code == 200, put.text
    assert put.json()["reserve_rate"] == "0.1"
    assert client.get(path, headers=h).json()["offset_days"] == 0
    # Bad input: a 400 with code and param, nothing written.
    for body, param in (({"reserve_rate": "1.5"}, "reserve_rate"), ({"reserve_rate": 0.1}, "reserve_rate"),
                        ({"cycle": "weekly"}, "weekday"), ({"cycle": "daily"}, "cycle"),
                        ({"offset_days": 31}, "offset_days"), ({"settlement_currency": "ABC"}, "settlement_currency"),
                        ({"reserve_rate": "0.1", "reserve_days": 0}, "reserve_days"), ({"extra": 1}, "extra")):
        bad = client.put(path, headers=h, json=body)
        assert bad.status_code == 400, (body, bad.text)
        assert bad.json()["error"]["param"] == param, (body, bad.text)
    assert client.get(path, headers=h).json()["reserve_rate"] == "0.1"
    # Another tenant sees no such merchant.
    assert client.get(path, headers=o).status_code == 404
    assert client.put(path, headers=o, json={}).status_code == 404
    missing = client.put("/v1/settlement-profiles/promoter/nobody", headers=h, json={})
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "promoter_not_found"

    rate = client.post("/v1/fx-rates", headers=h, json={"base": "USD", "quote": "CNY", "rate": "7.25",
                                                        "source": "bank", "as_of": "2026-03-02T08:00:00Z"})
    assert rate.status_code == 201, rate.text
    assert client.post("/v1/fx-rates", headers=h, json={"base": "USD", "quote": "CNY", "rate": "7,25",
                                                        "source": "b", "as_of": "2026-03-02T08:00:00Z"}
                       ).status_code == 400
    assert [r["rate"] for r in client.get("/v1/fx-rates", headers=h).json()["data"]] == ["7.25"]
    assert client.get("/v1/fx-rates", headers=o).json()["data"] == []

    shop.sell(MON, 1_000, "USD")
    shop.sell(MON, 2_001)
    clock.set(after_close(MON))
    early = client.post("/v1/settlement-batches/run", headers=h, json={"business_date": TUE.isoformat()})
    assert early.status_code == 400 and early.json()["error"]["code"] == "business_date_not_closed"
    run = client.post("/v1/settlement-batches/run", headers=h, json={"business_date": MON.isoformat()})
    assert run.status_code == 200, run.text
    settled = {b["currency"]: b for b in run.json()["batches"]}
    assert (settled["USD"]["settled_amount"], settled["USD"]["fx_rate"], settled["USD"]["fx_source"]) == (
        7_250, "7.25", "bank")
    assert (settled["CNY"]["reserve_amount"], settled["CNY"]["available_amount"]) == (200, 1_801)
    again = client.post("/v1/settlement-batches/run", headers=h, json={"business_date": MON.isoformat()})
    assert again.json()["batches"] == []

    listed = client.get("/v1/settlement-batches", headers=h, params={"party_id": shop.merchant_id, "limit": 1})
    assert listed.status_code == 200 and listed.json()["has_more"] is True
    rest = client.get("/v1/settlement-batches", headers=h,
                      params={"starting_after": listed.json()["next_cursor"], "status": "settled"}).json()
    assert len(rest["data"]) == 1
    batch_id = settled["USD"]["id"]
    assert client.get(f"/v1/settlement-batches/{batch_id}", headers=h).json()["cohort_date"] == MON.isoformat()
    assert client.get(f"/v1/settlement-batches/{batch_id}", headers=o).status_code == 404
    assert client.get("/v1/settlement-batches", headers=o).json()["data"] == []
    reserves = client.get("/v1/reserves", headers=h, params={"status": "held"}).json()["data"]
    assert sorted(r["amount"] for r in reserves) == [200, 725]
    assert client.get("/v1/reserves", headers=o).json()["data"] == []

    statement_path = f"/v1/statements/merchant/{shop.merchant_id}"
    params = {"from_on": MON.isoformat(), "to_on": (MON + timedelta(days=1)).isoformat()}
    body = client.get(statement_path, headers=h, params=params)
    assert body.status_code == 200, body.text
    cny = {c["currency"]: c for c in body.json()["currencies"]}["CNY"]
    assert (cny["reserve"], cny["available"]) == (925, 1_801 + 6_525)
    assert [r["release_on"] for r in cny["upcoming_releases"]] == ["2026-03-12", "2026-03-12"]
    csv = client.get(statement_path, headers=h, params=params | {"format": "csv"})
    assert csv.status_code == 200 and csv.headers["content-type"].startswith("text/csv")
    assert csv.text.startswith("section,currency,date,name,amount,detail")
    assert client.get(statement_path, headers=o, params=params).status_code == 404
    assert client.get(statement_path, headers=h, params={"from_on": "2026-03-05", "to_on": "2026-03-01"}
                      ).json()["error"]["code"] == "invalid_date_range"


def test_cli(cli, tenant, shop: Shop) -> None:
    added = cli.invoke(app, ["settlement", "fx-rate", "add", "--tenant", tenant.id, "--base", "EUR", "--quote",
                             "CNY", "--rate", "7.8", "--source", "cli", "--as-of", "2026-03-01T00:00:00+00:00"])
    assert added.exit_code == 0, added.output
    assert json.loads(added.stdout)["rate"] == "7.8"
    assert cli.invoke(app, ["settlement", "fx-rate", "add", "--tenant", tenant.id, "--base", "EUR", "--quote",
                            "CNY", "--rate", "x", "--source", "cli"]).exit_code == 2
    shop.sell(MON, 3_000)
    ran = cli.invoke(app, ["settlement", "run", "--tenant", tenant.id, "--date", TUE.isoformat()])
    assert ran.exit_code == 0, ran.output
    assert json.loads(ran.stdout)["batches"] == 1
    shown = cli.invoke(app, ["settlement", "statement", "--tenant", tenant.id, "--party-kind", "merchant",
                             "--party-id", shop.merchant_id, "--from", MON.isoformat(), "--to",
                             date(2026, 12, 31).isoformat()])
    assert shown.exit_code == 0, shown.output
    [cny] = json.loads(shown.stdout)["currencies"]
    assert cny["available"] == 3_000
    assert cli.invoke(app, ["settlement", "run", "--tenant", tenant.id, "--date", "2026-13-01"]).exit_code == 2
    assert cli.invoke(app, ["settlement", "run", "--tenant", tenant.id, "--date", "0001-01-01"]).exit_code == 1
