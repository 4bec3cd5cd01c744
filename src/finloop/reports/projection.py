"""The credit book projected month by month: interest income, credit losses and funding cost, and the same under
stress. Pure arithmetic over a summary of the book; no I/O.

Each month starts from the outstanding principal left by the month before. Within a month:

- interest income  = opening outstanding x the book's monthly rate, rounded half-even (as interest accrues);
- credit losses    = opening outstanding x the monthly default rate, rounded half-up (losses are not understated);
- funding cost     = opening outstanding x the funding rate / 12, rounded half-even;
- repaid principal = the principal the schedules fall due that month (scaled with the book's volume), never more
  than what is left after the losses;
- closing outstanding = opening - losses - repaid principal.

Every loss is taken as the whole defaulted principal (no recovery is assumed), so the losses are an upper bound.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal

from finloop.core.money import Rounding, round_minor

#: The method in one paragraph, as the forecast report states it beside its figures.
METHOD = ("Each month starts from the outstanding principal the month before left. Interest = opening x the book's "
          "monthly rate (half-even); losses = opening x the monthly default rate of the vintage curves (half-up, the "
          "whole principal, no recovery); repaid = the principal the schedules fall due; closing = opening - losses "
          "- repaid.")
MONTHS_PER_YEAR = 12
INTEREST_ROUNDING = Rounding.HALF_EVEN
LOSS_ROUNDING = Rounding.HALF_UP
FUNDING_ROUNDING = Rounding.HALF_EVEN
VOLUME_ROUNDING = Rounding.HALF_EVEN


@dataclass(frozen=True, slots=True)
class Book:
    """What a projection needs of one currency's open loans."""

    currency: str
    outstanding_amount: int
    #: The outstanding-weighted nominal rate per month.
    monthly_rate: Decimal
    #: The share of the outstanding principal expected to default in a month (from the vintage curves).
    monthly_default_rate: Decimal
    #: The annual rate of the money lent, weighted by what each funding source has lent out.
    funding_rate: Decimal
    #: The principal the schedules fall due in each month ahead (index 0 = the first month).
    scheduled_principal: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class Stress:
    name: str
    description: str
    default_multiplier: Decimal = Decimal(1)
    funding_rate_add: Decimal = Decimal(0)
    volume_multiplier: Decimal = Decimal(1)


BASE = Stress("base", "The book as it stands, rates and default curves as observed.")
SCENARIOS: tuple[Stress, ...] = (
    BASE,
    Stress("defaults_doubled", "Every month's default rate twice the observed one.", default_multiplier=Decimal(2)),
    Stress("funding_cost_plus_2pts", "The funding rate 2 percentage points higher.", funding_rate_add=Decimal("0.02")),
    Stress("approvals_plus_50pct", "Half as much again lent on the same terms: the book and its repayments x 1.5, "
           "rates and default rates unchanged.", volume_multiplier=Decimal("1.5")),
)


@dataclass(frozen=True, slots=True)
class Month:
    index: int
    opening_amount: int
    interest_amount: int
    loss_amount: int
    funding_cost_amount: int
    repaid_amount: int
    closing_amount: int

    @property
    def net_amount(self) -> int:
        return self.interest_amount - self.loss_amount - self.funding_cost_amount


def project(book: Book, months: int, stress: Stress = BASE) -> list[Month]:
    default_rate = book.monthly_default_rate * stress.default_multiplier
    funding_monthly = (book.funding_rate + stress.funding_rate_add) / MONTHS_PER_YEAR
    outstanding = round_minor(book.outstanding_amount * stress.volume_multiplier, VOLUME_ROUNDING)
    result = []
    for index in range(months):
        opening = outstanding
        interest = round_minor(opening * book.monthly_rate, INTEREST_ROUNDING)
        loss = min(round_minor(opening * default_rate, LOSS_ROUNDING), opening)
        funding = round_minor(opening * funding_monthly, FUNDING_ROUNDING)
        due = book.scheduled_principal[index] if index < len(book.scheduled_principal) else 0
        repaid = min(round_minor(due * stress.volume_multiplier, VOLUME_ROUNDING), opening - loss)
        outstanding = opening - loss - repaid
        result.append(Month(index + 1, opening, interest, loss, funding, repaid, outstanding))
    return result


def totals(months: Sequence[Month]) -> tuple[int, int, int]:
    """Interest income, credit losses and funding cost over the months."""
    return (sum(m.interest_amount for m in months), sum(m.loss_amount for m in months),
            sum(m.funding_cost_amount for m in months))
