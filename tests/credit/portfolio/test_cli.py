"""`finloop credit portfolio`: the worked example, the reports as tables and as CSV files, the operating cost
policy, and bad input exiting non-zero with the error's code."""

from __future__ import annotations

import csv
import json
from datetime import date
from pathlib import Path

from typer.testing import CliRunner

from finloop.credit.portfolio.cli import portfolio_app
from finloop.db.uow import Database
from tests.conftest import TenantHandle
from tests.credit.portfolio.conftest import book, parents


def test_unit_economics_prints_the_worked_example(tmp_path: Path) -> None:
    cli = CliRunner()
    shown = cli.invoke(portfolio_app, ["unit-economics"])
    assert shown.exit_code == 0, shown.output
    assert "1800.00" in shown.stdout and "600.00" in shown.stdout and "900.00" in shown.stdout
    assert "325.00" in shown.stdout and "saves 275.00" in shown.stdout
    path = tmp_path / "unit.csv"
    written = cli.invoke(portfolio_app, ["unit-economics", "--csv", str(path)])
    assert written.exit_code == 0 and "wrote 2 rows" in written.stdout
    rows = list(csv.DictReader(path.open()))
    assert [(r["funding"], r["net_profit"]) for r in rows] == [("bullet", "90000"), ("amortising", "117500")]
    bad = cli.invoke(portfolio_app, ["unit-economics", "--funding-rate", "x"])
    assert bad.exit_code == 1 and "invalid_rate" in bad.stdout


def test_reports_from_the_command_line(cli: CliRunner, db: Database, tenant: TenantHandle, tmp_path: Path) -> None:
    p = parents(db, tenant.id, applicants=1)
    book(db, p, principal=700_000, disbursed_on=date(2026, 1, 10), state="overdue", dpd=35, snapshots=[
        {"month": "2026-01", "dpd": 0}, {"month": "2026-02", "dpd": 35}])
    base = ["--tenant", tenant.id]
    summary = cli.invoke(portfolio_app, ["summary", *base, "--as-of", "2026-03-01"])
    assert summary.exit_code == 0, summary.output
    assert "7000.00" in summary.stdout and "overdue_rate" in summary.stdout
    vintage = cli.invoke(portfolio_app, ["vintage", *base])
    assert vintage.exit_code == 0 and "2026-01" in vintage.stdout and "1.0000" in vintage.stdout
    rolls = cli.invoke(portfolio_app, ["roll-rates", *base, "--from", "2026-01", "--to", "2026-02"])
    assert rolls.exit_code == 0 and "written_off" in rolls.stdout
    pnl = cli.invoke(portfolio_app, ["pnl", *base])
    assert pnl.exit_code == 0 and "Reconciliation" in pnl.stdout
    out = cli.invoke(portfolio_app, ["roll-rates", *base, "--from", "2026-01", "--to", "2026-02", "--csv", "-"])
    assert out.exit_code == 0 and out.stdout.startswith("currency,from_bucket,to,")
    path = tmp_path / "pnl.csv"
    assert cli.invoke(portfolio_app, ["pnl", *base, "--csv", str(path)]).exit_code == 0
    assert [r["level"] for r in csv.DictReader(path.open())] == ["loan", "portfolio"]
    bad = cli.invoke(portfolio_app, ["roll-rates", *base, "--from", "2026-02", "--to", "2026-01"])
    assert bad.exit_code == 1 and "invalid_range" in bad.stdout
    policy = cli.invoke(portfolio_app, ["policy", *base, "--per-loan-month", "CNY=800"])
    assert policy.exit_code == 0 and json.loads(policy.stdout) == {
        "policy": {"method": "per_loan_month", "amounts": {"CNY": 800}}, "is_default": False}
