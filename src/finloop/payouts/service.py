"""Payouts use cases that fit in one transaction. Every function takes a unit of work and never commits.

Invariants owned here:
- a payout's status changes only along ``state.TRANSITIONS`` (an illegal move is a 409), under its row lock;
- a request holds its amount in the ledger in the same transaction that records it (a hold without expiry
  from the party's available balance to the custody bank account); more than the available balance is
  refused and nothing is written;
- the bank's answers are applied forward only, each money movement under a permanent key derived from the
  payout id: ``payout:<id>`` (the hold, posted on success), ``payout:<id>:return`` (the reversal);
- account numbers and holder names are sealed by the vault; only the last four digits are ever shown or
  logged, and they never reach a log line or an error message in clear;
- a payout is requested only for a party the onboarding gate lets through, within its tier's limits, to a
  beneficiary not confirmed on a watchlist (``gate``); an automatic payout not made is recorded as a skip.
Bank calls happen between two transactions, in ``flows``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from enum import StrEnum
from typing import Any

import structlog
from sqlalchemy import select

from finloop.core.errors import Conflict, InvalidRequest, NotFound
from finloop.core.money import check_amount, is_currency
from finloop.core.text import check_account_number, check_holder_name
from finloop.db.uow import UnitOfWork
from finloop.ledger import service as ledger
from finloop.ledger.domain import AccountType, BalanceRule, TransferSpec
from finloop.ledger.models import Account
from finloop.payments.connectors.base import Outcome, PayoutRequest, PayoutResult
from finloop.payments.postings import AccountSpec, ensure_account
from finloop.payouts.bank_sandbox import PayoutReturn
from finloop.payouts.models import Payout, PayoutAccount, PayoutSchedule, PayoutSettings, PayoutSkip
from finloop.payouts.state import CANCELABLE, PayoutStatus, check_move
from finloop.settlement.accounts import CUSTODY_BANK_ACCOUNT, Bucket, PartyKind, bank_account_code, party_account_code
from finloop.tenancy.service import Principal, Role, system_principal

log = structlog.get_logger("finloop.payouts")

#: The vault purpose of sealed payout account numbers and holder names.
ACCOUNT_PURPOSE = "payout_account"
#: The approval action of payouts above the approval amount.
APPROVAL_ACTION = "payouts.payout"
#: Attempts at the bank (a retryable failure is retried) unless the tenant's settings say otherwise.
DEFAULT_MAX_ATTEMPTS = 3
#: Seconds to wait before retry n (1-based) after a retryable failure.
RETRY_BACKOFF_SECONDS = (60, 300, 900, 1800, 3600)
#: Seconds between queries of a payout the bank is still processing.
QUERY_LADDER_SECONDS = (60, 300, 900, 1800, 3600)
#: A parked payout's approval is looked at again after this long.
APPROVAL_RECHECK = timedelta(minutes=5)

_BANK_CODE = re.compile(r"^[A-Z0-9]{2,20}$")
_PARTY_ID = re.compile(r"^[A-Za-z0-9_\-]{1,40}$")


class ScheduleInterval(StrEnum):
    MANUAL = "manual"        # no automatic payouts
    DAILY = "daily"          # every business day, after the close
    WEEKLY = "weekly"        # once a week, on ``weekday`` (or the next business day)
    THRESHOLD = "threshold"  # whenever available reaches ``threshold_amount``


@dataclass(frozen=True, slots=True)
class PayoutRecord:
    """A payout as reconciliation sees it (the contract of ``list_payouts_for_recon``)."""

    id: str
    party_kind: PartyKind
    party_id: str
    amount: int
    currency: str
    status: str
    bank_reference: str | None
    executed_on: date | None


def _backoff(table: tuple[int, ...], n: int) -> timedelta:
    return timedelta(seconds=table[min(max(n, 1), len(table)) - 1])


def _check_party(uow: UnitOfWork, tenant_id: str, party_kind: PartyKind | str, party_id: str) -> PartyKind:
    try:
        kind = PartyKind(party_kind)
    except ValueError:
        raise InvalidRequest("party_kind is merchant or promoter.", code="invalid_party_kind",
                             param="party_kind") from None
    if not isinstance(party_id, str) or not _PARTY_ID.match(party_id):
        raise InvalidRequest("party_id is 1 to 40 letters, digits, '_' or '-'.", code="invalid_party_id",
                             param="party_id")
    if kind is PartyKind.MERCHANT:
        from finloop.payments import service as payments

        payments.get_merchant(uow, tenant_id, party_id, param="party_id")
    return kind


def _check_currency(code: str) -> str:
    if not isinstance(code, str) or not is_currency(code):
        raise InvalidRequest("Unknown currency; use an ISO 4217 code such as CNY.", code="unknown_currency",
                             param="currency")
    return code


def _now(uow: UnitOfWork) -> datetime:
    return uow.clock.now()


# ------------------------------------------------------------------------------------------ accounts


def create_payout_account(uow: UnitOfWork, tenant_id: str, *, party_kind: PartyKind | str, party_id: str,
                          currency: str, holder_name: str, account_number: str, bank_code: str) -> PayoutAccount:
    """Record a bank account for a party's payouts; the holder and number are sealed by the vault."""
    from finloop.vault import service as vault

    kind = _check_party(uow, tenant_id, party_kind, party_id)
    _check_currency(currency)
    number = check_account_number(account_number)
    name = check_holder_name(holder_name, param="holder_name")
    if not _BANK_CODE.match(bank_code):
        raise InvalidRequest("bank_code is 2 to 20 capital letters and digits.", code="invalid_bank_code",
                             param="bank_code")
    account = PayoutAccount(
        id=uow.ids.new("payout_account"), tenant_id=tenant_id, party_kind=kind.value, party_id=party_id,
        currency=currency, holder_name_sealed=vault.seal_secret(uow, tenant_id, name.encode(), purpose=ACCOUNT_PURPOSE),
        account_number_sealed=vault.seal_secret(uow, tenant_id, number.encode(), purpose=ACCOUNT_PURPOSE),
        account_last4=number[-4:], bank_code=bank_code, status="active", created_at=_now(uow))
    uow.session.add(account)
    uow.session.flush()
    return account


def get_payout_account(uow: UnitOfWork, tenant_id: str, account_id: str,
                       param: str = "payout_account_id") -> PayoutAccount:
    account = uow.session.scalar(select(PayoutAccount).where(PayoutAccount.tenant_id == tenant_id,
                                                             PayoutAccount.id == account_id))
    if account is None:
        raise NotFound(f"No such payout account: {account_id[:40]}.", code="payout_account_not_found", param=param)
    return account


def list_payout_accounts(uow: UnitOfWork, tenant_id: str, *, party_kind: str | None = None,
                         party_id: str | None = None, after: str | None = None,
                         limit: int = 50) -> list[PayoutAccount]:
    """Up to ``limit + 1`` accounts in id order (the extra row tells the page that more exist)."""
    query = select(PayoutAccount).where(PayoutAccount.tenant_id == tenant_id)
    if party_kind:
        query = query.where(PayoutAccount.party_kind == party_kind)
    if party_id:
        query = query.where(PayoutAccount.party_id == party_id)
    if after:
        query = query.where(PayoutAccount.id > after)
    return list(uow.session.scalars(query.order_by(PayoutAccount.id).limit(limit + 1)))


def masked_holder(uow: UnitOfWork, account: PayoutAccount) -> str:
    """The holder's name as shown: its first character and three stars (the length is not revealed)."""
    return _unseal(uow, account.tenant_id, account.holder_name_sealed)[:1] + "***"


def holder_name(uow: UnitOfWork, account: PayoutAccount) -> str:
    """The holder's name in clear, for the beneficiary screening only (never logged or shown)."""
    return _unseal(uow, account.tenant_id, account.holder_name_sealed)


def _unseal(uow: UnitOfWork, tenant_id: str, sealed: str) -> str:
    from finloop.vault import service as vault

    return vault.unseal_secret(uow, tenant_id, sealed, purpose=ACCOUNT_PURPOSE).decode()


def _default_account(uow: UnitOfWork, tenant_id: str, kind: PartyKind, party_id: str,
                     currency: str) -> PayoutAccount | None:
    return uow.session.scalar(select(PayoutAccount).where(
        PayoutAccount.tenant_id == tenant_id, PayoutAccount.party_kind == kind.value,
        PayoutAccount.party_id == party_id, PayoutAccount.currency == currency, PayoutAccount.status == "active")
        .order_by(PayoutAccount.id.desc()).limit(1))


# ------------------------------------------------------------------------------------------ settings


def get_settings(uow: UnitOfWork, tenant_id: str) -> PayoutSettings:
    """The tenant's payout settings (defaults when never set; not saved until changed)."""
    found = uow.session.get(PayoutSettings, tenant_id)
    if found is not None:
        return found
    return PayoutSettings(tenant_id=tenant_id, approval_amount=None, max_attempts=DEFAULT_MAX_ATTEMPTS,
                          updated_at=_now(uow))


def set_settings(uow: UnitOfWork, tenant_id: str, *, approval_amount: int | None,
                 max_attempts: int = DEFAULT_MAX_ATTEMPTS, actor: str) -> PayoutSettings:
    from finloop.audit import service as audit

    if approval_amount is not None:
        check_amount(approval_amount, allow_negative=False)
    if not isinstance(max_attempts, int) or not 1 <= max_attempts <= 10:
        raise InvalidRequest("max_attempts is 1 to 10.", code="invalid_max_attempts", param="max_attempts")
    settings = uow.session.get(PayoutSettings, tenant_id)
    before = None if settings is None else {"approval_amount": settings.approval_amount,
                                            "max_attempts": settings.max_attempts}
    if settings is None:
        settings = PayoutSettings(tenant_id=tenant_id)
        uow.session.add(settings)
    settings.approval_amount = approval_amount
    settings.max_attempts = max_attempts
    settings.updated_at = _now(uow)
    uow.session.flush()
    audit.record(uow, tenant_id, actor=actor, action="payouts.settings_changed", object_type="payout_settings",
                 object_id=tenant_id, before=before,
                 after={"approval_amount": approval_amount, "max_attempts": max_attempts})
    return settings


# ------------------------------------------------------------------------------------------ schedules


def set_schedule(uow: UnitOfWork, tenant_id: str, *, party_kind: PartyKind | str, party_id: str, currency: str,
                 interval: ScheduleInterval | str, weekday: int | None = None, threshold_amount: int | None = None,
                 minimum_balance: int = 0, approval_amount: int | None = None,
                 payout_account_id: str | None = None) -> PayoutSchedule:
    """Create or replace the party's payout schedule."""
    kind = _check_party(uow, tenant_id, party_kind, party_id)
    _check_currency(currency)
    try:
        every = ScheduleInterval(interval)
    except ValueError:
        raise InvalidRequest("interval is manual, daily, weekly or threshold.", code="invalid_interval",
                             param="interval") from None
    if every is ScheduleInterval.WEEKLY:
        if weekday is None or not 0 <= weekday <= 6:
            raise InvalidRequest("A weekly schedule names a weekday, 0 (Monday) to 6.", code="invalid_weekday",
                                 param="weekday")
    else:
        weekday = None
    if every is ScheduleInterval.THRESHOLD:
        if threshold_amount is None:
            raise InvalidRequest("A threshold schedule names its threshold_amount.", code="invalid_threshold",
                                 param="threshold_amount")
        check_amount(threshold_amount, allow_zero=False, allow_negative=False)
        if threshold_amount <= minimum_balance:
            raise InvalidRequest("threshold_amount must exceed minimum_balance.", code="invalid_threshold",
                                 param="threshold_amount")
    else:
        threshold_amount = None
    check_amount(minimum_balance, allow_negative=False)
    if approval_amount is not None:
        check_amount(approval_amount, allow_negative=False)
    if payout_account_id is not None:
        account = get_payout_account(uow, tenant_id, payout_account_id)
        if (account.party_kind, account.party_id, account.currency) != (kind.value, party_id, currency):
            raise InvalidRequest("The payout account belongs to another party or currency.",
                                 code="payout_account_mismatch", param="payout_account_id")
    now = _now(uow)
    schedule = uow.session.scalar(select(PayoutSchedule).where(
        PayoutSchedule.tenant_id == tenant_id, PayoutSchedule.party_kind == kind.value,
        PayoutSchedule.party_id == party_id).with_for_update())
    if schedule is None:
        schedule = PayoutSchedule(id=uow.ids.new("payout_schedule"), tenant_id=tenant_id, party_kind=kind.value,
                                  party_id=party_id, last_run_on=None, created_at=now)
        uow.session.add(schedule)
    schedule.currency = currency
    schedule.interval = every.value
    schedule.weekday = weekday
    schedule.threshold_amount = threshold_amount
    schedule.minimum_balance = minimum_balance
    schedule.approval_amount = approval_amount
    schedule.payout_account_id = payout_account_id
    schedule.updated_at = now
    uow.session.flush()
    return schedule


def get_schedule(uow: UnitOfWork, tenant_id: str, party_kind: PartyKind | str, party_id: str) -> PayoutSchedule:
    schedule = uow.session.scalar(select(PayoutSchedule).where(
        PayoutSchedule.tenant_id == tenant_id, PayoutSchedule.party_kind == str(party_kind),
        PayoutSchedule.party_id == party_id))
    if schedule is None:
        raise NotFound("This party has no payout schedule.", code="payout_schedule_not_found", param="party_id")
    return schedule


def schedule_due(schedule: PayoutSchedule, business_date: date) -> bool:
    """Whether a daily or weekly schedule pays out on ``business_date`` (pure; threshold checks the balance).

    Weekly: due on the first business day on or after the weekday, once per week (``last_run_on``)."""
    if schedule.interval == ScheduleInterval.DAILY:
        return schedule.last_run_on is None or schedule.last_run_on < business_date
    if schedule.interval == ScheduleInterval.WEEKLY and schedule.weekday is not None:
        latest = business_date - timedelta(days=(business_date.weekday() - schedule.weekday) % 7)
        baseline = schedule.last_run_on or (schedule.created_at.date() - timedelta(days=1))
        return latest > baseline
    return schedule.interval == ScheduleInterval.THRESHOLD


# ------------------------------------------------------------------------------------------ balances


def available_account(uow: UnitOfWork, tenant_id: str, kind: PartyKind, party_id: str, currency: str, *,
                      lock: bool = False) -> Account | None:
    query = select(Account).where(Account.tenant_id == tenant_id,
                                  Account.code == party_account_code(kind, party_id, Bucket.AVAILABLE),
                                  Account.currency == currency)
    if lock:
        query = query.with_for_update().execution_options(populate_existing=True)
    return uow.session.scalar(query)


def available_balance(uow: UnitOfWork, tenant_id: str, *, party_kind: PartyKind, party_id: str,
                      currency: str) -> int:
    """What the party may withdraw now: its available balance less payouts in flight."""
    account = available_account(uow, tenant_id, party_kind, party_id, currency)
    return 0 if account is None else ledger.balances(account).available


def custody_account(uow: UnitOfWork, tenant_id: str, currency: str) -> str:
    return ensure_account(uow, tenant_id, AccountSpec(bank_account_code(CUSTODY_BANK_ACCOUNT), AccountType.ASSET,
                                                      BalanceRule.NONE), currency)


# ------------------------------------------------------------------------------------------ payouts


def request_payout(uow: UnitOfWork, tenant_id: str, *, party_kind: PartyKind | str, party_id: str, amount: int,
                   currency: str, payout_account_id: str | None = None, description: str = "",
                   requested_by: Principal | None = None, automatic_key: str | None = None) -> Payout:
    """Record a payout and hold its amount; above the approval amount it is parked for approval.

    Raises ``insufficient_available_balance`` (nothing written) when the amount exceeds what is available,
    and, before that, the gate's refusals (``gate``): ``party_not_verified``, ``payout_limit_exceeded``,
    ``beneficiary_sanctioned``. A beneficiary whose screening waits for a review parks the payout.
    """
    from finloop.payouts import gate

    kind = _check_party(uow, tenant_id, party_kind, party_id)
    _check_currency(currency)
    check_amount(amount, allow_zero=False, allow_negative=False)
    if len(description) > 200 or "\x00" in description:
        raise InvalidRequest("description is at most 200 characters.", code="invalid_text", param="description")
    tier = gate.check_party(uow, tenant_id, kind, party_id)
    gate.check_limits(uow, tenant_id, kind, party_id, currency, amount, tier)
    if payout_account_id is not None:
        target = get_payout_account(uow, tenant_id, payout_account_id)
        if (target.party_kind, target.party_id, target.currency) != (kind.value, party_id, currency):
            raise InvalidRequest("The payout account belongs to another party or currency.",
                                 code="payout_account_mismatch", param="payout_account_id")
        if target.status != "active":
            raise InvalidRequest("The payout account is disabled.", code="payout_account_disabled",
                                 param="payout_account_id")
    else:
        found = _default_account(uow, tenant_id, kind, party_id, currency)
        if found is None:
            raise InvalidRequest(f"The party has no active {currency} payout account.",
                                 code="payout_account_required", param="payout_account_id")
        target = found
    source = available_account(uow, tenant_id, kind, party_id, currency)
    available = 0
    custody = None
    if source is not None:
        # Lock both accounts in id order (the ledger's order, so no deadlock), then read what is available.
        custody = custody_account(uow, tenant_id, currency)
        uow.session.scalars(select(Account).where(Account.id.in_(sorted({source.id, custody})))
                            .order_by(Account.id).with_for_update()
                            .execution_options(populate_existing=True)).all()
        available = ledger.balances(source).available
    if source is None or custody is None or amount > available:
        raise InvalidRequest(f"At most {available} {currency} is available for payout.",
                             code="insufficient_available_balance", param="amount",
                             details={"available": available})
    screened = gate.screen_beneficiary(uow, target)
    if screened is not None and screened[1] is gate.Verdict.HIT:
        raise gate.refuse_sanctioned(screened[0])
    payout_id = uow.ids.new("merchant_payout")
    hold, _ = ledger.create_hold(
        uow, tenant_id, key=f"payout:{payout_id}", debit_account_id=source.id,
        credit_account_id=custody, amount=amount, currency_code=currency,
        description=f"payout {payout_id}",
        metadata={"payout_id": payout_id, "party_kind": kind.value, "party_id": party_id})
    now = _now(uow)
    principal = requested_by or system_principal(tenant_id, "payouts")
    payout = Payout(
        id=payout_id, tenant_id=tenant_id, party_kind=kind.value, party_id=party_id, payout_account_id=target.id,
        amount=amount, currency=currency, status=PayoutStatus.APPROVED.value, description=description,
        is_automatic=automatic_key is not None, automatic_key=automatic_key, hold_id=hold.id, approval_id=None,
        screening_id=None, requested_by=principal.actor[:60], attempts=0, next_attempt_at=now, bank_reference=None,
        error_code=None,
        error_message=None, executed_on=None, returned_on=None, post_entry_id=None, return_entry_id=None,
        created_at=now, updated_at=now)
    uow.session.add(payout)
    uow.session.flush()
    if screened is not None and screened[1] is gate.Verdict.PENDING:
        park_on_screening(uow, payout, screened[0])
    threshold = _approval_amount(uow, tenant_id, kind, party_id)
    if threshold is not None and amount > threshold:
        _park(uow, payout, principal)
    log.info("payout.requested", tenant_id=tenant_id, payout_id=payout.id, amount=amount, currency=currency,
             status=payout.status)
    return payout


def _approval_amount(uow: UnitOfWork, tenant_id: str, kind: PartyKind, party_id: str) -> int | None:
    schedule = uow.session.scalar(select(PayoutSchedule).where(
        PayoutSchedule.tenant_id == tenant_id, PayoutSchedule.party_kind == kind.value,
        PayoutSchedule.party_id == party_id))
    if schedule is not None and schedule.approval_amount is not None:
        return schedule.approval_amount
    return get_settings(uow, tenant_id).approval_amount


def _park(uow: UnitOfWork, payout: Payout, principal: Principal) -> None:
    from finloop.tenancy import service as tenancy

    principal.require("approvals.request")
    approval = tenancy.park_for_approval(
        uow, payout.tenant_id, requested_by=principal.user_id or principal.actor, actor=principal.actor,
        action=APPROVAL_ACTION, required_role=Role.FINANCE, object_type="payout", object_id=payout.id,
        payload={"party_kind": payout.party_kind, "party_id": payout.party_id, "amount": payout.amount,
                 "currency": payout.currency})
    payout.status = PayoutStatus.PENDING_APPROVAL.value
    payout.approval_id = approval.id
    payout.next_attempt_at = _now(uow) + APPROVAL_RECHECK


def park_on_screening(uow: UnitOfWork, payout: Payout, screening_id: str) -> None:
    """Park a payout until its beneficiary's screening is reviewed (``pending_approval``, the amount held):
    ``payouts.process`` looks at the screening again every few minutes."""
    payout.screening_id = screening_id
    payout.status = PayoutStatus.PENDING_APPROVAL.value
    payout.next_attempt_at = _now(uow) + APPROVAL_RECHECK
    payout.updated_at = _now(uow)


def check_payable(uow: UnitOfWork, tenant_id: str, party_kind: PartyKind | str, party_id: str) -> str | None:
    """The party's risk tier when it may be paid out to; raises ``party_not_verified`` (422) otherwise."""
    from finloop.payouts import gate

    return gate.check_party(uow, tenant_id, _check_party(uow, tenant_id, party_kind, party_id), party_id)


def get_payout(uow: UnitOfWork, tenant_id: str, payout_id: str, *, lock: bool = False) -> Payout:
    query = select(Payout).where(Payout.tenant_id == tenant_id, Payout.id == payout_id)
    if lock:
        query = query.with_for_update().execution_options(populate_existing=True)
    payout = uow.session.scalar(query)
    if payout is None:
        raise NotFound(f"No such payout: {payout_id[:40]}.", code="payout_not_found", param="payout_id")
    return payout


def list_payouts(uow: UnitOfWork, tenant_id: str, *, status: str | None = None, party_kind: str | None = None,
                 party_id: str | None = None, after: str | None = None, limit: int = 50) -> list[Payout]:
    """Up to ``limit + 1`` payouts, newest first."""
    query = select(Payout).where(Payout.tenant_id == tenant_id)
    if status:
        query = query.where(Payout.status == status)
    if party_kind:
        query = query.where(Payout.party_kind == party_kind)
    if party_id:
        query = query.where(Payout.party_id == party_id)
    if after:
        query = query.where(Payout.id < after)
    return list(uow.session.scalars(query.order_by(Payout.id.desc()).limit(limit + 1)))


def _move(uow: UnitOfWork, payout: Payout, target: PayoutStatus) -> None:
    check_move(payout.status, target, payout.id)
    payout.status = target.value
    payout.updated_at = _now(uow)


def cancel_payout(uow: UnitOfWork, tenant_id: str, payout_id: str) -> Payout:
    """Cancel a payout not yet sent: the hold is voided, the money is available again."""
    payout = get_payout(uow, tenant_id, payout_id, lock=True)
    if PayoutStatus(payout.status) not in CANCELABLE:
        raise Conflict(f"Payout {payout.id} is {payout.status}; only a payout not yet sent can be canceled.",
                       code="payout_state_conflict", param="payout_id", details={"status": payout.status})
    _move(uow, payout, PayoutStatus.CANCELED)
    ledger.void_hold(uow, tenant_id, payout.hold_id)
    payout.next_attempt_at = None
    payout.error_code = "canceled"
    return payout


def settle_parked_payout(uow: UnitOfWork, payout: Payout) -> PayoutStatus:
    """Move a parked payout on once decided. Its beneficiary's screening first: confirmed → canceled
    (``beneficiary_sanctioned``), the hold voided; still waiting → looked at again later. Then its approval:
    approved (or none needed) → queued for sending; rejected → canceled, the hold voided. Undecided →
    unchanged, looked at again later. The payout must be locked by the caller."""
    from finloop.payouts import gate
    from finloop.tenancy import service as tenancy

    if payout.status != PayoutStatus.PENDING_APPROVAL.value:
        return PayoutStatus(payout.status)
    now = _now(uow)
    if payout.screening_id is not None:
        verdict = gate.verdict(uow, payout.tenant_id, payout.screening_id)
        if verdict is gate.Verdict.PENDING:
            payout.next_attempt_at = now + APPROVAL_RECHECK
            return PayoutStatus(payout.status)
        if verdict is gate.Verdict.HIT:
            _move(uow, payout, PayoutStatus.CANCELED)
            ledger.void_hold(uow, payout.tenant_id, payout.hold_id)
            payout.error_code = gate.BeneficiarySanctioned.code
            payout.next_attempt_at = None
            return PayoutStatus.CANCELED
    if payout.approval_id is None:  # parked only on the screening (or released by its risk case): cleared
        _move(uow, payout, PayoutStatus.APPROVED)
        payout.next_attempt_at = now
        return PayoutStatus.APPROVED
    approval = tenancy.get_approval(uow, payout.tenant_id, payout.approval_id)
    if approval.status == "approved" and approval.action == APPROVAL_ACTION:
        _move(uow, payout, PayoutStatus.APPROVED)
        payout.next_attempt_at = now
    elif approval.status in ("rejected", "expired", "canceled"):
        _move(uow, payout, PayoutStatus.CANCELED)
        ledger.void_hold(uow, payout.tenant_id, payout.hold_id)
        payout.error_code = "approval_rejected"
        payout.next_attempt_at = None
    else:
        payout.next_attempt_at = now + APPROVAL_RECHECK
    return PayoutStatus(payout.status)


def begin_send(uow: UnitOfWork, payout: Payout) -> PayoutRequest:
    """Record an attempt (approved → processing) and build the bank's request; the caller commits before
    calling the bank. The payout must be locked by the caller."""
    _move(uow, payout, PayoutStatus.PROCESSING)
    payout.attempts += 1
    payout.next_attempt_at = _now(uow) + _backoff(QUERY_LADDER_SECONDS, 1)
    account = get_payout_account(uow, payout.tenant_id, payout.payout_account_id)
    return PayoutRequest(reference=payout.id, amount=payout.amount, currency=payout.currency,
                         account_name=_unseal(uow, payout.tenant_id, account.holder_name_sealed),
                         account_number=_unseal(uow, payout.tenant_id, account.account_number_sealed),
                         bank_code=account.bank_code, description=f"payout {payout.id}")


def apply_bank_result(uow: UnitOfWork, payout: Payout, result: PayoutResult, *, queried: bool = False) -> PayoutStatus:
    """Apply the bank's answer to a payout in flight, forward only (a late or repeated answer changes nothing).

    Succeeded posts the hold (Dr available, Cr custody bank); a refusal voids it; a retryable failure (or
    "never seen" on a query) queues a retry with backoff until the attempts run out; processing or unknown
    waits for the next query."""
    if payout.status != PayoutStatus.PROCESSING.value:
        return PayoutStatus(payout.status)
    now = _now(uow)
    payout.updated_at = now
    if result.channel_ref and not payout.bank_reference:
        payout.bank_reference = result.channel_ref[:100]
    outcome = result.outcome
    if outcome is Outcome.SUCCEEDED:
        _move(uow, payout, PayoutStatus.SUCCEEDED)
        _, entry_id = ledger.post_hold(uow, payout.tenant_id, payout.hold_id)
        payout.post_entry_id = entry_id
        value_date = result.raw.get("value_date") if result.raw else None
        payout.executed_on = date.fromisoformat(value_date) if isinstance(value_date, str) else now.date()
        payout.next_attempt_at = None
        payout.error_code = payout.error_message = None
        _publish(uow, payout, "payout.paid")
    elif outcome in (Outcome.PROCESSING, Outcome.UNKNOWN):
        payout.next_attempt_at = now + _backoff(QUERY_LADDER_SECONDS, payout.attempts)
        if outcome is Outcome.UNKNOWN:
            payout.error_code = (result.error_code or "unknown")[:100]
    elif (outcome is Outcome.FAILED and result.retryable) or (outcome is Outcome.NOT_FOUND and queried):
        max_attempts = get_settings(uow, payout.tenant_id).max_attempts
        payout.error_code = (result.error_code or outcome.value)[:100]
        payout.error_message = (result.error_message or "")[:500] or None
        if payout.attempts < max_attempts:
            _move(uow, payout, PayoutStatus.APPROVED)
            payout.next_attempt_at = now + _backoff(RETRY_BACKOFF_SECONDS, payout.attempts)
        else:
            _fail(uow, payout, payout.error_code, payout.error_message)
    elif outcome is Outcome.NOT_FOUND:  # a send answered "not found": treat as unknown, query later
        payout.next_attempt_at = now + _backoff(QUERY_LADDER_SECONDS, payout.attempts)
    else:  # failed (not retryable), declined, canceled
        _fail(uow, payout, (result.error_code or outcome.value)[:100], (result.error_message or "")[:500] or None)
    log.info("payout.bank_answer", tenant_id=payout.tenant_id, payout_id=payout.id, outcome=outcome.value,
             status=payout.status, attempts=payout.attempts)
    return PayoutStatus(payout.status)


def _fail(uow: UnitOfWork, payout: Payout, code: str, message: str | None) -> None:
    _move(uow, payout, PayoutStatus.FAILED)
    ledger.void_hold(uow, payout.tenant_id, payout.hold_id)
    payout.error_code = code
    payout.error_message = message
    payout.next_attempt_at = None
    _publish(uow, payout, "payout.failed")


def apply_return(uow: UnitOfWork, payout: Payout, returned: PayoutReturn) -> bool:
    """The bank returned a paid payout: reverse it into the party's available balance (Dr custody bank,
    Cr available). Idempotent: a return seen twice posts once. Returns whether it changed anything."""
    if payout.status != PayoutStatus.SUCCEEDED.value:
        return False
    if returned.amount != payout.amount or returned.currency != payout.currency:
        log.warning("payout.return_mismatch", tenant_id=payout.tenant_id, payout_id=payout.id)
    kind = PartyKind(payout.party_kind)
    available = ensure_account(uow, payout.tenant_id, AccountSpec(
        party_account_code(kind, payout.party_id, Bucket.AVAILABLE), AccountType.LIABILITY,
        BalanceRule.DEBITS_MUST_NOT_EXCEED_CREDITS), payout.currency)
    posted = ledger.post_transfer(uow, payout.tenant_id, TransferSpec.simple(
        f"payout:{payout.id}:return", custody_account(uow, payout.tenant_id, payout.currency), available,
        payout.amount, payout.currency, f"payout {payout.id} returned by the bank",
        metadata={"payout_id": payout.id, "party_kind": payout.party_kind, "party_id": payout.party_id,
                  "bank_reference": returned.bank_reference}))
    _move(uow, payout, PayoutStatus.RETURNED)
    payout.return_entry_id = posted.id
    payout.returned_on = returned.returned_at.date()
    payout.error_code = returned.reason[:100]
    _publish(uow, payout, "payout.returned")
    return True


def find_payout(uow: UnitOfWork, payout_id: str, *, lock: bool = False) -> Payout | None:
    """A payout by id across tenants (a bank's return names only our reference)."""
    query = select(Payout).where(Payout.id == payout_id)
    if lock:
        query = query.with_for_update().execution_options(populate_existing=True)
    return uow.session.scalar(query)


def due_payouts(uow: UnitOfWork, *, now: datetime, limit: int) -> list[tuple[str, str, str]]:
    """(tenant, payout id, status) of parked, queued and in-flight payouts whose next step is due."""
    statuses = [PayoutStatus.PENDING_APPROVAL.value, PayoutStatus.APPROVED.value, PayoutStatus.PROCESSING.value]
    rows = uow.session.execute(select(Payout.tenant_id, Payout.id, Payout.status).where(
        Payout.status.in_(statuses), Payout.next_attempt_at <= now).order_by(Payout.next_attempt_at, Payout.id)
        .limit(limit)).all()
    return [(r[0], r[1], r[2]) for r in rows]


def _publish(uow: UnitOfWork, payout: Payout, type_: str) -> None:
    from finloop.webhooks import service as webhooks

    webhooks.publish_event(uow, payout.tenant_id, type=type_, data=payout_event_data(payout),
                           merchant_id=payout.party_id if payout.party_kind == PartyKind.MERCHANT else None)


def payout_event_data(payout: Payout) -> dict[str, Any]:
    return {"id": payout.id, "party_kind": payout.party_kind, "party_id": payout.party_id,
            "amount": payout.amount, "currency": payout.currency, "status": payout.status,
            "payout_account_id": payout.payout_account_id, "failure_code": payout.error_code}


# ------------------------------------------------------------------------------------------ automatic


def run_automatic(uow: UnitOfWork, tenant_id: str, business_date: date) -> list[Payout]:
    """Create the automatic payouts of every due schedule of the tenant for ``business_date``.

    Amount = available − minimum_balance (threshold schedules: only once available ≥ threshold), capped by the
    party's payout limits. Each is keyed ``auto:<schedule>:<date>``, so a re-run creates nothing twice. Each
    is decided by the risk engine like a manual payout (decline → skipped, review → parked with a case).
    A due payout that is not made is recorded as a skip under the same key, with its reason: the party is not
    verified, the limits are used up, there is no active payout account, a risk decline, or a refusal of the
    request itself (a sanctioned beneficiary)."""
    from finloop.core.errors import FinloopError
    from finloop.onboarding.service import PartyNotVerified
    from finloop.payouts import gate
    from finloop.risk import service as risk
    from finloop.risk import wiring as risk_wiring
    from finloop.risk.domain import Outcome as RiskOutcome

    created: list[Payout] = []
    schedules = list(uow.session.scalars(select(PayoutSchedule).where(
        PayoutSchedule.tenant_id == tenant_id, PayoutSchedule.interval != ScheduleInterval.MANUAL.value)
        .order_by(PayoutSchedule.id)))
    principal = system_principal(tenant_id, "job:payouts.automatic")
    for schedule in schedules:
        if not schedule_due(schedule, business_date):
            continue
        kind = PartyKind(schedule.party_kind)
        key = f"auto:{schedule.id}:{business_date.isoformat()}"
        if uow.session.scalar(select(Payout.id).where(Payout.tenant_id == tenant_id,
                                                      Payout.automatic_key == key)) is not None:
            continue
        if uow.session.scalar(select(PayoutSkip.id).where(PayoutSkip.tenant_id == tenant_id,
                                                          PayoutSkip.automatic_key == key)) is not None:
            continue
        available = available_balance(uow, tenant_id, party_kind=kind, party_id=schedule.party_id,
                                      currency=schedule.currency)
        if schedule.interval == ScheduleInterval.THRESHOLD and available < (schedule.threshold_amount or 0):
            continue
        amount = available - schedule.minimum_balance
        schedule.last_run_on = business_date
        if amount <= 0:
            continue

        def skip(reason: str, amount: int = amount, decision_id: str | None = None,
                 schedule: PayoutSchedule = schedule, key: str = key) -> None:
            _record_skip(uow, schedule, key=key, amount=amount, reason=reason, business_date=business_date,
                         decision_id=decision_id)

        try:
            tier = gate.check_party(uow, tenant_id, kind, schedule.party_id)
        except PartyNotVerified:
            skip(PartyNotVerified.code)
            continue
        allowed = gate.headroom(uow, tenant_id, kind, schedule.party_id, schedule.currency, tier).allows(amount)
        if allowed <= 0:
            skip("payout_limit_reached")
            continue
        amount = allowed
        account_id = schedule.payout_account_id
        if account_id is None:
            account = _default_account(uow, tenant_id, kind, schedule.party_id, schedule.currency)
            if account is None:
                skip("payout_account_required", amount)
                continue
            account_id = account.id
        event = {**risk_wiring.payout_event(party_kind=kind.value, party_id=schedule.party_id, amount=amount,
                                            currency=schedule.currency, payout_account_id=account_id),
                 "automatic": True}
        if tier is not None:
            event["risk_tier"] = tier
        decision = risk.decide(uow, tenant_id, event_type="payout", event=event, object_ref=schedule.party_id)
        if decision.outcome is RiskOutcome.DECLINE:
            skip(risk_wiring.DECLINED_CODE, amount, decision.id)
            continue
        savepoint = uow.session.begin_nested()
        try:
            payout = request_payout(
                uow, tenant_id, party_kind=kind, party_id=schedule.party_id, amount=amount,
                currency=schedule.currency, payout_account_id=account_id,
                description=f"automatic {schedule.interval} payout", requested_by=principal, automatic_key=key)
        except FinloopError as refused:
            savepoint.rollback()
            skip(refused.code[:60], amount, decision.id)
            continue
        savepoint.commit()
        if decision.outcome is RiskOutcome.REVIEW:
            risk_wiring.park_payout(uow, payout, decision)
        created.append(payout)
    uow.session.flush()
    return created


def _record_skip(uow: UnitOfWork, schedule: PayoutSchedule, *, key: str, amount: int, reason: str,
                 business_date: date, decision_id: str | None) -> PayoutSkip:
    skip = PayoutSkip(tenant_id=schedule.tenant_id, automatic_key=key, schedule_id=schedule.id,
                      party_kind=schedule.party_kind, party_id=schedule.party_id, amount=max(amount, 0),
                      currency=schedule.currency, reason=reason, decision_id=decision_id,
                      business_date=business_date, created_at=_now(uow))
    uow.session.add(skip)
    uow.session.flush()
    log.info("payout.automatic_skipped", tenant_id=schedule.tenant_id, party_kind=schedule.party_kind,
             party_id=schedule.party_id, reason=reason)
    return skip


def list_skips(uow: UnitOfWork, tenant_id: str, *, party_kind: str | None = None, party_id: str | None = None,
               reason: str | None = None, after: int | None = None, limit: int = 50) -> list[PayoutSkip]:
    """Up to ``limit + 1`` skipped automatic payouts, newest first."""
    query = select(PayoutSkip).where(PayoutSkip.tenant_id == tenant_id)
    if party_kind:
        query = query.where(PayoutSkip.party_kind == party_kind)
    if party_id:
        query = query.where(PayoutSkip.party_id == party_id)
    if reason:
        query = query.where(PayoutSkip.reason == reason)
    if after is not None:
        query = query.where(PayoutSkip.id < after)
    return list(uow.session.scalars(query.order_by(PayoutSkip.id.desc()).limit(limit + 1)))


# ------------------------------------------------------------------------------------------ reconciliation


def list_payouts_for_recon(uow: UnitOfWork, tenant_id: str, *, executed_on: date) -> list[PayoutRecord]:
    """The payouts the bank executed on ``executed_on`` (succeeded, or since returned), in id order."""
    rows = uow.session.scalars(select(Payout).where(Payout.tenant_id == tenant_id, Payout.executed_on == executed_on)
                               .order_by(Payout.id))
    return [_recon_record(p) for p in rows]


def list_payout_returns_for_recon(uow: UnitOfWork, tenant_id: str, *, returned_on: date) -> list[PayoutRecord]:
    """The payouts the bank gave back on ``returned_on`` (the money came back into the account), in id order."""
    rows = uow.session.scalars(select(Payout).where(Payout.tenant_id == tenant_id, Payout.returned_on == returned_on)
                               .order_by(Payout.id))
    return [_recon_record(p) for p in rows]


def _recon_record(payout: Payout) -> PayoutRecord:
    return PayoutRecord(payout.id, PartyKind(payout.party_kind), payout.party_id, payout.amount, payout.currency,
                        payout.status, payout.bank_reference, payout.executed_on)
