"""``finloop reports show`` and ``finloop export parquet``."""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl
from typer.testing import CliRunner

from finloop.cli import app
from finloop.db.uow import Database
from tests.conftest import TenantHandle
from tests.reports.builders import FROM, TO, decide, ledger_day, pay


def test_show_prints_a_report_as_json_csv_and_a_table(db: Database, cli: CliRunner, tenant: TenantHandle) -> None:
    pay(db, tenant.id, amount=6_000_000, channel="alipay")
    window = ["--tenant", tenant.id, "--from", FROM, "--to", TO]
    as_json = cli.invoke(app, ["reports", "show", "large-transactions", *window, "--format", "json"])
    assert as_json.exit_code == 0, as_json.output
    assert [r["amount"] for r in json.loads(as_json.output)["rows"]] == [6_000_000]
    as_csv = cli.invoke(app, ["reports", "show", "large-transactions", *window, "--format", "csv"])
    assert as_csv.output.splitlines()[0].startswith("payment_id,created_at,")
    assert len(as_csv.output.splitlines()) == 2
    table = cli.invoke(app, ["reports", "show", "payment-success", *window])
    assert table.exit_code == 0 and "alipay" in table.output
    listed = cli.invoke(app, ["reports", "list"])
    assert "stress-test" in listed.output and "threshold_amount" in listed.output


def test_show_names_a_bad_parameter(db: Database, cli: CliRunner, tenant: TenantHandle) -> None:
    answer = cli.invoke(app, ["reports", "show", "refund-rate", "--tenant", tenant.id, "--from", "03/01/2026"])
    assert answer.exit_code == 1
    assert "invalid_date (from)" in answer.output
    unknown = cli.invoke(app, ["reports", "show", "nothing", "--tenant", tenant.id])
    assert unknown.exit_code == 1 and "report_not_found" in unknown.output


def test_export_parquet_writes_what_polars_reads_back(db: Database, cli: CliRunner, tenant: TenantHandle,
                                                      other_tenant: TenantHandle, tmp_path: Path) -> None:
    for n in range(5):
        pay(db, tenant.id, amount=1_000 + n, channel="alipay")
    pay(db, other_tenant.id, amount=1, channel="alipay")
    ledger_day(db, tenant.id)
    decide(db, tenant.id, rules=["velocity"], outcome="decline", label="fraud_confirmed")
    answer = cli.invoke(app, ["export", "parquet", "--tenant", tenant.id, "--out", str(tmp_path), "--chunk-size", "2"])
    assert answer.exit_code == 0, answer.output
    payments = pl.read_parquet(tmp_path / "payments" / "*.parquet")
    assert payments.height == 5
    assert len(list((tmp_path / "payments").glob("*.parquet"))) == 3  # chunks of 2
    assert sorted(payments["amount"].to_list()) == [1_000, 1_001, 1_002, 1_003, 1_004]
    assert pl.read_parquet(tmp_path / "ledger_entries" / "*.parquet").height == 3
    assert pl.read_parquet(tmp_path / "ledger_postings" / "*.parquet").height == 6
    decisions = pl.read_parquet(tmp_path / "risk_decisions" / "*.parquet")
    assert decisions.height == 1 and json.loads(decisions["fired"][0])[0]["rule_id"] == "velocity"
    assert pl.read_parquet(tmp_path / "loans" / "*.parquet").height == 0
    assert "principal_amount" in pl.read_parquet(tmp_path / "credit_decisions" / "*.parquet").columns
