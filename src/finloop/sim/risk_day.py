"""The risk day of ``finloop demo``: laundering planted and found, fraud stopped on traffic nobody tuned on.

After the week, on the demo tenant and its simulated clock:

1. **Laundering** (``plant_laundering``): on the Saturday, customers move money through the real flows
   (card top-ups of their wallets, wallet withdrawals through a channel's payout, orders) the way each AML
   scenario describes — structuring, a large cash-like amount, rapid movement, round amounts, a high-risk
   country, a dormant account waking up, a shop fed by many payers — each beside an innocent look-alike
   that stays just short of its scenario (customers who withdraw are verified through the onboarding
   sandbox first; the tenant's AML configuration is set to watch merchants, or no shop could be seen
   funnelling). The monitor then runs over the day (``monitor_laundering``) and its alerts are scored
   against what was planted.
2. **Fraud** (``run_fraud_day``): the anti-fraud model is trained on one seed's labelled history
   (``sim.fraud.generate(seed=A)``) and made champion; the starter rule pack (``risk.starter``, its model
   review band the pack's default) is installed as a draft and published through the maker-checker path
   by two risk analysts. Then a *different* seed's traffic (seed B, used for nothing
   else) goes through ``risk.service.decide`` one event at a time on the simulated clock; each decision is
   labelled with what the event was (``fraud_confirmed`` or ``succeeded``) when the clock reaches
   ``CHARGEBACK_DELAY`` after it, and the figures are computed from the decisions: interception, false
   positive, review and decline rates, interception per fraud pattern, the rules that fired most with
   their precision, and the decision latency.

Nothing here is tuned on seed B and nothing is hard-coded: every figure printed is counted from what the
services returned. The laundering comes first because the starter pack, once live, also decides top-ups
and withdrawals (large ones go to review), which would hold the planted movements back.
"""

from __future__ import annotations

import hashlib
import math
import secrets
import time
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from datetime import time as dtime
from typing import Any

from rich.console import Console
from rich.table import Table

from finloop.core.calendar import zone
from finloop.core.clock import FrozenClock
from finloop.db.uow import Database, UnitOfWork
from finloop.payments import flows
from finloop.payments import service as payments
from finloop.payments.state import PaymentStatus
from finloop.risk import service as risk
from finloop.risk import starter
from finloop.risk.aml import service as aml
from finloop.risk.domain import Label, Outcome
from finloop.risk.ml import service as models
from finloop.risk.ml import train
from finloop.sim import fraud
from finloop.sim.payments_day import CURRENCY, TradingWorld
from finloop.tenancy import service as tenancy
from finloop.tenancy.service import Principal, Role

#: The history the model and the rules were built on, and the traffic they are judged on.
TRAINING_SEED = 1
TRAFFIC_SEED = 2
#: When an event's outcome is known (a chargeback confirms fraud): what the model's training assumes too.
CHARGEBACK_DELAY = train.LABEL_DELAY
#: Decisions per transaction while replaying the traffic (each is decided alone; commits are batched).
BATCH = 100
TOP_RULES = 8
#: The demo's two risk analysts sign in as ``risk.maker@`` and ``risk.checker@`` this domain.
ANALYSTS_DOMAIN = "demo.finloop.example"
#: A withdrawal goes to this (sandbox) bank account.
WITHDRAWAL_ACCOUNT = "6222020200556677889"
#: Where the laundering happens, in the tenant's local time on the day after the week.
LAUNDERING_FROM = dtime(9, 0)
#: How far back the dormant account (and its innocent look-alike) was opened.
DORMANT_AGE = timedelta(days=240)
ACTIVE_AGE = timedelta(days=120)


# ---------------------------------------------------------------------------------------------- laundering


@dataclass(frozen=True)
class Planted:
    scenario: str
    subject_id: str
    innocent: bool


@dataclass
class AmlFigures:
    """Per scenario: planted subjects, those alerted for it, innocent look-alikes, alerts on them."""

    planted: dict[str, int] = field(default_factory=dict)
    found: dict[str, int] = field(default_factory=dict)
    innocent: dict[str, int] = field(default_factory=dict)
    false_alerts: dict[str, int] = field(default_factory=dict)
    #: Alerts that are neither a planted pattern nor on a look-alike (on the rest of the demo's traffic, or on a
    #: planted subject for another scenario than its own).
    other_alerts: int = 0
    alerts: int = 0
    cases: int = 0
    transactions: int = 0
    failed_movements: int = 0


@dataclass
class Laundering:
    planted: list[Planted]
    start: datetime
    end: datetime
    failed: int = 0


class _Mover:
    """Moves money through the real flows at the simulated time, retrying a channel's refusal."""

    def __init__(self, world: TradingWorld) -> None:
        self.world = world
        self.failed = 0
        self.count = 0

    def at(self, instant: datetime) -> None:
        if instant > self.world.clock.now():
            self.world.clock.set(instant)

    def customer(self, reference: str, *, opened_ago: timedelta | None = None) -> str:
        clock = self.world.clock
        now = clock.now()
        if opened_ago is not None:
            # An account opened long ago on the platform's previous system: only its creation is back-dated.
            clock.set(now - opened_ago)
        try:
            with self.world.db.uow() as uow:
                customer = payments.create_customer(uow, self.world.tenant_id, reference=reference)
                uow.commit()
        finally:
            clock.set(now)
        return customer.id

    def merchant(self, reference: str, name: str) -> str:
        with self.world.db.uow() as uow:
            merchant = payments.create_merchant(uow, self.world.tenant_id, reference=reference, name=name)
            uow.commit()
        return merchant.id

    def pay(self, customer_id: str, amount: int, *, merchant_id: str | None = None,
            metadata: dict[str, Any] | None = None) -> bool:
        """A card payment (a wallet top-up without a merchant); up to three tries when a channel refuses."""
        for _ in range(3):
            self.count += 1
            draft = payments.PaymentDraft(
                merchant_id=merchant_id, amount=amount, currency=CURRENCY, customer_id=customer_id,
                purpose="order" if merchant_id else "wallet_top_up", method="card", card_id=self.world.card_id,
                order_reference=f"aml-{self.count}", metadata=metadata)
            payment_id = flows.create_and_confirm(self.world.db, self.world.tenant_id, draft)
            with self.world.db.uow(read_only=True) as uow:
                status = payments.get_payment(uow, self.world.tenant_id, payment_id).status
            self.world.clock.advance(timedelta(seconds=30))
            if status == PaymentStatus.SUCCEEDED.value:
                return True
        self.failed += 1
        return False

    def verify(self, customer_id: str) -> bool:
        """Onboard the customer through the sandbox verification provider: only a verified customer's
        wallet may be paid out to a bank account."""
        from finloop.onboarding import flows as onboarding
        from finloop.onboarding import service as profiles
        from finloop.onboarding.connectors.registry import use_verifier
        from finloop.onboarding.connectors.sandbox import SandboxVerifier

        digits = str(int(hashlib.sha256(customer_id.encode()).hexdigest()[:12], 16))[:10]
        person = {"legal_name": "Zhang Min", "date_of_birth": "1988-03-09", "nationality": "CN",
                  # The sandbox provider passes identifiers ending in 5; each customer has its own.
                  "national_id": f"N{digits}5", "document_type": "passport", "document_number": f"E{digits}5"}
        with use_verifier(SandboxVerifier(latency_ms=(0, 0))):
            profile_id = onboarding.submit(self.world.db, self.world.tenant_id, party_kind="customer",
                                           party_id=customer_id, individual=person, actor="demo")
        with self.world.db.uow(read_only=True) as uow:
            verified = profiles.get_profile(uow, self.world.tenant_id, profile_id).status == "approved"
        self.failed += not verified
        return verified

    def withdraw(self, customer_id: str, amount: int) -> bool:
        from finloop.payments.models import Withdrawal

        withdrawal_id = flows.withdraw(self.world.db, self.world.tenant_id, customer_id, channel="unionpay",
                                       amount=amount, currency=CURRENCY, account_name="Demo Customer",
                                       account_number=WITHDRAWAL_ACCOUNT)
        status = "processing"
        for _ in range(6):
            with self.world.db.uow(read_only=True) as uow:
                row = uow.session.get(Withdrawal, withdrawal_id)
                status = row.status if row is not None else "missing"
            if status not in ("processing", "unknown"):
                break
            # The bank pays out within minutes; the open-items job asks the channel for the answer.
            self.world.clock.advance(timedelta(minutes=5))
            flows.resolve_open(self.world.db)
        self.failed += status != "succeeded"
        return status == "succeeded"


def plant_laundering(world: TradingWorld) -> Laundering:
    """On the day after the week, each scenario's pattern and an innocent look-alike, through the flows.

    Amounts are CNY minor units against the shipped thresholds (large 50,000.00; structuring band
    45,000.00-49,999.99, three within a week; rapid movement from 10,000.00 in, 80 % out within a day;
    round amounts: three multiples of 1,000.00 within a week; dormant: no movement for 180 days; funnelling:
    ten payers within three days). The tenant's AML configuration watches merchants too (shipped: exempt),
    so that a shop fed by many payers can be seen."""
    from finloop.tenancy.calendar import get_calendar

    clock = world.clock
    with world.db.uow(read_only=True) as uow:
        calendar = get_calendar(uow, world.tenant_id)
    # The day after the week's last cut-off, in the tenant's time zone.
    day = calendar.local_date(clock.now())
    start = datetime.combine(day, LAUNDERING_FROM, tzinfo=zone(calendar.timezone)).astimezone(UTC)
    mover = _Mover(world)
    mover.at(start)
    with world.db.uow() as uow:
        aml.set_config(uow, world.tenant_id, changes={"exempt_types": [], "funnel_exempt_types": []},
                       actor="demo")
        uow.commit()
    planted: list[Planted] = []

    def plant(scenario: str, innocent: bool, moves: Callable[[str], None], *,
              opened_ago: timedelta | None = None) -> None:
        customer_id = mover.customer(f"aml-{scenario}-{'innocent' if innocent else 'planted'}",
                                     opened_ago=opened_ago)
        moves(customer_id)
        planted.append(Planted(scenario, customer_id, innocent))

    def hours(h: float) -> None:
        # Simulated time only moves forward: an hour already passed means "now".
        mover.at(start + timedelta(hours=h))

    def top_ups(*amounts: int, metadata: dict[str, Any] | None = None) -> Callable[[str], None]:
        def run(customer_id: str) -> None:
            for index, amount in enumerate(amounts):
                hours(1 + index * 3.5)
                mover.pay(customer_id, amount, metadata=metadata)
        return run

    def rapid(amount_in: int, amount_out: int) -> Callable[[str], None]:
        def run(customer_id: str) -> None:
            hours(1.5)
            if mover.verify(customer_id) and mover.pay(customer_id, amount_in):
                hours(6)
                mover.withdraw(customer_id, amount_out)
        return run

    # Three top-ups just below the 50,000.00 threshold; the look-alike makes two, and one well below.
    plant("structuring", False, top_ups(4_812_345, 4_790_012, 4_855_561))
    plant("structuring", True, top_ups(4_812_377, 3_123_456, 4_790_034))
    # One cash-like top-up above the threshold; the look-alike stays under the structuring band too.
    plant("large_transaction", False, top_ups(6_234_517))
    plant("large_transaction", True, top_ups(4_123_456))
    # 20,000.12 in, 19,000.00 out the same day; the look-alike takes out a third.
    plant("rapid_movement", False, rapid(2_000_012, 1_900_000))
    plant("rapid_movement", True, rapid(2_000_034, 660_000))
    # Three exact thousands; the look-alike's third amount is not round.
    plant("round_amounts", False, top_ups(200_000, 300_000, 500_000))
    plant("round_amounts", True, top_ups(200_000, 300_000, 512_345))
    # A card issued in Iran; the look-alike's in Ireland.
    plant("high_risk_geography", False, top_ups(345_678, metadata={"country": "IR"}))
    plant("high_risk_geography", True, top_ups(345_699, metadata={"country": "IE"}))
    # Opened 240 days ago and never used, now active; the look-alike was opened 120 days ago.
    plant("dormant_reactivated", False, top_ups(150_012), opened_ago=DORMANT_AGE)
    plant("dormant_reactivated", True, top_ups(150_034), opened_ago=ACTIVE_AGE)
    # A shop paid by eleven different customers within hours; another by eight.
    for innocent, payers, name in ((False, 11, "Golden Harbour Trading"), (True, 8, "Corner Bakery")):
        merchant_id = mover.merchant(f"aml-funnelling-{'innocent' if innocent else 'planted'}", name)
        for index in range(payers):
            payer = mover.customer(f"aml-funnelling-{'innocent' if innocent else 'planted'}-payer-{index}")
            hours(2 + index * 0.5)
            mover.pay(payer, 8_888 + index * 101, merchant_id=merchant_id)
        planted.append(Planted("funnelling", merchant_id, innocent))
    return Laundering(planted=planted, start=start, end=clock.now(), failed=mover.failed)


def monitor_laundering(db: Database, tenant_id: str, laundering: Laundering) -> AmlFigures:
    """The monitor over the laundering's day (from the previous day's cut-off to this day's), run once the
    day has closed, and its alerts scored against what was planted."""
    from finloop.tenancy.calendar import get_calendar

    clock = db.clock
    with db.uow(read_only=True) as uow:
        calendar = get_calendar(uow, tenant_id)
    day = calendar.local_date(laundering.start)
    opens, closes = calendar.day_closes_at(day - timedelta(days=1)), calendar.day_closes_at(day)
    if isinstance(clock, FrozenClock) and clock.now() < closes:
        clock.set(closes + timedelta(minutes=5))
    with db.uow() as uow:
        result = aml.run(uow, tenant_id, start=opens, end=closes)
        uow.commit()
    figures = AmlFigures(alerts=len(result.alerts), transactions=result.transactions,
                         cases=sum(1 for a in result.alerts if a.case_id), failed_movements=laundering.failed)
    alerted = {(a.scenario, a.subject_id) for a in result.alerts}
    expected = {(p.scenario, p.subject_id) for p in laundering.planted if not p.innocent}
    innocent = {p.subject_id: p.scenario for p in laundering.planted if p.innocent}
    for p in laundering.planted:
        if p.innocent:
            figures.innocent[p.scenario] = figures.innocent.get(p.scenario, 0) + 1
            figures.false_alerts[p.scenario] = figures.false_alerts.get(p.scenario, 0) + sum(
                1 for _, subject in alerted if subject == p.subject_id)
        else:
            figures.planted[p.scenario] = figures.planted.get(p.scenario, 0) + 1
            figures.found[p.scenario] = figures.found.get(p.scenario, 0) + ((p.scenario, p.subject_id) in alerted)
    figures.other_alerts = sum(1 for pair in alerted if pair not in expected and pair[1] not in innocent)
    return figures


# ---------------------------------------------------------------------------------------------- fraud


@dataclass
class FraudFigures:
    events: int = 0
    fraud: int = 0
    legit: int = 0
    fraud_caught: int = 0
    legit_flagged: int = 0
    outcomes: dict[str, int] = field(default_factory=dict)
    #: pattern -> (flagged, events)
    by_pattern: dict[str, tuple[int, int]] = field(default_factory=dict)
    #: (rule id, hits, fraud hits), most hits first
    top_rules: list[tuple[str, int, int]] = field(default_factory=list)
    latency_p50_ms: float = 0.0
    latency_p99_ms: float = 0.0
    model: dict[str, Any] = field(default_factory=dict)
    rule_set_version_id: str = ""
    rules: int = 0
    published_by: tuple[str, str] = ("", "")
    traffic_from: datetime | None = None
    traffic_to: datetime | None = None
    training_seed: int = TRAINING_SEED
    traffic_seed: int = TRAFFIC_SEED

    @property
    def interception_rate(self) -> float:
        return self.fraud_caught / self.fraud if self.fraud else 1.0

    @property
    def false_positive_rate(self) -> float:
        return self.legit_flagged / self.legit if self.legit else 0.0

    @property
    def review_rate(self) -> float:
        return self.outcomes.get(Outcome.REVIEW.value, 0) / self.events if self.events else 0.0

    @property
    def decline_rate(self) -> float:
        return self.outcomes.get(Outcome.DECLINE.value, 0) / self.events if self.events else 0.0


def next_utc_midnight(at: datetime) -> datetime:
    day = at.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    return day + timedelta(days=1)


def _analysts(db: Database, tenant_id: str) -> tuple[Principal, Principal]:
    """Two risk analysts of the tenant: one makes, the other checks."""
    principals = []
    with db.uow() as uow:
        for name in ("maker", "checker"):
            user = tenancy.create_user(uow, tenant_id, email=f"risk.{name}@{ANALYSTS_DOMAIN}",
                                       password=secrets.token_urlsafe(18), roles=[Role.RISK_ANALYST.value],
                                       name=f"Risk analyst ({name})", actor="demo")
            principals.append(Principal(tenant_id, f"user:{user.id}", frozenset({Role.RISK_ANALYST}),
                                        user_id=user.id))
        uow.commit()
    return principals[0], principals[1]


def publish_starter(db: Database, tenant_id: str, maker: Principal, checker: Principal) -> tuple[str, int]:
    """The starter pack as a draft (bands from the champion's threshold), then publish: requested by the
    maker, approved by the checker, published by the maker's second call. Returns (version id, rules)."""
    with db.uow() as uow:
        version = starter.install(uow, tenant_id, actor=maker.actor)
        rule_set_id, version_id, rules = version.rule_set_id, version.id, len(version.rules)
        risk.validate_version(uow, tenant_id, rule_set_id, version_id)
        pending = risk.request_publish(uow, maker, rule_set_id, version_id)
        approval_id = pending.approval_id
        uow.commit()
    assert approval_id is not None
    with db.uow() as uow:
        tenancy.decide_approval(uow, checker, approval_id, approve=True, reason="starter pack reviewed")
        uow.commit()
    with db.uow() as uow:
        live = risk.request_publish(uow, maker, rule_set_id, version_id)
        if live.status != "published":
            raise RuntimeError(f"the starter pack was not published: {live.status}")
        uow.commit()
    return version_id, rules


def _percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return 0.0
    return ordered[min(len(ordered) - 1, max(0, math.ceil(share * len(ordered)) - 1))]


def run_fraud_day(db: Database, clock: FrozenClock, tenant_id: str, *, training_days: int = 14,
                  training_customers: int = 250, traffic_days: int = 4, traffic_customers: int = 350,
                  training_seed: int = TRAINING_SEED, traffic_seed: int = TRAFFIC_SEED,
                  progress: Callable[[str, int, int], None] | None = None) -> FraudFigures:
    """Train on seed A, publish the starter pack, decide seed B's traffic, label it, count."""
    if training_seed == traffic_seed:
        raise ValueError("the traffic is judged on a seed the model and rules were not built on")
    report = progress or (lambda stage, done, total: None)
    maker, checker = _analysts(db, tenant_id)
    traffic_start = next_utc_midnight(clock.now())
    history = fraud.generate(seed=training_seed, days=training_days, customers=training_customers,
                             start=traffic_start - timedelta(days=training_days))
    with db.uow() as uow:
        model = train.train(uow, tenant_id, events=history, actor=maker.actor, seed=training_seed,
                            progress=lambda stage, done, total: report(f"model: {stage}", done, total))
        models.promote(uow, tenant_id, model.id, actor=maker.actor)
        figures = FraudFigures(model={"id": model.id, "version": model.version, "threshold": model.threshold,
                                      "training_events": len(history), "review_band": starter.DEFAULT_MODEL_THRESHOLD,
                                      **{k: model.metrics[k] for k in (
                                          "auc", "precision", "recall", "review_rate")}})
        uow.commit()
    figures.training_seed, figures.traffic_seed = training_seed, traffic_seed
    figures.rule_set_version_id, figures.rules = publish_starter(db, tenant_id, maker, checker)
    figures.published_by = (f"risk.maker@{ANALYSTS_DOMAIN}", f"risk.checker@{ANALYSTS_DOMAIN}")

    traffic = fraud.generate(seed=traffic_seed, days=traffic_days, customers=traffic_customers,
                             start=traffic_start)
    figures.traffic_from, figures.traffic_to = traffic[0].at, traffic[-1].at
    decided: list[tuple[fraud.LabelledEvent, risk.Decision]] = []
    latencies: list[float] = []
    # What became of each event arrives CHARGEBACK_DELAY later (a chargeback confirms the fraud; the rest went
    # through): labels are applied in time order as the simulated clock reaches them, as in production, so a
    # decision sees only the labels known before it (the network features count confirmed fraud).
    labels: deque[tuple[datetime, str, str]] = deque()

    def label_due(uow: UnitOfWork, until: datetime) -> None:
        while labels and labels[0][0] <= until:
            _, decision_id, label = labels.popleft()
            risk.label_decision(uow, tenant_id, decision_id, label, actor="demo:chargebacks")

    for first in range(0, len(traffic), BATCH):
        with db.uow() as uow:
            for labelled in traffic[first:first + BATCH]:
                clock.set(labelled.at)
                label_due(uow, labelled.at)
                began = time.perf_counter()
                decision = risk.decide(uow, tenant_id, event_type=labelled.event_type, event=labelled.event,
                                       at=labelled.at)
                latencies.append((time.perf_counter() - began) * 1000)
                decided.append((labelled, decision))
                labels.append((labelled.at + CHARGEBACK_DELAY, decision.id,
                               (Label.FRAUD_CONFIRMED if labelled.fraud else Label.SUCCEEDED).value))
            uow.commit()
        report("deciding", min(len(traffic), first + BATCH), len(traffic))
    while labels:
        clock.set(max(clock.now(), labels[0][0]))
        with db.uow() as uow:
            label_due(uow, labels[min(len(labels), BATCH) - 1][0])
            uow.commit()
    _count(figures, decided)
    figures.latency_p50_ms = round(_percentile(latencies, 0.50), 2)
    figures.latency_p99_ms = round(_percentile(latencies, 0.99), 2)
    return figures


def _count(figures: FraudFigures, decided: list[tuple[fraud.LabelledEvent, risk.Decision]]) -> None:
    outcomes: Counter[str] = Counter()
    patterns: dict[str, list[int]] = {}
    hits: Counter[str] = Counter()
    fraud_hits: Counter[str] = Counter()
    for labelled, decision in decided:
        flagged = decision.outcome is not Outcome.APPROVE
        outcomes[decision.outcome.value] += 1
        figures.events += 1
        if labelled.fraud:
            figures.fraud += 1
            figures.fraud_caught += flagged
            counts = patterns.setdefault(labelled.pattern, [0, 0])
            counts[0] += flagged
            counts[1] += 1
        else:
            figures.legit += 1
            figures.legit_flagged += flagged
        for fired in decision.fired:
            hits[fired.rule_id] += 1
            fraud_hits[fired.rule_id] += labelled.fraud
    figures.outcomes = {o.value: outcomes.get(o.value, 0) for o in Outcome}
    figures.by_pattern = {p: (c[0], c[1]) for p, c in sorted(patterns.items())}
    figures.top_rules = [(rule_id, n, fraud_hits[rule_id])
                         for rule_id, n in sorted(hits.items(), key=lambda item: (-item[1], item[0]))][:TOP_RULES]


# ---------------------------------------------------------------------------------------------- the day


@dataclass
class RiskDay:
    fraud: FraudFigures
    aml: AmlFigures
    seconds: float

    def as_dict(self) -> dict[str, Any]:
        f, a = self.fraud, self.aml
        return {
            "risk_events": f.events, "risk_fraud": f.fraud, "risk_interception_rate": f.interception_rate,
            "risk_false_positive_rate": f.false_positive_rate, "risk_review_rate": f.review_rate,
            "risk_decline_rate": f.decline_rate,
            "risk_interception_by_pattern": {p: c / n if n else 1.0 for p, (c, n) in f.by_pattern.items()},
            "risk_top_rules": [{"rule_id": r, "hits": n, "precision": fraud_hits / n} for r, n, fraud_hits in
                               f.top_rules],
            "risk_latency_p50_ms": f.latency_p50_ms, "risk_latency_p99_ms": f.latency_p99_ms,
            "risk_model": dict(f.model), "risk_rule_set_version_id": f.rule_set_version_id,
            "aml_planted": dict(a.planted), "aml_found": dict(a.found), "aml_innocent": dict(a.innocent),
            "aml_false_alerts": dict(a.false_alerts), "aml_other_alerts": a.other_alerts,
            "aml_failed_movements": a.failed_movements, "risk_day_seconds": round(self.seconds, 2)}


def run_risk_day(world: TradingWorld, *, training_days: int = 14, training_customers: int = 250,
                 traffic_days: int = 4, traffic_customers: int = 350,
                 progress: Callable[[str, int, int], None] | None = None) -> RiskDay:
    """Laundering planted and monitored, then the fraud day (see the module docstring)."""
    began = time.perf_counter()
    laundering = plant_laundering(world)
    aml_figures = monitor_laundering(world.db, world.tenant_id, laundering)
    fraud_figures = run_fraud_day(world.db, world.clock, world.tenant_id, training_days=training_days,
                                  training_customers=training_customers, traffic_days=traffic_days,
                                  traffic_customers=traffic_customers, progress=progress)
    return RiskDay(fraud=fraud_figures, aml=aml_figures, seconds=time.perf_counter() - began)


def print_risk_day(console: Console, day: RiskDay) -> None:
    f, a = day.fraud, day.aml
    m = f.model
    console.print(f"   model v{m['version']} trained on seed {f.training_seed} ({m['training_events']} events): AUC "
                  f"{m['auc']}, recall {m['recall']:.1%} at a {m['review_rate']:.1%} review rate on its held-out "
                  f"days (its operating threshold {m['threshold']}); the starter pack's {f.rules} rules (model "
                  f"review band {m['review_band']}) published: {f.published_by[0]} asked, {f.published_by[1]} "
                  "approved")
    traffic = f"{f.traffic_from:%Y-%m-%d} to {f.traffic_to:%Y-%m-%d}" if f.traffic_from and f.traffic_to else ""
    console.print(f"   seed {f.traffic_seed} traffic (never used for tuning), {traffic}: {f.events} payments, "
                  f"{f.fraud} of them fraud")
    console.print(f"   [bold]interception {f.interception_rate:.2%}[/bold] ({f.fraud_caught}/{f.fraud} fraud "
                  f"declined or reviewed), false positive rate {f.false_positive_rate:.2%} "
                  f"({f.legit_flagged}/{f.legit}), review rate {f.review_rate:.2%}, decline rate "
                  f"{f.decline_rate:.2%}; decision latency p50 {f.latency_p50_ms:.1f} ms, p99 "
                  f"{f.latency_p99_ms:.1f} ms")
    patterns = Table("fraud pattern", "events", "stopped or reviewed", "interception", title="Fraud by pattern")
    for pattern, (caught, total) in f.by_pattern.items():
        patterns.add_row(pattern, str(total), str(caught), f"{caught / total:.1%}" if total else "-")
    rules = Table("rule", "hits", "fraud among hits", "precision", title="Top rules")
    for rule_id, hits, fraud_hits in f.top_rules:
        rules.add_row(rule_id, str(hits), str(fraud_hits), f"{fraud_hits / hits:.1%}")
    aml_table = Table("AML scenario", "planted", "found", "innocent look-alikes", "alerts on them",
                      title="Laundering planted and found")
    for scenario in sorted(set(a.planted) | set(a.innocent)):
        aml_table.add_row(scenario, str(a.planted.get(scenario, 0)), str(a.found.get(scenario, 0)),
                          str(a.innocent.get(scenario, 0)), str(a.false_alerts.get(scenario, 0)))
    console.print(patterns)
    console.print(rules)
    console.print(aml_table)
    planted = sum(a.planted.values())
    console.print(f"   AML: {sum(a.found.values())}/{planted} planted patterns found, "
                  f"{sum(a.false_alerts.values())} alerts on the innocent look-alikes, {a.other_alerts} other alerts; "
                  f"{a.alerts} alerts opened {a.cases} cases over {a.transactions} movements"
                  + (f"; {a.failed_movements} movements refused by the channels" if a.failed_movements else ""))
