"""A simulated trading day of payments for ``finloop demo``: sandbox channels, an outage, a degraded
channel, intelligent routing against a static single channel, and the ledger check.

Time is simulated: the day runs on its own clock, which the sandbox advances by each call's latency and
the loop advances between payments, so a ten-minute outage takes no real time.
"""

from __future__ import annotations

import random
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from sqlalchemy import func, select

from finloop.core.clock import FrozenClock
from finloop.db.uow import Database
from finloop.payments import flows, gateway, service
from finloop.payments.connectors.sandbox.engine import ChannelProfile, Outage, SandboxEngine, SandboxFailure
from finloop.payments.models import Attempt, Payment
from finloop.payments.state import PaymentStatus

if TYPE_CHECKING:
    from finloop.payments.connectors.sandbox.app import InProcessSandbox

CHANNELS = {"unionpay": "generic", "paypal": "generic", "globalcard": "generic"}
#: The channel the static baseline sends everything to (the first one a merchant would sign up with).
STATIC_CHANNEL = "unionpay"
CURRENCY = "CNY"


@dataclass(frozen=True)
class DayReport:
    payments: int
    succeeded: int
    failovers: int
    static_succeeded: int
    ledger_entries: int
    ledger_ok: bool

    @property
    def success_rate(self) -> float:
        return self.succeeded / self.payments if self.payments else 0.0

    @property
    def static_rate(self) -> float:
        return self.static_succeeded / self.payments if self.payments else 0.0


def _profiles(start: datetime) -> dict[str, ChannelProfile]:
    """Three channels; the first is down for ten minutes, the second degraded for a quarter of an hour."""
    unionpay = ChannelProfile(success_share=Decimal("0.985"), decline_share=Decimal("0.3"), latency_ms=(30, 60, 250))
    unionpay.outages.append(Outage(start + timedelta(minutes=8), start + timedelta(minutes=18)))
    paypal = ChannelProfile(success_share=Decimal("0.98"), decline_share=Decimal("0.3"), latency_ms=(40, 90, 400))
    paypal.degraded.append((start + timedelta(minutes=22), start + timedelta(minutes=37), Decimal("0.6")))
    globalcard = ChannelProfile(success_share=Decimal("0.975"), decline_share=Decimal("0.3"),
                                latency_ms=(50, 120, 500), fee_rate=Decimal("0.008"))
    return {"unionpay": unionpay, "paypal": paypal, "globalcard": globalcard}


@dataclass
class TradingWorld:
    """The sandbox channels and the shop of the simulated days, kept open so the week can go on in them."""

    db: Database
    clock: FrozenClock
    sandbox: InProcessSandbox
    tenant_id: str
    merchant_id: str
    card_id: str
    start: datetime


@contextmanager
def trading_world(db: Database, clock: FrozenClock, tenant_id: str, *, seed: int) -> Iterator[TradingWorld]:
    """A merchant with three sandbox card channels (one down for ten minutes, one degraded for a quarter
    of an hour) on the simulated clock; the connectors talk to the sandbox while the block is open."""
    start = clock.now()
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Using `httpx` with `starlette.testclient`")
        from finloop.payments.connectors.sandbox.app import InProcessSandbox

    sandbox = InProcessSandbox(clock, seed=seed, channels=CHANNELS, profiles=_profiles(start), advance_clock=True)
    with gateway.use_http_client(sandbox.client), warnings.catch_warnings():
        # The in-process sandbox is a TestClient, which frowns on the per-request timeouts connectors set.
        warnings.filterwarnings("ignore", message="You should not use the 'timeout' argument")
        with db.uow() as uow:
            merchant = service.create_merchant(uow, tenant_id, reference="demo-shop", name="Demo Tea House")
            for code in CHANNELS:
                config = sandbox.config(code)
                service.create_channel(uow, tenant_id, code=code, provider=config.provider,
                                       base_url=config.base_url, methods=["card"], currencies=[CURRENCY],
                                       fee_rate=sandbox.engine.profile(code).fee_rate,
                                       settings=dict(config.settings), credentials=dict(config.credentials))
            from finloop.vault import service as vault

            card = vault.tokenize_card(uow, tenant_id, number="4111111111111111", exp_month=12,
                                       exp_year=start.year + 3)
            uow.commit()
        yield TradingWorld(db, clock, sandbox, tenant_id, merchant.id, card.id, start)


def run_day(world: TradingWorld, *, payments: int, seed: int,
            metadata: Callable[[int], dict[str, Any]] | None = None) -> DayReport:
    """``payments`` card payments a few simulated seconds apart, routed; the same traffic is also sent to
    one static channel of an identical sandbox, for the baseline."""
    db, clock, tenant_id = world.db, world.clock, world.tenant_id
    baseline = SandboxEngine(FrozenClock(world.start), seed=seed, profiles=_profiles(world.start))
    rng = random.Random(seed)
    static_ok = 0
    attempts_before = _count(db, tenant_id, Attempt)
    for index in range(payments):
        amount = rng.randint(500, 50_000)
        with db.uow() as uow:
            payment = service.create_payment(uow, tenant_id, service.PaymentDraft(
                merchant_id=world.merchant_id, amount=amount, currency=CURRENCY, method="card",
                card_id=world.card_id, order_reference=f"order-{index}",
                metadata=metadata(index) if metadata else None))
            uow.commit()
        flows.confirm_payment(db, tenant_id, payment.id)
        baseline.clock.set(clock.now())  # type: ignore[attr-defined]
        try:
            baseline.pay(STATIC_CHANNEL, reference=f"static-{index}", amount=amount, currency=CURRENCY,
                         method="card", capture=True, notify_url=None)
            static_ok += 1
        except SandboxFailure:
            pass
        clock.advance(timedelta(seconds=rng.uniform(1.0, 4.0)))
    with db.uow(read_only=True) as uow:
        succeeded = uow.session.scalar(select(func.count()).select_from(Payment).where(
            Payment.tenant_id == tenant_id, Payment.status == PaymentStatus.SUCCEEDED.value)) or 0
        entries = uow.session.scalar(select(func.count()).select_from(Payment).where(
            Payment.tenant_id == tenant_id, Payment.ledger_entry_id.is_not(None))) or 0
        ledger_ok = entries == succeeded and _each_success_posted_once(uow, tenant_id)
    return DayReport(payments=payments, succeeded=succeeded,
                     failovers=_count(db, tenant_id, Attempt) - attempts_before - payments,
                     static_succeeded=static_ok, ledger_entries=entries, ledger_ok=ledger_ok)


def _count(db: Database, tenant_id: str, model: type[Attempt]) -> int:
    with db.uow(read_only=True) as uow:
        return uow.session.scalar(select(func.count()).select_from(model).where(model.tenant_id == tenant_id)) or 0


def _each_success_posted_once(uow, tenant_id: str) -> bool:  # type: ignore[no-untyped-def]
    """Every succeeded payment has exactly one ledger entry keyed on it, and nothing else does."""
    from finloop.ledger.models import Entry

    keys = list(uow.session.scalars(select(Entry.transfer_key).where(
        Entry.tenant_id == tenant_id, Entry.transfer_key.like("payment:%"))))
    paid = set(uow.session.scalars(select(Payment.id).where(Payment.tenant_id == tenant_id,
                                                            Payment.status == PaymentStatus.SUCCEEDED.value)))
    per_payment: dict[str, int] = {}
    for key in keys:
        per_payment[key.split(":")[1]] = per_payment.get(key.split(":")[1], 0) + 1
    return set(per_payment) == paid and all(count == 1 for count in per_payment.values())
