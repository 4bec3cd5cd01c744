"""Wire models of loan outcomes, the labelling policy, retraining and model comparisons. Requests refuse unknown
fields; shares are decimal strings."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from finloop.credit.domain import DEFAULT_MODEL_NAME
from finloop.credit.outcomes.domain import OutcomeLabel
from finloop.credit.outcomes.models import LoanOutcome
from finloop.credit.outcomes.models import OutcomePolicy as PolicyRow
from finloop.credit.schemas import RateText


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class OutcomeRead(BaseModel):
    id: str
    object: str = "credit_loan_outcome"
    loan_id: str
    application_id: str
    applicant_id: str
    product_id: str
    score_id: str | None
    label: OutcomeLabel
    bad: bool
    currency: str
    principal_amount: int
    disbursed_on: date
    origination_month: str
    window_ends_on: date
    labelled_on: date
    closed_on: date | None
    recovered_on: date | None
    max_dpd: int
    grace_days: int
    default_dpd: int
    written_off_amount: int
    recovered_amount: int
    created_at: datetime
    updated_at: datetime


def read_outcome(row: LoanOutcome) -> OutcomeRead:
    return OutcomeRead(
        id=row.id, loan_id=row.loan_id, application_id=row.application_id, applicant_id=row.applicant_id,
        product_id=row.product_id, score_id=row.score_id, label=OutcomeLabel(row.label), bad=row.bad,
        currency=row.currency, principal_amount=row.principal_amount, disbursed_on=row.disbursed_on,
        origination_month=row.origination_month, window_ends_on=row.window_ends_on, labelled_on=row.labelled_on,
        closed_on=row.closed_on, recovered_on=row.recovered_on, max_dpd=row.max_dpd, grace_days=row.grace_days,
        default_dpd=row.default_dpd, written_off_amount=row.written_off_amount,
        recovered_amount=row.recovered_amount, created_at=row.created_at, updated_at=row.updated_at)


class LabelRun(Strict):
    as_of: date | None = Field(default=None, description="The labelling date (default: today's business date).")


class LabelRunRead(BaseModel):
    object: str = "credit_outcome_labelling"
    as_of: date
    labelled: int = Field(description="Outcomes written: new labels and defaults relabelled recovered.")
    outcomes: dict[str, int] = Field(description="All outcomes by label after the run.")


class OutcomePolicyWrite(Strict):
    """The fields to change; the rest keep their value."""

    default_dpd: int | None = Field(default=None, strict=True, description="Worst days past due that make a "
                                                                           "default (1-720).")
    window_days: int | None = Field(default=None, strict=True, description="Performance window from "
                                                                           "disbursement (30-3650 days).")
    recovery_share: RateText | None = Field(default=None, description="Recoveries over the amount written off "
                                                                      "that make a default recovered, e.g. \"1\".")


class OutcomePolicyRead(BaseModel):
    object: str = "credit_outcome_policy"
    policy: dict[str, Any]
    updated_by: str
    updated_at: datetime


def read_outcome_policy(row: PolicyRow) -> OutcomePolicyRead:
    return OutcomePolicyRead(policy=dict(row.policy), updated_by=row.updated_by, updated_at=row.updated_at)


class Retrain(Strict):
    name: str = Field(default=DEFAULT_MODEL_NAME, max_length=40, description="The model name to version.")
    holdout_share: RateText = Field(default="0.25", description="The most recent share of labelled loans kept "
                                                                "out of training for the comparison (0-0.5).")
    seed: int = Field(default=1, strict=True, ge=0, le=2**31 - 1)
    rounds: int = Field(default=200, strict=True, ge=10, le=5000, description="LightGBM boosting rounds.")
    min_iv: RateText = Field(default="0.02", description="Features below this information value stay out.")
    test_share: RateText = Field(default="0.3", description="Share of the training loans held out for the "
                                                            "models' own metrics (0.05-0.5).")


class Compare(Strict):
    against: str = Field(default="champion", min_length=1, max_length=40,
                         description="\"champion\" (of the candidate's name) or a model id.")


class ComparisonRead(BaseModel):
    model_config = ConfigDict(extra="allow")

    object: Literal["credit_model_comparison"] = "credit_model_comparison"
    candidate: dict[str, Any]
    against: dict[str, Any]
    holdout: dict[str, Any]
    psi: float
    psi_level: str
    reject_below: int
    swap_set: list[dict[str, Any]]
    recommendation: Literal["promote_candidate", "keep_champion"]
    reasons: list[str]
    compared_at: str


class RetrainRead(BaseModel):
    object: Literal["credit_retraining"] = "credit_retraining"
    name: str
    version: int
    scorecard_id: str
    gbm_id: str
    training: dict[str, Any]
    comparisons: dict[str, ComparisonRead] | None
