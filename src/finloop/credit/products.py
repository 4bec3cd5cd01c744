"""Loan products: configured as data (through the API or CLI), validated field by field, versioned, audited; and
the seam later slices use: look a product up, check an offer against it, price it into a schedule.

Invariants owned here:
- a product version never changes once written, apart from its status (``active`` → ``superseded`` when
  revised, ``active`` → ``retired``): a revision writes the next version of the same code and supersedes the
  current one in the same transaction, so a loan that records ``lpr_...`` keeps the terms it was made under;
  at most one version of a code is active (the one offered);
- every field is checked before anything is written, each failure a 400 naming the field (``param``) with a
  stable code; kind, code and currency never change across versions;
- a kind fixes what makes sense for it: consumer installment loans (monthly terms; equal installments, equal
  principal, interest only or flat), buy-now-pay-later (monthly terms, interest-free to the customer: its rate
  is what the subsidy pays, and a rate needs a payer, the merchant through a service fee or the platform as a
  marketing expense), cash loans (a term in days, one bullet repayment, a daily rate by default) and revolving
  lines (daily interest, a day count);
- a buy-now-pay-later schedule charges the customer no interest; the quote states the subsidy (who pays, how
  much) for the next slice to post;
- creation, revision and retirement are audited with the whole product.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal, InvalidOperation
from enum import StrEnum
from fractions import Fraction
from typing import Any

from sqlalchemy import select

from finloop.audit import service as audit
from finloop.core.errors import Conflict, InvalidRequest, NotFound
from finloop.core.money import MAX_AMOUNT, Rounding, is_currency, round_minor
from finloop.credit.daycount import DayCount
from finloop.credit.models import LoanProduct
from finloop.credit.schedule import (
    MAX_ANNUAL_RATE,
    MAX_DAILY_RATE,
    MAX_DAYS,
    MAX_MONTHS,
    Method,
    Pricing,
    RateBasis,
    Schedule,
    TermUnit,
    schedule,
)
from finloop.credit.servicing.domain import DEFAULT_WRITE_OFF_DAYS
from finloop.db.uow import UnitOfWork


class ProductKind(StrEnum):
    INSTALLMENT = "installment"
    BNPL = "bnpl"
    CASH = "cash"
    REVOLVING = "revolving"


class ProductStatus(StrEnum):
    ACTIVE = "active"
    SUPERSEDED = "superseded"
    RETIRED = "retired"


class Prepayment(StrEnum):
    FREE = "free"
    FEE = "fee"
    NOT_ALLOWED = "not_allowed"


class SubsidyPayer(StrEnum):
    MERCHANT = "merchant"
    PLATFORM = "platform"


COMPONENTS = ("penalty", "fees", "interest", "principal")
MAX_TERMS_LISTED = 36
MAX_GRACE_DAYS = 90
_CODE = re.compile(r"^[a-z][a-z0-9_]{0,39}$")


@dataclass(frozen=True, slots=True)
class KindRule:
    methods: tuple[Method, ...]
    term_unit: TermUnit
    rate_basis: RateBasis
    day_count: DayCount | None
    restores_limit: bool


KIND_RULES: dict[ProductKind, KindRule] = {
    ProductKind.INSTALLMENT: KindRule((Method.EQUAL_INSTALLMENT, Method.EQUAL_PRINCIPAL, Method.INTEREST_ONLY,
                                       Method.FLAT), TermUnit.MONTH, RateBasis.ANNUAL, None, False),
    ProductKind.BNPL: KindRule((Method.EQUAL_PRINCIPAL, Method.EQUAL_INSTALLMENT, Method.FLAT), TermUnit.MONTH,
                               RateBasis.ANNUAL, None, True),
    ProductKind.CASH: KindRule((Method.INTEREST_ONLY,), TermUnit.DAY, RateBasis.DAILY, DayCount.ACTUAL_365, True),
    ProductKind.REVOLVING: KindRule((Method.REVOLVING,), TermUnit.MONTH, RateBasis.ANNUAL, DayCount.ACTUAL_365, True),
}

#: Every field a product has, with the default a new product takes when the field is not given (``None``
#: means required, or derived from the kind).
FIELDS: dict[str, Any] = {
    "code": None, "kind": None, "name": None, "description": "", "currency": None, "method": None, "rate": None,
    "rate_basis": None, "day_count": None, "terms": None, "min_term": None, "max_term": None,
    "min_principal_amount": None, "max_principal_amount": None, "rounding": Rounding.HALF_UP.value,
    "upfront_fee_rate": "0", "upfront_fee_amount": 0, "installment_fee_rate": "0", "installment_fee_amount": 0,
    "late_fee_amount": 0, "penalty_rate": "0", "grace_days": 0, "allocation_order": list(COMPONENTS),
    "prepayment": Prepayment.FREE.value, "prepayment_fee_rate": "0", "write_off_after_days": None,
    "write_off_below_amount": 0, "subsidy_payer": None, "merchant_fee_rate": None, "limit_group": None,
    "restores_limit": None,
}
IMMUTABLE = ("code", "kind", "currency")

#: Four products as data: what ``finloop credit products create --example NAME`` and the docs use.
EXAMPLES: dict[str, dict[str, Any]] = {
    "consumer_installment": {
        "code": "consumer_installment", "kind": "installment", "name": "Consumer installment loan",
        "currency": "CNY", "method": "equal_installment", "rate": "0.18", "terms": [3, 6, 12, 24],
        "min_principal_amount": 100_000, "max_principal_amount": 5_000_000, "penalty_rate": "0.27",
        "grace_days": 3, "late_fee_amount": 2_000, "prepayment": "fee", "prepayment_fee_rate": "0.01",
        "write_off_after_days": 180},
    "bnpl_3": {
        "code": "bnpl_3", "kind": "bnpl", "name": "Pay in 3, interest-free", "currency": "CNY",
        "method": "equal_principal", "rate": "0.12", "terms": [3], "min_principal_amount": 10_000,
        "max_principal_amount": 2_000_000, "subsidy_payer": "merchant", "merchant_fee_rate": "0.03",
        "penalty_rate": "0.18", "grace_days": 5, "late_fee_amount": 1_000, "write_off_after_days": 120},
    "cash_30": {
        "code": "cash_30", "kind": "cash", "name": "Cash loan, 7 to 30 days", "currency": "CNY",
        "method": "interest_only", "rate": "0.0005", "rate_basis": "daily", "day_count": "actual_365",
        "min_term": 7, "max_term": 30, "min_principal_amount": 50_000, "max_principal_amount": 1_000_000,
        "penalty_rate": "0.00075", "grace_days": 0, "write_off_after_days": 90},
    "merchant_revolving": {
        "code": "merchant_revolving", "kind": "revolving", "name": "Merchant revolving credit line",
        "currency": "CNY", "method": "revolving", "rate": "0.0005", "rate_basis": "daily",
        "day_count": "actual_365", "min_term": 1, "max_term": 12, "min_principal_amount": 10_000,
        "max_principal_amount": 50_000_000, "penalty_rate": "0.00075", "grace_days": 3,
        "write_off_after_days": 180, "allocation_order": ["penalty", "interest", "fees", "principal"]},
}


# ---------------------------------------------------------------------------------------------- checks


def _invalid(message: str, code: str, param: str) -> InvalidRequest:
    return InvalidRequest(message, code=code, param=param)


def _decimal(value: Any, param: str) -> Decimal:
    if isinstance(value, bool) or not isinstance(value, Decimal | int | str):
        raise _invalid(f"{param} is a decimal string such as \"0.18\" (never a float).", "invalid_rate", param)
    try:
        parsed = Decimal(value.strip()) if isinstance(value, str) else Decimal(value)
    except InvalidOperation:
        raise _invalid(f"{param} is a decimal string such as \"0.18\".", "invalid_rate", param) from None
    if not parsed.is_finite():
        raise _invalid(f"{param} is a finite decimal.", "invalid_rate", param)
    exponent = parsed.as_tuple().exponent
    if isinstance(exponent, int) and exponent < -12:
        raise _invalid(f"{param} has at most 12 decimal places.", "invalid_rate", param)
    return parsed


def _fraction_rate(value: Any, param: str, *, upper: Decimal = Decimal(1), strict_upper: bool = True,
                   positive: bool = False) -> Decimal:
    rate = _decimal(value, param)
    if rate < 0 or rate > upper or (strict_upper and rate == upper) or (positive and rate == 0):
        low = "above 0" if positive else "from 0"
        high = f"below {upper}" if strict_upper else f"at most {upper}"
        raise _invalid(f"{param} is {low}, {high}.", "invalid_rate", param)
    return rate


def _int(value: Any, param: str, low: int, high: int, code: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise _invalid(f"{param} is a whole number from {low} to {high}.", code, param)
    return value


def _amount(value: Any, param: str, *, low: int = 0) -> int:
    return _int(value, param, low, MAX_AMOUNT, "invalid_amount")


def _enum(kind: type[StrEnum], value: Any, param: str, code: str) -> Any:
    try:
        return kind(value)
    except ValueError:
        raise _invalid(f"{param} is one of {', '.join(kind)}.", code, param) from None


def _text(value: Any, param: str, low: int, high: int) -> str:
    if not isinstance(value, str) or not low <= len(value) <= high or any(
            ord(ch) < 32 or ord(ch) == 127 for ch in value):
        raise _invalid(f"{param} is one line of {low} to {high} characters.", "invalid_text", param)
    return value


def check_spec(data: Mapping[str, Any]) -> dict[str, Any]:
    """A whole product, every field checked and normalised (Decimal rates, enum values as strings), or the first
    problem as a 400 naming its field. Unknown fields are refused."""
    unknown = sorted(set(data) - set(FIELDS))
    if unknown:
        raise _invalid(f"Unknown product field {unknown[0]!r}.", "unknown_field", unknown[0])
    spec = {name: data.get(name, default) for name, default in FIELDS.items()}
    out: dict[str, Any] = {}
    if not isinstance(spec["code"], str) or not _CODE.match(spec["code"]):
        raise _invalid("code is 1-40 lower-case letters, digits or underscores, starting with a letter.",
                       "invalid_product_code", "code")
    out["code"] = spec["code"]
    if spec["kind"] is None:
        raise _invalid("kind is required: installment, bnpl, cash or revolving.", "invalid_kind", "kind")
    kind = _enum(ProductKind, spec["kind"], "kind", "invalid_kind")
    rule = KIND_RULES[kind]
    out["kind"] = kind.value
    out["name"] = _text(spec["name"], "name", 1, 100)
    out["description"] = _text(spec["description"], "description", 0, 500)
    if not isinstance(spec["currency"], str) or not is_currency(spec["currency"]):
        raise _invalid("currency is an ISO 4217 code such as CNY.", "unknown_currency", "currency")
    out["currency"] = spec["currency"]
    method = _enum(Method, spec["method"] or rule.methods[0].value, "method", "invalid_method")
    if method not in rule.methods:
        raise _invalid(f"A {kind.value} product repays by {', '.join(m.value for m in rule.methods)}.",
                       "method_not_allowed", "method")
    out["method"] = method.value
    basis = _enum(RateBasis, spec["rate_basis"] or rule.rate_basis.value, "rate_basis", "invalid_rate_basis")
    out["rate_basis"] = basis.value
    if spec["rate"] is None:
        raise _invalid("rate is required (a decimal string; \"0\" for none).", "invalid_rate", "rate")
    upper = MAX_DAILY_RATE if basis is RateBasis.DAILY else MAX_ANNUAL_RATE
    out["rate"] = _fraction_rate(spec["rate"], "rate", upper=upper, strict_upper=False)
    out["penalty_rate"] = _fraction_rate(spec["penalty_rate"], "penalty_rate", upper=upper, strict_upper=False)
    day_count = spec["day_count"] or (rule.day_count.value if rule.day_count else None)
    if basis is RateBasis.DAILY and day_count is None:
        day_count = DayCount.ACTUAL_365.value
    out["day_count"] = _enum(DayCount, day_count, "day_count", "invalid_day_count").value if day_count else None
    if kind in (ProductKind.CASH, ProductKind.REVOLVING) and out["day_count"] is None:
        raise _invalid("A daily-interest product needs a day_count.", "invalid_day_count", "day_count")
    out["term_unit"] = rule.term_unit.value
    out.update(_terms(spec, rule.term_unit))
    out["min_principal_amount"] = _amount(spec["min_principal_amount"], "min_principal_amount", low=1)
    out["max_principal_amount"] = _amount(spec["max_principal_amount"], "max_principal_amount", low=1)
    if out["max_principal_amount"] < out["min_principal_amount"]:
        raise _invalid("max_principal_amount is at least min_principal_amount.", "invalid_amount",
                       "max_principal_amount")
    out["rounding"] = _enum(Rounding, spec["rounding"], "rounding", "invalid_rounding").value
    out["upfront_fee_rate"] = _fraction_rate(spec["upfront_fee_rate"], "upfront_fee_rate")
    out["installment_fee_rate"] = _fraction_rate(spec["installment_fee_rate"], "installment_fee_rate")
    for name in ("upfront_fee_amount", "installment_fee_amount", "late_fee_amount", "write_off_below_amount"):
        out[name] = _amount(spec[name], name)
    out["grace_days"] = _int(spec["grace_days"], "grace_days", 0, MAX_GRACE_DAYS, "invalid_grace_days")
    order = spec["allocation_order"]
    if not isinstance(order, Sequence) or isinstance(order, str) or sorted(map(str, order)) != sorted(COMPONENTS) \
            or not all(isinstance(c, str) for c in order):
        raise _invalid(f"allocation_order lists each of {', '.join(COMPONENTS)} once.", "invalid_allocation_order",
                       "allocation_order")
    out["allocation_order"] = list(order)
    prepayment = _enum(Prepayment, spec["prepayment"], "prepayment", "invalid_prepayment")
    out["prepayment"] = prepayment.value
    fee_rate = _fraction_rate(spec["prepayment_fee_rate"], "prepayment_fee_rate")
    if prepayment is Prepayment.FEE and fee_rate == 0:
        raise _invalid("prepayment \"fee\" needs a prepayment_fee_rate above 0.", "invalid_rate",
                       "prepayment_fee_rate")
    if prepayment is not Prepayment.FEE and fee_rate != 0:
        raise _invalid("prepayment_fee_rate applies only to prepayment \"fee\".", "invalid_rate",
                       "prepayment_fee_rate")
    out["prepayment_fee_rate"] = fee_rate
    # Unless told: 180 days past due for a revolving line, 120 for installment loans (servicing.domain).
    write_off = spec["write_off_after_days"]
    if write_off is None:
        write_off = DEFAULT_WRITE_OFF_DAYS[kind.value]
    out["write_off_after_days"] = _int(write_off, "write_off_after_days", 1, 3650, "invalid_write_off")
    out.update(_subsidy(spec, kind, out["rate"]))
    group = spec["limit_group"] or kind.value
    if not isinstance(group, str) or not _CODE.match(group):
        raise _invalid("limit_group is 1-40 lower-case letters, digits or underscores.", "invalid_limit_group",
                       "limit_group")
    out["limit_group"] = group
    restores = spec["restores_limit"]
    if restores is None:
        restores = rule.restores_limit
    if not isinstance(restores, bool):
        raise _invalid("restores_limit is true or false.", "invalid_restores_limit", "restores_limit")
    out["restores_limit"] = restores
    # The pricing must make a schedule: e.g. a day term repays in one bullet.
    pricing_from(out)
    return out


def _terms(spec: Mapping[str, Any], unit: TermUnit) -> dict[str, Any]:
    upper = MAX_MONTHS if unit is TermUnit.MONTH else MAX_DAYS
    listed = spec["terms"]
    if listed is not None:
        if spec["min_term"] is not None or spec["max_term"] is not None:
            raise _invalid("Give terms (a list) or min_term and max_term, not both.", "invalid_term", "terms")
        if isinstance(listed, str) or not isinstance(listed, Sequence) or not 1 <= len(listed) <= MAX_TERMS_LISTED:
            raise _invalid(f"terms lists 1 to {MAX_TERMS_LISTED} terms.", "invalid_term", "terms")
        for i, term in enumerate(listed):
            _int(term, f"terms.{i}", 1, upper, "invalid_term")
        terms = sorted(set(listed))
        if len(terms) != len(listed):
            raise _invalid("terms lists each term once.", "invalid_term", "terms")
        return {"terms": terms, "min_term": terms[0], "max_term": terms[-1]}
    if spec["min_term"] is None or spec["max_term"] is None:
        raise _invalid(f"Give terms (a list of {unit.value}s) or min_term and max_term.", "invalid_term", "terms")
    low = _int(spec["min_term"], "min_term", 1, upper, "invalid_term")
    high = _int(spec["max_term"], "max_term", 1, upper, "invalid_term")
    if high < low:
        raise _invalid("max_term is at least min_term.", "invalid_term", "max_term")
    return {"terms": None, "min_term": low, "max_term": high}


def _subsidy(spec: Mapping[str, Any], kind: ProductKind, rate: Decimal) -> dict[str, Any]:
    payer_value, fee_value = spec["subsidy_payer"], spec["merchant_fee_rate"]
    if kind is not ProductKind.BNPL:
        if payer_value is not None or fee_value is not None:
            param = "subsidy_payer" if payer_value is not None else "merchant_fee_rate"
            raise _invalid("Only a buy-now-pay-later product has a subsidy.", "subsidy_not_allowed", param)
        return {"subsidy_payer": None, "merchant_fee_rate": None}
    payer = None if payer_value is None else _enum(SubsidyPayer, payer_value, "subsidy_payer", "invalid_subsidy")
    if payer is None and rate > 0:
        raise _invalid("A buy-now-pay-later product is interest-free to the customer: a rate needs a subsidy_payer "
                       "(merchant or platform).", "subsidy_required", "subsidy_payer")
    if payer is SubsidyPayer.MERCHANT:
        if fee_value is None:
            raise _invalid("A merchant subsidy needs the merchant_fee_rate (e.g. \"0.03\").",
                           "merchant_fee_rate_required", "merchant_fee_rate")
        return {"subsidy_payer": payer.value,
                "merchant_fee_rate": _fraction_rate(fee_value, "merchant_fee_rate", positive=True)}
    if fee_value is not None:
        raise _invalid("merchant_fee_rate applies only to a merchant subsidy.", "subsidy_not_allowed",
                       "merchant_fee_rate")
    return {"subsidy_payer": payer.value if payer else None, "merchant_fee_rate": None}


# ---------------------------------------------------------------------------------------------- pricing


def pricing_from(spec: Mapping[str, Any], *, customer: bool = True) -> Pricing:
    """The schedule terms of a product (a checked spec or a row's values). A buy-now-pay-later product charges
    its customer no interest; ``customer=False`` gives the pricing at its subsidised rate."""
    free = customer and spec["kind"] == ProductKind.BNPL.value
    return Pricing(method=Method(spec["method"]), rate=Decimal(0) if free else Decimal(spec["rate"]),
                   rate_basis=RateBasis(spec["rate_basis"]),
                   day_count=DayCount(spec["day_count"]) if spec["day_count"] else None,
                   term_unit=TermUnit(spec["term_unit"]), rounding=Rounding(spec["rounding"]),
                   upfront_fee_rate=Decimal(spec["upfront_fee_rate"]),
                   upfront_fee_amount=int(spec["upfront_fee_amount"]),
                   installment_fee_rate=Decimal(spec["installment_fee_rate"]),
                   installment_fee_amount=int(spec["installment_fee_amount"]))


def plain(value: Decimal) -> Decimal:
    """A stored rate without the trailing zeros PostgreSQL's NUMERIC(38, 18) adds ("0.180000000000000000" is
    0.18), and never in exponent notation."""
    if value == value.to_integral_value():
        return value.quantize(Decimal(1))
    return value.normalize()


def spec_of(product: LoanProduct) -> dict[str, Any]:
    """A product row as a spec (what a revision starts from), rates as plain Decimals."""
    values = {name: getattr(product, name) for name in FIELDS} | {"term_unit": product.term_unit}
    return {k: plain(v) if isinstance(v, Decimal) else v for k, v in values.items()}


def pricing_of(product: LoanProduct, *, customer: bool = True) -> Pricing:
    return pricing_from(spec_of(product), customer=customer)


def is_offered(product: LoanProduct, term: int) -> bool:
    if product.terms is not None:
        return term in product.terms
    return product.min_term <= term <= product.max_term


def check_offer(product: LoanProduct, *, principal: Any, term: Any) -> None:
    """Refuse a principal or term the product does not offer (400, naming the field)."""
    if isinstance(principal, bool) or not isinstance(principal, int) \
            or not product.min_principal_amount <= principal <= product.max_principal_amount:
        raise InvalidRequest(f"This product lends {product.min_principal_amount} to {product.max_principal_amount} "
                             f"minor units of {product.currency}.", code="principal_out_of_range",
                             param="principal_amount")
    if isinstance(term, bool) or not isinstance(term, int) or not is_offered(product, term):
        offered = (", ".join(map(str, product.terms)) if product.terms is not None
                   else f"{product.min_term} to {product.max_term}")
        raise InvalidRequest(f"This product offers terms of {offered} {product.term_unit}s.", code="term_not_offered",
                             param="term")


@dataclass(frozen=True, slots=True)
class Subsidy:
    """Who pays a buy-now-pay-later loan's interest, and how much: the merchant's service fee, or the interest
    at the product's rate the platform books as a marketing expense."""

    payer: SubsidyPayer
    amount: int
    merchant_fee_rate: Decimal | None
    #: The interest the product's rate would have charged the customer.
    interest_covered: int

    def to_json(self) -> dict[str, Any]:
        return {"payer": self.payer.value, "amount": self.amount,
                "merchant_fee_rate": str(self.merchant_fee_rate) if self.merchant_fee_rate is not None else None,
                "interest_covered": self.interest_covered}


@dataclass(frozen=True, slots=True)
class Quote:
    product: LoanProduct
    schedule: Schedule
    subsidy: Subsidy | None


def quote(product: LoanProduct, *, principal: int, term: int, start_on: date) -> Quote:
    """The customer's schedule of a loan of this product (checked against what it offers), and the subsidy."""
    check_offer(product, principal=principal, term=term)
    result = schedule(pricing_of(product), principal=principal, currency_code=product.currency, term=term,
                      start_on=start_on)
    subsidy = None
    if product.kind == ProductKind.BNPL.value and product.subsidy_payer is not None:
        covered = schedule(pricing_of(product, customer=False), principal=principal, currency_code=product.currency,
                           term=term, start_on=start_on).total_interest
        payer = SubsidyPayer(product.subsidy_payer)
        fee_rate = plain(product.merchant_fee_rate) if product.merchant_fee_rate is not None else None
        if payer is SubsidyPayer.MERCHANT:
            assert fee_rate is not None
            amount = round_minor(principal * Fraction(fee_rate), Rounding(product.rounding))
        else:
            amount = covered
        subsidy = Subsidy(payer, amount, fee_rate, covered)
    return Quote(product, result, subsidy)


def offered_terms(product: LoanProduct) -> list[int]:
    """The terms whose APR a product shows: every listed term, or the shortest and the longest of a range."""
    if product.terms is not None:
        return list(product.terms)
    return sorted({product.min_term, product.max_term})


def reference_principal(product: LoanProduct) -> int:
    """The principal a product's APR is shown for: 10,000 major units within its bounds."""
    from finloop.core.money import currency

    wanted = 10_000 * currency(product.currency).minor_per_major
    return max(product.min_principal_amount, min(product.max_principal_amount, wanted))


def rates_of(product: LoanProduct) -> list[dict[str, Any]]:
    """The APR and effective annual rate of each offered term at the reference principal, disbursed on the day
    the version was made."""
    principal = reference_principal(product)
    start = product.created_at.date()
    out = []
    for term in offered_terms(product):
        result = schedule(pricing_of(product), principal=principal, currency_code=product.currency, term=term,
                          start_on=start)
        out.append({"term": term, "principal_amount": principal, "total_repaid_amount": result.totals["repaid"],
                    "apr": str(result.apr), "effective_annual_rate": str(result.effective_annual_rate)})
    return out


# ---------------------------------------------------------------------------------------------- service


def snapshot(product: LoanProduct) -> dict[str, Any]:
    """What the audit chain keeps of a product version: every field."""
    values = spec_of(product)
    return {**{k: (str(v) if isinstance(v, Decimal) else v) for k, v in values.items()},
            "id": product.id, "version": product.version, "status": product.status}


def _row(uow: UnitOfWork, tenant_id: str, spec: Mapping[str, Any], version: int, actor: str) -> LoanProduct:
    return LoanProduct(id=uow.ids.new("loan_product"), tenant_id=tenant_id, version=version,
                       status=ProductStatus.ACTIVE.value, created_by=actor[:60], created_at=uow.clock.now(),
                       superseded_at=None, retired_at=None, **spec)


def create_product(uow: UnitOfWork, tenant_id: str, data: Mapping[str, Any], *, actor: str) -> LoanProduct:
    """Version 1 of a new product code."""
    spec = check_spec(data)
    taken = uow.session.scalar(select(LoanProduct.id).where(LoanProduct.tenant_id == tenant_id,
                                                            LoanProduct.code == spec["code"]).limit(1))
    if taken is not None:
        raise Conflict(f"A product with code {spec['code']!r} exists: revise it instead.", code="product_code_exists",
                       param="code")
    product = _row(uow, tenant_id, spec, 1, actor)
    uow.session.add(product)
    uow.session.flush()
    audit.record(uow, tenant_id, actor=actor, action="credit.product.created", object_type="loan_product",
                 object_id=product.id, after=snapshot(product))
    return product


def revise_product(uow: UnitOfWork, tenant_id: str, product_id: str, changes: Mapping[str, Any], *,
                   actor: str) -> LoanProduct:
    """The next version of an active product with ``changes`` applied; the current version is superseded."""
    current = get_product(uow, tenant_id, product_id, lock=True)
    if current.status != ProductStatus.ACTIVE.value:
        raise Conflict(f"This version is {current.status}: revise the active version of {current.code}.",
                       code="product_not_active", param="product_id")
    for name in IMMUTABLE:
        if name in changes and changes[name] != getattr(current, name):
            raise InvalidRequest(f"{name} never changes across versions: make a new product instead.",
                                 code="immutable_field", param=name)
    base = spec_of(current)
    base.pop("term_unit")
    if base["terms"] is not None:  # stored with its min and max; a spec gives one or the other
        base["min_term"] = base["max_term"] = None
    merged = {**base, **changes}
    # A list of terms and a range replace each other.
    if "terms" in changes and changes["terms"] is not None:
        merged["min_term"] = merged["max_term"] = None
    elif "min_term" in changes or "max_term" in changes:
        merged["terms"] = None
    spec = check_spec(merged)
    now = uow.clock.now()
    before = snapshot(current)
    current.status = ProductStatus.SUPERSEDED.value
    current.superseded_at = now
    uow.session.flush()
    product = _row(uow, tenant_id, spec, current.version + 1, actor)
    uow.session.add(product)
    uow.session.flush()
    audit.record(uow, tenant_id, actor=actor, action="credit.product.revised", object_type="loan_product",
                 object_id=product.id, before=before, after=snapshot(product))
    return product


def retire_product(uow: UnitOfWork, tenant_id: str, product_id: str, *, actor: str) -> LoanProduct:
    """Stop offering the product (its loans keep their terms)."""
    product = get_product(uow, tenant_id, product_id, lock=True)
    if product.status != ProductStatus.ACTIVE.value:
        raise Conflict(f"This version is already {product.status}.", code="product_not_active", param="product_id")
    before = snapshot(product)
    product.status = ProductStatus.RETIRED.value
    product.retired_at = uow.clock.now()
    uow.session.flush()
    audit.record(uow, tenant_id, actor=actor, action="credit.product.retired", object_type="loan_product",
                 object_id=product.id, before=before, after=snapshot(product))
    return product


def get_product(uow: UnitOfWork, tenant_id: str, product_id: str, *, lock: bool = False,
                param: str = "product_id") -> LoanProduct:
    """Any version, by id (a loan reads the terms it was made under through this)."""
    query = select(LoanProduct).where(LoanProduct.tenant_id == tenant_id, LoanProduct.id == product_id)
    row = uow.session.scalar(query.with_for_update() if lock else query)
    if row is None:
        raise NotFound(f"No such loan product: {str(product_id)[:40]}.", code="product_not_found", param=param)
    return row


def offered_product(uow: UnitOfWork, tenant_id: str, code: str) -> LoanProduct:
    """The active version of a product code: what a new application is made under."""
    row = uow.session.scalar(select(LoanProduct).where(
        LoanProduct.tenant_id == tenant_id, LoanProduct.code == code,
        LoanProduct.status == ProductStatus.ACTIVE.value))
    if row is None:
        raise NotFound(f"No product {str(code)[:40]!r} is offered.", code="product_not_found", param="code")
    return row


def require_offered(product: LoanProduct) -> LoanProduct:
    if product.status != ProductStatus.ACTIVE.value:
        raise Conflict(f"This product version is {product.status}; it is not offered.", code="product_not_active",
                       param="product_id")
    return product


def list_products(uow: UnitOfWork, tenant_id: str, *, code: str | None = None, status: str | None = None,
                  kind: str | None = None, after: str | None = None, limit: int = 50) -> list[LoanProduct]:
    query = select(LoanProduct).where(LoanProduct.tenant_id == tenant_id)
    if code:
        query = query.where(LoanProduct.code == code)
    if status:
        query = query.where(LoanProduct.status == status)
    if kind:
        query = query.where(LoanProduct.kind == kind)
    if after:
        query = query.where(LoanProduct.id > after)
    return list(uow.session.scalars(query.order_by(LoanProduct.id).limit(limit + 1)))


def limit_groups(uow: UnitOfWork, tenant_id: str) -> dict[str, bool]:
    """The limit groups of the tenant's offered products, each with whether repayment restores it (revolving
    when any of its products restores)."""
    groups: dict[str, bool] = {}
    for group, restores in uow.session.execute(select(LoanProduct.limit_group, LoanProduct.restores_limit).where(
            LoanProduct.tenant_id == tenant_id, LoanProduct.status == ProductStatus.ACTIVE.value)):
        groups[group] = groups.get(group, False) or bool(restores)
    return groups


# ---------------------------------------------------------------------------------------------- previews


@dataclass(frozen=True, slots=True)
class Preview:
    schedule: Schedule
    product_id: str | None
    subsidy: Subsidy | None


def preview(uow: UnitOfWork, tenant_id: str, *, principal: int, term: int, start_on: date | None = None,
            product_id: str | None = None, pricing: Mapping[str, Any] | None = None) -> Preview:
    """A schedule without an application: a product version's (its offer checked), or the stated ``pricing``
    (``stated_schedule``). The start defaults to today's business date."""
    if start_on is None:
        from finloop.tenancy import service as tenancy

        start_on = tenancy.current_business_date(uow, tenant_id)
    given = {k: v for k, v in (pricing or {}).items() if v is not None}
    if product_id is None:
        return Preview(stated_schedule(given, principal=principal, term=term, start_on=start_on), None, None)
    product = get_product(uow, tenant_id, product_id)
    require_offered(product)
    extra = sorted(set(given) - {"currency"})
    if extra:
        raise InvalidRequest(f"{extra[0]} comes from the product: give a product_id or the terms, not both.",
                             code="conflicting_field", param=extra[0])
    if given.get("currency", product.currency) != product.currency:
        raise InvalidRequest(f"This product lends {product.currency}.", code="currency_mismatch", param="currency")
    try:
        found = quote(product, principal=principal, term=term, start_on=start_on)
    except InvalidRequest as error:
        error.param = "principal_amount" if error.param == "principal" else error.param
        raise
    return Preview(found.schedule, product.id, found.subsidy)


def stated_schedule(pricing: Mapping[str, Any], *, principal: int, term: int, start_on: date) -> Schedule:
    """The schedule of terms stated as data: currency, method, annual_rate or daily_rate (decimal strings),
    term_unit, day_count, rounding, upfront_fee_rate/amount, installment_fee_rate/amount. Errors name these
    fields (and ``principal_amount``)."""
    given = {k: v for k, v in pricing.items() if v is not None}
    daily = "daily_rate" in given
    try:
        for name in ("currency", "method"):
            if name not in given:
                raise InvalidRequest(f"{name} is required without a product_id.", code="missing_field", param=name)
        if ("annual_rate" in given) == daily:
            raise InvalidRequest("Give annual_rate or daily_rate (one of them).", code="missing_field",
                                 param="annual_rate")
        rate_field = "daily_rate" if daily else "annual_rate"
        terms = Pricing(
            method=given["method"], rate=_decimal(given[rate_field], rate_field),
            rate_basis=RateBasis.DAILY if daily else RateBasis.ANNUAL, day_count=given.get("day_count"),
            term_unit=given.get("term_unit", TermUnit.MONTH), rounding=given.get("rounding", Rounding.HALF_UP),
            upfront_fee_rate=_decimal(given.get("upfront_fee_rate", "0"), "upfront_fee_rate"),
            upfront_fee_amount=given.get("upfront_fee_amount", 0),
            installment_fee_rate=_decimal(given.get("installment_fee_rate", "0"), "installment_fee_rate"),
            installment_fee_amount=given.get("installment_fee_amount", 0))
        return schedule(terms, principal=principal, currency_code=given["currency"], term=term, start_on=start_on)
    except InvalidRequest as error:
        error.param = {"principal": "principal_amount",
                       "rate": "daily_rate" if daily else "annual_rate"}.get(error.param or "", error.param)
        raise
