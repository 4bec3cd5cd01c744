"""Channels & routing: every channel with its circuit breaker and how often it worked over time, one
channel's story, and the routing configurations (the tenant default and each merchant's), changed here through
the API's own service call and permission (``tenant.configure``)."""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response
from markupsafe import Markup
from sqlalchemy import case, func, select
from sqlalchemy.orm import Session

from finloop.console import charts
from finloop.console.actions import act
from finloop.console.auth import ActingStaff, CurrentStaff, database, form_of
from finloop.console.web import Column, Filter, badge, choice, equals, html, listing, percent, reference_now
from finloop.core.errors import InvalidRequest, NotFound
from finloop.db.uow import UnitOfWork
from finloop.payments import service as payments
from finloop.payments.models import Channel, Merchant
from finloop.payments.routing import service as routing
from finloop.payments.routing.domain import WORKING, RoutingConfig
from finloop.payments.routing.models import RoutingConfigRow, RoutingOutcome

router = APIRouter()

#: The permission the API's ``PUT /v1/routing/configs/...`` asks for.
CONFIGURE = "tenant.configure"
DEFAULT_SCOPE = routing.DEFAULT_SCOPE
#: How far back each grain of the success-rate charts looks.
SPANS = {"day": timedelta(days=30), "hour": timedelta(hours=48)}
MAX_CONFIG_CHARS = 100_000


# ---------------------------------------------------------------------------------------------- series


@dataclass(frozen=True)
class Point:
    """One channel's outcomes in one hour or day."""

    bucket: str
    channel: str
    calls: int
    working: int
    latency_total_ms: int

    @property
    def success_rate(self) -> float:
        return self.working / self.calls if self.calls else 0.0


def _bucket(uow: UnitOfWork, grain: str) -> Any:
    """The UTC day (``2026-11-26``) or hour (``2026-11-26 09:00``) of an outcome, as text on either database."""
    if uow.dialect == "postgresql":
        pattern = "YYYY-MM-DD" if grain == "day" else "YYYY-MM-DD HH24:00"
        return func.to_char(func.timezone("UTC", RoutingOutcome.at), pattern)
    return func.strftime("%Y-%m-%d" if grain == "day" else "%Y-%m-%d %H:00", RoutingOutcome.at)


def _grain(request: Request) -> str:
    grain = request.query_params.get("by", "day")
    if grain not in SPANS:
        raise InvalidRequest("by is day or hour.", code="invalid_grain", param="by")
    return grain


def outcome_series(uow: UnitOfWork, tenant_id: str, grain: str, now: datetime, *,
                   channel: str | None = None) -> list[Point]:
    """Outcomes per channel and hour or day over the grain's span; a decline counts as working, since the
    channel answered (the routing windows count it the same way)."""
    since = now - SPANS[grain]
    bucket = _bucket(uow, grain).label("bucket")
    working = func.sum(case((RoutingOutcome.outcome.in_(sorted(WORKING)), 1), else_=0)).label("working")
    query = (select(bucket, RoutingOutcome.channel, func.count().label("calls"), working,
                    func.sum(RoutingOutcome.latency_ms).label("latency"))
             .where(RoutingOutcome.tenant_id == tenant_id, RoutingOutcome.at >= since)
             # By the label: on PostgreSQL a repeated to_char(...) would carry its own parameters and differ.
             .group_by("bucket", RoutingOutcome.channel).order_by("bucket", RoutingOutcome.channel))
    if channel is not None:
        query = query.where(RoutingOutcome.channel == channel)
    return [Point(str(row.bucket), row.channel, int(row.calls), int(row.working or 0), int(row.latency or 0))
            for row in uow.session.execute(query)]


def _labels(now: datetime, grain: str) -> list[str]:
    """Every hour or day of the span, so a quiet one shows as a gap rather than being left out."""
    if grain == "day":
        first = (now - SPANS["day"]).date()
        return [(first + timedelta(days=i)).isoformat() for i in range(SPANS["day"].days + 1)]
    start = (now - SPANS["hour"]).replace(minute=0, second=0, microsecond=0)
    hours = int(SPANS["hour"].total_seconds() // 3600)
    return [(start + timedelta(hours=i)).strftime("%Y-%m-%d %H:00") for i in range(hours + 1)]


def _short(label: str, grain: str) -> str:
    """``11-26`` for a day, ``26 09:00`` for an hour: the axis has little room."""
    return label[5:] if grain == "day" else label[8:]


def _chart(points: list[Point], labels: list[str], grain: str, value: str, **options: Any) -> Markup:
    by_channel: dict[str, dict[str, Point]] = defaultdict(dict)
    for point in points:
        by_channel[point.channel][point.bucket] = point

    def measure(point: Point | None) -> float | None:
        if point is None or not point.calls:
            return None
        return point.success_rate if value == "rate" else point.latency_total_ms / point.calls

    series: dict[str, Sequence[tuple[str, charts.Number | None]]] = {
        channel: [(_short(label, grain), measure(found.get(label))) for label in labels]
        for channel, found in sorted(by_channel.items())}
    if not series:
        series = {"no outcomes": [(_short(label, grain), None) for label in labels]}
    return charts.line_chart(series, **options)


def rate_chart(points: list[Point], labels: list[str], grain: str) -> Markup:
    return _chart(points, labels, grain, "rate", title="Success rate", y_format=charts.pct_axis, y_max=1.0)


def latency_chart(points: list[Point], labels: list[str], grain: str) -> Markup:
    return _chart(points, labels, grain, "latency", title="Mean latency (ms)")


# ---------------------------------------------------------------------------------------------- pages


def _health_by_channel(uow: UnitOfWork, tenant_id: str) -> dict[str, routing.ChannelHealth]:
    return {health.channel: health for health in routing.channel_health(uow, tenant_id)}


@router.get("/channels")
def landing(request: Request, staff: CurrentStaff) -> Response:
    grain = _grain(request)
    with database(request).uow(read_only=True) as uow:
        health = _health_by_channel(uow, staff.tenant_id)
        now = reference_now(uow.session, staff, uow.clock.now())
        points = outcome_series(uow, staff.tenant_id, grain, now)
        labels = _labels(now, grain)
        totals: dict[str, list[int]] = defaultdict(lambda: [0, 0])
        for point in points:
            totals[point.channel][0] += point.calls
            totals[point.channel][1] += point.working

        def state(channel: Channel) -> str:
            found = health.get(channel.code)
            return found.state.value if found else "closed"

        def error_rate(channel: Channel) -> float | None:
            found = health.get(channel.code)
            return found.error_rate if found else None

        def span_rate(channel: Channel) -> float | None:
            calls, working = totals.get(channel.code, [0, 0])
            return working / calls if calls else None

        columns = (
            Column("Channel", lambda c: c.code, link=lambda c: f"/console/channels/{c.code}"),
            Column("Provider", lambda c: c.provider),
            Column("Status", lambda c: c.status, show=lambda c: badge(c.status)),
            Column("Breaker", state, show=lambda c: badge(state(c))),
            Column("Recent error rate", error_rate, show=lambda c: percent(error_rate(c)), numeric=True),
            Column("Calls in breaker window", lambda c: health[c.code].calls if c.code in health else 0,
                   numeric=True),
            Column(f"Success rate ({'30 days' if grain == 'day' else '48 hours'})", span_rate,
                   show=lambda c: percent(span_rate(c)), numeric=True),
            Column("Methods", lambda c: " ".join(c.methods)),
            Column("Currencies", lambda c: " ".join(c.currencies)),
            Column("Fee rate", lambda c: c.fee_rate, show=lambda c: percent(c.fee_rate, 2), numeric=True),
        )
        configs = _config_rows(uow.session, staff.tenant_id)
        default = routing.get_config(uow, staff.tenant_id, None)
        return listing(request, uow.session, select(Channel).where(Channel.tenant_id == staff.tenant_id),
                       title="Channels & routing", columns=columns, order_by=(Channel.code,),
                       filters=(Filter("status", "Status", equals(Channel.status), choice("enabled", "disabled")),),
                       search=lambda q: Channel.code.contains(q, autoescape=True), search_label="channel code",
                       export_name="channels", template="channels/index.html", grain=grain,
                       chart=rate_chart(points, labels, grain), configs=configs, default=default)


def _config_rows(session: Session, tenant_id: str) -> list[Any]:
    return list(session.execute(
        select(RoutingConfigRow.scope, RoutingConfigRow.merchant_id, RoutingConfigRow.version,
               RoutingConfigRow.updated_at, RoutingConfigRow.body, Merchant.name)
        .outerjoin(Merchant, (Merchant.id == RoutingConfigRow.merchant_id) & (Merchant.tenant_id == tenant_id))
        .where(RoutingConfigRow.tenant_id == tenant_id).order_by(RoutingConfigRow.scope != DEFAULT_SCOPE,
                                                                  RoutingConfigRow.scope)))


@router.get("/channels/{code}")
def channel_detail(request: Request, staff: CurrentStaff, code: str) -> Response:
    grain = _grain(request)
    with database(request).uow(read_only=True) as uow:
        channel = uow.session.scalar(select(Channel).where(Channel.tenant_id == staff.tenant_id,
                                                           Channel.code == code))
        if channel is None:
            raise NotFound(f"No such channel: {code[:40]}.", code="channel_not_found", param="code")
        health = _health_by_channel(uow, staff.tenant_id).get(channel.code)
        now = reference_now(uow.session, staff, uow.clock.now())
        points = outcome_series(uow, staff.tenant_id, grain, now, channel=channel.code)
        labels = _labels(now, grain)
        calls = sum(p.calls for p in points)
        working = sum(p.working for p in points)
        latency = sum(p.latency_total_ms for p in points)
        outcomes = list(uow.session.scalars(select(RoutingOutcome).where(
            RoutingOutcome.tenant_id == staff.tenant_id, RoutingOutcome.channel == channel.code)
            .order_by(RoutingOutcome.id.desc()).limit(100)))
        return html(request, "channels/detail.html", channel=channel, health=health, grain=grain,
                    rate=rate_chart(points, labels, grain), latency=latency_chart(points, labels, grain),
                    calls=calls, success_rate=working / calls if calls else None,
                    mean_latency=latency // calls if calls else None, outcomes=outcomes)


# ---------------------------------------------------------------------------------------------- configs


def _merchant_of(uow: UnitOfWork, tenant_id: str, scope: str) -> str | None:
    """The merchant a config scope names (None: the tenant default); another tenant's merchant is not found."""
    if scope == DEFAULT_SCOPE:
        return None
    return payments.get_merchant(uow, tenant_id, scope, param="scope").id


@router.get("/channels/routing/{scope}")
def config_detail(request: Request, staff: CurrentStaff, scope: str) -> Response:
    with database(request).uow(read_only=True) as uow:
        merchant_id = _merchant_of(uow, staff.tenant_id, scope)
        merchant = payments.get_merchant(uow, staff.tenant_id, merchant_id) if merchant_id else None
        record = routing.get_config(uow, staff.tenant_id, merchant_id)
        body = json.dumps(record.config.model_dump(mode="json"), indent=2, sort_keys=True)
        return html(request, "channels/config.html", scope=scope, merchant=merchant, record=record, body=body,
                    own=record.source == ("merchant" if merchant_id else "default"))


def parse_body(text: str | None) -> RoutingConfig:
    """A config from the form's JSON: malformed JSON or a config the API would refuse is a 400 naming the field."""
    if not text or not text.strip():
        raise InvalidRequest("The configuration is required.", code="missing_field", param="config")
    if len(text) > MAX_CONFIG_CHARS:
        raise InvalidRequest(f"A configuration is at most {MAX_CONFIG_CHARS} characters.", code="config_too_large",
                             param="config")
    try:
        body = json.loads(text)
    except json.JSONDecodeError as error:
        raise InvalidRequest(f"Not JSON: {error.msg} at line {error.lineno}, column {error.colno}.",
                             code="invalid_json", param="config") from None
    if not isinstance(body, dict):
        raise InvalidRequest("A configuration is a JSON object.", code="invalid_json", param="config")
    return routing.parse_config(body)


@router.post("/channels/routing/{scope}")
def config_update(request: Request, staff: ActingStaff, scope: str) -> Response:
    form = form_of(request)
    with database(request).uow(read_only=True) as uow:
        merchant_id = _merchant_of(uow, staff.tenant_id, scope)

    def work(uow: UnitOfWork) -> routing.ConfigRecord:
        return routing.set_config(uow, staff.principal, merchant_id, parse_body(form.get("config")))

    return act(request, staff, action="routing.config_set", object_type="routing_config", object_id=scope,
               work=work, permission=CONFIGURE, form=form, done="Routing configuration saved.",
               back=f"/console/channels/routing/{scope}")
