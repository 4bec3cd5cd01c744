"""Disbursement: a signed application becomes a loan funded from the cheapest source, paid out through the bank
with exact, balanced entries and the limit reservation consumed; BNPL is booked to the merchant net of its fee; a
bank decline reverses everything and releases the limit; an unknown answer is queried, never re-sent; a batch
settles each item on its own; bad input writes nothing; another tenant sees nothing."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import func, select

from finloop.core.errors import Conflict, InvalidRequest, NotFound
from finloop.credit import applications, contracts, disbursement, funding, limits
from finloop.credit.domain import LoanStatus
from finloop.credit.models import Disbursement, Loan
from finloop.db.uow import Database
from finloop.ledger import service as ledger
from finloop.payments import service as payments
from finloop.payouts import flows as payout_flows
from finloop.payouts.bank_sandbox import SandboxBank
from tests.conftest import TenantHandle
from tests.credit.conftest import make_applicant
from tests.credit.test_funding import balance, source
from tests.credit.test_limits import product, rated, reported, state

PRINCIPAL = 500_000


@pytest.fixture
def bank(db: Database) -> Iterator[SandboxBank]:
    sandbox = SandboxBank(db.clock)
    with payout_flows.use_bank(sandbox):
        yield sandbox


def borrower(db: Database, tenant_id: str, reference: str = "alice",
             national_id: str = "110101199003070011") -> tuple[str, str]:
    party = make_applicant(db, tenant_id, reference, national_id=national_id, phone=None)
    rated(db, tenant_id, party.applicant_id, "B")
    reported(db, tenant_id, party.applicant_id, debt=2_000_000, delinquencies=1, enquiries=2)
    with db.uow() as uow:
        line = limits.grant_line(uow, tenant_id, party.applicant_id, actor="test")
        uow.commit()
        return party.applicant_id, line.id


def signed(db: Database, tenant_id: str, applicant_id: str, code: str = "consumer_installment",
           amount: int = PRINCIPAL, term: int = 12) -> str:
    with db.uow() as uow:
        row = applications.submit(uow, tenant_id, applicant_id=applicant_id, product_code=code,
                                  principal_amount=amount, term=term, purpose="purchase", actor="test")
        assert row.status == "approved", row.reasons
        sha = contracts.get_contract(uow, tenant_id, row.id).sha256
        contracts.accept(uow, tenant_id, row.id, sha256=sha, channel="app", ip=None, actor="test")
        uow.commit()
        return row.id


@pytest.fixture
def setup(db: Database, tenant: TenantHandle) -> dict[str, Any]:
    product(db, tenant.id, "consumer_installment")
    product(db, tenant.id, "bnpl_3")
    source(db, tenant.id, "bank_dear", "0.06", 50_000_000)
    cheap = source(db, tenant.id, "bank_cheap", "0.04", 50_000_000)
    applicant_id, line_id = borrower(db, tenant.id)
    return {"applicant_id": applicant_id, "line_id": line_id, "source_id": cheap.id}


def loan_of(db: Database, tenant_id: str, loan_id: str) -> Loan:
    with db.uow(read_only=True) as uow:
        row = disbursement.get_loan(uow, tenant_id, loan_id)
        uow.session.expunge(row)
        return row


def used(db: Database, tenant_id: str, source_id: str) -> int:
    with db.uow(read_only=True) as uow:
        return funding.get_source(uow, tenant_id, source_id).used_amount


def test_a_signed_loan_is_funded_from_the_cheapest_source_and_paid_out(
        db: Database, tenant: TenantHandle, setup: dict[str, Any], bank: SandboxBank) -> None:
    application_id = signed(db, tenant.id, setup["applicant_id"])
    reserved_before = state(db, tenant.id, setup["line_id"])["reserved"]
    loan_id = disbursement.disburse(db, tenant.id, application_id, actor="test")
    loan = loan_of(db, tenant.id, loan_id)
    assert (loan.status, loan.funding_source_id, loan.target) == ("active", setup["source_id"], "customer_account")
    assert loan.funding_choice["chosen"] == setup["source_id"] and len(loan.funding_choice["candidates"]) == 2
    assert loan.schedule["principal"] == "5000.00" and len(loan.schedule["installments"]) == 12
    assert bank.calls == 1 and bank.movements[0].amount == PRINCIPAL
    # The ledger: the partner bank's funding liability, the loan receivable; the cash passed through.
    assert balance(db, tenant.id, "liabilities:funding:bank_cheap") == PRINCIPAL
    assert balance(db, tenant.id, "assets:loans:installment:principal") == PRINCIPAL
    assert balance(db, tenant.id, funding.FUNDING_CASH_CODE) == 0
    with db.uow(read_only=True) as uow:
        for postings in ledger.entry_postings(uow, loan.entry_ids).values():
            assert sum(p.amount for p in postings) == 0 and len(postings) == 2
    assert used(db, tenant.id, setup["source_id"]) == PRINCIPAL
    after = state(db, tenant.id, setup["line_id"])
    assert after["reserved"] == reserved_before - PRINCIPAL and after["used"] == PRINCIPAL
    # Asking again for the same application returns the same loan: nothing is paid twice.
    assert disbursement.disburse(db, tenant.id, application_id, actor="test") == loan_id and bank.calls == 1


def test_the_own_reserve_funds_from_the_reserve_account_when_cheapest(
        db: Database, tenant: TenantHandle, setup: dict[str, Any], bank: SandboxBank) -> None:
    source(db, tenant.id, "reserve", "0.01", 1_000_000, kind="own_reserve")
    loan_id = disbursement.disburse(db, tenant.id, signed(db, tenant.id, setup["applicant_id"]), actor="test")
    assert loan_of(db, tenant.id, loan_id).funding_choice["candidates"][0]["code"] == "reserve"
    assert balance(db, tenant.id, funding.RESERVE_CODE) == -PRINCIPAL
    assert balance(db, tenant.id, "liabilities:funding:bank_cheap") == 0


def test_bnpl_is_booked_to_the_merchant_net_of_the_merchant_fee(
        db: Database, tenant: TenantHandle, setup: dict[str, Any], bank: SandboxBank) -> None:
    with db.uow() as uow:
        merchant = payments.create_merchant(uow, tenant.id, reference="phones", name="Phone shop").id
        uow.commit()
    application_id = signed(db, tenant.id, setup["applicant_id"], code="bnpl_3", amount=300_000, term=3)
    with pytest.raises(InvalidRequest) as missing:
        disbursement.disburse(db, tenant.id, application_id, actor="test")
    assert missing.value.code == "merchant_required"
    loan_id = disbursement.disburse(db, tenant.id, application_id, merchant_id=merchant, actor="test")
    loan = loan_of(db, tenant.id, loan_id)
    # 3% of 3,000.00 is 90.00: the merchant is owed 2,910.00, the platform earns 90.00.
    assert (loan.status, loan.target, loan.merchant_fee_amount) == ("active", "merchant", 9_000)
    assert balance(db, tenant.id, f"liabilities:merchant:{merchant}:available") == 291_000
    assert balance(db, tenant.id, "income:credit:bnpl:fees") == 9_000
    assert balance(db, tenant.id, "assets:loans:bnpl:principal") == 300_000
    assert balance(db, tenant.id, funding.FUNDING_CASH_CODE) == 300_000  # cash held until the merchant is paid
    assert bank.calls == 0


def test_a_bank_decline_reverses_the_entries_and_releases_the_limit(
        db: Database, tenant: TenantHandle, setup: dict[str, Any], bank: SandboxBank) -> None:
    application_id = signed(db, tenant.id, setup["applicant_id"])
    reserved = state(db, tenant.id, setup["line_id"])["reserved"]
    bank.queue("fail")
    loan_id = disbursement.disburse(db, tenant.id, application_id, actor="test")
    loan = loan_of(db, tenant.id, loan_id)
    assert (loan.status, loan.failure_code) == ("failed", "bank_failed")
    assert balance(db, tenant.id, "liabilities:funding:bank_cheap") == 0
    assert balance(db, tenant.id, "assets:loans:installment:principal") == 0
    assert used(db, tenant.id, setup["source_id"]) == 0
    after = state(db, tenant.id, setup["line_id"])
    assert after["reserved"] == reserved - PRINCIPAL and after["used"] == 0
    with db.uow(read_only=True) as uow:
        attempt = disbursement.attempts(uow, tenant.id, loan_id)[0]
        assert (attempt.status, attempt.error_code) == ("failed", "account_closed")
        assert applications.get_application(uow, tenant.id, application_id).status == "contract_signed"
    # A failed loan is final: disbursing the application again returns it without calling the bank.
    assert disbursement.disburse(db, tenant.id, application_id, actor="test") == loan_id and bank.calls == 1


def test_an_unknown_answer_is_queried_not_resent(db: Database, tenant: TenantHandle, setup: dict[str, Any],
                                                 bank: SandboxBank) -> None:
    bank.queue("unknown")
    loan_id = disbursement.disburse(db, tenant.id, signed(db, tenant.id, setup["applicant_id"]), actor="test")
    assert loan_of(db, tenant.id, loan_id).status == "active" and bank.calls == 1 and len(bank.movements) == 1
    with db.uow(read_only=True) as uow:
        assert disbursement.attempts(uow, tenant.id, loan_id)[0].queried is True


def test_a_loan_still_in_flight_waits_for_the_query(db: Database, tenant: TenantHandle, setup: dict[str, Any],
                                                    bank: SandboxBank) -> None:
    from datetime import timedelta

    from finloop.core.clock import FrozenClock

    bank.queue("delay")
    loan_id = disbursement.disburse(db, tenant.id, signed(db, tenant.id, setup["applicant_id"]), actor="test")
    assert loan_of(db, tenant.id, loan_id).status == "disbursing"
    with pytest.raises(Conflict) as illegal, db.uow() as uow:
        disbursement._move(uow, disbursement.get_loan(uow, tenant.id, loan_id), LoanStatus.PENDING_DISBURSEMENT,
                           actor="test")
    assert illegal.value.code == "loan_state_conflict"
    assert isinstance(db.clock, FrozenClock)
    db.clock.advance(timedelta(hours=3))
    assert disbursement.query_disbursement(db, tenant.id, loan_id, actor="test") == "active"
    assert bank.calls == 1


def test_the_job_queries_a_manual_loan_left_in_flight(db: Database, tenant: TenantHandle, setup: dict[str, Any],
                                                      bank: SandboxBank) -> None:
    from datetime import timedelta

    from finloop.core.clock import FrozenClock

    bank.queue("delay")
    loan_id = disbursement.disburse(db, tenant.id, signed(db, tenant.id, setup["applicant_id"]), actor="test")
    assert loan_of(db, tenant.id, loan_id).status == "disbursing"
    with db.uow(read_only=True) as uow:
        assert disbursement.policy_row(uow, tenant.id).automatic is False  # disbursed by hand
    assert isinstance(db.clock, FrozenClock)
    db.clock.advance(timedelta(hours=3))
    assert disbursement.disburse_signed(db) == 1
    assert loan_of(db, tenant.id, loan_id).status == "active" and bank.calls == 1


def test_a_batch_settles_each_item_on_its_own(db: Database, tenant: TenantHandle, setup: dict[str, Any],
                                              bank: SandboxBank) -> None:
    first = signed(db, tenant.id, setup["applicant_id"], amount=200_000)
    second = signed(db, tenant.id, setup["applicant_id"], amount=300_000)
    bank.queue("success", "fail")
    results = disbursement.disburse_batch(db, tenant.id, [{"application_id": first}, {"application_id": second},
                                                          {"application_id": "lap_missing"}], actor="test")
    assert [(r.status, r.error and r.error["code"]) for r in results] == [
        ("active", None), ("failed", None), (None, "application_not_found")]
    assert balance(db, tenant.id, "assets:loans:installment:principal") == 200_000
    with pytest.raises(InvalidRequest):
        disbursement.disburse_batch(db, tenant.id, [], actor="test")


def counts(db: Database) -> tuple[int, int]:
    with db.uow(read_only=True) as uow:
        return (uow.session.scalar(select(func.count()).select_from(Loan)) or 0,
                uow.session.scalar(select(func.count()).select_from(Disbursement)) or 0)


def test_bad_input_is_refused_and_writes_nothing(db: Database, tenant: TenantHandle, setup: dict[str, Any],
                                                 bank: SandboxBank) -> None:
    with db.uow() as uow:
        unsigned = applications.submit(uow, tenant.id, applicant_id=setup["applicant_id"],
                                       product_code="consumer_installment", principal_amount=PRINCIPAL, term=12,
                                       purpose="purchase", actor="test").id
        uow.commit()
    with pytest.raises(Conflict) as not_signed:
        disbursement.disburse(db, tenant.id, unsigned, actor="test")
    assert not_signed.value.code == "application_not_signed"
    application_id = signed(db, tenant.id, setup["applicant_id"])
    with pytest.raises(InvalidRequest) as merchant:
        disbursement.disburse(db, tenant.id, application_id, merchant_id="mer_x", actor="test")
    assert merchant.value.code == "merchant_not_applicable"
    with pytest.raises(InvalidRequest):
        disbursement.disburse(db, tenant.id, None, actor="test")
    with db.uow() as uow:  # every source used up: no funding, nothing written
        for row in funding.list_sources(uow, tenant.id):
            funding.update_source(uow, tenant.id, row.id, {"active": False}, actor="test")
        uow.commit()
    with pytest.raises(Conflict) as none:
        disbursement.disburse(db, tenant.id, application_id, actor="test")
    assert none.value.code == "no_funding_available"
    assert counts(db) == (0, 0) and bank.calls == 0
    assert balance(db, tenant.id, funding.FUNDING_CASH_CODE) == 0


def test_another_tenant_sees_nothing(db: Database, tenant: TenantHandle, other_tenant: TenantHandle,
                                     setup: dict[str, Any], bank: SandboxBank) -> None:
    application_id = signed(db, tenant.id, setup["applicant_id"])
    loan_id = disbursement.disburse(db, tenant.id, application_id, actor="test")
    with pytest.raises(NotFound):
        disbursement.disburse(db, other_tenant.id, application_id, actor="test")
    with db.uow(read_only=True) as uow:
        with pytest.raises(NotFound):
            disbursement.get_loan(uow, other_tenant.id, loan_id)
        with pytest.raises(NotFound):
            funding.get_source(uow, other_tenant.id, setup["source_id"])
        assert disbursement.list_loans(uow, other_tenant.id) == []
        assert funding.list_sources(uow, other_tenant.id) == []


def test_the_accrual_runs_on_active_loans_once_per_business_date(
        db: Database, tenant: TenantHandle, setup: dict[str, Any], bank: SandboxBank) -> None:
    from datetime import date

    disbursement.disburse(db, tenant.id, signed(db, tenant.id, setup["applicant_id"]), actor="test")
    day = date(2026, 3, 2)
    totals = []
    for _ in range(2):
        with db.uow() as uow:
            totals.append(disbursement.accrue_funding_cost(uow, tenant.id, day))
            uow.commit()
    # 5,000.00 at 4% for a day: 500000 * 0.04 / 365 = 54.79... minor units, 55 by half-even.
    assert totals == [55, 0]
    assert balance(db, tenant.id, "liabilities:funding_interest:bank_cheap") == 55
    assert balance(db, tenant.id, "liabilities:funding_interest:bank_dear") == 0


def test_the_accrual_job_runs_once_per_business_date(db: Database, tenant: TenantHandle, setup: dict[str, Any],
                                                      bank: SandboxBank) -> None:
    from datetime import date, timedelta

    from finloop.core.clock import FrozenClock
    from finloop.worker.registry import Registry, load_jobs
    from finloop.worker.runner import Runner

    disbursement.disburse(db, tenant.id, signed(db, tenant.id, setup["applicant_id"]), actor="test")
    jobs = Registry()
    jobs.register(load_jobs().get("credit.accrue_funding_cost"))
    assert isinstance(db.clock, FrozenClock)
    db.clock.advance(timedelta(days=2))  # Monday 2 and Tuesday 3 March have closed
    outcomes = Runner(db, jobs).run_pass().outcomes
    assert [(o.job, o.business_date, o.status) for o in outcomes if o.job == "credit.accrue_funding_cost"][:1] == [
        ("credit.accrue_funding_cost", date(2026, 3, 2), "succeeded")]
    again = Runner(db, jobs).run_pass().outcomes
    # 500000 * 0.04 / 365 a day: 54.79 → 55 after one day, 109.59 → 110 after two (cumulative, half-even).
    accrued = balance(db, tenant.id, "liabilities:funding_interest:bank_cheap")
    days = len([o for o in outcomes + again if o.job == "credit.accrue_funding_cost" and o.status == "succeeded"])
    assert (days, accrued) == (2, 110)
    assert balance(db, tenant.id, funding.COST_OF_FUNDS_CODE) == 110


def test_automatic_disbursement_follows_the_tenant_policy(db: Database, tenant: TenantHandle,
                                                          other_tenant: TenantHandle, setup: dict[str, Any],
                                                          bank: SandboxBank) -> None:
    from finloop.worker.registry import Registry, load_jobs
    from finloop.worker.runner import Runner

    application_id = signed(db, tenant.id, setup["applicant_id"])
    bnpl = signed(db, tenant.id, setup["applicant_id"], code="bnpl_3", amount=100_000, term=3)
    assert disbursement.disburse_signed(db) == 0  # the policy is manual by default
    with db.uow() as uow, pytest.raises(InvalidRequest):
        disbursement.set_policy(uow, tenant.id, automatic="yes", actor="test")
    with db.uow() as uow:
        assert disbursement.policy_row(uow, tenant.id).automatic is False
        disbursement.set_policy(uow, tenant.id, automatic=True, actor="test")
        uow.commit()
    jobs = Registry()
    jobs.register(load_jobs().get("credit.disburse_signed"))
    outcomes = [o for o in Runner(db, jobs).run_pass().outcomes if o.job == "credit.disburse_signed"]
    assert [(o.status, o.processed) for o in outcomes] == [("succeeded", 1)]
    with db.uow(read_only=True) as uow:
        loans = disbursement.list_loans(uow, tenant.id)
        assert [(loan.application_id, loan.mode, loan.status) for loan in loans] == [(application_id, "auto",
                                                                                      "active")]
        # Buy-now-pay-later waits for a request that names the merchant; the other tenant has no policy.
        assert applications.get_application(uow, tenant.id, bnpl).status == "contract_signed"
        assert disbursement.policy_row(uow, other_tenant.id).automatic is False
    assert disbursement.disburse_signed(db) == 0 and bank.calls == 1
