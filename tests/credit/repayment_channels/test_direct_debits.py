"""Automatic debit on the due date: one attempt recorded before the channel is called, applied as an "autodebit"
repayment on success; declines retried by the tenant's policy up to its attempts; an unknown answer waited for
(payments queries it) and never charged twice; a debit left recorded by a crash confirmed later; mandates."""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import select

from finloop.core.clock import FrozenClock
from finloop.core.errors import Conflict, InvalidRequest, NotFound
from finloop.credit.repayment_channels import flows, service
from finloop.credit.repayment_channels.models import DebitMandate, DirectDebit
from finloop.db.uow import Database
from finloop.payments import flows as payment_flows
from finloop.payments.connectors.sandbox.app import InProcessSandbox
from finloop.payments.connectors.sandbox.engine import ChannelProfile
from finloop.vault import service as vault
from tests.credit.repayment_channels.conftest import (
    DECLINED,
    SUCCEEDS,
    Borrower,
    card,
    first_due_on,
    installment_total,
    link,
    payments_of,
    repayments,
    wallet_balance,
)
from tests.credit.servicing.conftest import at


def mandate(db: Database, who: Borrower, number: str = SUCCEEDS, **options: object) -> str:
    with db.uow() as uow:
        row = service.create_mandate(uow, who.tenant_id, applicant_id=who.applicant_id, card_id=card(db, who, number),
                                     reference="M-2026-001", actor="test", **options)  # type: ignore[arg-type]
        uow.commit()
        return row.id


def debits(db: Database, who: Borrower) -> list[DirectDebit]:
    with db.uow(read_only=True) as uow:
        rows = list(uow.session.scalars(select(DirectDebit).where(DirectDebit.loan_id == who.loan_id)
                                        .order_by(DirectDebit.due_on, DirectDebit.attempt_number)))
        for row in rows:
            uow.session.expunge(row)
        return rows


def policy(db: Database, who: Borrower, **data: object) -> None:
    with db.uow() as uow:
        service.set_policy(uow, who.tenant_id, dict(data), actor="test")
        uow.commit()


def on_due_date(db: Database, who: Borrower, hour: int = 8) -> datetime:
    at(db.clock, first_due_on(db, who), hour)  # type: ignore[arg-type]
    return db.clock.now()


def test_nothing_is_debited_before_the_due_date(db: Database, borrower: Borrower) -> None:
    mandate(db, borrower)
    at(db.clock, first_due_on(db, borrower) - timedelta(days=1), 20)  # type: ignore[arg-type]
    assert flows.run_direct_debits(db) == 0
    assert debits(db, borrower) == []


def test_the_due_installment_is_debited_once_and_applied_as_an_autodebit(db: Database, borrower: Borrower) -> None:
    mandate(db, borrower)
    on_due_date(db, borrower)
    assert flows.run_direct_debits(db) == 1
    [debit] = debits(db, borrower)
    assert (debit.status, debit.attempt_number, debit.amount) == ("succeeded", 1,
                                                                  installment_total(db, borrower))
    assert debit.due_on == first_due_on(db, borrower)
    status, repayment_id, _ = link(db, borrower, debit.payment_id)
    [repayment] = repayments(db, borrower)
    assert (status, repayment.id, repayment.source, repayment.reference, repayment.amount) == (
        "applied", repayment_id, "autodebit", debit.payment_id, debit.amount)
    assert wallet_balance(db, borrower) == 0

    db.clock.advance(timedelta(hours=6))  # type: ignore[attr-defined]
    flows.settle(db, borrower.tenant_id, debit.payment_id)  # the success replayed
    assert flows.run_direct_debits(db) == 0
    assert len(debits(db, borrower)) == 1 and len(repayments(db, borrower)) == 1


def test_declines_are_retried_by_the_policy_then_given_up(db: Database, borrower: Borrower) -> None:
    policy(db, borrower, max_attempts=3, retry_offsets_hours=[4, 24])
    mandate(db, borrower, DECLINED)
    started = on_due_date(db, borrower)
    assert flows.run_direct_debits(db) == 1
    [first] = debits(db, borrower)
    assert (first.status, first.failure_code, first.next_retry_at) == ("failed", "card_declined",
                                                                       started + timedelta(hours=4))
    db.clock.advance(timedelta(hours=3))  # type: ignore[attr-defined]
    assert flows.run_direct_debits(db) == 0  # not yet time

    db.clock.set(started + timedelta(hours=4))  # type: ignore[attr-defined]
    assert flows.run_direct_debits(db) == 1
    db.clock.set(started + timedelta(hours=24))  # type: ignore[attr-defined]
    assert flows.run_direct_debits(db) == 1
    db.clock.set(started + timedelta(days=5))  # type: ignore[attr-defined]
    assert flows.run_direct_debits(db) == 0

    rows = debits(db, borrower)
    assert [(d.attempt_number, d.status) for d in rows] == [(1, "failed"), (2, "failed"), (3, "failed")]
    assert rows[1].next_retry_at == started + timedelta(hours=24) and rows[2].next_retry_at is None
    assert payments_of(db, borrower) == 3
    assert repayments(db, borrower) == [] and wallet_balance(db, borrower) == 0


def test_an_unknown_answer_is_waited_for_and_never_charged_twice(db: Database, borrower: Borrower,
                                                                  sandbox: InProcessSandbox) -> None:
    mandate(db, borrower, channel="unionpay")
    started = on_due_date(db, borrower)
    sandbox.engine.add_outage("unionpay", started - timedelta(minutes=1), started + timedelta(minutes=10),
                              kind="timeout")
    assert flows.run_direct_debits(db) == 1
    [debit] = debits(db, borrower)
    assert debit.status == "processing"

    db.clock.advance(timedelta(minutes=2))  # type: ignore[attr-defined]
    assert flows.run_direct_debits(db) == 0  # still open: no second charge
    assert payments_of(db, borrower) == 1

    db.clock.set(started + timedelta(minutes=20))  # type: ignore[attr-defined]
    payment_flows.resolve_open(db)  # the channel never saw it
    flows.run_direct_debits(db)
    [debit] = debits(db, borrower)
    assert (debit.status, debit.failure_code) == ("failed", "not_received_by_channel")

    db.clock.set(started + timedelta(hours=4))  # type: ignore[attr-defined]
    assert flows.run_direct_debits(db) == 1
    assert [d.status for d in debits(db, borrower)] == ["failed", "succeeded"]
    assert len(repayments(db, borrower)) == 1 and payments_of(db, borrower) == 2


def test_a_lost_reply_that_succeeded_is_found_by_the_query_and_applied_once(
        db: Database, borrower: Borrower, sandbox: InProcessSandbox) -> None:
    for code in ("unionpay", "paypal"):
        sandbox.engine.configure(code, ChannelProfile(success_share=Decimal(1), timeout_share=Decimal(1),
                                                      timeout_success_share=Decimal(1), latency_ms=(5, 10, 20)))
    mandate(db, borrower)
    on_due_date(db, borrower)
    assert flows.run_direct_debits(db) == 1
    [debit] = debits(db, borrower)
    assert debit.status == "succeeded"
    assert [r.reference for r in repayments(db, borrower)] == [debit.payment_id]
    assert len(sandbox.engine.transactions()) == 1  # charged once at the channel, though its reply was lost


def test_a_debit_left_recorded_by_a_crash_is_confirmed_later(db: Database, borrower: Borrower) -> None:
    mandate(db, borrower)
    on_due_date(db, borrower)
    with db.uow() as uow:
        planned = service.plan_debit(uow, borrower.tenant_id, borrower.loan_id)
        uow.commit()
    assert planned is not None
    assert flows.run_direct_debits(db) == 0  # recorded just now: perhaps still being sent
    db.clock.advance(timedelta(minutes=3))  # type: ignore[attr-defined]
    assert flows.run_direct_debits(db) == 1
    assert [(d.id, d.status) for d in debits(db, borrower)] == [(planned.debit_id, "succeeded")]
    assert payments_of(db, borrower) == 1 and len(repayments(db, borrower)) == 1


def test_the_mandates_cap_limits_one_debit(db: Database, borrower: Borrower) -> None:
    mandate(db, borrower, max_amount=10_000)
    on_due_date(db, borrower)
    flows.run_direct_debits(db)
    [debit] = debits(db, borrower)
    assert (debit.amount, debit.status) == (10_000, "succeeded")


def test_a_revoked_mandate_or_a_disabled_policy_debits_nothing(db: Database, borrower: Borrower) -> None:
    mandate_id = mandate(db, borrower)
    policy(db, borrower, enabled=False)
    on_due_date(db, borrower)
    assert flows.run_direct_debits(db) == 0
    policy(db, borrower, enabled=True)
    with db.uow() as uow:
        service.revoke_mandate(uow, borrower.tenant_id, mandate_id, actor="test")
        uow.commit()
    assert flows.run_direct_debits(db) == 0
    assert debits(db, borrower) == []


def test_the_loans_own_mandate_wins_over_the_borrowers(db: Database, borrower: Borrower) -> None:
    mandate(db, borrower, DECLINED)
    own = mandate(db, borrower, loan_id=borrower.loan_id)
    on_due_date(db, borrower)
    flows.run_direct_debits(db)
    [debit] = debits(db, borrower)
    assert (debit.mandate_id, debit.status) == (own, "succeeded")


def test_mandate_refusals_write_nothing(db: Database, borrower: Borrower, clock: FrozenClock) -> None:
    with db.uow() as uow:
        stranger = vault.tokenize_card(uow, borrower.tenant_id, number=SUCCEEDS, exp_month=12, exp_year=2030,
                                       customer_id="cus_someone_else").id
        uow.commit()
    cases: list[tuple[dict[str, object], type[Exception], str, str]] = [
        ({"card_id": stranger}, InvalidRequest, "card_not_borrowers", "card_id"),
        ({"card_id": "card_nope"}, NotFound, "card_not_found", "card_id"),
        ({"channel": "nope"}, NotFound, "channel_not_found", "channel"),
        ({"max_amount": 0}, InvalidRequest, "invalid_amount", "amount"),
        ({"loan_id": "loan_nope"}, NotFound, "loan_not_found", "loan_id"),
        ({"applicant_id": "apl_nope"}, NotFound, "applicant_not_found", "applicant_id"),
    ]
    own_card = card(db, borrower)
    for changes, error, code, param in cases:
        arguments: dict[str, object] = {"applicant_id": borrower.applicant_id, "card_id": own_card,
                                        "reference": "M-1", **changes}
        with db.uow() as uow, pytest.raises(error) as refused:
            service.create_mandate(uow, borrower.tenant_id, actor="test", **arguments)  # type: ignore[arg-type]
        assert (refused.value.code, refused.value.param) == (code, param), changes  # type: ignore[attr-defined]
    with db.uow(read_only=True) as uow:
        assert uow.session.scalars(select(DebitMandate)).all() == []


def test_one_active_mandate_per_scope_and_a_revoked_one_stays_revoked(db: Database, borrower: Borrower) -> None:
    first = mandate(db, borrower)
    with pytest.raises(Conflict) as twice:
        mandate(db, borrower)
    assert twice.value.code == "mandate_exists"
    with db.uow() as uow:
        service.revoke_mandate(uow, borrower.tenant_id, first, actor="test")
        uow.commit()
    with db.uow() as uow, pytest.raises(Conflict) as again:
        service.revoke_mandate(uow, borrower.tenant_id, first, actor="test")
    assert again.value.code == "mandate_revoked"
    assert mandate(db, borrower) != first  # the scope is free again


def test_a_recorded_debit_whose_mandate_was_revoked_is_canceled_not_charged(
        db: Database, borrower: Borrower, sandbox: InProcessSandbox) -> None:
    mandate_id = mandate(db, borrower)
    on_due_date(db, borrower)
    with db.uow() as uow:
        assert service.plan_debit(uow, borrower.tenant_id, borrower.loan_id) is not None
        uow.commit()
    with db.uow() as uow:
        service.revoke_mandate(uow, borrower.tenant_id, mandate_id, actor="test")
        uow.commit()
    db.clock.advance(timedelta(minutes=3))  # type: ignore[attr-defined]
    assert flows.run_direct_debits(db) == 1
    [debit] = debits(db, borrower)
    assert (debit.status, debit.failure_code) == ("failed", "mandate_revoked")
    assert link(db, borrower, debit.payment_id) == ("failed", None, "mandate_revoked")
    assert sandbox.engine.transactions() == [] and repayments(db, borrower) == []
