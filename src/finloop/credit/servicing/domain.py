"""Servicing rules as pure code: day numbers, buckets, the accrual formula, allocation of a payment, penalty
interest, provisioning rates and the write-off threshold. No I/O.

Invariants owned here:
- the accrual of a period is cumulative with truncation: after day ``d`` of a period from ``s`` to its due day
  ``e`` (``s <= d < e``), ``period_interest · (d - s + 1) // (e - s)`` has been accrued. Each day posts the
  difference, so the days of a period sum exactly to its scheduled interest (the last day tops it up) and a
  day processed twice posts nothing the second time. The end of day's SQL computes the same expression;
- days past due count from the oldest unpaid installment's due day: ``dpd = max(0, day - due_day)``; buckets
  are M0 (0), M1 (1–30), M2 (31–60), M3 (61–90) and M4 (91 and more);
- a payment is allocated component by component in the product's order (default penalty, fees, interest,
  principal) over what has been billed, oldest installment first within a component; the allocation sums to
  what was allocated and never exceeds what was owed;
- penalty interest accrues each day past the grace period on the overdue principal: the daily rate (an annual
  rate over 365, a daily rate as it is) times the billed unpaid principal, rounded half up each day;
- provisioning: by bucket (a rate per bucket of the exposure) or by expected loss (exposure × PD × LGD, the PD
  the origination score's in M0 and the policy's per bucket after), each rounded half up to the minor unit.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal
from enum import StrEnum
from fractions import Fraction
from typing import Any

from finloop.core.errors import InvalidRequest
from finloop.core.money import Rounding, round_minor

EPOCH = date(1970, 1, 1)


def day_number(day: date) -> int:
    return (day - EPOCH).days


def day_of(number: int) -> date:
    return EPOCH + timedelta(days=number)


class AccountState(StrEnum):
    PERFORMING = "performing"
    OVERDUE = "overdue"
    PAID_OFF = "paid_off"
    WRITTEN_OFF = "written_off"


OPEN_STATES = (AccountState.PERFORMING.value, AccountState.OVERDUE.value)


class Bucket(StrEnum):
    M0 = "M0"
    M1 = "M1"
    M2 = "M2"
    M3 = "M3"
    M4 = "M4"


BUCKETS = tuple(Bucket)
#: The upper bound (days past due, inclusive) of each bucket but the last.
BUCKET_BOUNDS = ((Bucket.M0, 0), (Bucket.M1, 30), (Bucket.M2, 60), (Bucket.M3, 90))


def bucket_for(dpd: int) -> Bucket:
    for bucket, upper in BUCKET_BOUNDS:
        if dpd <= upper:
            return bucket
    return Bucket.M4


def days_past_due(day: int, oldest_unpaid_due_day: int | None) -> int:
    if oldest_unpaid_due_day is None:
        return 0
    return max(0, day - oldest_unpaid_due_day)


def accrued_through(period_interest: int, start_day: int, due_day: int, day: int) -> int:
    """The interest of a period accrued once ``day`` has been processed (the module's accrual rule)."""
    if day < start_day:
        return 0
    if day >= due_day - 1:
        return period_interest
    return period_interest * (day - start_day + 1) // (due_day - start_day)


class Component(StrEnum):
    PENALTY = "penalty"
    FEES = "fees"
    INTEREST = "interest"
    PRINCIPAL = "principal"


DEFAULT_ORDER = (Component.PENALTY, Component.FEES, Component.INTEREST, Component.PRINCIPAL)


@dataclass(slots=True)
class BilledInstallment:
    """What is still owed of one billed installment (the penalty is owed by the loan, not an installment)."""

    number: int
    due_day: int
    principal: int
    interest: int
    fees: int


@dataclass(slots=True)
class Allocation:
    penalty: int = 0
    fees: int = 0
    interest: int = 0
    principal: int = 0
    #: Per installment number: {"principal": n, "interest": n, "fees": n} paid by this allocation.
    installments: dict[int, dict[str, int]] = field(default_factory=dict)

    @property
    def total(self) -> int:
        return self.penalty + self.fees + self.interest + self.principal

    def to_json(self) -> dict[str, int]:
        return {"penalty": self.penalty, "fees": self.fees, "interest": self.interest, "principal": self.principal}


def allocate(amount: int, order: Sequence[str], penalty: int, installments: Sequence[BilledInstallment]) -> Allocation:
    """Allocate ``amount`` over the billed amounts (see the module's doc); what is left is ``amount - total``."""
    if amount < 0:
        raise ValueError("an allocation is of a non-negative amount")
    left = amount
    result = Allocation()
    owed = sorted(installments, key=lambda i: (i.due_day, i.number))
    for name in order:
        component = Component(name)
        if component is Component.PENALTY:
            paid = min(left, penalty)
            result.penalty += paid
            left -= paid
            continue
        for installment in owed:
            due = getattr(installment, component.value)
            paid = min(left, due)
            if paid:
                setattr(installment, component.value, due - paid)
                per = result.installments.setdefault(installment.number, {"principal": 0, "interest": 0, "fees": 0})
                per[component.value] += paid
                setattr(result, component.value, getattr(result, component.value) + paid)
                left -= paid
            if left == 0:
                break
        if left == 0:
            break
    return result


def daily_rate(rate: Decimal, basis: str) -> Fraction:
    return Fraction(rate) if basis == "daily" else Fraction(rate) / 365


def daily_penalty(overdue_principal: int, rate: Decimal, basis: str) -> int:
    return round_minor(overdue_principal * daily_rate(rate, basis), Rounding.HALF_UP)


def prepayment_fee(principal: int, rate: Decimal) -> int:
    return round_minor(principal * Fraction(rate), Rounding.HALF_UP)


# ---------------------------------------------------------------------------------------------- provisioning


class ProvisionMethod(StrEnum):
    BUCKET = "bucket"
    EXPECTED_LOSS = "expected_loss"


PPM = 1_000_000
#: Rates per bucket: the default allowance for the by-bucket method (a common regulatory five-tier scale).
DEFAULT_BUCKET_RATES = {"M0": "0.01", "M1": "0.10", "M2": "0.30", "M3": "0.50", "M4": "1"}
#: Probabilities of default once past due (M0 uses the loan's origination score) and the loss given default.
DEFAULT_PD = {"M1": "0.25", "M2": "0.50", "M3": "0.75", "M4": "1"}
DEFAULT_LGD = "0.60"


@dataclass(frozen=True, slots=True)
class ProvisionPolicy:
    method: ProvisionMethod = ProvisionMethod.BUCKET
    #: Parts per million of the exposure, per bucket (by bucket) or the PD per bucket (expected loss).
    rates_ppm: Mapping[str, int] = field(default_factory=dict)
    lgd_ppm: int = 600_000

    def to_json(self) -> dict[str, Any]:
        rates = {bucket: str(Decimal(ppm) / PPM) for bucket, ppm in self.rates_ppm.items()}
        out: dict[str, Any] = {"method": self.method.value}
        if self.method is ProvisionMethod.BUCKET:
            out["bucket_rates"] = rates
        else:
            out["pd_by_bucket"] = rates
            out["lgd"] = str(Decimal(self.lgd_ppm) / PPM)
        return out


def _ppm(value: Any, param: str) -> int:
    if isinstance(value, bool) or not isinstance(value, str | int | Decimal):
        raise InvalidRequest(f"{param} is a decimal string between 0 and 1 such as \"0.10\".", code="invalid_rate",
                             param=param)
    try:
        rate = Decimal(value)
    except ArithmeticError:
        raise InvalidRequest(f"{param} is a decimal string such as \"0.10\".", code="invalid_rate",
                             param=param) from None
    if not rate.is_finite() or not 0 <= rate <= 1 or (rate * PPM) != (rate * PPM).to_integral_value():
        raise InvalidRequest(f"{param} is between 0 and 1 with at most six decimals.", code="invalid_rate",
                             param=param)
    return int(rate * PPM)


def check_provision_policy(data: Mapping[str, Any]) -> ProvisionPolicy:
    method_value = data.get("method", ProvisionMethod.BUCKET.value)
    try:
        method = ProvisionMethod(method_value)
    except ValueError:
        raise InvalidRequest("method is \"bucket\" or \"expected_loss\".", code="invalid_provision_method",
                             param="method") from None
    if method is ProvisionMethod.BUCKET:
        given = data.get("bucket_rates") or DEFAULT_BUCKET_RATES
        wanted = [b.value for b in BUCKETS]
        param = "bucket_rates"
    else:
        given = data.get("pd_by_bucket") or DEFAULT_PD
        wanted = [b.value for b in BUCKETS if b is not Bucket.M0]
        param = "pd_by_bucket"
    if not isinstance(given, Mapping) or sorted(given) != sorted(wanted):
        raise InvalidRequest(f"{param} gives a rate for each of {', '.join(wanted)}.", code="invalid_provision_rates",
                             param=param)
    rates = {bucket: _ppm(given[bucket], f"{param}.{bucket}") for bucket in wanted}
    ordered = [rates[b] for b in wanted]
    if ordered != sorted(ordered):
        raise InvalidRequest("Rates never fall as loans age into later buckets.", code="invalid_provision_rates",
                             param=param)
    lgd = _ppm(data.get("lgd", DEFAULT_LGD), "lgd") if method is ProvisionMethod.EXPECTED_LOSS else 600_000
    return ProvisionPolicy(method, rates, lgd)


DEFAULT_PROVISION_POLICY = check_provision_policy({})


def provision_for(policy: ProvisionPolicy, exposure: int, bucket: str, pd_ppm: int) -> int:
    """The allowance a loan needs: ``exposure`` (principal and receivables) by the policy, rounded half up."""
    return round_minor(Fraction(exposure * loss_rate_ppm(policy, bucket, pd_ppm), PPM), Rounding.HALF_UP)


def loss_rate_ppm(policy: ProvisionPolicy, bucket: str, pd_ppm: int) -> int:
    """The share of the exposure provided for, in parts per million; for expected loss PD × LGD truncated to the
    ppm, so that the end of day's SQL (integer arithmetic) and this code agree to the minor unit."""
    if policy.method is ProvisionMethod.BUCKET:
        return policy.rates_ppm[bucket]
    pd = pd_ppm if bucket == Bucket.M0.value else policy.rates_ppm[bucket]
    return pd * policy.lgd_ppm // PPM


#: Write-off after this many days past due unless the product says otherwise (the issue's defaults).
DEFAULT_WRITE_OFF_DAYS = {"revolving": 180, "installment": 120, "bnpl": 120, "cash": 120}
