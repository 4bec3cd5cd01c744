"""Wire models of the credit API. Requests refuse unknown fields; amounts are strict integers of minor units;
probabilities and rates are decimal strings (a JSON number is refused for a rate). Personal data goes in once
(creating an applicant) and only ever comes out masked: ``****`` and the last four characters."""

from __future__ import annotations

import re
from datetime import date, datetime
from decimal import Decimal
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, PlainValidator, WithJsonSchema
from pydantic_core import PydanticCustomError

from finloop.api.types import Amount, CurrencyCode, Instant, Line, NonNegativeAmount, single_line
from finloop.core.money import Rounding
from finloop.credit.daycount import DayCount
from finloop.credit.domain import (
    DEFAULT_MODEL_NAME,
    PD_PLACES,
    ApplicationPurpose,
    ApplicationStatus,
    Employment,
    ModelKind,
    ModelStatus,
    PartyKind,
    Rating,
    ScoreMode,
    masked,
)
from finloop.credit.models import (
    Applicant,
    BureauReport,
    Consent,
    CreditLimitChange,
    CreditLine,
    CreditModel,
    CreditScore,
    CreditSubLimit,
    DisbursementPolicy,
    FundingSource,
    Loan,
    LoanApplication,
    LoanContract,
    LoanProduct,
    RatingPolicy,
)
from finloop.credit.models import ApplicationPolicy as ApplicationPolicyRow
from finloop.credit.models import LimitPolicy as LimitPolicyRow
from finloop.credit.products import Prepayment, ProductKind, ProductStatus, SubsidyPayer, rates_of, spec_of
from finloop.credit.schedule import (
    EARLIEST_START,
    LATEST_START,
    MAX_DAYS,
    MAX_MONTHS,
    Method,
    RateBasis,
    Schedule,
    TermUnit,
    schedule_json,
)
from finloop.credit.service import ConsentChannel, ConsentPurpose, ConsentScope, ReportStatus

ObjectId = Annotated[Line, Field(min_length=1, max_length=40)]
ModelName = Annotated[str, Field(min_length=1, max_length=40, pattern=r"^[A-Za-z][A-Za-z0-9_]*$")]
Personal = Annotated[str, Field(min_length=1, max_length=64), AfterValidator(single_line)]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


# ---------------------------------------------------------------------------------------------- applicants


class ApplicantCreate(Strict):
    party_kind: PartyKind
    party_id: ObjectId = Field(description="The customer or merchant id (cus_..., mer_...).")
    declared_income_amount: NonNegativeAmount = Field(
        description="Monthly income (a merchant: monthly revenue) in minor units.")
    currency: CurrencyCode
    employment: Employment
    national_id: Personal = Field(description="Stored encrypted; shown only as ****1234.")
    phone: Personal | None = None
    bank_account: Personal | None = None


class ApplicantRead(BaseModel):
    id: str
    object: str = "applicant"
    party_kind: PartyKind
    party_id: str
    declared_income_amount: int
    currency: str
    employment: Employment
    national_id: str = Field(description="Masked: ****1234.")
    phone: str | None
    bank_account: str | None
    flags: list[str] = Field(description="duplicate_national_id, shared_phone, shared_bank_account.")
    duplicates: dict[str, list[str]] | None = Field(
        default=None, description="Other applicants sharing each personal value (on a single applicant's read).")
    created_at: datetime
    updated_at: datetime


def read_applicant(row: Applicant, duplicates: dict[str, list[str]] | None = None) -> ApplicantRead:
    return ApplicantRead(
        id=row.id, party_kind=PartyKind(row.party_kind), party_id=row.party_id,
        declared_income_amount=row.declared_income_amount, currency=row.currency,
        employment=Employment(row.employment), national_id=masked(row.national_id_last4) or "****",
        phone=masked(row.phone_last4), bank_account=masked(row.bank_account_last4), flags=list(row.flags),
        duplicates=duplicates, created_at=row.created_at, updated_at=row.updated_at)


# ---------------------------------------------------------------------------------------------- consents


class ConsentCreate(Strict):
    purpose: ConsentPurpose = ConsentPurpose.CREDIT_ASSESSMENT
    scope: list[ConsentScope] = Field(min_length=1, max_length=4)
    channel: ConsentChannel = ConsentChannel.APP
    evidence: Annotated[str, Field(max_length=200), AfterValidator(single_line)] = Field(
        default="", description="A reference to the evidence, e.g. the SHA-256 of the signed form.")
    given_at: Instant | None = Field(default=None, description="Default: now.")
    expires_at: Instant | None = Field(default=None, description="Default: 90 days after given_at (at most 366).")


class ConsentRead(BaseModel):
    id: str
    object: str = "credit_consent"
    applicant_id: str
    purpose: ConsentPurpose
    scope: list[ConsentScope]
    channel: ConsentChannel
    evidence: str
    given_at: datetime
    expires_at: datetime
    revoked_at: datetime | None
    is_valid: bool = Field(description="Given, not expired and not revoked, now.")
    created_at: datetime


def read_consent(row: Consent, now: datetime) -> ConsentRead:
    return ConsentRead(
        id=row.id, applicant_id=row.applicant_id, purpose=ConsentPurpose(row.purpose),
        scope=[ConsentScope(s) for s in row.scope], channel=ConsentChannel(row.channel), evidence=row.evidence,
        given_at=row.given_at, expires_at=row.expires_at, revoked_at=row.revoked_at,
        is_valid=row.revoked_at is None and row.given_at <= now < row.expires_at, created_at=row.created_at)


# ---------------------------------------------------------------------------------------------- bureau reports


class BureauPull(Strict):
    provider: Annotated[Line, Field(min_length=1, max_length=40)] = "sandbox"


class BureauReportRead(BaseModel):
    id: str
    object: str = "bureau_report"
    applicant_id: str
    consent_id: str
    provider: str
    status: ReportStatus
    requested_at: datetime
    received_at: datetime | None
    latency_ms: int | None
    provider_reference: str | None
    bureau_score: int | None
    is_thin_file: bool | None
    open_loans: int | None
    open_loan_balance_amount: int | None
    currency: str | None
    enquiries_30d: int | None
    enquiries_90d: int | None
    delinquencies_24m: int | None
    detail: dict[str, Any] | None = Field(description="Loans with balances, enquiries and delinquencies.")
    error_code: str | None
    error_message: str | None


def read_report(row: BureauReport) -> BureauReportRead:
    return BureauReportRead(
        id=row.id, applicant_id=row.applicant_id, consent_id=row.consent_id, provider=row.provider,
        status=ReportStatus(row.status), requested_at=row.requested_at, received_at=row.received_at,
        latency_ms=row.latency_ms, provider_reference=row.provider_reference, bureau_score=row.bureau_score,
        is_thin_file=row.is_thin_file, open_loans=row.open_loans, open_loan_balance_amount=row.open_loan_balance_amount,
        currency=row.currency, enquiries_30d=row.enquiries_30d, enquiries_90d=row.enquiries_90d,
        delinquencies_24m=row.delinquencies_24m, detail=row.report, error_code=row.error_code,
        error_message=row.error_message)


# ---------------------------------------------------------------------------------------------- scores


class ScoreCreate(Strict):
    model_name: ModelName = DEFAULT_MODEL_NAME


class ReasonRead(BaseModel):
    code: str
    description: str
    value: str
    points_lost: float


class ChallengerRead(BaseModel):
    model_id: str
    kind: ModelKind
    score: int
    rating: Rating
    probability: str


class ScoreRead(BaseModel):
    id: str
    object: str = "credit_score"
    applicant_id: str
    model_id: str
    model_name: str
    model_version: int
    model_kind: ModelKind
    score: int
    rating: Rating
    probability: str = Field(description="Probability of default, a decimal string with 6 places.")
    reasons: list[ReasonRead] = Field(description="The top adverse factors, largest first.")
    features: dict[str, Any]
    challenger: ChallengerRead | None
    mode: ScoreMode
    batch_month: str | None
    as_of: datetime
    scored_at: datetime


def read_score(row: CreditScore) -> ScoreRead:
    return ScoreRead(
        id=row.id, applicant_id=row.applicant_id, model_id=row.model_id, model_name=row.model_name,
        model_version=row.model_version, model_kind=ModelKind(row.model_kind), score=row.score,
        rating=Rating(row.rating), probability=str(Decimal(row.probability).quantize(PD_PLACES)),
        reasons=[ReasonRead.model_validate(r) for r in row.reasons], features=dict(row.features),
        challenger=ChallengerRead.model_validate(row.challenger) if row.challenger else None,
        mode=ScoreMode(row.mode), batch_month=row.batch_month, as_of=row.as_of, scored_at=row.scored_at)


# ---------------------------------------------------------------------------------------------- models


class ModelRead(BaseModel):
    id: str
    object: str = "credit_model"
    name: str
    version: int
    kind: ModelKind
    status: ModelStatus
    dataset: str
    features: list[dict[str, Any]]
    scaling: dict[str, Any]
    metrics: dict[str, Any] = Field(description="Held-out auc, ks, gini; iv per feature; the split.")
    params: dict[str, Any]
    data_from: datetime | None
    data_to: datetime | None
    drift: dict[str, Any] | None
    drift_at: datetime | None
    created_by: str
    created_at: datetime
    promoted_at: datetime | None
    retired_at: datetime | None


def read_model(row: CreditModel) -> ModelRead:
    return ModelRead(
        id=row.id, name=row.name, version=row.version, kind=ModelKind(row.kind), status=ModelStatus(row.status),
        dataset=row.dataset, features=list(row.features), scaling=dict(row.scaling), metrics=dict(row.metrics),
        params=dict(row.params), data_from=row.data_from, data_to=row.data_to, drift=row.drift, drift_at=row.drift_at,
        created_by=row.created_by, created_at=row.created_at, promoted_at=row.promoted_at, retired_at=row.retired_at)


class ModelPromote(Strict):
    to: Literal["champion", "challenger"]


class ScorecardBinRead(BaseModel):
    label: str
    points: float
    count: int
    woe: float
    event_rate: float


class ScorecardVariableRead(BaseModel):
    feature: str
    kind: str
    bins: list[ScorecardBinRead]
    missing_points: float
    best_points: float


class ScorecardRead(BaseModel):
    model_id: str
    scaling: dict[str, Any]
    variables: list[ScorecardVariableRead]


def read_scorecard(row: CreditModel) -> ScorecardRead:
    variables = [ScorecardVariableRead(
        feature=v["name"], kind=v["kind"], missing_points=round(v["missing_points"], 4),
        best_points=round(v["best_points"], 4),
        bins=[ScorecardBinRead(label=label, points=round(points, 4), count=count, woe=woe, event_rate=rate)
              for label, points, count, woe, rate in zip(v["labels"], v["points"], v["counts"], v["woe"],
                                                         v["event_rates"], strict=True)])
        for v in row.tables["variables"]]
    return ScorecardRead(model_id=row.id, scaling=dict(row.scaling), variables=variables)


class StabilityRead(BaseModel):
    model_id: str
    month: str | None
    since: str | None
    at: str
    scores: int
    psi: float | None
    level: str | None = Field(description="stable (< 0.1), moderate (0.1-0.25) or significant (> 0.25).")
    edges: list[float] | None = None
    expected: list[float] | None = None
    actual: list[float] | None = None


# ---------------------------------------------------------------------------------------------- rating policy


class BandWrite(Strict):
    rating: Literal["A", "B", "C", "D"]
    min_score: Annotated[int, Field(strict=True, ge=-100_000, le=100_000)]


class RatingPolicyWrite(Strict):
    bands: list[BandWrite] = Field(min_length=4, max_length=4,
                                   description="A, B, C and D in order, strictly decreasing min_score; below "
                                               "D's is a reject.")


class RatingPolicyRead(BaseModel):
    object: str = "credit_rating_policy"
    bands: list[dict[str, Any]]
    updated_by: str
    updated_at: datetime


def read_policy(row: RatingPolicy) -> RatingPolicyRead:
    return RatingPolicyRead(bands=list(row.bands), updated_by=row.updated_by, updated_at=row.updated_at)



# ---------------------------------------------------------------------------------------------- products

RATE_PATTERN = r"^[0-9]{1,6}(\.[0-9]{1,12})?$"


def _rate_text(value: Any) -> str:
    if not isinstance(value, str) or not re.match(RATE_PATTERN, value):
        raise PydanticCustomError("invalid_rate", "Rates are decimal strings such as \"0.18\" (up to 12 places; "
                                                  "never a JSON number).")
    return value


RateText = Annotated[str, PlainValidator(_rate_text),
                     WithJsonSchema({"type": "string", "pattern": RATE_PATTERN, "examples": ["0.18"],
                                     "description": "A decimal fraction as a string: \"0.18\" is 18%."})]
Code = Annotated[str, Field(min_length=1, max_length=40, pattern=r"^[a-z][a-z0-9_]*$")]
Term = Annotated[int, Field(strict=True, ge=1, le=MAX_MONTHS + MAX_DAYS)]
Text100 = Annotated[str, Field(min_length=1, max_length=100), AfterValidator(single_line)]
Text500 = Annotated[str, Field(max_length=500), AfterValidator(single_line)]
Days = Annotated[int, Field(strict=True, ge=0, le=3650)]
PreviewDate = Annotated[date, Field(ge=EARLIEST_START, le=LATEST_START)]


class Component(StrEnum):
    PENALTY = "penalty"
    FEES = "fees"
    INTEREST = "interest"
    PRINCIPAL = "principal"


class ProductFields(Strict):
    """The product's terms; every field but code, kind, name, currency, rate, the terms and the principal bounds
    has a default (see ``docs/credit-products.md``)."""

    name: Text100 | None = None
    description: Text500 | None = None
    method: Method | None = Field(default=None, description="Default: the kind's first method.")
    rate: RateText | None = Field(default=None, description="Per rate_basis; buy-now-pay-later: the rate the "
                                                            "subsidy pays (the customer pays none).")
    rate_basis: RateBasis | None = Field(default=None, description="annual (default) or daily (cash loans).")
    day_count: DayCount | None = None
    terms: Annotated[list[Term], Field(min_length=1, max_length=36)] | None = Field(
        default=None, description="The offered terms (months, or days for cash loans); or give min_term and "
                                  "max_term.")
    min_term: Term | None = None
    max_term: Term | None = None
    min_principal_amount: Amount | None = None
    max_principal_amount: Amount | None = None
    rounding: Rounding | None = None
    upfront_fee_rate: RateText | None = None
    upfront_fee_amount: NonNegativeAmount | None = None
    installment_fee_rate: RateText | None = None
    installment_fee_amount: NonNegativeAmount | None = None
    late_fee_amount: NonNegativeAmount | None = None
    penalty_rate: RateText | None = Field(default=None, description="Overdue interest, per rate_basis.")
    grace_days: Annotated[int, Field(strict=True, ge=-1000, le=1000)] | None = None
    allocation_order: Annotated[list[Component], Field(min_length=1, max_length=4)] | None = None
    prepayment: Prepayment | None = None
    prepayment_fee_rate: RateText | None = None
    write_off_after_days: Annotated[int, Field(strict=True, ge=-100_000, le=100_000)] | None = None
    write_off_below_amount: NonNegativeAmount | None = None
    subsidy_payer: SubsidyPayer | None = Field(default=None, description="Buy-now-pay-later: who pays the "
                                                                         "interest (merchant or platform).")
    merchant_fee_rate: RateText | None = None
    limit_group: Code | None = Field(default=None, description="The credit line's sub-limit (default: the kind).")
    restores_limit: bool | None = Field(default=None, description="Repayment gives the sub-limit back.")


class ProductCreate(ProductFields):
    code: Code
    kind: ProductKind
    currency: CurrencyCode


class ProductRevise(ProductFields):
    """The fields to change; the rest keep the current version's value. code, kind and currency never change."""

    code: Code | None = None
    kind: ProductKind | None = None
    currency: CurrencyCode | None = None


class ProductRateRead(BaseModel):
    term: int
    principal_amount: int
    total_repaid_amount: int
    apr: str
    effective_annual_rate: str


class ProductRead(BaseModel):
    id: str
    object: str = "loan_product"
    code: str
    version: int
    status: ProductStatus
    kind: ProductKind
    name: str
    description: str
    currency: str
    method: Method
    rate: str
    rate_basis: RateBasis
    customer_rate: str = Field(description="What the customer pays: 0 for buy-now-pay-later.")
    day_count: DayCount | None
    term_unit: TermUnit
    terms: list[int] | None
    min_term: int
    max_term: int
    min_principal_amount: int
    max_principal_amount: int
    rounding: Rounding
    upfront_fee_rate: str
    upfront_fee_amount: int
    installment_fee_rate: str
    installment_fee_amount: int
    late_fee_amount: int
    penalty_rate: str
    grace_days: int
    allocation_order: list[str]
    prepayment: Prepayment
    prepayment_fee_rate: str
    write_off_after_days: int
    write_off_below_amount: int
    subsidy_payer: SubsidyPayer | None
    merchant_fee_rate: str | None
    limit_group: str
    restores_limit: bool
    rates: list[ProductRateRead] = Field(description="APR and effective annual rate of each offered term (a "
                                                     "range: its shortest and longest) at a reference principal.")
    created_by: str
    created_at: datetime
    superseded_at: datetime | None
    retired_at: datetime | None


def read_product(row: LoanProduct) -> ProductRead:
    spec = spec_of(row)

    def rate(name: str) -> str:
        return str(spec[name])

    return ProductRead(
        id=row.id, code=row.code, version=row.version, status=ProductStatus(row.status), kind=ProductKind(row.kind),
        name=row.name, description=row.description, currency=row.currency, method=Method(row.method),
        rate=rate("rate"), rate_basis=RateBasis(row.rate_basis),
        customer_rate="0" if row.kind == ProductKind.BNPL.value else rate("rate"),
        day_count=DayCount(row.day_count) if row.day_count else None, term_unit=TermUnit(row.term_unit),
        terms=list(row.terms) if row.terms is not None else None, min_term=row.min_term, max_term=row.max_term,
        min_principal_amount=row.min_principal_amount, max_principal_amount=row.max_principal_amount,
        rounding=Rounding(row.rounding), upfront_fee_rate=rate("upfront_fee_rate"),
        upfront_fee_amount=row.upfront_fee_amount, installment_fee_rate=rate("installment_fee_rate"),
        installment_fee_amount=row.installment_fee_amount, late_fee_amount=row.late_fee_amount,
        penalty_rate=rate("penalty_rate"), grace_days=row.grace_days, allocation_order=list(row.allocation_order),
        prepayment=Prepayment(row.prepayment), prepayment_fee_rate=rate("prepayment_fee_rate"),
        write_off_after_days=row.write_off_after_days, write_off_below_amount=row.write_off_below_amount,
        subsidy_payer=SubsidyPayer(row.subsidy_payer) if row.subsidy_payer else None,
        merchant_fee_rate=rate("merchant_fee_rate") if row.merchant_fee_rate is not None else None,
        limit_group=row.limit_group, restores_limit=row.restores_limit,
        rates=[ProductRateRead.model_validate(r) for r in rates_of(row)], created_by=row.created_by,
        created_at=row.created_at, superseded_at=row.superseded_at, retired_at=row.retired_at)


# ---------------------------------------------------------------------------------------------- schedules


class SchedulePreview(Strict):
    """A schedule without an application: a product's (``product_id``), or terms stated here."""

    product_id: ObjectId | None = Field(default=None, description="Price by this product version (then give no "
                                                                  "pricing fields).")
    principal_amount: Amount
    term: Term = Field(description="Months; days for a term_unit of day.")
    start_date: PreviewDate | None = Field(default=None, description="The disbursement date (default: today's "
                                                                     "business date).")
    currency: CurrencyCode | None = None
    method: Method | None = None
    annual_rate: RateText | None = None
    daily_rate: RateText | None = None
    term_unit: TermUnit | None = None
    day_count: DayCount | None = Field(default=None, description="None: equal monthly periods (1/12 of a year).")
    rounding: Rounding | None = None
    upfront_fee_rate: RateText | None = None
    upfront_fee_amount: NonNegativeAmount | None = None
    installment_fee_rate: RateText | None = None
    installment_fee_amount: NonNegativeAmount | None = None


PRICING_FIELDS = ("currency", "method", "annual_rate", "daily_rate", "term_unit", "day_count", "rounding",
                  "upfront_fee_rate", "upfront_fee_amount", "installment_fee_rate", "installment_fee_amount")


class InstallmentDecimals(BaseModel):
    """The installment's amounts as decimal strings of major units, for display (the integers are the truth)."""

    principal: str
    interest: str
    fees: str
    total: str
    balance: str


class InstallmentRead(BaseModel):
    number: int
    due_date: date
    days: int = Field(description="Days of the period by the day count (calendar days without one).")
    principal_amount: int
    interest_amount: int
    fee_amount: int
    total_amount: int
    balance_amount: int = Field(description="Principal still owed after this installment.")
    decimal: InstallmentDecimals


class ScheduleTotalsRead(BaseModel):
    principal_amount: int
    interest_amount: int
    fee_amount: int = Field(description="Installment fees plus the upfront fee.")
    upfront_fee_amount: int
    repaid_amount: int = Field(description="The sum of the installments.")
    decimal: dict[str, str] = Field(description="The totals as decimal strings of major units, for display.")


class SubsidyRead(BaseModel):
    payer: SubsidyPayer
    amount: int = Field(description="Minor units: the merchant's service fee, or the interest the platform pays.")
    merchant_fee_rate: str | None
    interest_covered: int = Field(description="The interest the product's rate would have charged the customer.")


class ScheduleRead(BaseModel):
    object: str = "credit_schedule"
    product_id: str | None
    currency: str
    principal_amount: int
    term: int
    term_unit: TermUnit
    method: Method
    rate: str
    rate_basis: RateBasis
    day_count: DayCount | None
    rounding: Rounding
    start_date: date
    maturity_date: date
    installments: list[InstallmentRead]
    totals: ScheduleTotalsRead
    net_disbursed_amount: int = Field(description="The principal less the upfront fee.")
    periodic_rate: str = Field(description="The schedule's internal rate of return per period.")
    periods_per_year: str
    apr: str = Field(description="periodic_rate × periods_per_year (6 places).")
    effective_annual_rate: str = Field(description="(1 + periodic_rate)^periods_per_year - 1 (6 places).")
    subsidy: SubsidyRead | None = None


def read_schedule(result: Schedule, *, product_id: str | None = None,
                  subsidy: dict[str, Any] | None = None) -> ScheduleRead:
    shown = schedule_json(result)
    pricing = result.pricing
    return ScheduleRead(
        product_id=product_id, currency=result.currency, principal_amount=result.principal, term=result.term,
        term_unit=pricing.term_unit, method=pricing.method, rate=str(pricing.rate), rate_basis=pricing.rate_basis,
        day_count=pricing.day_count, rounding=pricing.rounding, start_date=result.start_on,
        maturity_date=result.maturity_on,
        installments=[InstallmentRead(number=i.number, due_date=i.due_on, days=i.days, principal_amount=i.principal,
                                      interest_amount=i.interest, fee_amount=i.fees, total_amount=i.total,
                                      balance_amount=i.balance, decimal=InstallmentDecimals.model_validate(d))
                      for i, d in zip(result.installments, shown["installments"], strict=True)],
        totals=ScheduleTotalsRead(principal_amount=result.totals["principal"],
                                  interest_amount=result.totals["interest"], fee_amount=result.totals["fees"],
                                  upfront_fee_amount=result.totals["upfront_fee"],
                                  repaid_amount=result.totals["repaid"], decimal=shown["totals"]),
        net_disbursed_amount=result.net_disbursed, periodic_rate=shown["periodic_rate"],
        periods_per_year=shown["periods_per_year"], apr=shown["apr"],
        effective_annual_rate=shown["effective_annual_rate"],
        subsidy=SubsidyRead.model_validate(subsidy) if subsidy else None)


# ---------------------------------------------------------------------------------------------- limits

Ratio = RateText
Whole = Annotated[int, Field(strict=True, ge=-10**15, le=10**15)]


class LimitPolicyWrite(Strict):
    """The fields to change; the rest keep their value. Ratios are decimal strings; max_line and step are major
    units of the line's currency."""

    income_multiples: dict[Rating, Ratio] | None = Field(default=None, description="Months of income by rating, "
                                                                                   "A to D (all four).")
    dti_cap: Ratio | None = None
    delinquency_cut: Ratio | None = None
    enquiry_threshold: Whole | None = None
    enquiry_cut: Ratio | None = None
    thin_file_factor: Ratio | None = None
    trading_multiple: Ratio | None = None
    min_trading_months: Whole | None = None
    max_line: Whole | None = None
    step: Whole | None = None
    group_shares: dict[Annotated[str, Field(max_length=40)], Ratio] | None = None
    raise_after_on_time: Whole | None = None
    raise_rate: Ratio | None = None
    lower_after_days_past_due: Whole | None = None
    lower_rate: Ratio | None = None
    freeze_after_days_past_due: Whole | None = None
    review_interval_days: Whole | None = None


class LimitPolicyRead(BaseModel):
    object: str = "credit_limit_policy"
    policy: dict[str, Any]
    updated_by: str
    updated_at: datetime


def read_limit_policy(row: LimitPolicyRow) -> LimitPolicyRead:
    return LimitPolicyRead(policy=dict(row.policy), updated_by=row.updated_by, updated_at=row.updated_at)


class CreditLineCreate(Strict):
    requested_amount: Amount | None = Field(default=None, description="The applicant's stated need: a cap on the "
                                                                      "line.")


class SubLimitRead(BaseModel):
    limit_group: str
    status: str
    limit_amount: int
    reserved_amount: int
    used_amount: int
    available_amount: int
    is_revolving: bool


class CreditLineRead(BaseModel):
    id: str
    object: str = "credit_line"
    applicant_id: str
    currency: str
    status: str
    frozen_reason: str | None
    limit_amount: int
    reserved_amount: int
    used_amount: int
    available_amount: int
    requested_amount: int | None
    on_time_repayments: int
    overdue_days: int
    sub_limits: list[SubLimitRead]
    calculation: dict[str, Any] = Field(description="The last calculation: inputs, factors with their effect, "
                                                    "the policy, the result.")
    reviewed_on: date
    version: int
    created_at: datetime
    updated_at: datetime


def _available(limit: int, reserved: int, used: int) -> int:
    return max(0, limit - reserved - used)


def read_line(row: CreditLine, subs: dict[str, CreditSubLimit]) -> CreditLineRead:
    return CreditLineRead(
        id=row.id, applicant_id=row.applicant_id, currency=row.currency, status=row.status,
        frozen_reason=row.frozen_reason, limit_amount=row.limit_amount, reserved_amount=row.reserved_amount,
        used_amount=row.used_amount, available_amount=_available(row.limit_amount, row.reserved_amount,
                                                                 row.used_amount),
        requested_amount=row.requested_amount, on_time_repayments=row.on_time_repayments,
        overdue_days=row.overdue_days,
        sub_limits=[SubLimitRead(limit_group=s.limit_group, status=s.status, limit_amount=s.limit_amount,
                                 reserved_amount=s.reserved_amount, used_amount=s.used_amount,
                                 available_amount=_available(s.limit_amount, s.reserved_amount, s.used_amount),
                                 is_revolving=s.is_revolving) for s in subs.values()],
        calculation=dict(row.calculation), reviewed_on=row.reviewed_on, version=row.version,
        created_at=row.created_at, updated_at=row.updated_at)


class LimitChangeRead(BaseModel):
    id: str
    object: str = "credit_limit_change"
    line_id: str
    limit_group: str | None
    kind: str
    reason: str
    note: str
    before_amount: int | None
    after_amount: int
    before_status: str | None
    after_status: str
    details: dict[str, Any]
    business_date: date | None
    actor: str
    created_at: datetime


def read_change(row: CreditLimitChange) -> LimitChangeRead:
    return LimitChangeRead(
        id=row.id, line_id=row.line_id, limit_group=row.limit_group, kind=row.kind, reason=row.reason, note=row.note,
        before_amount=row.before_amount, after_amount=row.after_amount, before_status=row.before_status,
        after_status=row.after_status, details=dict(row.details), business_date=row.business_date, actor=row.actor,
        created_at=row.created_at)


class AvailabilityRead(BaseModel):
    object: str = "credit_availability"
    product_id: str
    line_id: str | None
    limit_group: str
    currency: str | None
    line_available_amount: int
    group_available_amount: int
    available_amount: int
    reasons: list[str]


class LineAdjust(Strict):
    limit_amount: NonNegativeAmount
    limit_group: Code | None = Field(default=None, description="A sub-limit; none: the overall line.")
    note: Annotated[str, Field(min_length=1, max_length=500), AfterValidator(single_line)]


class LineNote(Strict):
    note: Annotated[str, Field(max_length=500), AfterValidator(single_line)] = ""


# ---------------------------------------------------------------------------------------------- applications


class ApplicationCreate(Strict):
    applicant_id: ObjectId
    product_id: ObjectId | None = Field(None, description="A product version (lpr_...); or give product_code.")
    product_code: Annotated[Line, Field(min_length=1, max_length=40)] | None = Field(
        None, description="The product's code: its active version is used.")
    principal_amount: Amount = Field(description="Minor units, within the product's bounds.")
    term: int = Field(ge=1, le=36_500, strict=True, description="Months or days, as the product counts them.")
    purpose: ApplicationPurpose
    device_id: Annotated[Line, Field(min_length=1, max_length=100)] | None = None
    ip: Annotated[Line, Field(min_length=2, max_length=45)] | None = None


class ApplicantReason(BaseModel):
    code: str
    message: str


class ApplicationRead(BaseModel):
    id: str
    object: str = "loan_application"
    applicant_id: str
    product_id: str
    product_code: str
    principal_amount: int
    currency: str
    term: int
    term_unit: str
    purpose: str
    status: ApplicationStatus
    auto_outcome: Literal["approve", "decline", "review"] = Field(
        description="What the automatic review said (review: sent to a case).")
    final_outcome: Literal["approve", "decline"] | None = Field(description="The decision of record; null in review.")
    reasons: list[ApplicantReason] = Field(description="Reasons the applicant may be shown (stable codes).")
    details: dict[str, Any] = Field(description="Internal: the score, risk decision, availability, multi-borrowing.")
    score: int | None
    rating: str | None
    risk_decision_id: str | None
    case_id: str | None
    reserved_amount: int
    decision_latency_us: int
    submitted_at: datetime
    decided_at: datetime | None
    expires_at: datetime | None
    closed_at: datetime | None


def read_application(row: LoanApplication) -> ApplicationRead:
    return ApplicationRead(
        id=row.id, applicant_id=row.applicant_id, product_id=row.product_id, product_code=row.product_code,
        principal_amount=row.principal_amount, currency=row.currency, term=row.term, term_unit=row.term_unit,
        purpose=row.purpose, status=ApplicationStatus(row.status),
        auto_outcome=row.auto_outcome,
        final_outcome=row.final_outcome,
        reasons=[ApplicantReason(**r) for r in row.reasons], details=row.details, score=row.score,
        rating=row.rating, risk_decision_id=row.risk_decision_id, case_id=row.case_id,
        reserved_amount=row.reserved_amount, decision_latency_us=row.latency_us, submitted_at=row.submitted_at,
        decided_at=row.decided_at, expires_at=row.expires_at, closed_at=row.closed_at)


class ContractRead(BaseModel):
    id: str
    object: str = "loan_contract"
    application_id: str
    status: Literal["issued", "signed", "void"]
    template: str
    document: str = Field(description="The agreement (Markdown), exactly the bytes hashed (UTF-8).")
    sha256: str
    start_date: date
    created_at: datetime
    accepted_at: datetime | None
    accepted_sha256: str | None
    accepted_channel: str | None


def read_contract(row: LoanContract) -> ContractRead:
    return ContractRead(id=row.id, application_id=row.application_id, status=row.status,
                        template=row.template, document=row.document, sha256=row.sha256, start_date=row.start_on,
                        created_at=row.created_at, accepted_at=row.accepted_at,
                        accepted_sha256=row.accepted_sha256, accepted_channel=row.accepted_channel)


class ContractAccept(Strict):
    sha256: str = Field(min_length=64, max_length=64, pattern=r"^[0-9a-f]{64}$",
                        description="The SHA-256 of the document the applicant was shown.")
    channel: Literal["app", "web", "api", "branch"]
    ip: Annotated[Line, Field(min_length=2, max_length=45)] | None = None


class ApplicationFiguresRead(BaseModel):
    since: str | None
    until: str | None
    applications: int
    decided: int
    approved: int
    declined: int
    pending_review: int
    automatically_approved: int
    sent_to_review: int
    approval_rate: str | None = Field(description="approved / decided, 4 places.")
    automatic_approval_rate: str | None = Field(description="approved without review / all applications.")
    review_rate: str | None = Field(description="sent to review / all applications.")
    latency_p50_us: int | None
    latency_p99_us: int | None


class ApplicationPolicyRead(BaseModel):
    policy: dict[str, Any]
    updated_by: str
    updated_at: datetime


class ApplicationPolicyWrite(Strict):
    score_max_age_days: int | None = Field(None, strict=True)
    review_ratings: list[Rating] | None = None
    bureau_enquiries_30d_review: int | None = Field(None, strict=True)
    bureau_enquiries_30d_decline: int | None = Field(None, strict=True)
    bureau_open_loans_review: int | None = Field(None, strict=True)
    bureau_open_loans_decline: int | None = Field(None, strict=True)
    own_window_days: int | None = Field(None, strict=True)
    own_applications_review: int | None = Field(None, strict=True)
    own_applications_decline: int | None = Field(None, strict=True)
    own_open_review: int | None = Field(None, strict=True)
    own_open_decline: int | None = Field(None, strict=True)
    expiry_days: int | None = Field(None, strict=True)


def read_application_policy(row: ApplicationPolicyRow) -> ApplicationPolicyRead:
    return ApplicationPolicyRead(policy=row.policy, updated_by=row.updated_by, updated_at=row.updated_at)


# ---------------------------------------------------------------------------------------------- disbursement


class FundingSourceCreate(Strict):
    code: Annotated[Line, Field(min_length=1, max_length=40, description="Stable name, e.g. \"bank_a\".")]
    name: Annotated[Line, Field(min_length=1, max_length=100)] | None = None
    kind: Literal["own_reserve", "partner_bank"]
    currency: CurrencyCode
    annual_rate: RateText = Field(description="The annual cost of funds, e.g. \"0.045\".")
    quota_amount: NonNegativeAmount
    active: bool = True


class FundingSourceUpdate(Strict):
    name: Annotated[Line, Field(min_length=1, max_length=100)] | None = None
    annual_rate: RateText | None = None
    quota_amount: NonNegativeAmount | None = None
    active: bool | None = None


class FundingSourceRead(BaseModel):
    id: str
    object: str = "funding_source"
    code: str
    name: str
    kind: str
    currency: str
    annual_rate: str
    quota_amount: int
    used_amount: int
    remaining_quota: int
    active: bool
    accrued_amount: int = Field(description="Cost of funds posted so far (minor units).")
    accrued_through: date | None
    created_at: datetime


def read_funding_source(row: FundingSource) -> FundingSourceRead:
    return FundingSourceRead(id=row.id, code=row.code, name=row.name, kind=row.kind, currency=row.currency,
                             annual_rate=str(row.annual_rate), quota_amount=row.quota_amount,
                             used_amount=row.used_amount, remaining_quota=row.quota_amount - row.used_amount,
                             active=row.active, accrued_amount=row.accrued_amount,
                             accrued_through=row.accrued_through, created_at=row.created_at)


class LoanCreate(Strict):
    application_id: Annotated[Line, Field(min_length=1, max_length=40)]
    merchant_id: Annotated[Line, Field(min_length=1, max_length=40)] | None = Field(
        default=None, description="Buy-now-pay-later only: the merchant paid (net of its service fee).")


class DisburseBody(Strict):
    merchant_id: Annotated[Line, Field(min_length=1, max_length=40)] | None = None


class BatchDisburse(Strict):
    items: list[LoanCreate] = Field(min_length=1, max_length=100)


class LoanRead(BaseModel):
    id: str
    object: str = "loan"
    application_id: str
    applicant_id: str
    product_id: str
    principal_amount: int
    currency: str
    status: str
    mode: str
    target: str
    merchant_id: str | None
    merchant_fee_amount: int
    funding_source_id: str
    funding_choice: dict[str, Any]
    schedule: dict[str, Any]
    failure_code: str | None
    created_at: datetime
    disbursed_at: datetime | None


def read_loan(row: Loan) -> LoanRead:
    return LoanRead(id=row.id, application_id=row.application_id, applicant_id=row.applicant_id,
                    product_id=row.product_id, principal_amount=row.principal_amount, currency=row.currency,
                    status=row.status, mode=row.mode, target=row.target, merchant_id=row.merchant_id,
                    merchant_fee_amount=row.merchant_fee_amount, funding_source_id=row.funding_source_id,
                    funding_choice=row.funding_choice, schedule=row.schedule, failure_code=row.failure_code,
                    created_at=row.created_at, disbursed_at=row.disbursed_at)


class BatchItemRead(BaseModel):
    application_id: str
    loan_id: str | None
    status: str | None
    error: dict[str, Any] | None


class BatchRead(BaseModel):
    object: str = "disbursement_batch"
    items: list[BatchItemRead]


class DisbursementPolicyWrite(Strict):
    automatic: bool = Field(description="Disburse signed applications (not buy-now-pay-later) without a request.")


class DisbursementPolicyRead(BaseModel):
    object: str = "credit_disbursement_policy"
    automatic: bool
    updated_by: str
    updated_at: datetime


def read_disbursement_policy(row: DisbursementPolicy) -> DisbursementPolicyRead:
    return DisbursementPolicyRead(automatic=row.automatic, updated_by=row.updated_by, updated_at=row.updated_at)
