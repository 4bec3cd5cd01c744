"""The limit policy and the limit calculation: pure rules, no I/O.

Invariants owned here:
- a policy is checked field by field (a 400 naming the field) and stored as JSON with decimal strings;
- the calculation is a fixed sequence of factors, each recorded with what it did (the amount before and
  after, the value it read, a sentence), so every limit can be explained:
  1. the base: the rating's multiple of monthly income (a merchant: declared monthly revenue), nothing for a
     reject or an applicant never scored;
  2. merchants: capped by the trading history, ``trading_multiple`` × average monthly net sales (captured less
     refunded orders of the last 365 days over the months traded in them), nothing under
     ``min_trading_months`` months of trading;
  3. repayment history: ``(1 + raise_rate)`` for every ``raise_after_on_time`` consecutive on-time repayments;
  4. the debt-to-income cap: existing debt (the bureau's open balances) plus the line stays within
     ``dti_cap`` × 12 months of income;
  5. bureau delinquencies over 24 months: ``delinquency_cut`` off per delinquency (down to nothing);
  6. recent enquiries from other lenders at or above ``enquiry_threshold`` over 90 days: ``enquiry_cut`` off;
  7. a thin file, or no bureau report: × ``thin_file_factor``;
  8. overdue now: ``lower_rate`` off from ``lower_after_days_past_due`` days, nothing from
     ``freeze_after_days_past_due``;
  9. the requested need caps the line; 10. ``max_line`` (major units) caps it; 11. it is rounded down to a
     multiple of ``step`` (major units);
- a sub-limit is the line times its group's share, rounded down to the step; a group without a share gets
  the whole line (share 1); a sub-limit never exceeds the line;
- all arithmetic is exact (``Fraction``); amounts are integers of minor units.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from fractions import Fraction
from typing import Any

from finloop.core.errors import InvalidRequest
from finloop.core.money import Money, currency

RATINGS = ("A", "B", "C", "D")

DEFAULT_POLICY: dict[str, Any] = {
    "income_multiples": {"A": "6", "B": "4", "C": "2", "D": "1"},
    "dti_cap": "0.5",
    "delinquency_cut": "0.25",
    "enquiry_threshold": 6,
    "enquiry_cut": "0.2",
    "thin_file_factor": "0.5",
    "trading_multiple": "1",
    "min_trading_months": 3,
    "max_line": 200_000,
    "step": 100,
    "group_shares": {"installment": "1", "bnpl": "0.3", "cash": "0.2", "revolving": "1"},
    "raise_after_on_time": 6,
    "raise_rate": "0.1",
    "lower_after_days_past_due": 1,
    "lower_rate": "0.5",
    "freeze_after_days_past_due": 30,
    "review_interval_days": 30,
}

_INTS = {"enquiry_threshold": (1, 1000), "min_trading_months": (0, 12), "max_line": (1, 10**12),
         "step": (1, 10**9), "raise_after_on_time": (1, 1000), "lower_after_days_past_due": (1, 3650),
         "freeze_after_days_past_due": (1, 3650), "review_interval_days": (1, 3660)}
#: (lowest, highest) of each ratio; the highest is inclusive.
_RATIOS = {"dti_cap": (Decimal(0), Decimal(10)), "delinquency_cut": (Decimal(0), Decimal(1)),
           "enquiry_cut": (Decimal(0), Decimal(1)), "thin_file_factor": (Decimal(0), Decimal(1)),
           "trading_multiple": (Decimal(0), Decimal(100)), "raise_rate": (Decimal(0), Decimal(10)),
           "lower_rate": (Decimal(0), Decimal(1))}
_GROUP_CHARS = set("abcdefghijklmnopqrstuvwxyz0123456789_")


def _invalid(message: str, param: str) -> InvalidRequest:
    return InvalidRequest(message, code="invalid_limit_policy", param=param)


def _ratio(value: Any, param: str, low: Decimal, high: Decimal) -> Decimal:
    if isinstance(value, bool) or not isinstance(value, str | int | Decimal):
        raise _invalid(f"{param} is a decimal string (never a float).", param)
    try:
        parsed = Decimal(value)
    except InvalidOperation:
        raise _invalid(f"{param} is a decimal string.", param) from None
    if not parsed.is_finite() or not low <= parsed <= high:
        raise _invalid(f"{param} is from {low} to {high}.", param)
    exponent = parsed.as_tuple().exponent
    if isinstance(exponent, int) and exponent < -12:
        raise _invalid(f"{param} has at most 12 decimal places.", param)
    return parsed


@dataclass(frozen=True, slots=True)
class LimitPolicy:
    income_multiples: dict[str, Decimal]
    dti_cap: Decimal
    delinquency_cut: Decimal
    enquiry_threshold: int
    enquiry_cut: Decimal
    thin_file_factor: Decimal
    trading_multiple: Decimal
    min_trading_months: int
    #: In major units of the line's currency.
    max_line: int
    step: int
    group_shares: dict[str, Decimal]
    raise_after_on_time: int
    raise_rate: Decimal
    lower_after_days_past_due: int
    lower_rate: Decimal
    freeze_after_days_past_due: int
    review_interval_days: int

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for name in DEFAULT_POLICY:
            value = getattr(self, name)
            if isinstance(value, dict):
                out[name] = {k: str(v) for k, v in value.items()}
            elif isinstance(value, Decimal):
                out[name] = str(value)
            else:
                out[name] = value
        return out

    def share(self, group: str) -> Decimal:
        return self.group_shares.get(group, Decimal(1))


def check_policy(data: Mapping[str, Any], *, base: Mapping[str, Any] | None = None) -> LimitPolicy:
    """A policy from ``data`` over ``base`` (the defaults), every field checked."""
    if not isinstance(data, Mapping):
        raise _invalid("The policy is an object.", "policy")
    unknown = sorted(set(data) - set(DEFAULT_POLICY))
    if unknown:
        raise _invalid(f"Unknown policy field {unknown[0]!r}.", unknown[0])
    merged = {**(base or DEFAULT_POLICY), **data}
    values: dict[str, Any] = {}
    multiples = merged["income_multiples"]
    if not isinstance(multiples, Mapping) or sorted(multiples) != sorted(RATINGS):
        raise _invalid("income_multiples gives a multiple for each of A, B, C and D.", "income_multiples")
    values["income_multiples"] = {r: _ratio(multiples[r], f"income_multiples.{r}", Decimal(0), Decimal(120))
                                  for r in RATINGS}
    for name, (low, high) in _RATIOS.items():
        values[name] = _ratio(merged[name], name, low, high)
    for name, (lowest, highest) in _INTS.items():
        value = merged[name]
        if isinstance(value, bool) or not isinstance(value, int) or not lowest <= value <= highest:
            raise _invalid(f"{name} is a whole number from {lowest} to {highest}.", name)
        values[name] = value
    shares = merged["group_shares"]
    if not isinstance(shares, Mapping) or len(shares) > 20:
        raise _invalid("group_shares maps up to 20 limit groups to a share of the line.", "group_shares")
    values["group_shares"] = {}
    for group, share in shares.items():
        if not isinstance(group, str) or not 1 <= len(group) <= 40 or not set(group) <= _GROUP_CHARS:
            raise _invalid("A limit group is 1-40 lower-case letters, digits or underscores.", "group_shares")
        values["group_shares"][group] = _ratio(share, f"group_shares.{group}", Decimal(0), Decimal(1))
    if values["freeze_after_days_past_due"] < values["lower_after_days_past_due"]:
        raise _invalid("freeze_after_days_past_due is at least lower_after_days_past_due.",
                       "freeze_after_days_past_due")
    return LimitPolicy(**values)


DEFAULT = check_policy({})


# ---------------------------------------------------------------------------------------------- calculation


@dataclass(frozen=True, slots=True)
class LimitInputs:
    """What a calculation reads: gathered by ``limits.inputs_for`` from the records."""

    currency: str
    party_kind: str
    #: A's to D's or "reject"; None when the applicant was never scored.
    rating: str | None
    score: int | None
    monthly_income: int
    #: Open balances at other lenders (bureau), minor units; None without a report.
    existing_debt: int | None
    delinquencies_24m: int | None
    enquiries_90d: int | None
    is_thin_file: bool | None
    has_bureau_report: bool
    #: Merchants: net sales (captured less refunded) of the last 365 days, and the months traded in them.
    net_sales_365d: int | None = None
    trading_months: Fraction | None = None
    on_time_repayments: int = 0
    overdue_days: int = 0
    requested_amount: int | None = None
    score_id: str | None = None
    bureau_report_id: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {"currency": self.currency, "party_kind": self.party_kind, "rating": self.rating,
                "score": self.score, "score_id": self.score_id, "monthly_income_amount": self.monthly_income,
                "bureau_report_id": self.bureau_report_id, "existing_debt_amount": self.existing_debt,
                "delinquencies_24m": self.delinquencies_24m, "enquiries_90d": self.enquiries_90d,
                "is_thin_file": self.is_thin_file, "net_sales_365d_amount": self.net_sales_365d,
                "trading_months": None if self.trading_months is None else str(
                    Decimal(self.trading_months.numerator) / self.trading_months.denominator),
                "on_time_repayments": self.on_time_repayments, "overdue_days": self.overdue_days,
                "requested_amount": self.requested_amount}


@dataclass(frozen=True, slots=True)
class Factor:
    code: str
    description: str
    value: str
    before: int
    after: int

    def to_json(self) -> dict[str, Any]:
        return {"code": self.code, "description": self.description, "value": self.value,
                "before_amount": self.before, "after_amount": self.after, "effect_amount": self.after - self.before}


@dataclass(frozen=True, slots=True)
class Calculation:
    limit: int
    sub_limits: dict[str, int]
    factors: tuple[Factor, ...]
    inputs: LimitInputs
    policy: LimitPolicy = field(repr=False)

    def to_json(self) -> dict[str, Any]:
        return {"limit_amount": self.limit, "sub_limits": dict(self.sub_limits),
                "factors": [f.to_json() for f in self.factors], "inputs": self.inputs.to_json(),
                "policy": self.policy.to_json()}


def _floor(value: Fraction) -> int:
    return value.numerator // value.denominator


def round_down_to_step(amount: int | Fraction, policy: LimitPolicy, code: str) -> int:
    step = policy.step * currency(code).minor_per_major
    whole = _floor(Fraction(amount))
    return max(0, whole - whole % step)


def _shown(amount: int | Fraction, code: str) -> str:
    return Money(_floor(Fraction(amount)), code).format()


def calculate(policy: LimitPolicy, inputs: LimitInputs, groups: Sequence[str]) -> Calculation:
    """The line's limit and the sub-limit of each group, with the factors that made them."""
    code = inputs.currency
    factors: list[Factor] = []
    amount = Fraction(0)

    def note(factor_code: str, description: str, value: str, after: Fraction) -> Fraction:
        factors.append(Factor(factor_code, description, value, _floor(amount), _floor(after)))
        return after

    if inputs.rating is None:
        amount = note("no_score", "The applicant has not been scored", "none", Fraction(0))
    elif inputs.rating not in RATINGS:
        amount = note("rating_reject", "The score is below every rating band", inputs.rating, Fraction(0))
    else:
        multiple = policy.income_multiples[inputs.rating]
        income = "monthly revenue" if inputs.party_kind == "merchant" else "monthly income"
        amount = note("rating_income_multiple", f"Rating {inputs.rating}: {multiple} × declared {income}",
                      f"{inputs.rating}; {_shown(inputs.monthly_income, code)}",
                      Fraction(multiple) * inputs.monthly_income)
    if inputs.party_kind == "merchant":
        months = inputs.trading_months or Fraction(0)
        if months < policy.min_trading_months or not inputs.net_sales_365d:
            amount = note("short_trading_history",
                          f"Less than {policy.min_trading_months} months of sales on the platform",
                          f"{float(months):.1f} months", Fraction(0))
        else:
            average = Fraction(max(0, inputs.net_sales_365d)) / months
            cap = Fraction(policy.trading_multiple) * average
            amount = note("trading_history",
                          f"At most {policy.trading_multiple} × average monthly net sales",
                          f"{_shown(average, code)} a month over {float(months):.1f} months", min(amount, cap))
    if inputs.on_time_repayments >= policy.raise_after_on_time and amount > 0:
        steps = inputs.on_time_repayments // policy.raise_after_on_time
        bonus = (1 + Fraction(policy.raise_rate)) ** steps
        amount = note("repayment_history", f"+{policy.raise_rate * 100}% for every {policy.raise_after_on_time} "
                      "consecutive on-time repayments", f"{inputs.on_time_repayments} on time", amount * bonus)
    if inputs.existing_debt is not None:
        headroom = Fraction(policy.dti_cap) * 12 * inputs.monthly_income - inputs.existing_debt
        amount = note("debt_to_income_cap", f"Existing debt plus the line within {policy.dti_cap} × annual income",
                      f"existing debt {_shown(inputs.existing_debt, code)}", min(amount, max(Fraction(0), headroom)))
    if inputs.delinquencies_24m:
        kept = max(Fraction(0), 1 - Fraction(policy.delinquency_cut) * inputs.delinquencies_24m)
        amount = note("bureau_delinquencies", f"-{policy.delinquency_cut * 100}% per late payment reported in 24 "
                      "months", str(inputs.delinquencies_24m), amount * kept)
    if inputs.enquiries_90d is not None and inputs.enquiries_90d >= policy.enquiry_threshold:
        amount = note("bureau_enquiries", f"-{policy.enquiry_cut * 100}% for {policy.enquiry_threshold} or more "
                      "credit enquiries from other lenders in 90 days", str(inputs.enquiries_90d),
                      amount * (1 - Fraction(policy.enquiry_cut)))
    if not inputs.has_bureau_report or inputs.is_thin_file:
        value = "no report" if not inputs.has_bureau_report else "thin file"
        amount = note("thin_credit_file", f"× {policy.thin_file_factor}: little or no credit history at the "
                      "bureau", value, amount * Fraction(policy.thin_file_factor))
    if inputs.overdue_days >= policy.freeze_after_days_past_due:
        amount = note("overdue", f"Overdue {policy.freeze_after_days_past_due} days or more",
                      f"{inputs.overdue_days} days", Fraction(0))
    elif inputs.overdue_days >= policy.lower_after_days_past_due:
        amount = note("overdue", f"-{policy.lower_rate * 100}% while a repayment is overdue",
                      f"{inputs.overdue_days} days", amount * (1 - Fraction(policy.lower_rate)))
    if inputs.requested_amount is not None and amount > inputs.requested_amount:
        amount = note("requested_need", "No more than the applicant asked for",
                      _shown(inputs.requested_amount, code), Fraction(inputs.requested_amount))
    largest = policy.max_line * currency(code).minor_per_major
    if amount > largest:
        amount = note("max_line", "The policy's largest line", _shown(largest, code), Fraction(largest))
    limit = round_down_to_step(amount, policy, code)
    if limit != _floor(amount):
        note("rounded", f"Rounded down to a multiple of {policy.step}", _shown(limit, code), Fraction(limit))
    sub_limits = {group: min(limit, round_down_to_step(Fraction(policy.share(group)) * limit, policy, code))
                  for group in sorted(set(groups))}
    return Calculation(limit, sub_limits, tuple(factors), inputs, policy)


def lowered(policy: LimitPolicy, limit: int, code: str) -> int:
    """The limit after one cut for an overdue repayment (``lower_rate`` off, rounded down to the step)."""
    return round_down_to_step(limit * (1 - Fraction(policy.lower_rate)), policy, code)
