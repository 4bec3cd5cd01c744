"""Wire models of the portfolio API: amounts are integers of minor units, rates and shares decimal strings (None
where the denominator is zero). The operating cost policy is written whole; its rate is a decimal string."""

from __future__ import annotations

from datetime import date
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from finloop.api.types import CurrencyCode


class _Read(BaseModel):
    model_config = ConfigDict(extra="forbid")


class BucketRead(_Read):
    bucket: str
    loans: int
    principal_outstanding: int
    rate: str | None = Field(description="The bucket's principal over the open loans' principal.")


class CurrencySummaryRead(_Read):
    currency: str
    open_loans: int
    principal_outstanding: int
    buckets: list[BucketRead]
    overdue_principal: int
    overdue_rate: str | None = Field(description="M1 to M4 principal over the open loans' principal.")
    m4_rate: str | None = Field(description="M4 principal over the open loans' principal.")
    disbursed_loans: int
    disbursed_principal: int
    written_off_amount: int
    bad_debt_rate: str | None = Field(description="Written off over disbursed principal, cumulative.")
    limit_used_amount: int
    limit_amount: int
    limit_utilisation_rate: str | None = Field(description="Used over limit across active lines.")


class ApprovalsRead(_Read):
    decided: int
    approved: int
    declined: int
    approval_rate: str | None


class ReborrowRead(_Read):
    applicants_paid_off: int
    reborrowed: int
    reborrow_rate: str | None


class SummaryRead(_Read):
    object: str = "credit_portfolio_summary"
    as_of: date
    since: date | None
    product_code: str | None
    source: Literal["live", "month_end"] = Field(description="month_end: the book from that month's snapshots.")
    currencies: list[CurrencySummaryRead]
    applications: ApprovalsRead
    reborrow: ReborrowRead


class VintagePointRead(_Read):
    months_on_book: int
    loans_bad: int
    principal_bad: int
    rate: str | None


class VintageCurveRead(_Read):
    currency: str
    origination_month: str
    loans: int
    principal_amount: int
    points: list[VintagePointRead]


class VintageRead(_Read):
    object: str = "credit_vintage"
    threshold_dpd: int
    basis: Literal["count", "principal"]
    product_code: str | None
    currency: str | None
    from_month: str | None
    to_month: str | None
    curves: list[VintageCurveRead]


class RollRowRead(_Read):
    bucket: str
    loans: int
    principal: int
    counts: dict[str, int]
    principals: dict[str, int]
    count_shares: dict[str, str] | None
    principal_shares: dict[str, str] | None


class RollMatrixRead(_Read):
    currency: str
    rows: list[RollRowRead]


class RollRatesRead(_Read):
    object: str = "credit_roll_rates"
    month_from: str
    month_to: str
    product_code: str | None
    currency: str | None
    columns: list[str]
    unmatched_loans: int = Field(description="Loans open at a month end with no snapshot and no closing after it.")
    matrices: list[RollMatrixRead]


class PnlLinesRead(_Read):
    currency: str
    principal_amount: int
    interest_income: int
    fee_income: int
    penalty_income: int
    recoveries: int
    cost_of_funds: int
    provision: int
    credit_loss: int
    operating_cost: int
    income: int
    net_profit: int
    margin_rate: str | None = Field(description="Net profit over principal.")
    net_to_income_rate: str | None


class LoanPnlRead(PnlLinesRead):
    loan_id: str
    product_id: str
    origination_month: str
    state: str
    funding_source_id: str | None
    principal_days: int


class PortfolioPnlRead(PnlLinesRead):
    loans: int
    unallocated_cost_of_funds: int | None


class ReconciliationRead(_Read):
    currency: str
    line: str
    subledger_amount: int
    ledger_amount: int
    difference: int
    matches: bool


class PnlRead(_Read):
    object: str = "credit_pnl"
    scope: Literal["lifetime", "month"]
    month: str | None
    as_of: date
    loan_id: str | None
    product_code: str | None
    operating_cost_policy: dict[str, Any]
    cost_of_funds_rule: str
    loans: list[LoanPnlRead]
    has_more: bool = False
    next_cursor: str | None = None
    portfolio: list[PortfolioPnlRead]
    reconciliation: list[ReconciliationRead] | None


class UnitEconomicsRead(_Read):
    object: str = "credit_unit_economics"
    principal_amount: int
    currency: str
    annual_rate: str
    term_months: int
    funding_rate: str
    provision_rate: str
    operating_cost_rate: str
    bullet: PnlLinesRead
    amortising: PnlLinesRead
    amortising_balances: list[int]
    cost_of_funds_saved: int


class OperatingCostPolicyWrite(BaseModel):
    model_config = ConfigDict(extra="forbid")

    method: Literal["principal_rate", "per_loan_month"] = "principal_rate"
    annual_rate: str | None = Field(None, description="principal_rate: the annual rate of the principal, e.g. 0.01.",
                                    max_length=20)
    amounts: dict[CurrencyCode, int] | None = Field(None, description="per_loan_month: minor units per loan-month "
                                                                      "for each currency.")


class OperatingCostPolicyRead(_Read):
    object: str = "credit_operating_cost_policy"
    policy: dict[str, Any]
    is_default: bool
