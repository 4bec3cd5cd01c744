"""Disputes (chargebacks): a channel pulls money back from a captured payment; the merchant may fight it.

Invariants owned here:
- a dispute's status changes only along ``TRANSITIONS`` (keyed by state and event); anything else is a
  409 ``dispute_state_conflict``. Every mutation holds the payment's row lock first, so disputes, refunds
  and captures of one payment are serialised;
- money moves in the same transaction as the status change that explains it, each entry balanced and
  under a permanent transfer key (``dispute:<id>:open`` / ``:won`` / ``:lost``), and a dispute is created
  at most once per (tenant, channel, channel dispute id), so a notification applied twice posts once;
- on opening, the channel takes the disputed amount back at once: credit the payment's channel receivable
  shard, debit the merchant — its pending balance as far as it goes, then its reserve (if it has one),
  and for any shortfall (the money was already paid out) a receivable ``assets:merchant_receivable:<id>``
  that later settlements collect (a disputed wallet top-up is taken from the customer's wallet, the
  shortfall to ``assets:customer_receivable:<id>``). A win gives the amount back along the same sources (the part of the
  receivable that is still open is cleared, the rest goes to pending); a loss moves nothing more, except
  the channel's chargeback fee (``chargeback_fee_amount`` in the channel's settings, default 0), an
  expense;
- the disputes of a payment never exceed what is left of it: captured, minus refunded (refunds in flight
  included), minus every dispute that was not won;
- ``Payment.is_disputed`` is true exactly while the payment has an open dispute (refunds are refused then).

The channel is the authority on outcomes: a channel's "won" is applied even if we had closed the dispute
as lost ourselves (evidence overdue, or accepted), since the channel has then given the money back.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

import structlog
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

import finloop.payments.dispute_models  # noqa: F401 - registers the table until load_all_models imports it
from finloop.core.errors import Conflict, InvalidRequest, NotFound
from finloop.core.money import check_amount, currency
from finloop.db.uow import UnitOfWork
from finloop.ledger import service as ledger
from finloop.ledger.domain import AccountType, BalanceRule, PostingSpec, TransferSpec
from finloop.payments import service
from finloop.payments.dispute_models import Dispute
from finloop.payments.models import Attempt, Payment
from finloop.payments.postings import AccountSpec, channel_receivable_code, ensure_account, payee_account, shard_of
from finloop.payments.state import AttemptStatus, PaymentStatus
from finloop.webhooks import service as webhooks

log = structlog.get_logger("finloop.payments.disputes")

MAX_EVIDENCE_TEXT = 20_000
MAX_EVIDENCE_FILES = 20
MAX_FILE_REFERENCE = 500
#: The key of a channel's settings naming its chargeback fee in minor units (``..._<CUR>`` per currency).
FEE_SETTING = "chargeback_fee_amount"


class DisputeStatus(StrEnum):
    NEEDS_RESPONSE = "needs_response"   # opened; the merchant may submit evidence until the due date
    UNDER_REVIEW = "under_review"       # evidence submitted; the channel decides
    WON = "won"
    LOST = "lost"


class DisputeEvent(StrEnum):
    SUBMIT_EVIDENCE = "submit_evidence"
    ACCEPT = "accept"                   # the merchant concedes
    EXPIRE = "expire"                   # the evidence due date passed without evidence
    WIN = "win"                         # the channel decided for the merchant
    LOSE = "lose"                       # the channel decided for the cardholder


class Resolution(StrEnum):
    CHANNEL = "channel"
    ACCEPTED = "accepted"
    EVIDENCE_OVERDUE = "evidence_overdue"


S, E = DisputeStatus, DisputeEvent

#: Every legal move. The channel may decide without evidence (an issuer can withdraw a chargeback), so
#: WIN and LOSE are legal from needs_response too.
TRANSITIONS: dict[tuple[DisputeStatus, DisputeEvent], DisputeStatus] = {
    (S.NEEDS_RESPONSE, E.SUBMIT_EVIDENCE): S.UNDER_REVIEW,
    (S.NEEDS_RESPONSE, E.ACCEPT): S.LOST,
    (S.NEEDS_RESPONSE, E.EXPIRE): S.LOST,
    (S.NEEDS_RESPONSE, E.WIN): S.WON,
    (S.NEEDS_RESPONSE, E.LOSE): S.LOST,
    (S.UNDER_REVIEW, E.WIN): S.WON,
    (S.UNDER_REVIEW, E.LOSE): S.LOST,
}

OPEN_STATUSES = frozenset({S.NEEDS_RESPONSE, S.UNDER_REVIEW})

#: How the connectors' ``status`` values read (Stripe's vocabulary; generic and WeChat send none).
_CHANNEL_STATUS: dict[str, DisputeEvent | None] = {
    "needs_response": None, "warning_needs_response": None, "open": None, "created": None,
    "under_review": E.SUBMIT_EVIDENCE, "warning_under_review": E.SUBMIT_EVIDENCE,
    "won": E.WIN, "warning_closed": E.WIN,  # an inquiry closed without a chargeback: nothing was lost
    "lost": E.LOSE,
}
_REPORTED = {E.SUBMIT_EVIDENCE: S.UNDER_REVIEW, E.WIN: S.WON, E.LOSE: S.LOST}


def next_status(current: str, event: DisputeEvent, dispute_id: str) -> DisputeStatus:
    target = TRANSITIONS.get((DisputeStatus(current), event))
    if target is None:
        raise Conflict(f"Dispute {dispute_id} is {current}; {event.value} is not possible now.",
                       code="dispute_state_conflict", details={"status": current, "event": event.value})
    return target


# ------------------------------------------------------------------------------------------ reading


def find_dispute(uow: UnitOfWork, tenant_id: str, dispute_id: str) -> Dispute | None:
    return uow.session.scalar(select(Dispute).where(Dispute.tenant_id == tenant_id, Dispute.id == dispute_id)
                              .execution_options(populate_existing=True))


def get_dispute(uow: UnitOfWork, tenant_id: str, dispute_id: str) -> Dispute:
    dispute = find_dispute(uow, tenant_id, dispute_id)
    if dispute is None:
        raise NotFound(f"No such dispute: {dispute_id}.", code="dispute_not_found", param="dispute_id")
    return dispute


def list_disputes(uow: UnitOfWork, tenant_id: str, *, status: str | None = None, payment_id: str | None = None,
                  after: str | None = None, limit: int = 50) -> list[Dispute]:
    """Newest first; ``limit + 1`` rows, the extra one only telling that more exist."""
    query = select(Dispute).where(Dispute.tenant_id == tenant_id)
    if status:
        if status not in DisputeStatus.__members__.values():
            raise InvalidRequest(f"status is one of {', '.join(DisputeStatus)}.", code="invalid_choice",
                                 param="status")
        query = query.where(Dispute.status == status)
    if payment_id:
        query = query.where(Dispute.payment_id == payment_id)
    if after:
        query = query.where(Dispute.id < after)
    return list(uow.session.scalars(query.order_by(Dispute.id.desc()).limit(limit + 1)))


def disputed_amount(uow: UnitOfWork, payment_id: str) -> int:
    """What disputes hold of a payment: every dispute not won (open ones, and lost ones whose money is gone)."""
    total = uow.session.scalar(select(func.coalesce(func.sum(Dispute.amount), 0)).where(
        Dispute.payment_id == payment_id, Dispute.status != DisputeStatus.WON.value))
    return int(total or 0)


def dispute_event_data(dispute: Dispute) -> dict[str, Any]:
    return {"id": dispute.id, "payment_id": dispute.payment_id, "merchant_id": dispute.merchant_id,
            "channel": dispute.channel, "amount": dispute.amount, "currency": dispute.currency,
            "reason": dispute.reason, "status": dispute.status, "resolution": dispute.resolution,
            "evidence_due_by": dispute.evidence_due_by.isoformat() if dispute.evidence_due_by else None}


# ------------------------------------------------------------------------------------------ opening


def _checked_text(value: str | None, *, param: str, max_length: int, required: bool = False) -> str:
    text = (value or "").strip()
    if required and not text:
        raise InvalidRequest(f"{param} is required.", code="parameter_missing", param=param)
    if len(text) > max_length or "\x00" in text:
        raise InvalidRequest(f"{param} is at most {max_length} characters without NUL.", code="invalid_text",
                             param=param)
    return text


def _find_attempt(uow: UnitOfWork, tenant_id: str, channel: str, reference: str | None,
                  channel_ref: str | None) -> Attempt | None:
    if reference:
        attempt = uow.session.scalar(select(Attempt).where(Attempt.tenant_id == tenant_id, Attempt.id == reference,
                                                           Attempt.channel == channel))
        if attempt is not None:
            return attempt
    if channel_ref:
        return uow.session.scalar(select(Attempt).where(
            Attempt.tenant_id == tenant_id, Attempt.channel == channel, Attempt.channel_ref == channel_ref,
            Attempt.status == AttemptStatus.SUCCEEDED.value).limit(1))
    return None


def _find_by_channel_id(uow: UnitOfWork, tenant_id: str, channel: str, channel_dispute_id: str) -> Dispute | None:
    return uow.session.scalar(select(Dispute).where(
        Dispute.tenant_id == tenant_id, Dispute.channel == channel,
        Dispute.channel_dispute_id == channel_dispute_id).execution_options(populate_existing=True))


def open_dispute(uow: UnitOfWork, tenant_id: str, *, channel: str, reference: str | None, channel_ref: str | None,
                 amount: int, currency: str, reason: str, evidence_due_by: datetime | None,
                 channel_dispute_id: str) -> Dispute:
    """Record a dispute the channel opened and take its amount from the merchant at once.

    Idempotent on (tenant, channel, channel_dispute_id): a second call returns the first dispute and
    moves nothing. The payment is found by its attempt (``reference`` is our attempt id, ``channel_ref``
    the channel's id of it).
    """
    dispute_key = _checked_text(channel_dispute_id, param="channel_dispute_id", max_length=100, required=True)
    check_amount(amount, allow_zero=False, allow_negative=False)
    _currency(currency)
    reason_text = _checked_text(reason, param="reason", max_length=100) or "general"
    if evidence_due_by is not None and (evidence_due_by.tzinfo is None or evidence_due_by.utcoffset() is None):
        raise InvalidRequest("evidence_due_by needs its UTC offset.", code="invalid_datetime",
                             param="evidence_due_by")
    attempt = _find_attempt(uow, tenant_id, channel, reference, channel_ref)
    if attempt is None:
        raise NotFound("No payment of this channel matches the dispute.", code="payment_not_found",
                       param="reference")
    payment = service.get_payment(uow, tenant_id, attempt.payment_id, lock=True)
    # Read after the lock: a concurrent delivery of the same notification has committed by now.
    existing = _find_by_channel_id(uow, tenant_id, channel, dispute_key)
    if existing is not None:
        return existing
    if payment.status != PaymentStatus.SUCCEEDED.value or payment.channel != channel:
        raise Conflict(f"Payment {payment.id} has no capture through {channel} to dispute.",
                       code="payment_not_disputable")
    if currency != payment.currency:
        raise InvalidRequest(f"Payment {payment.id} is in {payment.currency}, not {currency}.",
                             code="currency_mismatch", param="currency")
    left = payment.captured_amount - payment.refunded_amount - disputed_amount(uow, payment.id)
    if amount > left:
        raise InvalidRequest(f"At most {left} of payment {payment.id} can be disputed.", code="amount_too_large",
                             param="amount", details={"available": left})
    # Read after the payment lock; the ledger re-checks every balance rule under its own account locks.
    accounts, from_balance, from_reserve, shortfall = _sources(uow, payment, amount)
    now = uow.clock.now()
    dispute = Dispute(
        id=uow.ids.new("dispute"), tenant_id=tenant_id, payment_id=payment.id, merchant_id=payment.merchant_id,
        attempt_id=attempt.id, channel=channel, channel_dispute_id=dispute_key, amount=amount,
        currency=currency, reason=reason_text, status=DisputeStatus.NEEDS_RESPONSE.value, resolution=None,
        evidence_due_by=evidence_due_by.astimezone(UTC) if evidence_due_by else None, evidence_text=None,
        evidence_files=[], evidence_submitted_at=None, from_pending_amount=from_balance,
        from_reserve_amount=from_reserve, receivable_amount=shortfall, fee_amount=0, opened_entry_id=None,
        closed_entry_id=None, version=0, created_at=now, updated_at=now, closed_at=None)
    try:
        with uow.session.begin_nested():
            uow.session.add(dispute)
            uow.session.flush()
    except IntegrityError:
        # Only a writer that did not lock the payment can get here; the row it wrote is the dispute.
        raced = _find_by_channel_id(uow, tenant_id, channel, dispute_key)
        if raced is None:
            raise
        return raced
    _post_open(uow, payment, dispute, accounts)
    _mark_disputed(uow, payment)
    webhooks.publish_event(uow, tenant_id, type="dispute.opened", data=dispute_event_data(dispute),
                            merchant_id=payment.merchant_id)
    log.info("payments.dispute_opened", dispute_id=dispute.id, payment_id=payment.id, amount=amount)
    return dispute


def _currency(code: str) -> None:
    try:
        currency(code)
    except InvalidRequest as error:
        error.param = "currency"
        raise


# ------------------------------------------------------------------------------------------ ledger


@dataclass(frozen=True, slots=True)
class _PayeeAccounts:
    balance: str          # the merchant's pending balance (a top-up's: the customer's wallet)
    reserve: str | None   # the merchant's reserve, when it has one
    receivable: str       # what the payee owes us once its balance and reserve are exhausted


def _merchant_reserve_code(merchant_id: str) -> str:
    return f"liabilities:merchant:{merchant_id}:reserve"


def _receivable_code(payment: Payment) -> str:
    if payment.merchant_id is not None:
        return f"assets:merchant_receivable:{payment.merchant_id}"
    assert payment.customer_id is not None  # a wallet top-up
    return f"assets:customer_receivable:{payment.customer_id}"


def _chargeback_fees_code(channel: str) -> str:
    return f"expenses:chargeback_fees:{channel}"


def _available(uow: UnitOfWork, tenant_id: str, account_id: str) -> int:
    """What a liability account can give without going below zero (pending holds count against it)."""
    account = ledger.get_account(uow, tenant_id, account_id)
    uow.session.refresh(account)  # the ledger writes running sums with plain SQL on PostgreSQL
    return max(0, ledger.balances(account).available)


def _payee_accounts(uow: UnitOfWork, payment: Payment) -> _PayeeAccounts:
    reserve = None
    if payment.merchant_id is not None:
        reserve = ledger.find_account_by_code(uow, payment.tenant_id, _merchant_reserve_code(payment.merchant_id),
                                              payment.currency)
    receivable = ensure_account(uow, payment.tenant_id, AccountSpec(
        _receivable_code(payment), AccountType.ASSET, BalanceRule.CREDITS_MUST_NOT_EXCEED_DEBITS), payment.currency)
    return _PayeeAccounts(payee_account(uow, payment), reserve.id if reserve is not None else None, receivable)


def _channel_receivable(uow: UnitOfWork, payment: Payment, channel: str) -> str:
    return ensure_account(uow, payment.tenant_id, AccountSpec(
        channel_receivable_code(channel, shard_of(payment.id)), AccountType.ASSET), payment.currency)


def _post(uow: UnitOfWork, payment: Payment, dispute: Dispute, step: str,
          deltas: list[tuple[str, int]]) -> str:
    postings = tuple(PostingSpec(account, delta, dispute.currency) for account, delta in deltas if delta)
    posted = ledger.post_transfer(uow, payment.tenant_id, TransferSpec(
        key=f"dispute:{dispute.id}:{step}", postings=postings,
        description=f"dispute {dispute.id} of {payment.id} {step}",
        metadata={"payment_id": payment.id, "dispute_id": dispute.id, "merchant_id": payment.merchant_id}))
    return posted.id


def _sources(uow: UnitOfWork, payment: Payment, amount: int) -> tuple[_PayeeAccounts, int, int, int]:
    """Split the amount over the payee's balance, then its reserve, then a receivable for the rest."""
    accounts = _payee_accounts(uow, payment)
    from_balance = min(amount, _available(uow, payment.tenant_id, accounts.balance))
    from_reserve = 0
    if accounts.reserve is not None:
        from_reserve = min(amount - from_balance, _available(uow, payment.tenant_id, accounts.reserve))
    return accounts, from_balance, from_reserve, amount - from_balance - from_reserve


def _post_open(uow: UnitOfWork, payment: Payment, dispute: Dispute, accounts: _PayeeAccounts) -> None:
    """Credit the channel receivable; debit the sources recorded on the dispute."""
    deltas = [(accounts.balance, dispute.from_pending_amount), (accounts.receivable, dispute.receivable_amount),
              (_channel_receivable(uow, payment, dispute.channel), -dispute.amount)]
    if accounts.reserve is not None:
        deltas.append((accounts.reserve, dispute.from_reserve_amount))
    dispute.opened_entry_id = _post(uow, payment, dispute, "open", deltas)


def _post_won(uow: UnitOfWork, payment: Payment, dispute: Dispute) -> str:
    """Give the amount back the way it came; a receivable already collected goes to pending instead."""
    accounts = _payee_accounts(uow, payment)
    receivable = ledger.get_account(uow, payment.tenant_id, accounts.receivable)
    uow.session.refresh(receivable)
    still_owed = max(0, ledger.balances(receivable).posted)
    clear = min(dispute.receivable_amount, still_owed)
    to_pending = dispute.from_pending_amount + dispute.receivable_amount - clear
    deltas = [(_channel_receivable(uow, payment, dispute.channel), dispute.amount),
              (accounts.balance, -to_pending), (accounts.receivable, -clear)]
    if dispute.from_reserve_amount:
        assert accounts.reserve is not None  # it gave the money, so it exists
        deltas.append((accounts.reserve, -dispute.from_reserve_amount))
    return _post(uow, payment, dispute, "won", deltas)


def chargeback_fee(uow: UnitOfWork, tenant_id: str, channel: str, currency_code: str) -> int:
    """The channel's chargeback fee from its settings: ``chargeback_fee_amount_<CUR>`` or
    ``chargeback_fee_amount`` (minor units of the dispute's currency), 0 when unset or malformed."""
    settings = service.channel_by_code(uow, tenant_id, channel).settings or {}
    raw = settings.get(f"{FEE_SETTING}_{currency_code}", settings.get(FEE_SETTING, 0))
    if isinstance(raw, str) and raw.strip().isdigit():
        raw = int(raw.strip())
    if isinstance(raw, bool) or not isinstance(raw, int) or raw < 0:
        log.warning("payments.dispute_fee_setting_ignored", channel=channel)
        return 0
    return check_amount(raw, allow_negative=False)


def _post_lost(uow: UnitOfWork, payment: Payment, dispute: Dispute) -> str | None:
    fee = chargeback_fee(uow, payment.tenant_id, dispute.channel, dispute.currency)
    if not fee:
        return None
    dispute.fee_amount = fee
    expense = ensure_account(uow, payment.tenant_id, AccountSpec(_chargeback_fees_code(dispute.channel),
                                                                  AccountType.EXPENSE), dispute.currency)
    return _post(uow, payment, dispute, "lost",
                 [(expense, fee), (_channel_receivable(uow, payment, dispute.channel), -fee)])


# ------------------------------------------------------------------------------------------ moves


def _mark_disputed(uow: UnitOfWork, payment: Payment) -> None:
    uow.session.flush()  # the count below must see this transaction's own status change
    is_open = uow.session.scalar(select(func.count()).select_from(Dispute).where(
        Dispute.payment_id == payment.id, Dispute.status.in_([s.value for s in OPEN_STATUSES]))) or 0
    if payment.is_disputed != bool(is_open):
        payment.is_disputed = bool(is_open)
        payment.updated_at = uow.clock.now()
        payment.version += 1


def _locked(uow: UnitOfWork, tenant_id: str, dispute_id: str) -> tuple[Payment, Dispute]:
    """The dispute and its payment, the payment locked (the one lock every dispute change takes)."""
    uow.session.flush()  # the re-read after the lock replaces the loaded state: nothing may be pending
    dispute = get_dispute(uow, tenant_id, dispute_id)
    payment = service.get_payment(uow, tenant_id, dispute.payment_id, lock=True)
    return payment, get_dispute(uow, tenant_id, dispute_id)


def _touch(uow: UnitOfWork, dispute: Dispute, status: DisputeStatus) -> None:
    now = uow.clock.now()
    dispute.status = status.value
    dispute.updated_at = now
    dispute.version += 1
    if status not in OPEN_STATUSES:
        dispute.closed_at = now


def _close(uow: UnitOfWork, payment: Payment, dispute: Dispute, event: DisputeEvent,
           resolution: Resolution) -> Dispute:
    target = next_status(dispute.status, event, dispute.id)
    _touch(uow, dispute, target)
    dispute.resolution = resolution.value
    if target is DisputeStatus.WON:
        dispute.closed_entry_id = _post_won(uow, payment, dispute)
    else:
        dispute.closed_entry_id = _post_lost(uow, payment, dispute)
    _mark_disputed(uow, payment)
    uow.session.flush()
    webhooks.publish_event(uow, payment.tenant_id, type="dispute.closed", data=dispute_event_data(dispute),
                            merchant_id=payment.merchant_id)
    log.info("payments.dispute_closed", dispute_id=dispute.id, status=dispute.status, resolution=resolution.value)
    return dispute


def _reverse_local_loss(uow: UnitOfWork, payment: Payment, dispute: Dispute) -> Dispute:
    """The channel says won after we had closed it as lost ourselves: its word stands, the money comes back.
    A chargeback fee booked at the loss stays (channels keep it whatever the outcome)."""
    _touch(uow, dispute, DisputeStatus.WON)
    dispute.resolution = Resolution.CHANNEL.value
    dispute.closed_entry_id = _post_won(uow, payment, dispute)
    uow.session.flush()
    webhooks.publish_event(uow, payment.tenant_id, type="dispute.closed", data=dispute_event_data(dispute),
                            merchant_id=payment.merchant_id)
    return dispute


def submit_evidence(uow: UnitOfWork, tenant_id: str, dispute_id: str, *, text: str,
                    files: list[str] | None = None) -> Dispute:
    """Record the merchant's evidence; the dispute goes under review. Not after the evidence due date."""
    body = _checked_text(text, param="text", max_length=MAX_EVIDENCE_TEXT, required=True)
    listed = list(files or [])
    if len(listed) > MAX_EVIDENCE_FILES:
        raise InvalidRequest(f"At most {MAX_EVIDENCE_FILES} files.", code="too_many_items", param="files")
    checked = [_checked_text(item, param=f"files[{index}]", max_length=MAX_FILE_REFERENCE, required=True)
               for index, item in enumerate(listed)]
    _, dispute = _locked(uow, tenant_id, dispute_id)
    target = next_status(dispute.status, DisputeEvent.SUBMIT_EVIDENCE, dispute.id)
    now = uow.clock.now()
    if dispute.evidence_due_by is not None and now > dispute.evidence_due_by:
        raise Conflict(f"Evidence for dispute {dispute.id} was due by {dispute.evidence_due_by.isoformat()}.",
                       code="evidence_overdue")
    _touch(uow, dispute, target)
    dispute.evidence_text = body
    dispute.evidence_files = checked
    dispute.evidence_submitted_at = now
    uow.session.flush()
    return dispute


def close_dispute(uow: UnitOfWork, tenant_id: str, dispute_id: str, *, won: bool) -> Dispute:
    """Record the channel's decision: won gives the money back, lost keeps it with the channel."""
    payment, dispute = _locked(uow, tenant_id, dispute_id)
    return _close(uow, payment, dispute, DisputeEvent.WIN if won else DisputeEvent.LOSE, Resolution.CHANNEL)


def accept_dispute(uow: UnitOfWork, tenant_id: str, dispute_id: str) -> Dispute:
    """The merchant concedes before submitting evidence: the dispute is lost."""
    payment, dispute = _locked(uow, tenant_id, dispute_id)
    return _close(uow, payment, dispute, DisputeEvent.ACCEPT, Resolution.ACCEPTED)


def expire_overdue(uow: UnitOfWork, *, now: datetime, limit: int = 500) -> int:
    """Close as lost every dispute still waiting for evidence after its due date; returns how many.
    A job across tenants; the caller commits."""
    due = uow.session.execute(select(Dispute.tenant_id, Dispute.id).where(
        Dispute.status == DisputeStatus.NEEDS_RESPONSE.value, Dispute.evidence_due_by.is_not(None),
        Dispute.evidence_due_by < now).order_by(Dispute.evidence_due_by).limit(limit)).all()
    closed = 0
    for tenant_id, dispute_id in due:
        payment, dispute = _locked(uow, tenant_id, dispute_id)
        # Evidence may have arrived between the scan and the lock.
        if dispute.status != DisputeStatus.NEEDS_RESPONSE.value:
            continue
        _close(uow, payment, dispute, DisputeEvent.EXPIRE, Resolution.EVIDENCE_OVERDUE)
        closed += 1
    return closed


# ------------------------------------------------------------------------------------------ notifications


def _due_by(value: object) -> datetime | None:
    """A connector gives a datetime or an ISO 8601 string; a time without an offset is read as UTC."""
    if isinstance(value, str) and value:
        try:
            value = datetime.fromisoformat(value)
        except ValueError:
            return None
    if not isinstance(value, datetime):
        return None
    return value.replace(tzinfo=UTC) if value.tzinfo is None or value.utcoffset() is None else value


def _optional_str(value: object) -> str | None:
    return str(value) if isinstance(value, str | int) and not isinstance(value, bool) and str(value) else None


def handle_dispute_notification(uow: UnitOfWork, tenant_id: str, channel: str,
                                dispute: Mapping[str, Any]) -> Dispute | None:
    """Apply a channel's dispute notification (``Notification.dispute``): open the dispute if it is new,
    then follow the status the channel reports, forward only. Returns None when no payment of ours
    matches (the notification is acknowledged; there is nothing to apply).

    The channel's dispute id is ``id`` (Stripe, WeChat) or ``dispute_id`` (generic); a channel that sends
    none is keyed by the payment reference and amount, so a re-sent notification still opens once.
    """
    reference = _optional_str(dispute.get("reference"))
    channel_ref = _optional_str(dispute.get("channel_ref"))
    if reference is None and channel_ref is None:
        log.warning("payments.dispute_unmatched", channel=channel, reason="no reference")
        return None
    channel_dispute_id = _optional_str(dispute.get("id")) or _optional_str(dispute.get("dispute_id")) or \
        f"{reference or channel_ref}:{dispute.get('amount')}"
    status = _optional_str(dispute.get("status"))
    event = _CHANNEL_STATUS.get(status or "needs_response")
    found = _find_by_channel_id(uow, tenant_id, channel, channel_dispute_id[:100])
    if found is None:
        if _find_attempt(uow, tenant_id, channel, reference, channel_ref) is None:
            log.warning("payments.dispute_unmatched", channel=channel, reason="unknown payment")
            return None
        amount = dispute.get("amount")
        found = open_dispute(
            uow, tenant_id, channel=channel, reference=reference, channel_ref=channel_ref,
            amount=amount if isinstance(amount, int) else 0, currency=str(dispute.get("currency") or ""),
            reason=str(dispute.get("reason") or ""), evidence_due_by=_due_by(dispute.get("evidence_due_by")),
            channel_dispute_id=channel_dispute_id[:100])
    if event is None:
        return found
    payment, current = _locked(uow, tenant_id, found.id)
    if current.status == _REPORTED[event].value:
        return current  # already there: a re-sent or reordered report
    if (DisputeStatus(current.status), event) in TRANSITIONS:
        if event is DisputeEvent.SUBMIT_EVIDENCE:  # the merchant answered at the channel directly
            _touch(uow, current, DisputeStatus.UNDER_REVIEW)
            uow.session.flush()
            return current
        return _close(uow, payment, current, event, Resolution.CHANNEL)
    if event is DisputeEvent.WIN and current.status == DisputeStatus.LOST.value \
            and current.resolution != Resolution.CHANNEL.value:
        return _reverse_local_loss(uow, payment, current)
    # A late or contradicting report never moves a dispute back; reconciliation flags the difference.
    log.warning("payments.dispute_report_ignored", dispute_id=current.id, status=current.status, reported=status)
    return current
