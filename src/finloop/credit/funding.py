"""Funding sources of loans, the choice of the cheapest, and the daily accrual of their cost.

Invariants owned here:
- a source is the tenant's own reserve account or a partner bank, in one currency, with an annual cost of funds
  (``Decimal``), a quota and the amount lent out of it (``used_amount``, never above the quota, checked by the
  database too); configuring one is audited;
- the choice (``choose``) takes the active sources of the loan's currency whose remaining quota covers the
  principal, the lowest annual rate first; ties go to the larger remaining quota, then to the older source (its
  code, then its id). The explanation (every candidate with its rate, remaining quota and why it lost) is kept on
  the loan;
- the cost of a partner bank's funds accrues daily, once per business date: the exact cumulative cost is
  ``accrual_base / 365`` where ``accrual_base`` sums the outstanding funded principal times the rate over the
  days accrued; the day's amount is that cumulative cost rounded by ``ACCRUAL_ROUNDING`` minus what was posted
  before, so the daily amounts of any period sum to the period's rounded total. The own reserve has no lender to
  pay: its rate only ranks it, nothing accrues.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from decimal import Decimal, InvalidOperation
from fractions import Fraction
from typing import Any

from sqlalchemy import select

from finloop.audit import service as audit
from finloop.core.errors import Conflict, InvalidRequest, NotFound
from finloop.core.money import Rounding, currency, round_minor
from finloop.credit.domain import FundingKind
from finloop.credit.models import FundingSource
from finloop.db.uow import UnitOfWork
from finloop.ledger import service as ledger
from finloop.ledger.domain import AccountType, TransferSpec
from finloop.payments.postings import AccountSpec, ensure_account

OBJECT_TYPE = "credit_funding_source"
#: Banker's rounding: the rule for interest accrual (``finloop.core.money``).
ACCRUAL_ROUNDING = Rounding.HALF_EVEN
DAYS_PER_YEAR = 365
MAX_RATE = Decimal(1)
COST_OF_FUNDS_CODE = "expenses:funding_cost"
RESERVE_CODE = "assets:bank:reserve"
#: Where funded cash sits between arriving from its source and being paid out.
FUNDING_CASH_CODE = "assets:bank:credit_funding"


def funding_liability_code(source_code: str) -> str:
    return f"liabilities:funding:{source_code}"


def funding_interest_code(source_code: str) -> str:
    return f"liabilities:funding_interest:{source_code}"


def _text(value: Any, param: str, high: int) -> str:
    if not isinstance(value, str) or not 1 <= len(value) <= high or not value.isprintable():
        raise InvalidRequest(f"{param} is 1-{high} printable characters.", code=f"invalid_{param}", param=param)
    return value


def _code(value: Any) -> str:
    code = _text(value, "code", 40)
    if not all(c.isalnum() or c in "_-" for c in code) or not code.isascii():
        raise InvalidRequest("code is letters, digits, '_' and '-'.", code="invalid_code", param="code")
    return code.lower()


def _rate(value: Any) -> Decimal:
    try:
        rate = Decimal(value) if isinstance(value, str | int) and not isinstance(value, bool) else None
    except InvalidOperation:
        rate = None
    if rate is None or not rate.is_finite() or not Decimal(0) <= rate < MAX_RATE:
        raise InvalidRequest("annual_rate is a decimal string from 0 up to (not including) 1, e.g. \"0.045\".",
                             code="invalid_rate", param="annual_rate")
    return rate.normalize() if rate else Decimal(0)


def _amount(value: Any, param: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 10**15:
        raise InvalidRequest(f"{param} is a non-negative integer of minor units.", code="invalid_amount",
                             param=param)
    return value


def _kind(value: Any) -> FundingKind:
    try:
        return FundingKind(value)
    except ValueError:
        raise InvalidRequest(f"kind is one of {', '.join(FundingKind)}.", code="invalid_funding_kind",
                             param="kind") from None


def snapshot(source: FundingSource) -> dict[str, Any]:
    return {"code": source.code, "kind": source.kind, "currency": source.currency,
            "annual_rate": str(source.annual_rate), "quota_amount": source.quota_amount,
            "used_amount": source.used_amount, "active": source.active}


def create_source(uow: UnitOfWork, tenant_id: str, data: Mapping[str, Any], *, actor: str) -> FundingSource:
    """Add a funding source; every field is checked before anything is written."""
    known = {"code", "name", "kind", "currency", "annual_rate", "quota_amount", "active"}
    for name in data:
        if name not in known:
            raise InvalidRequest(f"Unknown field: {str(name)[:40]}.", code="unknown_field", param=str(name)[:40])
    code = _code(data.get("code"))
    name = _text(data.get("name", code), "name", 100)
    kind = _kind(data.get("kind"))
    currency_code = data.get("currency")
    try:
        currency(currency_code if isinstance(currency_code, str) else "")
    except InvalidRequest:
        raise InvalidRequest("currency is an ISO 4217 code.", code="invalid_currency", param="currency") from None
    rate = _rate(data.get("annual_rate"))
    quota = _amount(data.get("quota_amount"), "quota_amount")
    active = data.get("active", True)
    if not isinstance(active, bool):
        raise InvalidRequest("active is true or false.", code="invalid_active", param="active")
    if uow.session.scalar(select(FundingSource.id).where(FundingSource.tenant_id == tenant_id,
                                                         FundingSource.code == code)) is not None:
        raise Conflict("A funding source with this code exists.", code="funding_source_exists", param="code")
    now = uow.clock.now()
    row = FundingSource(id=uow.ids.new("funding_source"), tenant_id=tenant_id, code=code, name=name,
                        kind=kind.value, currency=str(currency_code), annual_rate=rate, quota_amount=quota,
                        used_amount=0, active=active, accrual_base=Decimal(0), accrued_amount=0,
                        accrued_through=None, created_by=actor[:60], created_at=now, updated_at=now)
    uow.session.add(row)
    uow.session.flush()
    audit.record(uow, tenant_id, actor=actor, action="credit.funding_source.created", object_type=OBJECT_TYPE,
                 object_id=row.id, after=snapshot(row))
    return row


def update_source(uow: UnitOfWork, tenant_id: str, source_id: str, changes: Mapping[str, Any], *,
                  actor: str) -> FundingSource:
    """Change a source's rate, quota (never below what is lent out), name or active flag; audited."""
    for name in changes:
        if name not in {"name", "annual_rate", "quota_amount", "active"}:
            raise InvalidRequest(f"Unknown field: {str(name)[:40]}.", code="unknown_field", param=str(name)[:40])
    row = get_source(uow, tenant_id, source_id, lock=True)
    before = snapshot(row)
    name = _text(changes["name"], "name", 100) if "name" in changes else row.name
    rate = _rate(changes["annual_rate"]) if "annual_rate" in changes else row.annual_rate
    quota = _amount(changes["quota_amount"], "quota_amount") if "quota_amount" in changes else row.quota_amount
    active = changes.get("active", row.active)
    if not isinstance(active, bool):
        raise InvalidRequest("active is true or false.", code="invalid_active", param="active")
    if quota < row.used_amount:
        raise InvalidRequest("quota_amount cannot go below the amount lent out of the source.",
                             code="quota_below_used", param="quota_amount")
    row.name, row.annual_rate, row.quota_amount, row.active = name, rate, quota, active
    row.updated_at = uow.clock.now()
    uow.session.flush()
    audit.record(uow, tenant_id, actor=actor, action="credit.funding_source.updated", object_type=OBJECT_TYPE,
                 object_id=row.id, before=before, after=snapshot(row))
    return row


def get_source(uow: UnitOfWork, tenant_id: str, source_id: str, *, lock: bool = False) -> FundingSource:
    row = uow.session.get(FundingSource, source_id, with_for_update=lock)
    if row is None or row.tenant_id != tenant_id:
        raise NotFound("No such funding source.", code="funding_source_not_found", param="funding_source_id")
    return row


def list_sources(uow: UnitOfWork, tenant_id: str, *, after: str | None = None, limit: int = 50,
                 currency_code: str | None = None) -> list[FundingSource]:
    query = select(FundingSource).where(FundingSource.tenant_id == tenant_id)
    if currency_code:
        query = query.where(FundingSource.currency == currency_code)
    if after:
        query = query.where(FundingSource.id > after)
    return list(uow.session.scalars(query.order_by(FundingSource.id).limit(limit)))


# ---------------------------------------------------------------------------------------------- choice


@dataclass(frozen=True, slots=True)
class Choice:
    source: FundingSource
    explanation: dict[str, Any]


def _rank(source: FundingSource) -> tuple[Decimal, int, str, str]:
    return (source.annual_rate, -(source.quota_amount - source.used_amount), source.code, source.id)


def choose(uow: UnitOfWork, tenant_id: str, currency_code: str, amount: int) -> Choice:
    """The cheapest active source of ``currency_code`` with ``amount`` of quota left, locked for the caller to
    draw on; 409 ``no_funding_available`` when none has."""
    rows = list(uow.session.scalars(select(FundingSource).where(
        FundingSource.tenant_id == tenant_id, FundingSource.currency == currency_code)
        .order_by(FundingSource.id).with_for_update()))
    candidates = []
    eligible = []
    for row in sorted(rows, key=_rank):
        remaining = row.quota_amount - row.used_amount
        verdict = "inactive" if not row.active else "quota_insufficient" if remaining < amount else "eligible"
        candidates.append({"funding_source_id": row.id, "code": row.code, "kind": row.kind,
                           "annual_rate": str(row.annual_rate), "remaining_quota": remaining, "verdict": verdict})
        if verdict == "eligible":
            eligible.append(row)
    if not eligible:
        raise Conflict(f"No active funding source in {currency_code} has enough quota left.",
                       code="no_funding_available", param="currency")
    chosen = eligible[0]
    for candidate in candidates:
        if candidate["funding_source_id"] == chosen.id:
            candidate["verdict"] = "chosen"
        elif candidate["verdict"] == "eligible":
            candidate["verdict"] = "costlier_or_tied"
    rule = "lowest annual_rate; ties: larger remaining quota, then code, then id"
    return Choice(chosen, {"rule": rule, "amount": amount, "chosen": chosen.id, "candidates": candidates})


def draw(source: FundingSource, amount: int) -> None:
    if source.quota_amount - source.used_amount < amount:
        raise Conflict("The funding source's quota is used up.", code="no_funding_available", param="currency")
    source.used_amount += amount


def give_back(source: FundingSource, amount: int) -> None:
    source.used_amount = max(0, source.used_amount - amount)


# ---------------------------------------------------------------------------------------------- accounts


def source_account(uow: UnitOfWork, source: FundingSource) -> str:
    """What the funding entry credits: the partner bank's funding liability, or the own reserve account."""
    if source.kind == FundingKind.PARTNER_BANK.value:
        spec = AccountSpec(funding_liability_code(source.code), AccountType.LIABILITY)
    else:
        spec = AccountSpec(RESERVE_CODE, AccountType.ASSET)
    return ensure_account(uow, source.tenant_id, spec, source.currency)


def funding_cash_account(uow: UnitOfWork, tenant_id: str, currency_code: str) -> str:
    return ensure_account(uow, tenant_id, AccountSpec(FUNDING_CASH_CODE, AccountType.ASSET), currency_code)


# ---------------------------------------------------------------------------------------------- accrual


def accrual_step(base: Decimal, posted: int, outstanding: int, rate: Decimal) -> tuple[Decimal, int]:
    """One day's accrual: the new exact base and the amount to post today (cumulative rounded minus posted)."""
    new_base = base + outstanding * rate
    cumulative = round_minor(Fraction(new_base) / DAYS_PER_YEAR, ACCRUAL_ROUNDING)
    return new_base, cumulative - posted


def accrue_source(uow: UnitOfWork, source: FundingSource, business_date: date, outstanding: int) -> int:
    """Accrue one business date's cost of a partner bank's funds; a date already accrued posts nothing.
    Returns the amount posted."""
    if source.kind != FundingKind.PARTNER_BANK.value:
        return 0
    if source.accrued_through is not None and source.accrued_through >= business_date:
        return 0
    base, amount = accrual_step(source.accrual_base, source.accrued_amount, outstanding, source.annual_rate)
    source.accrual_base, source.accrued_through = base, business_date
    if amount > 0:
        expense = ensure_account(uow, source.tenant_id, AccountSpec(COST_OF_FUNDS_CODE, AccountType.EXPENSE),
                                 source.currency)
        payable = ensure_account(uow, source.tenant_id, AccountSpec(funding_interest_code(source.code),
                                                                    AccountType.LIABILITY), source.currency)
        ledger.post_transfer(uow, source.tenant_id, TransferSpec.simple(
            f"credit:funding_cost:{source.id}:{business_date.isoformat()}", expense, payable, amount,
            source.currency, description=f"Cost of funds {source.code} {business_date.isoformat()}",
            metadata={"funding_source_id": source.id, "business_date": business_date.isoformat(),
                      "outstanding": outstanding}))
        source.accrued_amount += amount
    uow.session.flush()
    return amount
