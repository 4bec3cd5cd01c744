"""Active repayment through payments: the borrower's payment credits their wallet on capture and is applied to the
loan once (source "payment", the payment id as reference), in the transaction that records its success; a failed
payment applies nothing; a loan that refuses the money leaves it in the wallet."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from finloop.core.errors import Conflict, InvalidRequest, NotFound
from finloop.credit.repayment_channels import flows, service
from finloop.credit.repayment_channels.models import RepaymentPayment
from finloop.credit.servicing import service as servicing
from finloop.db.uow import Database
from finloop.payments import flows as payment_flows
from finloop.payments import service as payments
from tests.conftest import TenantHandle, make_tenant
from tests.credit.repayment_channels.conftest import (
    DECLINED,
    Borrower,
    card,
    first_due_on,
    link,
    repayments,
    wallet_balance,
)
from tests.credit.servicing.conftest import at


def test_a_confirmed_repayment_payment_is_applied_once_in_the_confirming_transaction(
        db: Database, borrower: Borrower) -> None:
    payment_id = flows.start_repayment_payment(db, borrower.tenant_id, borrower.loan_id, amount=30_000,
                                               method="card", card_id=card(db, borrower), confirm=True, actor="test")
    status, repayment_id, _ = link(db, borrower, payment_id)
    assert status == "applied" and repayment_id is not None
    [repayment] = repayments(db, borrower)
    assert (repayment.id, repayment.amount, repayment.source, repayment.reference) == (
        repayment_id, 30_000, "payment", payment_id)
    # Captured into the borrower's wallet, then swept to the loan: nothing is left there, nothing counted twice.
    assert wallet_balance(db, borrower) == 0

    flows.settle(db, borrower.tenant_id, payment_id)  # the success replayed
    assert flows.settle_final(db) == 0
    assert [r.id for r in repayments(db, borrower)] == [repayment_id]


def test_a_payment_confirmed_through_the_payments_api_is_applied_in_that_transaction(
        db: Database, borrower: Borrower) -> None:
    with db.uow() as uow:
        created, payment = service.create_repayment_payment(uow, borrower.tenant_id, borrower.loan_id,
                                                            amount=12_345, actor="test")
        payment_id = payment.id
        uow.commit()
    assert created.status == "pending" and payment.purpose == "wallet_top_up" and payment.merchant_id is None
    payment_flows.confirm_payment(db, borrower.tenant_id, payment_id, method="card", card_id=card(db, borrower))
    # Payments' own success reaction applied it: captured into the wallet and swept to the loan at once.
    assert link(db, borrower, payment_id)[0] == "applied"
    assert wallet_balance(db, borrower) == 0
    assert flows.settle_final(db) == 0  # nothing left for the poller
    assert [(r.amount, r.reference) for r in repayments(db, borrower)] == [(12_345, payment_id)]


def test_a_declined_payment_applies_nothing(db: Database, borrower: Borrower) -> None:
    payment_id = flows.start_repayment_payment(db, borrower.tenant_id, borrower.loan_id, amount=30_000,
                                               method="card", card_id=card(db, borrower, DECLINED), confirm=True,
                                               actor="test")
    assert link(db, borrower, payment_id) == ("failed", None, "card_declined")
    assert repayments(db, borrower) == []
    assert wallet_balance(db, borrower) == 0


def test_money_the_loan_refuses_stays_in_the_borrowers_wallet(db: Database, borrower: Borrower) -> None:
    with db.uow() as uow:
        _, payment = service.create_repayment_payment(uow, borrower.tenant_id, borrower.loan_id, amount=5_000,
                                                      actor="test")
        payment_id = payment.id
        uow.commit()
    at(db.clock, first_due_on(db, borrower) - timedelta(days=10))  # type: ignore[arg-type]
    with db.uow() as uow:  # paid off by bank transfer before the payment succeeds
        owed = servicing.owed(servicing.get_account(uow, borrower.tenant_id, borrower.loan_id))
        servicing.repay(uow, borrower.tenant_id, borrower.loan_id, amount=owed * 2, reference="wire-1",
                        prepayment="payoff", actor="test")
        uow.commit()
    payment_flows.confirm_payment(db, borrower.tenant_id, payment_id, method="card", card_id=card(db, borrower))

    flows.settle_final(db)
    assert link(db, borrower, payment_id) == ("unapplied", None, "loan_closed")
    assert wallet_balance(db, borrower) == 5_000
    assert [r.reference for r in repayments(db, borrower)] == ["wire-1"]


def test_the_default_amount_is_what_is_due_and_nothing_due_is_a_conflict_writing_nothing(
        db: Database, borrower: Borrower) -> None:
    with db.uow() as uow, pytest.raises(Conflict) as refused:
        service.create_repayment_payment(uow, borrower.tenant_id, borrower.loan_id, actor="test")
    assert (refused.value.code, refused.value.param) == ("nothing_due", "amount")
    with db.uow(read_only=True) as uow:
        assert uow.session.scalars(select(RepaymentPayment)).all() == []


@pytest.mark.parametrize(("changes", "error", "code", "param"), [
    ({"amount": 0}, InvalidRequest, "invalid_amount", "amount"),
    ({"amount": 100, "method": "wallet_balance"}, InvalidRequest, "invalid_payment_method", "method"),
    ({"amount": 100, "method": "h5"}, InvalidRequest, "no_channel_available", "method"),
    ({"amount": 100, "loan_id": "loan_nope"}, NotFound, "loan_not_found", "loan_id"),
])
def test_bad_requests_write_nothing(db: Database, borrower: Borrower, changes: dict[str, object],
                                    error: type[Exception], code: str, param: str) -> None:
    arguments: dict[str, object] = {"loan_id": borrower.loan_id, **changes}
    loan_id = arguments.pop("loan_id")
    with db.uow() as uow, pytest.raises(error) as refused:
        service.create_repayment_payment(uow, borrower.tenant_id, loan_id, actor="test",  # type: ignore[arg-type]
                                         **arguments)  # type: ignore[arg-type]
    assert (refused.value.code, refused.value.param) == (code, param)  # type: ignore[attr-defined]
    with db.uow(read_only=True) as uow:
        assert payments.list_payments(uow, borrower.tenant_id, filters=payments.PaymentFilter(), after=None,
                                      limit=10) == []


def test_another_tenants_loan_is_not_found(db: Database, borrower: Borrower) -> None:
    other: TenantHandle = make_tenant(db, "Other Co")
    with db.uow() as uow, pytest.raises(NotFound):
        service.create_repayment_payment(uow, other.id, borrower.loan_id, amount=100, actor="test")
