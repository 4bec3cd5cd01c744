"""An in-process sandbox bank that executes payouts, on simulated time.

It implements ``PayoutSender`` (``payout``, ``query_payout``) and adds ``poll_returns(since)``: the
returns that beneficiary banks sent back. Every outcome is drawn from a seeded random generator with
configurable shares, or taken from ``script`` (a queue of outcomes for the next payouts, for tests):

- ``success``: paid at once (a debit movement on the value date);
- ``fail``: refused for good (account closed): ``FAILED``, not retryable;
- ``retry``: refused for now (bank busy): ``FAILED``, retryable; nothing executed, the same reference
  may be sent again;
- ``delay``: accepted, ``PROCESSING`` until ``delay`` of simulated time has passed, then paid when queried;
- ``unknown``: paid, but the reply was lost (``UNKNOWN``): a query finds it paid;
- ``return``: paid, then returned ``return_after`` later (a credit movement, seen by ``poll_returns``).

A payout whose reference the bank has already accepted is answered with its current state: the bank never
pays one reference twice. ``movements`` is the account's history (value date, amount, reference,
direction) that tests and the demo turn into a bank statement. Account numbers are never kept in clear.
"""

from __future__ import annotations

import random
import threading
from collections import deque
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

from finloop.core.clock import Clock
from finloop.payments.connectors.base import Outcome, PayoutRequest, PayoutResult

OUTCOMES = ("success", "fail", "retry", "delay", "unknown", "return")


@dataclass(frozen=True, slots=True)
class BankBehaviour:
    """Shares of each outcome (the rest succeeds); ``return_share`` applies to payouts that succeed."""

    failure_share: float = 0.0
    retryable_share: float = 0.0
    delay_share: float = 0.0
    unknown_share: float = 0.0
    return_share: float = 0.0
    delay: timedelta = timedelta(hours=2)
    return_after: timedelta = timedelta(days=3)

    def __post_init__(self) -> None:
        shares = (self.failure_share, self.retryable_share, self.delay_share, self.unknown_share, self.return_share)
        if any(not 0.0 <= s <= 1.0 for s in shares) or sum(shares[:4]) > 1.0:
            raise ValueError("shares lie in [0, 1] and failure+retryable+delay+unknown is at most 1")


@dataclass(frozen=True, slots=True)
class BankMovement:
    value_date: date
    amount: int
    currency: str
    reference: str                   # our payout id, echoed by the bank
    direction: str                   # "debit": money from us; "credit": money to us
    kind: str                        # "payout" | "payout_return"
    bank_reference: str
    booked_at: datetime


@dataclass(frozen=True, slots=True)
class PayoutReturn:
    reference: str
    bank_reference: str
    amount: int
    currency: str
    returned_at: datetime
    reason: str


@dataclass(slots=True)
class _Transfer:
    reference: str
    amount: int
    currency: str
    bank_reference: str
    status: Outcome
    retryable: bool = False
    error_code: str | None = None
    resolve_at: datetime | None = None
    returns_after: timedelta | None = None
    executed_at: datetime | None = None
    returned_at: datetime | None = None
    account_last4: str = field(default="")


class SandboxBank:
    """The bank side of payouts. Thread-safe; deterministic for a seed and a sequence of calls."""

    def __init__(self, clock: Clock, *, seed: int = 0, behaviour: BankBehaviour | None = None,
                 name: str = "sandbox-bank") -> None:
        self.clock = clock
        self.behaviour = behaviour or BankBehaviour()
        self.name = name
        self.script: deque[str] = deque()
        self.movements: list[BankMovement] = []
        self.calls = 0
        self._random = random.Random(seed)
        self._transfers: dict[str, _Transfer] = {}
        self._lock = threading.Lock()
        self._sequence = 0

    def queue(self, *outcomes: str) -> None:
        """The outcomes of the next payouts, in order, before the random draw applies again."""
        for outcome in outcomes:
            if outcome not in OUTCOMES:
                raise ValueError(f"unknown outcome {outcome!r}; one of {OUTCOMES}")
        self.script.extend(outcomes)

    def _draw(self) -> str:
        if self.script:
            return self.script.popleft()
        b = self.behaviour
        roll = self._random.random()
        for name, share in (("fail", b.failure_share), ("retry", b.retryable_share), ("delay", b.delay_share),
                            ("unknown", b.unknown_share)):
            if roll < share:
                return name
            roll -= share
        return "return" if self._random.random() < b.return_share else "success"

    # -------------------------------------------------------------------------------- PayoutSender

    def payout(self, request: PayoutRequest) -> PayoutResult:
        with self._lock:
            self.calls += 1
            existing = self._transfers.get(request.reference)
            if existing is not None and not (existing.status is Outcome.FAILED and existing.retryable):
                return self._result(existing)
            now = self.clock.now()
            outcome = self._draw()
            self._sequence += 1
            transfer = _Transfer(request.reference, request.amount, request.currency,
                                 f"{self.name.upper()}-{self._sequence:08d}", Outcome.PROCESSING,
                                 account_last4=request.account_number[-4:])
            self._transfers[request.reference] = transfer
            if outcome == "fail":
                transfer.status, transfer.error_code = Outcome.FAILED, "account_closed"
            elif outcome == "retry":
                transfer.status, transfer.error_code, transfer.retryable = Outcome.FAILED, "bank_busy", True
            elif outcome == "delay":
                transfer.resolve_at = now + self.behaviour.delay
                if self._random.random() < self.behaviour.return_share:
                    transfer.returns_after = self.behaviour.return_after
            else:
                if outcome == "return":
                    transfer.returns_after = self.behaviour.return_after
                self._execute(transfer, now)
            result = self._result(transfer)
            if outcome == "unknown":
                return PayoutResult(Outcome.UNKNOWN, request.reference, error_code="timeout",
                                    error_message="The bank did not answer in time.", retryable=True)
            return result

    def query_payout(self, reference: str) -> PayoutResult:
        with self._lock:
            transfer = self._transfers.get(reference)
            if transfer is None:
                return PayoutResult(Outcome.NOT_FOUND, reference, error_code="not_found")
            now = self.clock.now()
            if transfer.status is Outcome.PROCESSING and transfer.resolve_at is not None \
                    and transfer.resolve_at <= now:
                self._execute(transfer, transfer.resolve_at)
            return self._result(transfer)

    # -------------------------------------------------------------------------------- returns

    def poll_returns(self, since: datetime) -> list[PayoutReturn]:
        """Returns whose return time lies in ``(since, now]``, oldest first (each books a credit movement
        the first time it is seen)."""
        now = self.clock.now()
        found = []
        with self._lock:
            for transfer in self._transfers.values():
                if transfer.executed_at is None or transfer.returns_after is None:
                    continue
                at = transfer.executed_at + transfer.returns_after
                if at > now:
                    continue
                if transfer.returned_at is None:
                    transfer.returned_at = at
                    self.movements.append(BankMovement(at.date(), transfer.amount, transfer.currency,
                                                       transfer.reference, "credit", "payout_return",
                                                       transfer.bank_reference, at))
                if at > since:
                    found.append(PayoutReturn(transfer.reference, transfer.bank_reference, transfer.amount,
                                              transfer.currency, at, "account_closed_by_beneficiary_bank"))
        return sorted(found, key=lambda r: (r.returned_at, r.reference))

    def statement(self, on: date) -> list[BankMovement]:
        """The movements with value date ``on``."""
        with self._lock:
            return [m for m in self.movements if m.value_date == on]

    # -------------------------------------------------------------------------------- internals

    def _execute(self, transfer: _Transfer, at: datetime) -> None:
        transfer.status = Outcome.SUCCEEDED
        transfer.executed_at = at
        self.movements.append(BankMovement(at.date(), transfer.amount, transfer.currency, transfer.reference,
                                           "debit", "payout", transfer.bank_reference, at))

    @staticmethod
    def _result(transfer: _Transfer) -> PayoutResult:
        raw: dict[str, str] = {"bank_reference": transfer.bank_reference}
        if transfer.executed_at is not None:
            raw["value_date"] = transfer.executed_at.date().isoformat()
        message = {"account_closed": "The beneficiary account is closed.",
                   "bank_busy": "The bank is busy; try again later."}.get(transfer.error_code or "")
        return PayoutResult(transfer.status, transfer.reference, channel_ref=transfer.bank_reference,
                            error_code=transfer.error_code, error_message=message, retryable=transfer.retryable,
                            raw=raw)
