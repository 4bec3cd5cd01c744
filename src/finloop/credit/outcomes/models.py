"""Outcome tables: one labelled outcome per loan, and each tenant's labelling policy.

Invariants the database enforces:
- a loan has at most one outcome (unique per tenant and loan): labelling twice adds nothing;
- a label is on_time, late, default or recovered, and ``bad`` is true exactly for default;
- only a recovered outcome has a ``recovered_on`` date; amounts are minor units and never negative.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import BigInteger, Boolean, CheckConstraint, Date, ForeignKey, Index, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from finloop.db.base import Base
from finloop.db.types import Json, UTCDateTime


class LoanOutcome(Base):
    """How a loan turned out, fixed once known: the label the models learn from and the facts behind it."""

    __tablename__ = "credit_loan_outcomes"
    __table_args__ = (
        UniqueConstraint("tenant_id", "loan_id"),
        CheckConstraint("label IN ('on_time', 'late', 'default', 'recovered')", name="label_known"),
        CheckConstraint("(label = 'default') = bad", name="bad_is_default"),
        CheckConstraint("recovered_on IS NULL OR label = 'recovered'", name="recovered_on_recovered"),
        CheckConstraint("principal_amount >= 0 AND written_off_amount >= 0 AND recovered_amount >= 0 "
                        "AND max_dpd >= 0 AND grace_days >= 0", name="amounts_non_negative"),
        Index("ix_credit_loan_outcomes_label", "tenant_id", "label"),
        Index("ix_credit_loan_outcomes_disbursed", "tenant_id", "disbursed_on"),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id"))
    loan_id: Mapped[str] = mapped_column(ForeignKey("credit_loans.id"))
    application_id: Mapped[str] = mapped_column(ForeignKey("credit_applications.id"))
    applicant_id: Mapped[str] = mapped_column(ForeignKey("credit_applicants.id"))
    product_id: Mapped[str] = mapped_column(ForeignKey("credit_products.id"))
    #: The application's score: its ``features`` are what a model retrained on outcomes reads.
    score_id: Mapped[str | None] = mapped_column(String(40), nullable=True)
    label: Mapped[str] = mapped_column(String(12))
    #: For training: a default not (fully) recovered.
    bad: Mapped[bool] = mapped_column(Boolean)
    currency: Mapped[str] = mapped_column(String(3))
    principal_amount: Mapped[int] = mapped_column(BigInteger)
    #: The observation: from disbursement to the end of the performance window, labelled on ``labelled_on``.
    disbursed_on: Mapped[date] = mapped_column(Date)
    origination_month: Mapped[str] = mapped_column(String(7))
    window_ends_on: Mapped[date] = mapped_column(Date)
    labelled_on: Mapped[date] = mapped_column(Date)
    #: The account's closing date (paid off or written off) when labelled; None for a loan still open.
    closed_on: Mapped[date | None] = mapped_column(Date, nullable=True)
    recovered_on: Mapped[date | None] = mapped_column(Date, nullable=True)
    #: What decided the label: the worst days past due, the product's grace, the policy's default threshold.
    max_dpd: Mapped[int] = mapped_column(Integer)
    grace_days: Mapped[int] = mapped_column(Integer)
    default_dpd: Mapped[int] = mapped_column(Integer)
    written_off_amount: Mapped[int] = mapped_column(BigInteger)
    recovered_amount: Mapped[int] = mapped_column(BigInteger)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class OutcomePolicy(Base):
    """A tenant's labelling rules (``domain.OutcomePolicy`` as JSON); the defaults until set."""

    __tablename__ = "credit_outcome_policies"

    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id"), primary_key=True)
    policy: Mapped[dict[str, Any]] = mapped_column(Json)
    updated_by: Mapped[str] = mapped_column(String(60))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)
