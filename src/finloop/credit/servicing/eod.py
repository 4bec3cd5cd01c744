"""The end of day of the loan book: set-wise over every open loan, chunk by chunk, one calendar day at a time.

For each day, in this order: interest accrual, billing of the installments due tomorrow, use of advances on what
fell due, days past due / bucket / state, penalty interest and late fees past the grace period, write-off past the
product's threshold, the allowance, and (on a month's last day) the month-end snapshot. Each step is one SQL
statement over the chunk (a range of loan ids) except the rare ones (advances, penalties, late fees, write-offs),
which touch only the loans concerned. The chunk's general-ledger postings are summed per currency and limit group
and posted with it, in the same transaction: the loan sub-ledger and the general ledger move together.

Invariants owned here:
- idempotent per loan and day: a loan whose ``processed_day`` has reached the day is outside every statement, and
  a chunk commits whole (its statements, postings and the marker) or not at all, so a run that crashed resumes
  with the loans not yet processed and posts nothing twice (each posting's key names the day and the chunk's
  first loan);
- ``catch_up`` runs the same statements for one loan, so a repayment before the end of day sees the same book;
- after a day, ``check_subledger`` holds: per currency and limit group, the accounts equal the general ledger's
  loan accounts to the minor unit (a run that finds otherwise fails loudly).
"""

from __future__ import annotations

import calendar
from collections import defaultdict
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any
from typing import cast as cast_type

import structlog
from sqlalchemy import (
    BigInteger,
    String,
    Table,
    and_,
    bindparam,
    case,
    cast,
    exists,
    func,
    insert,
    literal,
    or_,
    select,
    update,
)
from sqlalchemy import Integer as SqlInteger
from sqlalchemy.engine import CursorResult

from finloop.audit import service as audit
from finloop.core.errors import InvalidRequest, InvariantViolation
from finloop.credit import limits
from finloop.credit.domain import LoanStatus
from finloop.credit.models import Loan, LoanProduct
from finloop.credit.servicing import books
from finloop.credit.servicing import service as servicing
from finloop.credit.servicing.books import Income, Receivable
from finloop.credit.servicing.domain import (
    DEFAULT_PROVISION_POLICY,
    OPEN_STATES,
    PPM,
    Bucket,
    ProvisionMethod,
    ProvisionPolicy,
    check_provision_policy,
    daily_penalty,
    day_number,
    day_of,
)
from finloop.credit.servicing.models import EndOfDayRun, LoanAccount, LoanInstallment, LoanMonthEnd
from finloop.credit.servicing.models import ProvisionPolicy as ProvisionPolicyRow
from finloop.db.uow import Database, UnitOfWork
from finloop.ledger import service as ledger
from finloop.ledger.domain import TransferSpec
from finloop.ledger.models import Account
from finloop.webhooks import service as webhooks

log = structlog.get_logger("finloop.credit.eod")

CHUNK = 20_000
ACTOR = "system:end_of_day"
_accounts = cast_type(Table, LoanAccount.__table__)
_installments = cast_type(Table, LoanInstallment.__table__)
_products = cast_type(Table, LoanProduct.__table__)
_month_ends = cast_type(Table, LoanMonthEnd.__table__)


def _count(uow: UnitOfWork, statement: Any, parameters: Any = None) -> int:
    result = cast_type(CursorResult[Any], uow.session.execute(statement, parameters))
    return int(result.rowcount or 0)

Step = Callable[[], AbstractContextManager[UnitOfWork]]


def committing(db: Database) -> Step:
    """Units of work that commit when their block ends normally: the end of day's steps outside the worker."""

    @contextmanager
    def step() -> Iterator[UnitOfWork]:
        with db.uow() as uow:
            yield uow
            uow.commit()

    return step


# ---------------------------------------------------------------------------------------------- policy


def provision_policy(uow: UnitOfWork, tenant_id: str) -> ProvisionPolicy:
    row = uow.session.get(ProvisionPolicyRow, tenant_id)
    return DEFAULT_PROVISION_POLICY if row is None else check_provision_policy(row.policy)


def set_provision_policy(uow: UnitOfWork, tenant_id: str, data: dict[str, Any], *, actor: str) -> ProvisionPolicy:
    policy = check_provision_policy(data)
    row = uow.session.get(ProvisionPolicyRow, tenant_id, with_for_update=True)
    now = uow.clock.now()
    if row is None:
        uow.session.add(ProvisionPolicyRow(tenant_id=tenant_id, policy=policy.to_json(), updated_by=actor[:60],
                                           updated_at=now))
    else:
        row.policy, row.updated_by, row.updated_at = policy.to_json(), actor[:60], now
    uow.session.flush()
    audit.record(uow, tenant_id, actor=actor, action="credit.provision_policy.updated",
                 object_type="credit_provision_policy", object_id=tenant_id, after=policy.to_json())
    return policy


# ---------------------------------------------------------------------------------------------- one chunk


@dataclass(slots=True)
class _Sums:
    """What a chunk posts, per (currency, limit group)."""

    interest: int = 0
    fees: int = 0
    penalty: int = 0
    provision: int = 0


def _dpd_expression(day: int) -> Any:
    oldest = _accounts.c.oldest_unpaid_due_day
    return case((oldest.is_(None), 0), (oldest >= day, 0), else_=literal(day) - oldest)


def _bucket_expression(dpd: Any) -> Any:
    return case((dpd == 0, Bucket.M0.value), (dpd <= 30, Bucket.M1.value), (dpd <= 60, Bucket.M2.value),
                (dpd <= 90, Bucket.M3.value), else_=Bucket.M4.value)


def _half_up_share(amount: Any, rate_ppm: Any) -> Any:
    """round half up of ``amount · rate_ppm / 10⁶`` in integers, split so it cannot overflow 64 bits."""
    return (amount // PPM) * rate_ppm + ((amount % PPM) * rate_ppm + PPM // 2) // PPM


def _loss_rate(policy: ProvisionPolicy) -> Any:
    bucket = _accounts.c.bucket
    if policy.method is ProvisionMethod.BUCKET:
        return case(*[(bucket == b.value, policy.rates_ppm[b.value]) for b in Bucket if b is not Bucket.M4],
                    else_=policy.rates_ppm[Bucket.M4.value])
    later = [(bucket == b.value, policy.rates_ppm[b.value] * policy.lgd_ppm // PPM)
             for b in Bucket if b not in (Bucket.M0, Bucket.M4)]
    # BIGINT: a PD and an LGD in parts per million multiply beyond 32 bits.
    return case((bucket == Bucket.M0.value, cast(_accounts.c.pd_ppm, BigInteger) * policy.lgd_ppm // PPM), *later,
                else_=policy.rates_ppm[Bucket.M4.value] * policy.lgd_ppm // PPM)


def _exposure() -> Any:
    a = _accounts.c
    return a.principal_outstanding + a.interest_billed + a.period_accrued + a.fees_billed + a.penalty_outstanding


def close_range(uow: UnitOfWork, tenant_id: str, day: int, first: str, last: str, *,
                policy: ProvisionPolicy | None = None) -> dict[str, Any]:
    """Process ``day`` for the open loans of the tenant with ids from ``first`` to ``last`` not yet processed.

    One statement touches every loan of the range (the accrual, the allowance it implies, the day's marker); the
    others touch only the loans concerned (falling due, past due, holding an advance). Those later steps run on
    the range's loans marked for the day, a loan a repayment already brought up to the day included: each step
    is guarded by its own state (the period's due day, the penalty's day, the late fee's flag, the account's
    state), so it does nothing the second time, and each posts only what it changed."""
    a, i, p = _accounts.c, _installments.c, _products.c
    session = uow.session
    session.flush()
    policy = policy or provision_policy(uow, tenant_id)
    sums: dict[tuple[str, str], _Sums] = defaultdict(_Sums)
    counts = {"loans": 0, "billed": 0, "penalised": 0, "late_fees": 0, "written_off": 0, "advances": 0}
    in_range = and_(a.tenant_id == tenant_id, a.loan_id >= first, a.loan_id <= last, a.state.in_(OPEN_STATES))

    # 1. Accrual (the cumulative target of the period by today, less what is already accrued) and the allowance
    # on the exposure it leaves, for every loan of the range not yet processed.
    target = case((a.period_number == 0, a.period_accrued), (a.period_start_day > day, a.period_accrued),
                  (a.period_due_day - 1 <= day, a.period_interest),
                  else_=a.period_interest * (literal(day) - a.period_start_day + 1)
                  // (a.period_due_day - a.period_start_day))
    exposure = a.principal_outstanding + a.interest_billed + target + a.fees_billed + a.penalty_outstanding
    needed = _half_up_share(exposure, _loss_rate(policy))
    mine: dict[str, tuple[str, str]] = {}
    for loan_id, code, group, accrued, provision in session.execute(
            update(_accounts).where(in_range, a.processed_day < day).values(
                accrued_today=target - a.period_accrued, period_accrued=target,
                interest_income=a.interest_income + target - a.period_accrued, penalty_today=0,
                provision_today=needed - a.provision_amount, provision_amount=needed, processed_day=day)
            .returning(a.loan_id, a.currency, a.limit_group, a.accrued_today, a.provision_today)):
        mine[loan_id] = (code, group)
        sums[(code, group)].interest += accrued
        sums[(code, group)].provision += provision
    counts["loans"] = len(mine)
    if not mine:
        return {"counts": counts, "sums": {}}
    today = and_(in_range, a.processed_day == day)

    # 2. Billing: the current installment falls due tomorrow (or fell due): bill it and open the next period.
    billing = and_(today, a.period_number > 0, a.period_due_day <= day + 1)

    def current(column: Any) -> Any:
        return select(column).where(i.loan_id == a.loan_id, i.number == a.period_number).scalar_subquery()

    def following(column: Any) -> Any:
        return select(column).where(i.loan_id == a.loan_id, i.number == a.period_number + 1,
                                    i.status == "scheduled").scalar_subquery()

    # The installment first, matched by the account's current number (before the account moves to the next).
    billed = session.execute(update(_installments).where(
        i.tenant_id == tenant_id, i.loan_id >= first, i.loan_id <= last, i.status == "scheduled",
        i.due_day <= day + 1,
        i.number == select(a.period_number).where(a.loan_id == i.loan_id, billing).scalar_subquery())
        .values(status="billed", billed_day=day).returning(i.loan_id, i.fees_due)).all()
    if billed:
        counts["billed"] = _count(uow, update(_accounts).where(billing).values(
            principal_billed=a.principal_billed + current(i.principal_due),
            interest_billed=a.interest_billed + a.period_accrued,
            fees_billed=a.fees_billed + current(i.fees_due), fee_income=a.fee_income + current(i.fees_due),
            oldest_unpaid_due_day=func.coalesce(a.oldest_unpaid_due_day, a.period_due_day),
            period_number=func.coalesce(following(i.number), 0), period_start_day=a.period_due_day,
            period_due_day=func.coalesce(following(i.due_day), a.period_due_day + 1),
            period_interest=func.coalesce(following(i.interest_due), 0), period_accrued=0))
        for loan_id, fees in billed:
            sums[mine[loan_id]].fees += fees

    # 3. Advances held are used on what has fallen due.
    billed_total = a.principal_billed + a.interest_billed + a.fees_billed + a.penalty_outstanding
    holders = list(session.scalars(select(LoanAccount).where(today, a.advance_amount > 0, billed_total > 0)
                                   .execution_options(populate_existing=True)))
    for account in holders:
        if servicing.apply_advance(uow, account, day_of(day)) is not None:
            counts["advances"] += 1
    session.flush()

    # 4. Days past due, bucket and state of the loans with something unpaid (or just cured); the changes that
    # matter are reported to the line and to webhooks.
    troubled = and_(today, or_(a.oldest_unpaid_due_day.is_not(None), a.dpd > 0))
    dpd = _dpd_expression(day)
    bucket = _bucket_expression(dpd)
    changed = session.execute(select(a.loan_id, a.applicant_id, a.dpd, dpd).where(
        troubled, or_(bucket != a.bucket, dpd == 1))).all()
    session.execute(update(_accounts).where(troubled).values(
        dpd=dpd, bucket=bucket, max_dpd=case((dpd > a.max_dpd, dpd), else_=a.max_dpd),
        state=case((dpd > 0, "overdue"), else_="performing")))
    _report_overdue(uow, tenant_id, day, changed)

    # 5. Penalty interest and late fees past the grace period.
    _penalise(uow, tenant_id, day, today, sums, counts)

    # 6. Write-off past the product's threshold.
    overdue_enough = list(session.scalars(select(LoanAccount).join(_products, p.id == a.product_id).where(
        today, a.dpd >= p.write_off_after_days).execution_options(populate_existing=True)))
    for account in overdue_enough:
        servicing.write_off(uow, account, day_of(day), reason="days_past_due", actor=ACTOR)
        counts["written_off"] += 1
    session.flush()

    # 7. The allowance again where the bucket or the exposure moved after step 1 (past-due loans only).
    needed = _half_up_share(_exposure(), _loss_rate(policy))
    moved = session.execute(select(a.loan_id, a.currency, a.limit_group, needed - a.provision_amount).where(
        troubled, needed != a.provision_amount).with_for_update()).all()
    for _, code, group, delta in moved:
        sums[(code, group)].provision += delta
    if moved:
        session.execute(update(_accounts).where(a.loan_id == bindparam("loan")).values(
            provision_amount=a.provision_amount + bindparam("delta"),
            provision_today=a.provision_today + bindparam("delta")),
            [{"loan": loan_id, "delta": delta} for loan_id, _, _, delta in moved])

    _post(uow, tenant_id, day, first, sums)
    return {"counts": counts, "sums": {f"{code}:{group}": {"interest": s.interest, "fees": s.fees,
                                                             "penalty": s.penalty, "provision": s.provision}
                                       for (code, group), s in sums.items()}}


def _report_overdue(uow: UnitOfWork, tenant_id: str, day: int, changed: Sequence[Any]) -> None:
    for loan_id, applicant_id, before, after in changed:
        if limits.find_line(uow, tenant_id, applicant_id) is not None:
            limits.record_overdue(uow, tenant_id, applicant_id, f"{loan_id}:{day}", days_past_due=int(after),
                                  actor=ACTOR)
        if before == 0 and after > 0:
            webhooks.publish_event(uow, tenant_id, type="credit.loan.overdue", data={
                "loan_id": loan_id, "days_past_due": int(after), "as_of": day_of(day).isoformat()})


def _penalise(uow: UnitOfWork, tenant_id: str, day: int, scope: Any, sums: dict[tuple[str, str], _Sums],
              counts: dict[str, int]) -> None:
    a, i, p = _accounts.c, _installments.c, _products.c
    session = uow.session
    rows = session.execute(select(a.loan_id, a.currency, a.limit_group, a.principal_billed, a.penalty_day,
                                  p.penalty_rate, p.rate_basis, p.grace_days, p.late_fee_amount)
                           .join(_products, p.id == a.product_id).where(scope, a.dpd > p.grace_days)).all()
    if not rows:
        return
    penalties = []
    for loan_id, code, group, principal, penalised_day, rate, basis, _, _ in rows:
        amount = daily_penalty(principal, rate, basis) if penalised_day < day else 0
        if amount:
            penalties.append({"loan": loan_id, "amount": amount})
            sums[(code, group)].penalty += amount
    if penalties:
        session.execute(update(_accounts).where(a.loan_id == bindparam("loan")).values(
            penalty_outstanding=a.penalty_outstanding + bindparam("amount"),
            penalty_income=a.penalty_income + bindparam("amount"), penalty_today=bindparam("amount"),
            penalty_day=day), penalties)
    counts["penalised"] = len(penalties)
    # Late fees: once per installment past the grace period, driven from the (few) overdue loans.
    charged = {row[0]: row for row in rows if row[8] > 0}
    late: list[tuple[str, int, int]] = []
    ids = sorted(charged)
    for start in range(0, len(ids), 500):
        for loan_id, number, due_day in session.execute(select(i.loan_id, i.number, i.due_day).where(
                i.loan_id.in_(ids[start:start + 500]), i.status == "billed", i.late_fee_charged.is_(False))):
            grace, fee = charged[loan_id][7], charged[loan_id][8]
            if due_day + grace < day:
                late.append((loan_id, number, fee))
    if not late:
        return
    session.execute(update(_installments).where(i.loan_id == bindparam("loan"), i.number == bindparam("installment"))
                    .values(fees_due=i.fees_due + bindparam("amount"), late_fee_charged=True),
                    [{"loan": loan, "installment": number, "amount": fee} for loan, number, fee in late])
    per_loan: dict[str, int] = defaultdict(int)
    for loan, _, fee in late:
        per_loan[loan] += fee
        code, group = charged[loan][1], charged[loan][2]
        sums[(code, group)].fees += fee
    session.execute(update(_accounts).where(a.loan_id == bindparam("loan")).values(
        fees_billed=a.fees_billed + bindparam("amount"), fee_income=a.fee_income + bindparam("amount")),
        [{"loan": loan, "amount": amount} for loan, amount in per_loan.items()])
    counts["late_fees"] = len(late)


def _post(uow: UnitOfWork, tenant_id: str, day: int, first: str, sums: dict[tuple[str, str], _Sums]) -> None:
    on = day_of(day).isoformat()
    specs: list[TransferSpec] = []
    for (code, group), s in sorted(sums.items()):
        pairs = [(s.interest, books.receivable_code(group, Receivable.INTEREST), books.income_code(group,
                                                                                                    Income.INTEREST)),
                 (s.fees, books.receivable_code(group, Receivable.FEES), books.income_code(group, Income.FEES)),
                 (s.penalty, books.receivable_code(group, Receivable.PENALTY), books.income_code(group,
                                                                                                  Income.PENALTY)),
                 (s.provision, books.provisions_code(group), books.allowance_code(group))]
        for (amount, debit, credit), name in zip(pairs, ("interest", "fees", "penalty", "provision"), strict=True):
            if amount == 0:
                continue
            if amount < 0:  # an allowance released
                debit, credit, amount = credit, debit, -amount
            specs.append(TransferSpec.simple(
                f"credit:eod:{on}:{first}:{name}:{group}:{code}", books.account(uow, tenant_id, debit, code),
                books.account(uow, tenant_id, credit, code), amount, code,
                description=f"End of day {on}: {name} ({group})",
                metadata={"business_date": on, "component": name, "limit_group": group, "first_loan_id": first}))
    if specs:
        ledger.post_transfers(uow, tenant_id, specs)


def catch_up(uow: UnitOfWork, account: LoanAccount, through_day: int) -> None:
    """Bring one open loan up to ``through_day`` with the end of day's own statements (the caller holds its lock)."""
    if account.state not in OPEN_STATES or account.processed_day >= through_day:
        return
    for day in range(account.processed_day + 1, through_day + 1):
        close_range(uow, account.tenant_id, day, account.loan_id, account.loan_id)
    uow.session.flush()
    uow.session.refresh(account)


# ---------------------------------------------------------------------------------------------- a whole day


def open_missing(uow: UnitOfWork, tenant_id: str) -> int:
    """Open the account of every active loan that has none (loans made before servicing existed)."""
    loans = list(uow.session.scalars(select(Loan).where(
        Loan.tenant_id == tenant_id, Loan.status == LoanStatus.ACTIVE.value,
        ~exists().where(_accounts.c.loan_id == Loan.id))))
    for loan in loans:
        product = uow.session.get(LoanProduct, loan.product_id)
        assert product is not None
        servicing.open_account(uow, loan, product)
    return len(loans)


def _merge(totals: dict[str, Any], chunk: dict[str, Any]) -> dict[str, Any]:
    merged = {"counts": dict(totals.get("counts", {})), "sums": {k: dict(v) for k, v in totals.get("sums",
                                                                                                    {}).items()}}
    for name, value in chunk["counts"].items():
        merged["counts"][name] = merged["counts"].get(name, 0) + value
    for key, values in chunk["sums"].items():
        into = merged["sums"].setdefault(key, {})
        for name, value in values.items():
            into[name] = into.get(name, 0) + value
    return merged


def run_day(step: Step, tenant_id: str, business_date: date, *, chunk: int = CHUNK,
            progress: Callable[[int], None] | None = None) -> EndOfDayRun:
    """The end of day of ``business_date`` (a calendar day) for a tenant's book; resumes where a run stopped."""
    day = day_number(business_date)
    with step() as uow:
        run = uow.session.get(EndOfDayRun, (tenant_id, business_date), with_for_update=True)
        if run is None:
            run = EndOfDayRun(tenant_id=tenant_id, business_date=business_date, status="running", loans=0, chunks=0,
                              totals={}, started_at=uow.clock.now(), completed_at=None)
            uow.session.add(run)
        if run.status == "completed":
            uow.session.expunge(run)
            return run
        open_missing(uow, tenant_id)
        policy = provision_policy(uow, tenant_id)
    a = _accounts.c
    while True:
        with step() as uow:
            ids = list(uow.session.scalars(select(a.loan_id).where(
                a.tenant_id == tenant_id, a.state.in_(OPEN_STATES), a.processed_day < day)
                .order_by(a.loan_id).limit(chunk)))
            if not ids:
                break
            done = close_range(uow, tenant_id, day, ids[0], ids[-1], policy=policy)
            run = uow.session.get(EndOfDayRun, (tenant_id, business_date), with_for_update=True)
            assert run is not None
            run.totals = _merge(run.totals, done)
            run.loans += done["counts"]["loans"]
            run.chunks += 1
        if progress is not None:
            progress(len(ids))
    with step() as uow:
        if business_date.day == calendar.monthrange(business_date.year, business_date.month)[1]:
            snapshot_month(uow, tenant_id, business_date)
        problems = check_subledger(uow, tenant_id)
        if problems:
            log.error("credit.eod.subledger_mismatch", tenant_id=tenant_id, problems=problems[:10])
            raise InvariantViolation("The loan sub-ledger does not equal the general ledger: "
                                     + "; ".join(problems[:5]), code="subledger_mismatch")
        run = uow.session.get(EndOfDayRun, (tenant_id, business_date), with_for_update=True)
        assert run is not None
        run.status, run.completed_at = "completed", uow.clock.now()
        uow.session.flush()
        uow.session.expunge(run)
    return run


def days_to_run(uow: UnitOfWork, tenant_id: str, through: date) -> list[date]:
    """The calendar days from the day after the last completed end of day (or the first disbursement) through
    ``through``: a business date closes the weekend and holidays before it too."""
    last = uow.session.scalar(select(func.max(EndOfDayRun.business_date)).where(
        EndOfDayRun.tenant_id == tenant_id, EndOfDayRun.status == "completed"))
    if last is None:
        first = uow.session.scalar(select(func.min(LoanAccount.disbursed_on)).where(
            LoanAccount.tenant_id == tenant_id))
        if first is None:
            first = uow.session.scalar(select(func.min(Loan.created_at)).where(
                Loan.tenant_id == tenant_id, Loan.status == LoanStatus.ACTIVE.value))
            first = first.date() if first is not None else through
        start = min(first, through)
    else:
        start = last + timedelta(days=1)
    return [start + timedelta(days=n) for n in range((through - start).days + 1)]


#: At most this many days in one call of ``run_through`` (a year and a day); a longer gap is closed in turns.
MAX_DAYS = 366


def plan(uow: UnitOfWork, tenant_id: str, through: date) -> list[date]:
    """The days a person asks to close through ``through``: it must be over (before today), and at most
    ``MAX_DAYS`` of them at a time."""
    if through >= servicing.servicing_date(uow, tenant_id):
        raise InvalidRequest("A day is closed once it is over: give a date before today.", code="day_not_over",
                             param="through")
    days = days_to_run(uow, tenant_id, through)
    if len(days) > MAX_DAYS:
        raise InvalidRequest(f"{len(days)} days are open; close at most {MAX_DAYS} at a time.",
                             code="too_many_days", param="through")
    return days


def run_through(step: Step, tenant_id: str, through: date, *, chunk: int = CHUNK,
                progress: Callable[[int], None] | None = None) -> list[EndOfDayRun]:
    """Close every calendar day not yet closed through ``through`` (see ``plan``)."""
    with step() as uow:
        days = plan(uow, tenant_id, through)
    return [run_day(step, tenant_id, day, chunk=chunk, progress=progress) for day in days]


def snapshot_month(uow: UnitOfWork, tenant_id: str, month_end: date) -> None:
    """Every loan open at the month's end or closed during the month, as it stands (once per loan and month)."""
    a, m = _accounts.c, _month_ends.c
    month = f"{month_end.year:04d}-{month_end.month:02d}"
    month_start = month_end.replace(day=1)
    origin = cast(func.substr(a.origination_month, 1, 4), SqlInteger) * 12 + cast(
        func.substr(a.origination_month, 6, 2), SqlInteger)
    rows = select(a.loan_id, literal(month, String), a.tenant_id, a.product_id, a.kind, a.currency,
                  a.origination_month, literal(month_end.year * 12 + month_end.month) - origin, a.state, a.bucket,
                  a.dpd, a.max_dpd, a.principal_outstanding, a.provision_amount).where(
        a.tenant_id == tenant_id, a.disbursed_on <= month_end,
        or_(a.state.in_(OPEN_STATES), a.closed_on >= month_start),
        ~exists().where(m.loan_id == a.loan_id, m.month == month))
    uow.session.execute(insert(_month_ends).from_select(
        ["loan_id", "month", "tenant_id", "product_id", "kind", "currency", "origination_month", "months_on_book",
         "state", "bucket", "dpd", "max_dpd", "principal_outstanding", "provision_amount"], rows))


# ---------------------------------------------------------------------------------------------- the check


def check_subledger(uow: UnitOfWork, tenant_id: str) -> list[str]:
    """The differences between the accounts and the general ledger, per currency, limit group and component
    (none when they agree). Loans still being disbursed count toward principal: their receivable is booked."""
    a = _accounts.c
    expected: dict[tuple[str, str], int] = defaultdict(int)
    for code, group, principal, interest, fees, penalty, allowance in uow.session.execute(
            select(a.currency, a.limit_group, func.sum(a.principal_outstanding),
                   func.sum(a.interest_billed + a.period_accrued), func.sum(a.fees_billed),
                   func.sum(a.penalty_outstanding), func.sum(a.provision_amount))
            .where(a.tenant_id == tenant_id).group_by(a.currency, a.limit_group)):
        expected[(code, books.receivable_code(group, Receivable.PRINCIPAL))] += int(principal or 0)
        expected[(code, books.receivable_code(group, Receivable.INTEREST))] += int(interest or 0)
        expected[(code, books.receivable_code(group, Receivable.FEES))] += int(fees or 0)
        expected[(code, books.receivable_code(group, Receivable.PENALTY))] += int(penalty or 0)
        expected[(code, books.allowance_code(group))] -= int(allowance or 0)
    in_flight = (LoanStatus.PENDING_DISBURSEMENT.value, LoanStatus.DISBURSING.value)
    for code, group, principal in uow.session.execute(
            select(Loan.currency, LoanProduct.limit_group, func.sum(Loan.principal_amount))
            .join(LoanProduct, LoanProduct.id == Loan.product_id)
            .where(Loan.tenant_id == tenant_id, Loan.status.in_(in_flight))
            .group_by(Loan.currency, LoanProduct.limit_group)):
        expected[(code, books.receivable_code(group, Receivable.PRINCIPAL))] += int(principal or 0)
    for code, group in {(c, g) for c, g, _ in uow.session.execute(
            select(Loan.currency, LoanProduct.limit_group, func.count()).join(
                LoanProduct, LoanProduct.id == Loan.product_id).where(Loan.tenant_id == tenant_id)
            .group_by(Loan.currency, LoanProduct.limit_group))}:
        for account_code in (*(books.receivable_code(group, r) for r in Receivable), books.allowance_code(group)):
            expected.setdefault((code, account_code), 0)
    problems = []
    for (code, account_code), amount in sorted(expected.items()):
        row = uow.session.execute(select(Account.debits_posted, Account.credits_posted).where(
            Account.tenant_id == tenant_id, Account.code == account_code, Account.currency == code)).first()
        booked = 0 if row is None else row[0] - row[1]
        if booked != amount:
            problems.append(f"{account_code} {code}: sub-ledger {amount}, general ledger {booked}")
    return problems
