"""Payout orchestration with the bank call between two transactions: record → call → apply.

No bank call ever happens inside a transaction: ``send`` commits the attempt (approved → processing)
first, calls the bank, and applies the answer in a second transaction. An answer whose outcome is not
known (timeout, retryable refusal) is followed by a query before anything else is done, so the bank can
never pay twice. ``process`` is one round of the ``payouts.process`` job: parked approvals, due sends,
due queries, then the bank's returns.

The bank is process-wide: the sandbox bank by default (on the database's clock), or the one given to
``use_bank`` (tests and the demo).
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date, datetime, timedelta
from typing import Protocol, runtime_checkable

import structlog

from finloop.core.errors import ExternalServiceError
from finloop.db.uow import Database
from finloop.payments.connectors.base import Outcome, PayoutRequest, PayoutResult, PayoutSender
from finloop.payouts import service
from finloop.payouts.bank_sandbox import PayoutReturn, SandboxBank
from finloop.payouts.models import Payout
from finloop.payouts.state import PayoutStatus
from finloop.settlement.accounts import PartyKind
from finloop.tenancy.service import Principal

log = structlog.get_logger("finloop.payouts")

#: What a bank call may raise when the bank cannot be reached or answers nonsense.
_BANK_ERRORS = (ExternalServiceError, OSError, TimeoutError, ValueError)

#: How far back each round asks the bank for returns (applying a return twice changes nothing).
RETURN_LOOKBACK = timedelta(days=45)


@runtime_checkable
class ReturnsSource(Protocol):
    def poll_returns(self, since: datetime) -> list[PayoutReturn]: ...


_lock = threading.Lock()
_bank: PayoutSender | None = None
_default_banks: weakref.WeakKeyDictionary[Database, SandboxBank] = weakref.WeakKeyDictionary()


def bank(db: Database) -> PayoutSender:
    """The bank payouts go through: the one given to ``use_bank``, else a sandbox bank (always paying) of
    the database, on its clock."""
    with _lock:
        if _bank is not None:
            return _bank
        found = _default_banks.get(db)
        if found is None:
            found = _default_banks[db] = SandboxBank(db.clock)
        return found


@contextmanager
def use_bank(sender: PayoutSender) -> Iterator[PayoutSender]:
    """Send every payout through ``sender`` meanwhile (tests, the demo)."""
    global _bank
    with _lock:
        previous, _bank = _bank, sender
    try:
        yield sender
    finally:
        with _lock:
            _bank = previous


def request_payout(db: Database, tenant_id: str, *, party_kind: PartyKind, party_id: str, amount: int,
                   currency: str, payout_account_id: str | None = None, requested_by: Principal | None = None,
                   send: bool = True) -> str:
    """Gate, decide (risk), request a payout in one transaction and (unless parked) send it at once.

    A party that is not verified raises ``party_not_verified`` (422) with nothing written (the tenant's
    onboarding policy may turn the gate off); the party's risk tier goes into the decided event. A risk
    decline raises ``risk_declined`` (422) with only the decision kept (no payout, no hold); a review parks
    the payout (``pending_approval``, the amount held) until its case is closed; so does a beneficiary
    whose screening has a potential match, until the screening is reviewed."""
    from finloop.risk import service as risk
    from finloop.risk import wiring as risk_wiring
    from finloop.risk.domain import Outcome as RiskOutcome

    with db.uow() as uow:
        # The gate first: a party that is not verified is refused before anything (even a decision) is written.
        tier = service.check_payable(uow, tenant_id, party_kind, party_id)
        event = risk_wiring.payout_event(party_kind=str(party_kind), party_id=party_id, amount=amount,
                                         currency=currency, payout_account_id=payout_account_id)
        if tier is not None:
            event["risk_tier"] = tier
        decision = risk.decide(uow, tenant_id, event_type="payout", event=event, object_ref=party_id[:100] or None)
        savepoint = uow.session.begin_nested()
        payout = service.request_payout(uow, tenant_id, party_kind=party_kind, party_id=party_id, amount=amount,
                                        currency=currency, payout_account_id=payout_account_id,
                                        requested_by=requested_by)
        if decision.outcome is RiskOutcome.DECLINE:
            savepoint.rollback()
            uow.commit()
            raise risk_wiring.declined_error(decision)
        savepoint.commit()
        if decision.outcome is RiskOutcome.REVIEW:
            risk_wiring.park_payout(uow, payout, decision)
        payout_id, status = payout.id, payout.status
        uow.commit()
    if send and status == PayoutStatus.APPROVED.value:
        send_payout(db, tenant_id, payout_id)
    return payout_id


def _call(sender: PayoutSender, request: PayoutRequest) -> PayoutResult:
    try:
        return sender.payout(request)
    except _BANK_ERRORS as error:  # a transport failure: the outcome is unknown, query before anything else
        log.warning("payout.send_error", payout_id=request.reference, error=type(error).__name__)
        return PayoutResult(Outcome.UNKNOWN, request.reference, error_code="bank_unreachable")


def _query(sender: PayoutSender, reference: str) -> PayoutResult:
    try:
        return sender.query_payout(reference)
    except _BANK_ERRORS as error:
        log.warning("payout.query_error", payout_id=reference, error=type(error).__name__)
        return PayoutResult(Outcome.UNKNOWN, reference, error_code="bank_unreachable")


def send_payout(db: Database, tenant_id: str, payout_id: str) -> PayoutStatus:
    """Send one approved payout: record the attempt, call the bank, apply its answer."""
    with db.uow() as uow:
        payout = service.get_payout(uow, tenant_id, payout_id, lock=True)
        if payout.status != PayoutStatus.APPROVED.value:
            return PayoutStatus(payout.status)
        request = service.begin_send(uow, payout)
        uow.commit()
    sender = bank(db)
    result = _call(sender, request)
    queried = False
    if result.outcome is Outcome.UNKNOWN or (result.outcome is Outcome.FAILED and result.retryable):
        # Never resend before knowing: the bank may have paid despite the answer.
        answer = _query(sender, payout_id)
        if answer.outcome is not Outcome.UNKNOWN:
            result, queried = answer, True
    return _apply(db, tenant_id, payout_id, result, queried=queried)


def query_payout(db: Database, tenant_id: str, payout_id: str) -> PayoutStatus:
    """Ask the bank about a payout in flight and apply the answer."""
    return _apply(db, tenant_id, payout_id, _query(bank(db), payout_id), queried=True)


def _apply(db: Database, tenant_id: str, payout_id: str, result: PayoutResult, *, queried: bool) -> PayoutStatus:
    with db.uow() as uow:
        payout = service.get_payout(uow, tenant_id, payout_id, lock=True)
        status = service.apply_bank_result(uow, payout, result, queried=queried)
        uow.commit()
    return status


def settle_approval(db: Database, tenant_id: str, payout_id: str) -> PayoutStatus:
    with db.uow() as uow:
        payout = service.get_payout(uow, tenant_id, payout_id, lock=True)
        status = service.settle_parked_payout(uow, payout)
        uow.commit()
    return status


def poll_returns(db: Database, *, since: datetime | None = None) -> int:
    """Ask the bank for returns and reverse each returned payout; returns how many were reversed."""
    sender = bank(db)
    if not isinstance(sender, ReturnsSource):
        return 0
    since = since or db.clock.now() - RETURN_LOOKBACK
    try:
        returns = sender.poll_returns(since)
    except _BANK_ERRORS as error:
        log.warning("payout.returns_error", error=type(error).__name__)
        return 0
    reversed_ = 0
    for returned in returns:
        with db.uow() as uow:
            payout: Payout | None = service.find_payout(uow, returned.reference, lock=True)
            if payout is not None and service.apply_return(uow, payout, returned):
                reversed_ += 1
                uow.commit()
    return reversed_


def process(db: Database, *, limit: int = 500) -> int:
    """One round: settle decided approvals, send due payouts, query those in flight, poll returns.

    Returns how many payouts it touched."""
    with db.uow(read_only=True) as uow:
        due = service.due_payouts(uow, now=uow.clock.now(), limit=limit)
    touched = 0
    for tenant_id, payout_id, status in due:
        if status == PayoutStatus.PENDING_APPROVAL.value:
            status = settle_approval(db, tenant_id, payout_id).value
        if status == PayoutStatus.APPROVED.value:
            send_payout(db, tenant_id, payout_id)
        elif status == PayoutStatus.PROCESSING.value:
            query_payout(db, tenant_id, payout_id)
        touched += 1
    return touched + poll_returns(db)


def run_automatic(db: Database, tenant_id: str, business_date: date) -> list[str]:
    """Create the automatic payouts for a tenant's business date (they are sent by ``process``)."""
    with db.uow() as uow:
        created = [p.id for p in service.run_automatic(uow, tenant_id, business_date)]
        uow.commit()
    return created
