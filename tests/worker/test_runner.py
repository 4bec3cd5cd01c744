"""The runner: interval jobs, clean stops, several workers at once, and the built-in housekeeping jobs."""

from __future__ import annotations

import threading
from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy import select

from finloop.db import outbox
from finloop.db.idempotency import claim
from finloop.db.models import IdempotencyKey, JobRun
from finloop.ledger import service
from finloop.ledger.domain import AccountType, HoldStatus
from finloop.ledger.models import AccountDailyBalance
from finloop.worker.registry import AfterClose, Every, Registry, load_jobs
from finloop.worker.runner import ALL_TENANTS, JobContext, Runner
from tests.ledger.helpers import open_account


def interval_run(db, job: str) -> tuple[str, str, int, int]:
    with db.uow(read_only=True) as uow:
        run = uow.session.scalars(select(JobRun).where(JobRun.job == job)).one()
        return run.tenant_id, run.status, run.attempts, run.processed


def test_interval_job_runs_once_per_interval(db, clock):
    registry = Registry()
    calls: list[datetime] = []

    @registry.job("test.tick", schedule=Every(10))
    def tick(ctx: JobContext) -> None:
        assert ctx.tenant_id is None
        with ctx.step():
            calls.append(ctx.db.clock.now())
            ctx.processed += 3

    runner = Runner(db, registry)
    assert [o.status for o in runner.run_pass().outcomes] == ["succeeded"]
    assert runner.run_pass().outcomes == []
    clock.advance(timedelta(seconds=9))
    assert runner.run_pass().outcomes == []
    clock.advance(timedelta(seconds=1))
    assert [o.processed for o in runner.run_pass().outcomes] == [6]
    assert len(calls) == 2
    assert interval_run(db, "test.tick") == (ALL_TENANTS, "succeeded", 2, 6)


def test_a_failing_interval_job_is_recorded_and_runs_again_after_its_interval(db, clock):
    registry = Registry()
    attempts: list[int] = []

    @registry.job("test.flaky", schedule=Every(5))
    def flaky(ctx: JobContext) -> None:
        attempts.append(ctx.token)
        if len(attempts) == 1:
            raise ValueError("first time unlucky")

    runner = Runner(db, registry)
    [failed] = runner.run_pass().outcomes
    assert (failed.status, failed.error) == ("failed", "ValueError: first time unlucky")
    assert runner.run_pass().outcomes == []
    clock.advance(timedelta(seconds=5))
    assert [o.status for o in runner.run_pass().outcomes] == ["succeeded"]
    with db.uow(read_only=True) as uow:
        run = uow.session.scalars(select(JobRun)).one()
        assert (run.status, run.error) == ("succeeded", None)


def test_a_stop_request_ends_the_run_at_a_step_boundary_and_the_next_worker_resumes(db, tenant, clock):
    registry = Registry()
    stop = threading.Event()
    done: list[int] = []

    @registry.job("test.chunks", schedule=AfterClose())
    def chunks(ctx: JobContext) -> None:
        while ctx.checkpoint.get("next", 0) < 4:
            with ctx.step():
                done.append(ctx.checkpoint.get("next", 0))
                ctx.checkpoint["next"] = ctx.checkpoint.get("next", 0) + 1
                if len(done) == 2:
                    stop.set()  # Ctrl-C arrives while the second chunk is being worked on

    clock.set(datetime(2026, 3, 3, 1, 0, tzinfo=UTC))
    [interrupted] = Runner(db, registry, stop=stop).run_pass().outcomes
    assert interrupted.status == "interrupted"
    with db.uow(read_only=True) as uow:
        run = uow.session.scalars(select(JobRun)).one()
        assert (run.status, run.checkpoint, run.lease_until) == ("running", {"next": 2}, clock.now())
    [resumed] = Runner(db, registry).run_pass().outcomes  # no need to wait for the lease
    assert resumed.status == "succeeded"
    assert done == [0, 1, 2, 3]


def test_run_forever_returns_when_asked_to_stop(db):
    registry = Registry()
    passes = threading.Semaphore(0)

    @registry.job("test.beat", schedule=Every(0.001))
    def beat(_ctx: JobContext) -> None:
        passes.release()

    runner = Runner(db, registry)
    thread = threading.Thread(target=runner.run_forever, args=(30.0,))
    thread.start()
    assert passes.acquire(timeout=30)
    runner.stop.set()  # what the first Ctrl-C does
    thread.join(10)
    assert not thread.is_alive()


def test_two_workers_at_once_run_each_business_date_once(db, tenant, clock):
    for n in range(4):
        open_account(db, tenant.id, f"assets:bank:b{n}", AccountType.ASSET)
    clock.set(datetime(2026, 3, 9, 1, 0, tzinfo=UTC))  # a week of business days is due
    registry = Registry()
    registry.register(load_jobs().get("ledger.end_of_day"))
    outcomes: list = []
    errors: list[BaseException] = []
    start = threading.Barrier(2)

    def work() -> None:
        try:
            start.wait()
            for _ in range(5):
                outcomes.extend(Runner(db, registry).run_pass().outcomes)
        except BaseException as error:
            errors.append(error)

    threads = [threading.Thread(target=work) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert errors == []
    days = [date(2026, 3, d) for d in (2, 3, 4, 5, 6)]
    assert sorted(o.business_date for o in outcomes if o.status == "succeeded") == days
    with db.uow(read_only=True) as uow:
        assert sorted(uow.session.scalars(select(JobRun.business_date))) == days
        assert uow.session.scalar(select(AccountDailyBalance).limit(1)) is not None
        assert len(uow.session.scalars(select(AccountDailyBalance)).all()) == 4 * len(days)


def test_builtin_housekeeping_expires_holds_purges_keys_and_drains_the_outbox(db, tenant, clock, monkeypatch):
    bank = open_account(db, tenant.id, "assets:bank:main", AccountType.ASSET)
    wallet = open_account(db, tenant.id, "liabilities:customer:C1:wallet", AccountType.LIABILITY)
    with db.uow() as uow:
        hold, _ = service.create_hold(uow, tenant.id, key="h", debit_account_id=bank, credit_account_id=wallet,
                                      amount=100, currency_code="CNY", timeout_seconds=60)
        outbox.enqueue(uow, tenant_id=tenant.id, topic="test.event", payload={"hold": hold.id})
        uow.commit()
    claim(db, tenant_id=tenant.id, key="k", method="POST", path="/v1/x", fingerprint=b"h", ttl_seconds=30,
          lease_seconds=5, hash_key=b"test hash key")
    delivered: list[dict] = []
    handlers = outbox.HandlerRegistry()
    handlers.register("test.event", lambda delivery: delivered.append(delivery.payload))
    monkeypatch.setattr(outbox, "handlers", handlers)
    clock.advance(timedelta(seconds=61))

    report = Runner(db).run_pass()  # every built-in job; Monday has not closed yet
    assert {o.job: (o.status, o.processed) for o in report.outcomes} == {
        "ledger.expire_holds": ("succeeded", 1), "outbox.drain": ("succeeded", 1),
        "idempotency.purge": ("succeeded", 1), "payments.resolve_open": ("succeeded", 0),
        "payments.expire_disputes": ("succeeded", 0), "payouts.process": ("succeeded", 0),
        "risk.velocity_prune": ("succeeded", 0), "payments.resume_reviewed": ("succeeded", 0),
        "onboarding.resolve_checks": ("succeeded", 0), "credit.disburse_signed": ("succeeded", 0),
        "credit.direct_debit": ("succeeded", 0)}
    assert delivered == [{"hold": hold.id}]
    with db.uow(read_only=True) as uow:
        assert service.get_hold(uow, tenant.id, hold.id).status == HoldStatus.EXPIRED
        assert uow.session.scalar(select(IdempotencyKey)) is None


def test_unknown_jobs_are_refused():
    with pytest.raises(KeyError):
        Registry().get("nope.nothing")
    with pytest.raises(ValueError, match=r"domain\.verb"):
        Registry().job("NoDots", schedule=Every(1))(lambda ctx: None)
