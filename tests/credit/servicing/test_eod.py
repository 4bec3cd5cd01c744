"""The end of day: idempotent per date, resumable after a crash with nothing posted twice, the sub-ledger equal to
the general ledger after every day, month-end snapshots, write-off at the product's threshold, the allowance by
bucket or expected loss, the credit line lowered and frozen when overdue and restored by revolving repayments,
and the worker job closing every calendar day through the business date."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from sqlalchemy import func, select

from finloop.credit import limits
from finloop.credit.servicing import eod
from finloop.credit.servicing import service as servicing
from finloop.credit.servicing.models import EndOfDayRun, LoanMonthEnd
from finloop.db.uow import Database
from finloop.ledger.models import Entry
from finloop.payouts.bank_sandbox import SandboxBank
from tests.conftest import TenantHandle
from tests.credit.servicing.conftest import account, at, close_days, make_loan


def entries(db: Database, tenant_id: str) -> int:
    with db.uow(read_only=True) as uow:
        return int(uow.session.scalar(select(func.count()).select_from(Entry).where(Entry.tenant_id == tenant_id))
                   or 0)


def test_a_day_run_twice_posts_nothing_the_second_time(db: Database, tenant: TenantHandle, loan: str) -> None:
    close_days(db, tenant.id, date(2026, 3, 2), date(2026, 3, 3))
    before, posted = account(db, tenant.id, loan), entries(db, tenant.id)
    run = eod.run_day(eod.committing(db), tenant.id, date(2026, 3, 3))
    assert run.status == "completed" and entries(db, tenant.id) == posted
    assert account(db, tenant.id, loan).period_accrued == before.period_accrued == 15_000 * 2 // 31


def test_a_crashed_run_resumes_with_the_loans_not_yet_processed(
        db: Database, tenant: TenantHandle, bank: SandboxBank, monkeypatch: pytest.MonkeyPatch) -> None:
    loans = [make_loan(db, tenant.id, reference=f"b{n}", national_id=f"11010119900307{n:04d}") for n in range(3)]
    real = eod.close_range
    calls = {"n": 0}

    def crashing(*args: object, **kwargs: object) -> object:
        calls["n"] += 1
        if calls["n"] == 2:
            raise RuntimeError("the machine lost power")
        return real(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(eod, "close_range", crashing)
    at(db.clock, date(2026, 3, 3), 0)  # type: ignore[arg-type]
    with pytest.raises(RuntimeError):
        eod.run_day(eod.committing(db), tenant.id, date(2026, 3, 2), chunk=1)
    states = sorted(account(db, tenant.id, loan).processed_day for loan in loans)
    assert states[0] < states[-1]  # one loan processed and committed, the others not
    monkeypatch.setattr(eod, "close_range", real)
    run = eod.run_day(eod.committing(db), tenant.id, date(2026, 3, 2), chunk=1)
    assert (run.status, run.loans, run.chunks) == ("completed", 3, 3)
    for loan in loans:
        assert account(db, tenant.id, loan).period_accrued == 15_000 // 31
    with db.uow(read_only=True) as uow:
        assert eod.check_subledger(uow, tenant.id) == []
        keys = list(uow.session.scalars(select(Entry.transfer_key).where(
            Entry.tenant_id == tenant.id, Entry.transfer_key.like("credit:eod:2026-03-02:%:interest:%"))))
    assert len(keys) == 3


def test_the_month_end_snapshot_is_taken_once(db: Database, tenant: TenantHandle, loan: str) -> None:
    close_days(db, tenant.id, date(2026, 3, 2), date(2026, 3, 31))
    with db.uow() as uow:
        eod.snapshot_month(uow, tenant.id, date(2026, 3, 31))
        assert uow.session.scalar(select(func.count()).select_from(LoanMonthEnd)) == 1
        row = uow.session.get(LoanMonthEnd, (loan, "2026-03"))
        assert row is not None
        assert (row.months_on_book, row.bucket, row.principal_outstanding) == (0, "M0", 1_000_000)


def test_a_loan_is_written_off_at_its_threshold_against_its_allowance(
        db: Database, tenant: TenantHandle, bank: SandboxBank) -> None:
    loan = make_loan(db, tenant.id, code="cash_30", amount=100_000, term=7)
    # Due 9 March, never paid; cash_30 writes off at 90 days past due.
    close_days(db, tenant.id, date(2026, 3, 2), date(2026, 6, 6))
    assert account(db, tenant.id, loan).state == "overdue"
    close_days(db, tenant.id, date(2026, 6, 7), date(2026, 6, 7))
    gone = account(db, tenant.id, loan)
    assert (gone.state, gone.dpd, gone.provision_amount, gone.principal_outstanding) == ("written_off", 90, 0, 0)
    assert gone.written_off_amount == 100_000 + 350 + gone.penalty_income
    with db.uow(read_only=True) as uow:
        assert eod.check_subledger(uow, tenant.id) == []


def test_expected_loss_provisioning_uses_the_score_in_m0(db: Database, tenant: TenantHandle, loan: str) -> None:
    with db.uow() as uow:
        eod.set_provision_policy(uow, tenant.id, {"method": "expected_loss", "lgd": "0.5"}, actor="test")
        uow.commit()
    close_days(db, tenant.id, date(2026, 3, 2), date(2026, 3, 2))
    row = account(db, tenant.id, loan)
    rate = row.pd_ppm * 500_000 // 1_000_000
    assert row.provision_amount == (1_000_000 + 483) * rate // 1_000_000 + (
        1 if ((1_000_000 + 483) * rate) % 1_000_000 >= 500_000 else 0)


def test_overdue_lowers_and_freezes_the_line(db: Database, tenant: TenantHandle, loan: str) -> None:
    close_days(db, tenant.id, date(2026, 3, 2), date(2026, 5, 10))
    row = account(db, tenant.id, loan)
    assert row.dpd > 30
    with db.uow(read_only=True) as uow:
        line = limits.line_of(uow, tenant.id, row.applicant_id)
        # The line hears of the first day past due and of each new bucket (here M2, at 31 days).
        assert line.status == "frozen" and line.overdue_days == 31
        assert {c.reason for c in limits.list_changes(uow, tenant.id, line.id)} >= {"overdue"}


def test_a_revolving_repayment_restores_the_line(db: Database, tenant: TenantHandle, bank: SandboxBank) -> None:
    loan = make_loan(db, tenant.id, code="merchant_revolving", amount=100_000, term=3)
    row = account(db, tenant.id, loan)
    with db.uow(read_only=True) as uow:
        used = limits.line_of(uow, tenant.id, row.applicant_id).used_amount
    at(db.clock, date(2026, 3, 10))  # type: ignore[arg-type]
    with db.uow() as uow:
        servicing.repay(uow, tenant.id, loan, amount=60_000, reference="early", prepayment="reduce_installment",
                        actor="test")
        uow.commit()
    with db.uow(read_only=True) as uow:
        line = limits.line_of(uow, tenant.id, row.applicant_id)
        prepaid = servicing.repayments(uow, tenant.id, loan)[0].allocation["principal"]
        assert prepaid > 0 and line.used_amount == used - prepaid


def test_the_job_closes_every_calendar_day_through_the_business_date(
        db: Database, tenant: TenantHandle, loan: str) -> None:
    at(db.clock, date(2026, 3, 10), 1)  # type: ignore[arg-type]
    runs = eod.run_through(eod.committing(db), tenant.id, date(2026, 3, 9))
    assert [r.business_date for r in runs] == [date(2026, 3, 2) + timedelta(days=n) for n in range(8)]
    assert eod.run_through(eod.committing(db), tenant.id, date(2026, 3, 9)) == []
    with db.uow(read_only=True) as uow:
        assert uow.session.scalar(select(func.count()).select_from(EndOfDayRun)) == 8
    assert account(db, tenant.id, loan).period_accrued == 15_000 * 8 // 31


def test_the_worker_closes_the_book_after_each_business_date(db: Database, tenant: TenantHandle, loan: str) -> None:
    from finloop.worker.runner import Runner

    # Monday 9 March, noon: the business dates up to Friday 6 March have closed; the job of Friday closes Friday
    # only, and Monday's (once it closes) the weekend too.
    at(db.clock, date(2026, 3, 9), 12)  # type: ignore[arg-type]
    passes = [Runner(db, only=["credit.end_of_day"]).run_pass().outcomes for _ in range(2)]
    mine = [[o for o in outcomes if o.tenant_id == tenant.id] for outcomes in passes]
    assert all(o.status == "succeeded" for o in mine[0]) and mine[1] == []
    assert sum(o.processed for o in mine[0]) == 5  # 2 to 6 March, one loan each day
    assert account(db, tenant.id, loan).processed_day == eod.day_number(date(2026, 3, 6))
    at(db.clock, date(2026, 3, 10), 12)  # type: ignore[arg-type]
    later = [o for o in Runner(db, only=["credit.end_of_day"]).run_pass().outcomes if o.tenant_id == tenant.id]
    assert [o.processed for o in later] == [3]  # Saturday, Sunday and Monday
    assert account(db, tenant.id, loan).period_accrued == 15_000 * 8 // 31
