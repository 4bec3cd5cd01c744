"""Credit tables: applicants, consents, bureau reports, the credit model registry, scores and rating policies;
loan products, credit lines with their sub-limits, limit changes, line events and limit policies.

Invariants the database enforces:
- one applicant per party (customer or merchant) and tenant; declared income is non-negative BIGINT minor
  units beside its currency;
- national id numbers, phone numbers and bank accounts are never stored in clear: each is sealed by the
  vault (``*_sealed``), indexed by a keyed blind index (``*_index``, HMAC-SHA256) for lookups, and shown
  only through its last four characters (``*_last4``);
- a consent expires after it was given; a bureau report is pending, completed or failed;
- a model version is unique per tenant, name and kind; a model is a draft, challenger, champion or retired;
- a batch score exists at most once per applicant, model name and month (``batch_month``), so a monthly
  re-score that runs twice writes nothing the second time; real-time scores (no month) are unlimited;
- a product version is unique per tenant, code and version; its rates and amounts are non-negative, its terms
  and principal bounds ordered;
- one credit line per applicant; a line's and a sub-limit's limit, reserved and used amounts are never negative;
- a line event (reserve, consume, release, restore, on time, late, overdue) happens once per line, kind and
  caller's reference.
Invariants the service keeps: at most one champion and one challenger per tenant and model name; a model's
scoring tables, metrics and reference never change once written (a retrain is a new version).
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Date,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from finloop.db.base import Base
from finloop.db.types import BigId, ExactDecimal, Json, UTCDateTime


class Applicant(Base):
    """A customer or merchant of the tenant who may apply for credit, with what they declared."""

    __tablename__ = "credit_applicants"
    __table_args__ = (
        UniqueConstraint("tenant_id", "party_kind", "party_id"),
        CheckConstraint("party_kind IN ('customer', 'merchant')", name="party_kind_known"),
        CheckConstraint("declared_income_amount >= 0", name="income_non_negative"),
        Index("ix_credit_applicants_national_id", "tenant_id", "national_id_index"),
        Index("ix_credit_applicants_phone", "tenant_id", "phone_index"),
        Index("ix_credit_applicants_bank_account", "tenant_id", "bank_account_index"),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id"))
    party_kind: Mapped[str] = mapped_column(String(16))
    # No foreign key: customers and merchants belong to payments, which the service asks before inserting.
    party_id: Mapped[str] = mapped_column(String(40))
    #: Monthly income (a merchant: monthly revenue) as declared by the applicant.
    declared_income_amount: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    employment: Mapped[str] = mapped_column(String(20))
    national_id_sealed: Mapped[str] = mapped_column(Text)
    national_id_index: Mapped[str] = mapped_column(String(64))
    national_id_last4: Mapped[str] = mapped_column(String(4))
    phone_sealed: Mapped[str | None] = mapped_column(Text, nullable=True)
    phone_index: Mapped[str | None] = mapped_column(String(64), nullable=True)
    phone_last4: Mapped[str | None] = mapped_column(String(4), nullable=True)
    bank_account_sealed: Mapped[str | None] = mapped_column(Text, nullable=True)
    bank_account_index: Mapped[str | None] = mapped_column(String(64), nullable=True)
    bank_account_last4: Mapped[str | None] = mapped_column(String(4), nullable=True)
    #: Set when another applicant shares a national id, phone or bank account ("duplicate_national_id", ...).
    flags: Mapped[list[str]] = mapped_column(Json)
    created_by: Mapped[str] = mapped_column(String(60))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class Consent(Base):
    """An applicant's consent to a use of their data (a bureau pull needs one covering ``bureau_report``)."""

    __tablename__ = "credit_consents"
    __table_args__ = (
        CheckConstraint("expires_at > given_at", name="expires_after_given"),
        Index("ix_credit_consents_applicant", "tenant_id", "applicant_id", "id"),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id"))
    applicant_id: Mapped[str] = mapped_column(ForeignKey("credit_applicants.id"))
    purpose: Mapped[str] = mapped_column(String(40))
    #: What the consent covers: "bureau_report", "behaviour_data".
    scope: Mapped[list[str]] = mapped_column(Json)
    #: How it was given ("app", "web", "paper", "call") and a reference to the evidence (a document hash).
    channel: Mapped[str] = mapped_column(String(20))
    evidence: Mapped[str] = mapped_column(String(200))
    given_at: Mapped[datetime] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    created_by: Mapped[str] = mapped_column(String(60))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class BureauReport(Base):
    """One pull from a credit bureau: recorded before the call (pending), completed or failed after it."""

    __tablename__ = "credit_bureau_reports"
    __table_args__ = (
        CheckConstraint("status IN ('pending', 'completed', 'failed')", name="status_known"),
        CheckConstraint("open_loan_balance_amount IS NULL OR open_loan_balance_amount >= 0",
                        name="balance_non_negative"),
        Index("ix_credit_bureau_reports_applicant", "tenant_id", "applicant_id", "requested_at"),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id"))
    applicant_id: Mapped[str] = mapped_column(ForeignKey("credit_applicants.id"))
    consent_id: Mapped[str] = mapped_column(ForeignKey("credit_consents.id"))
    provider: Mapped[str] = mapped_column(String(40))
    status: Mapped[str] = mapped_column(String(12))
    requested_at: Mapped[datetime] = mapped_column(UTCDateTime)
    received_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    latency_ms: Mapped[int | None] = mapped_column(Integer, nullable=True)
    provider_reference: Mapped[str | None] = mapped_column(String(100), nullable=True)
    #: The summary the features read; the detail (loans, enquiries, delinquencies) is in ``report``.
    bureau_score: Mapped[int | None] = mapped_column(Integer, nullable=True)
    is_thin_file: Mapped[bool | None] = mapped_column(Boolean, nullable=True)
    open_loans: Mapped[int | None] = mapped_column(Integer, nullable=True)
    open_loan_balance_amount: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    currency: Mapped[str | None] = mapped_column(String(3), nullable=True)
    enquiries_30d: Mapped[int | None] = mapped_column(Integer, nullable=True)
    enquiries_90d: Mapped[int | None] = mapped_column(Integer, nullable=True)
    delinquencies_24m: Mapped[int | None] = mapped_column(Integer, nullable=True)
    report: Mapped[dict[str, Any] | None] = mapped_column(Json, nullable=True)
    error_code: Mapped[str | None] = mapped_column(String(100), nullable=True)
    error_message: Mapped[str | None] = mapped_column(String(500), nullable=True)
    created_by: Mapped[str] = mapped_column(String(60))


class CreditModel(Base):
    """A trained credit model: a scorecard (bin/points tables) or a gradient-boosting challenger (LightGBM's
    JSON dump, trimmed to what scoring reads)."""

    __tablename__ = "credit_models"
    __table_args__ = (
        UniqueConstraint("tenant_id", "name", "version", "kind"),
        CheckConstraint("kind IN ('scorecard', 'gbm')", name="kind_known"),
        CheckConstraint("status IN ('draft', 'challenger', 'champion', 'retired')", name="status_known"),
        CheckConstraint("version >= 1", name="version_positive"),
        Index("ix_credit_models_tenant_status", "tenant_id", "name", "status"),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id"))
    #: The name scoring asks for ("applicant"); the two kinds trained in one run share name and version.
    name: Mapped[str] = mapped_column(String(40))
    version: Mapped[int] = mapped_column(Integer)
    kind: Mapped[str] = mapped_column(String(12))
    status: Mapped[str] = mapped_column(String(12))
    #: What it was trained on: "german" (the German credit data), "platform" (simulated applicants).
    dataset: Mapped[str] = mapped_column(String(40))
    #: Input features in order, with their kind (numerical or categorical).
    features: Mapped[list[dict[str, Any]]] = mapped_column(Json)
    #: The scorecard's bins and points per feature; for the GBM, the encoding (categorical WoE) and trees.
    tables: Mapped[dict[str, Any]] = mapped_column(Json)
    #: SHA-256 of the canonical JSON of ``tables``: the in-process cache key.
    digest: Mapped[str] = mapped_column(String(64))
    #: {"base_points", "base_odds", "pdo"} (decimal strings): the points scale of both kinds.
    scaling: Mapped[dict[str, Any]] = mapped_column(Json)
    #: Held-out AUC, KS, Gini, row counts; the information value of every feature.
    metrics: Mapped[dict[str, Any]] = mapped_column(Json)
    params: Mapped[dict[str, Any]] = mapped_column(Json)
    #: Bin edges and shares of the training scores, for the population stability index.
    reference: Mapped[dict[str, Any]] = mapped_column(Json)
    data_from: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    data_to: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    drift: Mapped[dict[str, Any] | None] = mapped_column(Json, nullable=True)
    drift_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    created_by: Mapped[str] = mapped_column(String(60))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    promoted_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    retired_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


class CreditScore(Base):
    """One score of an applicant by a model: the score of record (the champion's), its rating and reasons,
    the features it read, and the challenger's score beside it."""

    __tablename__ = "credit_scores"
    __table_args__ = (
        UniqueConstraint("tenant_id", "applicant_id", "model_name", "batch_month"),
        CheckConstraint("mode IN ('real_time', 'batch')", name="mode_known"),
        CheckConstraint("rating IN ('A', 'B', 'C', 'D', 'reject')", name="rating_known"),
        CheckConstraint("(mode = 'batch') = (batch_month IS NOT NULL)", name="batch_has_month"),
        Index("ix_credit_scores_applicant", "tenant_id", "applicant_id", "scored_at"),
        Index("ix_credit_scores_model", "tenant_id", "model_id", "scored_at"),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id"))
    applicant_id: Mapped[str] = mapped_column(ForeignKey("credit_applicants.id"))
    model_id: Mapped[str] = mapped_column(ForeignKey("credit_models.id"))
    model_name: Mapped[str] = mapped_column(String(40))
    model_version: Mapped[int] = mapped_column(Integer)
    model_kind: Mapped[str] = mapped_column(String(12))
    score: Mapped[int] = mapped_column(Integer)
    #: The model's probability of default, rounded half-even to 6 places.
    probability: Mapped[Decimal] = mapped_column(ExactDecimal)
    rating: Mapped[str] = mapped_column(String(8))
    reasons: Mapped[list[dict[str, Any]]] = mapped_column(Json)
    features: Mapped[dict[str, Any]] = mapped_column(Json)
    #: {"model_id", "version", "kind", "score", "rating", "probability"} of the challenger, when there is one.
    challenger: Mapped[dict[str, Any] | None] = mapped_column(Json, nullable=True)
    mode: Mapped[str] = mapped_column(String(12))
    #: "2026-03" for a monthly batch score; NULL for a real-time one.
    batch_month: Mapped[str | None] = mapped_column(String(7), nullable=True)
    #: The instant the behaviour features were computed as of.
    as_of: Mapped[datetime] = mapped_column(UTCDateTime)
    scored_at: Mapped[datetime] = mapped_column(UTCDateTime)


class RatingPolicy(Base):
    """A tenant's score bands: the lowest score of ratings A, B, C and D; below D's is a reject."""

    __tablename__ = "credit_rating_policies"

    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id"), primary_key=True)
    #: [{"rating": "A", "min_score": 620}, ...] from A to D, strictly decreasing.
    bands: Mapped[list[dict[str, Any]]] = mapped_column(Json)
    updated_by: Mapped[str] = mapped_column(String(60))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


# ---------------------------------------------------------------------------------------------- products and limits


class LoanProduct(Base):
    """One version of a loan product: its pricing and servicing terms, configured through the API or CLI.

    A version never changes once written, apart from its status: revising a product writes version n + 1 of
    the same code (the previous one becomes ``superseded``), so a loan made under ``lpr_...`` keeps its terms.
    """

    __tablename__ = "credit_products"
    __table_args__ = (
        UniqueConstraint("tenant_id", "code", "version"),
        CheckConstraint("status IN ('active', 'superseded', 'retired')", name="status_known"),
        CheckConstraint("kind IN ('installment', 'bnpl', 'cash', 'revolving')", name="kind_known"),
        CheckConstraint("version >= 1", name="version_positive"),
        CheckConstraint("rate >= 0 AND penalty_rate >= 0", name="rates_non_negative"),
        CheckConstraint("grace_days >= 0", name="grace_days_non_negative"),
        CheckConstraint("min_term >= 1 AND max_term >= min_term", name="terms_ordered"),
        CheckConstraint("min_principal_amount >= 1 AND max_principal_amount >= min_principal_amount",
                        name="principal_ordered"),
        CheckConstraint("upfront_fee_amount >= 0 AND installment_fee_amount >= 0 AND late_fee_amount >= 0 "
                        "AND write_off_below_amount >= 0", name="fees_non_negative"),
        Index("ix_credit_products_code", "tenant_id", "code", "status"),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id"))
    #: The product's stable name across versions ("phone_bnpl_3").
    code: Mapped[str] = mapped_column(String(40))
    version: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(12))
    kind: Mapped[str] = mapped_column(String(12))
    name: Mapped[str] = mapped_column(String(100))
    description: Mapped[str] = mapped_column(String(500))
    currency: Mapped[str] = mapped_column(String(3))
    method: Mapped[str] = mapped_column(String(20))
    #: The nominal rate per ``rate_basis`` ("annual" or "daily"); for buy-now-pay-later, the rate the subsidy
    #: pays (the customer pays none).
    rate: Mapped[Decimal] = mapped_column(ExactDecimal)
    rate_basis: Mapped[str] = mapped_column(String(8))
    day_count: Mapped[str | None] = mapped_column(String(16), nullable=True)
    term_unit: Mapped[str] = mapped_column(String(8))
    #: The offered terms when they are a list (3, 6, 12, 24); NULL when every term from min to max is offered.
    terms: Mapped[list[int] | None] = mapped_column(Json, nullable=True)
    min_term: Mapped[int] = mapped_column(Integer)
    max_term: Mapped[int] = mapped_column(Integer)
    min_principal_amount: Mapped[int] = mapped_column(BigInteger)
    max_principal_amount: Mapped[int] = mapped_column(BigInteger)
    rounding: Mapped[str] = mapped_column(String(12))
    upfront_fee_rate: Mapped[Decimal] = mapped_column(ExactDecimal)
    upfront_fee_amount: Mapped[int] = mapped_column(BigInteger)
    installment_fee_rate: Mapped[Decimal] = mapped_column(ExactDecimal)
    installment_fee_amount: Mapped[int] = mapped_column(BigInteger)
    late_fee_amount: Mapped[int] = mapped_column(BigInteger)
    #: Overdue interest, per ``rate_basis``, from the end of the grace days.
    penalty_rate: Mapped[Decimal] = mapped_column(ExactDecimal)
    grace_days: Mapped[int] = mapped_column(Integer)
    #: The order a repayment pays the components owed: a permutation of penalty, fees, interest, principal.
    allocation_order: Mapped[list[str]] = mapped_column(Json)
    #: "free", "fee" (``prepayment_fee_rate`` of the principal repaid early) or "not_allowed".
    prepayment: Mapped[str] = mapped_column(String(12))
    prepayment_fee_rate: Mapped[Decimal] = mapped_column(ExactDecimal)
    write_off_after_days: Mapped[int] = mapped_column(Integer)
    write_off_below_amount: Mapped[int] = mapped_column(BigInteger)
    #: Who pays a buy-now-pay-later product's interest: "merchant" (a service fee of ``merchant_fee_rate``) or
    #: "platform" (a marketing expense); NULL for the other kinds.
    subsidy_payer: Mapped[str | None] = mapped_column(String(12), nullable=True)
    merchant_fee_rate: Mapped[Decimal | None] = mapped_column(ExactDecimal, nullable=True)
    #: The sub-limit of a credit line that loans of this product draw on.
    limit_group: Mapped[str] = mapped_column(String(40))
    #: Whether repaying a loan of this product gives its sub-limit back (revolving).
    restores_limit: Mapped[bool] = mapped_column(Boolean)
    created_by: Mapped[str] = mapped_column(String(60))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    superseded_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    retired_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


class CreditLine(Base):
    """An applicant's overall credit line: a limit, what is reserved for pending loans and what is used, in
    the applicant's currency. An off-balance-sheet commitment: nothing here is posted to the ledger."""

    __tablename__ = "credit_lines"
    __table_args__ = (
        UniqueConstraint("tenant_id", "applicant_id"),
        CheckConstraint("status IN ('active', 'frozen', 'closed')", name="status_known"),
        CheckConstraint("limit_amount >= 0 AND reserved_amount >= 0 AND used_amount >= 0",
                        name="amounts_non_negative"),
        CheckConstraint("on_time_repayments >= 0 AND overdue_days >= 0", name="counters_non_negative"),
        Index("ix_credit_lines_review", "tenant_id", "reviewed_on"),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id"))
    applicant_id: Mapped[str] = mapped_column(ForeignKey("credit_applicants.id"))
    currency: Mapped[str] = mapped_column(String(3))
    status: Mapped[str] = mapped_column(String(12))
    #: "overdue" or "manual" while frozen.
    frozen_reason: Mapped[str | None] = mapped_column(String(12), nullable=True)
    limit_amount: Mapped[int] = mapped_column(BigInteger)
    reserved_amount: Mapped[int] = mapped_column(BigInteger)
    used_amount: Mapped[int] = mapped_column(BigInteger)
    #: The need the applicant stated, a cap on every calculation of this line.
    requested_amount: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    #: Consecutive repayments on time (a late one starts the count again).
    on_time_repayments: Mapped[int] = mapped_column(Integer)
    #: Days past due of the applicant's most overdue installment, as servicing last reported (0: none).
    overdue_days: Mapped[int] = mapped_column(Integer)
    #: The last calculation: inputs, factors with their effect, the result.
    calculation: Mapped[dict[str, Any]] = mapped_column(Json)
    reviewed_on: Mapped[date] = mapped_column(Date)
    version: Mapped[int] = mapped_column(Integer)
    created_by: Mapped[str] = mapped_column(String(60))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class CreditSubLimit(Base):
    """A product limit under a credit line (buy-now-pay-later, cash loans ... managed separately)."""

    __tablename__ = "credit_sub_limits"
    __table_args__ = (
        CheckConstraint("status IN ('active', 'frozen')", name="status_known"),
        CheckConstraint("limit_amount >= 0 AND reserved_amount >= 0 AND used_amount >= 0",
                        name="amounts_non_negative"),
    )

    line_id: Mapped[str] = mapped_column(ForeignKey("credit_lines.id"), primary_key=True)
    limit_group: Mapped[str] = mapped_column(String(40), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id"))
    status: Mapped[str] = mapped_column(String(12))
    limit_amount: Mapped[int] = mapped_column(BigInteger)
    reserved_amount: Mapped[int] = mapped_column(BigInteger)
    used_amount: Mapped[int] = mapped_column(BigInteger)
    #: Repayment gives the sub-limit back (a revolving group); otherwise it counts what was ever drawn.
    is_revolving: Mapped[bool] = mapped_column(Boolean)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class CreditLimitChange(Base):
    """One change of a line's or sub-limit's limit or status, with its reason and actor."""

    __tablename__ = "credit_limit_changes"
    __table_args__ = (
        CheckConstraint("kind IN ('granted', 'raised', 'lowered', 'frozen', 'unfrozen')", name="kind_known"),
        Index("ix_credit_limit_changes_line", "tenant_id", "line_id", "id"),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id"))
    line_id: Mapped[str] = mapped_column(ForeignKey("credit_lines.id"))
    #: NULL: the overall line; otherwise the sub-limit's group.
    limit_group: Mapped[str | None] = mapped_column(String(40), nullable=True)
    kind: Mapped[str] = mapped_column(String(12))
    #: "calculation", "on_time_repayments", "overdue", "periodic_review", "cured", "manual".
    reason: Mapped[str] = mapped_column(String(40))
    note: Mapped[str] = mapped_column(String(500))
    before_amount: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    after_amount: Mapped[int] = mapped_column(BigInteger)
    before_status: Mapped[str | None] = mapped_column(String(12), nullable=True)
    after_status: Mapped[str] = mapped_column(String(12))
    #: The factors behind a calculated change, or the event behind a policy change.
    details: Mapped[dict[str, Any]] = mapped_column(Json)
    business_date: Mapped[date | None] = mapped_column(Date, nullable=True)
    actor: Mapped[str] = mapped_column(String(60))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class CreditLineEvent(Base):
    """What a loan or servicing did to a line: reserve, consume, release, restore; an on-time or late
    repayment; an overdue report. The caller's reference makes each call happen once."""

    __tablename__ = "credit_line_events"
    __table_args__ = (
        UniqueConstraint("tenant_id", "line_id", "kind", "reference"),
        CheckConstraint("kind IN ('reserve', 'consume', 'release', 'restore', 'on_time', 'late', 'overdue')",
                        name="kind_known"),
        CheckConstraint("amount >= 0", name="amount_non_negative"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id"))
    line_id: Mapped[str] = mapped_column(ForeignKey("credit_lines.id"))
    kind: Mapped[str] = mapped_column(String(12))
    reference: Mapped[str] = mapped_column(String(100))
    limit_group: Mapped[str | None] = mapped_column(String(40), nullable=True)
    amount: Mapped[int] = mapped_column(BigInteger)
    days_past_due: Mapped[int | None] = mapped_column(Integer, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class LimitPolicy(Base):
    """A tenant's limit policy (income multiples, caps, cuts, shares, adjustment rules); the defaults until set."""

    __tablename__ = "credit_limit_policies"

    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id"), primary_key=True)
    policy: Mapped[dict[str, Any]] = mapped_column(Json)
    updated_by: Mapped[str] = mapped_column(String(60))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


# ---------------------------------------------------------------------------------------------- applications


class LoanApplication(Base):
    """One application for a loan of a product version, decided automatically (or on review) in the
    transaction that submitted it, with the reasons the applicant sees and the internal ones behind them.

    ``auto_outcome`` is what the automatic review said (approve, decline or review); ``final_outcome`` is the
    decision of record (NULL while a review is open). ``reserved_amount`` is the limit held under the
    application's id (released on decline, cancel or expiry)."""

    __tablename__ = "credit_applications"
    __table_args__ = (
        CheckConstraint("status IN ('submitted', 'in_review', 'approved', 'declined', 'contract_signed', "
                        "'cancelled', 'expired')", name="status_known"),
        CheckConstraint("auto_outcome IN ('approve', 'decline', 'review')", name="auto_outcome_known"),
        CheckConstraint("final_outcome IS NULL OR final_outcome IN ('approve', 'decline')",
                        name="final_outcome_known"),
        CheckConstraint("principal_amount >= 1 AND reserved_amount >= 0 AND term >= 1", name="amounts_positive"),
        CheckConstraint("latency_us >= 0", name="latency_non_negative"),
        Index("ix_credit_applications_applicant", "tenant_id", "applicant_id", "submitted_at"),
        Index("ix_credit_applications_national_id", "tenant_id", "national_id_index", "submitted_at"),
        Index("ix_credit_applications_submitted", "tenant_id", "submitted_at"),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id"))
    applicant_id: Mapped[str] = mapped_column(ForeignKey("credit_applicants.id"))
    #: The applicant's national id blind index, copied so duplicates across applicants are found by index.
    national_id_index: Mapped[str] = mapped_column(String(64))
    product_id: Mapped[str] = mapped_column(ForeignKey("credit_products.id"))
    product_code: Mapped[str] = mapped_column(String(40))
    principal_amount: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    term: Mapped[int] = mapped_column(Integer)
    term_unit: Mapped[str] = mapped_column(String(8))
    purpose: Mapped[str] = mapped_column(String(20))
    status: Mapped[str] = mapped_column(String(16))
    auto_outcome: Mapped[str] = mapped_column(String(8))
    final_outcome: Mapped[str | None] = mapped_column(String(8), nullable=True)
    #: [{"code", "message"}]: what the applicant may be shown, stable codes.
    reasons: Mapped[list[dict[str, Any]]] = mapped_column(Json)
    #: The checks behind the outcome: score, risk decision, availability, multi-borrowing counts, policy.
    details: Mapped[dict[str, Any]] = mapped_column(Json)
    score_id: Mapped[str | None] = mapped_column(String(40), nullable=True)
    score: Mapped[int | None] = mapped_column(Integer, nullable=True)
    rating: Mapped[str | None] = mapped_column(String(8), nullable=True)
    risk_decision_id: Mapped[str | None] = mapped_column(String(40), nullable=True)
    case_id: Mapped[str | None] = mapped_column(String(40), nullable=True)
    reserved_amount: Mapped[int] = mapped_column(BigInteger)
    #: The automatic review's wall time (perf_counter), microseconds.
    latency_us: Mapped[int] = mapped_column(BigInteger)
    submitted_at: Mapped[datetime] = mapped_column(UTCDateTime)
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    created_by: Mapped[str] = mapped_column(String(60))
    version: Mapped[int] = mapped_column(Integer)


class ApplicationPolicy(Base):
    """A tenant's automatic-review thresholds (multi-borrowing, score age, expiry); the defaults until set."""

    __tablename__ = "credit_application_policies"

    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id"), primary_key=True)
    policy: Mapped[dict[str, Any]] = mapped_column(Json)
    updated_by: Mapped[str] = mapped_column(String(60))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class LoanContract(Base):
    """The loan agreement of an approved application: the rendered document, its SHA-256, and once signed, the
    acceptance (time, the hash the applicant saw, channel, IP). Never changes after signing."""

    __tablename__ = "credit_contracts"
    __table_args__ = (
        UniqueConstraint("tenant_id", "application_id"),
        CheckConstraint("status IN ('issued', 'signed', 'void')", name="status_known"),
        CheckConstraint("(status = 'signed') = (accepted_at IS NOT NULL)", name="signed_has_acceptance"),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id"))
    application_id: Mapped[str] = mapped_column(ForeignKey("credit_applications.id"))
    template: Mapped[str] = mapped_column(String(60))
    document: Mapped[str] = mapped_column(Text)
    sha256: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(8))
    start_on: Mapped[date] = mapped_column(Date)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    accepted_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    accepted_sha256: Mapped[str | None] = mapped_column(String(64), nullable=True)
    accepted_channel: Mapped[str | None] = mapped_column(String(12), nullable=True)
    accepted_ip: Mapped[str | None] = mapped_column(String(45), nullable=True)


class FundingSource(Base):
    """Where the money of a loan comes from: the tenant's own reserve account or a partner bank, with its cost of
    funds (an annual rate), its quota and how much of it is lent out (``used_amount``, never above the quota).

    The daily cost accrual keeps its running state here: ``accrual_base`` is the exact sum, over the days accrued,
    of the outstanding funded principal times the rate (cost = base / 365), ``accrued_amount`` what the ledger
    holds so far, ``accrued_through`` the last business date accrued."""

    __tablename__ = "credit_funding_sources"
    __table_args__ = (
        UniqueConstraint("tenant_id", "code"),
        CheckConstraint("kind IN ('own_reserve', 'partner_bank')", name="kind_known"),
        CheckConstraint("annual_rate >= 0", name="rate_non_negative"),
        CheckConstraint("quota_amount >= 0 AND used_amount >= 0 AND used_amount <= quota_amount",
                        name="quota_respected"),
        CheckConstraint("accrued_amount >= 0", name="accrued_non_negative"),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id"))
    code: Mapped[str] = mapped_column(String(40))
    name: Mapped[str] = mapped_column(String(100))
    kind: Mapped[str] = mapped_column(String(16))
    currency: Mapped[str] = mapped_column(String(3))
    annual_rate: Mapped[Decimal] = mapped_column(ExactDecimal)
    quota_amount: Mapped[int] = mapped_column(BigInteger)
    used_amount: Mapped[int] = mapped_column(BigInteger)
    active: Mapped[bool] = mapped_column(Boolean)
    accrual_base: Mapped[Decimal] = mapped_column(ExactDecimal)
    accrued_amount: Mapped[int] = mapped_column(BigInteger)
    accrued_through: Mapped[date | None] = mapped_column(Date, nullable=True)
    created_by: Mapped[str] = mapped_column(String(60))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class Loan(Base):
    """A loan made from a signed contract: one per application, whatever became of its disbursement."""

    __tablename__ = "credit_loans"
    __table_args__ = (
        UniqueConstraint("tenant_id", "application_id"),
        CheckConstraint("status IN ('pending_disbursement', 'disbursing', 'active', 'failed')", name="status_known"),
        CheckConstraint("target IN ('customer_account', 'merchant')", name="target_known"),
        CheckConstraint("principal_amount >= 1 AND merchant_fee_amount >= 0", name="amounts_positive"),
        Index("ix_credit_loans_source", "tenant_id", "funding_source_id", "status"),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id"))
    application_id: Mapped[str] = mapped_column(ForeignKey("credit_applications.id"))
    applicant_id: Mapped[str] = mapped_column(ForeignKey("credit_applicants.id"))
    product_id: Mapped[str] = mapped_column(ForeignKey("credit_products.id"))
    principal_amount: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    schedule: Mapped[dict[str, Any]] = mapped_column(Json)
    funding_source_id: Mapped[str] = mapped_column(ForeignKey("credit_funding_sources.id"))
    #: Why this source: every candidate considered, with its rate and remaining quota, and the rule applied.
    funding_choice: Mapped[dict[str, Any]] = mapped_column(Json)
    target: Mapped[str] = mapped_column(String(16))
    merchant_id: Mapped[str | None] = mapped_column(String(40), nullable=True)
    merchant_fee_amount: Mapped[int] = mapped_column(BigInteger)
    status: Mapped[str] = mapped_column(String(24))
    mode: Mapped[str] = mapped_column(String(8))
    #: The funding and disbursement entries, reversed when the disbursement fails.
    entry_ids: Mapped[list[str]] = mapped_column(Json)
    failure_code: Mapped[str | None] = mapped_column(String(40), nullable=True)
    created_by: Mapped[str] = mapped_column(String(60))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    disbursed_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


class Disbursement(Base):
    """One attempt to pay a loan out: what the bank was asked and what it answered."""

    __tablename__ = "credit_disbursements"
    __table_args__ = (
        CheckConstraint("status IN ('sending', 'succeeded', 'failed', 'unknown', 'booked')", name="status_known"),
        Index("ix_credit_disbursements_loan", "tenant_id", "loan_id"),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id"))
    loan_id: Mapped[str] = mapped_column(ForeignKey("credit_loans.id"))
    amount: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    status: Mapped[str] = mapped_column(String(12))
    bank_reference: Mapped[str | None] = mapped_column(String(80), nullable=True)
    error_code: Mapped[str | None] = mapped_column(String(60), nullable=True)
    queried: Mapped[bool] = mapped_column(Boolean)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    completed_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


class DisbursementPolicy(Base):
    """Whether a tenant's signed applications are disbursed automatically (by ``credit.disburse_signed``)."""

    __tablename__ = "credit_disbursement_policies"

    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id"), primary_key=True)
    automatic: Mapped[bool] = mapped_column(Boolean)
    updated_by: Mapped[str] = mapped_column(String(60))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)
