"""`finloop credit servicing`: the end of day with its table, the sub-ledger check, accounts, a repayment with its
allocation, the provisioning policy and a manual write-off; bad input exits 1 with its code."""

from __future__ import annotations

import json
from datetime import date

import pytest
from typer.testing import CliRunner

import finloop.cli
from finloop.cli import app
from finloop.db.uow import Database
from tests.conftest import TenantHandle
from tests.credit.servicing.conftest import at


def test_servicing_from_the_command_line(cli: CliRunner, db: Database, tenant: TenantHandle, loan: str,
                                        db_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    # The commands run on the test's clock (servicing's "today" decides what is over and what is owed).
    monkeypatch.setattr(finloop.cli, "database", lambda: Database(db_url, clock=db.clock))
    base = ["credit", "servicing"]
    who = ["--tenant", tenant.id]
    at(db.clock, date(2026, 3, 5), 1)  # type: ignore[arg-type]
    closed = cli.invoke(app, [*base, "eod", *who, "--through", "2026-03-04"])
    assert closed.exit_code == 0, closed.output
    assert "2026-03-02" in closed.stdout and "2026-03-04" in closed.stdout
    too_soon = cli.invoke(app, [*base, "eod", *who, "--through", "2026-03-05"])
    assert too_soon.exit_code == 1 and "day_not_over" in too_soon.stdout
    checked = cli.invoke(app, [*base, "check", *who])
    assert checked.exit_code == 0 and "equals the general ledger" in checked.stdout
    listed = cli.invoke(app, [*base, "accounts", *who, "--state", "performing"])
    assert listed.exit_code == 0 and loan in listed.stdout

    paid = cli.invoke(app, [*base, "repay", *who, "--loan", loan, "--amount", "5000", "--reference", "cash-1"])
    assert paid.exit_code == 0, paid.output
    assert json.loads(paid.stdout)["allocation"]["advance"] == 5000
    wrong = cli.invoke(app, [*base, "repay", *who, "--loan", loan, "--amount", "5000", "--reference", "cash-2",
                             "--prepayment", "someday"])
    assert wrong.exit_code == 1 and "invalid_prepayment" in wrong.stdout

    policy = cli.invoke(app, [*base, "provision-policy", *who, "--policy", '{"method": "expected_loss"}'])
    assert policy.exit_code == 0 and json.loads(policy.stdout)["method"] == "expected_loss"
    bad_policy = cli.invoke(app, [*base, "provision-policy", *who, "--policy", '{"method": "guess"}'])
    assert bad_policy.exit_code == 1 and "invalid_provision_method" in bad_policy.stdout

    gone = cli.invoke(app, [*base, "write-off", *who, "--loan", loan, "--reason", "fraud confirmed"])
    assert gone.exit_code == 0, gone.output
    assert json.loads(gone.stdout)["state"] == "written_off"
