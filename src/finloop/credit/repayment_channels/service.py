"""Repayment channel use cases that fit in one transaction. Every function takes a unit of work and never commits.

Where the money sits (docs/credit-repayment-channels.md): a repayment payment is a payments ``wallet_top_up`` of
the borrower (a payments customer), so its capture posts as every top-up does — debit the channel receivable and
the channel fee, credit ``liabilities:customer:<borrower>:wallet`` — and is never split with a merchant or
settled to one. Applying it is ``servicing.repay(..., funds_account_id=<that wallet>)``: debit the wallet, credit
the loan's receivables. The money is counted once (the channel receivable is the only asset that grew) and, until
it is applied, it is the borrower's own balance; when the loan refuses it (closed in the meantime) it simply stays
there.

Invariants owned here:
- a payment repays a loan at most once: ``settle_payment`` locks the payment, then its link row, applies a
  succeeded payment only while the link is ``pending`` and marks it in the same transaction, and
  ``servicing.repay`` is itself idempotent on the payment id as the reference;
- a failed or canceled payment applies nothing; a payment not yet final leaves everything as it is;
- a direct debit attempt is recorded (with its payment, not yet confirmed) before any channel is called; a new
  attempt for a loan is recorded only when none of its attempts is still open, so an answer that is unknown (a
  timeout) is waited for — payments queries the channel — and the borrower is never charged twice;
- retries follow the tenant's policy (``domain.next_retry_at``); a succeeded attempt ends its due date's run;
- a mandate charges only a card of the borrower (a card bound to another customer is refused), and at most one
  mandate is active per borrower and scope.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

import structlog
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from finloop.audit import service as audit
from finloop.core.errors import Conflict, FinloopError, InvalidRequest, NotFound
from finloop.core.money import check_amount
from finloop.core.text import check_text
from finloop.credit import disbursement
from finloop.credit import service as credit
from finloop.credit.domain import LoanStatus
from finloop.credit.repayment_channels.domain import (
    DEFAULT_POLICY,
    OPEN_DEBIT_STATUSES,
    PAYMENT_FAILED,
    PAYMENT_SUCCEEDED,
    DebitStatus,
    LinkStatus,
    MandateStatus,
    RetryPolicy,
    can_move_debit,
    check_policy,
    debit_amount,
    mandate_scope_key,
    next_retry_at,
)
from finloop.credit.repayment_channels.models import DebitMandate, DirectDebit, DirectDebitPolicy, RepaymentPayment
from finloop.credit.servicing import service as servicing
from finloop.credit.servicing.domain import OPEN_STATES, day_number
from finloop.credit.servicing.models import LoanAccount, LoanInstallment
from finloop.db.uow import UnitOfWork
from finloop.payments import postings
from finloop.payments import service as payments
from finloop.payments.connectors.base import PaymentMethod
from finloop.payments.models import Payment

log = structlog.get_logger("finloop.credit")

SYSTEM_ACTOR = "system:repayment_channels"
#: Payment metadata keys that tie a payment to the loan it repays.
LOAN_KEY = "credit_loan_id"
PURPOSE_KEY = "credit_purpose"
PURPOSE = "loan_repayment"
#: A direct debit recorded but not confirmed this long ago was left by a crashed worker: confirm it now.
STALE_PENDING_SECONDS = 120
PLAN_BATCH = 200


# ---------------------------------------------------------------------------------------------- borrowers


def borrower_customer(uow: UnitOfWork, tenant_id: str, applicant_id: str) -> str:
    """The payments customer who is the borrower: repayment payments and debits are theirs."""
    applicant = credit.get_applicant(uow, tenant_id, applicant_id)
    if applicant.party_kind != "customer":
        raise Conflict("Only a customer borrower repays through payments; a merchant's loan is repaid from its "
                       "settlements or by transfer.", code="borrower_not_customer", param="loan_id")
    return applicant.party_id


def _open_account(uow: UnitOfWork, tenant_id: str, loan_id: str) -> LoanAccount:
    loan = disbursement.get_loan(uow, tenant_id, loan_id)
    if loan.status != LoanStatus.ACTIVE.value:
        raise Conflict(f"The loan is {loan.status}; only an active loan is repaid.", code="loan_not_active",
                       param="loan_id")
    account = servicing.get_account(uow, tenant_id, loan_id)
    if account.state not in OPEN_STATES:
        raise Conflict(f"The loan is {account.state}; it takes no more money.", code="loan_closed", param="loan_id")
    return account


def funds_account(uow: UnitOfWork, tenant_id: str, customer_id: str, currency: str) -> str:
    """Where a repayment payment's money is once captured: the borrower's wallet (see the module's doc)."""
    return postings.wallet_account(uow, tenant_id, customer_id, currency)


# ---------------------------------------------------------------------------------------------- repayment payments


def create_repayment_payment(uow: UnitOfWork, tenant_id: str, loan_id: str, *, amount: int | None = None,
                             method: str | None = None, card_id: str | None = None, description: str = "",
                             actor: str) -> tuple[RepaymentPayment, Payment]:
    """The payment the borrower completes through the payments API (``/v1/payments/{id}/confirm``, the hosted
    page), for ``amount`` or what is due now. Nothing moves until it succeeds."""
    account = _open_account(uow, tenant_id, loan_id)
    customer_id = borrower_customer(uow, tenant_id, account.applicant_id)
    if amount is None:
        amount = servicing.amount_due(uow, tenant_id, loan_id)
        if amount == 0:
            raise Conflict("Nothing is due on this loan now; give the amount to pay early.", code="nothing_due",
                           param="amount")
    check_amount(amount, allow_zero=False, allow_negative=False)
    if method is not None:
        if method == PaymentMethod.WALLET.value or method not in PaymentMethod.__members__.values():
            raise InvalidRequest("method is a channel method: card, qr, h5, app or mini_program.",
                                 code="invalid_payment_method", param="method")
        if not payments.eligible_channels(uow, tenant_id, method=method, currency_code=account.currency):
            raise InvalidRequest(f"No enabled channel takes {method} in {account.currency}.",
                                 code="no_channel_available", param="method")
    payment = payments.create_payment(uow, tenant_id, payments.PaymentDraft(
        merchant_id=None, amount=amount, currency=account.currency, purpose="wallet_top_up",
        order_reference=loan_id, description=check_text(description, param="description", max_length=200)
        or f"repayment of {loan_id}", customer_id=customer_id, method=method, card_id=card_id,
        metadata={LOAN_KEY: loan_id, PURPOSE_KEY: PURPOSE}))
    link = _link(uow, payment, loan_id, customer_id, source="payment", direct_debit_id=None, actor=actor)
    return link, payment


def _link(uow: UnitOfWork, payment: Payment, loan_id: str, customer_id: str, *, source: str,
          direct_debit_id: str | None, actor: str) -> RepaymentPayment:
    now = uow.clock.now()
    link = RepaymentPayment(payment_id=payment.id, tenant_id=payment.tenant_id, loan_id=loan_id,
                            customer_id=customer_id, amount=payment.amount, currency=payment.currency, source=source,
                            direct_debit_id=direct_debit_id, status=LinkStatus.PENDING.value, repayment_id=None,
                            error_code=None, created_by=actor[:60], created_at=now, updated_at=now, settled_at=None)
    uow.session.add(link)
    uow.session.flush()
    return link


def get_repayment_payment(uow: UnitOfWork, tenant_id: str, payment_id: str, *, lock: bool = False) -> RepaymentPayment:
    query = select(RepaymentPayment).where(RepaymentPayment.tenant_id == tenant_id,
                                           RepaymentPayment.payment_id == payment_id)
    if lock:
        query = query.with_for_update().execution_options(populate_existing=True)
    row = uow.session.scalar(query)
    if row is None:
        raise NotFound("No such repayment payment.", code="repayment_payment_not_found", param="payment_id")
    return row


def list_repayment_payments(uow: UnitOfWork, tenant_id: str, *, loan_id: str | None = None,
                            status: str | None = None, after: str | None = None,
                            limit: int = 50) -> list[RepaymentPayment]:
    query = select(RepaymentPayment).where(RepaymentPayment.tenant_id == tenant_id)
    if loan_id:
        query = query.where(RepaymentPayment.loan_id == loan_id)
    if status:
        query = query.where(RepaymentPayment.status == status)
    if after:
        query = query.where(RepaymentPayment.payment_id < after)
    return list(uow.session.scalars(query.order_by(RepaymentPayment.payment_id.desc()).limit(limit + 1)))


def settle_payment(uow: UnitOfWork, payment: Payment) -> RepaymentPayment | None:
    """React to a repayment payment's status, in the caller's transaction (the payment locked by the caller):
    succeeded → apply the money to the loan once; failed or canceled → nothing to apply; otherwise wait.

    Never raises for the loan's reasons: the transaction may be the one that records the payment's success, which
    must commit whatever the loan says. A loan that refuses the money leaves it in the borrower's wallet
    (``unapplied``, with the refusal's code)."""
    if (payment.meta or {}).get(PURPOSE_KEY) != PURPOSE:
        return None  # not a loan's payment: no query on the path of every other payment
    link = uow.session.scalar(select(RepaymentPayment).where(RepaymentPayment.payment_id == payment.id)
                              .with_for_update().execution_options(populate_existing=True))
    if link is None or link.status != LinkStatus.PENDING.value:
        return link
    debit = _debit_of(uow, link)
    now = uow.clock.now()
    if payment.status == PAYMENT_SUCCEEDED:
        _apply(uow, link, payment)
        if debit is not None:
            _finish_debit(uow, debit, DebitStatus.SUCCEEDED, None)
    elif payment.status in PAYMENT_FAILED:
        link.status = LinkStatus.FAILED.value
        link.error_code = (payment.failure_code or payment.status)[:100]
        link.settled_at = now
        if debit is not None:
            _finish_debit(uow, debit, DebitStatus.FAILED, link.error_code)
    else:
        if debit is not None and debit.status == DebitStatus.PENDING.value:
            debit.status = DebitStatus.PROCESSING.value
            debit.updated_at = now
        return link
    link.updated_at = now
    uow.session.flush()
    return link


def _apply(uow: UnitOfWork, link: RepaymentPayment, payment: Payment) -> None:
    amount = payment.captured_amount or payment.amount
    try:
        with uow.session.begin_nested():
            repayment = servicing.repay(
                uow, link.tenant_id, link.loan_id, amount=amount, reference=payment.id, source=link.source,
                funds_account_id=funds_account(uow, link.tenant_id, link.customer_id, payment.currency),
                actor=SYSTEM_ACTOR)
    except FinloopError as error:
        # The money stays in the borrower's wallet, visible and theirs; a person decides what to do with it.
        log.warning("credit.repayment_payment_unapplied", tenant_id=link.tenant_id, loan_id=link.loan_id,
                    payment_id=payment.id, code=error.code)
        link.status = LinkStatus.UNAPPLIED.value
        link.error_code = error.code[:100]
    else:
        link.status = LinkStatus.APPLIED.value
        link.repayment_id = repayment.id
    link.settled_at = uow.clock.now()


def pending_final(uow: UnitOfWork, *, limit: int) -> list[tuple[str, str]]:
    """(tenant, payment) of repayment payments still pending whose payment is final: what the poller settles."""
    rows = uow.session.execute(
        select(RepaymentPayment.tenant_id, RepaymentPayment.payment_id)
        .join(Payment, Payment.id == RepaymentPayment.payment_id)
        .where(RepaymentPayment.status == LinkStatus.PENDING.value,
               Payment.status.in_([PAYMENT_SUCCEEDED, *PAYMENT_FAILED]))
        .order_by(RepaymentPayment.created_at).limit(limit))
    return [(tenant_id, payment_id) for tenant_id, payment_id in rows]


def settle_by_id(uow: UnitOfWork, tenant_id: str, payment_id: str) -> RepaymentPayment | None:
    """``settle_payment`` for a payment known by id: the payment is locked first, as the payments flows do."""
    payment = payments.get_payment(uow, tenant_id, payment_id, lock=True)
    return settle_payment(uow, payment)


# ---------------------------------------------------------------------------------------------- mandates


def create_mandate(uow: UnitOfWork, tenant_id: str, *, applicant_id: str, card_id: str, reference: str,
                   loan_id: str | None = None, channel: str | None = None, max_amount: int | None = None,
                   actor: str) -> DebitMandate:
    from finloop.vault import service as vault

    customer_id = borrower_customer(uow, tenant_id, applicant_id)
    if loan_id is not None:
        loan = disbursement.get_loan(uow, tenant_id, loan_id)
        if loan.applicant_id != applicant_id:
            raise InvalidRequest("The loan is not this borrower's.", code="loan_not_borrowers", param="loan_id")
    card = vault.get_card(uow, tenant_id, card_id)
    if card.customer_id is not None and card.customer_id != customer_id:
        raise InvalidRequest("The card belongs to another customer.", code="card_not_borrowers", param="card_id")
    if channel is not None:
        found = payments.channel_by_code(uow, tenant_id, channel)
        if PaymentMethod.CARD.value not in found.methods:
            raise InvalidRequest(f"Channel {channel} does not take cards.", code="channel_not_card", param="channel")
    if max_amount is not None:
        check_amount(max_amount, allow_zero=False, allow_negative=False)
    reference = check_text(reference, param="reference", max_length=100, required=True)
    now = uow.clock.now()
    key = mandate_scope_key(applicant_id, loan_id)
    if uow.session.scalar(select(DebitMandate.id).where(DebitMandate.active_key == key)) is not None:
        raise Conflict("This borrower already has an active mandate for that scope; revoke it first.",
                       code="mandate_exists", param="loan_id" if loan_id else "applicant_id")
    mandate = DebitMandate(id=uow.ids.new("debit_mandate"), tenant_id=tenant_id, applicant_id=applicant_id,
                           loan_id=loan_id, customer_id=customer_id, method=PaymentMethod.CARD.value, card_id=card.id,
                           card_last4=card.last4, channel=channel, max_amount=max_amount, reference=reference,
                           status=MandateStatus.ACTIVE.value, active_key=key, created_by=actor[:60], created_at=now,
                           revoked_by=None, revoked_at=None)
    try:
        with uow.session.begin_nested():
            uow.session.add(mandate)
            uow.session.flush()
    except IntegrityError:  # a concurrent request made the same scope's mandate first
        raise Conflict("This borrower already has an active mandate for that scope; revoke it first.",
                       code="mandate_exists", param="loan_id" if loan_id else "applicant_id") from None
    audit.record(uow, tenant_id, actor=actor, action="credit.mandate.created", object_type="debit_mandate",
                 object_id=mandate.id, after={"applicant_id": applicant_id, "loan_id": loan_id,
                                              "card_last4": card.last4, "channel": channel, "max_amount": max_amount})
    return mandate


def get_mandate(uow: UnitOfWork, tenant_id: str, mandate_id: str, *, lock: bool = False) -> DebitMandate:
    query = select(DebitMandate).where(DebitMandate.tenant_id == tenant_id, DebitMandate.id == mandate_id)
    if lock:
        query = query.with_for_update().execution_options(populate_existing=True)
    row = uow.session.scalar(query)
    if row is None:
        raise NotFound("No such mandate.", code="mandate_not_found", param="mandate_id")
    return row


def list_mandates(uow: UnitOfWork, tenant_id: str, *, applicant_id: str | None = None, loan_id: str | None = None,
                  status: str | None = None, after: str | None = None, limit: int = 50) -> list[DebitMandate]:
    query = select(DebitMandate).where(DebitMandate.tenant_id == tenant_id)
    if applicant_id:
        query = query.where(DebitMandate.applicant_id == applicant_id)
    if loan_id:
        query = query.where(DebitMandate.loan_id == loan_id)
    if status:
        query = query.where(DebitMandate.status == status)
    if after:
        query = query.where(DebitMandate.id > after)
    return list(uow.session.scalars(query.order_by(DebitMandate.id).limit(limit + 1)))


def revoke_mandate(uow: UnitOfWork, tenant_id: str, mandate_id: str, *, actor: str) -> DebitMandate:
    """Stop future debits; an attempt already under way finishes (its answer is still applied)."""
    mandate = get_mandate(uow, tenant_id, mandate_id, lock=True)
    if mandate.status == MandateStatus.REVOKED.value:
        raise Conflict("The mandate is already revoked.", code="mandate_revoked", param="mandate_id")
    mandate.status = MandateStatus.REVOKED.value
    mandate.active_key = None
    mandate.revoked_by = actor[:60]
    mandate.revoked_at = uow.clock.now()
    uow.session.flush()
    audit.record(uow, tenant_id, actor=actor, action="credit.mandate.revoked", object_type="debit_mandate",
                 object_id=mandate.id, before={"status": MandateStatus.ACTIVE.value},
                 after={"status": MandateStatus.REVOKED.value})
    return mandate


def mandate_for(uow: UnitOfWork, tenant_id: str, applicant_id: str, loan_id: str) -> DebitMandate | None:
    """The active mandate that covers a loan: the loan's own, else the borrower's for all their loans."""
    rows = {m.active_key: m for m in uow.session.scalars(select(DebitMandate).where(
        DebitMandate.tenant_id == tenant_id, DebitMandate.active_key.in_(
            [mandate_scope_key(applicant_id, loan_id), mandate_scope_key(applicant_id, None)])))}
    return rows.get(mandate_scope_key(applicant_id, loan_id)) or rows.get(mandate_scope_key(applicant_id, None))


# ---------------------------------------------------------------------------------------------- policy


@dataclass(frozen=True, slots=True)
class PolicyView:
    policy: RetryPolicy
    updated_by: str | None
    updated_at: datetime | None


def get_policy(uow: UnitOfWork, tenant_id: str) -> PolicyView:
    row = uow.session.get(DirectDebitPolicy, tenant_id)
    if row is None:
        return PolicyView(DEFAULT_POLICY, None, None)
    return PolicyView(RetryPolicy(row.enabled, row.max_attempts, tuple(row.retry_offsets_hours)), row.updated_by,
                      row.updated_at)


def set_policy(uow: UnitOfWork, tenant_id: str, data: dict[str, Any], *, actor: str) -> PolicyView:
    policy = check_policy(data)
    before = get_policy(uow, tenant_id).policy.to_json()
    row = uow.session.get(DirectDebitPolicy, tenant_id, with_for_update=True)
    now = uow.clock.now()
    if row is None:
        row = DirectDebitPolicy(tenant_id=tenant_id, enabled=policy.enabled, max_attempts=policy.max_attempts,
                                retry_offsets_hours=list(policy.retry_offsets_hours), updated_by=actor[:60],
                                updated_at=now)
        uow.session.add(row)
    else:
        row.enabled, row.max_attempts = policy.enabled, policy.max_attempts
        row.retry_offsets_hours = list(policy.retry_offsets_hours)
        row.updated_by, row.updated_at = actor[:60], now
    uow.session.flush()
    audit.record(uow, tenant_id, actor=actor, action="credit.direct_debit_policy.changed",
                 object_type="direct_debit_policy", object_id=tenant_id, before=before, after=policy.to_json())
    return PolicyView(policy, row.updated_by, row.updated_at)


# ---------------------------------------------------------------------------------------------- direct debits


def due_now(uow: UnitOfWork, account: LoanAccount, today: date) -> int:
    """What a debit on ``today`` collects: everything billed and unpaid, plus installments due by today that the
    end of day has not billed yet (their money waits as an advance until it does), less the advance held."""
    unbilled = uow.session.scalar(select(func.coalesce(func.sum(
        LoanInstallment.principal_due - LoanInstallment.principal_paid + LoanInstallment.interest_due
        - LoanInstallment.interest_paid + LoanInstallment.fees_due - LoanInstallment.fees_paid), 0)).where(
        LoanInstallment.loan_id == account.loan_id, LoanInstallment.status == "scheduled",
        LoanInstallment.due_day <= day_number(today)))
    return max(0, servicing.billed(account) + int(unbilled or 0) - account.advance_amount)


def latest_due_on(uow: UnitOfWork, loan_id: str, today: date) -> date | None:
    """The due date a debit on ``today`` collects for: the latest installment due on or before today."""
    due: date | None = uow.session.scalar(select(func.max(LoanInstallment.due_on)).where(
        LoanInstallment.loan_id == loan_id, LoanInstallment.status != "cancelled",
        LoanInstallment.due_day <= day_number(today)))
    return due


def candidates(uow: UnitOfWork, *, limit: int = PLAN_BATCH) -> list[tuple[str, str]]:
    """(tenant, loan) of open loans worth planning a debit for: an active mandate covers them, none of their
    debits is under way or waiting for its retry time, and an installment is unpaid and due by tomorrow (UTC;
    ``plan_debit`` checks the tenant's own date). Loans whose installments all lie ahead are not visited."""
    now = uow.clock.now()
    covered = (DebitMandate.applicant_id == LoanAccount.applicant_id) & (
        DebitMandate.loan_id.is_(None) | (DebitMandate.loan_id == LoanAccount.loan_id))
    waiting = select(DirectDebit.id).where(
        DirectDebit.loan_id == LoanAccount.loan_id,
        DirectDebit.status.in_(OPEN_DEBIT_STATUSES) | (
            (DirectDebit.status == DebitStatus.FAILED.value) & (DirectDebit.next_retry_at > now))).exists()
    unpaid = select(LoanInstallment.number).where(
        LoanInstallment.loan_id == LoanAccount.loan_id, LoanInstallment.status.in_(("scheduled", "billed")),
        LoanInstallment.due_day <= day_number(now.date()) + 1).exists()
    rows = uow.session.execute(
        select(LoanAccount.tenant_id, LoanAccount.loan_id).join(DebitMandate, covered)
        .where(DebitMandate.status == MandateStatus.ACTIVE.value, DebitMandate.tenant_id == LoanAccount.tenant_id,
               LoanAccount.state.in_(OPEN_STATES), unpaid, ~waiting)
        .distinct().order_by(LoanAccount.loan_id).limit(limit))
    return [(tenant_id, loan_id) for tenant_id, loan_id in rows]


@dataclass(frozen=True, slots=True)
class Planned:
    debit_id: str
    payment_id: str
    channel: str | None


def plan_debit(uow: UnitOfWork, tenant_id: str, loan_id: str) -> Planned | None:
    """Record the next direct debit attempt of a loan if one is due now (with its payment, not confirmed);
    None when nothing is to be debited. The channel is called after this transaction commits."""
    view = get_policy(uow, tenant_id)
    if not view.policy.enabled:
        return None
    account = uow.session.get(LoanAccount, loan_id, with_for_update=True)
    if account is None or account.tenant_id != tenant_id or account.state not in OPEN_STATES:
        return None
    if uow.session.scalar(select(DirectDebit.id).where(DirectDebit.loan_id == loan_id,
                                                       DirectDebit.status.in_(OPEN_DEBIT_STATUSES)).limit(1)):
        return None  # an answer is still awaited: never a second charge meanwhile
    mandate = mandate_for(uow, tenant_id, account.applicant_id, loan_id)
    if mandate is None:
        return None
    today = servicing.servicing_date(uow, tenant_id)
    due_on = latest_due_on(uow, loan_id, today)
    if due_on is None:
        return None
    now = uow.clock.now()
    last = uow.session.scalar(select(DirectDebit).where(DirectDebit.loan_id == loan_id, DirectDebit.due_on == due_on)
                              .order_by(DirectDebit.attempt_number.desc()).limit(1))
    if last is not None and (last.status != DebitStatus.FAILED.value or last.next_retry_at is None
                             or now < last.next_retry_at):
        return None  # succeeded, out of attempts, or not yet time to retry
    amount = debit_amount(due_now(uow, account, today), mandate.max_amount)
    if amount == 0:
        return None
    payment = payments.create_payment(uow, tenant_id, payments.PaymentDraft(
        merchant_id=None, amount=amount, currency=account.currency, purpose="wallet_top_up",
        order_reference=loan_id, description=f"direct debit of {loan_id} due {due_on.isoformat()}",
        customer_id=mandate.customer_id, method=PaymentMethod.CARD.value, card_id=mandate.card_id,
        metadata={LOAN_KEY: loan_id, PURPOSE_KEY: PURPOSE, "credit_mandate_id": mandate.id}))
    number = 1 if last is None else last.attempt_number + 1
    debit = DirectDebit(id=uow.ids.new("direct_debit"), tenant_id=tenant_id, loan_id=loan_id, mandate_id=mandate.id,
                        payment_id=payment.id, due_on=due_on, attempt_number=number,
                        amount=amount, currency=account.currency, status=DebitStatus.PENDING.value, failure_code=None,
                        next_retry_at=None, cycle_started_at=now if last is None else last.cycle_started_at,
                        created_at=now, updated_at=now, completed_at=None)
    uow.session.add(debit)
    uow.session.flush()
    _link(uow, payment, loan_id, mandate.customer_id, source="autodebit", direct_debit_id=debit.id,
          actor=SYSTEM_ACTOR)
    return Planned(debit.id, payment.id, mandate.channel)


def _debit_of(uow: UnitOfWork, link: RepaymentPayment) -> DirectDebit | None:
    if link.direct_debit_id is None:
        return None
    return uow.session.scalar(select(DirectDebit).where(DirectDebit.id == link.direct_debit_id)
                              .with_for_update().execution_options(populate_existing=True))


def _finish_debit(uow: UnitOfWork, debit: DirectDebit, target: DebitStatus, failure_code: str | None) -> None:
    if not can_move_debit(debit.status, target):
        return
    now = uow.clock.now()
    debit.status = target.value
    debit.updated_at = debit.completed_at = now
    if target is DebitStatus.FAILED:
        debit.failure_code = failure_code
        debit.next_retry_at = next_retry_at(get_policy(uow, debit.tenant_id).policy,
                                            attempt_number=debit.attempt_number,
                                            cycle_started_at=debit.cycle_started_at, failed_at=now)


@dataclass(frozen=True, slots=True)
class Stale:
    tenant_id: str
    payment_id: str
    channel: str | None
    #: The mandate was revoked meanwhile: the payment is canceled instead of charged.
    revoked: bool


def stale_pending(uow: UnitOfWork, *, limit: int) -> list[Stale]:
    """Debits recorded but never confirmed (a worker died between the two) at least a while ago."""
    before = uow.clock.now() - timedelta(seconds=STALE_PENDING_SECONDS)
    rows = uow.session.execute(
        select(DirectDebit.tenant_id, DirectDebit.payment_id, DebitMandate.channel, DebitMandate.status,
               Payment.next_action)
        .join(DebitMandate, DebitMandate.id == DirectDebit.mandate_id)
        .join(Payment, Payment.id == DirectDebit.payment_id)
        .where(DirectDebit.status == DebitStatus.PENDING.value, Payment.status == "requires_confirmation",
               DirectDebit.created_at <= before)
        .order_by(DirectDebit.created_at).limit(limit))
    # A payment parked by a risk review waits for its case (payments.resume_reviewed confirms it), not for us.
    return [Stale(t, p, c, status != MandateStatus.ACTIVE.value) for t, p, c, status, action in rows
            if not (action and action.get("type") == "risk_review")]


def get_debit(uow: UnitOfWork, tenant_id: str, debit_id: str) -> DirectDebit:
    row = uow.session.scalar(select(DirectDebit).where(DirectDebit.tenant_id == tenant_id, DirectDebit.id == debit_id))
    if row is None:
        raise NotFound("No such direct debit.", code="direct_debit_not_found", param="direct_debit_id")
    return row


def list_debits(uow: UnitOfWork, tenant_id: str, *, loan_id: str | None = None, status: str | None = None,
                after: str | None = None, limit: int = 50) -> list[DirectDebit]:
    query = select(DirectDebit).where(DirectDebit.tenant_id == tenant_id)
    if loan_id:
        query = query.where(DirectDebit.loan_id == loan_id)
    if status:
        query = query.where(DirectDebit.status == status)
    if after:
        query = query.where(DirectDebit.id < after)
    return list(uow.session.scalars(query.order_by(DirectDebit.id.desc()).limit(limit + 1)))


def links_of(uow: UnitOfWork, payment_ids: Sequence[str]) -> dict[str, RepaymentPayment]:
    if not payment_ids:
        return {}
    return {row.payment_id: row for row in uow.session.scalars(
        select(RepaymentPayment).where(RepaymentPayment.payment_id.in_(list(payment_ids))))}


# A loan's repayment is applied in the transaction that records its payment's final state, however the payment got
# there (our confirmation, the payments API, a channel's notification, a query); the job's poll is the safety net.
if settle_payment not in payments.SETTLED_REACTIONS:
    payments.SETTLED_REACTIONS.append(settle_payment)
