"""The job runner: one pass runs every job that is due, for every tenant, by that tenant's calendar.

Invariants owned here:
- a (tenant, job, business date) runs at most once to success: ``job_runs`` has one row per such key, the
  row is claimed before the work starts, and a second claim of the same key fails on the unique key;
- a tenant's business dates run in order: a date starts only after every earlier date of the same job
  succeeded, and a failed date blocks the later ones until it succeeds;
- a run is owned through its lease and its ``attempts`` counter, which every claim increments and which
  serves as a fencing token: a worker that lost its lease can no longer commit a step or finish the run;
- a job saves progress only through ``JobContext.step``: the step's work, the checkpoint and the processed
  count commit in one transaction, so a run resumed after a crash continues after the last committed
  step and never repeats one;
- a run whose worker died (status still ``running``, lease expired) is resumed from its checkpoint by the
  next pass of any worker; a worker asked to stop finishes its current step and releases the lease.

Interval jobs (``Every``) keep one row per job and UTC day under the tenant ``*``: its ``attempts`` counts
the day's runs, ``processed`` their total, and ``finished_at`` says when the interval starts again.
"""

from __future__ import annotations

import copy
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from enum import StrEnum
from typing import Any, cast

import structlog
from sqlalchemy import Row, Table, func, insert, or_, select, update
from sqlalchemy.exc import IntegrityError

from finloop.core.calendar import BusinessCalendar
from finloop.core.errors import Conflict, FinloopError, NotFound
from finloop.db.models import JobRun
from finloop.db.uow import Database, UnitOfWork
from finloop.tenancy.calendar import get_calendar
from finloop.tenancy.models import Tenant
from finloop.worker.registry import BusinessDaySchedule, Every, JobSpec, Registry, load_jobs

log = structlog.get_logger("finloop.worker")

runs_t = cast(Table, JobRun.__table__)

#: The tenant id under which interval jobs, which serve every tenant at once, record their runs.
ALL_TENANTS = "*"
#: A tenant with a long backlog catches up this many business dates per job and pass, so one tenant
#: cannot hold up the others for long.
MAX_DATES_PER_PASS = 31
MAX_ERROR_LENGTH = 2000
#: An idle business-day job is looked at again after at most this long, even if nothing seems due.
RECHECK_IDLE = timedelta(seconds=60)


class RunStatus(StrEnum):
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"


class LeaseLost(Conflict):
    """Another worker took this run over (our lease ran out); our uncommitted step was rolled back."""

    code = "job_lease_lost"


class JobInterrupted(Exception):
    """The worker is stopping; raised at the start of a step so the run stops at a step boundary."""


@dataclass(frozen=True, slots=True)
class RunOutcome:
    run_id: str
    job: str
    tenant_id: str | None
    business_date: date
    #: succeeded, failed, interrupted (the worker is stopping) or lease_lost.
    status: str
    processed: int
    error: str | None = None


@dataclass
class PassReport:
    outcomes: list[RunOutcome]

    @property
    def failed(self) -> list[RunOutcome]:
        return [o for o in self.outcomes if o.status == RunStatus.FAILED]


def describe_error(exc: BaseException) -> str:
    if isinstance(exc, FinloopError):
        return f"{exc.code}: {exc.message}"[:MAX_ERROR_LENGTH]
    return f"{type(exc).__name__}: {exc}"[:MAX_ERROR_LENGTH]


class JobContext:
    """What a job receives: its ids, its run's checkpoint, and ``step()`` to do a chunk of work.

    ``checkpoint`` (a JSON-able dict) and ``processed`` are saved with every step; changes made outside a
    step are saved by the next step or when the run finishes.
    """

    def __init__(self, db: Database, spec: JobSpec, *, run_id: str, tenant_id: str | None, business_date: date,
                 token: int, checkpoint: dict[str, Any], processed: int, stop: threading.Event) -> None:
        self.db = db
        self.spec = spec
        self.run_id = run_id
        self.tenant_id = tenant_id
        self.business_date = business_date
        self.checkpoint = checkpoint
        self.processed = processed
        self._token = token
        self._stop = stop

    @property
    def token(self) -> int:
        return self._token

    def tenant_day(self) -> tuple[str, date]:
        """The tenant and business date of a business-day job."""
        if self.tenant_id is None:
            raise RuntimeError(f"job {self.spec.name} runs per tenant and business date, not on an interval")
        return self.tenant_id, self.business_date

    @contextmanager
    def step(self) -> Iterator[UnitOfWork]:
        """A unit of work in which the job does one chunk; it commits with the checkpoint, or not at all."""
        if self._stop.is_set():
            raise JobInterrupted(self.run_id)
        with self.db.uow() as uow:
            owned = uow.session.scalar(
                select(runs_t.c.id).where(runs_t.c.id == self.run_id, runs_t.c.attempts == self._token,
                                          runs_t.c.status == RunStatus.RUNNING.value).with_for_update())
            if owned is None:
                raise LeaseLost(f"Run {self.run_id} of {self.spec.name} was taken over by another worker.")
            saved_checkpoint, saved_processed = copy.deepcopy(self.checkpoint), self.processed
            try:
                yield uow
                uow.session.execute(
                    update(runs_t).where(runs_t.c.id == self.run_id, runs_t.c.attempts == self._token)
                    .values(checkpoint=copy.deepcopy(self.checkpoint), processed=self.processed,
                            lease_until=uow.clock.now() + timedelta(seconds=self.spec.lease_seconds)))
                uow.commit()
            except BaseException:
                self.checkpoint, self.processed = saved_checkpoint, saved_processed
                raise


def due_business_days(schedule: BusinessDaySchedule, calendar: BusinessCalendar, start: date,
                      now: datetime) -> Iterator[date]:
    """Business days from ``start`` on whose run is due at ``now``, in order."""
    day = calendar.next_business_day(start)
    while schedule.due_at(calendar, day) <= now:
        yield day
        day = calendar.next_business_day(day + timedelta(days=1))


class Runner:
    def __init__(self, db: Database, registry: Registry | None = None, *, only: Sequence[str] | None = None,
                 stop: threading.Event | None = None) -> None:
        self.db = db
        self.registry = registry or load_jobs()
        self.specs = [self.registry.get(name) for name in only] if only else self.registry.specs()
        self.stop = stop or threading.Event()
        self._reported_blocked: set[str] = set()
        #: (tenant, job) -> an instant before which that job certainly has nothing due for the tenant,
        #: so idle passes skip its queries. Capped at ``RECHECK_IDLE``: a calendar edited meanwhile (an
        #: earlier cut-off, a holiday removed) is noticed within that time.
        self._idle_until: dict[tuple[str, str], datetime] = {}

    # ------------------------------------------------------------------------------------------ passes

    def run_pass(self) -> PassReport:
        """Run every due job once; returns what ran. A failing job never stops the others."""
        outcomes: list[RunOutcome] = []
        for spec in self.specs:
            if spec.is_interval and not self.stop.is_set():
                outcome = self._run_interval(spec)
                if outcome is not None:
                    outcomes.append(outcome)
        business = [spec for spec in self.specs if not spec.is_interval]
        if business:
            with self.db.uow(read_only=True) as uow:
                tenants = uow.session.execute(select(Tenant.id, Tenant.created_at).order_by(Tenant.id)).all()
            for tenant_id, created_at in tenants:
                for spec in business:
                    if self.stop.is_set():
                        return PassReport(outcomes)
                    outcomes.extend(self._run_business(spec, tenant_id, created_at))
        return PassReport(outcomes)

    def run_forever(self, poll_seconds: float) -> None:
        """Run passes until ``stop`` is set, waiting ``poll_seconds`` between them."""
        while not self.stop.is_set():
            report = self.run_pass()
            for outcome in report.outcomes:
                if outcome.tenant_id is None and outcome.status == RunStatus.SUCCEEDED and not outcome.processed:
                    continue  # an idle interval run: not worth a line every poll
                log.info("job.finished", job=outcome.job, run_id=outcome.run_id, tenant_id=outcome.tenant_id,
                         business_date=outcome.business_date.isoformat(), status=outcome.status,
                         processed=outcome.processed)
            self.stop.wait(poll_seconds)

    # ------------------------------------------------------------------------------------------ business days

    def _run_business(self, spec: JobSpec, tenant_id: str, created_at: datetime) -> list[RunOutcome]:
        schedule = cast(BusinessDaySchedule, spec.schedule)
        idle_until = self._idle_until.get((tenant_id, spec.name))
        if idle_until is not None and self.db.clock.now() < idle_until:
            return []
        with self.db.uow(read_only=True) as uow:
            calendar = get_calendar(uow, tenant_id)
            unfinished = uow.session.execute(
                select(runs_t).where(runs_t.c.tenant_id == tenant_id, runs_t.c.job == spec.name,
                                     runs_t.c.status != RunStatus.SUCCEEDED.value)
                .order_by(runs_t.c.business_date).limit(1)).first()
            last_date = uow.session.scalar(select(func.max(runs_t.c.business_date)).where(
                runs_t.c.tenant_id == tenant_id, runs_t.c.job == spec.name))
        now = self.db.clock.now()
        outcomes: list[RunOutcome] = []
        if unfinished is not None:
            outcome = self._resume(spec, unfinished, now)
            if outcome is None:
                return outcomes
            outcomes.append(outcome)
            if outcome.status != RunStatus.SUCCEEDED:
                return outcomes
        start = last_date + timedelta(days=1) if last_date else calendar.business_date(created_at)
        if not outcomes:
            next_due = schedule.due_at(calendar, calendar.next_business_day(start))
            if next_due > now:
                self._idle_until[(tenant_id, spec.name)] = min(next_due, now + RECHECK_IDLE)
                return outcomes
        for day in due_business_days(schedule, calendar, start, now):
            if self.stop.is_set() or len(outcomes) >= MAX_DATES_PER_PASS:
                break
            claimed = self._claim_new(spec, tenant_id, day)
            if claimed is None:
                break  # another worker claimed this date first; it carries on from here
            outcome = self._execute(spec, claimed, tenant_id, day, 1, {}, 0)
            outcomes.append(outcome)
            if outcome.status != RunStatus.SUCCEEDED:
                break
        return outcomes

    def _resume(self, spec: JobSpec, run: Row[Any], now: datetime) -> RunOutcome | None:
        """Take over a crashed run or retry a failed one, when its time has come; None when it is not ours."""
        if run.lease_until is not None and run.lease_until > now:
            return None  # still leased by a live worker, or a failed run waiting for its retry time
        if run.status == RunStatus.FAILED and run.attempts >= spec.max_attempts:
            if run.id not in self._reported_blocked:
                self._reported_blocked.add(run.id)
                log.error("job.blocked", job=spec.name, run_id=run.id, tenant_id=run.tenant_id,
                          business_date=run.business_date.isoformat(), attempts=run.attempts, error=run.error)
            return None
        token = self._take_over(spec, run, reset_checkpoint=False)
        if token is None:
            return None
        log.info("job.resumed", job=spec.name, run_id=run.id, tenant_id=run.tenant_id,
                 business_date=run.business_date.isoformat(), attempt=token, previous_status=run.status)
        return self._execute(spec, run.id, run.tenant_id, run.business_date, token, dict(run.checkpoint),
                             int(run.processed))

    # ------------------------------------------------------------------------------------------ intervals

    def _run_interval(self, spec: JobSpec) -> RunOutcome | None:
        interval = timedelta(seconds=cast(Every, spec.schedule).seconds)
        now = self.db.clock.now()
        day = now.date()
        with self.db.uow(read_only=True) as uow:
            run = uow.session.execute(select(runs_t).where(
                runs_t.c.tenant_id == ALL_TENANTS, runs_t.c.job == spec.name, runs_t.c.business_date == day)).first()
        if run is None:
            run_id = self._claim_new(spec, ALL_TENANTS, day)
            if run_id is None:
                return None
            return self._execute(spec, run_id, None, day, 1, {}, 0)
        if run.status == RunStatus.RUNNING:
            if run.lease_until is not None and run.lease_until > now:
                return None
        elif run.finished_at is not None and run.finished_at + interval > now:
            return None
        token = self._take_over(spec, run, reset_checkpoint=True)
        if token is None:
            return None
        return self._execute(spec, run.id, None, day, token, {}, int(run.processed))

    # ------------------------------------------------------------------------------------------ claims

    def _claim_new(self, spec: JobSpec, tenant_id: str, day: date) -> str | None:
        try:
            with self.db.uow() as uow:
                now = uow.clock.now()
                run_id = uow.ids.new("job_run")
                uow.session.execute(insert(runs_t).values(
                    id=run_id, tenant_id=tenant_id, job=spec.name, business_date=day,
                    status=RunStatus.RUNNING.value, attempts=1, checkpoint={}, processed=0,
                    lease_until=now + timedelta(seconds=spec.lease_seconds), started_at=now, finished_at=None,
                    error=None))
                uow.commit()
        except IntegrityError:
            return None
        return run_id

    def _take_over(self, spec: JobSpec, run: Row[Any], *, reset_checkpoint: bool) -> int | None:
        """Claim an existing run if nobody changed it since we read it; returns the new fencing token."""
        now = self.db.clock.now()
        values: dict[str, Any] = {
            "status": RunStatus.RUNNING.value, "attempts": runs_t.c.attempts + 1, "started_at": now,
            "finished_at": None, "lease_until": now + timedelta(seconds=spec.lease_seconds)}
        if reset_checkpoint:
            values["checkpoint"] = {}
        with self.db.uow() as uow:
            result = uow.session.execute(
                update(runs_t).where(runs_t.c.id == run.id, runs_t.c.attempts == run.attempts,
                                     runs_t.c.status == run.status,
                                     or_(runs_t.c.lease_until.is_(None), runs_t.c.lease_until <= now))
                .values(**values))
            if getattr(result, "rowcount", 0) != 1:
                return None
            uow.commit()
        return int(run.attempts) + 1

    # ------------------------------------------------------------------------------------------ running

    def _execute(self, spec: JobSpec, run_id: str, tenant_id: str | None, day: date, token: int,
                 checkpoint: dict[str, Any], processed: int) -> RunOutcome:
        context = JobContext(self.db, spec, run_id=run_id, tenant_id=tenant_id, business_date=day, token=token,
                             checkpoint=checkpoint, processed=processed, stop=self.stop)
        bound = log.bind(job=spec.name, run_id=run_id, tenant_id=context.tenant_id, business_date=day.isoformat())
        try:
            spec.function(context)
        except JobInterrupted:
            self._release(run_id, token)
            bound.info("job.interrupted", processed=context.processed)
            return RunOutcome(run_id, spec.name, context.tenant_id, day, "interrupted", context.processed)
        except LeaseLost as lost:
            bound.warning("job.lease_lost")
            return RunOutcome(run_id, spec.name, context.tenant_id, day, "lease_lost", context.processed,
                              describe_error(lost))
        except KeyboardInterrupt:
            self._release(run_id, token)
            raise
        except Exception as exc:  # noqa: BLE001 - a failing job is recorded as failed, retried, and reported
            error = describe_error(exc)
            bound.exception("job.failed", attempt=token)
            self._finish(spec, context, RunStatus.FAILED, error)
            return RunOutcome(run_id, spec.name, context.tenant_id, day, RunStatus.FAILED.value, context.processed,
                              error)
        if not self._finish(spec, context, RunStatus.SUCCEEDED, None):
            bound.warning("job.lease_lost")
            return RunOutcome(run_id, spec.name, context.tenant_id, day, "lease_lost", context.processed)
        return RunOutcome(run_id, spec.name, context.tenant_id, day, RunStatus.SUCCEEDED.value, context.processed)

    def _finish(self, spec: JobSpec, context: JobContext, status: RunStatus, error: str | None) -> bool:
        with self.db.uow() as uow:
            now = uow.clock.now()
            # A failed business-date run keeps a lease that says when it may be retried; an interval job
            # simply runs again after its interval.
            retry_at = (now + spec.retry_delay(context.token)
                        if status == RunStatus.FAILED and not spec.is_interval else None)
            result = uow.session.execute(
                update(runs_t).where(runs_t.c.id == context.run_id, runs_t.c.attempts == context.token,
                                     runs_t.c.status == RunStatus.RUNNING.value)
                .values(status=status.value, finished_at=now, lease_until=retry_at, error=error,
                        checkpoint=copy.deepcopy(context.checkpoint), processed=context.processed))
            if getattr(result, "rowcount", 0) != 1:
                return False
            uow.commit()
        return True

    def _release(self, run_id: str, token: int) -> None:
        """Give the lease back at once, so the next pass of any worker resumes the run."""
        with self.db.uow() as uow:
            uow.session.execute(update(runs_t).where(
                runs_t.c.id == run_id, runs_t.c.attempts == token, runs_t.c.status == RunStatus.RUNNING.value)
                .values(lease_until=uow.clock.now()))
            uow.commit()


def retry_run(uow: UnitOfWork, run_id: str) -> JobRun:
    """Give a failed run one more attempt at the next pass, whatever its attempts (an operator's decision)."""
    run = uow.session.get(JobRun, run_id, with_for_update=True)
    if run is None:
        raise NotFound(f"No such job run: {run_id}.", code="job_run_not_found", param="run_id")
    if run.status != RunStatus.FAILED:
        raise Conflict(f"Run {run_id} is {run.status}; only a failed run can be retried.",
                       code="job_run_not_failed", param="run_id")
    # A running run whose lease has expired is resumed by the next pass regardless of its attempts.
    run.status = RunStatus.RUNNING.value
    run.lease_until = uow.clock.now()
    run.finished_at = None
    uow.session.flush()
    return run


def list_runs(uow: UnitOfWork, *, limit: int = 20, job: str | None = None, tenant_id: str | None = None,
              status: str | None = None) -> list[JobRun]:
    query = select(JobRun)
    if job:
        query = query.where(JobRun.job == job)
    if tenant_id:
        query = query.where(JobRun.tenant_id == tenant_id)
    if status:
        query = query.where(JobRun.status == status)
    return list(uow.session.scalars(query.order_by(JobRun.started_at.desc(), JobRun.id.desc()).limit(limit)))
