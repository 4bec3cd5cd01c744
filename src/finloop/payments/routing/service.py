"""Routing use cases: configuration, decisions (stored, explainable, replayable), outcomes and channel health.

Invariants owned here:
- no row is updated per payment: ``record_outcome`` appends to ``routing_outcomes`` and ``decide`` inserts
  one ``routing_decisions`` row, so payments never queue behind a shared counter;
- windows and breakers live in a process-local cache rebuilt from that stream: an entry is refreshed from
  the database when older than ``cache_settings.ttl_seconds`` (re-reading the last ``slack_seconds`` of
  rows, deduplicated by id, so rows committed late are still seen), plus the outcomes this process recorded;
- a stored decision holds the config body and version and every input of ``domain.route`` (candidates,
  window snapshot, breaker states, time, rng seed): ``replay`` recomputes the same ranking from it alone;
- a configuration change requires the ``tenant.configure`` permission, bumps the version by one and is
  written to the audit chain with its before and after;
- a breaker transition caused by a recorded outcome is written to the outbox (topic
  ``routing.channel_health_changed``) in the same transaction; open -> half-open, a matter of time, is
  announced by the first decision that sees it in this process. Several processes may announce the same
  transition: consumers deduplicate on (channel, to_state, at).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, cast

from pydantic import ValidationError
from sqlalchemy import Table, insert, select

from finloop.audit import service as audit
from finloop.core.errors import InvalidRequest, NotFound
from finloop.db import outbox
from finloop.db.uow import UnitOfWork
from finloop.payments.routing import domain
from finloop.payments.routing.domain import (
    OUTCOMES,
    BreakerBoard,
    BreakerSettings,
    BreakerState,
    Candidate,
    DecisionInputs,
    RoutingConfig,
    SuccessRateSettings,
    Transition,
    WindowSet,
)
from finloop.payments.routing.models import RoutingConfigRow, RoutingDecision, RoutingOutcome
from finloop.tenancy.service import Principal

__all__ = ["Candidate", "ChannelHealth", "ConfigRecord", "RouteDecision", "StoredDecision", "cache_settings",
           "channel_health", "decide", "get_config", "get_decision", "record_outcome", "replay", "set_config"]

DEFAULT_SCOPE = "default"
HEALTH_TOPIC = "routing.channel_health_changed"
_MAX_KEY = 40

outcomes_t = cast(Table, RoutingOutcome.__table__)
decisions_t = cast(Table, RoutingDecision.__table__)


@dataclass(frozen=True, slots=True)
class RouteDecision:
    id: str                # rtd_..., stored
    strategy: str          # e.g. "success_rate", "priority", "weighted", "lowest_cost", "lowest_latency"
    ranked: tuple[str, ...]  # channels in the order to try: primary first, then the fallback chain
    scores: Mapping[str, float]
    reason: str
    explored: bool


@dataclass(frozen=True, slots=True)
class StoredDecision:
    decision: RouteDecision
    merchant_id: str
    payment_id: str
    config: RoutingConfig
    config_version: int
    config_scope: str
    inputs: DecisionInputs
    created_at: datetime


@dataclass(frozen=True, slots=True)
class ReplayResult:
    original: RouteDecision
    replayed: domain.Ranking

    @property
    def matches(self) -> bool:
        return self.original.ranked == self.replayed.ranked and self.original.explored == self.replayed.explored


@dataclass(frozen=True, slots=True)
class ChannelHealth:
    channel: str
    state: BreakerState
    calls: int                 # outcomes in the breaker's window
    failures: int
    error_rate: float
    consecutive_failures: int
    opened_at: datetime | None
    half_open_at: datetime | None
    last_outcome_at: datetime | None


@dataclass(frozen=True, slots=True)
class ConfigRecord:
    merchant_id: str | None    # None: the tenant-wide default
    source: str                # "merchant", "default" (the tenant's) or "builtin" (nothing configured)
    version: int
    config: RoutingConfig
    updated_at: datetime | None


@dataclass
class CacheSettings:
    #: How old a cached window or config may get before it is refreshed from the database (0: every call).
    ttl_seconds: float = 1.0
    #: The same for configs; a change made through this process is seen at once, one made elsewhere after this.
    config_ttl_seconds: float = 5.0
    #: Rows this recent are read again on every refresh, so a transaction that committed late is not missed.
    slack_seconds: float = 2.0
    #: How many of the newest outcomes a cold cache entry loads.
    cold_rows: int = 5000


cache_settings = CacheSettings()


# ---------------------------------------------------------------------------------------------- cache


@dataclass
class _Stream:
    """A cached fold over part of the outcome stream."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    refreshed: float = -1.0
    watermark: datetime | None = None
    seen: dict[int, datetime] = field(default_factory=dict)

    def due(self) -> bool:
        return self.watermark is None or time.monotonic() - self.refreshed >= cache_settings.ttl_seconds

    def load(self, uow: UnitOfWork, where: list[Any], feed: Callable[[Any], object]) -> None:
        now = uow.clock.now()
        columns = [outcomes_t.c.id, outcomes_t.c.channel, outcomes_t.c.outcome, outcomes_t.c.latency_ms,
                   outcomes_t.c.at]
        if self.watermark is None:
            rows = list(uow.session.execute(select(*columns).where(*where).order_by(outcomes_t.c.id.desc())
                                            .limit(cache_settings.cold_rows)))
            rows.reverse()
        else:
            since = self.watermark - timedelta(seconds=cache_settings.slack_seconds)
            rows = list(uow.session.execute(select(*columns).where(*where, outcomes_t.c.at >= since)
                                            .order_by(outcomes_t.c.at, outcomes_t.c.id)))
        for row in rows:
            if row.id in self.seen:
                continue
            self.seen[row.id] = row.at
            feed(row)
        self.watermark = now
        self.refreshed = time.monotonic()
        horizon = now - timedelta(seconds=cache_settings.slack_seconds)
        if len(self.seen) > 64:
            self.seen = {key: at for key, at in self.seen.items() if at >= horizon}


@dataclass
class _Windows(_Stream):
    windows: WindowSet = field(default_factory=lambda: WindowSet(SuccessRateSettings()))


@dataclass
class _Board(_Stream):
    board: BreakerBoard = field(default_factory=lambda: BreakerBoard(BreakerSettings()))
    #: The last state this process announced per channel, so each transition is announced once here.
    announced: dict[str, BreakerState] = field(default_factory=dict)


@dataclass(frozen=True)
class _CachedConfig:
    record: ConfigRecord
    loaded: float


_windows: dict[tuple[str, str, str], _Windows] = {}
_boards: dict[str, _Board] = {}
_configs: dict[tuple[str, str], _CachedConfig] = {}


def reset_cache() -> None:
    """Forget every cached window, breaker and config (tests; a process that changed databases)."""
    _windows.clear()
    _boards.clear()
    _configs.clear()


def _window_entry(uow: UnitOfWork, tenant_id: str, merchant_id: str, method: str,
                  settings: SuccessRateSettings) -> _Windows:
    key = (tenant_id, merchant_id, method)
    entry = _windows.get(key)
    if entry is None or entry.windows.settings != settings:
        entry = _windows[key] = _Windows(windows=WindowSet(settings))
    if entry.due():
        with entry.lock:
            if entry.due():
                windows = entry.windows
                entry.load(uow, [outcomes_t.c.tenant_id == tenant_id, outcomes_t.c.merchant_id == merchant_id,
                                 outcomes_t.c.method == method],
                           lambda row: windows.feed(row.channel, row.outcome, row.latency_ms, row.at))
    return entry


def _board_entry(uow: UnitOfWork, tenant_id: str, settings: BreakerSettings) -> _Board:
    entry = _boards.get(tenant_id)
    if entry is None or entry.board.settings != settings:
        entry = _boards[tenant_id] = _Board(board=BreakerBoard(settings))
    if entry.due():
        with entry.lock:
            if entry.due():
                board = entry.board
                entry.load(uow, [outcomes_t.c.tenant_id == tenant_id],
                           lambda row: board.feed(row.channel, row.outcome, row.at))
    return entry


# ---------------------------------------------------------------------------------------------- config


def _scope(merchant_id: str | None) -> str:
    if merchant_id is None:
        return DEFAULT_SCOPE
    if merchant_id == DEFAULT_SCOPE or not merchant_id or len(merchant_id) > _MAX_KEY \
            or not all(ch.isascii() and (ch.isalnum() or ch == "_") for ch in merchant_id):
        raise InvalidRequest("A merchant id is 1 to 40 letters, digits or underscores ('default' is reserved).",
                             code="invalid_merchant_id", param="merchant_id")
    return merchant_id


def _load_config(uow: UnitOfWork, tenant_id: str, scope: str) -> ConfigRecord | None:
    row = uow.session.execute(select(RoutingConfigRow).where(
        RoutingConfigRow.tenant_id == tenant_id, RoutingConfigRow.scope == scope)).scalar_one_or_none()
    if row is None:
        return None
    return ConfigRecord(merchant_id=row.merchant_id, source="merchant" if row.merchant_id else "default",
                        version=row.version, config=RoutingConfig.model_validate(row.body),
                        updated_at=row.updated_at)


def _cached_config(uow: UnitOfWork, tenant_id: str, scope: str) -> ConfigRecord | None:
    key = (tenant_id, scope)
    cached = _configs.get(key)
    now = time.monotonic()
    if cached is not None and now - cached.loaded < cache_settings.config_ttl_seconds:
        return cached.record if cached.record.version >= 0 else None
    record = _load_config(uow, tenant_id, scope)
    # A missing config is cached too (as version -1), so a merchant without one costs no query per payment.
    _configs[key] = _CachedConfig(record or ConfigRecord(None, "none", -1, domain.DEFAULT_CONFIG, None), now)
    return record


def _builtin() -> ConfigRecord:
    return ConfigRecord(merchant_id=None, source="builtin", version=0, config=domain.DEFAULT_CONFIG, updated_at=None)


def effective_config(uow: UnitOfWork, tenant_id: str, merchant_id: str) -> ConfigRecord:
    """The merchant's config, else the tenant's default, else the built-in default (success rate)."""
    return (_cached_config(uow, tenant_id, _scope(merchant_id)) or _cached_config(uow, tenant_id, DEFAULT_SCOPE)
            or _builtin())


def get_config(uow: UnitOfWork, tenant_id: str, merchant_id: str | None) -> ConfigRecord:
    """What applies to ``merchant_id`` (None: the tenant default), read fresh; ``source`` says where it came from."""
    scope = _scope(merchant_id)
    record = _load_config(uow, tenant_id, scope)
    if record is not None:
        return record
    if merchant_id is not None:
        record = _load_config(uow, tenant_id, DEFAULT_SCOPE)
        if record is not None:
            return record
    return _builtin()


def parse_config(body: Mapping[str, Any]) -> RoutingConfig:
    """Validate a config body from a file (the API validates its body itself): errors name their field."""
    try:
        return RoutingConfig.model_validate(body)
    except ValidationError as error:
        first = error.errors()[0]
        param = ".".join(str(part) for part in first.get("loc", ())) or None
        raise InvalidRequest(f"{param + ': ' if param else ''}{first.get('msg', 'invalid config')}",
                             code=str(first.get("type", "invalid_config")), param=param) from error


def set_config(uow: UnitOfWork, principal: Principal, merchant_id: str | None, config: RoutingConfig) -> ConfigRecord:
    """Create or replace a merchant's config (None: the tenant default); audited, version + 1."""
    principal.require("tenant.configure")
    scope = _scope(merchant_id)
    tenant_id = principal.tenant_id
    body = config.model_dump(mode="json")
    now = uow.clock.now()
    row = uow.session.execute(select(RoutingConfigRow).where(
        RoutingConfigRow.tenant_id == tenant_id, RoutingConfigRow.scope == scope).with_for_update()
    ).scalar_one_or_none()
    before = None
    if row is None:
        row = RoutingConfigRow(id=uow.ids.new("routing_config"), tenant_id=tenant_id, scope=scope,
                               merchant_id=merchant_id, body=body, version=1, created_at=now, updated_at=now)
        uow.session.add(row)
    else:
        if row.body == body:
            return _record(row)
        before = {"version": row.version, "config": row.body}
        row.body = body
        row.version += 1
        row.updated_at = now
    uow.session.flush()
    audit.record(uow, tenant_id, actor=principal.actor, action="routing.config_set", object_type="routing_config",
                 object_id=row.id, before=before,
                 after={"merchant_id": merchant_id, "version": row.version, "config": body})
    _configs.pop((tenant_id, scope), None)
    return _record(row)


def _record(row: RoutingConfigRow) -> ConfigRecord:
    return ConfigRecord(merchant_id=row.merchant_id, source="merchant" if row.merchant_id else "default",
                        version=row.version, config=RoutingConfig.model_validate(row.body), updated_at=row.updated_at)


# ---------------------------------------------------------------------------------------------- decisions


def _check_key(value: str, param: str) -> None:
    if not isinstance(value, str) or not value or len(value) > _MAX_KEY:
        raise InvalidRequest(f"{param} is 1 to {_MAX_KEY} characters.", code=f"invalid_{param}", param=param)


def build_inputs(uow: UnitOfWork, tenant_id: str, record: ConfigRecord, *, merchant_id: str, payment_id: str,
                 method: str, amount: int, currency: str, customer_segment: str | None,
                 candidates: Sequence[Candidate]) -> tuple[DecisionInputs, _Board]:
    default = record if record.source in ("default", "builtin") else (
        _cached_config(uow, tenant_id, DEFAULT_SCOPE) or _builtin())
    channels = [c.channel for c in candidates]
    windows = _window_entry(uow, tenant_id, merchant_id, method, record.config.success_rate)
    board = _board_entry(uow, tenant_id, default.config.breaker)
    now = uow.clock.now()
    # Under the locks so that a snapshot never mixes half of a concurrent feed.
    with windows.lock:
        snapshot = windows.windows.snapshot(channels)
    with board.lock:
        states = board.board.states(channels, now)
    inputs = DecisionInputs(
        method=method, amount=amount, currency=currency, customer_segment=customer_segment,
        candidates=tuple(candidates), windows=snapshot, breakers=states, now=now,
        rng_seed=domain.rng_seed(record.config.seed, tenant_id, payment_id))
    return inputs, board


def decide(uow: UnitOfWork, tenant_id: str, *, merchant_id: str, payment_id: str, method: str, amount: int,
           currency: str, customer_segment: str | None, candidates: Sequence[Candidate]) -> RouteDecision:
    """Rank the channels for one payment and store the decision with everything needed to replay it."""
    if not candidates:
        raise InvalidRequest("No channel is available for this payment.", code="no_channel_available",
                             param="channel")
    _check_key(merchant_id, "merchant_id")
    _check_key(payment_id, "payment_id")
    _check_key(method, "method")
    for candidate in candidates:
        _check_key(candidate.channel, "channel")
    record = effective_config(uow, tenant_id, merchant_id)
    inputs, board = build_inputs(uow, tenant_id, record, merchant_id=merchant_id, payment_id=payment_id,
                                 method=method, amount=amount, currency=currency, customer_segment=customer_segment,
                                 candidates=candidates)
    ranking = domain.route(record.config, inputs)
    _announce_half_open(uow, tenant_id, board, inputs)
    decision = RouteDecision(id=uow.ids.new("routing_decision"), strategy=ranking.strategy, ranked=ranking.ranked,
                             scores={c: domain.finite(s) for c, s in ranking.scores.items()}, reason=ranking.reason,
                             explored=ranking.explored)
    uow.session.execute(insert(decisions_t).values(
        id=decision.id, tenant_id=tenant_id, merchant_id=merchant_id, payment_id=payment_id,
        strategy=decision.strategy, ranked=list(decision.ranked), scores=dict(decision.scores),
        reason=decision.reason[:4000], explored=decision.explored, rng_seed=inputs.rng_seed,
        config=record.config.model_dump(mode="json"), config_version=record.version,
        config_scope=_scope(record.merchant_id) if record.source == "merchant" else record.source,
        inputs=inputs.to_json(), created_at=inputs.now))
    return decision


def _announce_half_open(uow: UnitOfWork, tenant_id: str, entry: _Board, inputs: DecisionInputs) -> None:
    for channel, state in inputs.breakers.items():
        if state is not BreakerState.HALF_OPEN or entry.announced.get(channel) is BreakerState.HALF_OPEN:
            continue
        with entry.lock:
            if entry.announced.get(channel) is BreakerState.HALF_OPEN:
                continue
            entry.announced[channel] = BreakerState.HALF_OPEN
            at = entry.board.breaker(channel).half_open_at() or inputs.now
        _emit(uow, tenant_id, Transition(channel, BreakerState.OPEN, BreakerState.HALF_OPEN, at, "cool-down elapsed"))


def _emit(uow: UnitOfWork, tenant_id: str, transition: Transition) -> None:
    outbox.enqueue(uow, tenant_id=tenant_id, topic=HEALTH_TOPIC, payload={
        "channel": transition.channel, "from_state": transition.from_state.value,
        "to_state": transition.to_state.value, "at": transition.at.isoformat(), "reason": transition.reason})


def get_decision(uow: UnitOfWork, tenant_id: str, decision_id: str) -> StoredDecision:
    row = uow.session.get(RoutingDecision, decision_id) if isinstance(decision_id, str) else None
    if row is None or row.tenant_id != tenant_id:
        raise NotFound("No such routing decision.", code="routing_decision_not_found", param="id")
    decision = RouteDecision(id=row.id, strategy=row.strategy, ranked=tuple(row.ranked), scores=dict(row.scores),
                             reason=row.reason, explored=row.explored)
    return StoredDecision(decision=decision, merchant_id=row.merchant_id, payment_id=row.payment_id,
                          config=RoutingConfig.model_validate(row.config), config_version=row.config_version,
                          config_scope=row.config_scope, inputs=DecisionInputs.from_json(row.inputs),
                          created_at=row.created_at)


def replay_stored(stored: StoredDecision) -> ReplayResult:
    """Recompute the ranking from the stored config and inputs alone."""
    return ReplayResult(original=stored.decision, replayed=domain.route(stored.config, stored.inputs))


def replay(uow: UnitOfWork, tenant_id: str, decision_id: str) -> ReplayResult:
    return replay_stored(get_decision(uow, tenant_id, decision_id))


def list_decisions(uow: UnitOfWork, tenant_id: str, *, payment_id: str | None = None,
                   limit: int = 100) -> list[StoredDecision]:
    query = select(RoutingDecision.id).where(RoutingDecision.tenant_id == tenant_id)
    if payment_id is not None:
        query = query.where(RoutingDecision.payment_id == payment_id)
    ids = list(uow.session.scalars(query.order_by(RoutingDecision.id).limit(limit)))
    return [get_decision(uow, tenant_id, decision_id) for decision_id in ids]


# ---------------------------------------------------------------------------------------------- outcomes


def record_outcome(uow: UnitOfWork, tenant_id: str, *, merchant_id: str, method: str, channel: str, outcome: str,
                   latency_ms: int) -> None:
    """Append one attempt's outcome; feeds this process's windows and breakers, and emits breaker transitions."""
    if outcome not in OUTCOMES:
        raise InvalidRequest(f"An outcome is one of {', '.join(sorted(OUTCOMES))}.", code="invalid_outcome",
                             param="outcome")
    if isinstance(latency_ms, bool) or not isinstance(latency_ms, int) or not 0 <= latency_ms <= 2**31 - 1:
        raise InvalidRequest("latency_ms is a non-negative integer.", code="invalid_latency", param="latency_ms")
    _check_key(merchant_id, "merchant_id")
    _check_key(method, "method")
    _check_key(channel, "channel")
    record = effective_config(uow, tenant_id, merchant_id)
    default = _cached_config(uow, tenant_id, DEFAULT_SCOPE) or _builtin()
    windows = _window_entry(uow, tenant_id, merchant_id, method, record.config.success_rate)
    board = _board_entry(uow, tenant_id, default.config.breaker)
    at = uow.clock.now()
    row_id = uow.session.execute(insert(outcomes_t).values(
        tenant_id=tenant_id, merchant_id=merchant_id, method=method, channel=channel, outcome=outcome,
        latency_ms=latency_ms, at=at).returning(outcomes_t.c.id)).scalar_one()
    with windows.lock:
        if row_id not in windows.seen:
            windows.seen[row_id] = at
            windows.windows.feed(channel, outcome, latency_ms, at)
    with board.lock:
        transitions: list[Transition] = []
        if row_id not in board.seen:
            board.seen[row_id] = at
            transitions = board.board.feed(channel, outcome, at)
        for transition in transitions:
            _emit(uow, tenant_id, transition)
            board.announced[channel] = transition.to_state


def channel_health(uow: UnitOfWork, tenant_id: str) -> list[ChannelHealth]:
    """Every channel with outcomes in the cached stream, and its breaker's state now."""
    default = _cached_config(uow, tenant_id, DEFAULT_SCOPE) or _builtin()
    entry = _board_entry(uow, tenant_id, default.config.breaker)
    now = uow.clock.now()
    result = []
    with entry.lock:
        for channel in sorted(entry.board.breakers):
            breaker = entry.board.breakers[channel]
            state = breaker.state_at(now)
            result.append(ChannelHealth(
                channel=channel, state=state, calls=len(breaker.window), failures=breaker.failures,
                error_rate=breaker.error_rate(), consecutive_failures=breaker.consecutive_failures,
                opened_at=breaker.opened_at, half_open_at=breaker.half_open_at(),
                last_outcome_at=breaker.last_outcome_at))
    return result
