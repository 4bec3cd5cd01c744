"""End of day by each tenant's business calendar: due after the cut-off, once per business date, resumable."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy import select, update

from finloop.db.models import JobRun
from finloop.ledger.domain import AccountType
from finloop.ledger.models import Account, AccountDailyBalance
from finloop.tenancy import service as tenancy
from finloop.tenancy.service import Principal, Role
from finloop.worker.jobs import ledger as ledger_jobs
from finloop.worker.registry import Registry, load_jobs
from finloop.worker.runner import Runner
from tests.conftest import make_tenant
from tests.ledger.helpers import open_account, transfer

MONDAY = date(2026, 3, 2)


class Crash(BaseException):
    """The worker process dies: no failure is recorded, the run keeps its lease."""


def eod_runner(db) -> Runner:
    registry = Registry()
    registry.register(load_jobs().get("ledger.end_of_day"))
    return Runner(db, registry)


def runs(db, tenant_id: str) -> list[tuple[date, str, int]]:
    with db.uow(read_only=True) as uow:
        return [(r.business_date, r.status, r.attempts) for r in uow.session.scalars(
            select(JobRun).where(JobRun.tenant_id == tenant_id).order_by(JobRun.business_date))]


def snapshots(db, tenant_id: str) -> dict[tuple[str, date], tuple[int, int]]:
    with db.uow(read_only=True) as uow:
        return {(s.account_id, s.business_date): (s.debits_posted, s.credits_posted) for s in uow.session.scalars(
            select(AccountDailyBalance).where(AccountDailyBalance.tenant_id == tenant_id))}


def chart(db, tenant_id: str) -> tuple[str, str]:
    bank = open_account(db, tenant_id, "assets:bank:main", AccountType.ASSET)
    equity = open_account(db, tenant_id, "equity:capital", AccountType.EQUITY)
    return bank, equity


def test_end_of_day_runs_once_the_day_has_closed_and_only_once(db, tenant, clock):
    bank, equity = chart(db, tenant.id)
    transfer(db, tenant.id, "monday", bank, equity, 10_000)
    runner = eod_runner(db)
    assert runner.run_pass().outcomes == []  # Monday is still open

    clock.set(datetime(2026, 3, 3, 0, 0, tzinfo=UTC))  # UTC midnight: Monday's cut-off
    transfer(db, tenant.id, "tuesday", bank, equity, 7)  # booked on Tuesday: not in Monday's snapshot
    outcomes = runner.run_pass().outcomes
    assert [(o.job, o.tenant_id, o.business_date, o.status, o.processed) for o in outcomes] == [
        ("ledger.end_of_day", tenant.id, MONDAY, "succeeded", 2)]
    assert snapshots(db, tenant.id) == {(bank, MONDAY): (10_000, 0), (equity, MONDAY): (0, 10_000)}

    assert runner.run_pass().outcomes == []  # the second pass does nothing
    assert eod_runner(db).run_pass().outcomes == []  # nor does another worker
    assert runs(db, tenant.id) == [(MONDAY, "succeeded", 1)]


def test_weekends_and_holidays_are_not_business_days(db, tenant, clock):
    chart(db, tenant.id)
    with db.uow() as uow:
        tenancy.set_holiday(uow, Principal(tenant.id, "test", frozenset({Role.ADMIN})), date(2026, 3, 4), "Holiday")
        uow.commit()
    clock.set(datetime(2026, 3, 9, 12, 0, tzinfo=UTC))  # the next Monday, still open
    outcomes = eod_runner(db).run_pass().outcomes
    expected = [date(2026, 3, 2), date(2026, 3, 3), date(2026, 3, 5), date(2026, 3, 6)]
    assert [o.business_date for o in outcomes] == expected
    assert runs(db, tenant.id) == [(day, "succeeded", 1) for day in expected]
    assert eod_runner(db).run_pass().outcomes == []


def test_the_tenants_cutoff_and_timezone_decide_when_the_day_closes(db, clock):
    # Shanghai is UTC+8: an 18:00 cut-off closes Monday's business at 10:00 UTC.
    shanghai = make_tenant(db, "Shanghai Co", timezone="Asia/Shanghai", cutoff="18:00")
    utc_tenant = make_tenant(db, "UTC Co")
    bank, equity = chart(db, shanghai.id)
    clock.set(datetime(2026, 3, 2, 9, 59, 59, tzinfo=UTC))
    transfer(db, shanghai.id, "before-cutoff", bank, equity, 100)
    runner = eod_runner(db)
    assert runner.run_pass().outcomes == []

    clock.set(datetime(2026, 3, 2, 10, 0, tzinfo=UTC))
    transfer(db, shanghai.id, "at-cutoff", bank, equity, 5)  # 18:00 local: Tuesday's business
    outcomes = runner.run_pass().outcomes
    assert [(o.tenant_id, o.business_date) for o in outcomes] == [(shanghai.id, MONDAY)]
    assert snapshots(db, shanghai.id)[(bank, MONDAY)] == (100, 0)
    assert runs(db, utc_tenant.id) == []  # its Monday closes at midnight UTC


def test_end_of_day_resumes_from_its_checkpoint_after_a_failure(db, tenant, clock, monkeypatch):
    accounts = sorted(open_account(db, tenant.id, f"assets:bank:b{n}", AccountType.ASSET) for n in range(5))
    equity = open_account(db, tenant.id, "equity:capital", AccountType.EQUITY)
    for n, account in enumerate(accounts):
        transfer(db, tenant.id, f"t{n}", account, equity, 100 + n)
    every = sorted([*accounts, equity])
    monkeypatch.setattr(ledger_jobs, "SNAPSHOT_CHUNK", 2)
    real = ledger_jobs.write_daily_balances
    resumed_after: list[str | None] = []

    def fail_second_chunk(*args, **kwargs):
        resumed_after.append(kwargs["after_account_id"])
        chunk = real(*args, **kwargs)  # written inside the step's transaction...
        if len(resumed_after) == 2:
            raise RuntimeError("database went away")  # ...and rolled back with it
        return chunk

    monkeypatch.setattr(ledger_jobs, "write_daily_balances", fail_second_chunk)
    clock.set(datetime(2026, 3, 3, 1, 0, tzinfo=UTC))
    runner = eod_runner(db)
    [failed] = runner.run_pass().outcomes
    assert (failed.status, failed.processed, failed.error) == ("failed", 2, "RuntimeError: database went away")
    assert set(snapshots(db, tenant.id)) == {(a, MONDAY) for a in every[:2]}
    assert runs(db, tenant.id) == [(MONDAY, "failed", 1)]

    assert runner.run_pass().outcomes == []  # the retry waits for its backoff
    clock.advance(timedelta(seconds=60))
    [retried] = runner.run_pass().outcomes
    assert (retried.status, retried.processed) == ("succeeded", 6)
    assert resumed_after == [None, every[1], every[1], every[3], every[5]]  # continued after the last committed chunk
    taken = snapshots(db, tenant.id)
    assert set(taken) == {(a, MONDAY) for a in every}  # each account once (the primary key forbids twice)
    assert [taken[(a, MONDAY)] for a in accounts] == [(100 + n, 0) for n in range(5)]
    assert runs(db, tenant.id) == [(MONDAY, "succeeded", 2)]


def test_a_crashed_run_is_taken_over_when_its_lease_expires(db, tenant, clock, monkeypatch):
    for n in range(3):
        open_account(db, tenant.id, f"assets:bank:b{n}", AccountType.ASSET)
    monkeypatch.setattr(ledger_jobs, "SNAPSHOT_CHUNK", 1)
    real = ledger_jobs.write_daily_balances
    calls: list[str | None] = []

    def crash_on_second_chunk(*args, **kwargs):
        calls.append(kwargs["after_account_id"])
        if len(calls) == 2:
            raise Crash
        return real(*args, **kwargs)

    monkeypatch.setattr(ledger_jobs, "write_daily_balances", crash_on_second_chunk)
    clock.set(datetime(2026, 3, 3, 1, 0, tzinfo=UTC))
    with pytest.raises(Crash):
        eod_runner(db).run_pass()
    assert runs(db, tenant.id) == [(MONDAY, "running", 1)]

    clock.advance(timedelta(seconds=599))
    assert eod_runner(db).run_pass().outcomes == []  # the dead worker's lease still holds
    clock.advance(timedelta(seconds=1))
    [outcome] = eod_runner(db).run_pass().outcomes
    assert (outcome.status, outcome.processed) == ("succeeded", 3)
    assert calls[1] == calls[2] is not None  # the second chunk was redone from the checkpoint, not the first
    assert len(snapshots(db, tenant.id)) == 3
    assert runs(db, tenant.id) == [(MONDAY, "succeeded", 2)]


def test_books_that_disagree_fail_the_run_and_block_later_days(db, tenant, clock):
    bank, equity = chart(db, tenant.id)
    transfer(db, tenant.id, "t", bank, equity, 500)
    with db.uow() as uow:
        uow.session.execute(update(Account).where(Account.id == bank).values(
            debits_posted=Account.debits_posted + 1, credits_posted=Account.credits_posted + 1))
        uow.commit()
    try:
        clock.set(datetime(2026, 3, 5, 1, 0, tzinfo=UTC))  # Monday to Wednesday are due
        runner = eod_runner(db)
        for attempt in (1, 2, 3):
            [outcome] = runner.run_pass().outcomes
            assert outcome.status == "failed" and outcome.business_date == MONDAY
            assert outcome.error.startswith("books_disagree: ") and bank in outcome.error
            clock.advance(timedelta(seconds=60 * 2 ** (attempt - 1)))
        clock.advance(timedelta(days=1))
        assert runner.run_pass().outcomes == []  # out of attempts: it waits for an operator
        assert runs(db, tenant.id) == [(MONDAY, "failed", 3)]  # and later days wait behind it
    finally:
        with db.uow() as uow:
            uow.session.execute(update(Account).where(Account.id == bank).values(
                debits_posted=Account.debits_posted - 1, credits_posted=Account.credits_posted - 1))
            uow.commit()
    # Books repaired; an operator retries the run and the backlog catches up in order.
    from finloop.worker.runner import retry_run

    with db.uow() as uow:
        run_id = uow.session.scalar(select(JobRun.id).where(JobRun.tenant_id == tenant.id))
        retry_run(uow, run_id)
        uow.commit()
    outcomes = runner.run_pass().outcomes
    assert [(o.business_date, o.status) for o in outcomes] == [
        (MONDAY, "succeeded"), (date(2026, 3, 3), "succeeded"), (date(2026, 3, 4), "succeeded"),
        (date(2026, 3, 5), "succeeded")]
