"""Portfolio queries: the book's summary, vintage curves, roll-rate matrices and profit and loss, read from the
loan sub-ledger (``credit_loan_accounts``), its month-end snapshots, applications, credit lines, funding sources
and the general ledger; and the tenant's operating cost policy. Read-only apart from ``set_operating_cost_policy``.

Invariants owned here:
- every figure is per currency; a product filter (``product_code``) covers every version of the product;
- cost of funds is allocated per funding source: the cost the source has accrued (``accrued_amount``, what was
  posted to ``expenses:funding_cost``) is split over the loans it funded in proportion to their principal-days
  (``domain.principal_days``), so the loans' shares and what no loan could take (``unallocated``) sum to the
  ledger's cost of funds;
- the portfolio P&L over the whole book is reconciled line by line against the general ledger's balances: interest,
  fees, penalty and recoveries against ``income:credit:<group>:<line>``, provisions plus credit losses against
  ``expenses:credit:<group>:provisions`` and ``:losses`` together (how the allowance is used on a write-off moves
  cost between those two, not their sum), and cost of funds against ``expenses:funding_cost``;
- changing the operating cost policy is audited.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, TypeVar, cast

from sqlalchemy import Select, func, select

from finloop.audit import service as audit
from finloop.core.errors import InvalidRequest, NotFound
from finloop.core.money import currency as check_currency
from finloop.credit.funding import COST_OF_FUNDS_CODE
from finloop.credit.limits import LineStatus
from finloop.credit.models import CreditLine, CreditSubLimit, FundingSource, Loan, LoanApplication, LoanProduct
from finloop.credit.portfolio import domain
from finloop.credit.portfolio.domain import (
    DEFAULT_OPERATING_COST_POLICY,
    CohortLoan,
    OperatingCostPolicy,
    PnlLines,
    Snapshot,
    Transition,
    VintageBasis,
)
from finloop.credit.portfolio.models import OperatingCostPolicy as PolicyRow
from finloop.credit.servicing.domain import BUCKETS, OPEN_STATES, AccountState
from finloop.credit.servicing.models import LoanAccount, LoanMonthEnd
from finloop.db.uow import UnitOfWork
from finloop.ledger import service as ledger
from finloop.ledger.domain import AccountType

POLICY_OBJECT_TYPE = "credit_operating_cost_policy"
MAX_THRESHOLD_DPD = 3650
MAX_ROLL_MONTHS = 120
COST_OF_FUNDS_RULE = ("each funding source's accrued cost split over the loans it funded in proportion to their "
                      "principal-days (the balance at disbursement and at each month end held until the next), "
                      "largest remainder")
Q = TypeVar("Q")
_ABSORBING = (AccountState.PAID_OFF.value, AccountState.WRITTEN_OFF.value)


def _day_end(day: date) -> datetime:
    return datetime.combine(day + timedelta(days=1), time(), tzinfo=UTC)


def _product_ids(uow: UnitOfWork, tenant_id: str, product_code: str | None) -> list[str] | None:
    if product_code is None:
        return None
    ids = list(uow.session.scalars(select(LoanProduct.id).where(LoanProduct.tenant_id == tenant_id,
                                                                LoanProduct.code == product_code)))
    if not ids:
        raise NotFound("No such loan product.", code="product_not_found", param="product_code")
    return ids


def _limit_group(uow: UnitOfWork, tenant_id: str, product_code: str) -> str:
    group = uow.session.scalar(select(LoanProduct.limit_group).where(
        LoanProduct.tenant_id == tenant_id, LoanProduct.code == product_code).order_by(LoanProduct.version.desc())
        .limit(1))
    assert group is not None  # _product_ids has found the product
    return group


def _currency(code: str | None) -> str | None:
    if code is None:
        return None
    try:
        check_currency(code)
    except InvalidRequest:
        raise InvalidRequest("currency is an ISO 4217 code.", code="invalid_currency", param="currency") from None
    return code


def _filtered(query: Q, column: Any, values: Sequence[str] | None) -> Q:
    if values is None:
        return query
    narrowed: Select[Any] = cast(Any, query).where(column.in_(values))
    return cast(Q, narrowed)


# ---------------------------------------------------------------------------------------------- summary


def portfolio_summary(uow: UnitOfWork, tenant_id: str, *, as_of: date, product_code: str | None = None,
                      since: date | None = None) -> dict[str, Any]:
    """The book on ``as_of`` (from that month's snapshots when ``as_of`` is a month end that has them, from the
    sub-ledger as it stands otherwise) and the period figures of [since, as_of] (all time without ``since``).
    Definitions: docs/credit-portfolio.md."""
    domain.check_day(as_of, "as_of")
    if since is not None:
        domain.check_day(since, "since")
    if since is not None and since > as_of:
        raise InvalidRequest("since is on or before as_of.", code="invalid_range", param="since")
    products = _product_ids(uow, tenant_id, product_code)
    month = domain.month_of(as_of)
    source = "live"
    book: list[tuple[str, str, int]] = []
    if as_of == domain.month_end(month):
        query = _filtered(select(LoanMonthEnd.currency, LoanMonthEnd.bucket, LoanMonthEnd.principal_outstanding)
                          .where(LoanMonthEnd.tenant_id == tenant_id, LoanMonthEnd.month == month,
                                 LoanMonthEnd.state.in_(OPEN_STATES)), LoanMonthEnd.product_id, products)
        snapshot_rows = uow.session.execute(query).all()
        any_snapshot = uow.session.scalar(select(func.count()).select_from(LoanMonthEnd).where(
            LoanMonthEnd.tenant_id == tenant_id, LoanMonthEnd.month == month))
        if any_snapshot:
            source = "month_end"
            book = [(r[0], r[1], int(r[2])) for r in snapshot_rows]
    if source == "live":
        query = _filtered(select(LoanAccount.currency, LoanAccount.bucket, LoanAccount.principal_outstanding).where(
            LoanAccount.tenant_id == tenant_id, LoanAccount.disbursed_on <= as_of,
            LoanAccount.state.in_(OPEN_STATES)), LoanAccount.product_id, products)
        book = [(r[0], r[1], int(r[2])) for r in uow.session.execute(query)]
    lent_query = _filtered(select(
        LoanAccount.currency, func.count(), func.coalesce(func.sum(LoanAccount.principal_amount), 0))
        .where(LoanAccount.tenant_id == tenant_id, LoanAccount.disbursed_on <= as_of)
        .group_by(LoanAccount.currency), LoanAccount.product_id, products)
    lent = {r[0]: (int(r[1]), int(r[2])) for r in uow.session.execute(lent_query)}
    lost_query = _filtered(select(LoanAccount.currency, func.coalesce(func.sum(LoanAccount.written_off_amount), 0))
                           .where(LoanAccount.tenant_id == tenant_id, LoanAccount.disbursed_on <= as_of,
                                  LoanAccount.state == AccountState.WRITTEN_OFF.value,
                                  (LoanAccount.closed_on.is_(None)) | (LoanAccount.closed_on <= as_of))
                           .group_by(LoanAccount.currency), LoanAccount.product_id, products)
    lost = {r[0]: int(r[1]) for r in uow.session.execute(lost_query)}
    lines = _utilisation(uow, tenant_id, product_code)
    currencies = []
    for code in sorted({c for c, _, _ in book} | set(lent) | set(lines)):
        in_book = [(bucket, amount) for c, bucket, amount in book if c == code]
        outstanding = sum(amount for _, amount in in_book)
        per_bucket = {bucket.value: [amount for b, amount in in_book if b == bucket.value] for bucket in BUCKETS}
        buckets = [{"bucket": name, "loans": len(amounts), "principal_outstanding": sum(amounts),
                    "rate": domain.ratio(sum(amounts), outstanding)} for name, amounts in per_bucket.items()]
        overdue = sum(sum(amounts) for name, amounts in per_bucket.items() if name != BUCKETS[0].value)
        in_m4 = sum(per_bucket[BUCKETS[-1].value])
        loans_lent, principal_lent = lent.get(code, (0, 0))
        used, limit = lines.get(code, (0, 0))
        currencies.append({
            "currency": code, "open_loans": len(in_book), "principal_outstanding": outstanding, "buckets": buckets,
            "overdue_principal": overdue, "overdue_rate": domain.ratio(overdue, outstanding),
            "m4_rate": domain.ratio(in_m4, outstanding),
            "disbursed_loans": loans_lent, "disbursed_principal": principal_lent,
            "written_off_amount": lost.get(code, 0), "bad_debt_rate": domain.ratio(lost.get(code, 0), principal_lent),
            "limit_used_amount": used, "limit_amount": limit, "limit_utilisation_rate": domain.ratio(used, limit)})
    return {"as_of": as_of, "since": since, "product_code": product_code, "source": source,
            "currencies": currencies, "applications": _approvals(uow, tenant_id, since, as_of, product_code),
            "reborrow": _reborrow(uow, tenant_id, as_of, products)}


def _utilisation(uow: UnitOfWork, tenant_id: str, product_code: str | None) -> dict[str, tuple[int, int]]:
    """Used and limit over the active lines per currency (of the product's limit group with a product)."""
    active = CreditLine.status == LineStatus.ACTIVE.value
    if product_code is None:
        query = (select(CreditLine.currency, func.coalesce(func.sum(CreditLine.used_amount), 0),
                        func.coalesce(func.sum(CreditLine.limit_amount), 0))
                 .where(CreditLine.tenant_id == tenant_id, active).group_by(CreditLine.currency))
    else:
        query = (select(CreditLine.currency, func.coalesce(func.sum(CreditSubLimit.used_amount), 0),
                        func.coalesce(func.sum(CreditSubLimit.limit_amount), 0))
                 .join(CreditLine, CreditLine.id == CreditSubLimit.line_id)
                 .where(CreditSubLimit.tenant_id == tenant_id, active,
                        CreditSubLimit.limit_group == _limit_group(uow, tenant_id, product_code))
                 .group_by(CreditLine.currency))
    return {r[0]: (int(r[1]), int(r[2])) for r in uow.session.execute(query)}


def _approvals(uow: UnitOfWork, tenant_id: str, since: date | None, as_of: date,
               product_code: str | None) -> dict[str, Any]:
    query = (select(LoanApplication.final_outcome, func.count())
             .where(LoanApplication.tenant_id == tenant_id, LoanApplication.final_outcome.is_not(None),
                    LoanApplication.decided_at < _day_end(as_of))
             .group_by(LoanApplication.final_outcome))
    if since is not None:
        query = query.where(LoanApplication.decided_at >= datetime.combine(since, time(), tzinfo=UTC))
    if product_code is not None:
        query = query.where(LoanApplication.product_code == product_code)
    counts = {outcome: int(n) for outcome, n in uow.session.execute(query)}
    decided = sum(counts.values())
    approved = counts.get("approve", 0)
    return {"decided": decided, "approved": approved, "declined": decided - approved,
            "approval_rate": domain.ratio(approved, decided)}


def _reborrow(uow: UnitOfWork, tenant_id: str, as_of: date, products: list[str] | None) -> dict[str, Any]:
    query = _filtered(select(LoanAccount.applicant_id, LoanAccount.loan_id, LoanAccount.disbursed_on,
                             LoanAccount.state, LoanAccount.closed_on)
                      .where(LoanAccount.tenant_id == tenant_id, LoanAccount.disbursed_on <= as_of),
                      LoanAccount.product_id, products)
    by_applicant: dict[str, list[Any]] = defaultdict(list)
    for row in uow.session.execute(query):
        by_applicant[row.applicant_id].append(row)
    paid_off = reborrowed = 0
    for rows in by_applicant.values():
        payoffs = sorted((r.closed_on, r.loan_id) for r in rows
                         if r.state == AccountState.PAID_OFF.value and r.closed_on is not None and r.closed_on <= as_of)
        if not payoffs:
            continue
        paid_off += 1
        first_on, first_loan = payoffs[0]
        if any(r.loan_id != first_loan and r.disbursed_on >= first_on for r in rows):
            reborrowed += 1
    return {"applicants_paid_off": paid_off, "reborrowed": reborrowed,
            "reborrow_rate": domain.ratio(reborrowed, paid_off)}


# ---------------------------------------------------------------------------------------------- vintage


def vintage(uow: UnitOfWork, tenant_id: str, *, threshold_dpd: int = 30, basis: str = VintageBasis.COUNT.value,
            product_code: str | None = None, currency_code: str | None = None, from_month: str | None = None,
            to_month: str | None = None) -> dict[str, Any]:
    """Vintage curves: for each origination month in [from_month, to_month], the share of its loans (or of its
    principal) ever at least ``threshold_dpd`` days past due by each month on book."""
    if isinstance(threshold_dpd, bool) or not isinstance(threshold_dpd, int) or \
            not 1 <= threshold_dpd <= MAX_THRESHOLD_DPD:
        raise InvalidRequest(f"threshold_dpd is from 1 to {MAX_THRESHOLD_DPD} days.", code="invalid_threshold",
                             param="threshold_dpd")
    try:
        chosen = VintageBasis(basis)
    except ValueError:
        raise InvalidRequest("basis is \"count\" or \"principal\".", code="invalid_basis", param="basis") from None
    for value, param in ((from_month, "from_month"), (to_month, "to_month")):
        if value is not None:
            domain.parse_month(value, param)
    if from_month is not None and to_month is not None and from_month > to_month:
        raise InvalidRequest("from_month is on or before to_month.", code="invalid_range", param="from_month")
    currency_code = _currency(currency_code)
    products = _product_ids(uow, tenant_id, product_code)
    cohort_query = _filtered(select(LoanAccount.loan_id, LoanAccount.currency, LoanAccount.origination_month,
                                    LoanAccount.principal_amount).where(LoanAccount.tenant_id == tenant_id),
                             LoanAccount.product_id, products)
    snapshot_query = _filtered(select(LoanMonthEnd.loan_id, LoanMonthEnd.months_on_book, LoanMonthEnd.max_dpd)
                               .where(LoanMonthEnd.tenant_id == tenant_id), LoanMonthEnd.product_id, products)
    for column_a, column_b, value, above in (
            (LoanAccount.origination_month, LoanMonthEnd.origination_month, from_month, True),
            (LoanAccount.origination_month, LoanMonthEnd.origination_month, to_month, False)):
        if value is not None:
            cohort_query = cohort_query.where(column_a >= value if above else column_a <= value)
            snapshot_query = snapshot_query.where(column_b >= value if above else column_b <= value)
    if currency_code is not None:
        cohort_query = cohort_query.where(LoanAccount.currency == currency_code)
        snapshot_query = snapshot_query.where(LoanMonthEnd.currency == currency_code)
    cohort = [CohortLoan(r[0], r[1], r[2], int(r[3])) for r in uow.session.execute(cohort_query)]
    snapshots = [Snapshot(r[0], int(r[1]), int(r[2])) for r in uow.session.execute(snapshot_query)]
    curves = domain.vintage_curves(cohort, snapshots, threshold_dpd=threshold_dpd, basis=chosen)
    return {"threshold_dpd": threshold_dpd, "basis": chosen.value, "product_code": product_code,
            "currency": currency_code, "from_month": from_month, "to_month": to_month,
            "curves": [{"currency": c.currency, "origination_month": c.origination_month, "loans": c.loans,
                        "principal_amount": c.principal_amount,
                        "points": [{"months_on_book": p.months_on_book, "loans_bad": p.loans_bad,
                                    "principal_bad": p.principal_bad, "rate": p.rate} for p in c.points]}
                       for c in curves]}


# ---------------------------------------------------------------------------------------------- roll rates


def roll_rates(uow: UnitOfWork, tenant_id: str, *, month_from: str, month_to: str, product_code: str | None = None,
               currency_code: str | None = None) -> dict[str, Any]:
    """Where the loans open at each month end m (month_from <= m < month_to) stood at the month end after: counts
    and principal at m per bucket and per next bucket or absorbing state, summed over the months."""
    domain.parse_month(month_from, "month_from")
    domain.parse_month(month_to, "month_to")
    span = domain.months_between(month_from, month_to)
    if span < 1:
        raise InvalidRequest("month_from is before month_to.", code="invalid_range", param="month_from")
    if span > MAX_ROLL_MONTHS:
        raise InvalidRequest(f"A roll-rate range covers at most {MAX_ROLL_MONTHS} months.", code="invalid_range",
                             param="month_to")
    currency_code = _currency(currency_code)
    products = _product_ids(uow, tenant_id, product_code)
    query = _filtered(select(LoanMonthEnd.loan_id, LoanMonthEnd.month, LoanMonthEnd.currency, LoanMonthEnd.state,
                             LoanMonthEnd.bucket, LoanMonthEnd.principal_outstanding)
                      .where(LoanMonthEnd.tenant_id == tenant_id, LoanMonthEnd.month >= month_from,
                             LoanMonthEnd.month <= month_to), LoanMonthEnd.product_id, products)
    if currency_code is not None:
        query = query.where(LoanMonthEnd.currency == currency_code)
    seen = {(r.loan_id, r.month): r for r in uow.session.execute(query)}
    open_at = [r for r in seen.values() if r.month < month_to and r.state in OPEN_STATES]
    missing = sorted({r.loan_id for r in open_at if (r.loan_id, domain.next_month(r.month)) not in seen})
    closed: dict[str, tuple[str, date | None]] = {}
    if missing:
        for loan_id, state, closed_on in uow.session.execute(select(
                LoanAccount.loan_id, LoanAccount.state, LoanAccount.closed_on).where(
                LoanAccount.tenant_id == tenant_id, LoanAccount.loan_id.in_(missing),
                LoanAccount.state.in_(_ABSORBING))):
            closed[loan_id] = (state, closed_on)
    transitions = []
    unmatched = 0
    for row in open_at:
        following = domain.next_month(row.month)
        after = seen.get((row.loan_id, following))
        if after is not None:
            target = after.state if after.state in _ABSORBING else after.bucket
        elif row.loan_id in closed and _closed_by(closed[row.loan_id][1], domain.month_end(following)):
            target = closed[row.loan_id][0]
        else:
            unmatched += 1
            continue
        transitions.append(Transition(row.currency, row.bucket, target, int(row.principal_outstanding)))
    matrices = domain.roll_matrices(transitions)
    return {"month_from": month_from, "month_to": month_to, "product_code": product_code, "currency": currency_code,
            "columns": list(domain.ROLL_COLUMNS), "unmatched_loans": unmatched,
            "matrices": [{"currency": m.currency, "rows": [_roll_row(r) for r in m.rows]} for m in matrices]}


def _closed_by(closed_on: date | None, day: date) -> bool:
    return closed_on is None or closed_on <= day


def _roll_row(row: domain.RollRow) -> dict[str, Any]:
    def shares(ppm: dict[str, int] | None) -> dict[str, str] | None:
        return None if ppm is None else {k: domain.ppm_text(v) for k, v in ppm.items()}

    return {"bucket": row.bucket, "loans": row.loans, "principal": row.principal, "counts": row.counts,
            "principals": row.principals, "count_shares": shares(row.count_shares_ppm),
            "principal_shares": shares(row.principal_shares_ppm)}


# ---------------------------------------------------------------------------------------------- operating cost policy


def operating_cost_policy(uow: UnitOfWork, tenant_id: str) -> tuple[OperatingCostPolicy, PolicyRow | None]:
    row = uow.session.get(PolicyRow, tenant_id)
    if row is None:
        return DEFAULT_OPERATING_COST_POLICY, None
    return domain.check_operating_cost_policy(row.policy), row


def set_operating_cost_policy(uow: UnitOfWork, tenant_id: str, data: Mapping[str, Any], *,
                              actor: str) -> OperatingCostPolicy:
    """Replace the tenant's operating cost policy (checked whole before anything is written); audited."""
    policy = domain.check_operating_cost_policy(data)
    row = uow.session.get(PolicyRow, tenant_id, with_for_update=True)
    before = None if row is None else dict(row.policy)
    now = uow.clock.now()
    if row is None:
        uow.session.add(PolicyRow(tenant_id=tenant_id, policy=policy.to_json(), updated_by=actor[:60],
                                  updated_at=now))
    else:
        row.policy, row.updated_by, row.updated_at = policy.to_json(), actor[:60], now
    uow.session.flush()
    audit.record(uow, tenant_id, actor=actor, action="credit.operating_cost_policy.updated",
                 object_type=POLICY_OBJECT_TYPE, object_id=tenant_id, before=before, after=policy.to_json())
    return policy


# ---------------------------------------------------------------------------------------------- profit and loss


def pnl(uow: UnitOfWork, tenant_id: str, *, loan_id: str | None = None, month: str | None = None,
        product_code: str | None = None, after: str | None = None, limit: int | None = None) -> dict[str, Any]:
    """Profit and loss. Without ``month``: each loan's lifetime to date (``loans``, paged by ``after``/``limit``)
    and the portfolio's sums per currency, reconciled against the general ledger when nothing is filtered. With
    ``month`` (YYYY-MM): the portfolio's P&L of that calendar month, read from the general ledger's postings in
    the month, with the operating cost of the loans on the book in it."""
    if month is not None:
        if loan_id is not None:
            raise InvalidRequest("A month's P&L is the portfolio's; leave out loan_id or month.",
                                 code="invalid_combination", param="month")
        domain.parse_month(month, "month")
        return _month_pnl(uow, tenant_id, month, product_code)
    return _lifetime_pnl(uow, tenant_id, loan_id, product_code, after, limit)


def _end_of(account: LoanAccount, today: date) -> date:
    """The first day no longer on the book (exclusive end)."""
    return account.closed_on if account.closed_on is not None else today + timedelta(days=1)


def _lifetime_pnl(uow: UnitOfWork, tenant_id: str, loan_id: str | None, product_code: str | None,
                  after: str | None, limit: int | None) -> dict[str, Any]:
    products = _product_ids(uow, tenant_id, product_code)
    today = uow.clock.now().date()
    policy, _ = operating_cost_policy(uow, tenant_id)
    # Cost of funds is shared over the whole book, so every loan's principal-days are needed whatever is shown.
    accounts = list(uow.session.scalars(select(LoanAccount).where(LoanAccount.tenant_id == tenant_id)
                                        .order_by(LoanAccount.loan_id)))
    if loan_id is not None and not any(a.loan_id == loan_id for a in accounts):
        raise NotFound("No such loan on the book.", code="loan_not_found", param="loan_id")
    funded_by = {loan: source for loan, source in uow.session.execute(
        select(Loan.id, Loan.funding_source_id).where(Loan.tenant_id == tenant_id, Loan.id.in_(
            select(LoanAccount.loan_id).where(LoanAccount.tenant_id == tenant_id))))}
    balances: dict[str, list[tuple[date, int]]] = defaultdict(list)
    for snapshot_loan, snapshot_month, outstanding in uow.session.execute(select(
            LoanMonthEnd.loan_id, LoanMonthEnd.month, LoanMonthEnd.principal_outstanding).where(
            LoanMonthEnd.tenant_id == tenant_id)):
        balances[snapshot_loan].append((domain.month_end(snapshot_month), int(outstanding)))
    weights = {a.loan_id: domain.principal_days(principal_amount=a.principal_amount, disbursed_on=a.disbursed_on,
                                                end=_end_of(a, today), month_ends=balances.get(a.loan_id, ()))
               for a in accounts}
    allocated: dict[str, int] = {}
    unallocated: dict[str, int] = defaultdict(int)
    for source in uow.session.scalars(select(FundingSource).where(FundingSource.tenant_id == tenant_id)
                                      .order_by(FundingSource.id)):
        share = domain.allocate_cost(source.accrued_amount, {
            loan: weight for loan, weight in weights.items() if funded_by.get(loan) == source.id})
        allocated.update(share.parts)
        unallocated[source.currency] += share.unallocated
    shown = [a for a in accounts if (loan_id is None or a.loan_id == loan_id)
             and (products is None or a.product_id in products)]
    lines = {a.loan_id: PnlLines(
        a.currency, a.principal_amount, interest_income=a.interest_income, fee_income=a.fee_income,
        penalty_income=a.penalty_income, recoveries=a.recovered_amount, cost_of_funds=allocated.get(a.loan_id, 0),
        provision=a.provision_amount, credit_loss=a.written_off_amount,
        operating_cost=domain.operating_cost(policy, principal_amount=a.principal_amount, currency_code=a.currency,
                                             start=a.disbursed_on, end=_end_of(a, today)))
        for a in shown}
    totals: dict[str, PnlLines] = {}
    for a in shown:
        totals[a.currency] = totals[a.currency] + lines[a.loan_id] if a.currency in totals else lines[a.loan_id]
    whole_book = loan_id is None and products is None
    portfolio = []
    for code in sorted(set(totals) | ({c for c, v in unallocated.items() if v} if whole_book else set())):
        total = totals.get(code, PnlLines(code, 0))
        if whole_book:
            total = total + PnlLines(code, 0, cost_of_funds=unallocated.get(code, 0))
        portfolio.append({**total.to_json(), "loans": sum(1 for a in shown if a.currency == code),
                          "unallocated_cost_of_funds": unallocated.get(code, 0) if whole_book else None})
    page = [a for a in shown if after is None or a.loan_id > after]
    if limit is not None:
        page = page[:limit + 1]
    loans = [{"loan_id": a.loan_id, "product_id": a.product_id, "origination_month": a.origination_month,
              "state": a.state, "funding_source_id": funded_by.get(a.loan_id), "principal_days": weights[a.loan_id],
              **lines[a.loan_id].to_json()} for a in page]
    return {"scope": "lifetime", "month": None, "as_of": today, "loan_id": loan_id, "product_code": product_code,
            "operating_cost_policy": policy.to_json(), "cost_of_funds_rule": COST_OF_FUNDS_RULE, "loans": loans,
            "portfolio": portfolio,
            "reconciliation": _reconcile(uow, tenant_id, portfolio) if whole_book else None}


def _ledger_lines(uow: UnitOfWork, tenant_id: str, *, start: datetime | None = None,
                  as_of: datetime | None = None) -> dict[str, dict[str, int]]:
    """The general ledger's credit P&L lines per currency (income and expense balances, positive)."""
    out: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for totals in ledger.account_totals(uow, tenant_id, start=start, as_of=as_of,
                                        types=[AccountType.INCOME, AccountType.EXPENSE]):
        parts = totals.code.split(":")
        line = None
        if totals.code == COST_OF_FUNDS_CODE:
            line = "cost_of_funds"
        elif len(parts) == 4 and parts[:2] == ["income", "credit"] and \
                parts[3] in ("interest", "fees", "penalty", "recoveries"):
            line = {"interest": "interest_income", "fees": "fee_income", "penalty": "penalty_income",
                    "recoveries": "recoveries"}[parts[3]]
        elif len(parts) == 4 and parts[0] == "expenses" and parts[1] == "credit" and \
                parts[3] in ("provisions", "losses"):
            line = "provision" if parts[3] == "provisions" else "credit_loss"
        if line is not None and totals.balance:
            out[totals.currency][line] += totals.balance
    return out


RECONCILED_LINES = ("interest_income", "fee_income", "penalty_income", "recoveries", "credit_cost", "cost_of_funds")


def _reconcile(uow: UnitOfWork, tenant_id: str, portfolio: list[dict[str, Any]]) -> list[dict[str, Any]]:
    gl = _ledger_lines(uow, tenant_id)
    book = {p["currency"]: p for p in portfolio}
    out = []
    for code in sorted(set(book) | set(gl)):
        ours = book.get(code, {})
        theirs = gl.get(code, {})
        for line in RECONCILED_LINES:
            if line == "credit_cost":
                subledger = ours.get("provision", 0) + ours.get("credit_loss", 0)
                general = theirs.get("provision", 0) + theirs.get("credit_loss", 0)
            else:
                subledger, general = ours.get(line, 0), theirs.get(line, 0)
            out.append({"currency": code, "line": line, "subledger_amount": subledger, "ledger_amount": general,
                        "difference": subledger - general, "matches": subledger == general})
    return out


def _month_pnl(uow: UnitOfWork, tenant_id: str, month: str, product_code: str | None) -> dict[str, Any]:
    if product_code is not None:
        raise InvalidRequest("A month's P&L is read from the general ledger, which is kept per limit group, not per "
                             "product; leave out product_code.", code="invalid_combination", param="product_code")
    start, end = domain.month_start(month), domain.month_end(month) + timedelta(days=1)
    today = uow.clock.now().date()
    policy, _ = operating_cost_policy(uow, tenant_id)
    gl = _ledger_lines(uow, tenant_id, start=datetime.combine(start, time(), tzinfo=UTC),
                       as_of=datetime.combine(end, time(), tzinfo=UTC) - timedelta(microseconds=1))
    on_book: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0])
    for account in uow.session.scalars(select(LoanAccount).where(
            LoanAccount.tenant_id == tenant_id, LoanAccount.disbursed_on < end,
            (LoanAccount.closed_on.is_(None)) | (LoanAccount.closed_on > start))):
        figures = on_book[account.currency]
        figures[0] += 1
        figures[1] += account.principal_amount
        figures[2] += domain.operating_cost(policy, principal_amount=account.principal_amount,
                                            currency_code=account.currency, start=max(start, account.disbursed_on),
                                            end=min(end, _end_of(account, today)))
    portfolio = []
    for code in sorted(set(gl) | set(on_book)):
        lines = gl.get(code, {})
        loans, principal, operating = on_book.get(code, [0, 0, 0])
        total = PnlLines(code, principal, interest_income=lines.get("interest_income", 0),
                         fee_income=lines.get("fee_income", 0), penalty_income=lines.get("penalty_income", 0),
                         recoveries=lines.get("recoveries", 0), cost_of_funds=lines.get("cost_of_funds", 0),
                         provision=lines.get("provision", 0), credit_loss=lines.get("credit_loss", 0),
                         operating_cost=operating)
        portfolio.append({**total.to_json(), "loans": loans, "unallocated_cost_of_funds": None})
    return {"scope": "month", "month": month, "as_of": today, "loan_id": None, "product_code": None,
            "operating_cost_policy": policy.to_json(), "cost_of_funds_rule": COST_OF_FUNDS_RULE, "loans": [],
            "portfolio": portfolio, "reconciliation": None}


# ---------------------------------------------------------------------------------------------- CSV


def summary_rows(summary: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The summary as flat rows (one per currency and bucket, and the period figures)."""
    rows: list[dict[str, Any]] = []
    for block in summary["currencies"]:
        for name in ("open_loans", "principal_outstanding", "overdue_principal", "overdue_rate", "m4_rate",
                     "disbursed_loans", "disbursed_principal", "written_off_amount", "bad_debt_rate",
                     "limit_used_amount", "limit_amount", "limit_utilisation_rate"):
            rows.append({"currency": block["currency"], "figure": name, "bucket": "", "value": block[name]})
        for bucket in block["buckets"]:
            rows.append({"currency": block["currency"], "figure": "bucket_principal_outstanding",
                         "bucket": bucket["bucket"], "value": bucket["principal_outstanding"]})
            rows.append({"currency": block["currency"], "figure": "bucket_rate", "bucket": bucket["bucket"],
                         "value": bucket["rate"]})
    for group in ("applications", "reborrow"):
        for name, value in summary[group].items():
            rows.append({"currency": "", "figure": name, "bucket": "", "value": value})
    return rows


def vintage_rows(found: Mapping[str, Any]) -> list[dict[str, Any]]:
    return [{"currency": c["currency"], "origination_month": c["origination_month"], "loans": c["loans"],
             "principal_amount": c["principal_amount"], "months_on_book": p["months_on_book"],
             "loans_bad": p["loans_bad"], "principal_bad": p["principal_bad"], "rate": p["rate"]}
            for c in found["curves"] for p in c["points"]]


def roll_rows(found: Mapping[str, Any]) -> list[dict[str, Any]]:
    rows = []
    for matrix in found["matrices"]:
        for row in matrix["rows"]:
            for column in found["columns"]:
                rows.append({"currency": matrix["currency"], "from_bucket": row["bucket"], "to": column,
                             "loans": row["counts"][column], "principal": row["principals"][column],
                             "count_share": (row["count_shares"] or {}).get(column),
                             "principal_share": (row["principal_shares"] or {}).get(column)})
    return rows


PNL_COLUMNS = ("principal_amount", "interest_income", "fee_income", "penalty_income", "recoveries",
               "cost_of_funds", "provision", "credit_loss", "operating_cost", "income", "net_profit", "margin_rate")


def pnl_rows(found: Mapping[str, Any]) -> list[dict[str, Any]]:
    """One row per loan shown, then one per currency for the portfolio."""
    rows = [{"level": "loan", "loan_id": loan["loan_id"], "currency": loan["currency"],
             **{c: loan[c] for c in PNL_COLUMNS}} for loan in found["loans"]]
    rows += [{"level": "portfolio", "loan_id": "", "currency": p["currency"], **{c: p[c] for c in PNL_COLUMNS}}
             for p in found["portfolio"]]
    return rows


def to_csv(rows: Sequence[Mapping[str, Any]], columns: Sequence[str] | None = None) -> str:
    import csv
    import io

    buffer = io.StringIO()
    names = list(columns) if columns is not None else (list(rows[0]) if rows else [])
    writer = csv.DictWriter(buffer, fieldnames=names, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: "" if row.get(k) is None else row.get(k) for k in names})
    return buffer.getvalue()
