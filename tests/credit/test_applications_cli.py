"""`finloop credit applications`: list, show (the application and its contract) and figures; bad input."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from finloop.cli import app
from finloop.db.uow import Database
from tests.conftest import TenantHandle
from tests.credit.test_applications import alice, submit  # noqa: F401


def test_applications_from_the_command_line(cli: CliRunner, db: Database, tenant: TenantHandle,
                                            alice: tuple[str, str]) -> None:  # noqa: F811
    row = submit(db, tenant.id, alice[0])
    listed = cli.invoke(app, ["credit", "applications", "list", "--tenant", tenant.id])
    assert listed.exit_code == 0 and row.id in listed.stdout and "approved" in listed.stdout
    shown = cli.invoke(app, ["credit", "applications", "show", "--tenant", tenant.id, "--application", row.id])
    assert shown.exit_code == 0 and json.loads(shown.stdout)["status"] == "approved"
    contract = cli.invoke(app, ["credit", "applications", "show", "--tenant", tenant.id, "--application", row.id,
                                "--contract"])
    assert contract.exit_code == 0 and "Loan agreement" in contract.stdout and "SHA-256" in contract.stdout
    missing = cli.invoke(app, ["credit", "applications", "show", "--tenant", tenant.id, "--application", "lap_x"])
    assert missing.exit_code == 1 and "application_not_found" in missing.stdout
    figures = cli.invoke(app, ["credit", "applications", "figures", "--tenant", tenant.id, "--json"])
    assert figures.exit_code == 0, figures.output
    found = json.loads(figures.stdout)
    assert (found["applications"], found["automatic_approval_rate"]) == (1, "1.0000")
    assert cli.invoke(app, ["credit", "applications", "figures", "--tenant", tenant.id,
                            "--since", "last week"]).exit_code == 2
