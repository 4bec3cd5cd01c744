"""Portfolio queries over a small book on both backends: the summary's buckets and rates (live and from month-end
snapshots), vintage curves by count and by principal, the roll-rate matrix with absorbing states, per-loan P&L
with cost of funds allocated by principal-days, the portfolio P&L reconciled against the general ledger, a month's
P&L from the ledger, the operating cost policy; another tenant sees nothing."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from finloop.core.errors import InvalidRequest, NotFound
from finloop.credit import funding
from finloop.credit.limits import grant_line
from finloop.credit.models import CreditLine
from finloop.credit.portfolio import service
from finloop.db.uow import Database
from finloop.ledger.domain import AccountType
from tests.conftest import TenantHandle, make_tenant
from tests.credit.portfolio.conftest import GROUP, Parents, book, parents, post

ASSET, INCOME, EXPENSE = AccountType.ASSET, AccountType.INCOME, AccountType.EXPENSE


@pytest.fixture
def p(db: Database, tenant: TenantHandle) -> Parents:
    return parents(db, tenant.id, applicants=3)


def test_summary_gives_buckets_overdue_bad_debt_approval_and_reborrow(db: Database, p: Parents) -> None:
    book(db, p, applicant=0, principal=600_000, disbursed_on=date(2026, 1, 10))
    book(db, p, applicant=1, principal=400_000, disbursed_on=date(2026, 1, 12), state="overdue", dpd=45,
         outstanding=300_000)
    book(db, p, applicant=2, principal=200_000, disbursed_on=date(2026, 1, 5), state="written_off",
         closed_on=date(2026, 2, 20), totals={"written_off_amount": 150_000})
    # Applicant 0 repaid a first loan and borrowed again (the open loan above, disbursed after the payoff).
    book(db, p, applicant=0, principal=100_000, disbursed_on=date(2025, 11, 1), state="paid_off",
         closed_on=date(2026, 1, 2))
    book(db, p, applicant=1, principal=1, disbursed_on=date(2026, 1, 3), outcome="decline")
    with db.uow() as uow:
        line = grant_line(uow, p.tenant_id, p.applicant_ids[0], actor="test")
        row = uow.session.get(CreditLine, line.id)
        assert row is not None
        row.used_amount = min(row.limit_amount, 600_000)
        used, limit = row.used_amount, row.limit_amount
        uow.commit()
    with db.uow(read_only=True) as uow:
        found = service.portfolio_summary(uow, p.tenant_id, as_of=date(2026, 3, 1))
    (cny,) = found["currencies"]
    assert found["source"] == "live"
    assert (cny["open_loans"], cny["principal_outstanding"], cny["overdue_principal"]) == (2, 900_000, 300_000)
    buckets = {b["bucket"]: (b["loans"], b["principal_outstanding"], b["rate"]) for b in cny["buckets"]}
    assert buckets["M0"] == (1, 600_000, "0.6667") and buckets["M2"] == (1, 300_000, "0.3333")
    assert buckets["M4"] == (0, 0, "0.0000") and cny["overdue_rate"] == "0.3333" and cny["m4_rate"] == "0.0000"
    assert (cny["disbursed_loans"], cny["disbursed_principal"], cny["written_off_amount"]) == (4, 1_300_000, 150_000)
    assert cny["bad_debt_rate"] == "0.1154"  # 150,000 / 1,300,000
    assert (cny["limit_used_amount"], cny["limit_amount"]) == (used, limit)
    assert found["applications"] == {"decided": 5, "approved": 4, "declined": 1, "approval_rate": "0.8000"}
    assert found["reborrow"] == {"applicants_paid_off": 1, "reborrowed": 1, "reborrow_rate": "1.0000"}
    # Before the write-off and the second loan: less disbursed, nothing lost yet.
    with db.uow(read_only=True) as uow:
        early = service.portfolio_summary(uow, p.tenant_id, as_of=date(2026, 1, 9), since=date(2026, 1, 4))
    assert early["currencies"][0]["written_off_amount"] == 0 and early["currencies"][0]["disbursed_loans"] == 2
    assert early["applications"]["decided"] == 1 and early["reborrow"]["reborrowed"] == 0


def test_summary_at_a_month_end_reads_the_snapshots(db: Database, p: Parents) -> None:
    book(db, p, disbursed_on=date(2026, 1, 10), snapshots=[
        {"month": "2026-01", "dpd": 0}, {"month": "2026-02", "dpd": 95, "outstanding": 800_000}])
    with db.uow(read_only=True) as uow:
        feb = service.portfolio_summary(uow, p.tenant_id, as_of=date(2026, 2, 28))
        live = service.portfolio_summary(uow, p.tenant_id, as_of=date(2026, 2, 27))
    assert feb["source"] == "month_end" and feb["currencies"][0]["m4_rate"] == "1.0000"
    assert feb["currencies"][0]["principal_outstanding"] == 800_000
    assert live["source"] == "live" and live["currencies"][0]["buckets"][0]["principal_outstanding"] == 1_000_000


def test_vintage_counts_loans_ever_past_the_threshold_by_months_on_book(db: Database, p: Parents) -> None:
    book(db, p, principal=300_000, disbursed_on=date(2026, 1, 5), snapshots=[
        {"month": "2026-01", "dpd": 0}, {"month": "2026-02", "dpd": 31}, {"month": "2026-03", "dpd": 0}])
    book(db, p, principal=100_000, disbursed_on=date(2026, 1, 20), snapshots=[
        {"month": "2026-01", "dpd": 0}, {"month": "2026-02", "dpd": 0}, {"month": "2026-03", "dpd": 0}])
    book(db, p, principal=100_000, disbursed_on=date(2026, 2, 3), snapshots=[
        {"month": "2026-02", "dpd": 0}, {"month": "2026-03", "dpd": 12}])
    with db.uow(read_only=True) as uow:
        counted = service.vintage(uow, p.tenant_id)
        weighed = service.vintage(uow, p.tenant_id, basis="principal", threshold_dpd=10, from_month="2026-02")
    january, february = counted["curves"]
    assert (january["origination_month"], january["loans"], january["principal_amount"]) == ("2026-01", 2, 400_000)
    # The loan that cured in March still counts: the curve is "ever" past due.
    assert [(pt["months_on_book"], pt["loans_bad"], pt["rate"]) for pt in january["points"]] == [
        (0, 0, "0.0000"), (1, 1, "0.5000"), (2, 1, "0.5000")]
    assert [pt["rate"] for pt in february["points"]] == ["0.0000", "0.0000"]
    (only,) = weighed["curves"]
    assert only["origination_month"] == "2026-02" and [pt["rate"] for pt in only["points"]] == ["0.0000", "1.0000"]
    with db.uow(read_only=True) as uow, pytest.raises(InvalidRequest) as error:
        service.vintage(uow, p.tenant_id, basis="amount")
    assert (error.value.code, error.value.param) == ("invalid_basis", "basis")


def test_roll_rates_follow_loans_into_buckets_and_absorbing_states(db: Database, p: Parents) -> None:
    book(db, p, principal=100_000, disbursed_on=date(2026, 1, 5), snapshots=[
        {"month": "2026-01", "dpd": 0}, {"month": "2026-02", "dpd": 20}])
    book(db, p, principal=200_000, disbursed_on=date(2026, 1, 6), snapshots=[
        {"month": "2026-01", "dpd": 0}, {"month": "2026-02", "dpd": 0}])
    # Paid off in February: no February snapshot, the account says where it went.
    book(db, p, principal=300_000, disbursed_on=date(2026, 1, 7), state="paid_off", closed_on=date(2026, 2, 10),
         snapshots=[{"month": "2026-01", "dpd": 0}])
    book(db, p, principal=400_000, disbursed_on=date(2025, 9, 1), snapshots=[
        {"month": "2026-01", "dpd": 125}, {"month": "2026-02", "dpd": 0, "state": "written_off",
                                            "outstanding": 0}])
    with db.uow(read_only=True) as uow:
        found = service.roll_rates(uow, p.tenant_id, month_from="2026-01", month_to="2026-02")
    (matrix,) = found["matrices"]
    rows = {r["bucket"]: r for r in matrix["rows"]}
    assert rows["M0"]["loans"] == 3 and rows["M0"]["principal"] == 600_000
    assert {k: v for k, v in rows["M0"]["counts"].items() if v} == {"M0": 1, "M1": 1, "paid_off": 1}
    assert rows["M0"]["count_shares"] == {"M0": "0.333334", "M1": "0.333333", "M2": "0.000000",
                                          "M3": "0.000000", "M4": "0.000000", "paid_off": "0.333333",
                                          "written_off": "0.000000"}
    assert rows["M0"]["principal_shares"]["paid_off"] == "0.500000"
    assert rows["M4"]["counts"]["written_off"] == 1 and rows["M1"]["count_shares"] is None
    assert found["unmatched_loans"] == 0
    with db.uow(read_only=True) as uow, pytest.raises(InvalidRequest) as error:
        service.roll_rates(uow, p.tenant_id, month_from="2026-02", month_to="2026-02")
    assert (error.value.code, error.value.param) == ("invalid_range", "month_from")


def test_pnl_allocates_cost_of_funds_by_principal_days_and_reconciles_with_the_ledger(
        db: Database, p: Parents) -> None:
    first = book(db, p, principal=1_000_000, disbursed_on=date(2026, 1, 1), provision=10_000,
                 totals={"interest_income": 30_000, "fee_income": 2_000}, snapshots=[
                     {"month": "2026-01", "dpd": 0, "outstanding": 500_000}])
    second = book(db, p, principal=1_000_000, disbursed_on=date(2026, 2, 1), state="written_off",
                  closed_on=date(2026, 2, 15), totals={"interest_income": 5_000, "penalty_income": 700,
                                                       "written_off_amount": 400_000, "recovered_amount": 1_000})
    # The ledger as the servicing would have left it.
    interest, receivable = f"income:credit:{GROUP}:interest", f"assets:loans:{GROUP}:interest"
    post(db, p.tenant_id, "i", (receivable, ASSET), (interest, INCOME), 35_000)
    post(db, p.tenant_id, "f", (f"assets:loans:{GROUP}:fees", ASSET), (f"income:credit:{GROUP}:fees", INCOME), 2_000)
    post(db, p.tenant_id, "p", (f"assets:loans:{GROUP}:penalty", ASSET), (f"income:credit:{GROUP}:penalty", INCOME),
         700)
    post(db, p.tenant_id, "r", ("assets:bank:collections", ASSET), (f"income:credit:{GROUP}:recoveries", INCOME),
         1_000)
    allowance = (f"assets:loans:{GROUP}:allowance", ASSET)
    post(db, p.tenant_id, "v", (f"expenses:credit:{GROUP}:provisions", EXPENSE), allowance, 250_000)
    post(db, p.tenant_id, "w1", allowance, (f"assets:loans:{GROUP}:principal", ASSET), 240_000)
    post(db, p.tenant_id, "w2", (f"expenses:credit:{GROUP}:losses", EXPENSE),
         (f"assets:loans:{GROUP}:principal", ASSET), 160_000)
    with db.uow() as uow:
        source = funding.get_source(uow, p.tenant_id, p.source_id, lock=True)
        for day in range(1, 11):
            funding.accrue_source(uow, source, date(2026, 2, day), 2_000_000)
        accrued = source.accrued_amount
        uow.commit()
    assert accrued > 0
    with db.uow(read_only=True) as uow:
        found = service.pnl(uow, p.tenant_id)
    loans = {row["loan_id"]: row for row in found["loans"]}
    # Principal-days through today (2026-03-02, the frozen clock): 1,000,000 × 31 (January) + 500,000 × 30 (the
    # January month end's balance, from February 1 through March 2); the second loan 1,000,000 × 14 days.
    assert loans[first]["principal_days"] == 1_000_000 * 31 + 500_000 * 30
    assert loans[second]["principal_days"] == 1_000_000 * 14
    assert loans[first]["cost_of_funds"] + loans[second]["cost_of_funds"] == accrued
    assert loans[first]["cost_of_funds"] == pytest.approx(accrued * 46 / 60, abs=1)
    # The default operating cost: 1% a year of the principal over the days on the book, half up.
    assert loans[first]["operating_cost"] == 1_671  # 1,000,000 × 0.01 × 61 / 365 = 1,671.23
    assert loans[second]["operating_cost"] == 384  # 14 days: 383.56
    assert loans[second]["net_profit"] == 5_000 + 700 + 1_000 - loans[second]["cost_of_funds"] - 400_000 \
        - loans[second]["operating_cost"]
    (total,) = found["portfolio"]
    assert total["interest_income"] == 35_000 and total["cost_of_funds"] == accrued
    assert total["unallocated_cost_of_funds"] == 0
    assert found["reconciliation"] is not None and all(r["matches"] for r in found["reconciliation"]), \
        found["reconciliation"]
    with db.uow(read_only=True) as uow:
        one = service.pnl(uow, p.tenant_id, loan_id=first)
    assert [r["loan_id"] for r in one["loans"]] == [first] and one["reconciliation"] is None
    assert one["loans"][0]["cost_of_funds"] == loans[first]["cost_of_funds"]


def test_a_month_pnl_reads_the_ledger_and_charges_operating_cost_for_days_on_book(
        db: Database, p: Parents) -> None:
    book(db, p, principal=3_650_000, disbursed_on=date(2026, 2, 11))
    post(db, p.tenant_id, "feb", (f"assets:loans:{GROUP}:interest", ASSET),
         (f"income:credit:{GROUP}:interest", INCOME), 12_345)
    with db.uow() as uow:
        set_by = service.set_operating_cost_policy(uow, p.tenant_id, {"annual_rate": "0.02"}, actor="test")
        uow.commit()
    assert set_by.to_json() == {"method": "principal_rate", "annual_rate": "0.02"}
    with db.uow(read_only=True) as uow:
        february = service.pnl(uow, p.tenant_id, month="2026-02")
        january = service.pnl(uow, p.tenant_id, month="2026-01")
    (total,) = february["portfolio"]
    # Posted on the frozen clock's date (March 2), so February's ledger has none of it; 18 days on the book.
    assert total["interest_income"] == 0 and total["operating_cost"] == 3_600  # 3,650,000 × 0.02 × 18 / 365
    assert total["loans"] == 1 and february["loans"] == [] and february["reconciliation"] is None
    assert january["portfolio"] == []
    with db.uow(read_only=True) as uow:
        march = service.pnl(uow, p.tenant_id, month="2026-03")
    assert march["portfolio"][0]["interest_income"] == 12_345
    assert march["portfolio"][0]["operating_cost"] == 400  # March 1 and 2: 3,650,000 × 0.02 × 2 / 365
    with db.uow(read_only=True) as uow, pytest.raises(InvalidRequest) as error:
        service.pnl(uow, p.tenant_id, month="2026-02", loan_id="loan_x")
    assert error.value.code == "invalid_combination"


def test_the_operating_cost_policy_is_checked_audited_and_per_loan_month(db: Database, p: Parents) -> None:
    loan = book(db, p, principal=500_000, disbursed_on=date(2026, 1, 15))
    with db.uow() as uow:
        for bad, code, param in (({"method": "per_day"}, "invalid_operating_cost_method", "method"),
                                 ({"annual_rate": "2"}, "invalid_rate", "annual_rate"),
                                 ({"method": "per_loan_month"}, "invalid_policy", "amounts"),
                                 ({"method": "per_loan_month", "amounts": {"CNY": -1}}, "invalid_amount",
                                  "amounts.CNY"),
                                 ({"colour": "red"}, "unknown_field", "colour")):
            with pytest.raises(InvalidRequest) as error:
                service.set_operating_cost_policy(uow, p.tenant_id, bad, actor="test")
            assert (error.value.code, error.value.param) == (code, param)
        assert service.operating_cost_policy(uow, p.tenant_id)[1] is None
        service.set_operating_cost_policy(uow, p.tenant_id, {"method": "per_loan_month", "amounts": {"CNY": 800}},
                                          actor="test")
        uow.commit()
    with db.uow(read_only=True) as uow:
        found = service.pnl(uow, p.tenant_id, loan_id=loan)
    # Open at the January and February month ends.
    assert found["loans"][0]["operating_cost"] == 1_600
    assert found["operating_cost_policy"] == {"method": "per_loan_month", "amounts": {"CNY": 800}}


def test_another_tenant_sees_nothing_and_unknown_filters_are_404(db: Database, p: Parents) -> None:
    loan = book(db, p, disbursed_on=date(2026, 1, 10), snapshots=[{"month": "2026-01", "dpd": 40}])
    other = make_tenant(db, "Other Co")
    with db.uow(read_only=True) as uow:
        summary = service.portfolio_summary(uow, other.id, as_of=date(2026, 3, 1))
        assert summary["currencies"] == [] and summary["applications"]["decided"] == 0
        assert service.vintage(uow, other.id)["curves"] == []
        assert service.roll_rates(uow, other.id, month_from="2026-01", month_to="2026-02")["matrices"] == []
        assert service.pnl(uow, other.id)["loans"] == []
        with pytest.raises(NotFound) as missing:
            service.pnl(uow, other.id, loan_id=loan)
        assert (missing.value.code, missing.value.param) == ("loan_not_found", "loan_id")
        with pytest.raises(NotFound) as unknown:
            service.portfolio_summary(uow, p.tenant_id, as_of=date(2026, 3, 1), product_code="nope")
        assert (unknown.value.code, unknown.value.param) == ("product_not_found", "product_code")
        mine = service.portfolio_summary(uow, p.tenant_id, as_of=date(2026, 3, 1), product_code=p.product_code)
        assert mine["currencies"][0]["open_loans"] == 1


def test_decisions_are_counted_by_when_they_were_made(db: Database, p: Parents) -> None:
    book(db, p, disbursed_on=date(2026, 1, 10), decided_at=datetime(2026, 1, 31, 23, 59, tzinfo=UTC))
    book(db, p, principal=5, disbursed_on=date(2026, 2, 1), outcome="decline")
    with db.uow(read_only=True) as uow:
        january = service.portfolio_summary(uow, p.tenant_id, as_of=date(2026, 1, 31), since=date(2026, 1, 1))
    assert january["applications"]["approval_rate"] == "1.0000"
