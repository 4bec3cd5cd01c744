"""The credit day of ``finloop demo``: applications from the demo's own customers and merchants, decided.

After the risk day, on the demo tenant and its simulated clock:

1. A scorecard (and its LightGBM challenger) is trained on simulated platform applicants (``credit.sim``, the
   pipeline of ``finloop credit train --dataset platform``, seeded and small) and made champion.
2. Three products are configured from ``credit.products.EXAMPLES``: buy-now-pay-later in three interest-free
   installments, the interest paid by the electronics store's 3% service fee; a revolving merchant credit line
   with daily interest; a cash loan of 7 to 30 days at 0.05% a day.
3. Each scenario's applicants are recorded (sealed personal data), consent to a bureau pull, are pulled from the
   sandbox bureau (``DemoBureau``: the same report for the same person run after run), scored by the champion and
   granted a line: customers of the demo (topped up with simulated shoppers when the demo has fewer than the
   scenario needs), and the demo's merchants, whose limit comes from their trading history in this database.
4. The applications go through the full automatic review (``credit.applications.submit``); the contract of each
   approved one is signed with the digest of the document issued, and the loan is disbursed at once
   (``credit.disbursement.disburse``): buy-now-pay-later to the electronics store, the others to the borrower's bank
   account through a sandbox payout bank that refuses a small share of payouts.
5. Three CNY funding sources are configured first: the own reserve (cheapest, small quota) and two partner banks
   with different costs of funds and quotas, so the cheapest fills up and later loans move to the next one.

Each scenario runs in its own hour of the simulated clock, so its figures are ``applications.figures`` over
that window; limits and decline reasons are read back from the stored lines and applications, loans and capital by
source from the stored loans and funding sources. Nothing printed is hard-coded.
"""

from __future__ import annotations

import dataclasses
import hashlib
import random
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from rich.console import Console
from rich.table import Table
from sqlalchemy import func, select

from finloop.core.money import Money
from finloop.credit import (
    applications,
    bureau,
    contracts,
    disbursement,
    flows,
    funding,
    limits,
    products,
    registry,
    scorecard,
    scoring,
)
from finloop.credit import service as credit
from finloop.credit.bureau.base import BureauRequest, BureauResult
from finloop.credit.bureau.sandbox import SandboxBureau
from finloop.credit.domain import LoanStatus, ModelStatus
from finloop.credit.features import ORDER_PURPOSE
from finloop.credit.models import CreditLine, CreditSubLimit, Loan, LoanApplication
from finloop.credit.schedule import Method, Pricing, schedule
from finloop.payments import service as payments
from finloop.payments.models import Customer, Merchant, Payment
from finloop.payouts import flows as payout_flows
from finloop.payouts.bank_sandbox import BankBehaviour, SandboxBank
from finloop.sim.payments_day import CURRENCY, TradingWorld

ACTOR = "demo"
#: Simulated platform applicants the demo's scorecard is trained on: enough for stable bins, quick to fit.
TRAINING_ROWS = 1_000
#: The demo's merchants have traded for a week only: the tenant's limit policy accepts a short history, so a
#: merchant's line is capped by its average monthly net sales over the time it has traded.
MIN_TRADING_MONTHS = 0
ELECTRONICS_STORE = "Demo Electronics"


@dataclass(frozen=True)
class FundingPlan:
    code: str
    name: str
    kind: str
    #: Cost of funds a year, a decimal string as ``funding.create_source`` takes it.
    annual_rate: str
    #: The most the source lends, in CNY minor units.
    quota: int


#: The own reserve is the cheapest money but there is little of it; the first partner bank is cheaper than the second
#: and its quota is smaller than a day of the demo's lending, so loans move from source to source as each fills up.
OWN_RESERVE = FundingPlan("own_reserve", "Own reserve account", "own_reserve", "0.015", 20_000_00)
PARTNER_BANK_A = FundingPlan("partner_bank_a", "Partner bank A", "partner_bank", "0.038", 60_000_00)
PARTNER_BANK_B = FundingPlan("partner_bank_b", "Partner bank B", "partner_bank", "0.052", 5_000_000_00)
FUNDING_PLANS = (OWN_RESERVE, PARTNER_BANK_A, PARTNER_BANK_B)
#: The payout bank refuses this share of the loans paid to a bank account (account closed), so failures show.
DISBURSEMENT_FAILURE_SHARE = 0.05


@dataclass(frozen=True)
class Scenario:
    key: str
    title: str
    product: str
    party_kind: str
    purpose: str
    #: (lowest, highest) principal in minor units, and the terms asked for.
    amounts: tuple[int, int]
    terms: tuple[int, ...]


SCENARIOS = (
    Scenario("bnpl_electronics", f"Buy now, pay later at {ELECTRONICS_STORE}", "bnpl_3", "customer", "purchase",
             (300_00, 8_000_00), (3,)),
    Scenario("merchant_revolving", "Revolving credit for merchants from their trading data", "merchant_revolving",
             "merchant", "working_capital", (1_000_00, 60_000_00), (1, 3, 6)),
    Scenario("cash_app", "A small cash-loan app", "cash_30", "customer", "consumption", (500_00, 5_000_00),
             (7, 14, 21, 30)),
)


@dataclass
class ScenarioFigures:
    key: str
    title: str
    product: str
    applicants: int
    figures: dict[str, Any]
    limits_granted: int
    signed: int
    decline_reasons: list[tuple[str, int]] = field(default_factory=list)
    loans_disbursed: int = 0
    loans_failed: int = 0
    amount_disbursed: int = 0

    def as_dict(self) -> dict[str, Any]:
        return {"title": self.title, "product": self.product, "applicants": self.applicants, **self.figures,
                "limits_granted": self.limits_granted, "contracts_signed": self.signed,
                "top_decline_reasons": dict(self.decline_reasons), "loans_disbursed": self.loans_disbursed,
                "loans_failed": self.loans_failed, "amount_disbursed": self.amount_disbursed}


@dataclass(frozen=True)
class SourceFigures:
    code: str
    kind: str
    annual_rate: Decimal
    quota: int
    #: The principal of the source's disbursed (active) loans, and how many.
    drawn: int
    loans: int

    def as_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "annual_rate": str(self.annual_rate), "quota": self.quota, "drawn": self.drawn,
                "loans": self.loans}


@dataclass
class ProductExample:
    product: str
    principal: int
    term: int
    term_unit: str
    first_due_on: str
    first_total: int
    installments: int
    total_repaid: int
    apr: Decimal
    effective_annual_rate: Decimal
    merchant_fee: int | None = None


@dataclass
class CreditDay:
    model_id: str
    model_auc: float
    scenarios: list[ScenarioFigures]
    examples: list[ProductExample]
    #: The issue's point: a flat 18% over 12 months on 10,000.00 repays 11,800.00 (APR, effective rate).
    flat: ProductExample
    #: Cheapest first.
    sources: list[SourceFigures] = field(default_factory=list)
    #: The electronics store and each scenario's parties (id, declared revenue): the credit months lend on from them.
    store_id: str = ""
    parties: dict[str, list[tuple[str, int]]] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {"credit_model_id": self.model_id, "credit_model_auc": self.model_auc,
                "credit_scenarios": {s.key: s.as_dict() for s in self.scenarios},
                "credit_capital_by_source": {s.code: s.as_dict() for s in self.sources},
                "credit_examples": {e.product: {"apr": str(e.apr), "effective_annual_rate": str(
                    e.effective_annual_rate), "principal": e.principal, "term": e.term,
                    "total_repaid": e.total_repaid} for e in [*self.examples, self.flat]}}


Progress = Callable[[str, int, int], None]


def _quiet(stage: str, done: int, total: int) -> None:
    return None


# ---------------------------------------------------------------------------------------------- set-up


def _train_champion(world: TradingWorld, *, seed: int) -> tuple[str, float]:
    trained = scorecard.train(scorecard.platform_dataset(TRAINING_ROWS, seed), seed=seed)
    with world.db.uow() as uow:
        card, gbm = registry.register(uow, world.tenant_id, trained, name="applicant", actor=ACTOR)
        registry.promote(uow, world.tenant_id, card.id, to=ModelStatus.CHAMPION, actor=ACTOR)
        registry.promote(uow, world.tenant_id, gbm.id, to=ModelStatus.CHALLENGER, actor=ACTOR)
        champion_id = card.id
        uow.commit()
    return champion_id, float(trained.scorecard.metrics["auc"])


def _configure(world: TradingWorld) -> str:
    """The three products, the merchant policy for a week-old platform, the electronics store, the funding."""
    with world.db.uow() as uow:
        for scenario in SCENARIOS:
            products.create_product(uow, world.tenant_id, products.EXAMPLES[scenario.product], actor=ACTOR)
        limits.set_policy(uow, world.tenant_id, {"min_trading_months": MIN_TRADING_MONTHS}, actor=ACTOR)
        store = payments.create_merchant(uow, world.tenant_id, reference="demo-electronics", name=ELECTRONICS_STORE)
        for plan in FUNDING_PLANS:
            funding.create_source(uow, world.tenant_id, {
                "code": plan.code, "name": plan.name, "kind": plan.kind, "currency": CURRENCY,
                "annual_rate": plan.annual_rate, "quota_amount": plan.quota}, actor=ACTOR)
        uow.commit()
    return store.id


def _customers(world: TradingWorld, wanted: int, prefix: str) -> list[str]:
    """The demo's customers, oldest first, then simulated ones up to ``wanted``."""
    with world.db.uow() as uow:
        ids = list(uow.session.scalars(select(Customer.id).where(Customer.tenant_id == world.tenant_id)
                                       .order_by(Customer.id).limit(wanted)))
        for i in range(len(ids), wanted):
            ids.append(payments.create_customer(uow, world.tenant_id, reference=f"{prefix}-{i:03d}").id)
        uow.commit()
    return ids


def _merchants(world: TradingWorld, store_id: str) -> list[tuple[str, int]]:
    """Every merchant of the demo but the store, with its net order sales so far (for its declared revenue)."""
    with world.db.uow(read_only=True) as uow:
        sales = {merchant_id: total for merchant_id, total in uow.session.execute(
            select(Payment.merchant_id, func.sum(Payment.captured_amount - Payment.refunded_amount))
            .where(Payment.tenant_id == world.tenant_id, Payment.purpose == ORDER_PURPOSE,
                   Payment.status == "succeeded", Payment.currency == CURRENCY)
            .group_by(Payment.merchant_id))}
        ids = list(uow.session.scalars(select(Merchant.id).where(Merchant.tenant_id == world.tenant_id,
                                                                 Merchant.id != store_id).order_by(Merchant.id)))
    return [(merchant_id, int(sales.get(merchant_id) or 0)) for merchant_id in ids]


def _bank_account(party_id: str) -> str:
    """A simulated bank account number, distinct per party and stable across runs (no draw from the day's rng)."""
    return f"6222{int(hashlib.sha256(party_id.encode()).hexdigest(), 16) % 10**15:015d}"


def _applicants(world: TradingWorld, scenario: Scenario, parties: list[tuple[str, int]], rng: random.Random,
                progress: Progress) -> list[str]:
    """Record, consent, pull, score and grant a line to each party (a party already an applicant is reused)."""
    ids: list[str] = []
    with world.db.uow() as uow:
        for party_id, revenue in parties:
            found = credit.list_applicants(uow, world.tenant_id, party_kind=scenario.party_kind, party_id=party_id)
            if found:
                ids.append(found[0].id)
                continue
            # A merchant declares about four weeks of what it sells in a week; a customer a monthly income.
            income = revenue * 4 if revenue else rng.randrange(300_000, 3_000_000, 100)
            applicant = credit.create_applicant(
                uow, world.tenant_id, party_kind=scenario.party_kind, party_id=party_id,
                declared_income_amount=income, currency=CURRENCY,
                employment="self_employed" if scenario.party_kind == "merchant" else rng.choice(
                    ["employed", "employed", "employed", "self_employed", "student", "unemployed"]),
                national_id=f"DEMO{rng.randrange(10**13):013d}", bank_account=_bank_account(party_id), actor=ACTOR)
            credit.grant_consent(uow, world.tenant_id, applicant.id, scope=["bureau_report"], actor=ACTOR)
            ids.append(applicant.id)
        uow.commit()
    for done, applicant_id in enumerate(ids, 1):
        with world.db.uow(read_only=True) as uow:
            has_line = limits.find_line(uow, world.tenant_id, applicant_id) is not None
        if has_line:
            continue
        flows.pull_report(world.db, world.tenant_id, applicant_id, actor=ACTOR)
        with world.db.uow() as uow:
            scoring.score_applicant(uow, world.tenant_id, applicant_id)
            limits.grant_line(uow, world.tenant_id, applicant_id, actor=ACTOR)
            uow.commit()
        progress(f"{scenario.key}: applicants", done, len(ids))
    return ids


def _sign(world: TradingWorld, application: LoanApplication, scenario: Scenario, store_id: str) -> None:
    """The applicant accepts the agreement they were shown (its digest), and the loan is disbursed: BNPL to the
    electronics store, the others to the borrower's bank account."""
    with world.db.uow() as uow:
        contract = contracts.get_contract(uow, world.tenant_id, application.id)
        contracts.accept(uow, world.tenant_id, application.id, sha256=contract.sha256, channel="app", ip=None,
                         actor=ACTOR)
        uow.commit()
    disbursement.disburse(world.db, world.tenant_id, application.id,
                          merchant_id=store_id if scenario.product == "bnpl_3" else None, actor=ACTOR)


# ---------------------------------------------------------------------------------------------- the day


def run_scenario(world: TradingWorld, scenario: Scenario, parties: list[tuple[str, int]], store_id: str,
                 rng: random.Random, progress: Progress) -> ScenarioFigures:
    """One round of a scenario's lending from now on the simulated clock (seven seconds per application), inside
    ``lending``: each party applies once; the figures are those of the round's window."""
    applicant_ids = _applicants(world, scenario, parties, rng, progress)
    since = world.clock.now()
    for done, applicant_id in enumerate(applicant_ids, 1):
        low, high = scenario.amounts
        with world.db.uow() as uow:
            application = applications.submit(
                uow, world.tenant_id, applicant_id=applicant_id, product_code=scenario.product,
                principal_amount=rng.randrange(low, high + 1, 100), term=rng.choice(scenario.terms),
                purpose=scenario.purpose, device_id=f"demo-device-{applicant_id[-8:]}", actor=ACTOR)
            uow.commit()
        if application.status == "approved":
            _sign(world, application, scenario, store_id)
        world.clock.set(world.clock.now() + timedelta(seconds=7))
        progress(f"{scenario.key}: applications", done, len(applicant_ids))
    until = world.clock.now() + timedelta(microseconds=1)
    return _read_back(world, scenario, applicant_ids, since, until)


def _read_back(world: TradingWorld, scenario: Scenario, applicant_ids: list[str], since: datetime,
               until: datetime) -> ScenarioFigures:
    """The scenario's figures from what was stored: applications of its window, its applicants' sub-limits."""
    with world.db.uow(read_only=True) as uow:
        figures = applications.figures(uow, world.tenant_id, since=since, until=until)
        product = products.offered_product(uow, world.tenant_id, scenario.product)
        granted = uow.session.scalar(
            select(func.coalesce(func.sum(CreditSubLimit.limit_amount), 0)).join(
                CreditLine, CreditLine.id == CreditSubLimit.line_id)
            .where(CreditLine.tenant_id == world.tenant_id, CreditLine.applicant_id.in_(applicant_ids),
                   CreditSubLimit.limit_group == product.limit_group))
        stored = uow.session.execute(select(LoanApplication.status, LoanApplication.reasons).where(
            LoanApplication.tenant_id == world.tenant_id, LoanApplication.submitted_at >= since,
            LoanApplication.submitted_at < until)).all()
        loans = uow.session.execute(select(Loan.status, Loan.principal_amount).join(
            LoanApplication, LoanApplication.id == Loan.application_id).where(
            Loan.tenant_id == world.tenant_id, LoanApplication.submitted_at >= since,
            LoanApplication.submitted_at < until)).all()
    reasons = Counter(r["code"] for status, found in stored if status == "declined" for r in found)
    active = [amount for status, amount in loans if status == LoanStatus.ACTIVE.value]
    return ScenarioFigures(scenario.key, scenario.title, scenario.product, len(applicant_ids), figures,
                           int(granted or 0), sum(1 for status, _ in stored if status == "contract_signed"),
                           reasons.most_common(3), len(active),
                           sum(1 for status, _ in loans if status == LoanStatus.FAILED.value), sum(active))


def _capital_by_source(world: TradingWorld) -> list[SourceFigures]:
    """Each CNY funding source with the principal of its disbursed loans, cheapest first."""
    with world.db.uow(read_only=True) as uow:
        sources = funding.list_sources(uow, world.tenant_id, currency_code=CURRENCY, limit=100)
        drawn = {source_id: (int(total), int(count)) for source_id, total, count in uow.session.execute(
            select(Loan.funding_source_id, func.sum(Loan.principal_amount), func.count())
            .where(Loan.tenant_id == world.tenant_id, Loan.status == LoanStatus.ACTIVE.value)
            .group_by(Loan.funding_source_id))}
        out = [SourceFigures(s.code, s.kind, s.annual_rate, s.quota_amount, *drawn.get(s.id, (0, 0))) for s in sources]
    return sorted(out, key=lambda s: (s.annual_rate, s.code))


def _examples(world: TradingWorld) -> tuple[list[ProductExample], ProductExample]:
    start_on = world.clock.now().date()
    out = []
    with world.db.uow(read_only=True) as uow:
        for scenario in SCENARIOS:
            product = products.offered_product(uow, world.tenant_id, scenario.product)
            principal = products.reference_principal(product)
            term = scenario.terms[-1]
            quoted = products.quote(product, principal=principal, term=term, start_on=start_on)
            result = quoted.schedule
            first = result.installments[0]
            out.append(ProductExample(scenario.product, principal, term, product.term_unit, first.due_on.isoformat(),
                                      first.total, len(result.installments), result.totals["repaid"], result.apr,
                                      result.effective_annual_rate,
                                      quoted.subsidy.amount if quoted.subsidy is not None else None))
    flat = schedule(Pricing(Method.FLAT, Decimal("0.18")), principal=10_000_00, currency_code=CURRENCY, term=12,
                    start_on=start_on)
    first = flat.installments[0]
    return out, ProductExample("flat_18_percent", flat.principal, 12, "month", first.due_on.isoformat(),
                               first.total, len(flat.installments), flat.totals["repaid"], flat.apr,
                               flat.effective_annual_rate)


class DemoBureau(SandboxBureau):
    """The sandbox bureau answering by the national id the demo made up rather than by its blind index: the index is
    keyed by a key each database draws, so the same applicant would get another report (and score, and limit) in
    every new database; this way the demo's figures repeat run to run."""

    def pull(self, request: BureauRequest) -> BureauResult:
        stable = hashlib.sha256(f"{self.seed}\x00{request.national_id}".encode()).hexdigest()
        result = super().pull(dataclasses.replace(request, subject_index=stable))
        # The reference the bureau hands back names the request as it came, not the made-up subject.
        return dataclasses.replace(result, provider_reference=f"sbx_{request.subject_index[:24]}_"
                                                              f"{request.reference[-8:]}")


@contextmanager
def lending(world: TradingWorld, *, seed: int) -> Iterator[None]:
    """The sandbox bureau and the payout bank that refuses a share of payouts, for as long as loans are made."""
    bureau.use(DemoBureau(seed=seed, sleep=lambda seconds: None))
    payout_bank = SandboxBank(world.clock, seed=seed, behaviour=BankBehaviour(
        failure_share=DISBURSEMENT_FAILURE_SHARE), name="demo-disbursement-bank")
    try:
        with payout_flows.use_bank(payout_bank):
            yield
    finally:
        bureau.use(None)


def run_credit_day(world: TradingWorld, *, seed: int = 7, applications_per_scenario: int = 30,
                   progress: Progress = _quiet) -> CreditDay:
    """Train, configure, originate the three scenarios on the demo tenant; the figures read back from storage."""
    rng = random.Random(seed)
    with lending(world, seed=seed):
        return _originate(world, seed, applications_per_scenario, rng, progress)


def _originate(world: TradingWorld, seed: int, applications_per_scenario: int, rng: random.Random,
               progress: Progress) -> CreditDay:
    progress("credit: training the scorecard", 0, 1)
    model_id, auc = _train_champion(world, seed=seed)
    progress("credit: training the scorecard", 1, 1)
    store_id = _configure(world)
    shoppers = _customers(world, applications_per_scenario, "demo-credit-customer")
    merchants = _merchants(world, store_id)
    parties = {"bnpl_electronics": [(c, 0) for c in shoppers], "merchant_revolving": merchants,
               # The cash app's users: the same customers in another order, so some borrow twice.
               "cash_app": [(c, 0) for c in rng.sample(shoppers, len(shoppers))]}
    scenarios = []
    for scenario in SCENARIOS:
        world.clock.set(world.clock.now() + timedelta(hours=1))
        scenarios.append(run_scenario(world, scenario, parties[scenario.key], store_id, rng, progress))
    examples, flat = _examples(world)
    return CreditDay(model_id, auc, scenarios, examples, flat, _capital_by_source(world), store_id, parties)


# ---------------------------------------------------------------------------------------------- printing


def _ms(microseconds: int | None) -> str:
    return "-" if microseconds is None else f"{microseconds / 1000:.1f} ms"


def _pct(rate: str | None) -> str:
    return "-" if rate is None else f"{Decimal(rate) * 100:.1f}%"


def print_credit_day(console: Console, day: CreditDay) -> None:
    table = Table("scenario", "applications", "approved / declined / in review", "approval", "automatic",
                  "latency p50 / p99", "limits granted (CNY)", "signed", "top decline reasons",
                  title=f"Credit origination (champion scorecard {day.model_id}, test AUC {day.model_auc:.3f})")
    for s in day.scenarios:
        f = s.figures
        table.add_row(s.title, str(f["applications"]),
                      f"{f['approved']} / {f['declined']} / {f['pending_review']}", _pct(f["approval_rate"]),
                      _pct(f["automatic_approval_rate"]),
                      f"{_ms(f['latency_p50_us'])} / {_ms(f['latency_p99_us'])}",
                      f"{Money(s.limits_granted, CURRENCY).to_major():,}", str(s.signed),
                      ", ".join(f"{code} {n}" for code, n in s.decline_reasons) or "-")
    console.print(table)
    loans = Table("scenario", "loans disbursed", "failed", "amount disbursed (CNY)", title="Loans disbursed")
    for s in day.scenarios:
        loans.add_row(s.title, str(s.loans_disbursed), str(s.loans_failed),
                      f"{Money(s.amount_disbursed, CURRENCY).to_major():,}")
    console.print(loans)
    capital = Table("funding source", "cost of funds", "quota (CNY)", "drawn (CNY)", "loans",
                    title="Capital by source (cheapest first)")
    for source in day.sources:
        capital.add_row(source.code, f"{source.annual_rate * 100:.2f}%",
                        f"{Money(source.quota, CURRENCY).to_major():,}",
                        f"{Money(source.drawn, CURRENCY).to_major():,}", str(source.loans))
    console.print(capital)
    for e in [*day.examples, day.flat]:
        subsidy = f"; the merchant pays a {Money(e.merchant_fee, CURRENCY)} fee" if e.merchant_fee else ""
        console.print(f"   {e.product}: {Money(e.principal, CURRENCY)} over {e.term} {e.term_unit}(s), "
                      f"{e.installments} installment(s), first {Money(e.first_total, CURRENCY)} on {e.first_due_on}, "
                      f"repays {Money(e.total_repaid, CURRENCY)}: APR {e.apr * 100:.2f}%, effective "
                      f"{e.effective_annual_rate * 100:.2f}%{subsidy}")
