"""Loan servicing in real time: the account a disbursed loan opens, repayments and their allocation, early
repayment (full, or partial reducing the installment or the term), write-off and recoveries.

Invariants owned here:
- a loan has one account, opened in the transaction that makes the loan active, with the contract's schedule as
  its installments and its first period current;
- before money is applied, the loan is brought up to date through yesterday (``eod.catch_up``: the same
  statements the end of day runs, for this one loan), so billing, accrual and days past due are never stale;
- a repayment is recorded once per loan and caller's reference (a replay returns it; the same reference with
  another amount is a conflict); it is allocated by the product's order over what is billed (``domain.allocate``)
  and posts one balanced entry in the same transaction: debit where the money is, credit each receivable paid,
  the prepayment fee to fee income and anything left to ``liabilities:credit:advances``;
- a prepayment pays, after what is billed, the interest accrued in the current period, the product's prepayment
  fee on the principal prepaid, then principal; the installments not yet billed are recalculated from today
  (``schedule.reschedule``) and the change is kept; enough for everything closes the loan (``paid_off``);
- principal repaid restores the credit line (``limits.restore``); an installment paid in full is reported on
  time or late to the line (``limits.record_repayment``);
- a write-off takes every receivable off the books against the loan's allowance first and to credit losses for the
  rest; money received afterwards is a recovery (income), never a receivable again.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from fractions import Fraction
from typing import Any

from sqlalchemy import select

from finloop.audit import service as audit
from finloop.core.errors import Conflict, InvalidRequest, NotFound
from finloop.core.money import Rounding, round_minor
from finloop.credit import funding, limits, products
from finloop.credit.models import CreditScore, Loan, LoanApplication, LoanProduct
from finloop.credit.products import Prepayment
from finloop.credit.schedule import Shorten, minor_from_text, reschedule
from finloop.credit.servicing import books
from finloop.credit.servicing.books import Income, Receivable
from finloop.credit.servicing.domain import (
    OPEN_STATES,
    AccountState,
    BilledInstallment,
    allocate,
    bucket_for,
    day_number,
    days_past_due,
    prepayment_fee,
)
from finloop.credit.servicing.models import LoanAccount, LoanInstallment, Repayment, ScheduleChange
from finloop.db.uow import UnitOfWork
from finloop.ledger import service as ledger
from finloop.ledger.domain import PostingSpec, TransferSpec
from finloop.tenancy.calendar import get_calendar
from finloop.webhooks import service as webhooks

OBJECT_TYPE = "loan"
SOURCES = ("manual", "payment", "autodebit", "collection", "recovery", "advance")
#: The probability of default assumed for a loan whose application has no score (parts per million).
DEFAULT_PD_PPM = 20_000
MAX_REFERENCE = 100


def servicing_date(uow: UnitOfWork, tenant_id: str) -> date:
    """Today for servicing: the tenant's calendar date of now (interest runs on calendar days, not business days)."""
    return get_calendar(uow, tenant_id).local_date(uow.clock.now())


def get_account(uow: UnitOfWork, tenant_id: str, loan_id: str, *, lock: bool = False) -> LoanAccount:
    row = uow.session.get(LoanAccount, loan_id, with_for_update=lock)
    if row is None or row.tenant_id != tenant_id:
        raise NotFound("No such loan account (the loan is not disbursed).", code="loan_account_not_found",
                       param="loan_id")
    return row


def list_accounts(uow: UnitOfWork, tenant_id: str, *, state: str | None = None, bucket: str | None = None,
                  after: str | None = None, limit: int = 50) -> list[LoanAccount]:
    query = select(LoanAccount).where(LoanAccount.tenant_id == tenant_id)
    if state:
        query = query.where(LoanAccount.state == state)
    if bucket:
        query = query.where(LoanAccount.bucket == bucket)
    if after:
        query = query.where(LoanAccount.loan_id > after)
    return list(uow.session.scalars(query.order_by(LoanAccount.loan_id).limit(limit)))


def installments(uow: UnitOfWork, tenant_id: str, loan_id: str) -> list[LoanInstallment]:
    return list(uow.session.scalars(select(LoanInstallment).where(
        LoanInstallment.tenant_id == tenant_id, LoanInstallment.loan_id == loan_id).order_by(LoanInstallment.number)))


def repayments(uow: UnitOfWork, tenant_id: str, loan_id: str) -> list[Repayment]:
    return list(uow.session.scalars(select(Repayment).where(
        Repayment.tenant_id == tenant_id, Repayment.loan_id == loan_id).order_by(Repayment.created_at,
                                                                                  Repayment.id)))


def schedule_changes(uow: UnitOfWork, tenant_id: str, loan_id: str) -> list[ScheduleChange]:
    return list(uow.session.scalars(select(ScheduleChange).where(
        ScheduleChange.tenant_id == tenant_id, ScheduleChange.loan_id == loan_id).order_by(ScheduleChange.id)))


def owed(account: LoanAccount) -> int:
    """Everything the loan owes today but the interest of the current period not yet accrued."""
    return (account.principal_outstanding + account.interest_billed + account.period_accrued + account.fees_billed
            + account.penalty_outstanding)


def billed(account: LoanAccount) -> int:
    """What has fallen due and is unpaid, penalty included."""
    return account.principal_billed + account.interest_billed + account.fees_billed + account.penalty_outstanding


def amount_due(uow: UnitOfWork, tenant_id: str, loan_id: str) -> int:
    """What is billed and unpaid now, less the advance held: what a reminder or a debit asks for."""
    account = get_account(uow, tenant_id, loan_id)
    return max(0, billed(account) - account.advance_amount)


# ---------------------------------------------------------------------------------------------- opening


def _pd_ppm(uow: UnitOfWork, application_id: str) -> int:
    score_id = uow.session.scalar(select(LoanApplication.score_id).where(LoanApplication.id == application_id))
    if score_id is None:
        return DEFAULT_PD_PPM
    probability = uow.session.scalar(select(CreditScore.probability).where(CreditScore.id == score_id))
    if probability is None:
        return DEFAULT_PD_PPM
    return min(1_000_000, max(0, round_minor(Fraction(probability) * 1_000_000, Rounding.HALF_UP)))


def open_account(uow: UnitOfWork, loan: Loan, product: LoanProduct) -> LoanAccount:
    """The account of a loan that just became active: its installments from the contract's schedule."""
    schedule, code = loan.schedule, loan.currency
    start = date.fromisoformat(schedule["start_date"])
    previous = day_number(start)
    rows: list[LoanInstallment] = []
    for item in schedule["installments"]:
        due_on = date.fromisoformat(item["due_date"])
        rows.append(LoanInstallment(
            loan_id=loan.id, number=int(item["number"]), tenant_id=loan.tenant_id, start_day=previous,
            due_on=due_on, due_day=day_number(due_on), principal_due=minor_from_text(item["principal"], code),
            interest_due=minor_from_text(item["interest"], code), fees_due=minor_from_text(item["fees"], code),
            principal_paid=0, interest_paid=0, fees_paid=0, status="scheduled", late_fee_charged=False,
            billed_day=None, paid_on=None))
        previous = day_number(due_on)
    first, now = rows[0], uow.clock.now()
    account = LoanAccount(
        loan_id=loan.id, tenant_id=loan.tenant_id, applicant_id=loan.applicant_id, product_id=product.id,
        kind=product.kind, limit_group=product.limit_group, currency=code, state=AccountState.PERFORMING.value,
        disbursed_on=start, origination_month=f"{start.year:04d}-{start.month:02d}",
        principal_amount=loan.principal_amount, principal_outstanding=loan.principal_amount, principal_billed=0,
        interest_billed=0, fees_billed=0, penalty_outstanding=0, advance_amount=0, period_number=first.number,
        period_start_day=first.start_day, period_due_day=first.due_day, period_interest=first.interest_due,
        period_accrued=0, dpd=0, bucket="M0", max_dpd=0, oldest_unpaid_due_day=None, provision_amount=0,
        pd_ppm=_pd_ppm(uow, loan.application_id), interest_income=0, fee_income=loan.merchant_fee_amount,
        penalty_income=0,
        paid_amount=0, written_off_amount=0, recovered_amount=0, accrued_today=0, penalty_today=0,
        provision_today=0,
        processed_day=day_number(start) - 1, penalty_day=day_number(start) - 1, closed_on=None, version=1,
        created_at=now, updated_at=now)
    uow.session.add_all(rows)
    uow.session.add(account)
    uow.session.flush()
    return account


# ---------------------------------------------------------------------------------------------- repayment


def _check_amount(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise InvalidRequest("amount is a positive whole number of minor units.", code="invalid_amount",
                             param="amount")
    return value


def _check_reference(value: Any) -> str:
    if not isinstance(value, str) or not value.strip() or len(value) > MAX_REFERENCE:
        raise InvalidRequest(f"reference is 1 to {MAX_REFERENCE} characters.", code="invalid_reference",
                             param="reference")
    return value.strip()


def _check_prepayment(value: Any) -> str | None:
    allowed = (None, Shorten.REDUCE_INSTALLMENT.value, Shorten.REDUCE_TERM.value, "payoff")
    if value not in allowed:
        raise InvalidRequest("prepayment is reduce_installment, reduce_term or payoff (or absent).",
                             code="invalid_prepayment", param="prepayment")
    return value  # type: ignore[no-any-return]


def _replay(uow: UnitOfWork, tenant_id: str, loan_id: str, reference: str, amount: int) -> Repayment | None:
    found = uow.session.scalar(select(Repayment).where(
        Repayment.tenant_id == tenant_id, Repayment.loan_id == loan_id, Repayment.reference == reference))
    if found is not None and found.amount != amount:
        raise Conflict("This reference was already used for another amount.", code="repayment_reference_reused",
                       param="reference")
    return found


def _billed(uow: UnitOfWork, account: LoanAccount) -> list[LoanInstallment]:
    return list(uow.session.scalars(select(LoanInstallment).where(
        LoanInstallment.loan_id == account.loan_id, LoanInstallment.status == "billed")
        .order_by(LoanInstallment.due_day, LoanInstallment.number).with_for_update()))


def _unbilled(uow: UnitOfWork, account: LoanAccount) -> list[LoanInstallment]:
    return list(uow.session.scalars(select(LoanInstallment).where(
        LoanInstallment.loan_id == account.loan_id, LoanInstallment.status == "scheduled")
        .order_by(LoanInstallment.number).with_for_update()))


def _row_json(row: LoanInstallment) -> dict[str, Any]:
    return {"number": row.number, "due_on": row.due_on.isoformat(), "principal": row.principal_due,
            "interest": row.interest_due, "fees": row.fees_due, "status": row.status}


@dataclass(slots=True)
class _Applied:
    """What one application of money did to a loan: the amounts per component and the extra effects."""

    penalty: int = 0
    fees: int = 0
    interest: int = 0
    principal: int = 0
    prepayment_fee: int = 0
    #: Money kept as an advance, and the advance held before that this application spent.
    advance: int = 0
    from_advance: int = 0
    details: dict[str, Any] | None = None
    schedule_change: ScheduleChange | None = None

    def allocation(self) -> dict[str, int]:
        return {"penalty": self.penalty, "fees": self.fees, "interest": self.interest, "principal": self.principal,
                "prepayment_fee": self.prepayment_fee, "advance": self.advance, "from_advance": self.from_advance}

    @property
    def received(self) -> int:
        return (self.penalty + self.fees + self.interest + self.principal + self.prepayment_fee + self.advance
                - self.from_advance)


def _pay_billed(uow: UnitOfWork, account: LoanAccount, product: LoanProduct, amount: int, today: date) -> _Applied:
    rows = _billed(uow, account)
    owed_rows = [BilledInstallment(r.number, r.due_day, r.principal_due - r.principal_paid,
                                   r.interest_due - r.interest_paid, r.fees_due - r.fees_paid) for r in rows]
    result = allocate(amount, product.allocation_order, account.penalty_outstanding, owed_rows)
    by_number = {r.number: r for r in rows}
    for number, paid in result.installments.items():
        row = by_number[number]
        row.principal_paid += paid["principal"]
        row.interest_paid += paid["interest"]
        row.fees_paid += paid["fees"]
        if (row.principal_paid, row.interest_paid, row.fees_paid) == (row.principal_due, row.interest_due,
                                                                       row.fees_due):
            row.status, row.paid_on = "paid", today
            _report_paid(uow, account, product, row, today)
    account.penalty_outstanding -= result.penalty
    account.fees_billed -= result.fees
    account.interest_billed -= result.interest
    account.principal_billed -= result.principal
    account.principal_outstanding -= result.principal
    return _Applied(result.penalty, result.fees, result.interest, result.principal)


def _report_paid(uow: UnitOfWork, account: LoanAccount, product: LoanProduct, row: LoanInstallment,
                 today: date) -> None:
    if limits.find_line(uow, account.tenant_id, account.applicant_id) is None:
        return
    on_time = day_number(today) <= row.due_day + product.grace_days
    limits.record_repayment(uow, account.tenant_id, account.applicant_id, f"{account.loan_id}:{row.number}",
                            on_time=on_time)


def _principal_returned(uow: UnitOfWork, account: LoanAccount, product: LoanProduct, amount: int,
                        reference: str) -> None:
    """Principal repaid frees the funding source's quota and, for a revolving product, the credit line."""
    loan = uow.session.get(Loan, account.loan_id)
    assert loan is not None
    funding.give_back(funding.get_source(uow, account.tenant_id, loan.funding_source_id, lock=True), amount)
    if product.restores_limit and limits.find_line(uow, account.tenant_id, account.applicant_id) is not None:
        limits.restore(uow, account.tenant_id, account.applicant_id, product, amount, reference)


def _largest_principal(money: int, rate: Fraction, cap: int) -> int:
    """The most principal ``money`` prepays with its fee (``principal + fee(principal) <= money``), up to ``cap``."""
    guess = min(cap, int(money / (1 + rate)))
    while guess < cap and guess + 1 + round_minor((guess + 1) * rate, Rounding.HALF_UP) <= money:
        guess += 1
    while guess > 0 and guess + round_minor(guess * rate, Rounding.HALF_UP) > money:
        guess -= 1
    return guess


def _prepay(uow: UnitOfWork, account: LoanAccount, product: LoanProduct, money: int, mode: str, today: date,
            applied: _Applied, actor: str) -> int:
    """Apply ``money`` left after the billed amounts to the unbilled balance; returns what is left over."""
    rate = Fraction(product.prepayment_fee_rate) if product.prepayment == Prepayment.FEE.value else Fraction(0)
    unbilled_principal = account.principal_outstanding - account.principal_billed
    accrued = account.period_accrued
    payoff = accrued + unbilled_principal + round_minor(unbilled_principal * rate, Rounding.HALF_UP)
    if mode == "payoff" and money < payoff:
        raise InvalidRequest(f"Paying the loan off takes {payoff} more minor units after what is billed.",
                             code="amount_below_payoff", param="amount")
    if money <= accrued:
        return money  # not even this period's interest: kept as an advance
    rows = _unbilled(uow, account)
    before = [_row_json(r) for r in rows]
    money -= accrued
    applied.interest += accrued
    account.period_accrued = 0
    principal = unbilled_principal if money >= payoff - accrued else _largest_principal(money, rate,
                                                                                        unbilled_principal)
    fee = round_minor(principal * rate, Rounding.HALF_UP)
    applied.principal += principal
    applied.prepayment_fee += fee
    account.principal_outstanding -= principal
    account.fee_income += fee
    remaining = account.principal_outstanding - account.principal_billed
    t = day_number(today)
    if remaining == 0:
        for row in rows:
            row.status = "cancelled"
        account.period_number, account.period_start_day, account.period_due_day = 0, t, t + 1
        account.period_interest = 0
        after: list[dict[str, Any]] = []
    else:
        shorten = Shorten.REDUCE_INSTALLMENT if mode == "payoff" else Shorten(mode)
        pricing = products.pricing_of(product)
        keep = rows[0].principal_due + rows[0].interest_due if pricing.method.value == "equal_installment" \
            else rows[0].principal_due
        new = reschedule(pricing, principal=remaining, start_on=today, due_dates=[r.due_on for r in rows],
                         fee=rows[0].fees_due, shorten=shorten, keep=keep)
        for row, item in zip(rows, new, strict=False):
            row.principal_due, row.interest_due, row.fees_due = item.principal, item.interest, item.fees
        for row in rows[len(new):]:
            row.status = "cancelled"
        rows[0].start_day = t
        account.period_number, account.period_start_day = rows[0].number, t
        account.period_due_day, account.period_interest = rows[0].due_day, rows[0].interest_due
        after = [_row_json(r) for r in rows]
    change = ScheduleChange(id=uow.ids.new("schedule_change"), tenant_id=account.tenant_id,
                            loan_id=account.loan_id, repayment_id=None,
                            reason="payoff" if remaining == 0 else mode, before=before, after=after,
                            business_date=today, created_by=actor[:60], created_at=uow.clock.now())
    uow.session.add(change)
    applied.schedule_change = change
    applied.details = {"prepayment": mode, "schedule_change_id": change.id, "prepaid_principal": principal}
    return money - principal - fee


def _post(uow: UnitOfWork, account: LoanAccount, key: str, debit_account_id: str, applied: _Applied,
          description: str, metadata: dict[str, Any]) -> str:
    tenant_id, group, code = account.tenant_id, account.limit_group, account.currency
    postings = [PostingSpec(debit_account_id, applied.received, code)]
    for component in Receivable:
        amount = getattr(applied, component.value)
        if amount:
            postings.append(PostingSpec(books.receivable(uow, tenant_id, group, component, code), -amount, code))
    if applied.prepayment_fee:
        postings.append(PostingSpec(books.income(uow, tenant_id, group, Income.FEES, code), -applied.prepayment_fee,
                                    code))
    if applied.advance != applied.from_advance:
        postings.append(PostingSpec(books.account(uow, tenant_id, books.ADVANCES_CODE, code),
                                    applied.from_advance - applied.advance, code))
    posted = ledger.post_transfer(uow, tenant_id, TransferSpec(key, tuple(postings), description, None, metadata))
    return posted.id


def refresh_status(account: LoanAccount, uow: UnitOfWork, today: date) -> None:
    """Days past due, bucket and state after money came in (the end of day recomputes them the same way)."""
    oldest = uow.session.scalar(select(LoanInstallment.due_day).where(
        LoanInstallment.loan_id == account.loan_id, LoanInstallment.status == "billed")
        .order_by(LoanInstallment.due_day).limit(1))
    account.oldest_unpaid_due_day = oldest
    processed = max(account.processed_day, day_number(today) - 1)
    account.dpd = days_past_due(processed, oldest)
    account.bucket = bucket_for(account.dpd).value
    if account.principal_outstanding == 0 and owed(account) == 0:
        account.state, account.closed_on = AccountState.PAID_OFF.value, today
        account.period_number = 0
        account.dpd, account.bucket = 0, "M0"
    else:
        account.state = (AccountState.OVERDUE if account.dpd > 0 else AccountState.PERFORMING).value


def repay(uow: UnitOfWork, tenant_id: str, loan_id: str, *, amount: Any, reference: Any, source: str = "manual",
          funds_account_id: str | None = None, prepayment: Any = None, actor: str) -> Repayment:
    """Apply money received for a loan (see the module's doc). ``funds_account_id``: the ledger account the money
    is in now (default the tenant's ``assets:bank:credit_collections`` in the loan's currency)."""
    amount, reference, mode = _check_amount(amount), _check_reference(reference), _check_prepayment(prepayment)
    if source not in SOURCES:
        raise InvalidRequest(f"source is one of {', '.join(SOURCES)}.", code="invalid_source", param="source")
    account = get_account(uow, tenant_id, loan_id, lock=True)
    replayed = _replay(uow, tenant_id, loan_id, reference, amount)
    if replayed is not None:
        return replayed
    if account.state == AccountState.WRITTEN_OFF.value:
        return recover(uow, tenant_id, loan_id, amount=amount, reference=reference, funds_account_id=funds_account_id,
                       actor=actor)
    if account.state not in OPEN_STATES:
        raise Conflict(f"The loan is {account.state}; it takes no more money.", code="loan_closed", param="loan_id")
    product = uow.session.get(LoanProduct, account.product_id)
    assert product is not None
    if mode is not None and product.prepayment == Prepayment.NOT_ALLOWED.value:
        raise Conflict("This product does not allow early repayment.", code="prepayment_not_allowed",
                       param="prepayment")
    today = servicing_date(uow, tenant_id)
    from finloop.credit.servicing import eod

    eod.catch_up(uow, account, day_number(today) - 1)
    if account.state == AccountState.WRITTEN_OFF.value:  # the days caught up reached the write-off threshold
        return recover(uow, tenant_id, loan_id, amount=amount, reference=reference, funds_account_id=funds_account_id,
                       actor=actor)
    funds = funds_account_id or books.account(uow, tenant_id, books.COLLECTIONS_CODE, account.currency)
    applied = _pay_billed(uow, account, product, amount, today)
    left = amount - applied.penalty - applied.fees - applied.interest - applied.principal
    if mode is not None and left > 0:
        # A prepayment also spends the advance already held for the loan.
        applied.from_advance, account.advance_amount = account.advance_amount, 0
        left = _prepay(uow, account, product, left + applied.from_advance, mode, today, applied, actor)
    applied.advance = left
    account.advance_amount += left
    account.paid_amount += amount
    if applied.principal:
        _principal_returned(uow, account, product, applied.principal, f"{loan_id}:{reference}")
    refresh_status(account, uow, today)
    if account.state in OPEN_STATES and 0 < owed(account) <= product.write_off_below_amount:
        waived = write_off(uow, account, today, reason="small_balance", actor=actor, closes_as=AccountState.PAID_OFF)
        applied.details = (applied.details or {}) | {"waived": waived}
    if account.state == AccountState.PAID_OFF.value and account.advance_amount:
        applied.details = (applied.details or {}) | {"overpaid": account.advance_amount}
    kind = "regular" if mode is None else ("payoff" if account.state == AccountState.PAID_OFF.value
                                           else "prepayment")
    return _record(uow, account, amount=amount, kind=kind, source=source, reference=reference, applied=applied,
                   funds=funds, today=today, actor=actor)


def _record(uow: UnitOfWork, account: LoanAccount, *, amount: int, kind: str, source: str, reference: str,
            applied: _Applied, funds: str, today: date, actor: str) -> Repayment:
    now = uow.clock.now()
    row = Repayment(id=uow.ids.new("repayment"), tenant_id=account.tenant_id, loan_id=account.loan_id, amount=amount,
                    currency=account.currency, kind=kind, source=source, reference=reference,
                    allocation=applied.allocation(), details=applied.details or {}, business_date=today,
                    entry_id=None, created_by=actor[:60], created_at=now)
    uow.session.add(row)
    if applied.schedule_change is not None:
        applied.schedule_change.repayment_id = row.id
    row.entry_id = _post(uow, account, f"credit:repayment:{row.id}", funds, applied,
                         f"Repayment of loan {account.loan_id}", {"loan_id": account.loan_id, "repayment_id": row.id,
                                                                  "kind": kind, "source": source})
    account.version += 1
    account.updated_at = now
    uow.session.flush()
    audit.record(uow, account.tenant_id, actor=actor, action="credit.repayment.applied", object_type=OBJECT_TYPE,
                 object_id=account.loan_id, after={"repayment_id": row.id, "amount": amount, "kind": kind,
                                                   "allocation": row.allocation, "state": account.state})
    webhooks.publish_event(uow, account.tenant_id, type="credit.repayment.applied", data={
        "loan_id": account.loan_id, "repayment_id": row.id, "amount": amount, "currency": account.currency,
        "kind": kind, "allocation": row.allocation, "state": account.state})
    if account.state == AccountState.PAID_OFF.value:
        webhooks.publish_event(uow, account.tenant_id, type="credit.loan.paid_off", data={
            "loan_id": account.loan_id, "closed_on": today.isoformat()})
    return row


def apply_advance(uow: UnitOfWork, account: LoanAccount, today: date) -> Repayment | None:
    """Use the advance held for a loan on what just fell due (the end of day, after billing)."""
    product = uow.session.get(LoanProduct, account.product_id)
    assert product is not None
    use = min(account.advance_amount, billed(account))
    if use <= 0:
        return None
    applied = _pay_billed(uow, account, product, use, today)
    account.advance_amount -= use
    refresh_status(account, uow, today)
    funds = books.account(uow, account.tenant_id, books.ADVANCES_CODE, account.currency)
    return _record(uow, account, amount=use, kind="advance", source="advance",
                   reference=f"advance:{today.isoformat()}", applied=applied, funds=funds, today=today,
                   actor="system:end_of_day")


@dataclass(frozen=True, slots=True)
class PayoffQuote:
    loan_id: str
    currency: str
    as_of: date
    principal: int
    interest: int
    fees: int
    penalty: int
    prepayment_fee: int
    advance: int

    @property
    def total(self) -> int:
        return max(0, self.principal + self.interest + self.fees + self.penalty + self.prepayment_fee - self.advance)


def payoff_quote(uow: UnitOfWork, tenant_id: str, loan_id: str) -> PayoffQuote:
    """What paying the loan off today takes: everything owed, the current period's interest through yesterday, and
    the prepayment fee on the principal not yet billed. Nothing is written."""
    account = get_account(uow, tenant_id, loan_id)
    if account.state not in OPEN_STATES:
        raise Conflict(f"The loan is {account.state}.", code="loan_closed", param="loan_id")
    product = uow.session.get(LoanProduct, account.product_id)
    assert product is not None
    if product.prepayment == Prepayment.NOT_ALLOWED.value:
        raise Conflict("This product does not allow early repayment.", code="prepayment_not_allowed",
                       param="loan_id")
    from finloop.credit.servicing.domain import accrued_through

    today = servicing_date(uow, tenant_id)
    yesterday = day_number(today) - 1
    accrued = account.period_accrued
    if account.period_number and yesterday > account.processed_day:
        accrued = accrued_through(account.period_interest, account.period_start_day, account.period_due_day,
                                  yesterday)
    unbilled = account.principal_outstanding - account.principal_billed
    fee = prepayment_fee(unbilled, product.prepayment_fee_rate) if product.prepayment == Prepayment.FEE.value else 0
    return PayoffQuote(loan_id, account.currency, today, account.principal_outstanding,
                       account.interest_billed + accrued, account.fees_billed, account.penalty_outstanding, fee,
                       account.advance_amount)


# ---------------------------------------------------------------------------------------------- write-off


def write_off(uow: UnitOfWork, account: LoanAccount, today: date, *, reason: str, actor: str,
              closes_as: AccountState = AccountState.WRITTEN_OFF) -> int:
    """Take every receivable of an open loan off the books: against its allowance first, to credit losses for the
    rest. Returns the amount written off. A small balance left after the last repayment (the product's
    ``write_off_below_amount``) is forgiven the same way, the loan closing as paid off."""
    if account.state not in OPEN_STATES:
        raise Conflict(f"The loan is {account.state}; only an open loan can be written off.", code="loan_closed",
                       param="loan_id")
    tenant_id, group, code = account.tenant_id, account.limit_group, account.currency
    parts = {Receivable.PRINCIPAL: account.principal_outstanding,
             Receivable.INTEREST: account.interest_billed + account.period_accrued,
             Receivable.FEES: account.fees_billed, Receivable.PENALTY: account.penalty_outstanding}
    total = sum(parts.values())
    from_allowance = min(account.provision_amount, total)
    postings: list[PostingSpec] = []
    # The whole allowance of the loan is released: what covers the loss, and what it held beyond the loss back to
    # the provisions expense.
    if account.provision_amount:
        postings.append(PostingSpec(books.account(uow, tenant_id, books.allowance_code(group), code),
                                    account.provision_amount, code))
    if total - from_allowance:
        postings.append(PostingSpec(books.account(uow, tenant_id, books.losses_code(group), code),
                                    total - from_allowance, code))
    surplus = account.provision_amount - from_allowance
    if surplus:
        postings.append(PostingSpec(books.account(uow, tenant_id, books.provisions_code(group), code), -surplus,
                                    code))
    for component, amount in parts.items():
        if amount:
            postings.append(PostingSpec(books.receivable(uow, tenant_id, group, component, code), -amount, code))
    if postings:
        ledger.post_transfer(uow, tenant_id, TransferSpec(
            f"credit:write_off:{account.loan_id}", tuple(postings), f"Write-off of loan {account.loan_id}", None,
            {"loan_id": account.loan_id, "reason": reason, "days_past_due": account.dpd,
             "business_date": today.isoformat()}))
    for row in uow.session.scalars(select(LoanInstallment).where(
            LoanInstallment.loan_id == account.loan_id, LoanInstallment.status.in_(("billed", "scheduled")))):
        row.status = "written_off"
    account.written_off_amount = total
    account.provision_amount = 0
    account.principal_outstanding = account.principal_billed = account.interest_billed = 0
    account.period_accrued = account.period_interest = account.fees_billed = account.penalty_outstanding = 0
    account.period_number = 0
    account.state, account.closed_on = closes_as.value, today
    account.version += 1
    account.updated_at = uow.clock.now()
    uow.session.flush()
    audit.record(uow, tenant_id, actor=actor, action="credit.loan.written_off", object_type=OBJECT_TYPE,
                 object_id=account.loan_id, after={"amount": total, "reason": reason, "days_past_due": account.dpd,
                                                   "from_allowance": from_allowance, "state": closes_as.value})
    if closes_as is not AccountState.WRITTEN_OFF:
        return total
    webhooks.publish_event(uow, tenant_id, type="credit.loan.written_off", data={
        "loan_id": account.loan_id, "amount": total, "currency": code, "days_past_due": account.dpd,
        "reason": reason})
    return total


def write_off_loan(uow: UnitOfWork, tenant_id: str, loan_id: str, *, reason: Any, actor: str) -> LoanAccount:
    """A write-off decided by a person before the threshold (fraud, deceased, settlement)."""
    if not isinstance(reason, str) or not 1 <= len(reason.strip()) <= 200:
        raise InvalidRequest("reason is 1 to 200 characters.", code="invalid_reason", param="reason")
    account = get_account(uow, tenant_id, loan_id, lock=True)
    from finloop.credit.servicing import eod

    today = servicing_date(uow, tenant_id)
    if account.state in OPEN_STATES:
        eod.catch_up(uow, account, day_number(today) - 1)
        if account.state == AccountState.WRITTEN_OFF.value:
            return account  # the days caught up reached the product's threshold first
    write_off(uow, account, today, reason=reason.strip(), actor=actor)
    return account


def recover(uow: UnitOfWork, tenant_id: str, loan_id: str, *, amount: Any, reference: Any,
            funds_account_id: str | None = None, actor: str) -> Repayment:
    """Money received for a written-off loan: recovery income up to what was written off, the rest an advance to
    give back."""
    amount, reference = _check_amount(amount), _check_reference(reference)
    account = get_account(uow, tenant_id, loan_id, lock=True)
    replayed = _replay(uow, tenant_id, loan_id, reference, amount)
    if replayed is not None:
        return replayed
    if account.state != AccountState.WRITTEN_OFF.value:
        raise Conflict("Only a written-off loan has recoveries.", code="loan_not_written_off", param="loan_id")
    today = servicing_date(uow, tenant_id)
    recovered = min(amount, account.written_off_amount - account.recovered_amount)
    excess = amount - recovered
    code, group = account.currency, account.limit_group
    funds = funds_account_id or books.account(uow, tenant_id, books.COLLECTIONS_CODE, code)
    postings = [PostingSpec(funds, amount, code)]
    if recovered:
        postings.append(PostingSpec(books.income(uow, tenant_id, group, Income.RECOVERIES, code), -recovered, code))
    if excess:
        postings.append(PostingSpec(books.account(uow, tenant_id, books.ADVANCES_CODE, code), -excess, code))
    row = Repayment(id=uow.ids.new("repayment"), tenant_id=tenant_id, loan_id=loan_id, amount=amount, currency=code,
                    kind="recovery", source="recovery", reference=reference,
                    allocation={"recovery": recovered, "advance": excess}, details={}, business_date=today,
                    entry_id=None, created_by=actor[:60], created_at=uow.clock.now())
    uow.session.add(row)
    row.entry_id = ledger.post_transfer(uow, tenant_id, TransferSpec(
        f"credit:recovery:{row.id}", tuple(postings), f"Recovery on loan {loan_id}", None,
        {"loan_id": loan_id, "repayment_id": row.id})).id
    account.recovered_amount += recovered
    account.advance_amount += excess
    account.paid_amount += amount
    account.version += 1
    account.updated_at = uow.clock.now()
    uow.session.flush()
    audit.record(uow, tenant_id, actor=actor, action="credit.loan.recovered", object_type=OBJECT_TYPE,
                 object_id=loan_id, after={"repayment_id": row.id, "amount": amount, "recovered": recovered})
    return row


def due_on(uow: UnitOfWork, tenant_id: str, day: date) -> Sequence[LoanInstallment]:
    """Installments falling due on ``day`` and not paid yet (what borrowers are asked to pay that day)."""
    return list(uow.session.scalars(select(LoanInstallment).where(
        LoanInstallment.tenant_id == tenant_id, LoanInstallment.due_on == day,
        LoanInstallment.status.in_(("scheduled", "billed"))).order_by(LoanInstallment.loan_id)))
