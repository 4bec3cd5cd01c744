"""Repayments: allocation by the product's order, early repayment reducing the installment or the term, payoff,
overpayment held as an advance and used when the next installment falls due, idempotent references, refusals that
write nothing, limits restored on a revolving product."""

from __future__ import annotations

from datetime import date

import pytest
from sqlalchemy import func, select

from finloop.core.errors import Conflict, InvalidRequest, NotFound
from finloop.credit import applications, disbursement, limits
from finloop.credit import service as credit
from finloop.credit.servicing import eod
from finloop.credit.servicing import service as servicing
from finloop.credit.servicing.models import LoanInstallment, Repayment
from finloop.db.uow import Database
from finloop.payments import service as payments
from finloop.payouts.bank_sandbox import SandboxBank
from tests.conftest import TenantHandle
from tests.credit.servicing.conftest import account, at, close_days, make_loan
from tests.credit.test_disbursement import borrower, signed
from tests.credit.test_funding import balance, source
from tests.credit.test_limits import product


def repay(db: Database, tenant_id: str, loan_id: str, day: date, amount: int, reference: str,
          prepayment: str | None = None) -> Repayment:
    at(db.clock, day)  # type: ignore[arg-type]
    with db.uow() as uow:
        row = servicing.repay(uow, tenant_id, loan_id, amount=amount, reference=reference, prepayment=prepayment,
                              actor="test")
        uow.session.expunge(row)
        uow.commit()
    return row


def installments(db: Database, tenant_id: str, loan_id: str) -> list[LoanInstallment]:
    with db.uow(read_only=True) as uow:
        rows = servicing.installments(uow, tenant_id, loan_id)
        for row in rows:
            uow.session.expunge(row)
        return rows


def balanced(db: Database, tenant_id: str) -> None:
    with db.uow(read_only=True) as uow:
        assert eod.check_subledger(uow, tenant_id) == []


def test_the_default_order_pays_penalty_then_fees_then_interest_then_principal(
        db: Database, tenant: TenantHandle, loan: str) -> None:
    close_days(db, tenant.id, date(2026, 3, 2), date(2026, 4, 10))
    before = account(db, tenant.id, loan)
    assert (before.dpd, before.penalty_outstanding, before.fees_billed) == (8, 285, 2_000)
    # Not enough for everything: the principal takes what is left after penalty, fees and interest.
    row = repay(db, tenant.id, loan, date(2026, 4, 11), 20_000, "part")
    assert row.allocation == {"penalty": 285, "fees": 2_000, "interest": 15_000, "principal": 2_715,
                              "prepayment_fee": 0, "advance": 0, "from_advance": 0}
    after = account(db, tenant.id, loan)
    assert (after.state, after.dpd) == ("overdue", 8)
    assert after.principal_billed == before.principal_billed - 2_715
    balanced(db, tenant.id)


def test_a_product_order_puts_interest_before_penalty(db: Database, tenant: TenantHandle, bank: SandboxBank) -> None:
    loan = make_loan(db, tenant.id, allocation_order=["interest", "principal", "penalty", "fees"])
    close_days(db, tenant.id, date(2026, 3, 2), date(2026, 4, 10))
    row = repay(db, tenant.id, loan, date(2026, 4, 11), 20_000, "part")
    assert (row.allocation["interest"], row.allocation["principal"], row.allocation["penalty"]) == (15_000, 5_000, 0)
    balanced(db, tenant.id)


def test_paying_the_installment_in_full_cures_the_loan_and_reports_late_to_the_line(
        db: Database, tenant: TenantHandle, loan: str) -> None:
    close_days(db, tenant.id, date(2026, 3, 2), date(2026, 4, 10))
    due = account(db, tenant.id, loan)
    owed = due.principal_billed + due.interest_billed + due.fees_billed + due.penalty_outstanding
    repay(db, tenant.id, loan, date(2026, 4, 11), owed, "all")
    after = account(db, tenant.id, loan)
    assert (after.state, after.dpd, after.bucket, after.max_dpd) == ("performing", 0, "M0", 8)
    assert installments(db, tenant.id, loan)[0].status == "paid"
    with db.uow(read_only=True) as uow:
        line = limits.line_of(uow, tenant.id, after.applicant_id)
        assert [e.kind for e in limits.events(uow, tenant.id, line.id, kinds=["late", "on_time"])] == ["late"]


def test_an_overpayment_is_held_and_used_when_the_next_installment_falls_due(
        db: Database, tenant: TenantHandle, loan: str) -> None:
    first = installments(db, tenant.id, loan)[0]
    close_days(db, tenant.id, date(2026, 3, 2), date(2026, 4, 1))
    repay(db, tenant.id, loan, date(2026, 4, 2), first.principal_due + first.interest_due + 50_000, "more")
    held = account(db, tenant.id, loan)
    assert held.advance_amount == 50_000 and held.state == "performing"
    close_days(db, tenant.id, date(2026, 4, 2), date(2026, 5, 1))
    used = account(db, tenant.id, loan)
    second = installments(db, tenant.id, loan)[1]
    assert used.advance_amount == 0
    assert second.principal_paid + second.interest_paid == 50_000 and second.status == "billed"
    with db.uow(read_only=True) as uow:
        kinds = [r.kind for r in servicing.repayments(uow, tenant.id, loan)]
    assert kinds == ["regular", "advance"]
    balanced(db, tenant.id)


def test_reduce_installment_keeps_the_count_and_lowers_the_installments(
        db: Database, tenant: TenantHandle, loan: str) -> None:
    close_days(db, tenant.id, date(2026, 3, 2), date(2026, 3, 19))
    before = installments(db, tenant.id, loan)
    row = repay(db, tenant.id, loan, date(2026, 3, 20), 400_000, "early", prepayment="reduce_installment")
    # 18 days of March's 15,000 interest (over 31 days); a 1% fee on the principal prepaid.
    assert row.allocation["interest"] == 15_000 * 18 // 31
    assert row.allocation["principal"] + row.allocation["prepayment_fee"] + row.allocation["interest"] == 400_000
    assert row.allocation["prepayment_fee"] == round(row.allocation["principal"] / 100)
    after = installments(db, tenant.id, loan)
    assert [r.status for r in after] == ["scheduled"] * 12
    assert sum(r.principal_due for r in after) == 1_000_000 - row.allocation["principal"]
    assert after[1].principal_due + after[1].interest_due < before[1].principal_due + before[1].interest_due
    with db.uow(read_only=True) as uow:
        change = servicing.schedule_changes(uow, tenant.id, loan)[0]
        assert (change.reason, change.repayment_id, len(change.before)) == ("reduce_installment", row.id, 12)
    balanced(db, tenant.id)


def test_reduce_term_keeps_the_installment_and_cancels_the_last_ones(
        db: Database, tenant: TenantHandle, loan: str) -> None:
    close_days(db, tenant.id, date(2026, 3, 2), date(2026, 3, 19))
    installment = installments(db, tenant.id, loan)[1]
    repay(db, tenant.id, loan, date(2026, 3, 20), 400_000, "early", prepayment="reduce_term")
    after = installments(db, tenant.id, loan)
    kept = [r for r in after if r.status == "scheduled"]
    assert 0 < len(kept) < 12 and all(r.status == "cancelled" for r in after[len(kept):])
    assert kept[1].principal_due + kept[1].interest_due == installment.principal_due + installment.interest_due
    balanced(db, tenant.id)


def test_payoff_closes_the_loan_and_frees_the_funding_quota(db: Database, tenant: TenantHandle, loan: str) -> None:
    close_days(db, tenant.id, date(2026, 3, 2), date(2026, 3, 19))
    at(db.clock, date(2026, 3, 20))  # type: ignore[arg-type]
    with db.uow(read_only=True) as uow:
        quote = servicing.payoff_quote(uow, tenant.id, loan)
    assert (quote.principal, quote.interest, quote.prepayment_fee) == (1_000_000, 15_000 * 18 // 31, 10_000)
    with pytest.raises(InvalidRequest) as short:
        repay(db, tenant.id, loan, date(2026, 3, 20), quote.total - 1, "short", prepayment="payoff")
    assert short.value.code == "amount_below_payoff"
    row = repay(db, tenant.id, loan, date(2026, 3, 20), quote.total, "payoff", prepayment="payoff")
    closed = account(db, tenant.id, loan)
    assert (row.kind, closed.state, closed.principal_outstanding, closed.closed_on) == (
        "payoff", "paid_off", 0, date(2026, 3, 20))
    assert all(r.status == "cancelled" for r in installments(db, tenant.id, loan))
    with pytest.raises(Conflict) as again:
        repay(db, tenant.id, loan, date(2026, 3, 21), 100, "late")
    assert again.value.code == "loan_closed"
    # A paid-off loan leaves the end of day alone.
    close_days(db, tenant.id, date(2026, 3, 20), date(2026, 4, 5))
    assert account(db, tenant.id, loan).interest_income == closed.interest_income
    balanced(db, tenant.id)


def test_a_reference_is_one_repayment(db: Database, tenant: TenantHandle, loan: str) -> None:
    first = repay(db, tenant.id, loan, date(2026, 3, 5), 10_000, "bank-1")
    again = repay(db, tenant.id, loan, date(2026, 3, 5), 10_000, "bank-1")
    assert again.id == first.id
    with pytest.raises(Conflict) as error:
        repay(db, tenant.id, loan, date(2026, 3, 5), 9_000, "bank-1")
    assert error.value.code == "repayment_reference_reused"
    assert account(db, tenant.id, loan).advance_amount == 10_000


@pytest.mark.parametrize(("changes", "code"), [({"amount": 0}, "invalid_amount"), ({"amount": 1.5}, "invalid_amount"),
                                               ({"reference": ""}, "invalid_reference"),
                                               ({"prepayment": "sometimes"}, "invalid_prepayment"),
                                               ({"source": "magic"}, "invalid_source")])
def test_bad_input_is_refused_and_writes_nothing(db: Database, tenant: TenantHandle, loan: str,
                                                 changes: dict[str, object], code: str) -> None:
    arguments: dict[str, object] = {"amount": 10_000, "reference": "r", "source": "manual", "prepayment": None}
    with db.uow() as uow, pytest.raises(InvalidRequest) as error:
        servicing.repay(uow, tenant.id, loan, actor="test", **(arguments | changes))  # type: ignore[arg-type]
    assert error.value.code == code
    with db.uow(read_only=True) as uow:
        assert uow.session.scalar(select(func.count()).select_from(Repayment)) == 0


def test_a_product_without_prepayment_refuses_it(db: Database, tenant: TenantHandle, bank: SandboxBank) -> None:
    loan = make_loan(db, tenant.id, prepayment="not_allowed", prepayment_fee_rate="0")
    with pytest.raises(Conflict) as error:
        repay(db, tenant.id, loan, date(2026, 3, 5), 10_000, "early", prepayment="reduce_term")
    assert error.value.code == "prepayment_not_allowed"


def test_another_tenant_sees_no_account(db: Database, tenant: TenantHandle, other_tenant: TenantHandle,
                                        loan: str) -> None:
    with db.uow(read_only=True) as uow, pytest.raises(NotFound):
        servicing.get_account(uow, other_tenant.id, loan)


def test_the_platform_books_the_interest_it_pays_on_an_interest_free_loan(
        db: Database, tenant: TenantHandle, bank: SandboxBank) -> None:
    product(db, tenant.id, "bnpl_3", subsidy_payer="platform", merchant_fee_rate=None)
    source(db, tenant.id, "bank_a", "0.06", 50_000_000)
    applicant_id, _ = borrower(db, tenant.id)
    with db.uow() as uow:
        merchant = payments.create_merchant(uow, tenant.id, reference="phones", name="Phone shop").id
        uow.commit()
    loan = disbursement.disburse(db, tenant.id, signed(db, tenant.id, applicant_id, "bnpl_3", 300_000, 3),
                                 merchant_id=merchant, actor="test")
    # 3,000.00 at 12% in three equal principal parts: 30.00 + 20.00 + 10.00 of interest the customer does not pay.
    assert sum(r.interest_due for r in installments(db, tenant.id, loan)) == 0
    assert balance(db, tenant.id, "expenses:credit:bnpl:subsidies") == 6_000
    assert balance(db, tenant.id, "income:credit:bnpl:subsidy") == 6_000


def test_money_for_a_loan_the_catch_up_writes_off_is_a_recovery(db: Database, tenant: TenantHandle,
                                                                  loan: str) -> None:
    # No end of day ran since March: bringing the loan up to November reaches 180 days past due first.
    row = repay(db, tenant.id, loan, date(2026, 11, 26), 5_000, "late-cash")
    assert (row.kind, row.allocation) == ("recovery", {"recovery": 5_000, "advance": 0})
    gone = account(db, tenant.id, loan)
    assert (gone.state, gone.dpd, gone.recovered_amount) == ("written_off", 180, 5_000)
    balanced(db, tenant.id)


def test_a_repaid_loan_is_no_longer_open_borrowing(db: Database, tenant: TenantHandle, loan: str) -> None:
    def own_open() -> int:
        with db.uow(read_only=True) as uow:
            applicant = credit.get_applicant(uow, tenant.id, account(db, tenant.id, loan).applicant_id)
            policy = applications.get_policy(uow, tenant.id)
            return applications.multi_borrowing(uow, tenant.id, applicant, policy, db.clock.now()).own_open

    assert own_open() == 1
    at(db.clock, date(2026, 3, 10))  # type: ignore[arg-type]
    with db.uow(read_only=True) as uow:
        total = servicing.payoff_quote(uow, tenant.id, loan).total
    repay(db, tenant.id, loan, date(2026, 3, 10), total, "payoff", prepayment="payoff")
    assert own_open() == 0


def test_a_small_balance_left_is_forgiven_and_the_loan_closes_paid_off(
        db: Database, tenant: TenantHandle, bank: SandboxBank) -> None:
    loan = make_loan(db, tenant.id, write_off_below_amount=500)
    close_days(db, tenant.id, date(2026, 3, 2), date(2026, 3, 19))
    at(db.clock, date(2026, 3, 20))  # type: ignore[arg-type]
    with db.uow(read_only=True) as uow:
        total = servicing.payoff_quote(uow, tenant.id, loan).total
    row = repay(db, tenant.id, loan, date(2026, 3, 20), total - 300, "almost", prepayment="reduce_installment")
    closed = account(db, tenant.id, loan)
    # 3.00 short of the payoff: 2.97 of principal stays unpaid (and the 1% fee it would have carried is not charged);
    # below the product's 5.00, it is forgiven.
    assert (closed.state, closed.written_off_amount, row.details["waived"]) == ("paid_off", 297, 297)
    assert closed.principal_outstanding == 0 and closed.provision_amount == 0
    balanced(db, tenant.id)
