"""`finloop credit debits list|run` and the ``credit.direct_debit`` worker job."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from finloop.credit.repayment_channels import cli as debits_cli
from finloop.credit.repayment_channels import service
from finloop.db.uow import Database
from finloop.worker.registry import Every, registry
from tests.credit.repayment_channels.conftest import Borrower, card, first_due_on, repayments
from tests.credit.servicing.conftest import at


def test_the_job_runs_every_thirty_seconds() -> None:
    import finloop.worker.jobs.credit_debits  # noqa: F401 - registers the job

    spec = registry.get("credit.direct_debit")
    assert spec.schedule == Every(30.0) and spec.is_interval


def test_run_sends_the_due_debit_and_list_shows_it(db: Database, borrower: Borrower,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    # The commands' database, with the test's frozen clock (the due date), instead of one built from settings.
    monkeypatch.setattr(debits_cli, "_database", lambda: db)
    runner = CliRunner()
    with db.uow() as uow:
        service.create_mandate(uow, borrower.tenant_id, applicant_id=borrower.applicant_id,
                               card_id=card(db, borrower), reference="M-1", actor="test")
        uow.commit()
    at(db.clock, first_due_on(db, borrower), 8)  # type: ignore[arg-type]
    result = runner.invoke(debits_cli.debits_app, ["run"])
    assert result.exit_code == 0, result.output
    assert "1 repayment payments settled or debits sent" in result.output
    listed = runner.invoke(debits_cli.debits_app, ["list", "--tenant", borrower.tenant_id,
                                                   "--loan", borrower.loan_id])
    assert listed.exit_code == 0, listed.output
    assert "succeeded" in listed.output and "failed" not in listed.output
    assert [r.source for r in repayments(db, borrower)] == ["autodebit"]
