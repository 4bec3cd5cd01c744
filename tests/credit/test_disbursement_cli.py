"""`finloop credit funding` and `finloop credit loans`: add and change sources, disburse signed applications (a
batch with a missing application exits 1 with its error), list and show loans; bad input."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from finloop.cli import app
from finloop.credit import disbursement
from finloop.db.uow import Database
from tests.conftest import TenantHandle
from tests.credit.test_disbursement import borrower, signed
from tests.credit.test_limits import product


def test_funding_and_loans_from_the_command_line(cli: CliRunner, db: Database, tenant: TenantHandle) -> None:
    base = ["--tenant", tenant.id]
    added = cli.invoke(app, ["credit", "funding", "add", *base, "--code", "bank_a", "--kind", "partner_bank",
                             "--currency", "CNY", "--annual-rate", "0.05", "--quota", "10000000"])
    assert added.exit_code == 0, added.output
    source = json.loads(added.stdout)
    bad = cli.invoke(app, ["credit", "funding", "add", *base, "--code", "bank_b", "--kind", "partner_bank",
                           "--currency", "CNY", "--annual-rate", "abc", "--quota", "1"])
    assert bad.exit_code == 1 and "invalid_rate" in bad.stdout
    changed = cli.invoke(app, ["credit", "funding", "set", *base, "--source", source["id"], "--annual-rate", "0.04"])
    assert changed.exit_code == 0 and json.loads(changed.stdout)["annual_rate"] == "0.04"
    listed = cli.invoke(app, ["credit", "funding", "list", *base])
    assert listed.exit_code == 0 and "bank_a" in listed.stdout

    product(db, tenant.id, "consumer_installment")
    applicant_id, _ = borrower(db, tenant.id)
    application_id = signed(db, tenant.id, applicant_id)
    paid = cli.invoke(app, ["credit", "loans", "disburse", *base, "--application", application_id,
                            "--application", "lap_missing"])
    assert paid.exit_code == 1 and "active" in paid.stdout and "application_not_found" in paid.stdout
    loans = cli.invoke(app, ["credit", "loans", "list", *base, "--status", "active"])
    assert loans.exit_code == 0 and "5000.00 CNY" in loans.stdout
    with db.uow(read_only=True) as uow:
        loan_id = disbursement.list_loans(uow, tenant.id)[0].id
    shown = cli.invoke(app, ["credit", "loans", "show", *base, "--loan", loan_id])
    assert shown.exit_code == 0, shown.output
    assert json.loads(shown.stdout)["funding_source_id"] == source["id"]
    policy = cli.invoke(app, ["credit", "loans", "policy", *base, "--automatic"])
    assert policy.exit_code == 0 and json.loads(policy.stdout)["automatic"] is True
    shown_policy = cli.invoke(app, ["credit", "loans", "policy", *base])
    assert json.loads(shown_policy.stdout)["automatic"] is True
    missing = cli.invoke(app, ["credit", "loans", "show", *base, "--loan", "loan_nope"])
    assert missing.exit_code == 1 and "loan_not_found" in missing.stdout
