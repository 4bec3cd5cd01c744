"""Repayment channel operations that call a channel: record, call, apply — never a network call inside a
transaction. The channel calls themselves are the payments domain's (``finloop.payments.flows``): a direct debit
is a payment confirmed by ``confirm_payment``, whose last transaction (the one that records the payment's answer)
also settles the repayment through its ``finish`` callback, so a debit's success and its repayment commit
together.

A payment confirmed elsewhere (a borrower completing a repayment payment through ``/v1/payments/{id}/confirm`` or
the hosted page, or a payment whose answer came later by notification or query) has no such callback: payments
offers no hook on success, so ``settle_final`` finds repayment payments whose payment became final and settles
them, each in its own transaction (run by the ``credit.direct_debit`` job). Settling is idempotent, so the two
paths never apply money twice.
"""

from __future__ import annotations

from collections.abc import Callable

import structlog
from sqlalchemy.exc import IntegrityError

from finloop.core.errors import Conflict, FinloopError, InvalidRequest
from finloop.credit.repayment_channels import service
from finloop.db.uow import Database, UnitOfWork
from finloop.payments import flows as payment_flows
from finloop.payments import service as payments
from finloop.payments.connectors.base import PaymentMethod
from finloop.payments.models import Payment
from finloop.payments.state import CANCELABLE, PaymentStatus

log = structlog.get_logger("finloop.credit")

Finish = Callable[[UnitOfWork, Payment], None]


def _settling(finish: Finish | None) -> Finish:
    def hook(uow: UnitOfWork, payment: Payment) -> None:
        service.settle_payment(uow, payment)
        if finish is not None:
            finish(uow, payment)
    return hook


def start_repayment_payment(db: Database, tenant_id: str, loan_id: str, *, amount: int | None = None,
                            method: str | None = None, card_id: str | None = None, description: str = "",
                            confirm: bool = False, actor: str, finish: Finish | None = None) -> str:
    """Create a loan's repayment payment and, with ``confirm``, charge it now: its success is applied to the loan
    in the transaction that records it. Returns the payment id."""
    if confirm and method is None:
        raise InvalidRequest("Give the method to confirm the payment now.", code="parameter_missing", param="method")
    if confirm and method == PaymentMethod.CARD.value and card_id is None:
        raise InvalidRequest("A card payment needs card_id.", code="parameter_missing", param="card_id")
    with db.uow() as uow:
        _, payment = service.create_repayment_payment(uow, tenant_id, loan_id, amount=amount, method=method,
                                                      card_id=card_id, description=description, actor=actor)
        payment_id = payment.id
        uow.commit()
    if confirm:
        payment_flows.confirm_payment(db, tenant_id, payment_id, finish=_settling(finish))
    return payment_id


def settle(db: Database, tenant_id: str, payment_id: str) -> None:
    """Settle one repayment payment now (a no-op unless its payment is final and it is still pending)."""
    with db.uow() as uow:
        service.settle_by_id(uow, tenant_id, payment_id)
        uow.commit()


def settle_final(db: Database, *, limit: int = 200) -> int:
    """Settle every pending repayment payment whose payment has become final; returns how many."""
    with db.uow(read_only=True) as uow:
        due = service.pending_final(uow, limit=limit)
    for tenant_id, payment_id in due:
        settle(db, tenant_id, payment_id)
    return len(due)


def _confirm_debit(db: Database, tenant_id: str, payment_id: str, channel: str | None) -> None:
    """Charge a recorded direct debit's payment; a refusal before any channel was called fails the attempt."""
    try:
        payment_flows.confirm_payment(db, tenant_id, payment_id, only_channels=[channel] if channel else None,
                                      finish=_settling(None))
    except Conflict as error:
        if error.code == "payment_state_conflict":
            return  # another worker confirmed it first: its answer settles the debit
        _refused(db, tenant_id, payment_id, error)
    except FinloopError as error:
        _refused(db, tenant_id, payment_id, error)


def _refused(db: Database, tenant_id: str, payment_id: str, error: FinloopError) -> None:
    log.warning("credit.direct_debit_refused", tenant_id=tenant_id, payment_id=payment_id, code=error.code)
    with db.uow() as uow:
        payment = payments.get_payment(uow, tenant_id, payment_id, lock=True)
        if PaymentStatus(payment.status) in CANCELABLE and payment.status != PaymentStatus.REQUIRES_CAPTURE.value:
            payments.cancel_payment(uow, payment, reason=error.code)
        service.settle_payment(uow, payment)
        uow.commit()


def run_direct_debits(db: Database, *, limit: int = service.PLAN_BATCH) -> int:
    """One round: settle what payments finished meanwhile, confirm debits a crashed worker left recorded, then
    record and send the attempts due now (first attempts on due dates, and retries whose time has come).
    Returns the repayment payments settled plus the attempts sent."""
    touched = settle_final(db, limit=limit)
    with db.uow(read_only=True) as uow:
        stale = service.stale_pending(uow, limit=limit)
    for found in stale:
        if found.revoked:
            _refused(db, found.tenant_id, found.payment_id,
                     Conflict("The mandate was revoked before the debit was sent.", code="mandate_revoked"))
        else:
            _confirm_debit(db, found.tenant_id, found.payment_id, found.channel)
        touched += 1
    with db.uow(read_only=True) as uow:
        loans = service.candidates(uow, limit=limit)
    for tenant_id, loan_id in loans:
        try:
            with db.uow() as uow:
                planned = service.plan_debit(uow, tenant_id, loan_id)
                uow.commit()
        except IntegrityError:
            continue  # another worker recorded this attempt first
        except FinloopError as error:
            log.warning("credit.direct_debit_not_planned", tenant_id=tenant_id, loan_id=loan_id, code=error.code)
            continue
        if planned is not None:
            _confirm_debit(db, tenant_id, planned.payment_id, planned.channel)
            touched += 1
    return touched
