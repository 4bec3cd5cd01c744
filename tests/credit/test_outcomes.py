"""Loan outcomes: each label path (on time, late, default by days past due or write-off, recovered, a loan still
open labelled at the end of its window, a loan not known yet), relabelling that adds nothing but a recovery, the
policy, the retraining data set, the comparison of two models on a labelled book preferring either, retraining
with an out-of-time holdout, the job, bad input and another tenant.

The books are synthetic: loan accounts are inserted directly under real parents (a product, a funding source,
an applicant, applications scored with simulated features), as the servicing slice would leave them."""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import func, insert, select, update

from finloop.core.clock import FrozenClock
from finloop.core.errors import Conflict, InvalidRequest, NotFound
from finloop.credit import funding, products, registry, sim
from finloop.credit import service as credit
from finloop.credit.domain import PLATFORM_FEATURE_NAMES, PLATFORM_FEATURES, ModelStatus
from finloop.credit.models import CreditModel, CreditScore, Loan, LoanApplication
from finloop.credit.outcomes import domain
from finloop.credit.outcomes import service as outcomes
from finloop.credit.outcomes.domain import OutcomeLabel, OutcomePolicy, label_for, swap_set
from finloop.credit.outcomes.models import LoanOutcome
from finloop.credit.products import EXAMPLES
from finloop.credit.scorecard import Dataset, Trained, frame_of, train
from finloop.credit.servicing.models import LoanAccount
from finloop.db.uow import Database
from finloop.worker.registry import Registry, load_jobs
from finloop.worker.runner import Runner
from tests.conftest import T0, TenantHandle
from tests.credit.conftest import install, make_applicant

TODAY = T0.date()
GRACE = EXAMPLES["consumer_installment"]["grace_days"]  # 3


# ---------------------------------------------------------------------------------------------- a synthetic book


@dataclass
class Parents:
    tenant_id: str
    product_id: str
    source_id: str
    applicant_id: str
    national_id_index: str
    model_id: str


@dataclass
class Account:
    """A loan account as servicing leaves it, and the features its application was scored with."""

    state: str = "performing"
    max_dpd: int = 0
    disbursed_on: date = date(2025, 6, 1)
    written_off: int = 0
    recovered: int = 0
    features: dict[str, Any] | None = None


def parents(db: Database, tenant_id: str) -> Parents:
    party = make_applicant(db, tenant_id, "book", phone=None, bank_account=None)
    with db.uow() as uow:
        product = products.create_product(uow, tenant_id, dict(EXAMPLES["consumer_installment"]), actor="test")
        source = funding.create_source(uow, tenant_id, {"code": "bank", "kind": "partner_bank", "currency": "CNY",
                                                        "annual_rate": "0.05", "quota_amount": 10**12}, actor="test")
        applicant = credit.get_applicant(uow, tenant_id, party.applicant_id)
        model_id = uow.ids.new("credit_model")
        uow.session.add(CreditModel(
            id=model_id, tenant_id=tenant_id, name="stand_in", version=1, kind="scorecard", status="retired",
            dataset="platform", features=[], tables={}, digest="0" * 64, scaling={}, metrics={}, params={},
            reference={}, created_by="test", created_at=uow.clock.now()))
        found = Parents(tenant_id, product.id, source.id, applicant.id, applicant.national_id_index, model_id)
        uow.commit()
    return found


def add_loans(db: Database, p: Parents, accounts: Sequence[Account]) -> list[str]:
    """Insert scored applications, loans and their accounts in bulk; the loan ids, in the order given."""
    scores: list[dict[str, Any]] = []
    applications: list[dict[str, Any]] = []
    loans: list[dict[str, Any]] = []
    rows: list[dict[str, Any]] = []
    with db.uow() as uow:
        now = uow.clock.now()
        for account in accounts:
            score_id, application_id, loan_id = (uow.ids.new("credit_score"), uow.ids.new("loan_application"),
                                                 uow.ids.new("loan"))
            scores.append({"id": score_id, "tenant_id": p.tenant_id, "applicant_id": p.applicant_id,
                           "model_id": p.model_id, "model_name": "stand_in", "model_version": 1,
                           "model_kind": "scorecard", "score": 600, "probability": Decimal("0.02"), "rating": "B",
                           "reasons": [], "features": account.features or {}, "challenger": None,
                           "mode": "real_time", "batch_month": None, "as_of": now, "scored_at": now})
            applications.append({
                "id": application_id, "tenant_id": p.tenant_id, "applicant_id": p.applicant_id,
                "national_id_index": p.national_id_index, "product_id": p.product_id,
                "product_code": "consumer_installment", "principal_amount": 100_000, "currency": "CNY", "term": 12,
                "term_unit": "month", "purpose": "purchase", "status": "contract_signed", "auto_outcome": "approve",
                "final_outcome": "approve", "reasons": [], "details": {}, "score_id": score_id, "score": 600,
                "rating": "B", "risk_decision_id": None, "case_id": None, "reserved_amount": 0, "latency_us": 1,
                "submitted_at": now, "decided_at": now, "expires_at": None, "closed_at": None, "created_by": "test",
                "version": 1})
            disbursed_at = datetime.combine(account.disbursed_on, datetime.min.time(), tzinfo=UTC)
            loans.append({"id": loan_id, "tenant_id": p.tenant_id, "application_id": application_id,
                          "applicant_id": p.applicant_id, "product_id": p.product_id, "principal_amount": 100_000,
                          "currency": "CNY", "schedule": {}, "funding_source_id": p.source_id,
                          "funding_choice": {}, "target": "customer_account", "merchant_id": None,
                          "merchant_fee_amount": 0, "status": "active", "mode": "single", "entry_ids": [],
                          "failure_code": None, "created_by": "test", "created_at": disbursed_at,
                          "disbursed_at": disbursed_at})
            closed = account.state in ("paid_off", "written_off")
            dpd = 0 if closed else account.max_dpd
            rows.append({
                "loan_id": loan_id, "tenant_id": p.tenant_id, "applicant_id": p.applicant_id,
                "product_id": p.product_id, "kind": "installment", "limit_group": "installment", "currency": "CNY",
                "state": account.state, "disbursed_on": account.disbursed_on,
                "origination_month": account.disbursed_on.isoformat()[:7], "principal_amount": 100_000,
                "principal_outstanding": 0 if closed else 50_000, "principal_billed": 0, "interest_billed": 0,
                "fees_billed": 0, "penalty_outstanding": 0, "advance_amount": 0, "period_number": 0,
                "period_start_day": 0, "period_due_day": 0, "period_interest": 0, "period_accrued": 0, "dpd": dpd,
                "bucket": "M0", "max_dpd": account.max_dpd, "oldest_unpaid_due_day": None, "provision_amount": 0,
                "pd_ppm": 20_000, "interest_income": 0, "fee_income": 0, "penalty_income": 0, "paid_amount": 0,
                "written_off_amount": account.written_off, "recovered_amount": account.recovered,
                "accrued_today": 0, "penalty_today": 0, "provision_today": 0, "processed_day": 0, "penalty_day": 0,
                "closed_on": account.disbursed_on + timedelta(days=200) if closed else None, "version": 1,
                "created_at": now, "updated_at": now})
        for model, batch in ((CreditScore, scores), (LoanApplication, applications), (Loan, loans),
                             (LoanAccount, rows)):
            uow.session.execute(insert(model), batch)
        uow.commit()
    return [loan["id"] for loan in loans]


def simulated_book(rows: int, seed: int, start: date = date(2024, 1, 1)) -> list[Account]:
    """Closed loans drawn from ``credit.sim``: defaults written off or 90+ days past due, goods paid off (some
    late), one a day from ``start``."""
    drawn = sim.generate(rows, seed)
    rng = random.Random(seed)
    accounts: list[Account] = []
    for i, (features, defaulted) in enumerate(zip(drawn.rows, drawn.defaulted, strict=True)):
        on = start + timedelta(days=i)
        if defaulted:
            accounts.append(Account("written_off", 120, on, written_off=80_000) if rng.random() < 0.5 else
                            Account("overdue", 95, on))
        else:
            accounts.append(Account("paid_off", rng.choice((0, 0, 0, 12)), on))
        accounts[-1].features = features
    return accounts


def outcome_of(db: Database, tenant_id: str, loan_id: str) -> LoanOutcome | None:
    with db.uow(read_only=True) as uow:
        row = uow.session.scalar(select(LoanOutcome).where(LoanOutcome.tenant_id == tenant_id,
                                                           LoanOutcome.loan_id == loan_id))
        if row is not None:
            uow.session.expunge(row)
        return row


def label(db: Database, tenant_id: str, as_of: date = TODAY) -> int:
    with db.uow() as uow:
        total = 0
        while (done := outcomes.label_outcomes(uow, tenant_id, as_of)) != 0:
            total += done
        uow.commit()
    return total


def count(db: Database) -> int:
    with db.uow(read_only=True) as uow:
        return int(uow.session.scalar(select(func.count()).select_from(LoanOutcome)) or 0)


# ---------------------------------------------------------------------------------------------- pure rules


@pytest.mark.parametrize(("state", "max_dpd", "written_off", "recovered", "window_ended", "expected"), [
    ("paid_off", 0, 0, 0, False, OutcomeLabel.ON_TIME),
    ("paid_off", 3, 0, 0, False, OutcomeLabel.ON_TIME),  # within the grace days
    ("paid_off", 4, 0, 0, False, OutcomeLabel.LATE),
    ("paid_off", 90, 0, 0, False, OutcomeLabel.DEFAULT),  # 90+ days past due, even if paid off since
    ("overdue", 90, 0, 0, False, OutcomeLabel.DEFAULT),
    ("overdue", 89, 0, 0, False, None),
    ("written_off", 120, 5_000, 4_999, False, OutcomeLabel.DEFAULT),
    ("written_off", 120, 5_000, 5_000, False, OutcomeLabel.RECOVERED),
    ("written_off", 120, 0, 0, False, OutcomeLabel.DEFAULT),  # nothing written off: nothing recovered
    ("performing", 0, 0, 0, True, OutcomeLabel.ON_TIME),
    ("performing", 10, 0, 0, True, OutcomeLabel.LATE),
    ("performing", 10, 0, 0, False, None),
])
def test_the_label_follows_the_first_rule_that_applies(state: str, max_dpd: int, written_off: int, recovered: int,
                                                       window_ended: bool, expected: OutcomeLabel | None) -> None:
    assert label_for(state=state, max_dpd=max_dpd, grace_days=GRACE, written_off_amount=written_off,
                     recovered_amount=recovered, window_ended=window_ended, policy=OutcomePolicy()) == expected


def test_a_partial_recovery_counts_at_the_policys_share() -> None:
    policy = domain.check_policy({"recovery_share": "0.8"})
    assert policy.recovery_ppm == 800_000 and policy.to_json()["recovery_share"] == "0.8"
    assert label_for(state="written_off", max_dpd=130, grace_days=0, written_off_amount=10_000,
                     recovered_amount=8_000, window_ended=False, policy=policy) is OutcomeLabel.RECOVERED
    assert label_for(state="written_off", max_dpd=130, grace_days=0, written_off_amount=10_000,
                     recovered_amount=7_999, window_ended=False, policy=policy) is OutcomeLabel.DEFAULT


@given(st.sampled_from(["performing", "overdue", "paid_off", "written_off"]), st.integers(0, 400),
       st.integers(0, 30), st.integers(0, 10**9), st.integers(0, 10**9), st.booleans(), st.integers(1, 720),
       st.integers(1, PPM := 1_000_000))
def test_closed_loans_always_have_a_label_and_open_ones_only_once_known(
        state: str, max_dpd: int, grace: int, written_off: int, recovered: int, window_ended: bool, default_dpd: int,
        share: int) -> None:
    policy = OutcomePolicy(default_dpd=default_dpd, recovery_ppm=share)
    found = label_for(state=state, max_dpd=max_dpd, grace_days=grace, written_off_amount=written_off,
                      recovered_amount=recovered, window_ended=window_ended, policy=policy)
    known = state in ("paid_off", "written_off") or max_dpd >= default_dpd or window_ended
    assert (found is not None) == known  # the same condition as the labelling query's
    if found in (OutcomeLabel.ON_TIME, OutcomeLabel.LATE):
        assert (found is OutcomeLabel.ON_TIME) == (max_dpd <= grace) and max_dpd < default_dpd
    if found is OutcomeLabel.RECOVERED:
        assert state == "written_off" and recovered * PPM >= written_off * share > 0


@pytest.mark.parametrize(("changes", "param"), [
    ({"default_dpd": 0}, "default_dpd"), ({"default_dpd": "90"}, "default_dpd"), ({"window_days": 29}, "window_days"),
    ({"recovery_share": "0"}, "recovery_share"), ({"recovery_share": "1.1"}, "recovery_share"),
    ({"recovery_share": 1}, "recovery_share"), ({"recovery_share": "0.1234567"}, "recovery_share"),
    ({"colour": "red"}, "colour")])
def test_a_bad_policy_is_refused_with_its_field(changes: dict[str, Any], param: str) -> None:
    with pytest.raises(InvalidRequest) as refused:
        domain.check_policy(changes)
    assert refused.value.param == param


@given(st.lists(st.tuples(st.integers(300, 700), st.integers(300, 700), st.booleans()), max_size=60),
       st.integers(400, 600))
def test_the_swap_set_partitions_the_loans(rows: list[tuple[int, int, bool]], threshold: int) -> None:
    cells = swap_set([r[0] for r in rows], [r[1] for r in rows], [int(r[2]) for r in rows], threshold)
    assert [c["segment"] for c in cells] == list(domain.SEGMENTS)
    assert sum(c["loans"] for c in cells) == len(rows) and sum(c["bad"] for c in cells) == sum(r[2] for r in rows)
    by = {c["segment"]: c["loans"] for c in cells}
    assert by["both_approve"] + by["candidate_only"] == sum(1 for r in rows if r[1] >= threshold)
    assert by["both_approve"] + by["champion_only"] == sum(1 for r in rows if r[0] >= threshold)


def test_the_recommendation_needs_a_better_auc_and_no_worse_swaps() -> None:
    cells = swap_set([600, 600, 450, 450], [450, 600, 600, 450], [1, 0, 0, 1], 500)  # swapped in: good; out: bad
    assert domain.recommend({"auc": 0.80}, {"auc": 0.70}, cells) == (domain.Recommendation.PROMOTE, ["auc_higher"])
    assert domain.recommend({"auc": 0.703}, {"auc": 0.70}, cells)[0] is domain.Recommendation.KEEP
    worse = swap_set([600, 600, 450, 450], [450, 600, 600, 450], [0, 0, 1, 1], 500)  # swapped in: bad; out: good
    assert domain.recommend({"auc": 0.80}, {"auc": 0.70}, worse) == (
        domain.Recommendation.KEEP, ["auc_higher", "swap_in_worse"])


# ---------------------------------------------------------------------------------------------- labelling


def test_each_outcome_path_is_labelled_once_known(db: Database, tenant: TenantHandle) -> None:
    p = parents(db, tenant.id)
    long_ago, recent = TODAY - timedelta(days=400), TODAY - timedelta(days=100)
    cases = {
        "on_time": Account("paid_off", 0, recent), "on_time_in_grace": Account("paid_off", GRACE, recent),
        "late": Account("paid_off", GRACE + 1, recent), "default_dpd": Account("overdue", 91, recent),
        "default_written_off": Account("written_off", 130, long_ago, written_off=90_000, recovered=1_000),
        "recovered": Account("written_off", 130, long_ago, written_off=90_000, recovered=90_000),
        "window_on_time": Account("performing", 0, long_ago), "window_late": Account("performing", 20, long_ago),
        "open": Account("performing", 0, recent), "open_overdue": Account("overdue", 45, recent),
        "future": Account("paid_off", 0, TODAY + timedelta(days=1))}
    ids = dict(zip(cases, add_loans(db, p, list(cases.values())), strict=True))
    assert label(db, tenant.id) == 8
    expected = {"on_time": "on_time", "on_time_in_grace": "on_time", "late": "late", "default_dpd": "default",
                "default_written_off": "default", "recovered": "recovered", "window_on_time": "on_time",
                "window_late": "late", "open": None, "open_overdue": None, "future": None}
    found = {name: outcome_of(db, tenant.id, loan_id) for name, loan_id in ids.items()}
    assert {name: row.label if row else None for name, row in found.items()} == expected
    late, written_off, window = found["late"], found["default_written_off"], found["window_late"]
    assert late is not None and written_off is not None and window is not None
    assert (late.bad, written_off.bad, found["recovered"].bad) == (False, True, False)  # type: ignore[union-attr]
    assert (late.max_dpd, late.grace_days, late.default_dpd, late.labelled_on) == (GRACE + 1, GRACE, 90, TODAY)
    assert late.closed_on == recent + timedelta(days=200) and late.window_ends_on == recent + timedelta(days=365)
    assert (written_off.written_off_amount, written_off.recovered_amount) == (90_000, 1_000)
    assert window.closed_on is None and window.origination_month == long_ago.isoformat()[:7]
    assert found["recovered"].recovered_on == TODAY  # type: ignore[union-attr]
    with db.uow(read_only=True) as uow:
        application = uow.session.get(LoanApplication, late.application_id)
        assert application is not None and late.score_id == application.score_id
        assert outcomes.summary(uow, tenant.id) == {"on_time": 3, "late": 2, "default": 2, "recovered": 1}


def test_relabelling_adds_nothing_and_a_recovery_turns_a_default_recovered(db: Database, tenant: TenantHandle) -> None:
    p = parents(db, tenant.id)
    written_off, paid = add_loans(db, p, [Account("written_off", 130, date(2025, 1, 5), written_off=50_000),
                                          Account("paid_off", 0, date(2025, 2, 1))])
    assert label(db, tenant.id) == 2
    first = outcome_of(db, tenant.id, paid)
    assert label(db, tenant.id) == 0 and label(db, tenant.id, TODAY + timedelta(days=1)) == 0 and count(db) == 2
    with db.uow() as uow:  # recoveries arrive after the write-off: half, then the rest
        uow.session.execute(update(LoanAccount).where(LoanAccount.loan_id == written_off)
                            .values(recovered_amount=25_000))
        uow.commit()
    assert label(db, tenant.id) == 0
    with db.uow() as uow:
        uow.session.execute(update(LoanAccount).where(LoanAccount.loan_id == written_off)
                            .values(recovered_amount=50_000))
        uow.commit()
    later = TODAY + timedelta(days=1)
    assert label(db, tenant.id, later) == 1 and label(db, tenant.id, later) == 0 and count(db) == 2
    recovered = outcome_of(db, tenant.id, written_off)
    assert recovered is not None
    assert (recovered.label, recovered.bad, recovered.recovered_on, recovered.labelled_on) == (
        "recovered", False, later, TODAY)
    assert recovered.recovered_amount == 50_000
    again = outcome_of(db, tenant.id, paid)
    assert again is not None and first is not None and (again.id, again.label, again.updated_at) == (
        first.id, first.label, first.updated_at)


def test_the_policy_sets_the_default_threshold_and_the_window(db: Database, tenant: TenantHandle) -> None:
    p = parents(db, tenant.id)
    overdue, young = add_loans(db, p, [Account("overdue", 35, TODAY - timedelta(days=60)),
                                       Account("performing", 0, TODAY - timedelta(days=45))])
    assert label(db, tenant.id) == 0
    with db.uow() as uow:
        with pytest.raises(InvalidRequest):
            outcomes.set_policy(uow, tenant.id, {"window_days": 10}, actor="test")
        row = outcomes.set_policy(uow, tenant.id, {"default_dpd": 30, "window_days": 40}, actor="test")
        assert row.policy == {"default_dpd": 30, "window_days": 40, "recovery_share": "1"}
        uow.commit()
    assert label(db, tenant.id) == 2
    assert outcome_of(db, tenant.id, overdue).label == "default"  # type: ignore[union-attr]
    labelled = outcome_of(db, tenant.id, young)
    assert labelled is not None and (labelled.label, labelled.default_dpd) == ("on_time", 30)
    assert labelled.window_ends_on == TODAY - timedelta(days=5)


def test_a_disbursed_loan_is_labelled_with_its_applications_score(db: Database, tenant: TenantHandle) -> None:
    from finloop.credit.disbursement import disburse
    from finloop.payouts import flows as payout_flows
    from finloop.payouts.bank_sandbox import SandboxBank
    from tests.credit.test_disbursement import borrower, signed
    from tests.credit.test_funding import source
    from tests.credit.test_limits import product

    chosen = product(db, tenant.id, "consumer_installment")
    source(db, tenant.id, "bank_cheap", "0.04", 50_000_000)
    applicant_id, _ = borrower(db, tenant.id)
    with payout_flows.use_bank(SandboxBank(db.clock)):
        loan_id = disburse(db, tenant.id, signed(db, tenant.id, applicant_id), actor="test")
    with db.uow() as uow:  # disbursement opened the account; servicing later sees it paid off
        loan = uow.session.get(Loan, loan_id)
        assert loan is not None
        application_id = loan.application_id
        uow.session.execute(update(LoanAccount).where(LoanAccount.loan_id == loan_id).values(
            state="paid_off", principal_outstanding=0, principal_billed=0, interest_billed=0, fees_billed=0,
            period_interest=0, period_accrued=0, dpd=0, max_dpd=0, closed_on=TODAY))
        uow.commit()
    assert label(db, tenant.id) == 1
    found = outcome_of(db, tenant.id, loan_id)
    with db.uow(read_only=True) as uow:
        score_id = uow.session.scalar(select(LoanApplication.score_id).where(LoanApplication.id == application_id))
    assert found is not None and score_id is not None
    assert (found.label, found.application_id, found.score_id, found.product_id) == (
        "on_time", application_id, score_id, chosen.id)
    with db.uow(read_only=True) as uow:  # its score is a stand-in without features: nothing to learn from
        assert len(outcomes.portfolio_dataset(uow, tenant.id).target) == 0


def test_the_job_labels_each_business_date_once(db: Database, tenant: TenantHandle, clock: FrozenClock) -> None:
    import finloop.worker.jobs.credit_outcomes  # noqa: F401 - registers the job until the lead imports it

    p = parents(db, tenant.id)
    add_loans(db, p, [Account("paid_off", 0, date(2025, 5, 1)), Account("overdue", 100, date(2025, 9, 1))])
    jobs = Registry()
    jobs.register(load_jobs().get("credit.label_outcomes"))
    clock.advance(timedelta(days=1))  # Monday has closed, and an hour more has passed
    first = Runner(db, jobs).run_pass().outcomes
    assert [(o.job, o.business_date, o.status, o.processed) for o in first] == [
        ("credit.label_outcomes", TODAY, "succeeded", 2)]
    clock.advance(timedelta(days=1))
    second = Runner(db, jobs).run_pass().outcomes
    assert [(o.business_date, o.status, o.processed) for o in second] == [(TODAY + timedelta(days=1), "succeeded", 0)]
    assert count(db) == 2


def test_outcomes_are_tenant_scoped(db: Database, tenant: TenantHandle, other_tenant: TenantHandle) -> None:
    p = parents(db, tenant.id)
    (loan_id,) = add_loans(db, p, [Account("paid_off", 0, date(2025, 5, 1))])
    assert label(db, other_tenant.id) == 0 and label(db, tenant.id) == 1
    row = outcome_of(db, tenant.id, loan_id)
    assert row is not None
    with db.uow(read_only=True) as uow:
        with pytest.raises(NotFound):
            outcomes.get_outcome(uow, other_tenant.id, row.id)
        assert outcomes.list_outcomes(uow, other_tenant.id) == []
        assert [o.id for o in outcomes.list_outcomes(uow, tenant.id, label="on_time", bad=False)] == [row.id]
        assert outcomes.list_outcomes(uow, tenant.id, label="late") == []
        with pytest.raises(InvalidRequest):
            outcomes.list_outcomes(uow, tenant.id, label="great")
        assert len(outcomes.portfolio_dataset(uow, other_tenant.id).target) == 0


def test_bad_arguments_are_refused(db: Database, tenant: TenantHandle) -> None:
    with db.uow() as uow:
        with pytest.raises(InvalidRequest) as not_a_date:
            outcomes.label_outcomes(uow, tenant.id, T0)
        with pytest.raises(InvalidRequest) as no_limit:
            outcomes.label_outcomes(uow, tenant.id, TODAY, limit=0)
        with pytest.raises(InvalidRequest) as ahead:  # it would end performance windows early
            outcomes.label_outcomes(uow, tenant.id, TODAY + timedelta(days=2))
    assert (not_a_date.value.param, no_limit.value.param) == ("as_of", "limit")
    assert (ahead.value.code, ahead.value.param) == ("as_of_in_future", "as_of")
    assert count(db) == 0


# ---------------------------------------------------------------------------------------------- the data set


def test_the_portfolio_dataset_joins_application_features_with_the_bad_label(db: Database,
                                                                             tenant: TenantHandle) -> None:
    p = parents(db, tenant.id)
    book = simulated_book(40, seed=11)
    book.append(Account("paid_off", 0, date(2023, 1, 1)))  # scored without features: left out
    ids = add_loans(db, p, book)
    label(db, tenant.id)
    with db.uow(read_only=True) as uow:
        data = outcomes.portfolio_dataset(uow, tenant.id)
        later = outcomes.portfolio_dataset(uow, tenant.id, originated_after=date(2024, 1, 20))
    assert isinstance(data, Dataset) and data.name == "portfolio" and data.features == PLATFORM_FEATURES
    assert list(data.frame.columns) == list(PLATFORM_FEATURE_NAMES) and data.frame.shape == (40, 19)
    assert data.target.dtype == np.int8
    assert list(data.target) == [1 if a.state in ("written_off", "overdue") else 0 for a in book[:40]]
    expected = frame_of([a.features or {} for a in book[:40]], PLATFORM_FEATURES)
    assert data.frame.equals(expected)  # the features the application's score read, in disbursement order
    assert data.frame["employment"].dtype == object and data.frame["tenure_days"].dtype == np.float64
    assert len(later.target) == 20 and len(ids) == 41


# ---------------------------------------------------------------------------------------------- comparison


@pytest.fixture(scope="session")
def noise() -> Trained:
    """A model of the platform features trained on shuffled labels: it ranks loans no better than chance."""
    data = sim.generate(400, seed=21)
    labels = list(data.defaulted)
    random.Random(5).shuffle(labels)
    return train(Dataset("platform", frame_of(data.rows, PLATFORM_FEATURES), np.asarray(labels, dtype=np.int8),
                         PLATFORM_FEATURES), seed=1, rounds=20, min_iv=0.0)


def test_the_comparison_prefers_the_model_that_ranks_the_book_better_either_way(
        db: Database, tenant: TenantHandle, platform: Trained, noise: Trained) -> None:
    p = parents(db, tenant.id)
    add_loans(db, p, simulated_book(300, seed=31))
    label(db, tenant.id)
    strong, _ = install(db, tenant.id, platform, challenger=False)
    with db.uow() as uow:
        weak, _ = registry.register(uow, tenant.id, noise, name="applicant", actor="test")
        uow.commit()

    with db.uow() as uow:
        kept = outcomes.compare(uow, tenant.id, weak.id, actor="analyst")  # the weak draft against the champion
        uow.commit()
    assert kept["recommendation"] == "keep_champion" and kept["reasons"] == ["auc_not_higher", "swap_in_worse"]
    assert (kept["candidate"]["model_id"], kept["against"]["model_id"]) == (weak.id, strong.id)
    assert kept["against"]["auc"] >= 0.7 and kept["candidate"]["auc"] < kept["against"]["auc"] - 0.05
    assert kept["holdout"]["kind"] == "all_labelled" and kept["holdout"]["loans"] == 300
    for side in ("candidate", "against"):
        m = kept[side]
        assert m["gini"] == pytest.approx(2 * m["auc"] - 1, abs=2e-4) and 0 <= m["ks"] <= 1
    assert kept["psi"] >= 0 and kept["psi_level"] in ("stable", "moderate", "significant")
    assert kept["reject_below"] == 500 and sum(c["loans"] for c in kept["swap_set"]) == 300
    assert sum(c["bad"] for c in kept["swap_set"]) == kept["holdout"]["bad"]

    with db.uow() as uow:  # the other way round: the strong model against the weak one
        preferred = outcomes.compare(uow, tenant.id, strong.id, against=weak.id, actor="analyst")
        uow.commit()
    assert preferred["recommendation"] == "promote_candidate" and preferred["reasons"] == ["auc_higher"]
    assert preferred["candidate"]["auc"] == kept["against"]["auc"]
    swapped = {c["segment"]: (c["loans"], c["bad"]) for c in kept["swap_set"]}
    mirrored = {c["segment"]: (c["loans"], c["bad"]) for c in preferred["swap_set"]}
    # Swapping the two models swaps who approves alone; the strong model turns away the worse loans.
    assert (mirrored["candidate_only"], mirrored["champion_only"]) == (swapped["champion_only"],
                                                                      swapped["candidate_only"])
    cells = {c["segment"]: c for c in preferred["swap_set"]}
    assert cells["candidate_only"]["bad_rate"] < cells["champion_only"]["bad_rate"]
    with db.uow(read_only=True) as uow:  # recorded on the candidate, not promoted
        assert outcomes.get_comparison(uow, tenant.id, weak.id) == kept
        assert outcomes.get_comparison(uow, tenant.id, strong.id) == preferred
        assert registry.get_model(uow, tenant.id, weak.id).status == "draft"
        assert registry.get_model(uow, tenant.id, weak.id).metrics["auc"] == noise.scorecard.metrics["auc"]


def test_comparing_refuses_what_it_cannot_compare(db: Database, tenant: TenantHandle, platform: Trained,
                                                  german: Trained) -> None:
    p = parents(db, tenant.id)
    add_loans(db, p, simulated_book(20, seed=41))
    label(db, tenant.id)
    with db.uow() as uow:
        card, gbm = registry.register(uow, tenant.id, platform, name="applicant", actor="test")
        foreign, _ = registry.register(uow, tenant.id, german, name="applicant", actor="test")
        uow.commit()
    for model_id, against, error, code, param in (
            (card.id, "champion", Conflict, "no_champion_model", "against"),
            (card.id, card.id, InvalidRequest, "same_model", "against"),
            (card.id, "cmd_nothing", NotFound, "credit_model_not_found", "against"),
            ("cmd_nothing", "champion", NotFound, "credit_model_not_found", "model_id"),
            (card.id, foreign.id, Conflict, "model_not_applicable", "against"),
            (card.id, gbm.id, Conflict, "not_enough_outcomes", "model_id")):
        with db.uow() as uow:
            with pytest.raises(error) as refused:
                outcomes.compare(uow, tenant.id, model_id, against=against)
            assert (refused.value.code, refused.value.param) == (code, param)
    with db.uow(read_only=True) as uow:
        with pytest.raises(NotFound) as missing:
            outcomes.get_comparison(uow, tenant.id, card.id)
        assert missing.value.code == "comparison_not_found"


def test_retraining_on_outcomes_registers_drafts_compared_out_of_time(db: Database, tenant: TenantHandle,
                                                                      platform: Trained) -> None:
    p = parents(db, tenant.id)
    book = simulated_book(400, seed=51)
    add_loans(db, p, book)
    label(db, tenant.id)
    champion, _ = install(db, tenant.id, platform, challenger=False)
    stages: list[str] = []
    result = outcomes.retrain_from_outcomes(db, tenant.id, rounds=20, seed=2, actor="analyst",
                                            progress=lambda stage, done, total: stages.append(stage))
    assert "gbm" in stages and (result.name, result.version) == ("applicant", 2)
    cutoff = book[300].disbursed_on  # the most recent quarter is held out
    assert result.training["loans"] == 300 and result.training["held_out_from"] == cutoff.isoformat()
    assert result.training["last_disbursed_on"] == (cutoff - timedelta(days=1)).isoformat()
    assert result.comparisons is not None and set(result.comparisons) == {"scorecard", "gbm"}
    for kind, comparison in result.comparisons.items():
        assert comparison["holdout"]["kind"] == "out_of_time" and comparison["holdout"]["loans"] == 100
        assert comparison["holdout"]["first_disbursed_on"] == cutoff.isoformat()
        assert comparison["against"]["model_id"] == champion.id and comparison["candidate"]["kind"] == kind
        assert comparison["recommendation"] in ("promote_candidate", "keep_champion")
    with db.uow(read_only=True) as uow:
        card = registry.get_model(uow, tenant.id, result.scorecard_id)
        assert (card.status, card.dataset, card.name) == ("draft", "portfolio", "applicant")
        assert card.data_to is not None and card.data_to.date() == cutoff - timedelta(days=1)
        assert card.metrics["comparison"] == result.comparisons["scorecard"]
        assert registry.active(uow, tenant.id, "applicant").champion[0] == champion.id  # type: ignore[index]


def test_retraining_without_a_champion_registers_without_comparing(db: Database, tenant: TenantHandle) -> None:
    p = parents(db, tenant.id)
    add_loans(db, p, simulated_book(300, seed=61))
    label(db, tenant.id)
    result = outcomes.retrain_from_outcomes(db, tenant.id, rounds=10, holdout_share=0.0, actor="analyst")
    assert result.comparisons is None and result.training["held_out_from"] is None
    assert result.training["loans"] == 300
    with db.uow(read_only=True) as uow:
        assert registry.get_model(uow, tenant.id, result.gbm_id).status == ModelStatus.DRAFT.value


def test_retraining_refuses_too_few_outcomes_and_bad_settings_without_writing(db: Database, tenant: TenantHandle,
                                                                              german: Trained) -> None:
    p = parents(db, tenant.id)
    add_loans(db, p, simulated_book(30, seed=71))
    label(db, tenant.id)
    for kwargs, code, param in (({"holdout_share": 0.6}, "invalid_holdout_share", "holdout_share"),
                                ({"name": "9bad"}, "invalid_model_name", "name"),
                                ({}, "no_training_data", "dataset")):
        with pytest.raises(InvalidRequest) as refused:
            outcomes.retrain_from_outcomes(db, tenant.id, actor="t", rounds=10, **kwargs)
        assert (refused.value.code, refused.value.param) == (code, param)
    install(db, tenant.id, german, name="applicant", challenger=False)
    with pytest.raises(Conflict) as foreign:
        outcomes.retrain_from_outcomes(db, tenant.id, actor="t", rounds=10)
    assert foreign.value.code == "model_not_applicable"
    with db.uow(read_only=True) as uow:
        assert int(uow.session.scalar(select(func.count()).select_from(CreditModel).where(
            CreditModel.tenant_id == tenant.id, CreditModel.dataset == "portfolio")) or 0) == 0
