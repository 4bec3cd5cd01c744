"""Applicant features as of an instant, computed set-wise: a handful of grouped queries for a whole batch of
applicants, never a query per applicant or a Python loop over their records.

Sources (read-only):
- orders: the party's ``payments`` of purpose ``order`` (a customer's purchases; a merchant's sales) in the
  applicant's currency, created in the 365 days before ``as_of``: succeeded orders counted over 90 and 365
  days, their average amount (major units), refund rate (refunded / captured amount), repurchase interval
  ((last - first) / (orders - 1), days), days since the last order; payment failure rate (failed /
  (succeeded + failed)). One query grouped by party and currency;
- disputes (chargebacks) on those payments opened in the 365 days: one query grouped by party;
- logins: the risk engine's ``login`` decisions (``risk_decisions``, event ``customer_id``) in the 30 days
  before ``as_of``, for customers (merchants have no login source: missing). One grouped query;
- tenure: days since the customer or merchant was created;
- declared income (major units) and employment from the applicant;
- the latest completed bureau report requested at most ``BUREAU_MAX_AGE`` before ``as_of`` (one query):
  score, open loans, enquiries over 30 and 90 days, delinquencies over 24 months, thin file, and
  debt-to-income (open balance / (12 × monthly income)).
A party without orders has order counts 0 and the other order features missing (None), as in ``credit.sim``;
missing values score in the scorecard's missing bin.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

from sqlalchemy import and_, bindparam, case, func, select

from finloop.core.money import currency as currency_of
from finloop.credit.domain import PLATFORM_FEATURE_NAMES, PartyKind
from finloop.credit.models import Applicant, BureauReport
from finloop.db.uow import UnitOfWork
from finloop.payments.dispute_models import Dispute
from finloop.payments.models import Customer, Merchant, Payment
from finloop.risk.models import RiskDecision

BUREAU_MAX_AGE = timedelta(days=90)
CHUNK = 500
ORDER_PURPOSE = "order"
T = TypeVar("T")


def _chunks(items: Sequence[T], size: int = CHUNK) -> Iterator[Sequence[T]]:
    for start in range(0, len(items), size):
        yield items[start:start + size]


def _days(delta: timedelta) -> float:
    return round(delta.total_seconds() / 86400.0, 2)


# The statements are built once per process with bound parameters: building SQLAlchemy expressions costs more
# than running them on a warm database, and a real-time score runs all of them.


@functools.cache
def _orders_statement(kind: PartyKind) -> Any:
    party = Payment.customer_id if kind is PartyKind.CUSTOMER else Payment.merchant_id
    succeeded = Payment.status == "succeeded"
    return (select(party, Payment.currency,
                   func.sum(case((succeeded, 1), else_=0)),
                   func.sum(case((and_(succeeded, Payment.created_at >= bindparam("recent")), 1), else_=0)),
                   func.sum(case((succeeded, Payment.amount), else_=0)),
                   func.sum(case((succeeded, Payment.captured_amount), else_=0)),
                   func.sum(case((succeeded, Payment.refunded_amount), else_=0)),
                   func.sum(case((Payment.status == "failed", 1), else_=0)),
                   func.min(case((succeeded, Payment.created_at), else_=None)),
                   func.max(case((succeeded, Payment.created_at), else_=None)))
            .where(Payment.tenant_id == bindparam("tenant_id"), party.in_(bindparam("ids", expanding=True)),
                   Payment.purpose == ORDER_PURPOSE, Payment.created_at >= bindparam("since"),
                   Payment.created_at < bindparam("as_of"))
            .group_by(party, Payment.currency))


def _orders(uow: UnitOfWork, tenant_id: str, kind: PartyKind, ids: Sequence[str],
            as_of: datetime) -> dict[tuple[str, str], dict[str, Any]]:
    out: dict[tuple[str, str], dict[str, Any]] = {}
    rows = uow.session.execute(_orders_statement(kind), {
        "tenant_id": tenant_id, "ids": list(ids), "since": as_of - timedelta(days=365),
        "recent": as_of - timedelta(days=90), "as_of": as_of})
    for party_id, code, count, count_90, amount, captured, refunded, failed, first, last in rows:
        out[(party_id, code)] = {"count": int(count or 0), "count_90": int(count_90 or 0), "amount": int(amount or 0),
                                 "captured": int(captured or 0), "refunded": int(refunded or 0),
                                 "failed": int(failed or 0), "first": _aware(first), "last": _aware(last)}
    return out


def _aware(value: Any) -> datetime | None:
    # MIN/MAX over a CASE lose the column type on SQLite, which then answers text.
    if value is None:
        return None
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    instant: datetime = value
    return instant if instant.tzinfo is not None else instant.replace(tzinfo=UTC)


@functools.cache
def _disputes_statement(kind: PartyKind) -> Any:
    party = Payment.customer_id if kind is PartyKind.CUSTOMER else Payment.merchant_id
    return (select(party, func.count(Dispute.id)).join(Payment, Payment.id == Dispute.payment_id)
            .where(Dispute.tenant_id == bindparam("tenant_id"), party.in_(bindparam("ids", expanding=True)),
                   Dispute.created_at >= bindparam("since"), Dispute.created_at < bindparam("as_of"))
            .group_by(party))


def _disputes(uow: UnitOfWork, tenant_id: str, kind: PartyKind, ids: Sequence[str],
              as_of: datetime) -> dict[str, int]:
    rows = uow.session.execute(_disputes_statement(kind), {
        "tenant_id": tenant_id, "ids": list(ids), "since": as_of - timedelta(days=365), "as_of": as_of})
    return {str(party_id): int(n) for party_id, n in rows}


@functools.cache
def _logins_statement() -> Any:
    customer = RiskDecision.event["customer_id"].as_string()
    return (select(customer, func.count()).where(
        RiskDecision.tenant_id == bindparam("tenant_id"), RiskDecision.event_type == "login",
        RiskDecision.decided_at >= bindparam("since"), RiskDecision.decided_at < bindparam("as_of"),
        customer.in_(bindparam("ids", expanding=True))).group_by(customer))


def _logins(uow: UnitOfWork, tenant_id: str, ids: Sequence[str], as_of: datetime) -> dict[str, int]:
    rows = uow.session.execute(_logins_statement(), {
        "tenant_id": tenant_id, "ids": list(ids), "since": as_of - timedelta(days=30), "as_of": as_of})
    return {str(party_id): int(n) for party_id, n in rows}


@functools.cache
def _created_statement(kind: PartyKind) -> Any:
    model = Customer if kind is PartyKind.CUSTOMER else Merchant
    return select(model.id, model.created_at).where(model.tenant_id == bindparam("tenant_id"),
                                                    model.id.in_(bindparam("ids", expanding=True)))


def _created(uow: UnitOfWork, tenant_id: str, kind: PartyKind, ids: Sequence[str]) -> dict[str, datetime]:
    rows = uow.session.execute(_created_statement(kind), {"tenant_id": tenant_id, "ids": list(ids)})
    return {party_id: created for party_id, created in rows}


@functools.cache
def _reports_statement() -> Any:
    window = and_(BureauReport.tenant_id == bindparam("tenant_id"),
                  BureauReport.applicant_id.in_(bindparam("ids", expanding=True)),
                  BureauReport.status == "completed", BureauReport.requested_at <= bindparam("as_of"),
                  BureauReport.requested_at > bindparam("since"))
    latest = (select(BureauReport.applicant_id, func.max(BureauReport.requested_at).label("at"))
              .where(window).group_by(BureauReport.applicant_id).subquery())
    return (select(BureauReport).join(latest, and_(BureauReport.applicant_id == latest.c.applicant_id,
                                                   BureauReport.requested_at == latest.c.at))
            .where(window).order_by(BureauReport.id))


def latest_reports(uow: UnitOfWork, tenant_id: str, applicant_ids: Sequence[str],
                   as_of: datetime) -> dict[str, BureauReport]:
    """Each applicant's latest completed bureau report requested in ``(as_of - BUREAU_MAX_AGE, as_of]``."""
    out: dict[str, BureauReport] = {}
    for chunk in _chunks(list(applicant_ids)):
        rows = uow.session.scalars(_reports_statement(), {"tenant_id": tenant_id, "ids": list(chunk),
                                                          "since": as_of - BUREAU_MAX_AGE, "as_of": as_of})
        for report in rows:
            out[report.applicant_id] = report  # ties on the instant: the later id wins
    return out


def compute(uow: UnitOfWork, tenant_id: str, applicants: Sequence[Applicant],
            as_of: datetime) -> dict[str, dict[str, Any]]:
    """Every platform feature of each applicant as of ``as_of``, by applicant id."""
    by_kind: dict[PartyKind, list[str]] = {PartyKind.CUSTOMER: [], PartyKind.MERCHANT: []}
    for applicant in applicants:
        by_kind[PartyKind(applicant.party_kind)].append(applicant.party_id)
    orders: dict[tuple[PartyKind, str, str], dict[str, Any]] = {}
    disputes: dict[tuple[PartyKind, str], int] = {}
    logins: dict[str, int] = {}
    created: dict[tuple[PartyKind, str], datetime] = {}
    for kind, party_ids in by_kind.items():
        for chunk in _chunks(party_ids):
            for (party_id, code), found in _orders(uow, tenant_id, kind, chunk, as_of).items():
                orders[(kind, party_id, code)] = found
            disputes.update({(kind, p): n for p, n in _disputes(uow, tenant_id, kind, chunk, as_of).items()})
            created.update({(kind, p): at for p, at in _created(uow, tenant_id, kind, chunk).items()})
            if kind is PartyKind.CUSTOMER:
                logins.update(_logins(uow, tenant_id, chunk, as_of))
    reports = latest_reports(uow, tenant_id, [a.id for a in applicants], as_of)
    out: dict[str, dict[str, Any]] = {}
    for applicant in applicants:
        kind = PartyKind(applicant.party_kind)
        per_major = currency_of(applicant.currency).minor_per_major
        stats = orders.get((kind, applicant.party_id, applicant.currency))
        count = stats["count"] if stats else 0
        values: dict[str, Any] = {
            "tenure_days": _days(as_of - created[(kind, applicant.party_id)])
            if (kind, applicant.party_id) in created else None,
            "order_count_90d": float(stats["count_90"]) if stats else 0.0,
            "order_count_365d": float(count),
            "order_amount_avg_365d": round(stats["amount"] / count / per_major, 2) if stats and count else None,
            "refund_rate_365d": round(stats["refunded"] / stats["captured"], 4)
            if stats and count and stats["captured"] else None,
            "repurchase_interval_days": _days((stats["last"] - stats["first"]) / (count - 1))
            if stats and count >= 2 and stats["first"] and stats["last"] else None,
            "days_since_last_order": _days(as_of - stats["last"]) if stats and stats["last"] else None,
            "payment_failure_rate_365d": round(stats["failed"] / (count + stats["failed"]), 4)
            if stats and count + stats["failed"] else None,
            "dispute_count_365d": float(disputes.get((kind, applicant.party_id), 0)),
            "login_count_30d": float(logins.get(applicant.party_id, 0)) if kind is PartyKind.CUSTOMER else None,
            "declared_income": round(applicant.declared_income_amount / per_major, 2),
            "employment": applicant.employment,
        }
        values.update(_bureau(reports.get(applicant.id), applicant.declared_income_amount))
        out[applicant.id] = {name: values.get(name) for name in PLATFORM_FEATURE_NAMES}
    return out


def _bureau(report: BureauReport | None, income_amount: int) -> dict[str, Any]:
    if report is None:
        return {"debt_to_income": None, "bureau_score": None, "bureau_open_loans": None,
                "bureau_enquiries_30d": None, "bureau_enquiries_90d": None, "bureau_delinquencies_24m": None,
                "bureau_thin_file": None}
    thin = bool(report.is_thin_file)
    balance = report.open_loan_balance_amount or 0
    return {
        # Both amounts are minor units of the applicant's currency (the bureau is asked in it).
        "debt_to_income": round(balance / (12 * income_amount), 4) if income_amount > 0 else None,
        "bureau_score": float(report.bureau_score) if report.bureau_score is not None else None,
        "bureau_open_loans": None if thin or report.open_loans is None else float(report.open_loans),
        "bureau_enquiries_30d": float(report.enquiries_30d or 0),
        "bureau_enquiries_90d": float(report.enquiries_90d or 0),
        "bureau_delinquencies_24m": None if thin or report.delinquencies_24m is None
        else float(report.delinquencies_24m),
        "bureau_thin_file": "yes" if thin else "no",
    }
