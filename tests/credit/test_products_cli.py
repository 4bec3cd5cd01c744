"""`finloop credit products`: create from an example or a file, list with APRs, show, revise, retire, preview a
product's schedule with `finloop credit schedule --product`; bad input."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from finloop.cli import app
from finloop.db.uow import Database
from tests.conftest import TenantHandle


def test_products_from_the_command_line(cli: CliRunner, db: Database, tenant: TenantHandle, tmp_path: Path) -> None:
    examples = cli.invoke(app, ["credit", "products", "examples"])
    assert examples.exit_code == 0 and set(json.loads(examples.stdout)) == {
        "consumer_installment", "bnpl_3", "cash_30", "merchant_revolving"}
    created = cli.invoke(app, ["credit", "products", "create", "--tenant", tenant.id, "--example", "bnpl_3"])
    assert created.exit_code == 0, created.output
    bnpl = json.loads(created.stdout)
    assert bnpl["code"] == "bnpl_3" and bnpl["rates"][0]["apr"] == "0.000000"
    spec = tmp_path / "cash.json"
    spec.write_text(json.dumps({"code": "cash_14", "kind": "cash", "name": "Cash, two weeks", "currency": "CNY",
                                "rate": "0.0005", "terms": [7, 14], "min_principal_amount": 10_000,
                                "max_principal_amount": 500_000}))
    cash = json.loads(cli.invoke(app, ["credit", "products", "create", "--tenant", tenant.id, "--file",
                                       str(spec)]).stdout)
    assert (cash["term_unit"], cash["rate_basis"], cash["day_count"]) == ("day", "daily", "actual_365")
    listed = cli.invoke(app, ["credit", "products", "list", "--tenant", tenant.id])
    assert listed.exit_code == 0 and "bnpl_3" in listed.stdout and "14: 0.182500" in listed.stdout
    shown = cli.invoke(app, ["credit", "products", "show", "--tenant", tenant.id, "--product", cash["id"]])
    assert json.loads(shown.stdout)["id"] == cash["id"]

    change = tmp_path / "change.json"
    change.write_text(json.dumps({"rate": "0.0004"}))
    revised = cli.invoke(app, ["credit", "products", "revise", "--tenant", tenant.id, "--product", cash["id"],
                               "--file", str(change)])
    assert revised.exit_code == 0, revised.output
    v2 = json.loads(revised.stdout)
    assert (v2["version"], v2["rate"]) == (2, "0.0004")

    previewed = cli.invoke(app, ["credit", "schedule", "--tenant", tenant.id, "--product", v2["id"], "--principal",
                                 "1000.00", "--term", "14", "--start-date", "2026-03-02", "--json"])
    assert previewed.exit_code == 0, previewed.output
    schedule = json.loads(previewed.stdout)
    assert schedule["installments"][0]["total"] == "1005.60" and schedule["product_id"] == v2["id"]  # 0.04% × 14
    bnpl_preview = json.loads(cli.invoke(app, [
        "credit", "schedule", "--tenant", tenant.id, "--product", bnpl["id"], "--principal", "300", "--term", "3",
        "--start-date", "2026-03-02", "--json"]).stdout)
    assert bnpl_preview["subsidy"] == {"payer": "merchant", "amount": "9.00", "merchant_fee_rate": "0.03",
                                       "interest_covered": "6.00"}
    not_offered = cli.invoke(app, ["credit", "schedule", "--tenant", tenant.id, "--product", v2["id"],
                                   "--principal", "1000.00", "--term", "10"])
    assert not_offered.exit_code == 1 and "term_not_offered" in not_offered.stdout

    retired = cli.invoke(app, ["credit", "products", "retire", "--tenant", tenant.id, "--product", v2["id"]])
    assert retired.exit_code == 0 and "retired" in retired.stdout
    again = cli.invoke(app, ["credit", "products", "retire", "--tenant", tenant.id, "--product", v2["id"]])
    assert again.exit_code == 1 and "product_not_active" in again.stdout


def test_bad_product_input_from_the_command_line(cli: CliRunner, db: Database, tenant: TenantHandle,
                                                 tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"code": "x", "kind": "bnpl", "name": "X", "currency": "CNY", "rate": "0.1",
                               "terms": [3], "min_principal_amount": 1, "max_principal_amount": 10}))
    refused = cli.invoke(app, ["credit", "products", "create", "--tenant", tenant.id, "--file", str(bad)])
    assert refused.exit_code == 1 and "subsidy_required" in refused.stdout
    floats = tmp_path / "floats.json"
    floats.write_text('{"code": "y", "kind": "cash", "name": "Y", "currency": "CNY", "rate": 0.0005, '
                      '"min_term": 7, "max_term": 30, "min_principal_amount": 1, "max_principal_amount": 10}')
    refused = cli.invoke(app, ["credit", "products", "create", "--tenant", tenant.id, "--file", str(floats)])
    assert refused.exit_code == 1 and "invalid_rate" in refused.stdout
    assert cli.invoke(app, ["credit", "products", "create", "--tenant", tenant.id]).exit_code == 2
    assert cli.invoke(app, ["credit", "products", "create", "--tenant", tenant.id, "--example", "nope"]).exit_code == 2
    assert cli.invoke(app, ["credit", "products", "create", "--tenant", tenant.id, "--file",
                            str(tmp_path / "missing.json")]).exit_code == 2
    assert cli.invoke(app, ["credit", "schedule", "--product", "lpr_x", "--principal", "1", "--term", "3"]
                      ).exit_code == 2
    missing = cli.invoke(app, ["credit", "products", "show", "--tenant", tenant.id, "--product", "lpr_nope"])
    assert missing.exit_code == 1 and "product_not_found" in missing.stdout
