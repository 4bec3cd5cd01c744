"""The simulated providers' shared brain: every sandbox channel keeps its transactions here.

A provider's sandbox router (``finloop.payments.connectors.<provider>.sandbox``) only translates its
wire to and from these calls; what happens (success, decline, outage, timeout, fees, notifications,
customer actions, refunds, disputes, payouts, the daily bill) is decided here, provider-agnostic.

Invariants owned here:
- deterministic: every random draw comes from one ``random.Random(seed)``; the same seed and the same
  sequence of calls give the same transactions, failures, latencies and notifications;
- thread-safe: one re-entrant lock guards all state, so a served sandbox may take concurrent requests;
- time is the injected clock: outages, degraded windows, customer actions, async refunds and
  notification timing are in simulated time; each call first lets the engine catch up to ``clock.now()``;
- money is exact: integer minor units, fees ``round_minor(amount * fee_rate, <named Rounding>) + fee_fixed``,
  fee returned on refunds cumulative so a full refund returns exactly the fee;
- a refund never takes more than was captured (succeeded plus in-flight refunds count);
- a reference is unique per channel: repeating it with the same amount and currency returns the
  existing transaction (or repeats its failure); with another amount it fails ``duplicate_reference``;
- a FAILED or CLOSED transaction never takes money; a timed-out call may still have succeeded, and a
  later ``query`` shows the truth;
- card numbers are never stored: only their last four digits.
"""

from __future__ import annotations

import contextlib
import heapq
import math
import random
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from contextvars import ContextVar
from dataclasses import asdict, dataclass, field, fields, replace
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from enum import StrEnum
from fractions import Fraction
from typing import Any

from finloop.core.clock import Clock
from finloop.core.money import Rounding, round_minor


class TxStatus(StrEnum):
    WAITING = "waiting"          # created, the customer has not acted yet (QR/H5/app)
    AUTHORIZED = "authorized"    # card authorised, not captured
    SUCCEEDED = "succeeded"
    FAILED = "failed"            # declined or errored; never takes money
    CLOSED = "closed"            # closed/cancelled before paying
    REFUNDED = "refunded"        # fully refunded (partial refunds keep SUCCEEDED)


#: Methods where the customer completes the payment at the channel, later, in simulated time.
ACTION_METHODS = frozenset({"qr", "h5", "app", "mini_program"})

#: Card numbers that force an outcome regardless of the profile (like the big acquirers' test cards).
#: Any other number follows the channel's profile.
TEST_CARDS: dict[str, tuple[str, str] | None] = {
    "4000000000000077": None,                                  # always succeeds
    "4000000000000002": ("declined", "card_declined"),
    "4000000000009995": ("declined", "insufficient_funds"),
    "4000000000000069": ("declined", "expired_card"),
    "4000000000000119": ("error", "processing_error"),
}

DECLINE_CODES = ("card_declined", "insufficient_funds", "do_not_honor", "expired_card", "risk_rejected")
ERROR_CODES = ("system_error", "rate_limited", "issuer_unavailable")

#: In realtime mode no single simulated latency is slept longer than this.
REALTIME_LATENCY_CAP_MS = 2000


class SandboxFailure(Exception):
    """The provider refused or broke. ``kind``:

    - "declined": the customer's reason (insufficient funds, card declined), not retryable;
    - "error": a retryable channel error (system error, rate limit);
    - "unavailable": an outage: the request was NOT processed (answer 503);
    - "timeout": the reply never comes; the router answers 504 (or, in realtime, the app holds the
      response past the client's timeout); the transaction may exist all the same
      (``ChannelProfile.timeout_success_share``);
    - "invalid": the request itself is wrong (unknown reference ``not_found``, ``duplicate_reference``,
      ``invalid_state``, ``refund_exceeds_captured``, ``invalid_amount``); a 4xx, not retryable.
    """

    KINDS = ("declined", "error", "unavailable", "timeout", "invalid")

    def __init__(self, kind: str, code: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind
        self.code = code
        self.message = message

    def __repr__(self) -> str:
        return f"SandboxFailure({self.kind!r}, {self.code!r}, {self.message!r})"


@dataclass
class Outage:
    start: datetime
    end: datetime
    kind: str = "unavailable"    # "unavailable" (503 at once) or "timeout" (hangs)


@dataclass
class ChannelProfile:
    """How one sandbox channel behaves. Shares are Decimal probabilities in [0, 1]."""

    success_share: Decimal = Decimal("0.98")            # of attempts that are not otherwise broken
    decline_share: Decimal = Decimal("0.5")             # of the failures, the share that are declines
    timeout_share: Decimal = Decimal("0")               # attempts whose reply is lost
    timeout_success_share: Decimal = Decimal("0.5")     # of those, the share that succeeded at the channel
    latency_ms: tuple[int, int, int] = (40, 80, 400)    # min, median, p99 of a log-normal-ish draw
    outages: list[Outage] = field(default_factory=list)
    degraded: list[tuple[datetime, datetime, Decimal]] = field(default_factory=list)  # (start, end, success_share)
    fee_rate: Decimal = Decimal("0.006")
    fee_fixed: int = 0
    fee_rounding: str = "half_up"                      # a finloop.core.money.Rounding name
    notify_delay_seconds: tuple[int, int] = (1, 5)
    notify_duplicate_share: Decimal = Decimal("0")
    notify_loss_share: Decimal = Decimal("0")
    notify_reorder: bool = False                       # deliver a batch of due notifications shuffled
    customer_pays_share: Decimal = Decimal("0.95")     # for action flows: the customer completes
    customer_delay_seconds: tuple[int, int] = (5, 60)
    refund_async: bool = False                         # refunds answer PROCESSING and notify later
    # --- additions beyond the first spec (all defaulted) ---
    refund_delay_seconds: tuple[int, int] = (5, 120)   # async refunds complete after this
    refund_failure_share: Decimal = Decimal("0")       # async refunds that end "failed"
    payout_success_share: Decimal = Decimal("0.99")
    payout_async: bool = True                          # payouts answer "processing" and settle later
    payout_delay_seconds: tuple[int, int] = (30, 300)
    payout_fee_fixed: int = 0
    dispute_evidence_days: int = 7

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: Decimals as strings, datetimes ISO 8601."""
        data = asdict(self)
        data["outages"] = [{"start": o.start.isoformat(), "end": o.end.isoformat(), "kind": o.kind}
                           for o in self.outages]
        data["degraded"] = [{"start": s.isoformat(), "end": e.isoformat(), "success_share": str(share)}
                            for s, e, share in self.degraded]
        return {key: (str(value) if isinstance(value, Decimal) else list(value) if isinstance(value, tuple)
                      else value) for key, value in data.items()}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], base: ChannelProfile | None = None) -> ChannelProfile:
        """A profile from JSON-ish values; keys absent keep ``base``'s (or the default) values.
        Unknown keys raise ``ValueError``."""
        profile = replace(base) if base is not None else cls()
        known = {f.name: f for f in fields(cls)}
        for key, value in data.items():
            if key not in known:
                raise ValueError(f"unknown profile field {key!r}")
            current = getattr(profile, key)
            if key == "outages":
                new: Any = [Outage(start=_aware(o["start"]), end=_aware(o["end"]),
                                   kind=str(o.get("kind", "unavailable"))) if isinstance(o, Mapping) else o
                            for o in value]
                for outage in new:
                    if outage.kind not in ("unavailable", "timeout"):
                        raise ValueError("outage kind is 'unavailable' or 'timeout'")
            elif key == "degraded":
                new = [(_aware(d["start"]), _aware(d["end"]), _share(d["success_share"]))
                       if isinstance(d, Mapping) else (_aware(d[0]), _aware(d[1]), _share(d[2])) for d in value]
            elif isinstance(current, bool):
                if not isinstance(value, bool):
                    raise ValueError(f"{key} is a boolean")
                new = value
            elif isinstance(current, Decimal):
                new = _share(value) if key.endswith("_share") else _decimal(value)
            elif isinstance(current, tuple):
                new = tuple(_int(v) for v in value)
                if len(new) != len(current) or list(new) != sorted(new) or new[0] < 0:
                    raise ValueError(f"{key} is {len(current)} non-negative ascending integers")
            elif isinstance(current, int):
                new = _int(value)
            else:
                new = str(value)
            setattr(profile, key, new)
        Rounding(profile.fee_rounding)  # a bad name fails here, not at the first payment
        return profile


def _int(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"{value!r} is not an integer")
    return value


def _decimal(value: object) -> Decimal:
    if isinstance(value, float | bool):
        raise ValueError("give decimals as strings, never floats")
    try:
        result = Decimal(str(value))
    except ArithmeticError as error:
        raise ValueError(f"{value!r} is not a decimal") from error
    if not result.is_finite():
        raise ValueError(f"{value!r} is not finite")
    return result


def _share(value: object) -> Decimal:
    result = _decimal(value)
    if not Decimal(0) <= result <= Decimal(1):
        raise ValueError(f"a share is between 0 and 1, not {value!r}")
    return result


def _aware(value: object) -> datetime:
    moment = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


@dataclass(frozen=True)
class Transaction:
    channel: str
    reference: str               # the merchant's order number (our attempt id)
    channel_ref: str
    amount: int
    currency: str
    method: str
    status: TxStatus
    captured: int
    refunded: int
    fee: int
    created_at: datetime
    paid_at: datetime | None
    notify_url: str | None
    error_code: str | None = None
    card_last4: str | None = None
    closed_at: datetime | None = None
    error_kind: str | None = None  # for FAILED: "declined" (the customer's reason) or "error" (the channel's)


@dataclass(frozen=True)
class RefundRecord:
    channel: str
    refund_reference: str
    reference: str
    channel_refund_ref: str
    amount: int
    status: str                  # "processing", "succeeded", "failed"
    fee_returned: int
    created_at: datetime
    succeeded_at: datetime | None
    currency: str = ""
    channel_ref: str = ""        # the refunded payment's channel_ref
    error_code: str | None = None


@dataclass(frozen=True)
class PayoutRecord:
    channel: str
    reference: str
    channel_ref: str
    amount: int
    currency: str
    status: str                  # "processing", "succeeded", "failed"
    fee: int
    created_at: datetime
    completed_at: datetime | None
    account_last4: str
    error_code: str | None = None


@dataclass(frozen=True)
class PendingNotification:
    """A notification the provider will send at ``due_at`` to ``url``; the provider's router formats it.

    Duplicates of one event share ``id`` (receivers de-duplicate on it); ``attempt`` counts redeliveries
    after a failed POST."""

    id: str
    channel: str
    kind: str                    # "payment", "refund", "dispute"
    url: str
    due_at: datetime
    transaction: Transaction | None = None
    refund: RefundRecord | None = None
    dispute: dict[str, Any] | None = None
    attempt: int = 0


@dataclass(frozen=True)
class BillLine:
    channel: str
    kind: str                    # "payment" or "refund"
    reference: str
    channel_ref: str
    refund_reference: str | None
    amount: int                  # positive for both kinds
    fee: int                     # payment: fee charged; refund: fee returned
    currency: str
    at: datetime
    #: The transaction's state when the bill is made: a payment refunded in part or whole since reads
    #: "refunded" (some layouts carry it; the reconciliation compares it with ours).
    status: str = "succeeded"


@dataclass
class _Latency:
    """What one served request spent, collected for the realtime middleware."""

    ms: int = 0
    timed_out: bool = False


#: Set by the sandbox app around each request in realtime mode; the engine adds its latency here.
_request_latency: ContextVar[_Latency | None] = ContextVar("sandbox_request_latency", default=None)


@contextlib.contextmanager
def latency_scope() -> Iterator[_Latency]:
    """Collect the simulated latency (and whether a timeout happened) of the engine calls made inside."""
    sink = _Latency()
    token = _request_latency.set(sink)
    try:
        yield sink
    finally:
        _request_latency.reset(token)


class SandboxEngine:
    """Thread-safe; one instance serves every channel of one sandbox server (or one test).

    ``advance_clock``: in simulated mode, when the clock has ``advance``, every call moves it by the
    drawn latency so a caller timing itself with the clock sees the latency. ``realtime``: latency is
    slept by the sandbox app instead (capped at ``REALTIME_LATENCY_CAP_MS``)."""

    def __init__(self, clock: Clock, *, seed: int = 0, profiles: dict[str, ChannelProfile] | None = None,
                 realtime: bool = False, advance_clock: bool = False, remember_unknown: bool = False) -> None:
        self.clock = clock
        self.seed = seed
        self.realtime = realtime
        #: A sandbox started after the charges were made (``finloop serve --sandbox`` over the demo's database)
        #: takes a refund of a charge it never saw as one of a charge it made: a real channel would remember it.
        self.remember_unknown = remember_unknown
        self.advance_clock = advance_clock and not realtime and hasattr(clock, "advance")
        self._rng = random.Random(seed)
        self._lock = threading.RLock()
        self._profiles: dict[str, ChannelProfile] = dict(profiles or {})
        self._txs: dict[tuple[str, str], Transaction] = {}
        self._failures: dict[tuple[str, str], SandboxFailure] = {}
        self._refunds: dict[tuple[str, str], RefundRecord] = {}
        self._refund_urls: dict[tuple[str, str], str | None] = {}
        self._payouts: dict[tuple[str, str], PayoutRecord] = {}
        self._disputes: list[dict[str, Any]] = []
        self._events: list[tuple[datetime, int, str, tuple[Any, ...]]] = []   # heap
        self._outbox: list[tuple[datetime, int, PendingNotification]] = []   # heap
        self._seq = 0
        self._last_latency_ms = 0

    # ------------------------------------------------------------------------------ configuration

    def configure(self, channel: str, profile: ChannelProfile) -> None:
        Rounding(profile.fee_rounding)
        with self._lock:
            self._profiles[channel] = profile

    def profile(self, channel: str) -> ChannelProfile:
        with self._lock:
            return self._profiles.setdefault(channel, ChannelProfile())

    def add_outage(self, channel: str, start: datetime, end: datetime, kind: str = "unavailable") -> None:
        if kind not in ("unavailable", "timeout"):
            raise ValueError("outage kind is 'unavailable' or 'timeout'")
        with self._lock:
            self.profile(channel).outages.append(Outage(_aware(start), _aware(end), kind))

    @property
    def last_latency_ms(self) -> int:
        return self._last_latency_ms

    # ------------------------------------------------------------------------------ payments

    def pay(self, channel: str, *, reference: str, amount: int, currency: str, method: str, capture: bool,
            notify_url: str | None, card_number: str | None = None) -> Transaction:
        """Create (or, for a repeated reference with the same amount, return) a transaction.
        Raises ``SandboxFailure`` for declines, errors, outages and timeouts (after recording the
        transaction when a timed-out attempt succeeded). Card payments settle at once (or authorise
        when ``capture`` is False); action methods return WAITING and the customer acts later in
        simulated time (``advance``). The simulated latency is ``last_latency_ms``."""
        if isinstance(amount, bool) or not isinstance(amount, int) or amount <= 0:
            raise SandboxFailure("invalid", "invalid_amount", "amount is a positive integer of minor units")
        if not reference:
            raise SandboxFailure("invalid", "invalid_reference", "reference is required")
        with self._lock:
            now = self._begin(channel)
            key = (channel, reference)
            existing = self._txs.get(key)
            if existing is not None:
                if existing.amount != amount or existing.currency != currency:
                    raise SandboxFailure("invalid", "duplicate_reference",
                                         f"reference {reference} was used with another amount")
                failure = self._failures.get(key)
                if existing.status is TxStatus.FAILED and failure is not None:
                    raise SandboxFailure(failure.kind, failure.code, failure.message)
                return existing
            profile = self.profile(channel)
            timed_out = self._draw(profile.timeout_share)
            reaches_channel = not timed_out or self._draw(profile.timeout_success_share)
            outcome = self._draw_outcome(profile, now, card_number)
            tx: Transaction | None = None
            if reaches_channel:
                tx = self._create(channel, now, reference=reference, amount=amount, currency=currency,
                                  method=method, capture=capture, notify_url=notify_url,
                                  card_number=card_number, outcome=outcome)
            if timed_out:
                self._timeout_happened()
                raise SandboxFailure("timeout", "timeout", "the channel did not answer in time")
            assert tx is not None
            if tx.status is TxStatus.FAILED:
                failure = self._failures[key]
                raise SandboxFailure(failure.kind, failure.code, failure.message)
            return tx

    def _draw_outcome(self, profile: ChannelProfile, now: datetime, card_number: str | None) -> tuple[str, str]:
        """("ok", "") or ("declined"|"error", code); always the same number of draws."""
        success = self._draw(self._success_share(profile, now))
        declined = self._draw(profile.decline_share)
        code_pick = self._rng.randrange(1_000_000)
        if card_number is not None and card_number in TEST_CARDS:
            forced = TEST_CARDS[card_number]
            return ("ok", "") if forced is None else forced
        if success:
            return ("ok", "")
        if declined:
            return ("declined", DECLINE_CODES[code_pick % len(DECLINE_CODES)])
        return ("error", ERROR_CODES[code_pick % len(ERROR_CODES)])

    def _create(self, channel: str, now: datetime, *, reference: str, amount: int, currency: str, method: str,
                capture: bool, notify_url: str | None, card_number: str | None,
                outcome: tuple[str, str]) -> Transaction:
        profile = self.profile(channel)
        kind, code = outcome
        tx = Transaction(channel=channel, reference=reference, channel_ref=self._ref("4", now), amount=amount,
                         currency=currency, method=method, status=TxStatus.WAITING, captured=0, refunded=0,
                         fee=0, created_at=now, paid_at=None, notify_url=notify_url,
                         card_last4=card_number[-4:] if card_number else None)
        key = (channel, reference)
        if method in ACTION_METHODS and kind != "error":
            # The customer acts later; a drawn decline happens when they try to pay.
            pays = self._draw(profile.customer_pays_share)
            delay = self._uniform_seconds(profile.customer_delay_seconds)
            self._txs[key] = tx
            self._schedule(now + delay, "customer", (channel, reference, pays, code if kind == "declined" else None))
            return tx
        if kind != "ok":
            failure = SandboxFailure(kind, code, f"payment {'declined' if kind == 'declined' else 'failed'}: {code}")
            self._failures[key] = failure
            tx = replace(tx, status=TxStatus.FAILED, error_code=code, error_kind=kind)
            self._txs[key] = tx
            return tx
        if capture or method not in ("card",):
            tx = self._settle(tx, amount, now)
        else:
            tx = replace(tx, status=TxStatus.AUTHORIZED)
        self._txs[key] = tx
        self._notify_payment(tx, now)
        return tx

    def _settle(self, tx: Transaction, captured: int, at: datetime) -> Transaction:
        return replace(tx, status=TxStatus.SUCCEEDED, captured=captured, fee=self.fee(tx.channel, captured),
                       paid_at=at)

    def fee(self, channel: str, amount: int) -> int:
        """The channel's fee on ``amount`` minor units (0 for 0)."""
        if amount == 0:
            return 0
        profile = self.profile(channel)
        return round_minor(Decimal(amount) * profile.fee_rate, Rounding(profile.fee_rounding)) + profile.fee_fixed

    def query(self, channel: str, reference: str) -> Transaction | None:
        with self._lock:
            self._begin(channel)
            return self._txs.get((channel, reference))

    def find(self, channel: str, reference: str | None = None, channel_ref: str | None = None) -> Transaction | None:
        """A transaction by reference or channel_ref, without latency, outages or catching up (for routers
        that must look a transaction up by the provider's own id)."""
        with self._lock:
            if reference is not None:
                return self._txs.get((channel, reference))
            for tx in self._txs.values():
                if tx.channel == channel and tx.channel_ref == channel_ref:
                    return tx
            return None

    def capture(self, channel: str, reference: str, amount: int) -> Transaction:
        with self._lock:
            now = self._begin(channel)
            tx = self._get(channel, reference)
            if tx.status is TxStatus.SUCCEEDED and tx.captured == amount and tx.method == "card":
                return tx   # a repeated capture
            if tx.status is not TxStatus.AUTHORIZED:
                raise SandboxFailure("invalid", "invalid_state", f"cannot capture a {tx.status} transaction")
            if isinstance(amount, bool) or not isinstance(amount, int) or not 0 < amount <= tx.amount:
                raise SandboxFailure("invalid", "invalid_amount", "capture between 1 and the authorised amount")
            tx = self._settle(tx, amount, now)
            self._txs[(channel, reference)] = tx
            self._notify_payment(tx, now)
            return tx

    def close(self, channel: str, reference: str) -> Transaction:
        """Close a WAITING transaction or void an AUTHORIZED one; closing twice returns it again."""
        with self._lock:
            now = self._begin(channel)
            tx = self._get(channel, reference)
            if tx.status is TxStatus.CLOSED:
                return tx
            if tx.status not in (TxStatus.WAITING, TxStatus.AUTHORIZED, TxStatus.FAILED):
                raise SandboxFailure("invalid", "invalid_state", f"cannot close a {tx.status} transaction")
            tx = replace(tx, status=TxStatus.CLOSED, closed_at=now)
            self._txs[(channel, reference)] = tx
            return tx

    def customer_acts(self, channel: str, reference: str, pays: bool = True) -> Transaction:
        """Force the customer's move on a WAITING transaction now: pay (always succeeds) or abandon."""
        with self._lock:
            now = self._catch_up()
            tx = self._get(channel, reference)
            if tx.status is not TxStatus.WAITING:
                raise SandboxFailure("invalid", "invalid_state", f"the transaction is {tx.status}, not waiting")
            return self._customer_move(tx, now, pays, None)

    def _customer_move(self, tx: Transaction, at: datetime, pays: bool, decline_code: str | None) -> Transaction:
        key = (tx.channel, tx.reference)
        if not pays:
            tx = replace(tx, status=TxStatus.CLOSED, closed_at=at, error_code="customer_abandoned")
            self._txs[key] = tx
            return tx
        if decline_code is not None:
            self._failures[key] = SandboxFailure("declined", decline_code, f"payment declined: {decline_code}")
            tx = replace(tx, status=TxStatus.FAILED, error_code=decline_code, error_kind="declined")
        else:
            tx = self._settle(tx, tx.amount, at)
        self._txs[key] = tx
        self._notify_payment(tx, at)
        return tx

    # ------------------------------------------------------------------------------ refunds

    def refund(self, channel: str, *, reference: str, refund_reference: str, amount: int,
               notify_url: str | None, original: tuple[int, str, str | None] | None = None) -> RefundRecord:
        """``original`` (the charge's amount, currency and our channel reference, as the refund request states
        them) is used only by a sandbox that ``remember_unknown``s."""
        with self._lock:
            now = self._begin(channel)
            existing = self._refunds.get((channel, refund_reference))
            if existing is not None:
                if existing.amount != amount or existing.reference != reference:
                    raise SandboxFailure("invalid", "duplicate_reference",
                                         f"refund reference {refund_reference} was used with another amount")
                return existing
            if self.remember_unknown and original is not None and (channel, reference) not in self._txs:
                charged, currency, channel_ref = original
                self._txs[(channel, reference)] = Transaction(
                    channel=channel, reference=reference, channel_ref=channel_ref or self._ref("4", now),
                    amount=charged, currency=currency, method="card", status=TxStatus.SUCCEEDED, captured=charged,
                    refunded=0, fee=self.fee(channel, charged), created_at=now, paid_at=now, notify_url=notify_url)
            tx = self._get(channel, reference)
            if isinstance(amount, bool) or not isinstance(amount, int) or amount <= 0:
                raise SandboxFailure("invalid", "invalid_amount", "amount is a positive integer of minor units")
            if tx.status not in (TxStatus.SUCCEEDED, TxStatus.REFUNDED):
                raise SandboxFailure("invalid", "invalid_state", f"cannot refund a {tx.status} transaction")
            in_flight = sum(r.amount for r in self._refunds.values()
                            if r.channel == channel and r.reference == reference and r.status == "processing")
            if tx.refunded + in_flight + amount > tx.captured:
                raise SandboxFailure("invalid", "refund_exceeds_captured",
                                     f"only {tx.captured - tx.refunded - in_flight} can still be refunded")
            profile = self.profile(channel)
            record = RefundRecord(channel=channel, refund_reference=refund_reference, reference=reference,
                                  channel_refund_ref=self._ref("5", now), amount=amount, status="processing",
                                  fee_returned=0, created_at=now, succeeded_at=None, currency=tx.currency,
                                  channel_ref=tx.channel_ref)
            url = notify_url or tx.notify_url
            self._refunds[(channel, refund_reference)] = record
            self._refund_urls[(channel, refund_reference)] = url
            if profile.refund_async:
                fails = self._draw(profile.refund_failure_share)
                delay = self._uniform_seconds(profile.refund_delay_seconds)
                self._schedule(now + delay, "refund", (channel, refund_reference, not fails))
                return record
            return self._finish_refund(record, now, succeeded=True)

    def _finish_refund(self, record: RefundRecord, at: datetime, *, succeeded: bool) -> RefundRecord:
        key = (record.channel, record.refund_reference)
        if not succeeded:
            record = replace(record, status="failed", error_code="refund_failed")
        else:
            tx = self._txs[(record.channel, record.reference)]
            before, after = tx.refunded, tx.refunded + record.amount
            # Cumulative rounding down, as the platform's proportional refund fee policy does: the parts
            # returned over several refunds sum to the whole fee, and never more than the share refunded.
            fee_returned = (round_minor(Fraction(tx.fee * after, tx.captured), Rounding.DOWN)
                            - round_minor(Fraction(tx.fee * before, tx.captured), Rounding.DOWN))
            record = replace(record, status="succeeded", succeeded_at=at, fee_returned=fee_returned)
            self._txs[(tx.channel, tx.reference)] = replace(
                tx, refunded=after, status=TxStatus.REFUNDED if after == tx.captured else tx.status)
        self._refunds[key] = record
        url = self._refund_urls.get(key)
        if url:
            self._enqueue(record.channel, "refund", url, at, refund=record)
        return record

    def query_refund(self, channel: str, refund_reference: str) -> RefundRecord | None:
        with self._lock:
            self._begin(channel)
            return self._refunds.get((channel, refund_reference))

    # ------------------------------------------------------------------------------ disputes

    def open_dispute(self, channel: str, reference: str, amount: int, reason: str) -> dict[str, Any]:
        """The cardholder disputes a captured payment; a dispute notification goes to its notify_url."""
        with self._lock:
            now = self._catch_up()
            tx = self._get(channel, reference)
            if tx.status not in (TxStatus.SUCCEEDED, TxStatus.REFUNDED):
                raise SandboxFailure("invalid", "invalid_state", f"cannot dispute a {tx.status} transaction")
            if isinstance(amount, bool) or not isinstance(amount, int) or not 0 < amount <= tx.captured:
                raise SandboxFailure("invalid", "invalid_amount", "dispute between 1 and the captured amount")
            self._seq += 1
            dispute = {
                "id": f"dp_{self._seq:010d}", "channel": channel, "reference": reference,
                "channel_ref": tx.channel_ref, "amount": amount, "currency": tx.currency, "reason": reason,
                "status": "needs_response", "opened_at": now.isoformat(),
                "evidence_due_by": (now + timedelta(days=self.profile(channel).dispute_evidence_days)).isoformat(),
            }
            self._disputes.append(dispute)
            if tx.notify_url:
                self._enqueue(channel, "dispute", tx.notify_url, now, dispute=dict(dispute), transaction=tx)
            return dict(dispute)

    def disputes(self, channel: str | None = None) -> list[dict[str, Any]]:
        with self._lock:
            return [dict(d) for d in self._disputes if channel is None or d["channel"] == channel]

    # ------------------------------------------------------------------------------ payouts

    def payout(self, channel: str, *, reference: str, amount: int, currency: str,
               account_number: str) -> PayoutRecord:
        """Send money to a bank account: "succeeded" at once, or "processing" then settled later
        (``payout_async``); "failed" ones raise ``SandboxFailure`` as payments do."""
        if isinstance(amount, bool) or not isinstance(amount, int) or amount <= 0:
            raise SandboxFailure("invalid", "invalid_amount", "amount is a positive integer of minor units")
        with self._lock:
            now = self._begin(channel)
            key = (channel, reference)
            existing = self._payouts.get(key)
            if existing is not None:
                if existing.amount != amount or existing.currency != currency:
                    raise SandboxFailure("invalid", "duplicate_reference",
                                         f"payout reference {reference} was used with another amount")
                return existing
            profile = self.profile(channel)
            succeeds = self._draw(profile.payout_success_share)
            if not account_number.isdigit():
                succeeds = False
            record = PayoutRecord(channel=channel, reference=reference, channel_ref=self._ref("6", now),
                                  amount=amount, currency=currency, status="processing",
                                  fee=profile.payout_fee_fixed, created_at=now, completed_at=None,
                                  account_last4=account_number[-4:])
            if profile.payout_async:
                self._payouts[key] = record
                delay = self._uniform_seconds(profile.payout_delay_seconds)
                self._schedule(now + delay, "payout", (channel, reference, succeeds))
                return record
            record = self._finish_payout(record, now, succeeded=succeeds)
            if record.status == "failed":
                raise SandboxFailure("declined", "account_invalid", "the beneficiary account was refused")
            return record

    def _finish_payout(self, record: PayoutRecord, at: datetime, *, succeeded: bool) -> PayoutRecord:
        record = replace(record, status="succeeded" if succeeded else "failed", completed_at=at,
                         error_code=None if succeeded else "account_invalid",
                         fee=record.fee if succeeded else 0)
        self._payouts[(record.channel, record.reference)] = record
        return record

    def query_payout(self, channel: str, reference: str) -> PayoutRecord | None:
        with self._lock:
            self._begin(channel)
            return self._payouts.get((channel, reference))

    # ------------------------------------------------------------------------------ time

    def advance(self, until: datetime | None = None) -> None:
        """Let simulated time catch up: customers act, async refunds finish, notifications fall due."""
        with self._lock:
            self._catch_up(until)

    def advance_by(self, delta: timedelta) -> datetime:
        """Move the clock (when it can move) by ``delta`` and catch up; returns the new time."""
        with self._lock:
            mover = getattr(self.clock, "advance", None)
            if callable(mover):
                mover(delta)
                until = self.clock.now()
            else:
                until = self.clock.now() + delta
            self._catch_up(until)
            return until

    def next_event_at(self) -> datetime | None:
        """When the next scheduled customer action, refund or payout completion falls due."""
        with self._lock:
            return self._events[0][0] if self._events else None

    def _catch_up(self, until: datetime | None = None) -> datetime:
        now = self.clock.now()
        until = now if until is None else max(_aware(until), now)
        while self._events and self._events[0][0] <= until:
            at, _, kind, args = heapq.heappop(self._events)
            if kind == "customer":
                channel, reference, pays, decline_code = args
                tx = self._txs.get((channel, reference))
                if tx is not None and tx.status is TxStatus.WAITING:
                    self._customer_move(tx, at, pays, decline_code)
            elif kind == "refund":
                channel, refund_reference, succeeds = args
                record = self._refunds[(channel, refund_reference)]
                if record.status == "processing":
                    self._finish_refund(record, at, succeeded=succeeds)
            elif kind == "payout":
                channel, reference, succeeds = args
                payout = self._payouts[(channel, reference)]
                if payout.status == "processing":
                    self._finish_payout(payout, at, succeeded=succeeds)
        return now

    # ------------------------------------------------------------------------------ notifications

    def due_notifications(self, now: datetime | None = None) -> list[PendingNotification]:
        """Take the notifications due by ``now`` (default: the clock), applying loss, duplication and
        reordering; each is returned once (duplicates are separate items)."""
        with self._lock:
            until = self.clock.now() if now is None else _aware(now)
            self._catch_up(until)
            taken: list[PendingNotification] = []
            while self._outbox and self._outbox[0][0] <= until:
                taken.append(heapq.heappop(self._outbox)[2])
            by_channel: dict[str, list[PendingNotification]] = {}
            for item in taken:
                profile = self.profile(item.channel)
                if item.attempt == 0:
                    lost = self._draw(profile.notify_loss_share)
                    duplicated = self._draw(profile.notify_duplicate_share)
                    if lost:
                        continue
                    by_channel.setdefault(item.channel, []).append(item)
                    if duplicated:
                        by_channel[item.channel].append(item)
                else:
                    by_channel.setdefault(item.channel, []).append(item)
            result: list[PendingNotification] = []
            for channel, items in by_channel.items():
                if self.profile(channel).notify_reorder:
                    self._rng.shuffle(items)
                result.extend(items)
            return result

    def requeue(self, item: PendingNotification, due_at: datetime) -> PendingNotification:
        """Put back a notification whose delivery failed, to be sent again at ``due_at``."""
        with self._lock:
            again = replace(item, due_at=_aware(due_at), attempt=item.attempt + 1)
            self._seq += 1
            heapq.heappush(self._outbox, (again.due_at, self._seq, again))
            return again

    def pending_notifications(self) -> list[PendingNotification]:
        """Everything queued, due or not (read-only view)."""
        with self._lock:
            return [item for _, _, item in sorted(self._outbox, key=lambda entry: (entry[0], entry[1]))]

    def _notify_payment(self, tx: Transaction, at: datetime) -> None:
        if tx.notify_url:
            self._enqueue(tx.channel, "payment", tx.notify_url, at, transaction=tx)

    def _enqueue(self, channel: str, kind: str, url: str, at: datetime, *, transaction: Transaction | None = None,
                 refund: RefundRecord | None = None, dispute: dict[str, Any] | None = None) -> None:
        delay = self._uniform_seconds(self.profile(channel).notify_delay_seconds)
        self._seq += 1
        item = PendingNotification(id=f"ntf_{self._seq:010d}", channel=channel, kind=kind, url=url,
                                   due_at=at + delay, transaction=transaction, refund=refund, dispute=dispute)
        heapq.heappush(self._outbox, (item.due_at, self._seq, item))

    # ------------------------------------------------------------------------------ bill and listings

    def bill(self, channel: str, business_date: date, tz_offset: timedelta = timedelta(0)) -> Sequence[BillLine]:
        """Payments captured and refunds completed on ``business_date`` (local time = UTC + ``tz_offset``),
        in time order. Net = sum(payment amounts) - sum(refund amounts)."""
        with self._lock:
            self._catch_up()
            lines: list[BillLine] = []
            for tx in self._txs.values():
                if (tx.channel == channel and tx.paid_at is not None and tx.captured > 0
                        and (tx.paid_at + tz_offset).date() == business_date):
                    lines.append(BillLine(channel=channel, kind="payment", reference=tx.reference,
                                          channel_ref=tx.channel_ref, refund_reference=None, amount=tx.captured,
                                          fee=tx.fee, currency=tx.currency, at=tx.paid_at,
                                          status="refunded" if tx.refunded else "succeeded"))
            for record in self._refunds.values():
                if (record.channel == channel and record.status == "succeeded" and record.succeeded_at is not None
                        and (record.succeeded_at + tz_offset).date() == business_date):
                    lines.append(BillLine(channel=channel, kind="refund", reference=record.reference,
                                          channel_ref=record.channel_refund_ref,
                                          refund_reference=record.refund_reference, amount=record.amount,
                                          fee=record.fee_returned, currency=record.currency,
                                          at=record.succeeded_at))
            lines.sort(key=lambda line: (line.at, line.kind, line.reference))
            return lines

    def transactions(self, channel: str | None = None) -> list[Transaction]:
        with self._lock:
            self._catch_up()
            return sorted((tx for tx in self._txs.values() if channel is None or tx.channel == channel),
                          key=lambda tx: (tx.created_at, tx.channel_ref))

    def refunds(self, channel: str | None = None) -> list[RefundRecord]:
        with self._lock:
            self._catch_up()
            return sorted((r for r in self._refunds.values() if channel is None or r.channel == channel),
                          key=lambda r: (r.created_at, r.channel_refund_ref))

    def payouts(self, channel: str | None = None) -> list[PayoutRecord]:
        with self._lock:
            self._catch_up()
            return sorted((p for p in self._payouts.values() if channel is None or p.channel == channel),
                          key=lambda p: (p.created_at, p.channel_ref))

    # ------------------------------------------------------------------------------ internals

    def _begin(self, channel: str) -> datetime:
        """Every provider call: catch up, draw the latency, refuse during an outage."""
        now = self._catch_up()
        profile = self.profile(channel)
        latency = self._draw_latency(profile.latency_ms)
        self._spend(latency)
        for outage in profile.outages:
            if outage.start <= now < outage.end:
                if outage.kind == "timeout":
                    self._timeout_happened()
                    raise SandboxFailure("timeout", "timeout", "the channel did not answer in time")
                raise SandboxFailure("unavailable", "service_unavailable", "the channel is unavailable")
        return now

    def _spend(self, latency: int) -> None:
        self._last_latency_ms = latency
        if self.realtime:
            sink = _request_latency.get()
            if sink is not None:
                sink.ms += min(latency, REALTIME_LATENCY_CAP_MS)
        elif self.advance_clock:
            self.clock.advance(timedelta(milliseconds=latency))  # type: ignore[attr-defined]

    def _timeout_happened(self) -> None:
        sink = _request_latency.get()
        if sink is not None:
            sink.timed_out = True

    def _success_share(self, profile: ChannelProfile, now: datetime) -> Decimal:
        for start, end, share in profile.degraded:
            if start <= now < end:
                return share
        return profile.success_share

    def _draw(self, share: Decimal) -> bool:
        """True with probability ``share``, drawn exactly (integers, no float comparison)."""
        return self._rng.randrange(1_000_000) < int(share * 1_000_000)

    def _draw_latency(self, spec: tuple[int, int, int]) -> int:
        low, median, p99 = spec
        if median <= low:
            return low
        # log-normal above the minimum: median and 99th percentile as given (z(0.99) = 2.326).
        sigma = math.log(max(p99 - low, median - low + 1) / (median - low)) / 2.326
        value = low + (median - low) * math.exp(sigma * self._rng.gauss(0.0, 1.0))
        return int(min(value, low + (p99 - low) * 3))

    def _uniform_seconds(self, bounds: tuple[int, int]) -> timedelta:
        low, high = bounds
        return timedelta(seconds=self._rng.randint(low, max(low, high)))

    def _schedule(self, at: datetime, kind: str, args: tuple[Any, ...]) -> None:
        self._seq += 1
        heapq.heappush(self._events, (at, self._seq, kind, args))

    def _ref(self, prefix: str, now: datetime) -> str:
        self._seq += 1
        return f"{prefix}{now:%Y%m%d}{self._seq:012d}"

    def _get(self, channel: str, reference: str) -> Transaction:
        tx = self._txs.get((channel, reference))
        if tx is None:
            raise SandboxFailure("invalid", "not_found", f"no transaction {reference}")
        return tx


def sleep_realtime(sink: _Latency, timeout_seconds: float) -> None:
    """Blocking helper for non-async callers: sleep what a request spent (or hang for a timeout)."""
    time.sleep(timeout_seconds if sink.timed_out else sink.ms / 1000)
