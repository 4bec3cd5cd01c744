"""The demo's credit day on a small size: every figure it reports is what the stored applications, contracts and
lines give; approved applications are signed and disbursed, from the cheapest funding source with quota left; the
merchant with trading history gets a revolving limit from it and the one without is declined. Both backends."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime
from decimal import Decimal

from sqlalchemy import select

from finloop.core.clock import FrozenClock
from finloop.credit.models import (
    Applicant,
    CreditLine,
    CreditModel,
    CreditSubLimit,
    FundingSource,
    Loan,
    LoanApplication,
    LoanContract,
)
from finloop.db.uow import Database
from finloop.payments.models import Merchant
from finloop.sim import credit_day
from finloop.sim.payments_day import run_day, trading_world
from tests.conftest import make_tenant

#: Friday 23:10 in Shanghai: the week's last cut-off has passed.
AFTER_THE_DAY = datetime(2026, 3, 6, 15, 10, tzinfo=UTC)
PER_SCENARIO = 6


def test_the_credit_day_figures_come_from_the_stored_applications(db: Database, clock: FrozenClock) -> None:
    tenant = make_tenant(db, "Credit Day Shop", timezone="Asia/Shanghai", cutoff="23:00")
    with trading_world(db, clock, tenant.id, seed=7) as world:
        traded = run_day(world, payments=20, seed=7)
        clock.set(AFTER_THE_DAY)
        day = credit_day.run_credit_day(world, seed=7, applications_per_scenario=PER_SCENARIO)
        merchant_id = world.merchant_id
    assert traded.payments == 20

    with db.uow(read_only=True) as uow:
        stored = list(uow.session.scalars(select(LoanApplication).where(LoanApplication.tenant_id == tenant.id)))
        signed = {c.application_id for c in uow.session.scalars(select(LoanContract).where(
            LoanContract.tenant_id == tenant.id, LoanContract.status == "signed"))}
        champion = uow.session.scalar(select(CreditModel).where(CreditModel.tenant_id == tenant.id,
                                                                CreditModel.status == "champion"))
        applicants = {a.id: a for a in uow.session.scalars(select(Applicant).where(Applicant.tenant_id == tenant.id))}
        loans = {loan.application_id: loan for loan in uow.session.scalars(
            select(Loan).where(Loan.tenant_id == tenant.id).order_by(Loan.created_at, Loan.id))}
        sources = {s.id: s for s in uow.session.scalars(select(FundingSource).where(
            FundingSource.tenant_id == tenant.id))}
        store_id = uow.session.scalar(select(Merchant.id).where(Merchant.tenant_id == tenant.id,
                                                                Merchant.name == credit_day.ELECTRONICS_STORE))
        sub_limits = {(line.applicant_id, sub.limit_group): sub.limit_amount
                      for sub, line in uow.session.execute(select(CreditSubLimit, CreditLine).join(
                          CreditLine, CreditLine.id == CreditSubLimit.line_id).where(
                          CreditLine.tenant_id == tenant.id))}
        assert champion is not None and champion.id == day.model_id
        assert len(stored) == sum(s.figures["applications"] for s in day.scenarios)
        by_product = {s.product: s for s in day.scenarios}
        assert set(by_product) == {"bnpl_3", "merchant_revolving", "cash_30"}
        groups = {"bnpl_3": "bnpl", "merchant_revolving": "revolving", "cash_30": "cash"}

        for product, figures in by_product.items():
            rows = [a for a in stored if a.product_code == product]
            f = figures.figures
            assert len(rows) == f["applications"] == figures.applicants > 0
            approved = [a for a in rows if a.final_outcome == "approve"]
            declined = [a for a in rows if a.final_outcome == "decline"]
            assert len(approved) == f["approved"] and len(declined) == f["declined"]
            assert sum(a.final_outcome is None for a in rows) == f["pending_review"]
            assert sum(a.auto_outcome == "approve" for a in rows) == f["automatically_approved"]
            # Every approved application's contract was signed with the digest of the document issued.
            assert {a.id for a in approved} <= signed and all(a.status == "contract_signed" for a in approved)
            assert figures.signed == len(approved)
            latencies = sorted(a.latency_us for a in rows)
            assert f["latency_p50_us"] in latencies and f["latency_p99_us"] == latencies[-1]
            reasons = Counter(r["code"] for a in declined for r in a.reasons)
            assert figures.decline_reasons == reasons.most_common(3)
            granted = sum(sub_limits.get((a, groups[product]), 0) for a in {r.applicant_id for r in rows})
            assert figures.limits_granted == granted
            # Every signed contract became a loan; BNPL paid the store, the others the borrower's account.
            made = [loans[a.id] for a in approved]
            assert all(loan.target == ("merchant" if product == "bnpl_3" else "customer_account") for loan in made)
            assert all(loan.merchant_id == (store_id if product == "bnpl_3" else None) for loan in made)
            active = [loan for loan in made if loan.status == "active"]
            assert figures.loans_disbursed == len(active)
            assert figures.loans_failed == sum(loan.status == "failed" for loan in made)
            assert figures.amount_disbursed == sum(loan.principal_amount for loan in active)
            assert figures.loans_disbursed + figures.loans_failed == len(made)
            assert figures.as_dict()["amount_disbursed"] == figures.amount_disbursed
        assert len(loans) == sum(s.signed for s in day.scenarios) > 0

        # Three CNY sources, cheapest first: the own reserve, then the two partner banks. Each loan went to the
        # cheapest source that had its principal left; the first loan to the reserve; the reserve filled up and
        # a later loan moved on. The drawn amounts are the stored active loans' principal by source.
        plans = {p.code: p for p in credit_day.FUNDING_PLANS}
        assert {s.code for s in sources.values()} == set(plans)
        assert [s.code for s in day.sources] == ["own_reserve", "partner_bank_a", "partner_bank_b"]
        ordered = list(loans.values())
        assert sources[ordered[0].funding_source_id].code == "own_reserve"
        for loan in ordered:
            chosen = sources[loan.funding_source_id]
            cheaper = [c for c in loan.funding_choice["candidates"] if Decimal(c["annual_rate"]) < chosen.annual_rate]
            assert all(c["verdict"] == "quota_insufficient" and c["remaining_quota"] < loan.principal_amount
                       for c in cheaper)
        reserve = next(s for s in sources.values() if s.code == "own_reserve")
        lent = sum(loan.principal_amount for loan in ordered if loan.status == "active")
        if lent > reserve.quota_amount:  # how much is lent depends on the day's draws: more than the reserve holds
            assert len({loan.funding_source_id for loan in ordered}) >= 2
        for capital in day.sources:
            source = next(s for s in sources.values() if s.code == capital.code)
            funded = [loan for loan in ordered if loan.funding_source_id == source.id and loan.status == "active"]
            assert capital.drawn == sum(loan.principal_amount for loan in funded) <= source.quota_amount
            assert capital.loans == len(funded) and capital.quota == plans[capital.code].quota
            assert capital.annual_rate == Decimal(plans[capital.code].annual_rate) == source.annual_rate
            assert source.used_amount == sum(loan.principal_amount for loan in funded)
        assert day.as_dict()["credit_capital_by_source"]["own_reserve"]["drawn"] == day.sources[0].drawn

        # The merchant that traded has a revolving limit from its sales; the electronics store, with none, is not
        # among the applicants (it sells on credit), and a merchant without sales gets no limit.
        merchants = {a.party_id: a.id for a in applicants.values() if a.party_kind == "merchant"}
        # (Its size follows the day's draws, which follow the real date.)
        assert merchant_id in merchants and (merchants[merchant_id], "revolving") in sub_limits
        assert all(sub_limits[(applicant_id, "revolving")] == 0 for party, applicant_id in merchants.items()
                   if party != merchant_id)

        # The printed examples: BNPL is interest-free to the customer, the merchant's fee pays for it; the flat rate
        # of the issue is about 31.7% APR and 36.8% effective.
        examples = {e.product: e for e in day.examples}
        bnpl = examples["bnpl_3"]
        assert bnpl.apr == 0 and bnpl.merchant_fee == 3 * bnpl.principal // 100
        assert examples["cash_30"].apr > 0 and examples["merchant_revolving"].apr > 0
        assert day.flat.total_repaid == 11_800_00
        assert abs(day.flat.apr - Decimal("0.317")) < Decimal("0.001")
        assert abs(day.flat.effective_annual_rate - Decimal("0.368")) < Decimal("0.001")
        assert set(day.as_dict()["credit_scenarios"]) == {"bnpl_electronics", "merchant_revolving", "cash_app"}
