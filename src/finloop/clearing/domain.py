"""Fee rules: pure functions, no I/O.

A fee schedule is one of five kinds, each with an optional minimum and maximum fee:
- ``percentage``: ``rate × amount``;
- ``fixed``: ``fixed_amount``;
- ``percentage_plus_fixed``: ``rate × amount + fixed_amount``;
- ``tiered_by_amount``: the band the payment amount falls in gives the rate and fixed part;
- ``tiered_by_monthly_volume``: the band the channel's succeeded volume of the calendar month so far
  (before this payment) falls in gives the rate and fixed part, for the whole payment.
A band is ``(up_to, rate, fixed_amount)``: a value belongs to the first band with ``value <= up_to``;
the last band has no ``up_to`` and takes everything above.

Rounding rule (``FEE_ROUNDING``): the percentage part is rounded half up to the minor unit, then the
fixed part is added, then the result is clamped to ``[minimum, maximum]``, then capped at the amount:
**a fee is never negative and never above the payment amount** (a fixed fee or a minimum larger than a
tiny payment takes the whole payment, not more). The channel's own fallback (``channel_default_fee``,
no schedule) keeps the historical rule without the cap.

Refund fee policy: ``proportional`` returns the fee share of what is refunded, by cumulative
allocation rounded down (``Rounding.DOWN``): after refunds totalling ``r`` of a capture ``c`` the fee
returned in all is ``floor(fee × r / c)``, so partial refunds in any order return exactly what one
refund of the same total would, and a full refund returns the whole fee. ``retained``: nothing back.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum

from finloop.core.errors import InvalidRequest
from finloop.core.money import MAX_AMOUNT, Rounding, round_minor

#: The named rule of the percentage part of every fee.
FEE_ROUNDING = Rounding.HALF_UP
#: The named rule of the fee share a refund gives back.
REFUND_FEE_ROUNDING = Rounding.DOWN
MAX_TIERS = 20
#: Rates are fractions with at most this many decimal places (0.006 is 0.6 %).
RATE_PLACES = 8


class FeeKind(StrEnum):
    PERCENTAGE = "percentage"
    FIXED = "fixed"
    PERCENTAGE_PLUS_FIXED = "percentage_plus_fixed"
    TIERED_BY_AMOUNT = "tiered_by_amount"
    TIERED_BY_MONTHLY_VOLUME = "tiered_by_monthly_volume"


TIERED_KINDS = frozenset({FeeKind.TIERED_BY_AMOUNT, FeeKind.TIERED_BY_MONTHLY_VOLUME})


class RefundFeePolicy(StrEnum):
    PROPORTIONAL = "proportional"
    RETAINED = "retained"


@dataclass(frozen=True, slots=True)
class Tier:
    up_to: int | None
    rate: Decimal = Decimal(0)
    fixed_amount: int = 0


@dataclass(frozen=True, slots=True)
class FeeRule:
    kind: FeeKind
    rate: Decimal = Decimal(0)
    fixed_amount: int = 0
    tiers: tuple[Tier, ...] = ()
    minimum_amount: int | None = None
    maximum_amount: int | None = None


@dataclass(frozen=True, slots=True)
class FeeResult:
    fee: int
    explanation: str
    tier: int | None = None  # the index of the band used, for tiered kinds


def _bad(message: str, param: str, code: str = "invalid_fee_schedule") -> InvalidRequest:
    return InvalidRequest(message, code=code, param=param)


def _check_rate(rate: Decimal, param: str) -> None:
    if not isinstance(rate, Decimal) or not rate.is_finite() or not Decimal(0) <= rate < Decimal(1):
        raise _bad("A rate is a fraction at least 0 and below 1, given as a string such as \"0.006\".", param,
                   "invalid_fee_rate")
    exponent = rate.as_tuple().exponent
    if isinstance(exponent, int) and exponent < -RATE_PLACES:
        raise _bad(f"A rate has at most {RATE_PLACES} decimal places.", param, "invalid_fee_rate")


def _check_money(value: int | None, param: str) -> None:
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_AMOUNT:
        raise _bad(f"{param} is an integer of minor units between 0 and {MAX_AMOUNT}.", param, "invalid_amount")


def validate_rule(rule: FeeRule) -> None:
    """Refuse a rule that does not say exactly one thing (``InvalidRequest`` naming the field)."""
    _check_rate(rule.rate, "rate")
    _check_money(rule.fixed_amount, "fixed_amount")
    _check_money(rule.minimum_amount, "minimum_amount")
    _check_money(rule.maximum_amount, "maximum_amount")
    if rule.minimum_amount is not None and rule.maximum_amount is not None \
            and rule.minimum_amount > rule.maximum_amount:
        raise _bad("minimum_amount is above maximum_amount.", "minimum_amount")
    if rule.kind in TIERED_KINDS:
        if rule.rate or rule.fixed_amount:
            raise _bad("A tiered schedule gives its rates and fixed parts per band.", "rate")
        _check_tiers(rule.tiers)
        return
    if rule.tiers:
        raise _bad(f"A {rule.kind.value} schedule has no bands.", "tiers")
    if rule.kind is FeeKind.PERCENTAGE and (rule.fixed_amount or not rule.rate):
        raise _bad("A percentage schedule has a rate above 0 and no fixed part.", "rate")
    if rule.kind is FeeKind.FIXED and (rule.rate or not rule.fixed_amount):
        raise _bad("A fixed schedule has a fixed_amount above 0 and no rate.", "fixed_amount")
    if rule.kind is FeeKind.PERCENTAGE_PLUS_FIXED and not (rule.rate and rule.fixed_amount):
        raise _bad("A percentage_plus_fixed schedule has both a rate and a fixed_amount above 0.", "rate")


def _check_tiers(tiers: Sequence[Tier]) -> None:
    if not tiers:
        raise _bad("A tiered schedule has at least one band.", "tiers")
    if len(tiers) > MAX_TIERS:
        raise _bad(f"A tiered schedule has at most {MAX_TIERS} bands.", "tiers")
    previous = -1
    for index, tier in enumerate(tiers):
        param = f"tiers[{index}]"
        _check_rate(tier.rate, f"{param}.rate")
        _check_money(tier.fixed_amount, f"{param}.fixed_amount")
        last = index == len(tiers) - 1
        if tier.up_to is None:
            if not last:
                raise _bad("Only the last band is open-ended (no up_to).", f"{param}.up_to")
            continue
        if last:
            raise _bad("The last band is open-ended: leave its up_to out.", f"{param}.up_to")
        _check_money(tier.up_to, f"{param}.up_to")
        if tier.up_to <= previous:
            raise _bad("Bands are in increasing order of up_to.", f"{param}.up_to")
        previous = tier.up_to


def tier_index(tiers: Sequence[Tier], value: int) -> int:
    """The band ``value`` belongs to: the first with ``value <= up_to``, else the open last one."""
    for index, tier in enumerate(tiers):
        if tier.up_to is None or value <= tier.up_to:
            return index
    return len(tiers) - 1


def _percent(rate: Decimal) -> str:
    return f"{(rate * 100).normalize():f}%"


def compute_fee(rule: FeeRule, amount: int, *, monthly_volume: int = 0) -> FeeResult:
    """The fee of a payment of ``amount`` minor units under ``rule`` (see the module's rounding rule).

    ``monthly_volume`` is the channel's succeeded volume of the month before this payment; only
    ``tiered_by_monthly_volume`` reads it."""
    if amount <= 0:
        return FeeResult(0, "no fee on a zero amount")
    rate, fixed, band, steps = rule.rate, rule.fixed_amount, None, []
    if rule.kind in TIERED_KINDS:
        basis = amount if rule.kind is FeeKind.TIERED_BY_AMOUNT else max(0, monthly_volume)
        band = tier_index(rule.tiers, basis)
        tier = rule.tiers[band]
        rate, fixed = tier.rate, tier.fixed_amount
        what = "amount" if rule.kind is FeeKind.TIERED_BY_AMOUNT else "monthly volume"
        bound = f"up to {tier.up_to}" if tier.up_to is not None else "open-ended"
        steps.append(f"band {band + 1} ({bound}) by {what} {basis}")
    variable = round_minor(Decimal(amount) * rate, FEE_ROUNDING)
    fee = variable + fixed
    parts = []
    if rate:
        parts.append(f"{_percent(rate)} of {amount} = {variable} (half up)")
    if fixed or not rate:
        parts.append(f"{fixed} fixed")
    steps.append(" + ".join(parts) + f" = {fee}")
    if rule.minimum_amount is not None and fee < rule.minimum_amount:
        fee = rule.minimum_amount
        steps.append(f"raised to the minimum {fee}")
    if rule.maximum_amount is not None and fee > rule.maximum_amount:
        fee = rule.maximum_amount
        steps.append(f"lowered to the maximum {fee}")
    if fee > amount:
        fee = amount
        steps.append(f"capped at the amount {amount}")
    return FeeResult(fee, "; ".join(steps), band)


def channel_default_fee(rate: Decimal, fixed_amount: int, amount: int) -> int:
    """The channel's own fee when no schedule applies: rate × amount rounded half up, plus the fixed part."""
    return round_minor(Decimal(amount) * rate, FEE_ROUNDING) + fixed_amount


def cumulative_fee_returned(policy: RefundFeePolicy | str, fee: int, captured: int, refunded: int) -> int:
    """All the fee given back once ``refunded`` of ``captured`` is refunded, rounded down."""
    if policy == RefundFeePolicy.RETAINED or fee <= 0 or captured <= 0 or refunded <= 0:
        return 0
    return round_minor(Decimal(fee) * min(refunded, captured) / captured, REFUND_FEE_ROUNDING)


def refund_fee_returned(policy: RefundFeePolicy | str, *, fee: int, captured: int, refunded_before: int,
                        amount: int, returned_before: int) -> int:
    """The fee share one refund of ``amount`` gives back, after refunds of ``refunded_before`` that gave
    back ``returned_before``: the cumulative share after it less what was already given (never below 0)."""
    total = cumulative_fee_returned(policy, fee, captured, refunded_before + amount)
    return max(0, total - returned_before)
