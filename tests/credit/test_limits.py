"""Credit lines: the explained calculation (hand-computed), product sub-limits, reserve / consume / release /
restore with revolving and non-revolving groups, two concurrent reservations against one line, adjustments by
policy (on-time repayments, overdue, periodic review) and by hand, each logged with its reason."""

from __future__ import annotations

import dataclasses
import threading
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import select

from finloop.audit.models import AuditEvent
from finloop.core.clock import FrozenClock
from finloop.core.errors import Conflict, InvalidRequest, LimitExceeded, NotFound
from finloop.credit import limits, products
from finloop.credit import service as credit
from finloop.credit.limit_policy import DEFAULT, LimitInputs, calculate, check_policy
from finloop.credit.models import (
    BureauReport,
    Consent,
    CreditLimitChange,
    CreditModel,
    CreditScore,
    CreditSubLimit,
    LoanProduct,
)
from finloop.credit.products import EXAMPLES
from finloop.db.uow import Database
from finloop.payments import service as payments
from finloop.payments.models import Payment
from finloop.worker.registry import Registry, load_jobs
from finloop.worker.runner import Runner
from tests.conftest import T0, TenantHandle
from tests.credit.conftest import make_applicant

GROUPS = ["bnpl", "cash", "installment", "revolving"]


# ---------------------------------------------------------------------------------------------- helpers


def rated(db: Database, tenant_id: str, applicant_id: str, rating: str, score: int = 600) -> str:
    """Record a score of ``rating`` for the applicant (a stand-in model, not a champion)."""
    with db.uow() as uow:
        model_id = uow.session.scalar(select(CreditModel.id).where(CreditModel.tenant_id == tenant_id))
        now = uow.clock.now()
        if model_id is None:
            model_id = uow.ids.new("credit_model")
            uow.session.add(CreditModel(
                id=model_id, tenant_id=tenant_id, name="applicant", version=1, kind="scorecard", status="retired",
                dataset="platform", features=[], tables={}, digest="0" * 64, scaling={}, metrics={}, params={},
                reference={}, created_by="test", created_at=now))
        row = CreditScore(id=uow.ids.new("credit_score"), tenant_id=tenant_id, applicant_id=applicant_id,
                          model_id=model_id, model_name="applicant", model_version=1, model_kind="scorecard",
                          score=score, probability=Decimal("0.01"), rating=rating, reasons=[], features={},
                          challenger=None, mode="real_time", batch_month=None, as_of=now, scored_at=now)
        uow.session.add(row)
        uow.commit()
    return row.id


def reported(db: Database, tenant_id: str, applicant_id: str, *, debt: int = 0, delinquencies: int = 0,
             enquiries: int = 0, thin: bool = False) -> str:
    """Record a completed bureau report with these figures."""
    with db.uow() as uow:
        now = uow.clock.now()
        consent = Consent(id=uow.ids.new("credit_consent"), tenant_id=tenant_id, applicant_id=applicant_id,
                          purpose="credit_assessment", scope=["bureau_report"], channel="app", evidence="",
                          given_at=now, expires_at=now + timedelta(days=90), revoked_at=None, created_by="test",
                          created_at=now)
        uow.session.add(consent)
        uow.session.flush()
        report = BureauReport(id=uow.ids.new("bureau_report"), tenant_id=tenant_id, applicant_id=applicant_id,
                              consent_id=consent.id, provider="sandbox", status="completed", requested_at=now,
                              received_at=now, latency_ms=1, provider_reference="t", bureau_score=650,
                              is_thin_file=thin, open_loans=1 if debt else 0, open_loan_balance_amount=debt,
                              currency="CNY", enquiries_30d=enquiries, enquiries_90d=enquiries,
                              delinquencies_24m=delinquencies, report={}, created_by="test")
        uow.session.add(report)
        uow.commit()
    return report.id


def customer_line(db: Database, tenant_id: str, reference: str = "alice", *, rating: str = "B",
                  income: int = 1_200_000, debt: int = 2_000_000, delinquencies: int = 1, enquiries: int = 2,
                  requested: int | None = None, national_id: str = "110101199003070011") -> tuple[str, str]:
    """An applicant scored ``rating`` with a bureau report, and their line: (applicant id, line id)."""
    party = make_applicant(db, tenant_id, reference, income=income, national_id=national_id, phone=None,
                           bank_account=None)
    rated(db, tenant_id, party.applicant_id, rating)
    reported(db, tenant_id, party.applicant_id, debt=debt, delinquencies=delinquencies, enquiries=enquiries)
    with db.uow() as uow:
        line = limits.grant_line(uow, tenant_id, party.applicant_id, requested_amount=requested, actor="test")
        uow.commit()
    return party.applicant_id, line.id


def product(db: Database, tenant_id: str, name: str, **changes: Any) -> LoanProduct:
    with db.uow() as uow:
        row = products.create_product(uow, tenant_id, {**EXAMPLES[name], **changes}, actor="test")
        uow.commit()
    return row


def state(db: Database, tenant_id: str, line_id: str) -> dict[str, Any]:
    with db.uow(read_only=True) as uow:
        line = limits.get_line(uow, tenant_id, line_id)
        subs = limits.sub_limits(uow, line)
        return {"status": line.status, "limit": line.limit_amount, "reserved": line.reserved_amount,
                "used": line.used_amount,
                "subs": {g: (s.limit_amount, s.reserved_amount, s.used_amount) for g, s in subs.items()}}


def changes_of(db: Database, tenant_id: str, line_id: str) -> list[tuple[str | None, str, str, int | None, int]]:
    with db.uow(read_only=True) as uow:
        return [(c.limit_group, c.kind, c.reason, c.before_amount, c.after_amount)
                for c in limits.list_changes(uow, tenant_id, line_id, limit=500)]


# ---------------------------------------------------------------------------------------------- calculation


def test_a_customer_line_is_calculated_and_explained_factor_by_factor(db: Database, tenant: TenantHandle) -> None:
    # Rating B: 4 × 12,000.00 = 48,000.00. Debt 20,000.00 against 0.5 × 144,000.00: room for 52,000.00, no cut.
    # One delinquency: -25% → 36,000.00. Two enquiries are under the threshold of 6; the report is not thin.
    # Sub-limits: installment 100%, bnpl 30%, cash 20%, revolving 100%.
    applicant_id, line_id = customer_line(db, tenant.id)
    with db.uow(read_only=True) as uow:
        line = limits.get_line(uow, tenant.id, line_id)
        assert (line.applicant_id, line.currency, line.status, line.limit_amount) == (applicant_id, "CNY", "active",
                                                                                      3_600_000)
        assert line.reviewed_on == date(2026, 3, 2) and line.version == 1
        factors = [(f["code"], f["before_amount"], f["after_amount"]) for f in line.calculation["factors"]]
        assert factors == [("rating_income_multiple", 0, 4_800_000), ("debt_to_income_cap", 4_800_000, 4_800_000),
                           ("bureau_delinquencies", 4_800_000, 3_600_000)]
        assert line.calculation["inputs"]["rating"] == "B" and line.calculation["inputs"]["existing_debt_amount"] \
            == 2_000_000
        subs = limits.sub_limits(uow, line)
        assert {g: (s.limit_amount, s.is_revolving) for g, s in subs.items()} == {
            "bnpl": (1_080_000, True), "cash": (720_000, True), "installment": (3_600_000, False),
            "revolving": (3_600_000, True)}
        granted = uow.session.scalar(select(AuditEvent).where(AuditEvent.action == "credit.line.granted"))
        assert granted is not None and granted.after["limit_amount"] == 3_600_000
    assert changes_of(db, tenant.id, line_id) == [(None, "granted", "calculation", None, 3_600_000)]
    with db.uow() as uow, pytest.raises(Conflict) as caught:
        limits.grant_line(uow, tenant.id, applicant_id, actor="test")
    assert caught.value.code == "credit_line_exists"


def test_the_dti_cap_enquiries_and_the_requested_need_bind(db: Database, tenant: TenantHandle) -> None:
    # Rating A: 6 × 12,000.00 = 72,000.00; debt 60,000.00 leaves 12,000.00 under the cap; 7 enquiries: -20% →
    # 9,600.00; asked for 5,000.00.
    _, line_id = customer_line(db, tenant.id, rating="A", debt=6_000_000, delinquencies=0, enquiries=7,
                               requested=500_000)
    with db.uow(read_only=True) as uow:
        line = limits.get_line(uow, tenant.id, line_id)
        factors = [(f["code"], f["after_amount"]) for f in line.calculation["factors"]]
        assert line.limit_amount == 500_000 and line.requested_amount == 500_000
    assert factors == [("rating_income_multiple", 7_200_000), ("debt_to_income_cap", 1_200_000),
                       ("bureau_enquiries", 960_000), ("requested_need", 500_000)]


def test_no_score_or_a_reject_gives_a_zero_line_with_the_reason(db: Database, tenant: TenantHandle) -> None:
    party = make_applicant(db, tenant.id, "nobody", phone=None, bank_account=None)
    with db.uow() as uow:
        line = limits.grant_line(uow, tenant.id, party.applicant_id, actor="test")
        assert line.limit_amount == 0
        assert [f["code"] for f in line.calculation["factors"]][:2] == ["no_score", "thin_credit_file"]
        uow.commit()
    _, rejected = customer_line(db, tenant.id, "bob", rating="reject", national_id="110101199003070022")
    with db.uow(read_only=True) as uow:
        line = limits.get_line(uow, tenant.id, rejected)
        assert line.limit_amount == 0 and line.calculation["factors"][0]["code"] == "rating_reject"


def order(uow: Any, tenant_id: str, merchant_id: str, customer_id: str, amount: int, days_ago: float,
          refunded: int = 0) -> None:
    at = T0 - timedelta(days=days_ago)
    uow.session.add(Payment(id=uow.ids.new("payment"), tenant_id=tenant_id, merchant_id=merchant_id,
                            customer_id=customer_id, purpose="order", amount=amount, currency="CNY",
                            captured_amount=amount, refunded_amount=refunded, status="succeeded", created_at=at,
                            updated_at=at))


def merchant_applicant(db: Database, tenant_id: str, reference: str, national_id: str) -> tuple[str, str, str]:
    with db.uow() as uow:
        merchant = payments.create_merchant(uow, tenant_id, reference=reference, name=reference).id
        buyer = payments.create_customer(uow, tenant_id, reference=f"{reference}-buyer").id
        applicant = credit.create_applicant(uow, tenant_id, party_kind="merchant", party_id=merchant,
                                            declared_income_amount=10_000_000, currency="CNY",
                                            employment="business_owner", national_id=national_id, actor="test").id
        uow.commit()
    return merchant, buyer, applicant


def test_a_merchant_line_comes_from_its_trading_history(db: Database, tenant: TenantHandle) -> None:
    # Rating A on 100,000.00 of declared monthly revenue would give 600,000.00; but the platform saw 6 months of
    # sales (the first 182.5 days ago) worth 30,000.00 net of 2,000.00 refunded: 5,000.00 a month, the cap. No
    # bureau report: × 0.5 → 2,500.00.
    merchant, buyer, applicant = merchant_applicant(db, tenant.id, "shop", "91330000MA28XXXX1")
    with db.uow() as uow:
        order(uow, tenant.id, merchant, buyer, 1_000_000, 182.5)
        order(uow, tenant.id, merchant, buyer, 2_200_000, 20, refunded=200_000)
        order(uow, tenant.id, merchant, buyer, 9_999_999, 400)  # before the window
        uow.commit()
    rated(db, tenant.id, applicant, "A")
    with db.uow() as uow:
        line = limits.grant_line(uow, tenant.id, applicant, actor="test")
        factors = [(f["code"], f["after_amount"]) for f in line.calculation["factors"]]
        assert factors == [("rating_income_multiple", 60_000_000), ("trading_history", 500_000),
                           ("thin_credit_file", 250_000)]
        assert line.calculation["inputs"]["trading_months"] == "6" and line.limit_amount == 250_000
        uow.commit()
    # Two months of trading are too few.
    merchant, buyer, newcomer = merchant_applicant(db, tenant.id, "kiosk", "91330000MA28YYYY2")
    with db.uow() as uow:
        order(uow, tenant.id, merchant, buyer, 5_000_000, 60)
        uow.commit()
    rated(db, tenant.id, newcomer, "A")
    with db.uow() as uow:
        line = limits.grant_line(uow, tenant.id, newcomer, actor="test")
        assert line.limit_amount == 0 and line.calculation["factors"][1]["code"] == "short_trading_history"
        uow.commit()


def test_the_calculation_caps_at_the_max_line_and_rounds_down_to_the_step() -> None:
    policy = check_policy({"max_line": 100_000, "step": 500})
    inputs = LimitInputs(currency="CNY", party_kind="customer", rating="A", score=700, monthly_income=1_234_567,
                         existing_debt=None, delinquencies_24m=None, enquiries_90d=None, is_thin_file=None,
                         has_bureau_report=True)
    calc = calculate(policy, inputs, ["bnpl"])
    assert [(f.code, f.after) for f in calc.factors] == [("rating_income_multiple", 7_407_402),
                                                        ("rounded", 7_400_000)]
    assert calc.limit == 7_400_000 and calc.sub_limits == {"bnpl": 2_200_000}  # 30% of 74,000.00 → 22,200.00 → 22,000
    big = calculate(policy, dataclasses.replace(inputs, monthly_income=100_000_000), [])
    assert big.limit == 10_000_000 and big.factors[-1].code == "max_line"


@pytest.mark.parametrize(("changes", "param"), [
    ({"dti_cap": "-0.1"}, "dti_cap"), ({"dti_cap": 0.5}, "dti_cap"), ({"step": 0}, "step"),
    ({"income_multiples": {"A": "6"}}, "income_multiples"), ({"group_shares": {"BNPL": "0.3"}}, "group_shares"),
    ({"group_shares": {"bnpl": "1.5"}}, "group_shares.bnpl"), ({"raise_after_on_time": True}, "raise_after_on_time"),
    ({"lower_after_days_past_due": 40}, "freeze_after_days_past_due"), ({"colour": 1}, "colour")])
def test_a_bad_policy_field_is_refused(changes: dict[str, Any], param: str) -> None:
    with pytest.raises(InvalidRequest) as caught:
        check_policy(changes)
    assert (caught.value.code, caught.value.param) == ("invalid_limit_policy", param)


def test_the_policy_is_stored_audited_and_used(db: Database, tenant: TenantHandle) -> None:
    with db.uow() as uow:
        assert limits.get_policy(uow, tenant.id) == DEFAULT
        limits.set_policy(uow, tenant.id, {"income_multiples": {"A": "8", "B": "5", "C": "2", "D": "1"},
                                           "group_shares": {"bnpl": "0.5"}}, actor="test")
        limits.set_policy(uow, tenant.id, {"dti_cap": "0.4"}, actor="test")  # the rest keep their value
        policy = limits.get_policy(uow, tenant.id)
        assert policy.income_multiples["B"] == 5 and policy.dti_cap == Decimal("0.4")
        assert policy.group_shares == {"bnpl": Decimal("0.5")}
        with pytest.raises(InvalidRequest):
            limits.set_policy(uow, tenant.id, {"dti_cap": "11"}, actor="test")
        uow.commit()
    _, line_id = customer_line(db, tenant.id, delinquencies=0)
    # B: 5 × 12,000.00 = 60,000.00; the cap 0.4 × 144,000.00 - 20,000.00 = 37,600.00.
    assert state(db, tenant.id, line_id)["limit"] == 3_760_000
    assert state(db, tenant.id, line_id)["subs"]["bnpl"][0] == 1_880_000
    with db.uow(read_only=True) as uow:
        assert len(uow.session.scalars(select(AuditEvent).where(
            AuditEvent.action == "credit.limit_policy.updated")).all()) == 2


# ---------------------------------------------------------------------------------------------- use of the line


def test_reserve_consume_release_and_restore_keep_line_and_sub_limits_in_step(db: Database,
                                                                              tenant: TenantHandle) -> None:
    applicant_id, line_id = customer_line(db, tenant.id)  # 36,000.00; bnpl 10,800.00; installment 36,000.00
    bnpl = product(db, tenant.id, "bnpl_3")
    loan = product(db, tenant.id, "consumer_installment")
    with db.uow() as uow:
        found = limits.available_for(uow, tenant.id, applicant_id, bnpl)
        assert (found.available, found.line_available, found.group_available, found.reasons) == (
            1_080_000, 3_600_000, 1_080_000, [])
        with pytest.raises(LimitExceeded) as caught:
            limits.reserve(uow, tenant.id, applicant_id, bnpl, 1_080_001, "app-1")
        assert caught.value.code == "credit_limit_exceeded" and caught.value.details["available_amount"] == 1_080_000
        first = limits.reserve(uow, tenant.id, applicant_id, bnpl, 600_000, "app-1")
        assert limits.reserve(uow, tenant.id, applicant_id, bnpl, 600_000, "app-1").id == first.id  # a retry
        with pytest.raises(Conflict):
            limits.reserve(uow, tenant.id, applicant_id, bnpl, 700_000, "app-1")
        limits.reserve(uow, tenant.id, applicant_id, loan, 2_000_000, "app-2")
        uow.commit()
    assert state(db, tenant.id, line_id)["reserved"] == 2_600_000
    with db.uow() as uow:
        assert limits.available_for(uow, tenant.id, applicant_id, bnpl).available == 480_000
        assert limits.available_for(uow, tenant.id, applicant_id, loan).available == 1_000_000  # the line binds
        limits.consume(uow, tenant.id, applicant_id, "app-1", 500_000)  # disbursed less than reserved
        limits.consume(uow, tenant.id, applicant_id, "app-1", 500_000)  # a retry changes nothing
        with pytest.raises(LimitExceeded):
            limits.consume(uow, tenant.id, applicant_id, "app-2", 2_000_001)
        limits.release(uow, tenant.id, applicant_id, "app-2")
        for closed in (lambda: limits.consume(uow, tenant.id, applicant_id, "app-2", 1),
                       lambda: limits.release(uow, tenant.id, applicant_id, "app-1")):
            with pytest.raises(Conflict) as refused:
                closed()
            assert refused.value.code == "reservation_closed"
        with pytest.raises(NotFound):
            limits.consume(uow, tenant.id, applicant_id, "app-9", 1)
        uow.commit()
    after = state(db, tenant.id, line_id)
    assert (after["reserved"], after["used"]) == (0, 500_000)
    assert after["subs"]["bnpl"] == (1_080_000, 0, 500_000) and after["subs"]["installment"] == (3_600_000, 0, 0)
    # Revolving: repaying buy-now-pay-later gives back the line and the bnpl sub-limit.
    with db.uow() as uow:
        limits.restore(uow, tenant.id, applicant_id, bnpl, 200_000, "repay-1")
        limits.restore(uow, tenant.id, applicant_id, bnpl, 200_000, "repay-1")  # once per reference
        uow.commit()
    after = state(db, tenant.id, line_id)
    assert after["used"] == 300_000 and after["subs"]["bnpl"] == (1_080_000, 0, 300_000)
    # Not revolving: an installment loan's repayment gives back the line, not the installment sub-limit.
    with db.uow() as uow:
        limits.reserve(uow, tenant.id, applicant_id, loan, 1_000_000, "app-3")
        limits.consume(uow, tenant.id, applicant_id, "app-3", 1_000_000)
        limits.restore(uow, tenant.id, applicant_id, loan, 400_000, "repay-2")
        uow.commit()
    after = state(db, tenant.id, line_id)
    assert after["used"] == 900_000 and after["subs"]["installment"] == (3_600_000, 0, 1_000_000)
    with db.uow(read_only=True) as uow:
        assert limits.available_for(uow, tenant.id, applicant_id, loan).available == 2_600_000
        kinds = [e.kind for e in limits.events(uow, tenant.id, line_id)]
    assert kinds == ["reserve", "reserve", "consume", "release", "restore", "reserve", "consume", "restore"]
    assert changes_of(db, tenant.id, line_id) == [(None, "granted", "calculation", None, 3_600_000)]  # use is no change


def test_nothing_is_available_from_a_frozen_line_another_currency_or_a_missing_sub_limit(
        db: Database, tenant: TenantHandle) -> None:
    applicant_id, line_id = customer_line(db, tenant.id)
    usd = product(db, tenant.id, "bnpl_3", code="bnpl_usd", currency="USD")
    odd = product(db, tenant.id, "cash_30", code="cash_odd", limit_group="payday")  # after the line was granted
    cash = product(db, tenant.id, "cash_30")
    with db.uow() as uow:
        assert limits.available_for(uow, tenant.id, applicant_id, usd).reasons == ["currency_mismatch"]
        assert limits.available_for(uow, tenant.id, applicant_id, odd).reasons == ["no_sub_limit"]
        with pytest.raises(LimitExceeded):
            limits.reserve(uow, tenant.id, applicant_id, odd, 1, "x")
        limits.freeze(uow, tenant.id, line_id, note="fraud check", actor="analyst")
        found = limits.available_for(uow, tenant.id, applicant_id, cash)
        assert (found.available, found.reasons) == (0, ["line_frozen"])
        with pytest.raises(LimitExceeded):
            limits.reserve(uow, tenant.id, applicant_id, cash, 1, "y")
        with pytest.raises(Conflict):
            limits.freeze(uow, tenant.id, line_id, note="again", actor="analyst")
        limits.unfreeze(uow, tenant.id, line_id, note="cleared", actor="analyst")
        assert limits.available_for(uow, tenant.id, applicant_id, cash).available == 720_000
        uow.commit()
    with db.uow(read_only=True) as uow:
        nobody = limits.available_for(uow, tenant.id, "apl_nobody", cash)
        assert (nobody.available, nobody.reasons) == (0, ["no_credit_line"])
    # A review gives the new product group its sub-limit.
    with db.uow() as uow:
        limits.review_line(uow, tenant.id, line_id, actor="test", reason="on_demand_review")
        assert limits.available_for(uow, tenant.id, applicant_id, odd).available == 3_600_000
        uow.commit()
    assert [c[1:3] for c in changes_of(db, tenant.id, line_id)][1:] == [
        ("frozen", "manual"), ("unfrozen", "manual"), ("raised", "on_demand_review")]


def test_bad_use_of_the_line_is_refused(db: Database, tenant: TenantHandle) -> None:
    applicant_id, _ = customer_line(db, tenant.id)
    cash = product(db, tenant.id, "cash_30")
    with db.uow() as uow:
        for amount, reference, code in ((0, "r", "invalid_amount"), (-5, "r", "invalid_amount"),
                                        (True, "r", "invalid_amount"), (10, "", "invalid_reference"),
                                        (10, "x" * 101, "invalid_reference")):
            with pytest.raises(InvalidRequest) as caught:
                limits.reserve(uow, tenant.id, applicant_id, cash, amount, reference)
            assert caught.value.code == code
        with pytest.raises(NotFound):
            limits.reserve(uow, tenant.id, "apl_nobody", cash, 10, "r")
        with pytest.raises(InvalidRequest):
            limits.record_overdue(uow, tenant.id, applicant_id, "o", days_past_due=-1)


@pytest.mark.slow
def test_concurrent_reservations_never_exceed_the_line(db: Database, tenant: TenantHandle) -> None:
    # A 10,000.00 line (requested need), eight reservations of 3,000.00 at once: exactly three fit.
    applicant_id, line_id = customer_line(db, tenant.id, requested=1_000_000)
    loan = product(db, tenant.id, "cash_30")
    with db.uow() as uow:
        limits.adjust(uow, tenant.id, line_id, limit_amount=1_000_000, limit_group="cash", note="test", actor="t")
        uow.commit()
    barrier = threading.Barrier(8)
    outcomes: list[str] = []
    lock = threading.Lock()

    def attempt(i: int) -> None:
        barrier.wait()
        try:
            with db.uow() as uow:
                limits.reserve(uow, tenant.id, applicant_id, loan, 300_000, f"app-{i}")
                uow.commit()
            outcome = "reserved"
        except LimitExceeded:
            outcome = "refused"
        with lock:
            outcomes.append(outcome)

    threads = [threading.Thread(target=attempt, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(outcomes) == ["refused"] * 5 + ["reserved"] * 3
    after = state(db, tenant.id, line_id)
    assert after["reserved"] == 900_000 and after["subs"]["cash"][1] == 900_000


# ---------------------------------------------------------------------------------------------- adjustments


def test_on_time_repayments_raise_the_line_and_a_late_one_starts_the_count_again(db: Database,
                                                                                  tenant: TenantHandle) -> None:
    with db.uow() as uow:
        limits.set_policy(uow, tenant.id, {"raise_after_on_time": 2}, actor="test")
        uow.commit()
    applicant_id, line_id = customer_line(db, tenant.id)
    with db.uow() as uow:
        assert limits.record_repayment(uow, tenant.id, applicant_id, "i1", on_time=True) == []
        assert limits.record_repayment(uow, tenant.id, applicant_id, "i2", on_time=False) == []
        assert limits.record_repayment(uow, tenant.id, applicant_id, "i3", on_time=True) == []
        # 48,000.00 × 1.1 = 52,800.00, capped at the 52,000.00 of room under the DTI cap, -25%: 39,000.00.
        raised = limits.record_repayment(uow, tenant.id, applicant_id, "i4", on_time=True)
        assert limits.record_repayment(uow, tenant.id, applicant_id, "i4", on_time=True) == []  # a retry
        uow.commit()
    assert [(c.limit_group, c.before_amount, c.after_amount) for c in raised] == [
        (None, 3_600_000, 3_900_000), ("bnpl", 1_080_000, 1_170_000), ("cash", 720_000, 780_000),
        ("installment", 3_600_000, 3_900_000), ("revolving", 3_600_000, 3_900_000)]
    assert all(c.reason == "on_time_repayments" and c.actor == "servicing" for c in raised)
    assert state(db, tenant.id, line_id)["limit"] == 3_900_000
    with db.uow(read_only=True) as uow:
        line = limits.get_line(uow, tenant.id, line_id)
        assert line.on_time_repayments == 2 and line.version == 2
        assert any(f["code"] == "repayment_history" for f in line.calculation["factors"])


def test_overdue_lowers_then_freezes_and_a_review_after_the_cure_unfreezes(db: Database, tenant: TenantHandle,
                                                                          clock: FrozenClock) -> None:
    applicant_id, line_id = customer_line(db, tenant.id)
    cash = product(db, tenant.id, "cash_30")
    with db.uow() as uow:
        lowered = limits.record_overdue(uow, tenant.id, applicant_id, "dpd-5", days_past_due=5)
        assert limits.record_overdue(uow, tenant.id, applicant_id, "dpd-5", days_past_due=5) == []
        assert limits.record_overdue(uow, tenant.id, applicant_id, "dpd-6", days_past_due=6) == []  # lowered once
        frozen = limits.record_overdue(uow, tenant.id, applicant_id, "dpd-31", days_past_due=31)
        uow.commit()
    assert [(c.limit_group, c.kind, c.after_amount) for c in lowered] == [
        (None, "lowered", 1_800_000), ("bnpl", "lowered", 540_000), ("cash", "lowered", 360_000),
        ("installment", "lowered", 1_800_000), ("revolving", "lowered", 1_800_000)]
    assert [(c.kind, c.reason, c.after_status) for c in frozen] == [("frozen", "overdue", "frozen")]
    with db.uow(read_only=True) as uow:
        assert limits.available_for(uow, tenant.id, applicant_id, cash).reasons == ["line_frozen"]
    # Still overdue at the review: the calculation gives nothing and the line stays frozen.
    with db.uow() as uow:
        limits.review_line(uow, tenant.id, line_id, actor="test")
        uow.commit()
    assert state(db, tenant.id, line_id)["status"] == "frozen" and state(db, tenant.id, line_id)["limit"] == 0
    # Cured: the next review re-calculates without the overdue factor and unfreezes.
    clock.advance(timedelta(days=1))
    with db.uow() as uow:
        limits.record_overdue(uow, tenant.id, applicant_id, "dpd-0", days_past_due=0)
        changes = limits.review_line(uow, tenant.id, line_id, actor="test")
        uow.commit()
    assert (changes[0].kind, changes[0].after_amount) == ("raised", 3_600_000)
    assert (changes[-1].kind, changes[-1].reason) == ("unfrozen", "cured")
    assert state(db, tenant.id, line_id)["status"] == "active"
    with db.uow(read_only=True) as uow:
        actions = set(uow.session.scalars(select(AuditEvent.action).where(AuditEvent.tenant_id == tenant.id)))
    assert {"credit.line.overdue", "credit.line.reviewed"} <= actions


def test_a_manual_freeze_survives_the_review(db: Database, tenant: TenantHandle) -> None:
    _, line_id = customer_line(db, tenant.id)
    with db.uow() as uow:
        limits.freeze(uow, tenant.id, line_id, note="investigation", actor="analyst")
        limits.review_line(uow, tenant.id, line_id, actor="test")
        uow.commit()
    assert state(db, tenant.id, line_id)["status"] == "frozen"


def test_manual_adjustments_are_logged_and_bounded(db: Database, tenant: TenantHandle) -> None:
    _, line_id = customer_line(db, tenant.id)
    with db.uow() as uow:
        with pytest.raises(InvalidRequest) as caught:
            limits.adjust(uow, tenant.id, line_id, limit_amount=100, note=" ", actor="analyst")
        assert caught.value.code == "note_required"
        with pytest.raises(InvalidRequest) as caught:
            limits.adjust(uow, tenant.id, line_id, limit_amount=3_600_001, limit_group="cash", note="x", actor="a")
        assert caught.value.code == "sub_limit_exceeds_line"
        with pytest.raises(NotFound):
            limits.adjust(uow, tenant.id, line_id, limit_amount=1, limit_group="gold", note="x", actor="a")
        limits.adjust(uow, tenant.id, line_id, limit_amount=1_000_000, note="customer asked", actor="analyst")
        limits.adjust(uow, tenant.id, line_id, limit_amount=100_000, limit_group="cash", note="cap cash", actor="a")
        uow.commit()
    after = state(db, tenant.id, line_id)
    assert after["limit"] == 1_000_000
    assert {g: v[0] for g, v in after["subs"].items()} == {"bnpl": 1_000_000, "cash": 100_000,
                                                           "installment": 1_000_000, "revolving": 1_000_000}
    with db.uow(read_only=True) as uow:
        logged = [(c.limit_group, c.after_amount, c.note, c.actor) for c in uow.session.scalars(
            select(CreditLimitChange).where(CreditLimitChange.reason == "manual").order_by(CreditLimitChange.id))]
    assert logged == [
        (None, 1_000_000, "customer asked", "analyst"), ("bnpl", 1_000_000, "customer asked", "analyst"),
        ("installment", 1_000_000, "customer asked", "analyst"), ("revolving", 1_000_000, "customer asked", "analyst"),
        ("cash", 100_000, "cap cash", "a")]


def test_the_review_job_runs_once_per_line_and_business_date(db: Database, tenant: TenantHandle,
                                                             clock: FrozenClock) -> None:
    with db.uow() as uow:
        limits.set_policy(uow, tenant.id, {"review_interval_days": 1}, actor="test")
        uow.commit()
    applicant_id, line_id = customer_line(db, tenant.id)  # reviewed on Monday 2 March
    reported(db, tenant.id, applicant_id, debt=2_000_000, delinquencies=2)  # worse since: -50%
    jobs = Registry()
    jobs.register(load_jobs().get("credit.review_limits"))
    clock.advance(timedelta(days=1))  # Monday has closed: the line is not due yet (reviewed that day)
    first = Runner(db, jobs).run_pass().outcomes
    assert [(o.job, o.business_date, o.status, o.processed) for o in first] == [
        ("credit.review_limits", date(2026, 3, 2), "succeeded", 0)]
    clock.advance(timedelta(days=1))  # Tuesday has closed: due
    second = Runner(db, jobs).run_pass().outcomes
    assert [(o.business_date, o.status, o.processed) for o in second] == [(date(2026, 3, 3), "succeeded", 1)]
    assert state(db, tenant.id, line_id)["limit"] == 2_400_000
    log = changes_of(db, tenant.id, line_id)
    assert log[1] == (None, "lowered", "periodic_review", 3_600_000, 2_400_000)
    with db.uow() as uow:
        assert limits.review_due(uow, tenant.id, date(2026, 3, 3)) == 0  # the same date again: nothing
        assert limits.lines_due_for_review(uow, tenant.id, date(2026, 3, 4)) == [line_id]
        line = limits.get_line(uow, tenant.id, line_id)
        assert line.reviewed_on == date(2026, 3, 3)
        assert uow.session.get(CreditSubLimit, (line_id, "bnpl")).limit_amount == 720_000  # type: ignore[union-attr]


def test_lines_are_tenant_scoped(db: Database, tenant: TenantHandle, other_tenant: TenantHandle) -> None:
    applicant_id, line_id = customer_line(db, tenant.id)
    theirs = product(db, other_tenant.id, "cash_30")
    with db.uow() as uow:
        with pytest.raises(NotFound):
            limits.get_line(uow, other_tenant.id, line_id)
        with pytest.raises(NotFound):
            limits.reserve(uow, other_tenant.id, applicant_id, theirs, 100, "r")
        with pytest.raises(NotFound):
            limits.grant_line(uow, other_tenant.id, applicant_id, actor="test")
        assert limits.list_lines(uow, other_tenant.id) == []
