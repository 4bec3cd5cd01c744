"""Unified statements: totals equal their inputs; periods; the CLI commands of the matching engine."""

from __future__ import annotations

import json
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import openpyxl
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from finloop.cli import app
from finloop.core.clock import FrozenClock
from finloop.db.uow import Database
from finloop.reconciliation import discrepancies
from finloop.reconciliation import service as imports
from finloop.reconciliation.statements import DIMENSIONS, Period, period_range, rows_frame, summarize
from finloop.worker.runner import Runner
from tests.conftest import TenantHandle

DAY = date(2026, 3, 2)

row = st.fixed_dictionaries({
    "date": st.sampled_from([DAY, date(2026, 3, 3)]), "channel": st.sampled_from(["wx", "ali", "card"]),
    "merchant_id": st.sampled_from(["mer_1", "mer_2", None]), "method": st.sampled_from(["qr", "card", None]),
    "type": st.sampled_from(["payment", "refund", "fee"]), "currency": st.sampled_from(["CNY", "USD"]),
    "amount": st.integers(-10**12, 10**12)})


@settings(max_examples=60, deadline=None)
@given(st.lists(row, max_size=40))
def test_totals_equal_the_inputs_per_dimension_and_currency(rows: list[dict[str, Any]]) -> None:
    lines, totals = summarize(rows_frame(rows))
    for currency in ("CNY", "USD"):
        expected = sum(r["amount"] for r in rows if r["currency"] == currency)
        assert sum(a for c, a in lines.select("currency", "amount").iter_rows() if c == currency) == expected
        for dimension in DIMENSIONS:
            frame = totals[dimension]
            assert sum(n for c, n in frame.select("currency", "net").iter_rows() if c == currency) == expected
            for value in {r[dimension] for r in rows if r["currency"] == currency}:
                mine = [r for r in rows if r["currency"] == currency and r[dimension] == value]
                got = [t for t in frame.iter_rows(named=True) if t["currency"] == currency and t[dimension] == value]
                assert len(got) == 1
                assert got[0]["payments"] == sum(r["amount"] for r in mine if r["type"] == "payment")
                assert got[0]["fees"] == sum(r["amount"] for r in mine if r["type"] == "fee")
                assert got[0]["count"] == sum(1 for r in mine if r["type"] != "fee")
    assert lines["count"].sum() == len(rows) if rows else lines.height == 0


def test_periods() -> None:
    assert period_range(Period.DAILY, DAY) == (DAY, DAY)
    assert period_range(Period.WEEKLY, date(2026, 3, 5)) == (date(2026, 3, 2), date(2026, 3, 8))
    assert period_range(Period.MONTHLY, date(2026, 2, 14)) == (date(2026, 2, 1), date(2026, 2, 28))
    assert period_range(Period.MONTHLY, date(2026, 12, 31)) == (date(2026, 12, 1), date(2026, 12, 31))


def test_cli_run_discrepancies_statement_and_the_job(cli: CliRunner, db: Database, tenant: TenantHandle,
                                                    tmp_path: Path, clock: FrozenClock) -> None:
    bill = (b"type,reference,channel_ref,refund_reference,amount,fee,currency,time\n"
            b"payment,att_unknown,ch_1,,1500,9,CNY,2026-03-02T09:00:00+00:00\n")
    with db.uow() as uow:
        imports.import_file(uow, tenant.id, format="generic", content=bill, source="custody", business_date=DAY)
        uow.commit()
    result = cli.invoke(app, ["reconciliation", "run", "--tenant", tenant.id, "--source", "custody",
                              "--date", DAY.isoformat()])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["counts"]["by_class"] == {"missing_on_platform": 1}
    listed = cli.invoke(app, ["reconciliation", "discrepancies", "--tenant", tenant.id])
    assert listed.exit_code == 0 and "missing_on_platform" in listed.output
    bad = cli.invoke(app, ["reconciliation", "discrepancies", "--tenant", tenant.id, "--status", "nope"])
    assert bad.exit_code == 1 and "invalid_choice" in bad.output
    csv = cli.invoke(app, ["reconciliation", "statement", "--tenant", tenant.id, "--period", "daily",
                           "--on", DAY.isoformat(), "--format", "csv"])
    assert csv.exit_code == 0 and csv.output.startswith("date,channel,merchant_id,method,type,currency,count,amount")
    out = tmp_path / "week.xlsx"
    xlsx = cli.invoke(app, ["reconciliation", "statement", "--tenant", tenant.id, "--period", "weekly",
                            "--on", DAY.isoformat(), "--format", "xlsx", "--out", str(out)])
    assert xlsx.exit_code == 0, xlsx.output
    assert openpyxl.load_workbook(out).sheetnames[0] == "lines"
    assert cli.invoke(app, ["reconciliation", "statement", "--tenant", tenant.id, "--period", "yearly",
                            "--on", DAY.isoformat()]).exit_code != 0

    # The day job, once the day closed: it matches every source with files (the same inputs: the same run).
    clock.advance(timedelta(days=1))
    report = Runner(db, only=["reconciliation.match"]).run_pass()
    assert {(o.job, o.status, o.processed) for o in report.outcomes} == {("reconciliation.match", "succeeded", 1)}
    with db.uow(read_only=True) as uow:
        assert len(discrepancies.list_runs(uow, tenant.id)) == 1
