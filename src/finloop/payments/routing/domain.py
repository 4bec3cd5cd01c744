"""Routing rules, pure: configuration, strategies, success-rate windows and circuit breakers.

Invariants owned here:
- ``route`` is a pure function of (config, inputs): the same inputs give the same ranking, so a stored
  decision can be replayed; all randomness comes from ``SplitMix64(inputs.rng_seed)``, drawn in a fixed
  order (half-open probes in candidate order, then the strategy's draws), never from the global generator;
- ``ranked`` is a permutation of the surviving candidates: those not eliminated, or, when every candidate
  is eliminated, all of them as a last resort (the reason says so);
- a decline counts as the channel working (the customer's problem) and ``unknown`` counts as a failure,
  both for success-rate windows and for circuit breakers;
- a window holds at most ``window_size`` outcomes per (merchant, method, channel); a channel that falls
  ``reset_gap`` below the best is cleared and rests for ``retry_after_seconds``, then is judged on fresh
  outcomes only, so it can come back;
- a breaker moves closed -> open (error rate over its window, or K consecutive failures), open -> half-open
  (after the cool-down, a matter of time), half-open -> closed (enough probe successes) or -> open (a probe
  failure); its state is a function of the outcome stream and the clock alone.

Success rates and scores are statistics, not money: they are floats. Amounts and fees stay integers of
minor units; the cost-weighted score (rate x (amount - fee)) is a ranking key, never booked.
"""

from __future__ import annotations

import hashlib
import math
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, field_validator, model_validator
from pydantic_core import PydanticCustomError

OUTCOMES = frozenset({"success", "failure", "decline", "unknown"})
#: Outcomes that show the channel working: a decline is the customer's bank saying no.
WORKING = frozenset({"success", "decline"})
STRATEGIES = ("priority", "weighted", "lowest_cost", "lowest_latency", "success_rate")

ChannelCode = Annotated[str, Field(min_length=1, max_length=40, pattern=r"^[A-Za-z0-9_.\-]+$")]
Name = Annotated[str, Field(min_length=1, max_length=40, pattern=r"^[A-Za-z0-9_.\-]+$")]


# ---------------------------------------------------------------------------------------------- config


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class PriorityStrategy(_Strict):
    type: Literal["priority"]
    #: Channels in order of preference; candidates not listed follow in the order they were offered.
    channels: list[ChannelCode] = Field(min_length=1, max_length=50)


class WeightedStrategy(_Strict):
    type: Literal["weighted"]
    #: Relative shares of primary traffic; a channel with no weight (or 0) is only a fallback.
    weights: dict[ChannelCode, Annotated[int, Field(ge=0, le=1_000_000, strict=True)]] = Field(
        min_length=1, max_length=50)

    @field_validator("weights")
    @classmethod
    def _some_positive(cls, value: dict[str, int]) -> dict[str, int]:
        if not any(value.values()):
            raise PydanticCustomError("invalid_weights", "At least one weight must be greater than zero.")
        return value


class LowestCostStrategy(_Strict):
    type: Literal["lowest_cost"]


class LowestLatencyStrategy(_Strict):
    type: Literal["lowest_latency"]
    #: What a channel without any outcome in its window is assumed to take.
    default_latency_ms: int = Field(1000, ge=0, le=600_000, strict=True)


class SuccessRateStrategy(_Strict):
    type: Literal["success_rate"]


Strategy = Annotated[PriorityStrategy | WeightedStrategy | LowestCostStrategy | LowestLatencyStrategy
                     | SuccessRateStrategy, Field(discriminator="type")]


class RuleMatch(_Strict):
    """Every given condition must hold; an empty match always holds. The amount band is [min, max)."""

    methods: list[Name] | None = Field(None, min_length=1, max_length=50)
    currencies: list[Annotated[str, Field(pattern=r"^[A-Z]{3}$")]] | None = Field(None, min_length=1, max_length=50)
    segments: list[Name] | None = Field(None, min_length=1, max_length=50)
    min_amount: int | None = Field(None, ge=0, le=10**15, strict=True)
    max_amount: int | None = Field(None, ge=1, le=10**15, strict=True)

    @model_validator(mode="after")
    def _band(self) -> RuleMatch:
        if self.min_amount is not None and self.max_amount is not None and self.min_amount >= self.max_amount:
            raise PydanticCustomError("invalid_amount_band", "min_amount must be below max_amount.")
        return self

    def matches(self, method: str, amount: int, currency: str, segment: str | None) -> bool:
        if self.methods is not None and method not in self.methods:
            return False
        if self.currencies is not None and currency not in self.currencies:
            return False
        if self.segments is not None and (segment is None or segment not in self.segments):
            return False
        if self.min_amount is not None and amount < self.min_amount:
            return False
        return self.max_amount is None or amount < self.max_amount


class Rule(_Strict):
    name: Name | None = None
    match: RuleMatch = Field(default_factory=RuleMatch)
    strategy: Strategy
    #: Overrides the config's fallback chain for payments this rule picks.
    fallback: list[ChannelCode] | None = Field(None, max_length=50)


class SuccessRateSettings(_Strict):
    #: Outcomes kept per (merchant, method, channel).
    window_size: int = Field(100, ge=5, le=1000, strict=True)
    #: Below this many outcomes a channel scores ``initial_score`` instead of its measured rate.
    min_samples: int = Field(10, ge=1, le=1000, strict=True)
    initial_score: float = Field(0.8, ge=0, le=1)
    #: Share of payments whose primary is drawn at random from the other channels, so that they stay measured.
    epsilon: float = Field(0.1, ge=0, le=1)
    #: A measured channel below this rate is eliminated (unless nothing else is left).
    floor: float = Field(0.0, ge=0, le=1)
    #: A channel this far below the best is cleared and rests for ``retry_after_seconds``.
    reset_gap: float = Field(0.25, gt=0, le=1)
    retry_after_seconds: int = Field(60, ge=0, le=86_400, strict=True)
    #: Rank by expected value, rate x (amount - fee), instead of the bare rate.
    cost_weighted: bool = False

    @model_validator(mode="after")
    def _samples(self) -> SuccessRateSettings:
        if self.min_samples > self.window_size:
            raise PydanticCustomError("invalid_min_samples", "min_samples must not exceed window_size.")
        return self


class BreakerSettings(_Strict):
    """Circuit breakers are per channel, so only the tenant's default config sets them."""

    window_size: int = Field(20, ge=1, le=1000, strict=True)
    #: The breaker opens when at least ``min_calls`` outcomes are in the window and this share of them failed.
    error_rate: float = Field(0.5, gt=0, le=1)
    min_calls: int = Field(10, ge=1, le=1000, strict=True)
    consecutive_failures: int = Field(5, ge=1, le=1000, strict=True)
    cooldown_seconds: int = Field(30, ge=0, le=86_400, strict=True)
    #: Share of payments that may probe a half-open channel.
    probe_share: float = Field(0.1, gt=0, le=1)
    probe_successes: int = Field(3, ge=1, le=100, strict=True)


class Downtime(_Strict):
    """A scheduled maintenance window [start, end) during which the channel is not offered."""

    channel: ChannelCode
    start: AwareDatetime
    end: AwareDatetime
    note: str | None = Field(None, max_length=200, pattern=r"^[^\x00-\x1f\x7f]*$")

    @field_validator("start", "end")
    @classmethod
    def _utc(cls, value: datetime) -> datetime:
        # Stored and compared in UTC; the ends of the calendar would overflow when converted, so refuse them.
        if not 2 <= value.year <= 9998:
            raise PydanticCustomError("invalid_datetime", "A downtime lies between the years 2 and 9998.")
        return value.astimezone(UTC)

    @model_validator(mode="after")
    def _order(self) -> Downtime:
        if self.end <= self.start:
            raise PydanticCustomError("invalid_downtime", "A downtime's end must be after its start.")
        return self


class RoutingConfig(_Strict):
    """A merchant's routing configuration (or the tenant-wide default)."""

    strategy: Strategy = Field(default_factory=lambda: SuccessRateStrategy(type="success_rate"))
    #: First matching rule wins; none matching means ``strategy``.
    rules: list[Rule] = Field(default_factory=list, max_length=100)
    #: Channels tried right after the primary, in this order; the rest follow in the strategy's order.
    fallback: list[ChannelCode] = Field(default_factory=list, max_length=50)
    success_rate: SuccessRateSettings = Field(default_factory=SuccessRateSettings)
    breaker: BreakerSettings = Field(default_factory=BreakerSettings)
    downtime: list[Downtime] = Field(default_factory=list, max_length=200)
    #: Mixed with the payment id into each decision's rng seed.
    seed: int = Field(0, ge=0, le=2**63 - 1, strict=True)

    def select(self, method: str, amount: int, currency: str, segment: str | None) -> tuple[int | None, Rule | None]:
        for index, rule in enumerate(self.rules):
            if rule.match.matches(method, amount, currency, segment):
                return index, rule
        return None, None


DEFAULT_CONFIG = RoutingConfig()


# ---------------------------------------------------------------------------------------------- values


@dataclass(frozen=True, slots=True)
class Candidate:
    channel: str           # the tenant's channel code, e.g. "wxpay"
    fee_amount: int        # expected channel fee for this payment, minor units (for cost strategies)


@dataclass(frozen=True, slots=True)
class WindowSnapshot:
    """What a decision saw of one channel's window: integers and a time, so replay recomputes exact floats."""

    calls: int = 0
    successes: int = 0
    latency_total_ms: int = 0
    resting_until: datetime | None = None
    rate_at_reset: float | None = None

    def to_json(self) -> dict[str, Any]:
        return {"calls": self.calls, "successes": self.successes, "latency_total_ms": self.latency_total_ms,
                "resting_until": self.resting_until.isoformat() if self.resting_until else None,
                "rate_at_reset": self.rate_at_reset}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> WindowSnapshot:
        resting = data.get("resting_until")
        return cls(calls=int(data["calls"]), successes=int(data["successes"]),
                   latency_total_ms=int(data["latency_total_ms"]),
                   resting_until=datetime.fromisoformat(resting) if resting else None,
                   rate_at_reset=data.get("rate_at_reset"))


EMPTY_WINDOW = WindowSnapshot()


class BreakerState(StrEnum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


@dataclass(frozen=True, slots=True)
class DecisionInputs:
    """Everything ``route`` reads besides the config; stored with the decision."""

    method: str
    amount: int
    currency: str
    customer_segment: str | None
    candidates: tuple[Candidate, ...]
    windows: Mapping[str, WindowSnapshot]
    breakers: Mapping[str, BreakerState]
    now: datetime
    rng_seed: int

    def to_json(self) -> dict[str, Any]:
        return {
            "method": self.method, "amount": self.amount, "currency": self.currency,
            "customer_segment": self.customer_segment,
            "candidates": [{"channel": c.channel, "fee_amount": c.fee_amount} for c in self.candidates],
            "windows": {channel: w.to_json() for channel, w in self.windows.items()},
            "breakers": {channel: state.value for channel, state in self.breakers.items()},
            "now": self.now.isoformat(), "rng_seed": str(self.rng_seed),
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> DecisionInputs:
        return cls(
            method=data["method"], amount=int(data["amount"]), currency=data["currency"],
            customer_segment=data.get("customer_segment"),
            candidates=tuple(Candidate(c["channel"], int(c["fee_amount"])) for c in data["candidates"]),
            windows={channel: WindowSnapshot.from_json(w) for channel, w in data["windows"].items()},
            breakers={channel: BreakerState(s) for channel, s in data["breakers"].items()},
            now=datetime.fromisoformat(data["now"]), rng_seed=int(data["rng_seed"]))


@dataclass(frozen=True, slots=True)
class Ranking:
    strategy: str
    ranked: tuple[str, ...]
    scores: Mapping[str, float]
    reason: str
    explored: bool
    rule: int | None


_MASK64 = (1 << 64) - 1


class SplitMix64:
    """A small seeded generator (SplitMix64): seeding costs nothing, where ``random.Random(seed)`` costs ~10 us
    per decision. Statistical quality is ample for exploration and weighted splits; not for secrets."""

    __slots__ = ("_state",)

    def __init__(self, seed: int) -> None:
        self._state = seed & _MASK64

    def _next(self) -> int:
        self._state = z = (self._state + 0x9E3779B97F4A7C15) & _MASK64
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _MASK64
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _MASK64
        return z ^ (z >> 31)

    def random(self) -> float:
        """A float in [0, 1) with 53 random bits."""
        return (self._next() >> 11) * (1.0 / (1 << 53))

    def randrange(self, n: int) -> int:
        """An int in [0, n); the modulo bias (n / 2**64) is negligible for a few dozen channels."""
        return self._next() % n


def rng_seed(tenant_seed: int, tenant_id: str, payment_id: str) -> int:
    """A 63-bit seed from the tenant's seed and the payment: the same payment always draws the same numbers."""
    digest = hashlib.blake2b(f"{tenant_seed}:{tenant_id}:{payment_id}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") >> 1


# ---------------------------------------------------------------------------------------------- route


def _rate(window: WindowSnapshot, settings: SuccessRateSettings, now: datetime) -> float:
    if window.resting_until is not None and now < window.resting_until:
        return window.rate_at_reset if window.rate_at_reset is not None else 0.0
    if window.calls < settings.min_samples:
        return settings.initial_score
    return window.successes / window.calls


def in_downtime(config: RoutingConfig, channel: str, now: datetime) -> Downtime | None:
    for slot in config.downtime:
        if slot.channel == channel and slot.start <= now < slot.end:
            return slot
    return None


def _by_score(channels: Sequence[str], scores: Mapping[str, float], *, descending: bool) -> list[str]:
    # sorted() is stable: equal scores keep the order the candidates were offered in.
    sign = -1.0 if descending else 1.0
    return sorted(channels, key=lambda c: sign * scores[c])


def _order(strategy: Strategy, channels: list[str], inputs: DecisionInputs, config: RoutingConfig,
           rng: SplitMix64) -> tuple[list[str], dict[str, float], bool, str]:
    """The strategy's order of the surviving channels, its scores, whether it explored, and a note."""
    fees = {c.channel: c.fee_amount for c in inputs.candidates}
    windows = inputs.windows
    if isinstance(strategy, PriorityStrategy):
        position = {channel: index for index, channel in enumerate(strategy.channels)}
        scores = {c: float(position.get(c, len(position) + i)) for i, c in enumerate(channels)}
        return _by_score(channels, scores, descending=False), scores, False, "priority list"
    if isinstance(strategy, WeightedStrategy):
        scores = {c: float(strategy.weights.get(c, 0)) for c in channels}
        # Efraimidis-Spirakis: key u^(1/w) sorted descending is a weighted draw without replacement.
        keys = {c: (rng.random() ** (1.0 / scores[c]) if scores[c] > 0 else -1.0) for c in channels}
        return _by_score(channels, keys, descending=True), scores, False, "weighted draw"
    if isinstance(strategy, LowestCostStrategy):
        scores = {c: float(fees[c]) for c in channels}
        return _by_score(channels, scores, descending=False), scores, False, "lowest expected fee"
    if isinstance(strategy, LowestLatencyStrategy):
        scores = {}
        for c in channels:
            w = windows.get(c, EMPTY_WINDOW)
            scores[c] = w.latency_total_ms / w.calls if w.calls else float(strategy.default_latency_ms)
        return _by_score(channels, scores, descending=False), scores, False, "lowest mean latency"
    settings = config.success_rate
    rates = {c: _rate(windows.get(c, EMPTY_WINDOW), settings, inputs.now) for c in channels}
    if settings.cost_weighted:
        scores = {c: rates[c] * (inputs.amount - fees[c]) for c in channels}
        note = "highest expected value, rate x (amount - fee)"
    else:
        scores = rates
        note = "highest success rate"
    ordered = _by_score(channels, scores, descending=True)
    explored = False
    if len(ordered) > 1 and settings.epsilon > 0 and rng.random() < settings.epsilon:
        pick = ordered[1 + rng.randrange(len(ordered) - 1)]
        ordered.remove(pick)
        ordered.insert(0, pick)
        explored = True
        note += f"; exploring {pick}"
    return ordered, scores, explored, note


def route(config: RoutingConfig, inputs: DecisionInputs) -> Ranking:
    """Rank the candidates: eliminate, order by the selected strategy, apply the fallback chain, probe."""
    rng = SplitMix64(inputs.rng_seed)
    rule_index, rule = config.select(inputs.method, inputs.amount, inputs.currency, inputs.customer_segment)
    strategy = rule.strategy if rule is not None else config.strategy
    fallback = rule.fallback if rule is not None and rule.fallback is not None else config.fallback
    seen: set[str] = set()
    channels: list[str] = []
    for candidate in inputs.candidates:
        if candidate.channel not in seen:
            seen.add(candidate.channel)
            channels.append(candidate.channel)
    notes: list[str] = []
    unavailable: dict[str, str] = {}
    probes: list[str] = []
    for channel in channels:
        state = inputs.breakers.get(channel, BreakerState.CLOSED)
        slot = in_downtime(config, channel, inputs.now)
        if slot is not None:
            unavailable[channel] = "in scheduled downtime"
        elif state is BreakerState.OPEN:
            unavailable[channel] = "breaker open"
        elif state is BreakerState.HALF_OPEN:
            if rng.random() < config.breaker.probe_share:
                probes.append(channel)
            else:
                unavailable[channel] = "breaker half-open, not probing"
    below_floor: list[str] = []
    if isinstance(strategy, SuccessRateStrategy) and config.success_rate.floor > 0:
        settings = config.success_rate
        for channel in channels:
            window = inputs.windows.get(channel, EMPTY_WINDOW)
            if channel not in unavailable and window.calls >= settings.min_samples \
                    and window.successes / window.calls < settings.floor:
                below_floor.append(channel)
    healthy = [c for c in channels if c not in unavailable and c not in below_floor]
    last_resort = False
    if healthy:
        surviving = healthy
        eliminated = [f"{c} ({unavailable[c]})" for c in channels if c in unavailable]
        eliminated += [f"{c} (below floor {config.success_rate.floor})" for c in below_floor]
        if eliminated:
            notes.append("eliminated " + ", ".join(eliminated))
    else:
        surviving = channels
        last_resort = True
    ordered, scores, explored, note = _order(strategy, list(surviving), inputs, config, rng)
    if last_resort:
        # Below-floor channels are still better bets than ones whose breaker is open or that are down.
        ordered = [c for c in ordered if c not in unavailable] + [c for c in ordered if c in unavailable]
        notes.append("no healthy channel: last resort " + ", ".join(
            f"{c} ({unavailable.get(c, 'below floor')})" for c in ordered))
    if fallback and ordered:
        primary = ordered[0]
        chain = [c for c in dict.fromkeys(fallback) if c in ordered and c != primary]
        rest = [c for c in ordered[1:] if c not in chain]
        if chain:
            ordered = [primary, *chain, *rest]
            notes.append("fallback chain " + " > ".join(chain))
    probe = next((c for c in probes if c in ordered), None)
    if probe is not None and not last_resort:
        ordered.remove(probe)
        ordered.insert(0, probe)
        explored = True
        notes.append(f"probing half-open {probe}")
    label = strategy.type
    where = f"rule {rule.name or rule_index}" if rule is not None else "config strategy"
    reason = f"{label} ({where}): {note}" + ("; " + "; ".join(notes) if notes else "")
    return Ranking(strategy=label, ranked=tuple(ordered), scores=scores, reason=reason, explored=explored,
                   rule=rule_index)


# ---------------------------------------------------------------------------------------------- windows


class ChannelWindow:
    """The last ``size`` outcomes of one channel for one (merchant, method), with running sums."""

    __slots__ = ("calls", "latency_total_ms", "outcomes", "rate_at_reset", "resting_until", "successes")

    def __init__(self, size: int) -> None:
        self.outcomes: deque[tuple[bool, int]] = deque(maxlen=size)
        self.successes = 0
        self.calls = 0
        self.latency_total_ms = 0
        self.resting_until: datetime | None = None
        self.rate_at_reset: float | None = None

    def add(self, ok: bool, latency_ms: int) -> None:
        if len(self.outcomes) == self.outcomes.maxlen:
            old_ok, old_latency = self.outcomes[0]
            self.successes -= old_ok
            self.latency_total_ms -= old_latency
            self.calls -= 1
        self.outcomes.append((ok, latency_ms))
        self.successes += ok
        self.latency_total_ms += latency_ms
        self.calls += 1

    def rate(self) -> float:
        return self.successes / self.calls if self.calls else 0.0

    def clear(self) -> None:
        self.outcomes.clear()
        self.successes = self.calls = self.latency_total_ms = 0

    def snapshot(self) -> WindowSnapshot:
        return WindowSnapshot(self.calls, self.successes, self.latency_total_ms, self.resting_until,
                              self.rate_at_reset)


class WindowSet:
    """All channels' windows of one (merchant, method), fed the outcome stream in order."""

    def __init__(self, settings: SuccessRateSettings) -> None:
        self.settings = settings
        self.channels: dict[str, ChannelWindow] = {}

    def feed(self, channel: str, outcome: str, latency_ms: int, at: datetime) -> bool:
        """Add one outcome; returns True when it made the channel reset."""
        window = self.channels.get(channel)
        if window is None:
            window = self.channels[channel] = ChannelWindow(self.settings.window_size)
        window.add(outcome in WORKING, latency_ms)
        if window.resting_until is not None and at < window.resting_until:
            return False
        settings = self.settings
        if window.calls < settings.min_samples:
            return False
        best = max((w.rate() for c, w in self.channels.items()
                    if c != channel and w.calls >= settings.min_samples
                    and (w.resting_until is None or at >= w.resting_until)), default=None)
        rate = window.rate()
        if best is not None and rate < best - settings.reset_gap:
            window.clear()
            window.resting_until = at + timedelta(seconds=settings.retry_after_seconds)
            window.rate_at_reset = rate
            return True
        return False

    def snapshot(self, channels: Sequence[str]) -> dict[str, WindowSnapshot]:
        result = {}
        for channel in channels:
            window = self.channels.get(channel)
            result[channel] = window.snapshot() if window is not None else EMPTY_WINDOW
        return result


# ---------------------------------------------------------------------------------------------- breakers


@dataclass(frozen=True, slots=True)
class Transition:
    channel: str
    from_state: BreakerState
    to_state: BreakerState
    at: datetime
    reason: str


@dataclass
class Breaker:
    """One channel's circuit breaker, driven by its outcome stream and the clock."""

    channel: str
    settings: BreakerSettings
    window: deque[bool] = field(default_factory=deque)
    failures: int = 0
    consecutive_failures: int = 0
    opened_at: datetime | None = None
    probe_successes: int = 0
    last_outcome_at: datetime | None = None

    def state_at(self, now: datetime) -> BreakerState:
        if self.opened_at is None:
            return BreakerState.CLOSED
        if now < self.opened_at + timedelta(seconds=self.settings.cooldown_seconds):
            return BreakerState.OPEN
        return BreakerState.HALF_OPEN

    def half_open_at(self) -> datetime | None:
        if self.opened_at is None:
            return None
        return self.opened_at + timedelta(seconds=self.settings.cooldown_seconds)

    def error_rate(self) -> float:
        return self.failures / len(self.window) if self.window else 0.0

    def _open(self, at: datetime) -> None:
        self.opened_at = at
        self.probe_successes = 0
        self.window.clear()
        self.failures = 0

    def feed(self, outcome: str, at: datetime) -> list[Transition]:
        ok = outcome in WORKING
        self.last_outcome_at = at
        state = self.state_at(at)
        if state is BreakerState.OPEN:
            # Results of calls made before the breaker opened (or last-resort tries) prove nothing new.
            return []
        if state is BreakerState.HALF_OPEN:
            if not ok:
                self._open(at)
                self.consecutive_failures += 1
                return [Transition(self.channel, BreakerState.HALF_OPEN, BreakerState.OPEN, at,
                                   f"probe failed ({outcome})")]
            self.probe_successes += 1
            self.consecutive_failures = 0
            if self.probe_successes >= self.settings.probe_successes:
                self.opened_at = None
                self.probe_successes = 0
                return [Transition(self.channel, BreakerState.HALF_OPEN, BreakerState.CLOSED, at,
                                   f"{self.settings.probe_successes} probe successes")]
            return []
        if len(self.window) >= self.settings.window_size:
            self.failures -= not self.window.popleft()
        self.window.append(ok)
        self.failures += not ok
        self.consecutive_failures = 0 if ok else self.consecutive_failures + 1
        reason = None
        if self.consecutive_failures >= self.settings.consecutive_failures:
            reason = f"{self.consecutive_failures} consecutive failures"
        elif len(self.window) >= self.settings.min_calls and self.error_rate() >= self.settings.error_rate:
            reason = f"error rate {self.error_rate():.2f} over {len(self.window)} calls"
        if reason is None:
            return []
        self._open(at)
        return [Transition(self.channel, BreakerState.CLOSED, BreakerState.OPEN, at, reason)]


class BreakerBoard:
    """Every channel's breaker for one tenant."""

    def __init__(self, settings: BreakerSettings) -> None:
        self.settings = settings
        self.breakers: dict[str, Breaker] = {}

    def breaker(self, channel: str) -> Breaker:
        found = self.breakers.get(channel)
        if found is None:
            found = self.breakers[channel] = Breaker(channel, self.settings)
        return found

    def feed(self, channel: str, outcome: str, at: datetime) -> list[Transition]:
        return self.breaker(channel).feed(outcome, at)

    def states(self, channels: Sequence[str], now: datetime) -> dict[str, BreakerState]:
        result = {}
        for channel in channels:
            found = self.breakers.get(channel)
            result[channel] = found.state_at(now) if found is not None else BreakerState.CLOSED
        return result


def finite(value: float) -> float:
    """Scores go to JSON: a non-finite one would not survive the trip."""
    return value if math.isfinite(value) else 0.0
