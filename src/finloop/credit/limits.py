"""Credit lines: grant an explained limit, split it into product sub-limits, let loans reserve, consume, release and
restore it, and adjust it by policy (on-time repayments, overdue, periodic review) or by hand.

Invariants owned here:
- one line per applicant, in the applicant's currency, with a sub-limit for each limit group (the policy's
  groups and the groups of the tenant's offered products); a limit is an off-balance-sheet commitment, not a
  money movement: nothing here posts to the ledger;
- available = limit - reserved - used (never below 0), for the line and for a sub-limit; a loan of a product
  can have the smaller of the two, and nothing from a frozen or closed line or sub-limit, or in another
  currency;
- reserve, consume, release and restore lock the line row and then the sub-limit row (always in that order)
  and check inside the lock, so two concurrent reservations cannot together exceed the line (on PostgreSQL by
  ``SELECT ... FOR UPDATE``; SQLite serialises writers). Each is recorded as a line event unique per line,
  kind and the caller's reference, so a retried call changes nothing twice;
- restore gives back the line's used amount on any repayment, and a sub-limit's only when the group revolves
  (a non-revolving sub-limit counts what was ever drawn on it);
- every change of a limit or status writes a limit change (kind, reason, note, before and after, actor,
  business date, the factors or event behind it) and an audit event, in the same transaction;
- the periodic review re-calculates lines not reviewed for ``review_interval_days``, at most once per line and
  business date (``reviewed_on``), so a rerun of a day does nothing.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from enum import StrEnum
from fractions import Fraction
from typing import Any

from sqlalchemy import func, or_, select

from finloop.audit import service as audit
from finloop.core.errors import Conflict, InvalidRequest, LimitExceeded, NotFound
from finloop.core.money import MAX_AMOUNT, check_amount
from finloop.core.text import check_text
from finloop.credit import scoring
from finloop.credit import service as credit
from finloop.credit.domain import PartyKind
from finloop.credit.features import BUREAU_MAX_AGE, ORDER_PURPOSE
from finloop.credit.limit_policy import (
    DEFAULT,
    DEFAULT_POLICY,
    Calculation,
    LimitInputs,
    LimitPolicy,
    calculate,
    check_policy,
    lowered,
)
from finloop.credit.models import (
    Applicant,
    BureauReport,
    CreditLimitChange,
    CreditLine,
    CreditLineEvent,
    CreditSubLimit,
    LoanProduct,
)
from finloop.credit.models import (
    LimitPolicy as PolicyRow,
)
from finloop.credit.products import limit_groups
from finloop.db.uow import UnitOfWork

REVIEW_BATCH = 200
MAX_REFERENCE = 100


class LineStatus(StrEnum):
    ACTIVE = "active"
    FROZEN = "frozen"
    CLOSED = "closed"


class CreditLimitExceeded(LimitExceeded):
    code = "credit_limit_exceeded"


# ---------------------------------------------------------------------------------------------- policy


def get_policy(uow: UnitOfWork, tenant_id: str) -> LimitPolicy:
    row = uow.session.get(PolicyRow, tenant_id)
    return DEFAULT if row is None else check_policy(row.policy)


def policy_row(uow: UnitOfWork, tenant_id: str) -> PolicyRow:
    row = uow.session.get(PolicyRow, tenant_id)
    if row is not None:
        return row
    return PolicyRow(tenant_id=tenant_id, policy=DEFAULT.to_json(), updated_by="default", updated_at=uow.clock.now())


def set_policy(uow: UnitOfWork, tenant_id: str, changes: dict[str, Any], *, actor: str) -> PolicyRow:
    """Change some fields of the tenant's limit policy (the rest keep their value); audited."""
    row = uow.session.get(PolicyRow, tenant_id, with_for_update=True)
    before = None if row is None else dict(row.policy)
    policy = check_policy(changes, base=before or DEFAULT_POLICY).to_json()
    now = uow.clock.now()
    if row is None:
        row = PolicyRow(tenant_id=tenant_id, policy=policy, updated_by=actor[:60], updated_at=now)
        uow.session.add(row)
    else:
        row.policy, row.updated_by, row.updated_at = policy, actor[:60], now
    uow.session.flush()
    audit.record(uow, tenant_id, actor=actor, action="credit.limit_policy.updated", object_type="credit_limit_policy",
                 object_id=tenant_id, before=before, after=policy)
    return row


# ---------------------------------------------------------------------------------------------- inputs


def _latest_report(uow: UnitOfWork, tenant_id: str, applicant_id: str, as_of: datetime) -> BureauReport | None:
    return uow.session.scalar(select(BureauReport).where(
        BureauReport.tenant_id == tenant_id, BureauReport.applicant_id == applicant_id,
        BureauReport.status == "completed", BureauReport.requested_at >= as_of - BUREAU_MAX_AGE,
        BureauReport.requested_at <= as_of).order_by(BureauReport.requested_at.desc(), BureauReport.id.desc()).limit(1))


def trading_history(uow: UnitOfWork, tenant_id: str, merchant_id: str, currency_code: str,
                    as_of: datetime) -> tuple[int, Fraction]:
    """A merchant's net sales (captured less refunded succeeded orders) of the 365 days before ``as_of`` in the
    currency, and the months traded in that window (from the first such sale; at most 12)."""
    from finloop.payments.models import Payment

    since = as_of - timedelta(days=365)
    net, first = uow.session.execute(select(
        func.coalesce(func.sum(Payment.captured_amount - Payment.refunded_amount), 0), func.min(Payment.created_at))
        .where(Payment.tenant_id == tenant_id, Payment.merchant_id == merchant_id, Payment.currency == currency_code,
               Payment.purpose == ORDER_PURPOSE, Payment.status == "succeeded", Payment.created_at >= since,
               Payment.created_at < as_of)).one()
    if first is None:
        return 0, Fraction(0)
    if isinstance(first, str):  # MIN() may lose the column type on SQLite
        first = datetime.fromisoformat(first)
    if first.tzinfo is None:
        from datetime import UTC

        first = first.replace(tzinfo=UTC)
    seconds = int((as_of - first).total_seconds())
    return int(net), min(Fraction(12), Fraction(seconds * 12, 365 * 86400))


def inputs_for(uow: UnitOfWork, tenant_id: str, applicant: Applicant, *, line: CreditLine | None = None,
               requested_amount: int | None = None) -> LimitInputs:
    """What the calculation reads of an applicant now: the latest score's rating, the declared income, the latest
    completed bureau report of the last 90 days, a merchant's trading history, and the line's repayment record."""
    now = uow.clock.now()
    score = scoring.latest_score(uow, tenant_id, applicant.id)
    report = _latest_report(uow, tenant_id, applicant.id, now)
    net_sales = months = None
    if applicant.party_kind == PartyKind.MERCHANT.value:
        net_sales, months = trading_history(uow, tenant_id, applicant.party_id, applicant.currency, now)
    debt = None
    if report is not None:
        debt = report.open_loan_balance_amount if report.currency in (None, applicant.currency) else None
    return LimitInputs(
        currency=applicant.currency, party_kind=applicant.party_kind,
        rating=score.rating if score is not None else None, score=score.score if score is not None else None,
        score_id=score.id if score is not None else None, monthly_income=applicant.declared_income_amount,
        existing_debt=debt if debt is not None else (0 if report is not None else None),
        delinquencies_24m=report.delinquencies_24m if report else None,
        enquiries_90d=report.enquiries_90d if report else None,
        is_thin_file=report.is_thin_file if report else None, has_bureau_report=report is not None,
        bureau_report_id=report.id if report else None, net_sales_365d=net_sales, trading_months=months,
        on_time_repayments=line.on_time_repayments if line else 0, overdue_days=line.overdue_days if line else 0,
        requested_amount=requested_amount if requested_amount is not None else (line.requested_amount if line
                                                                                 else None))


def _groups(uow: UnitOfWork, tenant_id: str, policy: LimitPolicy) -> dict[str, bool]:
    """Every limit group a line gets, with whether it revolves: the policy's groups and the offered products'."""
    groups = {group: group != "installment" for group in policy.group_shares}
    groups.update(limit_groups(uow, tenant_id))
    return groups


def calculation_for(uow: UnitOfWork, tenant_id: str, applicant: Applicant, *, line: CreditLine | None = None,
                    requested_amount: int | None = None) -> Calculation:
    policy = get_policy(uow, tenant_id)
    inputs = inputs_for(uow, tenant_id, applicant, line=line, requested_amount=requested_amount)
    return calculate(policy, inputs, list(_groups(uow, tenant_id, policy)))


# ---------------------------------------------------------------------------------------------- lines


def line_snapshot(line: CreditLine) -> dict[str, Any]:
    return {"applicant_id": line.applicant_id, "currency": line.currency, "status": line.status,
            "frozen_reason": line.frozen_reason, "limit_amount": line.limit_amount,
            "reserved_amount": line.reserved_amount, "used_amount": line.used_amount}


def _business_date(uow: UnitOfWork, tenant_id: str) -> date:
    from finloop.tenancy import service as tenancy

    return tenancy.current_business_date(uow, tenant_id)


def _change(uow: UnitOfWork, line: CreditLine, *, group: str | None, kind: str, reason: str, note: str,
            before_amount: int | None, after_amount: int, before_status: str | None, after_status: str,
            details: dict[str, Any], business_date: date | None, actor: str) -> CreditLimitChange:
    change = CreditLimitChange(
        id=uow.ids.new("credit_limit_change"), tenant_id=line.tenant_id, line_id=line.id, limit_group=group,
        kind=kind, reason=reason, note=note[:500], before_amount=before_amount, after_amount=after_amount,
        before_status=before_status, after_status=after_status, details=details, business_date=business_date,
        actor=actor[:60], created_at=uow.clock.now())
    uow.session.add(change)
    return change


def _set_limit(uow: UnitOfWork, line: CreditLine, subs: dict[str, CreditSubLimit], *, limit: int,
               sub_limits: dict[str, int], reason: str, note: str, details: dict[str, Any],
               business_date: date | None, actor: str) -> list[CreditLimitChange]:
    """Write the new limits, one limit change for each amount that moved."""
    changes: list[CreditLimitChange] = []
    now = uow.clock.now()
    if limit != line.limit_amount:
        kind = "raised" if limit > line.limit_amount else "lowered"
        changes.append(_change(uow, line, group=None, kind=kind, reason=reason, note=note,
                               before_amount=line.limit_amount, after_amount=limit, before_status=line.status,
                               after_status=line.status, details=details, business_date=business_date, actor=actor))
        line.limit_amount = limit
    for group, amount in sorted(sub_limits.items()):
        sub = subs.get(group)
        if sub is None or amount == sub.limit_amount:
            continue
        kind = "raised" if amount > sub.limit_amount else "lowered"
        changes.append(_change(uow, line, group=group, kind=kind, reason=reason, note=note,
                               before_amount=sub.limit_amount, after_amount=amount, before_status=sub.status,
                               after_status=sub.status, details={}, business_date=business_date, actor=actor))
        sub.limit_amount = amount
        sub.updated_at = now
    if changes:
        line.version += 1
        line.updated_at = now
    return changes


def _audit(uow: UnitOfWork, line: CreditLine, action: str, before: dict[str, Any], actor: str,
           extra: dict[str, Any] | None = None) -> None:
    after = {**line_snapshot(line), **(extra or {})}
    audit.record(uow, line.tenant_id, actor=actor, action=action, object_type="credit_line", object_id=line.id,
                 before=before, after=after)


def _check_requested(requested_amount: int | None) -> int | None:
    if requested_amount is None:
        return None
    try:
        return check_amount(requested_amount, allow_zero=False, allow_negative=False)
    except InvalidRequest:
        raise InvalidRequest("requested_amount is a positive integer of minor units.", code="invalid_amount",
                             param="requested_amount") from None


def grant_line(uow: UnitOfWork, tenant_id: str, applicant_id: str, *, requested_amount: int | None = None,
               actor: str) -> CreditLine:
    """Calculate the applicant's line (explained) and open it with its sub-limits; 409 when one exists."""
    requested = _check_requested(requested_amount)
    applicant = credit.get_applicant(uow, tenant_id, applicant_id)
    if find_line(uow, tenant_id, applicant.id) is not None:
        raise Conflict("The applicant has a credit line: review or adjust it.", code="credit_line_exists",
                       param="applicant_id")
    calc = calculation_for(uow, tenant_id, applicant, requested_amount=requested)
    now = uow.clock.now()
    today = _business_date(uow, tenant_id)
    groups = _groups(uow, tenant_id, calc.policy)
    line = CreditLine(id=uow.ids.new("credit_line"), tenant_id=tenant_id, applicant_id=applicant.id,
                      currency=applicant.currency, status=LineStatus.ACTIVE.value, frozen_reason=None,
                      limit_amount=calc.limit, reserved_amount=0, used_amount=0, requested_amount=requested,
                      on_time_repayments=0, overdue_days=0, calculation=calc.to_json(), reviewed_on=today, version=1,
                      created_by=actor[:60], created_at=now, updated_at=now)
    uow.session.add(line)
    uow.session.flush()
    for group, amount in calc.sub_limits.items():
        uow.session.add(CreditSubLimit(line_id=line.id, limit_group=group, tenant_id=tenant_id,
                                       status=LineStatus.ACTIVE.value, limit_amount=amount, reserved_amount=0,
                                       used_amount=0, is_revolving=groups.get(group, True), updated_at=now))
    _change(uow, line, group=None, kind="granted", reason="calculation", note="", before_amount=None,
            after_amount=calc.limit, before_status=None, after_status=line.status,
            details={"factors": [f.to_json() for f in calc.factors], "sub_limits": calc.sub_limits},
            business_date=today, actor=actor)
    uow.session.flush()
    audit.record(uow, tenant_id, actor=actor, action="credit.line.granted", object_type="credit_line",
                 object_id=line.id, after={**line_snapshot(line), "sub_limits": calc.sub_limits})
    return line


def get_line(uow: UnitOfWork, tenant_id: str, line_id: str, *, lock: bool = False) -> CreditLine:
    query = select(CreditLine).where(CreditLine.tenant_id == tenant_id, CreditLine.id == line_id)
    row = uow.session.scalar(query.with_for_update() if lock else query)
    if row is None:
        raise NotFound(f"No such credit line: {str(line_id)[:40]}.", code="credit_line_not_found", param="line_id")
    return row


def find_line(uow: UnitOfWork, tenant_id: str, applicant_id: str, *, lock: bool = False) -> CreditLine | None:
    query = select(CreditLine).where(CreditLine.tenant_id == tenant_id, CreditLine.applicant_id == applicant_id)
    return uow.session.scalar(query.with_for_update() if lock else query)


def line_of(uow: UnitOfWork, tenant_id: str, applicant_id: str, *, lock: bool = False) -> CreditLine:
    line = find_line(uow, tenant_id, applicant_id, lock=lock)
    if line is None:
        raise NotFound("The applicant has no credit line.", code="credit_line_not_found", param="applicant_id")
    return line


def sub_limits(uow: UnitOfWork, line: CreditLine, *, lock: bool = False) -> dict[str, CreditSubLimit]:
    query = select(CreditSubLimit).where(CreditSubLimit.line_id == line.id).order_by(CreditSubLimit.limit_group)
    return {s.limit_group: s for s in uow.session.scalars(query.with_for_update() if lock else query)}


def _sub_limit(uow: UnitOfWork, line: CreditLine, group: str, *, lock: bool = False) -> CreditSubLimit | None:
    query = select(CreditSubLimit).where(CreditSubLimit.line_id == line.id, CreditSubLimit.limit_group == group)
    return uow.session.scalar(query.with_for_update() if lock else query)


def list_lines(uow: UnitOfWork, tenant_id: str, *, status: str | None = None, applicant_id: str | None = None,
               after: str | None = None, limit: int = 50) -> list[CreditLine]:
    query = select(CreditLine).where(CreditLine.tenant_id == tenant_id)
    if status:
        query = query.where(CreditLine.status == status)
    if applicant_id:
        query = query.where(CreditLine.applicant_id == applicant_id)
    if after:
        query = query.where(CreditLine.id > after)
    return list(uow.session.scalars(query.order_by(CreditLine.id).limit(limit + 1)))


def list_changes(uow: UnitOfWork, tenant_id: str, line_id: str, *, after: str | None = None,
                 limit: int = 50) -> list[CreditLimitChange]:
    get_line(uow, tenant_id, line_id)
    query = select(CreditLimitChange).where(CreditLimitChange.tenant_id == tenant_id,
                                            CreditLimitChange.line_id == line_id)
    if after:
        query = query.where(CreditLimitChange.id > after)
    return list(uow.session.scalars(query.order_by(CreditLimitChange.id).limit(limit + 1)))


# ---------------------------------------------------------------------------------------------- availability


def _free(limit: int, reserved: int, used: int) -> int:
    return max(0, limit - reserved - used)


@dataclass(frozen=True, slots=True)
class Availability:
    """How much a loan of a product can have now, and why not more."""

    line_id: str | None
    limit_group: str
    currency: str | None
    line_available: int
    group_available: int
    available: int
    #: Why nothing is available: no_credit_line, line_frozen, line_closed, currency_mismatch, no_sub_limit,
    #: sub_limit_frozen.
    reasons: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {"line_id": self.line_id, "limit_group": self.limit_group, "currency": self.currency,
                "line_available_amount": self.line_available, "group_available_amount": self.group_available,
                "available_amount": self.available, "reasons": list(self.reasons)}


def _availability(line: CreditLine | None, sub: CreditSubLimit | None, product: LoanProduct) -> Availability:
    group = product.limit_group
    if line is None:
        return Availability(None, group, None, 0, 0, 0, ["no_credit_line"])
    line_free = _free(line.limit_amount, line.reserved_amount, line.used_amount)
    group_free = 0 if sub is None else _free(sub.limit_amount, sub.reserved_amount, sub.used_amount)
    reasons = []
    if line.status == LineStatus.FROZEN:
        reasons.append("line_frozen")
    elif line.status == LineStatus.CLOSED:
        reasons.append("line_closed")
    if product.currency != line.currency:
        reasons.append("currency_mismatch")
    if sub is None:
        reasons.append("no_sub_limit")
    elif sub.status == LineStatus.FROZEN:
        reasons.append("sub_limit_frozen")
    available = 0 if reasons else min(line_free, group_free)
    return Availability(line.id, group, line.currency, line_free, group_free, available, reasons)


def available_for(uow: UnitOfWork, tenant_id: str, applicant_id: str, product: LoanProduct) -> Availability:
    """What a loan of ``product`` to the applicant can have now: the smaller of the line's and the product's
    sub-limit's available amounts; zero, with the reasons, when the line is missing, frozen or closed, in
    another currency, or has no such sub-limit."""
    line = find_line(uow, tenant_id, applicant_id)
    sub = _sub_limit(uow, line, product.limit_group) if line is not None else None
    return _availability(line, sub, product)


# ------------------------------------------------------------------------------------------ reserve, consume, restore


def _check_reference(reference: Any) -> str:
    if not isinstance(reference, str) or not 1 <= len(reference) <= MAX_REFERENCE:
        raise InvalidRequest(f"reference is 1-{MAX_REFERENCE} characters.", code="invalid_reference",
                             param="reference")
    return reference


def _positive(amount: Any, param: str = "amount") -> int:
    if isinstance(amount, bool) or not isinstance(amount, int) or not 1 <= amount <= MAX_AMOUNT:
        raise InvalidRequest(f"{param} is a positive integer of minor units.", code="invalid_amount", param=param)
    return amount


def _event(uow: UnitOfWork, line: CreditLine, kind: str, reference: str) -> CreditLineEvent | None:
    return uow.session.scalar(select(CreditLineEvent).where(
        CreditLineEvent.tenant_id == line.tenant_id, CreditLineEvent.line_id == line.id,
        CreditLineEvent.kind == kind, CreditLineEvent.reference == reference))


def _record(uow: UnitOfWork, line: CreditLine, kind: str, reference: str, *, group: str | None, amount: int = 0,
            days_past_due: int | None = None) -> CreditLineEvent:
    event = CreditLineEvent(tenant_id=line.tenant_id, line_id=line.id, kind=kind, reference=reference,
                            limit_group=group, amount=amount, days_past_due=days_past_due, created_at=uow.clock.now())
    uow.session.add(event)
    uow.session.flush()
    return event


def _replayed(event: CreditLineEvent, amount: int, group: str | None) -> CreditLineEvent:
    if event.amount != amount or event.limit_group != group:
        raise Conflict("This reference was already used with another amount or product.", code="reference_reused",
                       param="reference")
    return event


def reserve(uow: UnitOfWork, tenant_id: str, applicant_id: str, product: LoanProduct, amount: int,
            reference: str) -> CreditLineEvent:
    """Hold ``amount`` of the line and of the product's sub-limit for a pending loan (e.g. an application being
    decided). Refused (422 ``credit_limit_exceeded``) when more than is available; once per reference."""
    amount, reference = _positive(amount), _check_reference(reference)
    line = line_of(uow, tenant_id, applicant_id, lock=True)
    done = _event(uow, line, "reserve", reference)
    if done is not None:
        return _replayed(done, amount, product.limit_group)
    sub = _sub_limit(uow, line, product.limit_group, lock=True)
    availability = _availability(line, sub, product)
    if availability.reasons:
        raise CreditLimitExceeded(f"Nothing is available for this product: {', '.join(availability.reasons)}.",
                                  param="amount", details=availability.to_json())
    if amount > availability.available:
        raise CreditLimitExceeded(f"Only {availability.available} minor units are available for this product.",
                                  param="amount", details=availability.to_json())
    assert sub is not None
    line.reserved_amount += amount
    sub.reserved_amount += amount
    line.updated_at = sub.updated_at = uow.clock.now()
    return _record(uow, line, "reserve", reference, group=product.limit_group, amount=amount)


def _open_reservation(uow: UnitOfWork, line: CreditLine, reference: str) -> CreditLineEvent:
    reservation = _event(uow, line, "reserve", reference)
    if reservation is None:
        raise NotFound("No reservation with this reference.", code="reservation_not_found", param="reference")
    if _event(uow, line, "consume", reference) is not None or _event(uow, line, "release", reference) is not None:
        raise Conflict("This reservation was already consumed or released.", code="reservation_closed",
                       param="reference")
    return reservation


def consume(uow: UnitOfWork, tenant_id: str, applicant_id: str, reference: str, amount: int) -> CreditLineEvent:
    """Turn a reservation into use: the disbursed ``amount`` (at most what was reserved; the rest is freed)
    becomes used. Once per reference: a repeated call with the same amount returns the first event."""
    amount, reference = _positive(amount), _check_reference(reference)
    line = line_of(uow, tenant_id, applicant_id, lock=True)
    done = _event(uow, line, "consume", reference)
    if done is not None:
        return _replayed(done, amount, done.limit_group)
    reservation = _open_reservation(uow, line, reference)
    if amount > reservation.amount:
        raise CreditLimitExceeded("A loan uses at most what was reserved for it.", param="amount")
    sub = _sub_limit(uow, line, reservation.limit_group or "", lock=True)
    assert sub is not None
    line.reserved_amount -= reservation.amount
    sub.reserved_amount -= reservation.amount
    line.used_amount += amount
    sub.used_amount += amount
    line.updated_at = sub.updated_at = uow.clock.now()
    return _record(uow, line, "consume", reference, group=reservation.limit_group, amount=amount)


def release(uow: UnitOfWork, tenant_id: str, applicant_id: str, reference: str) -> CreditLineEvent:
    """Free a reservation that will not become a loan (declined, expired, cancelled)."""
    reference = _check_reference(reference)
    line = line_of(uow, tenant_id, applicant_id, lock=True)
    done = _event(uow, line, "release", reference)
    if done is not None:
        return done
    reservation = _open_reservation(uow, line, reference)
    sub = _sub_limit(uow, line, reservation.limit_group or "", lock=True)
    assert sub is not None
    line.reserved_amount -= reservation.amount
    sub.reserved_amount -= reservation.amount
    line.updated_at = sub.updated_at = uow.clock.now()
    return _record(uow, line, "release", reference, group=reservation.limit_group, amount=reservation.amount)


def restore(uow: UnitOfWork, tenant_id: str, applicant_id: str, product: LoanProduct, amount: int,
            reference: str) -> CreditLineEvent:
    """A repayment of ``amount`` principal on a loan of ``product`` (``reference``: the repayment): the line's
    used amount goes down by it, and the sub-limit's too when the group revolves. Never below zero."""
    amount, reference = _positive(amount), _check_reference(reference)
    line = line_of(uow, tenant_id, applicant_id, lock=True)
    done = _event(uow, line, "restore", reference)
    if done is not None:
        return _replayed(done, amount, product.limit_group)
    sub = _sub_limit(uow, line, product.limit_group, lock=True)
    line.used_amount -= min(amount, line.used_amount)
    if sub is not None and sub.is_revolving:
        sub.used_amount -= min(amount, sub.used_amount)
        sub.updated_at = uow.clock.now()
    line.updated_at = uow.clock.now()
    return _record(uow, line, "restore", reference, group=product.limit_group, amount=amount)


# ---------------------------------------------------------------------------------------------- adjustments


def record_repayment(uow: UnitOfWork, tenant_id: str, applicant_id: str, reference: str, *, on_time: bool,
                     actor: str = "servicing") -> list[CreditLimitChange]:
    """An installment paid (``reference``: the installment or repayment). On time counts toward a raise: every
    ``raise_after_on_time`` consecutive on-time repayments the line is re-calculated and raised when the result
    is higher (it never lowers here). Late starts the count again. Once per reference."""
    reference = _check_reference(reference)
    line = line_of(uow, tenant_id, applicant_id, lock=True)
    kind = "on_time" if on_time else "late"
    if _event(uow, line, kind, reference) is not None:
        return []
    _record(uow, line, kind, reference, group=None)
    if not on_time:
        line.on_time_repayments = 0
        line.updated_at = uow.clock.now()
        return []
    line.on_time_repayments += 1
    line.updated_at = uow.clock.now()
    policy = get_policy(uow, tenant_id)
    if line.on_time_repayments % policy.raise_after_on_time or line.status != LineStatus.ACTIVE or line.overdue_days:
        return []
    applicant = credit.get_applicant(uow, tenant_id, applicant_id)
    calc = calculation_for(uow, tenant_id, applicant, line=line)
    if calc.limit <= line.limit_amount:
        return []
    subs = sub_limits(uow, line, lock=True)
    before = line_snapshot(line)
    wanted = {group: max(amount, subs[group].limit_amount) for group, amount in calc.sub_limits.items()
              if group in subs}
    changes = _set_limit(uow, line, subs, limit=calc.limit, sub_limits=wanted, reason="on_time_repayments",
                         note=f"{line.on_time_repayments} consecutive repayments on time",
                         details={"factors": [f.to_json() for f in calc.factors], "event": reference},
                         business_date=_business_date(uow, tenant_id), actor=actor)
    line.calculation = calc.to_json()
    uow.session.flush()
    _audit(uow, line, "credit.line.raised", before, actor, {"reason": "on_time_repayments"})
    return changes


def record_overdue(uow: UnitOfWork, tenant_id: str, applicant_id: str, reference: str, *, days_past_due: int,
                   actor: str = "servicing") -> list[CreditLimitChange]:
    """Servicing reports the applicant's most overdue installment (``days_past_due``; 0 when cured). Crossing
    ``lower_after_days_past_due`` lowers the line by ``lower_rate``; reaching ``freeze_after_days_past_due``
    freezes it. Either resets the on-time count. Once per reference."""
    reference = _check_reference(reference)
    if isinstance(days_past_due, bool) or not isinstance(days_past_due, int) or not 0 <= days_past_due <= 36_500:
        raise InvalidRequest("days_past_due is a whole number of days from 0.", code="invalid_days_past_due",
                             param="days_past_due")
    line = line_of(uow, tenant_id, applicant_id, lock=True)
    if _event(uow, line, "overdue", reference) is not None:
        return []
    _record(uow, line, "overdue", reference, group=None, days_past_due=days_past_due)
    policy = get_policy(uow, tenant_id)
    previous = line.overdue_days
    line.overdue_days = days_past_due
    line.updated_at = uow.clock.now()
    if days_past_due == 0:
        return []
    line.on_time_repayments = 0
    today = _business_date(uow, tenant_id)
    details = {"event": reference, "days_past_due": days_past_due}
    changes: list[CreditLimitChange] = []
    before = line_snapshot(line)
    if previous < policy.lower_after_days_past_due <= days_past_due:
        subs = sub_limits(uow, line, lock=True)
        limit = lowered(policy, line.limit_amount, line.currency)
        changes += _set_limit(uow, line, subs, limit=limit,
                              sub_limits={g: min(limit, lowered(policy, s.limit_amount, line.currency))
                                          for g, s in subs.items()},
                              reason="overdue", note=f"{days_past_due} days past due", details=details,
                              business_date=today, actor=actor)
    if days_past_due >= policy.freeze_after_days_past_due and line.status == LineStatus.ACTIVE:
        changes.append(_freeze(uow, line, reason="overdue", note=f"{days_past_due} days past due", details=details,
                               business_date=today, actor=actor))
    if changes:
        uow.session.flush()
        _audit(uow, line, "credit.line.overdue", before, actor, {"days_past_due": days_past_due})
    return changes


def _freeze(uow: UnitOfWork, line: CreditLine, *, reason: str, note: str, details: dict[str, Any],
            business_date: date, actor: str) -> CreditLimitChange:
    change = _change(uow, line, group=None, kind="frozen", reason=reason, note=note, before_amount=line.limit_amount,
                     after_amount=line.limit_amount, before_status=line.status, after_status=LineStatus.FROZEN.value,
                     details=details, business_date=business_date, actor=actor)
    line.status = LineStatus.FROZEN.value
    line.frozen_reason = "overdue" if reason == "overdue" else "manual"
    line.version += 1
    line.updated_at = uow.clock.now()
    return change


def _unfreeze(uow: UnitOfWork, line: CreditLine, *, reason: str, note: str, business_date: date,
              actor: str) -> CreditLimitChange:
    change = _change(uow, line, group=None, kind="unfrozen", reason=reason, note=note,
                     before_amount=line.limit_amount, after_amount=line.limit_amount, before_status=line.status,
                     after_status=LineStatus.ACTIVE.value, details={}, business_date=business_date, actor=actor)
    line.status = LineStatus.ACTIVE.value
    line.frozen_reason = None
    line.version += 1
    line.updated_at = uow.clock.now()
    return change


def review_line(uow: UnitOfWork, tenant_id: str, line_id: str, *, business_date: date | None = None,
                actor: str, reason: str = "periodic_review") -> list[CreditLimitChange]:
    """Re-calculate a line from today's data (the latest score and bureau report, trading history, the line's
    repayment record) and set its limit and sub-limits to the result; a line frozen for overdue that is cured
    is unfrozen, a line frozen by hand stays frozen. Each change is logged with the factors."""
    line = get_line(uow, tenant_id, line_id, lock=True)
    if line.status == LineStatus.CLOSED:
        raise Conflict("The line is closed.", code="credit_line_closed", param="line_id")
    today = business_date or _business_date(uow, tenant_id)
    applicant = credit.get_applicant(uow, tenant_id, line.applicant_id)
    calc = calculation_for(uow, tenant_id, applicant, line=line)
    subs = sub_limits(uow, line, lock=True)
    now = uow.clock.now()
    for group, revolving in _groups(uow, tenant_id, calc.policy).items():
        if group not in subs:
            subs[group] = CreditSubLimit(line_id=line.id, limit_group=group, tenant_id=tenant_id,
                                         status=LineStatus.ACTIVE.value, limit_amount=0, reserved_amount=0,
                                         used_amount=0, is_revolving=revolving, updated_at=now)
            uow.session.add(subs[group])
    before = line_snapshot(line)
    details = {"factors": [f.to_json() for f in calc.factors]}
    changes = _set_limit(uow, line, subs, limit=calc.limit, sub_limits=calc.sub_limits, reason=reason, note="",
                         details=details, business_date=today, actor=actor)
    if line.status == LineStatus.FROZEN and line.frozen_reason == "overdue" and line.overdue_days == 0:
        changes.append(_unfreeze(uow, line, reason="cured", note="No repayment is overdue any more",
                                 business_date=today, actor=actor))
    line.calculation = calc.to_json()
    line.reviewed_on = today
    uow.session.flush()
    if changes:
        _audit(uow, line, "credit.line.reviewed", before, actor, {"reason": reason})
    return changes


def lines_due_for_review(uow: UnitOfWork, tenant_id: str, business_date: date, *, limit: int = REVIEW_BATCH,
                         after: str | None = None) -> list[str]:
    """Ids of open lines last reviewed ``review_interval_days`` or more before ``business_date``, in id order."""
    policy = get_policy(uow, tenant_id)
    due_before = business_date - timedelta(days=policy.review_interval_days)
    query = select(CreditLine.id).where(CreditLine.tenant_id == tenant_id, CreditLine.status != LineStatus.CLOSED.value,
                                        CreditLine.reviewed_on <= due_before)
    if after:
        query = query.where(CreditLine.id > after)
    return list(uow.session.scalars(query.order_by(CreditLine.id).limit(limit)))


def review_due(uow: UnitOfWork, tenant_id: str, business_date: date, *, limit: int = REVIEW_BATCH,
               actor: str = "credit.review_limits") -> int:
    """Review up to ``limit`` lines due on ``business_date``; how many (0: none left). A reviewed line is due
    again ``review_interval_days`` later, so running a date twice reviews nobody twice."""
    ids = lines_due_for_review(uow, tenant_id, business_date, limit=limit)
    for line_id in ids:
        review_line(uow, tenant_id, line_id, business_date=business_date, actor=actor)
    return len(ids)


def _note(note: Any) -> str:
    return check_text(note if note is not None else "", param="note", max_length=500)


def adjust(uow: UnitOfWork, tenant_id: str, line_id: str, *, limit_amount: int, limit_group: str | None = None,
           note: str, actor: str) -> list[CreditLimitChange]:
    """Set the line's limit (or one sub-limit's) by hand, with a note; sub-limits above a lowered line come down
    to it; a sub-limit never exceeds the line. The next periodic review re-calculates."""
    if isinstance(limit_amount, bool) or not isinstance(limit_amount, int) or not 0 <= limit_amount <= MAX_AMOUNT:
        raise InvalidRequest("limit_amount is a non-negative integer of minor units.", code="invalid_amount",
                             param="limit_amount")
    text = _note(note)
    if not text.strip():
        raise InvalidRequest("Say why: a note is required.", code="note_required", param="note")
    line = get_line(uow, tenant_id, line_id, lock=True)
    if line.status == LineStatus.CLOSED:
        raise Conflict("The line is closed.", code="credit_line_closed", param="line_id")
    subs = sub_limits(uow, line, lock=True)
    before = line_snapshot(line)
    today = _business_date(uow, tenant_id)
    if limit_group is None:
        wanted = {g: min(s.limit_amount, limit_amount) for g, s in subs.items()}
        changes = _set_limit(uow, line, subs, limit=limit_amount, sub_limits=wanted, reason="manual", note=text,
                             details={}, business_date=today, actor=actor)
    else:
        if limit_group not in subs:
            raise NotFound(f"The line has no sub-limit {limit_group[:40]!r}.", code="sub_limit_not_found",
                           param="limit_group")
        if limit_amount > line.limit_amount:
            raise InvalidRequest("A sub-limit never exceeds the line's limit.", code="sub_limit_exceeds_line",
                                 param="limit_amount")
        changes = _set_limit(uow, line, subs, limit=line.limit_amount, sub_limits={limit_group: limit_amount},
                             reason="manual", note=text, details={}, business_date=today, actor=actor)
    uow.session.flush()
    if changes:
        _audit(uow, line, "credit.line.adjusted", before, actor, {"limit_group": limit_group, "note": text})
    return changes


def freeze(uow: UnitOfWork, tenant_id: str, line_id: str, *, note: str, actor: str) -> CreditLimitChange:
    """Freeze a line by hand: nothing can be reserved until it is unfrozen (the review does not unfreeze it)."""
    text = _note(note)
    line = get_line(uow, tenant_id, line_id, lock=True)
    if line.status != LineStatus.ACTIVE:
        raise Conflict(f"The line is {line.status}.", code="credit_line_not_active", param="line_id")
    before = line_snapshot(line)
    change = _freeze(uow, line, reason="manual", note=text, details={},
                     business_date=_business_date(uow, tenant_id), actor=actor)
    uow.session.flush()
    _audit(uow, line, "credit.line.frozen", before, actor, {"note": text})
    return change


def unfreeze(uow: UnitOfWork, tenant_id: str, line_id: str, *, note: str, actor: str) -> CreditLimitChange:
    text = _note(note)
    line = get_line(uow, tenant_id, line_id, lock=True)
    if line.status != LineStatus.FROZEN:
        raise Conflict(f"The line is {line.status}, not frozen.", code="credit_line_not_frozen", param="line_id")
    before = line_snapshot(line)
    change = _unfreeze(uow, line, reason="manual", note=text, business_date=_business_date(uow, tenant_id),
                       actor=actor)
    uow.session.flush()
    _audit(uow, line, "credit.line.unfrozen", before, actor, {"note": text})
    return change


def events(uow: UnitOfWork, tenant_id: str, line_id: str, *, kinds: Sequence[str] | None = None) -> list[
        CreditLineEvent]:
    query = select(CreditLineEvent).where(CreditLineEvent.tenant_id == tenant_id, CreditLineEvent.line_id == line_id)
    if kinds:
        query = query.where(or_(*(CreditLineEvent.kind == k for k in kinds)))
    return list(uow.session.scalars(query.order_by(CreditLineEvent.id)))
