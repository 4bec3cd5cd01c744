"""The monthly bureau file: refused until the month-end is processed; then one record per account in layout
FL-CB-1 with the status from state and bucket, a control total and a SHA-256 of the stored text; a cycle exported
twice returns the first export; the daily job files the previous month once."""

from __future__ import annotations

import hashlib
from datetime import date, timedelta

import pytest
from sqlalchemy import func, select

from finloop.core.clock import FrozenClock
from finloop.core.errors import Conflict, InvalidRequest
from finloop.credit.collections import bureau_export
from finloop.credit.collections.models import BureauExport
from finloop.db.uow import Database
from finloop.payouts.bank_sandbox import SandboxBank
from finloop.worker.registry import Registry, load_jobs
from finloop.worker.runner import Runner
from tests.conftest import TenantHandle
from tests.credit.collections.conftest import PRINCIPAL, lending, loan, month_closed, set_account


def exports(db: Database) -> int:
    with db.uow(read_only=True) as uow:
        return int(uow.session.scalar(select(func.count()).select_from(BureauExport)) or 0)


def test_a_cycle_is_exported_once_its_month_end_is_processed(db: Database, tenant: TenantHandle,
                                                              bank: SandboxBank) -> None:
    lending(db, tenant.id)
    current = loan(db, tenant.id, "alice")
    late = loan(db, tenant.id, "bob", national_id="110101199003070022")
    with db.uow() as uow, pytest.raises(Conflict) as early:
        bureau_export.export_cycle(uow, tenant.id, "2026-03", actor="test")
    assert (early.value.code, early.value.param) == ("cycle_not_closed", "cycle")
    month_closed(db, tenant.id, current, "2026-03", date(2026, 4, 1), dpd=0, principal_outstanding=PRINCIPAL)
    month_closed(db, tenant.id, late, "2026-03", date(2026, 4, 1), dpd=45, max_dpd=45,
                 principal_outstanding=250_000)
    with db.uow() as uow:
        made = bureau_export.export_cycle(uow, tenant.id, "2026-03", actor="test")
        uow.commit()
    lines = made.content.splitlines()
    assert lines[0] == f"H,FL-CB-1,{tenant.id},2026-03,2026-03-31"
    details = sorted(line.split(",") for line in lines[1:-1])
    with db.uow(read_only=True) as uow:
        from finloop.credit.servicing.models import LoanAccount

        applicants = {a.loan_id: a.applicant_id for a in uow.session.scalars(select(LoanAccount))}
    assert details == sorted([
        ["D", current, applicants[current], "installment", "CNY", "2026-03-02", "300000", "300000", "0", "0", "M0",
         "0", ""],
        ["D", late, applicants[late], "installment", "CNY", "2026-03-02", "300000", "250000", "45", "45", "M2", "2",
         ""]])
    assert lines[-1] == "T,2,550000"
    assert made.sha256 == hashlib.sha256(made.content.encode()).hexdigest()
    assert made.totals == {"balance_by_currency": {"CNY": 550_000}, "records_by_status": {"0": 1, "2": 1},
                           "control_total": 550_000}
    # The accounts move on; exporting March again returns the first file unchanged.
    set_account(db, late, dpd=70)
    with db.uow() as uow:
        again = bureau_export.export_cycle(uow, tenant.id, "2026-03", actor="test")
        assert (again.id, again.sha256, again.content) == (made.id, made.sha256, made.content)
        uow.commit()
    assert exports(db) == 1


@pytest.mark.parametrize("cycle", ["2026-13", "2026-3", "", 202603, None])
def test_a_bad_cycle_is_refused(db: Database, tenant: TenantHandle, cycle: object) -> None:
    with db.uow() as uow, pytest.raises(InvalidRequest) as bad:
        bureau_export.export_cycle(uow, tenant.id, cycle, actor="test")
    assert (bad.value.code, bad.value.param) == ("invalid_cycle", "cycle")
    assert exports(db) == 0


def test_paid_off_and_written_off_accounts_report_c_and_w(db: Database, tenant: TenantHandle,
                                                         bank: SandboxBank) -> None:
    lending(db, tenant.id)
    paid = loan(db, tenant.id, "alice")
    lost = loan(db, tenant.id, "bob", national_id="110101199003070022")
    month_closed(db, tenant.id, paid, "2026-03", date(2026, 4, 1), state="paid_off", principal_outstanding=0)
    month_closed(db, tenant.id, lost, "2026-03", date(2026, 4, 1), state="written_off", dpd=121,
                 principal_outstanding=0)
    with db.uow() as uow:
        made = bureau_export.export_cycle(uow, tenant.id, "2026-03", actor="test")
        uow.commit()
    statuses = {line.split(",")[1]: line.split(",")[11] for line in made.content.splitlines()[1:-1]}
    assert statuses == {paid: "C", lost: "W"}


def test_the_daily_job_files_the_previous_month_once(db: Database, tenant: TenantHandle, bank: SandboxBank,
                                                     clock: FrozenClock) -> None:
    import finloop.worker.jobs.credit_collections  # noqa: F401 - registers the job until the lead imports it

    lending(db, tenant.id)
    loan_id = loan(db, tenant.id)
    month_closed(db, tenant.id, loan_id, "2026-03", date(2026, 4, 1))
    jobs = Registry()
    jobs.register(load_jobs().get("credit.collections"))
    clock.set(clock.now().replace(year=2026, month=4, day=2, hour=1))  # through the close of Wednesday 1 April
    outcomes = Runner(db, jobs).run_pass().outcomes
    assert {o.status for o in outcomes} == {"succeeded"} and outcomes[-1].business_date == date(2026, 4, 1)
    with db.uow(read_only=True) as uow:
        assert [e.cycle for e in bureau_export.list_exports(uow, tenant.id)] == ["2026-03"]
    clock.advance(timedelta(days=1))
    Runner(db, jobs).run_pass()
    assert exports(db) == 1
