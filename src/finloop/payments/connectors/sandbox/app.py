"""The sandbox server: every channel's provider API under ``/{channel}``, and the control API under ``/_control``.

Invariants owned here:
- a channel is served by exactly one provider router; all channels share one engine;
- in realtime mode each provider request is answered only after its simulated latency has been
  slept (capped per call), and a timed-out request is held ``timeout_hang_seconds`` before its 504 so the
  client's own timeout fires first; the control API is never delayed;
- the control API changes the engine only through its public methods and answers errors as 4xx JSON.

The control API is unauthenticated: a sandbox is a local test tool and binds to 127.0.0.1 by default.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping, MutableMapping
from dataclasses import asdict, is_dataclass
from datetime import date, timedelta
from typing import Any

import httpx
from fastapi import APIRouter, Body, FastAPI, Response
from fastapi.encoders import jsonable_encoder
from fastapi.responses import JSONResponse

from finloop.core.clock import Clock
from finloop.payments.connectors.base import ChannelConfig, Connector
from finloop.payments.connectors.sandbox.engine import ChannelProfile, SandboxEngine, SandboxFailure, latency_scope
from finloop.payments.connectors.sandbox.notifier import deliver_due
from finloop.payments.connectors.sandbox.provider import SandboxProvider, available_providers, sandbox_provider

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

CONTROL_PREFIX = "/_control"


class _RealtimeLatency:
    """ASGI middleware: hold each provider response for the latency its engine calls drew."""

    def __init__(self, app: ASGIApp, hang_seconds: float) -> None:
        self.app = app
        self.hang_seconds = hang_seconds

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or str(scope.get("path", "")).startswith(CONTROL_PREFIX):
            await self.app(scope, receive, send)
            return
        messages: list[Message] = []

        async def hold(message: Message) -> None:
            messages.append(message)

        with latency_scope() as sink:
            await self.app(scope, receive, hold)
        await asyncio.sleep(self.hang_seconds if sink.timed_out else sink.ms / 1000)
        for message in messages:
            await send(message)


def _plain(value: Any) -> Any:
    if is_dataclass(value) and not isinstance(value, type):
        return jsonable_encoder(asdict(value))
    return jsonable_encoder(value)


def _failure(error: SandboxFailure) -> JSONResponse:
    status = 404 if error.code == "not_found" else 409
    return JSONResponse({"error": {"type": error.kind, "code": error.code, "message": error.message}},
                        status_code=status)


def _invalid(message: str) -> JSONResponse:
    return JSONResponse({"error": {"type": "invalid", "code": "invalid_request", "message": message}},
                        status_code=400)


def control_router(engine: SandboxEngine, channels: Mapping[str, SandboxProvider],
                   notify_client: Callable[[], httpx.Client]) -> APIRouter:
    router = APIRouter(prefix=CONTROL_PREFIX, tags=["sandbox control"])

    def known(channel: str) -> bool:
        return channel in channels

    def unknown(channel: str) -> JSONResponse:
        return JSONResponse({"error": {"type": "invalid", "code": "not_found",
                                       "message": f"no channel {channel}"}}, status_code=404)

    @router.get("/channels")
    def list_channels() -> dict[str, Any]:
        return {name: {"provider": provider.name, "profile": engine.profile(name).to_dict()}
                for name, provider in channels.items()}

    @router.get("/time")
    def get_time() -> dict[str, Any]:
        return {"now": engine.clock.now().isoformat(), "realtime": engine.realtime,
                "next_event_at": _plain(engine.next_event_at())}

    @router.put("/channels/{channel}/profile")
    def set_profile(channel: str, changes: dict[str, Any] = Body(...)) -> Response:
        """Change some fields of the channel's profile (the others keep their values)."""
        if not known(channel):
            return unknown(channel)
        try:
            profile = ChannelProfile.from_dict(changes, base=engine.profile(channel))
        except (ValueError, KeyError, TypeError) as error:
            return _invalid(str(error))
        engine.configure(channel, profile)
        return JSONResponse(profile.to_dict())

    @router.post("/channels/{channel}/outages")
    def add_outage(channel: str, outage: dict[str, Any] = Body(...)) -> Response:
        """``{"start": iso, "end": iso, "kind": "unavailable"|"timeout"}``, or ``{"minutes": n}`` from now."""
        if not known(channel):
            return unknown(channel)
        try:
            if "minutes" in outage:
                start = engine.clock.now()
                end = start + timedelta(minutes=int(outage["minutes"]))
                profile = ChannelProfile.from_dict({"outages": [{"start": start, "end": end,
                                                                 "kind": outage.get("kind", "unavailable")}]})
            else:
                profile = ChannelProfile.from_dict({"outages": [outage]})
        except (ValueError, KeyError, TypeError) as error:
            return _invalid(str(error))
        added = profile.outages[0]
        engine.add_outage(channel, added.start, added.end, added.kind)
        return JSONResponse(engine.profile(channel).to_dict())

    @router.post("/channels/{channel}/payments/{reference}/customer")
    def customer_acts(channel: str, reference: str, move: dict[str, Any] = Body(default={})) -> Response:
        """The customer pays (``{"pays": true}``, the default) or abandons a waiting payment now."""
        if not known(channel):
            return unknown(channel)
        try:
            tx = engine.customer_acts(channel, reference, pays=bool(move.get("pays", True)))
        except SandboxFailure as error:
            return _failure(error)
        return JSONResponse(_plain(tx))

    @router.post("/channels/{channel}/payments/{reference}/disputes")
    def open_dispute(channel: str, reference: str, dispute: dict[str, Any] = Body(...)) -> Response:
        """``{"amount": minor units, "reason": "fraudulent"}``: a dispute notification follows."""
        if not known(channel):
            return unknown(channel)
        amount = dispute.get("amount")
        if isinstance(amount, bool) or not isinstance(amount, int):
            return _invalid("amount is an integer of minor units")
        try:
            opened = engine.open_dispute(channel, reference, amount, str(dispute.get("reason", "fraudulent")))
        except SandboxFailure as error:
            return _failure(error)
        return JSONResponse(_plain(opened), status_code=201)

    @router.post("/advance")
    def advance(step: dict[str, Any] = Body(...)) -> Response:
        """``{"seconds": n}``: move simulated time (when the clock can move) and let the engine catch up."""
        seconds = step.get("seconds")
        if isinstance(seconds, bool) or not isinstance(seconds, int) or seconds < 0:
            return _invalid("seconds is a non-negative integer")
        now = engine.advance_by(timedelta(seconds=seconds))
        return JSONResponse({"now": now.isoformat()})

    @router.post("/notifications/deliver")
    def deliver() -> dict[str, Any]:
        """Deliver every notification due now (instead of waiting for the background notifier)."""
        return {"delivered": deliver_due(engine, channels, notify_client())}

    @router.get("/notifications")
    def pending() -> list[Any]:
        return [_plain(item) for item in engine.pending_notifications()]

    @router.get("/transactions")
    def transactions(channel: str | None = None) -> list[Any]:
        return [_plain(tx) for tx in engine.transactions(channel)]

    @router.get("/refunds")
    def refunds(channel: str | None = None) -> list[Any]:
        return [_plain(record) for record in engine.refunds(channel)]

    @router.get("/payouts")
    def payouts(channel: str | None = None) -> list[Any]:
        return [_plain(record) for record in engine.payouts(channel)]

    @router.get("/disputes")
    def disputes(channel: str | None = None) -> list[Any]:
        return [_plain(record) for record in engine.disputes(channel)]

    @router.get("/channels/{channel}/bills/{business_date}")
    def bill(channel: str, business_date: date) -> Response:
        """The channel's bill file for the date, in its provider's layout."""
        if not known(channel):
            return unknown(channel)
        file = channels[channel].bill(engine.bill(channel, business_date), business_date, channel)
        return Response(content=file.content, media_type=file.media_type,
                        headers={"Content-Disposition": f'attachment; filename="{file.filename}"'})

    return router


def build_sandbox_app(engine: SandboxEngine, channels: Mapping[str, SandboxProvider], *,
                      notify_client: httpx.Client | None = None, timeout_hang_seconds: float = 30.0) -> FastAPI:
    """The sandbox app: ``/{channel}/...`` per provider router, ``/_control/...`` to drive the engine.

    ``notify_client`` POSTs notifications for ``/_control/notifications/deliver`` (default: a plain
    ``httpx.Client`` made on first use)."""
    app = FastAPI(title="finloop sandbox", description="Simulated payment providers on one shared engine.")
    for channel, provider in channels.items():
        if not channel or "/" in channel or channel.startswith("_"):
            raise ValueError(f"bad channel name {channel!r}")
        app.include_router(provider.router(engine, channel), prefix=f"/{channel}", tags=[channel])
    clients: list[httpx.Client] = [notify_client] if notify_client is not None else []

    def client() -> httpx.Client:
        if not clients:
            clients.append(httpx.Client(timeout=10.0))
        return clients[0]

    app.include_router(control_router(engine, channels, client))
    app.state.engine = engine
    app.state.channels = dict(channels)
    if engine.realtime:
        app.add_middleware(_RealtimeLatency, hang_seconds=timeout_hang_seconds)
    return app


class InProcessSandbox:
    """A sandbox inside the test (or demo) process: engine, app, and a ``TestClient`` bound to it.

    ``channels`` maps channel names to provider names (default: every provider with a sandbox, each as
    a channel of its own name). Connectors built with ``.connector(channel)`` speak HTTP to the app
    through ``.client``; ``.deliver_notifications(to)`` POSTs due notifications through ``to`` (e.g. a
    ``TestClient`` of the finloop API)."""

    BASE_URL = "http://sandbox"

    def __init__(self, clock: Clock, seed: int = 0, channels: Mapping[str, str] | None = None, *,
                 profiles: dict[str, ChannelProfile] | None = None, advance_clock: bool = False,
                 remember_unknown: bool = False) -> None:
        names = dict(channels) if channels is not None else {name: name for name in available_providers()}
        self.providers: dict[str, SandboxProvider] = {channel: sandbox_provider(provider)
                                                      for channel, provider in names.items()}
        from fastapi.testclient import TestClient  # test-only dependency (and its import warns)

        self.engine = SandboxEngine(clock, seed=seed, profiles=profiles, advance_clock=advance_clock,
                                    remember_unknown=remember_unknown)
        self.app = build_sandbox_app(self.engine, self.providers)
        self.client: httpx.Client = TestClient(self.app, base_url=self.BASE_URL)

    def config(self, channel: str) -> ChannelConfig:
        return self.providers[channel].channel_config(channel, f"{self.BASE_URL}/{channel}")

    def connector(self, channel: str) -> Connector:
        """The registered connector for the channel, wired to this sandbox."""
        from finloop.payments.connectors.registry import build

        return build(self.config(channel), self.client)

    def deliver_notifications(self, to: httpx.Client, now: Any = None) -> int:
        """Deliver what is due by ``now`` (default: the clock) through ``to``; returns the 2xx count."""
        return deliver_due(self.engine, self.providers, to, now)


def demo_channels_sandbox(db: Any) -> InProcessSandbox:
    """A sandbox in this process for every channel registered at the in-process sandbox's address (what the
    demo registers), on the wall clock, taking refunds of the charges a previous process made."""
    from sqlalchemy import select

    from finloop.core.clock import SystemClock
    from finloop.payments.models import Channel

    with db.uow(read_only=True) as uow:
        found = uow.session.execute(select(Channel.code, Channel.provider).where(
            Channel.base_url.startswith(InProcessSandbox.BASE_URL + "/"))).all()
    return InProcessSandbox(SystemClock(), channels={code: provider for code, provider in found},
                            remember_unknown=True)
