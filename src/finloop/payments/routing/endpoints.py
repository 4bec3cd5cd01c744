"""Routing HTTP endpoints: per-merchant configs, stored decisions (explained and replayed), channel health.

Reads need any role; changing a config needs ``tenant.configure``. Everything is scoped to the caller's tenant:
another tenant's decision is not found.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path
from fastapi.responses import JSONResponse

from finloop.api.deps import CurrentPrincipal, CurrentReader, Writer, get_database
from finloop.db.uow import Database
from finloop.payments.routing import service
from finloop.payments.routing.domain import RoutingConfig
from finloop.payments.routing.schemas import (
    ChannelHealthList,
    ChannelHealthRead,
    ReplayRead,
    RouteDecisionRead,
    RoutingConfigRead,
)

router = APIRouter(tags=["routing"])
MerchantId = Annotated[str, Path(min_length=1, max_length=40, pattern=r"^[A-Za-z0-9_]+$")]
DecisionId = Annotated[str, Path(min_length=1, max_length=40, pattern=r"^[A-Za-z0-9_]+$")]


def _unkeyed_writer(db: Annotated[Database, Depends(get_database)], principal: CurrentPrincipal) -> Writer:
    return Writer(db, principal)


#: PUT replaces a whole config, so repeating it is harmless: no Idempotency-Key.
UnkeyedWriter = Annotated[Writer, Depends(_unkeyed_writer)]


def read_config(record: service.ConfigRecord) -> RoutingConfigRead:
    source = record.source if record.source in ("merchant", "default") else "builtin"
    return RoutingConfigRead(merchant_id=record.merchant_id, source=source,
                             version=record.version, config=record.config, updated_at=record.updated_at)


def read_decision(stored: service.StoredDecision) -> RouteDecisionRead:
    replayed = service.replay_stored(stored)
    d = stored.decision
    return RouteDecisionRead(
        id=d.id, merchant_id=stored.merchant_id, payment_id=stored.payment_id, strategy=d.strategy,
        ranked=list(d.ranked), scores=dict(d.scores), reason=d.reason, explored=d.explored,
        rng_seed=str(stored.inputs.rng_seed), config_scope=stored.config_scope, config_version=stored.config_version,
        config=stored.config, inputs=stored.inputs.to_json(),
        replay=ReplayRead(ranked=list(replayed.replayed.ranked), explored=replayed.replayed.explored,
                          matches=replayed.matches),
        created_at=stored.created_at)


def read_health(health: service.ChannelHealth) -> ChannelHealthRead:
    return ChannelHealthRead(channel=health.channel, state=health.state, calls=health.calls,
                             failures=health.failures, error_rate=health.error_rate,
                             consecutive_failures=health.consecutive_failures, opened_at=health.opened_at,
                             half_open_at=health.half_open_at, last_outcome_at=health.last_outcome_at)


@router.get("/routing/configs/default", response_model=RoutingConfigRead,
            summary="The tenant-wide routing config, used by merchants without their own")
def get_default_config(reader: CurrentReader) -> RoutingConfigRead:
    return reader.run(lambda uow: read_config(service.get_config(uow, reader.tenant_id, None)))


@router.put("/routing/configs/default", response_model=RoutingConfigRead,
            summary="Replace the tenant-wide routing config")
def put_default_config(body: RoutingConfig, writer: UnkeyedWriter) -> JSONResponse:
    return writer.run(lambda uow: read_config(service.set_config(uow, writer.principal, None, body)),
                      permission="tenant.configure")


@router.get("/routing/configs/{merchant_id}", response_model=RoutingConfigRead,
            summary="The routing config that applies to a merchant (its own, else the default)")
def get_config(merchant_id: MerchantId, reader: CurrentReader) -> RoutingConfigRead:
    return reader.run(lambda uow: read_config(service.get_config(uow, reader.tenant_id, merchant_id)))


@router.put("/routing/configs/{merchant_id}", response_model=RoutingConfigRead,
            summary="Replace a merchant's routing config")
def put_config(merchant_id: MerchantId, body: RoutingConfig, writer: UnkeyedWriter) -> JSONResponse:
    return writer.run(lambda uow: read_config(service.set_config(uow, writer.principal, merchant_id, body)),
                      permission="tenant.configure")


@router.get("/routing/decisions/{decision_id}", response_model=RouteDecisionRead,
            summary="A stored routing decision: its inputs, scores and reason, and its replay")
def get_decision(decision_id: DecisionId, reader: CurrentReader) -> RouteDecisionRead:
    return reader.run(lambda uow: read_decision(service.get_decision(uow, reader.tenant_id, decision_id)))


@router.get("/routing/health", response_model=ChannelHealthList,
            summary="Every channel's circuit breaker: state, recent error rate, when it opened")
def get_health(reader: CurrentReader) -> ChannelHealthList:
    return reader.run(lambda uow: ChannelHealthList(
        data=[read_health(h) for h in service.channel_health(uow, reader.tenant_id)]))
