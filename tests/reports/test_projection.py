"""The projection's arithmetic and the pure helpers of the reports, without a database."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest

from finloop.core.errors import InvalidRequest
from finloop.reports.projection import SCENARIOS, Book, project, totals
from finloop.reports.service import dpd_class, parse_params, revenue_source

BOOK = Book(currency="CNY", outstanding_amount=1_000_000, monthly_rate=Decimal("0.01"),
            monthly_default_rate=Decimal("0.02"), funding_rate=Decimal("0.06"),
            scheduled_principal=(100_000, 100_000))


def test_each_month_starts_from_what_the_last_left() -> None:
    first, second, third = project(BOOK, 3)
    assert (first.opening_amount, first.interest_amount, first.loss_amount, first.funding_cost_amount,
            first.repaid_amount, first.closing_amount) == (1_000_000, 10_000, 20_000, 5_000, 100_000, 880_000)
    assert (second.opening_amount, second.interest_amount, second.loss_amount, second.funding_cost_amount,
            second.closing_amount) == (880_000, 8_800, 17_600, 4_400, 762_400)
    assert third.repaid_amount == 0  # nothing more falls due
    assert totals([first, second]) == (18_800, 37_600, 9_400)


def test_the_scenarios_change_one_thing_each() -> None:
    by_name = {s.name: project(BOOK, 1, s)[0] for s in SCENARIOS}
    assert by_name["defaults_doubled"].loss_amount == 40_000
    assert by_name["funding_cost_plus_2pts"].funding_cost_amount == 6_667  # 1,000,000 x 0.08 / 12 = 6,666.67
    assert (by_name["approvals_plus_50pct"].opening_amount, by_name["approvals_plus_50pct"].repaid_amount) == \
        (1_500_000, 150_000)
    assert by_name["base"].net_amount == 10_000 - 20_000 - 5_000


def test_interest_rounds_half_even_and_losses_half_up() -> None:
    tiny = Book("CNY", 100_000, Decimal("0.000005"), Decimal("0.000005"), Decimal(0), ())
    month = project(tiny, 1)[0]
    assert (month.interest_amount, month.loss_amount) == (0, 1)  # both exactly 0.5


def test_losses_never_exceed_the_book() -> None:
    doomed = Book("CNY", 1_000, Decimal(0), Decimal("0.9"), Decimal(0), (500,))
    first = project(doomed, 1, SCENARIOS[1])[0]  # 180 % of the book defaults
    assert (first.loss_amount, first.repaid_amount, first.closing_amount) == (1_000, 0, 0)


@pytest.mark.parametrize(("dpd", "name"), [(0, "current"), (1, "1-30"), (30, "1-30"), (31, "31-60"), (60, "31-60"),
                                           (61, "61-90"), (90, "61-90"), (91, "90+"), (400, "90+")])
def test_days_past_due_classes(dpd: int, name: str) -> None:
    assert dpd_class(dpd) == name


@pytest.mark.parametrize(("code", "source"), [
    ("income:commission:7", "commission"), ("income:fee_recovery:0", "platform_fees"),
    ("income:credit:installment:interest", "credit_interest"), ("income:credit:bnpl:subsidy", "credit_interest"),
    ("income:credit:cash:fees", "credit_fees"), ("income:credit:cash:penalty", "credit_fees"),
    ("income:credit:cash:recoveries", "credit_recoveries"), ("income:fx_gains", "fx_gains"),
    ("income:wealth:spread", "wealth_spread"), ("income:reconciliation_differences", "other")])
def test_revenue_sources_by_account_code(code: str, source: str) -> None:
    assert revenue_source(code) == source


def test_parameters_default_to_the_last_30_days() -> None:
    params = parse_params({}, date(2026, 3, 31))
    assert (params.start, params.end, params.months, params.currency) == (date(2026, 3, 2), date(2026, 3, 31), 12,
                                                                          None)
    with pytest.raises(InvalidRequest) as raised:
        parse_params({"months": "0"}, date(2026, 3, 31))
    assert (raised.value.code, raised.value.param) == ("invalid_months", "months")
