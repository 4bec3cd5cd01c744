"""Loan applications and their automatic review: score, risk decision, limit check and multi-borrowing, in the
transaction that submits the application, with reasons the applicant can be shown.

Invariants owned here:
- an application is checked against the product version it names (offered, same currency as the applicant,
  principal within bounds, term offered) before anything is written: bad input is a 4xx and writes nothing;
- the automatic review runs every check and keeps every finding: a decline reason (rating ``reject``, the risk
  engine's decline, not enough limit, multi-borrowing over the decline thresholds) declines; otherwise a review
  reason (a rating the policy reviews, the risk engine's review, multi-borrowing over the review thresholds)
  opens a case; otherwise it is approved. ``auto_outcome`` keeps what the automatic review said for the figures;
  ``final_outcome`` is the decision of record;
- an approved application, and one in review, holds its principal on the applicant's credit line under the
  application's id (``limits.reserve``); declining, cancelling or expiring releases it, in the same transaction;
  a reservation that fails (the limit was taken meanwhile) declines with ``limit_insufficient``;
- status moves only along ``domain.APPLICATION_TRANSITIONS``; every move is audited;
- a case verdict (``resolve_case``) approves or declines only an application still in review under that case;
- the decision latency is the review's wall time (``time.perf_counter``), stored in microseconds.
"""

from __future__ import annotations

import ipaddress
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, fields
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, func, or_, select

from finloop.audit import service as audit
from finloop.core.errors import InvalidRequest, NotFound
from finloop.credit import limits, products, scoring
from finloop.credit import service as credit
from finloop.credit.domain import (
    ApplicationPurpose,
    ApplicationStatus,
    LoanStatus,
    PartyKind,
    Rating,
    applicant_reason,
    check_application_transition,
)
from finloop.credit.features import BUREAU_MAX_AGE
from finloop.credit.models import (
    Applicant,
    ApplicationPolicy,
    BureauReport,
    CreditLine,
    CreditScore,
    Loan,
    LoanApplication,
    LoanProduct,
)
from finloop.credit.servicing.domain import OPEN_STATES as SERVICING_OPEN_STATES
from finloop.credit.servicing.models import LoanAccount
from finloop.db.uow import UnitOfWork

OBJECT_TYPE = "loan_application"
MAX_DEVICE = 100
#: Statuses in which an application is a loan the person has, or may have soon, with us.
OPEN_STATUSES = (ApplicationStatus.IN_REVIEW.value, ApplicationStatus.APPROVED.value,
                 ApplicationStatus.CONTRACT_SIGNED.value)


# ---------------------------------------------------------------------------------------------- policy


@dataclass(frozen=True, slots=True)
class ReviewPolicy:
    """The automatic review's thresholds. A count at or above a ``*_review`` threshold sends the application to
    review, at or above ``*_decline`` declines it."""

    score_max_age_days: int = 31
    review_ratings: tuple[str, ...] = ("D",)
    bureau_enquiries_30d_review: int = 4
    bureau_enquiries_30d_decline: int = 8
    bureau_open_loans_review: int = 4
    bureau_open_loans_decline: int = 8
    own_window_days: int = 30
    own_applications_review: int = 3
    own_applications_decline: int = 6
    own_open_review: int = 2
    own_open_decline: int = 4
    expiry_days: int = 14

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["review_ratings"] = list(self.review_ratings)
        return data


DEFAULT_POLICY = ReviewPolicy()
_PAIRS = (("bureau_enquiries_30d_review", "bureau_enquiries_30d_decline"),
          ("bureau_open_loans_review", "bureau_open_loans_decline"),
          ("own_applications_review", "own_applications_decline"), ("own_open_review", "own_open_decline"))
_DAYS = ("score_max_age_days", "own_window_days", "expiry_days")


def check_policy(changes: Mapping[str, Any], *, base: Mapping[str, Any] | None = None) -> ReviewPolicy:
    """The policy with ``changes`` applied to ``base`` (the defaults): counts 1-1000, days 1-366, each review
    threshold at most its decline threshold, review ratings among A-D."""
    known = {f.name for f in fields(ReviewPolicy)}
    if not isinstance(changes, Mapping):
        raise InvalidRequest("The policy is an object.", code="invalid_application_policy", param="policy")
    for name in changes:
        if name not in known:
            raise InvalidRequest(f"Unknown field: {str(name)[:40]}.", code="unknown_field", param=str(name)[:40])
    data = {**DEFAULT_POLICY.to_json(), **(base or {}), **changes}
    for name in known - {"review_ratings"}:
        value, high = data[name], 366 if name in _DAYS else 1000
        if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= high:
            raise InvalidRequest(f"{name} is an integer from 1 to {high}.", code="invalid_application_policy",
                                 param=name)
    for review, decline in _PAIRS:
        if data[review] > data[decline]:
            raise InvalidRequest(f"{review} is at most {decline}.", code="invalid_application_policy", param=review)
    ratings = data["review_ratings"]
    allowed = [r.value for r in (Rating.A, Rating.B, Rating.C, Rating.D)]
    if not isinstance(ratings, list | tuple) or any(r not in allowed for r in ratings) \
            or len(set(ratings)) != len(ratings):
        raise InvalidRequest("review_ratings is a list of distinct ratings among A, B, C and D.",
                             code="invalid_application_policy", param="review_ratings")
    data["review_ratings"] = tuple(r for r in allowed if r in ratings)
    return ReviewPolicy(**data)


def get_policy(uow: UnitOfWork, tenant_id: str) -> ReviewPolicy:
    row = uow.session.get(ApplicationPolicy, tenant_id)
    return DEFAULT_POLICY if row is None else check_policy({}, base=row.policy)


def policy_row(uow: UnitOfWork, tenant_id: str) -> ApplicationPolicy:
    row = uow.session.get(ApplicationPolicy, tenant_id)
    if row is not None:
        return row
    return ApplicationPolicy(tenant_id=tenant_id, policy=DEFAULT_POLICY.to_json(), updated_by="default",
                             updated_at=uow.clock.now())


def set_policy(uow: UnitOfWork, tenant_id: str, changes: Mapping[str, Any], *, actor: str) -> ApplicationPolicy:
    """Change some thresholds (the rest keep their value); audited."""
    row = uow.session.get(ApplicationPolicy, tenant_id, with_for_update=True)
    before = None if row is None else dict(row.policy)
    policy = check_policy(changes, base=before).to_json()
    now = uow.clock.now()
    if row is None:
        row = ApplicationPolicy(tenant_id=tenant_id, policy=policy, updated_by=actor[:60], updated_at=now)
        uow.session.add(row)
    else:
        row.policy, row.updated_by, row.updated_at = policy, actor[:60], now
    uow.session.flush()
    audit.record(uow, tenant_id, actor=actor, action="credit.application_policy.updated",
                 object_type="credit_application_policy", object_id=tenant_id, before=before, after=policy)
    return row


# ---------------------------------------------------------------------------------------------- checks


def _purpose(value: Any) -> str:
    try:
        return ApplicationPurpose(value).value
    except ValueError:
        raise InvalidRequest(f"purpose is one of {', '.join(ApplicationPurpose)}.", code="invalid_purpose",
                             param="purpose") from None


def _device(value: Any) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not 1 <= len(value) <= MAX_DEVICE or not value.isprintable():
        raise InvalidRequest(f"device_id is 1-{MAX_DEVICE} printable characters.", code="invalid_device_id",
                             param="device_id")
    return value


def check_ip(value: Any, param: str = "ip") -> str | None:
    if value is None:
        return None
    try:
        return str(ipaddress.ip_address(value if isinstance(value, str) else ""))
    except ValueError:
        raise InvalidRequest(f"{param} is an IPv4 or IPv6 address.", code="invalid_ip", param=param) from None


def _product(uow: UnitOfWork, tenant_id: str, product_id: Any, product_code: Any) -> LoanProduct:
    if (product_id is None) == (product_code is None):
        raise InvalidRequest("Give product_id or product_code (one of them).", code="invalid_product",
                             param="product_id")
    if product_id is not None:
        return products.require_offered(products.get_product(uow, tenant_id, product_id))
    return products.offered_product(uow, tenant_id, product_code)


# ---------------------------------------------------------------------------------------------- multi-borrowing


@dataclass(frozen=True, slots=True)
class MultiBorrowing:
    """What the bureau and our own records say about the person's other borrowing."""

    bureau_report_id: str | None
    bureau_enquiries_30d: int | None
    bureau_open_loans: int | None
    #: Applications of the same person (any applicant with the same national id) in the window, this excluded.
    own_applications: int
    #: The person's open applications (in review, approved, signed with a loan not failed, repaid or written off)
    #: and their other applicants' lines with drawn loans (a line's reservations are those applications, already
    #: counted).
    own_open: int
    #: Other applicants sharing the national id (blind index match).
    duplicate_applicants: int

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def multi_borrowing(uow: UnitOfWork, tenant_id: str, applicant: Applicant, policy: ReviewPolicy,
                    now: datetime) -> MultiBorrowing:
    report = uow.session.scalar(select(BureauReport).where(
        BureauReport.tenant_id == tenant_id, BureauReport.applicant_id == applicant.id,
        BureauReport.status == "completed", BureauReport.requested_at >= now - BUREAU_MAX_AGE,
        BureauReport.requested_at <= now).order_by(BureauReport.requested_at.desc(), BureauReport.id.desc()).limit(1))
    same_person = list(uow.session.scalars(select(Applicant.id).where(
        Applicant.tenant_id == tenant_id, Applicant.national_id_index == applicant.national_id_index)))
    others = [a for a in same_person if a != applicant.id]
    recent = uow.session.scalar(select(func.count()).select_from(LoanApplication).where(
        LoanApplication.tenant_id == tenant_id, LoanApplication.national_id_index == applicant.national_id_index,
        LoanApplication.submitted_at >= now - timedelta(days=policy.own_window_days))) or 0
    # A signed application whose loan failed, was repaid or was written off is no borrowing today.
    open_applications = uow.session.scalar(
        select(func.count()).select_from(LoanApplication)
        .outerjoin(Loan, Loan.application_id == LoanApplication.id)
        .outerjoin(LoanAccount, LoanAccount.loan_id == Loan.id)
        .where(LoanApplication.tenant_id == tenant_id,
               LoanApplication.national_id_index == applicant.national_id_index,
               LoanApplication.status.in_(OPEN_STATUSES),
               or_(Loan.id.is_(None), and_(Loan.status != LoanStatus.FAILED.value,
                                           or_(LoanAccount.loan_id.is_(None),
                                               LoanAccount.state.in_(SERVICING_OPEN_STATES)))))) or 0
    other_lines = 0
    if others:
        other_lines = uow.session.scalar(select(func.count()).select_from(CreditLine).where(
            CreditLine.tenant_id == tenant_id, CreditLine.applicant_id.in_(others),
            CreditLine.used_amount > 0)) or 0
    return MultiBorrowing(
        bureau_report_id=report.id if report else None,
        bureau_enquiries_30d=report.enquiries_30d if report else None,
        bureau_open_loans=report.open_loans if report else None,
        own_applications=int(recent), own_open=int(open_applications) + int(other_lines),
        duplicate_applicants=len(others))


def _over(value: int | None, threshold: int) -> bool:
    return value is not None and value >= threshold


def multi_borrowing_findings(found: MultiBorrowing, policy: ReviewPolicy) -> tuple[list[str], list[str], list[str]]:
    """(decline codes, review codes, internal findings) of the multi-borrowing counts against the policy."""
    declines: list[str] = []
    reviews: list[str] = []
    internal: list[str] = []
    checks = (("bureau_enquiries_30d", found.bureau_enquiries_30d, "multiple_recent_applications"),
              ("own_applications", found.own_applications, "multiple_recent_applications"),
              ("bureau_open_loans", found.bureau_open_loans, "too_many_open_loans"),
              ("own_open", found.own_open, "too_many_open_loans"))
    for name, value, code in checks:
        if _over(value, getattr(policy, f"{name}_decline")):
            declines.append(code)
            internal.append(f"{name}_decline")
        elif _over(value, getattr(policy, f"{name}_review")):
            reviews.append(code)
            internal.append(f"{name}_review")
    return declines, reviews, internal


# ---------------------------------------------------------------------------------------------- submit


def snapshot(application: LoanApplication) -> dict[str, Any]:
    return {"applicant_id": application.applicant_id, "product_id": application.product_id,
            "principal_amount": application.principal_amount, "currency": application.currency,
            "term": application.term, "status": application.status, "auto_outcome": application.auto_outcome,
            "final_outcome": application.final_outcome, "reasons": [r["code"] for r in application.reasons],
            "reserved_amount": application.reserved_amount, "case_id": application.case_id}


def _unique(codes: Sequence[str]) -> list[str]:
    return list(dict.fromkeys(codes))


def _current_score(uow: UnitOfWork, tenant_id: str, applicant_id: str, policy: ReviewPolicy,
                   now: datetime) -> CreditScore:
    score = scoring.latest_score(uow, tenant_id, applicant_id)
    if score is None or score.scored_at < now - timedelta(days=policy.score_max_age_days):
        score = scoring.score_applicant(uow, tenant_id, applicant_id)
    return score


def _risk_event(applicant: Applicant, product: LoanProduct, *, principal: int, term: int, purpose: str,
                score: CreditScore, device_id: str | None, ip: str | None) -> dict[str, Any]:
    event: dict[str, Any] = {"amount": principal, "currency": product.currency, "applicant_id": applicant.id,
                             "product": product.code, "term": term, "purpose": purpose, "rating": score.rating,
                             "credit_score": score.score}
    event["customer_id" if applicant.party_kind == PartyKind.CUSTOMER.value else "merchant_id"] = applicant.party_id
    if device_id is not None:
        event["device_id"] = device_id
    if ip is not None:
        event["ip"] = ip
    return event


def submit(uow: UnitOfWork, tenant_id: str, *, applicant_id: str, principal_amount: Any, term: Any, purpose: Any,
           product_id: str | None = None, product_code: str | None = None, device_id: Any = None, ip: Any = None,
           actor: str) -> LoanApplication:
    """Submit an application and decide it now (approve, decline or review); returns the stored application."""
    from finloop.credit import contracts
    from finloop.risk import service as risk
    from finloop.risk.cases import service as cases
    from finloop.risk.domain import Outcome

    began = time.perf_counter()
    purpose_ = _purpose(purpose)
    device_id, ip = _device(device_id), check_ip(ip)
    applicant = credit.get_applicant(uow, tenant_id, applicant_id)
    product = _product(uow, tenant_id, product_id, product_code)
    if product.currency != applicant.currency:
        raise InvalidRequest(f"The product lends {product.currency}; the applicant's currency is "
                             f"{applicant.currency}.", code="currency_mismatch", param="product_id")
    products.check_offer(product, principal=principal_amount, term=term)
    policy = get_policy(uow, tenant_id)
    now = uow.clock.now()
    application_id = uow.ids.new("loan_application")

    declines: list[str] = []
    reviews: list[str] = []
    internal: list[str] = []
    score = _current_score(uow, tenant_id, applicant.id, policy, now)
    if score.rating == Rating.REJECT.value:
        declines.append("rating_reject")
        internal.append("rating_reject")
    elif score.rating in policy.review_ratings:
        reviews.append("manual_review")
        internal.append(f"rating_{score.rating}_reviewed")
    decision = risk.decide(uow, tenant_id, event_type="loan_application", object_ref=application_id,
                           event=_risk_event(applicant, product, principal=principal_amount, term=term,
                                             purpose=purpose_, score=score, device_id=device_id, ip=ip))
    if decision.outcome is Outcome.DECLINE:
        declines.append("risk_declined")
        internal.append("risk_declined")
    elif decision.outcome is Outcome.REVIEW:
        reviews.append("manual_review")
        internal.append("risk_review")
    availability = limits.available_for(uow, tenant_id, applicant.id, product)
    if principal_amount > availability.available:
        declines.append("limit_insufficient")
        internal.extend(availability.reasons or ["available_below_amount"])
    found = multi_borrowing(uow, tenant_id, applicant, policy, now)
    mb_declines, mb_reviews, mb_internal = multi_borrowing_findings(found, policy)
    declines += mb_declines
    reviews += mb_reviews
    internal += mb_internal

    reserved = 0
    if not declines:
        try:
            limits.reserve(uow, tenant_id, applicant.id, product, principal_amount, application_id)
            reserved = principal_amount
        except (limits.CreditLimitExceeded, NotFound):
            declines.append("limit_insufficient")
            internal.append("reservation_refused")
    if declines:
        outcome, status, codes = "decline", ApplicationStatus.DECLINED, _unique(declines)
    elif reviews:
        outcome, status, codes = "review", ApplicationStatus.IN_REVIEW, _unique(["manual_review", *reviews])
    else:
        outcome, status, codes = "approve", ApplicationStatus.APPROVED, []
    check_application_transition(ApplicationStatus.SUBMITTED.value, status)
    details = {"score": {"id": score.id, "score": score.score, "rating": score.rating,
                         "reasons": score.reasons[:4]},
               "risk": {"decision_id": decision.id, "outcome": decision.outcome.value, "score": decision.score,
                        "reasons": list(decision.reasons)},
               "availability": availability.to_json(), "multi_borrowing": found.to_json(),
               "findings": _unique(internal), "policy": policy.to_json()}
    application = LoanApplication(
        id=application_id, tenant_id=tenant_id, applicant_id=applicant.id,
        national_id_index=applicant.national_id_index, product_id=product.id, product_code=product.code,
        principal_amount=principal_amount, currency=product.currency, term=term, term_unit=product.term_unit,
        purpose=purpose_, status=status.value, auto_outcome=outcome,
        final_outcome=None if outcome == "review" else outcome, reasons=[applicant_reason(c) for c in codes],
        details=details, score_id=score.id, score=score.score, rating=score.rating, risk_decision_id=decision.id,
        case_id=None, reserved_amount=reserved, latency_us=0, submitted_at=now,
        decided_at=None if outcome == "review" else now,
        expires_at=now + timedelta(days=policy.expiry_days) if outcome == "approve" else None,
        closed_at=now if outcome == "decline" else None, created_by=actor[:60], version=1)
    uow.session.add(application)
    uow.session.flush()
    if status is ApplicationStatus.IN_REVIEW:
        case = cases.open_case(uow, tenant_id, source="decision", object_type=OBJECT_TYPE, object_id=application.id,
                               reason="Loan application review: " + ", ".join(_unique(internal))[:450],
                               decision_id=decision.id)
        application.case_id = case.id
    elif status is ApplicationStatus.APPROVED:
        contracts.issue(uow, application, product, applicant)
    application.latency_us = max(0, round((time.perf_counter() - began) * 1_000_000))
    uow.session.flush()
    audit.record(uow, tenant_id, actor=actor, action=f"credit.application.{status.value}", object_type=OBJECT_TYPE,
                 object_id=application.id, after=snapshot(application))
    return application


# ---------------------------------------------------------------------------------------------- reads


def get_application(uow: UnitOfWork, tenant_id: str, application_id: str, *, lock: bool = False) -> LoanApplication:
    query = select(LoanApplication).where(LoanApplication.tenant_id == tenant_id,
                                          LoanApplication.id == application_id)
    row = uow.session.scalar(query.with_for_update() if lock else query)
    if row is None:
        raise NotFound(f"No such loan application: {str(application_id)[:40]}.", code="application_not_found",
                       param="application_id")
    return row


def list_applications(uow: UnitOfWork, tenant_id: str, *, applicant_id: str | None = None, status: str | None = None,
                      product_code: str | None = None, auto_outcome: str | None = None, after: str | None = None,
                      limit: int = 50) -> list[LoanApplication]:
    query = select(LoanApplication).where(LoanApplication.tenant_id == tenant_id)
    if applicant_id:
        query = query.where(LoanApplication.applicant_id == applicant_id)
    if status:
        query = query.where(LoanApplication.status == status)
    if product_code:
        query = query.where(LoanApplication.product_code == product_code)
    if auto_outcome:
        query = query.where(LoanApplication.auto_outcome == auto_outcome)
    if after:
        query = query.where(LoanApplication.id > after)
    return list(uow.session.scalars(query.order_by(LoanApplication.id).limit(limit + 1)))


# ---------------------------------------------------------------------------------------------- moves


def move(uow: UnitOfWork, application: LoanApplication, status: ApplicationStatus, *, actor: str) -> None:
    check_application_transition(application.status, status)
    before = snapshot(application)
    now = uow.clock.now()
    application.status = status.value
    application.version += 1
    if status in (ApplicationStatus.APPROVED, ApplicationStatus.DECLINED):
        application.final_outcome = "approve" if status is ApplicationStatus.APPROVED else "decline"
        application.decided_at = now
    if status in (ApplicationStatus.DECLINED, ApplicationStatus.CANCELLED, ApplicationStatus.EXPIRED):
        application.closed_at = now
        application.expires_at = None
    uow.session.flush()
    audit.record(uow, application.tenant_id, actor=actor, action=f"credit.application.{status.value}",
                 object_type=OBJECT_TYPE, object_id=application.id, before=before, after=snapshot(application))


def _release(uow: UnitOfWork, application: LoanApplication) -> None:
    if application.reserved_amount:
        limits.release(uow, application.tenant_id, application.applicant_id, application.id)
        application.reserved_amount = 0


def _void_contract(uow: UnitOfWork, application: LoanApplication) -> None:
    from finloop.credit import contracts

    contract = contracts.find_contract(uow, application.tenant_id, application.id)
    if contract is not None and contract.status == "issued":
        contract.status = "void"


def cancel(uow: UnitOfWork, tenant_id: str, application_id: str, *, actor: str) -> LoanApplication:
    """The applicant withdraws an application in review or approved and unsigned; the limit is released."""
    application = get_application(uow, tenant_id, application_id, lock=True)
    check_application_transition(application.status, ApplicationStatus.CANCELLED)
    _release(uow, application)
    _void_contract(uow, application)
    move(uow, application, ApplicationStatus.CANCELLED, actor=actor)
    return application


#: Applications expired per transaction by ``credit.expire_applications``.
EXPIRY_BATCH = 200


def expire_due(uow: UnitOfWork, tenant_id: str, *, now: datetime | None = None, limit: int = EXPIRY_BATCH) -> int:
    """Expire approved applications whose contract was not signed by ``expires_at``; how many."""
    now = now or uow.clock.now()
    due = list(uow.session.scalars(select(LoanApplication).where(
        LoanApplication.tenant_id == tenant_id, LoanApplication.status == ApplicationStatus.APPROVED.value,
        LoanApplication.expires_at <= now).order_by(LoanApplication.id).limit(limit).with_for_update()))
    for application in due:
        _release(uow, application)
        _void_contract(uow, application)
        move(uow, application, ApplicationStatus.EXPIRED, actor="expiry")
    return len(due)


def resolve_case(uow: UnitOfWork, case: Any, action: str) -> None:
    """Case resolver: approve → the application is approved and its contract issued; decline → declined with
    ``declined_on_review`` and its reservation released. An application no longer in review under this case is
    left alone."""
    from finloop.credit import contracts

    application = uow.session.scalar(select(LoanApplication).where(
        LoanApplication.tenant_id == case.tenant_id, LoanApplication.id == case.object_id).with_for_update())
    if application is None or application.status != ApplicationStatus.IN_REVIEW.value \
            or application.case_id != case.id:
        return
    actor = f"case:{case.id}"
    if action == "approve":
        policy = get_policy(uow, application.tenant_id)
        application.expires_at = uow.clock.now() + timedelta(days=policy.expiry_days)
        move(uow, application, ApplicationStatus.APPROVED, actor=actor)
        product = products.get_product(uow, application.tenant_id, application.product_id)
        applicant = credit.get_applicant(uow, application.tenant_id, application.applicant_id)
        contracts.issue(uow, application, product, applicant)
    elif action == "decline":
        _release(uow, application)
        application.reasons = [applicant_reason("declined_on_review")]
        move(uow, application, ApplicationStatus.DECLINED, actor=actor)


# ---------------------------------------------------------------------------------------------- figures


def _percentile(ordered: Sequence[int], q: float) -> int | None:
    """The nearest-rank percentile: the smallest value with at least ``q`` of the values at or below it."""
    if not ordered:
        return None
    rank = max(1, -(-int(q * 1000) * len(ordered) // 1000))
    return ordered[min(len(ordered), rank) - 1]


def _rate(numerator: int, denominator: int) -> str | None:
    from decimal import ROUND_HALF_EVEN, Decimal

    if not denominator:
        return None
    return str((Decimal(numerator) / Decimal(denominator)).quantize(Decimal("0.0001"), rounding=ROUND_HALF_EVEN))


def figures(uow: UnitOfWork, tenant_id: str, *, since: datetime | None = None,
            until: datetime | None = None) -> dict[str, Any]:
    """Approval rate (approved / decided), automatic-approval rate (approved without review / all), review rate
    (sent to review / all) and decision latency p50/p99 of the applications submitted in [since, until).
    Rates are decimal strings rounded half-even to 4 places."""
    if since is not None and until is not None and since >= until:
        raise InvalidRequest("since is before until.", code="invalid_range", param="since")
    query = select(LoanApplication.auto_outcome, LoanApplication.final_outcome, LoanApplication.latency_us).where(
        LoanApplication.tenant_id == tenant_id)
    if since is not None:
        query = query.where(LoanApplication.submitted_at >= since)
    if until is not None:
        query = query.where(LoanApplication.submitted_at < until)
    rows = uow.session.execute(query).all()
    total = len(rows)
    decided = sum(1 for r in rows if r.final_outcome is not None)
    approved = sum(1 for r in rows if r.final_outcome == "approve")
    auto_approved = sum(1 for r in rows if r.auto_outcome == "approve")
    reviewed = sum(1 for r in rows if r.auto_outcome == "review")
    latencies = sorted(int(r.latency_us) for r in rows)
    return {"since": since.isoformat() if since else None, "until": until.isoformat() if until else None,
            "applications": total, "decided": decided, "approved": approved, "declined": decided - approved,
            "pending_review": total - decided, "automatically_approved": auto_approved, "sent_to_review": reviewed,
            "approval_rate": _rate(approved, decided), "automatic_approval_rate": _rate(auto_approved, total),
            "review_rate": _rate(reviewed, total), "latency_p50_us": _percentile(latencies, 0.50),
            "latency_p99_us": _percentile(latencies, 0.99)}


def _register() -> None:
    from finloop.risk.cases import service as cases

    cases.register_resolver(OBJECT_TYPE, resolve_case)


_register()
