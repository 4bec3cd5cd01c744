"""``finloop demo``: the closed loop on the configured database, growing with every capability.

Today it runs the ledger: a marketplace tenant with its chart of accounts takes in orders through a
wallet channel (fee, platform commission, promoter commission, merchant income, split exactly by
largest remainder), settles with the channel, releases merchant funds, pays merchants out through
two-phase holds, reverses a mistaken entry; a trading day of routed card payments and the week after
it (``sim.week``); the risk day (``sim.risk_day``: laundering planted and found, a fraud model and the
starter rules judged on traffic they were not tuned on); the credit day (``sim.credit_day``: applications from
the demo's customers and merchants decided, approved contracts signed, the loans disbursed from the cheapest funding
source with quota left); the credit months (``sim.credit_months``: the three lending scenarios serviced day by day for
months, borrowers paying on time, late, in part, early or never, with a round of applications each month, read back as
the book, vintage curves, roll rates and profit and loss per scenario); and then proves the books three ways: our
trial balance, our integrity check (running sums against postings), and Beancount's independent checker.

The simulated clock starts at a fixed date (``DEMO_START``), so a run's figures repeat run to run; every date in the
books is in the past.

It refuses to touch a database holding anything but earlier demos' data.
"""

from __future__ import annotations

import random
import re
import shutil
import subprocess
import sys
import tempfile
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from datetime import time as dtime
from decimal import Decimal
from pathlib import Path

from rich.console import Console
from rich.progress import Progress, TaskID
from rich.table import Table
from sqlalchemy import func, select

from finloop.config import Settings
from finloop.core.calendar import zone
from finloop.core.clock import FrozenClock
from finloop.core.money import Money, Rounding, allocate
from finloop.db.migrate import upgrade
from finloop.db.uow import Database, UnitOfWork
from finloop.ledger import reports, service
from finloop.ledger.domain import AccountType, BalanceRule, PostingSpec, TransferSpec
from finloop.sim.console_staff import print_console, staff_and_work
from finloop.sim.credit_day import CreditDay, print_credit_day, run_credit_day
from finloop.sim.credit_months import CreditMonths, print_credit_months, run_credit_months
from finloop.sim.payments_day import DayReport, run_day, trading_world
from finloop.sim.risk_day import TRAFFIC_SEED, TRAINING_SEED, RiskDay, print_risk_day, run_risk_day
from finloop.sim.week import WeekReport, configure, order_metadata, print_week, run_week, top_up_and_save
from finloop.tenancy import service as tenancy
from finloop.tenancy.models import Tenant
from finloop.tenancy.service import Role

CURRENCY = "CNY"
#: The trailing number of a hot account's sub-account (``assets:channel:unionpay:3``).
SHARD = re.compile(r":\d+$")
TIMEZONE = "Asia/Shanghai"
#: The channel's fee on each order, borne by the platform.
WALLET_FEE_RATE = Decimal("0.006")
#: Platform commission, promoter commission and merchant income, in that order (10 / 5 / 85).
SPLIT_WEIGHTS = (10, 5, 85)


class DemoRefused(Exception):
    """The database holds data that is not an earlier demo's."""


@dataclass
class Chart:
    accounts: dict[str, str] = field(default_factory=dict)

    def __getitem__(self, code: str) -> str:
        return self.accounts[code]


CHART: list[tuple[str, AccountType, BalanceRule]] = [
    ("equity:capital", AccountType.EQUITY, BalanceRule.NONE),
    ("assets:bank:main", AccountType.ASSET, BalanceRule.CREDITS_MUST_NOT_EXCEED_DEBITS),
    # Money held for merchants and promoters is safeguarded in its own account (the week's check counts it).
    ("assets:bank:custody", AccountType.ASSET, BalanceRule.NONE),
    ("assets:channel:wallet", AccountType.ASSET, BalanceRule.NONE),
    ("expenses:channel_fees", AccountType.EXPENSE, BalanceRule.NONE),
    ("income:commission", AccountType.INCOME, BalanceRule.NONE),
    ("liabilities:promoter:P1", AccountType.LIABILITY, BalanceRule.DEBITS_MUST_NOT_EXCEED_CREDITS),
    ("liabilities:merchant:M1:pending", AccountType.LIABILITY, BalanceRule.DEBITS_MUST_NOT_EXCEED_CREDITS),
    ("liabilities:merchant:M1:available", AccountType.LIABILITY, BalanceRule.DEBITS_MUST_NOT_EXCEED_CREDITS),
    ("liabilities:merchant:M2:pending", AccountType.LIABILITY, BalanceRule.DEBITS_MUST_NOT_EXCEED_CREDITS),
    ("liabilities:merchant:M2:available", AccountType.LIABILITY, BalanceRule.DEBITS_MUST_NOT_EXCEED_CREDITS),
]


def order_entry(key: str, amount: int, merchant: str, chart: Chart) -> TransferSpec:
    """One paid order: the channel owes us the amount less its fee; the amount is split three ways."""
    fee = Money(amount, CURRENCY).multiply(WALLET_FEE_RATE, Rounding.HALF_UP).minor
    commission, promoter, merchant_income = allocate(amount, SPLIT_WEIGHTS)
    return TransferSpec(key, (
        PostingSpec(chart["assets:channel:wallet"], amount - fee, CURRENCY),
        PostingSpec(chart["expenses:channel_fees"], fee, CURRENCY),
        PostingSpec(chart["income:commission"], -commission, CURRENCY),
        PostingSpec(chart["liabilities:promoter:P1"], -promoter, CURRENCY),
        PostingSpec(chart[f"liabilities:merchant:{merchant}:pending"], -merchant_income, CURRENCY),
    ), f"Order {key}", metadata={"merchant": merchant})


def ensure_demo_database(db: Database) -> None:
    with db.uow(read_only=True) as uow:
        others = uow.session.scalar(select(func.count()).select_from(Tenant).where(Tenant.is_demo.is_(False)))
    if others:
        raise DemoRefused(f"{db.url} holds {others} tenant(s) that are not demo data; "
                          "point FINLOOP_DATABASE_URL at an empty or demo database.")


#: 09:00 in Shanghai on a Monday: the week, the risk and credit days and the credit months that follow all end
#: before the real clock's now, and the figures do not depend on the day the demo runs.
DEMO_START = datetime.combine(date(2026, 3, 2), dtime(9, 0), tzinfo=zone(TIMEZONE)).astimezone(UTC)


def run_demo(settings: Settings, console: Console, *, orders: int = 2_000, seed: int = 7,
             payments: int = 2_000, daily_payments: int = 150, risk_training_days: int = 14,
             risk_training_customers: int = 250, risk_traffic_days: int = 4,
             risk_traffic_customers: int = 350, credit_applications: int = 30, credit_months: int = 4,
             credit_monthly_applications: int = 12, simulated_start: datetime = DEMO_START) -> dict[str, object]:
    started = time.perf_counter()
    upgrade(settings.database_url)
    clock = FrozenClock(simulated_start)
    db = Database(settings.database_url, clock=clock, busy_timeout_ms=settings.sqlite_busy_timeout_ms)
    ensure_demo_database(db)
    rng = random.Random(seed)
    console.rule("[bold]finloop demo[/bold]: the ledger under a marketplace")
    console.print(f"database: {db.url}")

    def step(title: str, work: Callable[[], str]) -> None:
        t0 = time.perf_counter()
        detail = work()
        console.print(f"[green]✓[/green] {title}: {detail} [dim]({(time.perf_counter() - t0) * 1000:.0f} ms)[/dim]")

    # 1. Tenant, API key and chart of accounts.
    chart = Chart()
    with db.uow() as uow:
        tenant = tenancy.create_tenant(uow, name="Demo Marketplace", timezone=TIMEZONE, cutoff="23:00",
                                       is_demo=True, actor="demo")
        _, secret = tenancy.issue_api_key(uow, tenant.id, name="demo", role=Role.ADMIN, actor="demo")
        for code, type_, rule in CHART:
            chart.accounts[code] = service.create_account(uow, tenant.id, code=code, type=type_,
                                                          currency_code=CURRENCY, balance_rule=rule).id
        uow.commit()
    tenant_id = tenant.id
    console.print(f"tenant {tenant_id} (Asia/Shanghai, cut-off 23:00) with {len(CHART)} accounts")

    def post(specs: list[TransferSpec]) -> None:
        with db.uow() as uow:
            service.post_transfers(uow, tenant_id, specs, batch_id=uow.ids.new("batch"))
            uow.commit()

    # 2. Capital, then orders in batches of 250.
    def inject_capital() -> str:
        capital = Money(50_000_000, CURRENCY)
        post([TransferSpec.simple("capital", chart["assets:bank:main"], chart["equity:capital"], capital.minor,
                                  CURRENCY, "Initial capital")])
        return str(capital)

    step("capital injected", inject_capital)

    amounts = [rng.choice([10_000, 100_00, 2_999, 15_800, 49_900, 123_45, 8_88]) for _ in range(orders)]
    merchants = [rng.choice(["M1", "M2"]) for _ in range(orders)]
    specs = [order_entry(f"order-{i:05d}", amounts[i], merchants[i], chart) for i in range(orders)]
    t0 = time.perf_counter()
    with Progress(console=console, transient=True) as progress:
        task = progress.add_task("posting orders", total=orders)
        for start in range(0, orders, 250):
            post(specs[start:start + 250])
            progress.advance(task, min(250, orders - start))
    rate = orders / (time.perf_counter() - t0)
    console.print(f"[green]✓[/green] {orders} orders posted in batches of 250, each split platform 10% / "
                  f"promoter 5% / merchant 85% with the 0.6% channel fee ({rate:,.0f} entries/s)")
    example = order_entry("example", 10_000, "M1", chart)
    console.print("   a CNY 100.00 order posts: " + ", ".join(
        f"{code_of(chart, p.account_id)} {Money(p.amount, CURRENCY).to_major():+}" for p in example.postings))

    # 3. The channel settles what it owes into the bank; merchants' pending funds become available.
    def settle() -> str:
        with db.uow(read_only=True) as uow:
            owed = service.balances(service.get_account(uow, tenant_id, chart["assets:channel:wallet"])).posted
            pending = {m: service.balances(service.get_account(
                uow, tenant_id, chart[f"liabilities:merchant:{m}:pending"])).posted for m in ("M1", "M2")}
        post([TransferSpec.simple("settlement-wallet-1", chart["assets:bank:custody"], chart["assets:channel:wallet"],
                                  owed, CURRENCY, "Wallet channel settlement")]
             + [TransferSpec.simple(f"release-{m}-1", chart[f"liabilities:merchant:{m}:pending"],
                                    chart[f"liabilities:merchant:{m}:available"], amount, CURRENCY,
                                    f"Release {m} funds") for m, amount in pending.items()])
        return f"channel paid {Money(owed, CURRENCY)}; released M1 and M2 pending balances in one batch"

    step("channel settlement and release", settle)

    # 4. Payouts through two-phase holds: one posted in part, one voided, one left in flight.
    def payouts() -> str:
        with db.uow() as uow:
            available = service.balances(service.get_account(
                uow, tenant_id, chart["liabilities:merchant:M1:available"])).available
            first, _ = service.create_hold(uow, tenant_id, key="payout-M1-1",
                                           debit_account_id=chart["liabilities:merchant:M1:available"],
                                           credit_account_id=chart["assets:bank:custody"], amount=available // 2,
                                           currency_code=CURRENCY, description="Payout M1 (bank transfer)")
            second, _ = service.create_hold(uow, tenant_id, key="payout-M2-1",
                                            debit_account_id=chart["liabilities:merchant:M2:available"],
                                            credit_account_id=chart["assets:bank:custody"], amount=1_000_00,
                                            currency_code=CURRENCY, timeout_seconds=3600)
            service.create_hold(uow, tenant_id, key="payout-M2-2",
                                debit_account_id=chart["liabilities:merchant:M2:available"],
                                credit_account_id=chart["assets:bank:custody"], amount=500_00,
                                currency_code=CURRENCY, description="Payout M2 in flight")
            uow.commit()
        with db.uow() as uow:
            service.post_hold(uow, tenant_id, first.id, amount=first.amount - 1_00)  # bank charged 1.00 less
            service.void_hold(uow, tenant_id, second.id)
            uow.commit()
        return (f"M1 payout of {Money(first.amount, CURRENCY)} posted as {Money(first.amount - 1_00, CURRENCY)}; "
                "M2 payout voided; another M2 payout still pending")

    step("payouts via holds", payouts)

    # 5. A mistaken entry and its reversal.
    def mistake() -> str:
        with db.uow() as uow:
            wrong = service.post_transfer(uow, tenant_id, TransferSpec.simple(
                "manual-adjustment-1", chart["expenses:channel_fees"], chart["assets:bank:main"], 3_33, CURRENCY,
                "Fee keyed twice by mistake"))
            service.reverse_entry(uow, tenant_id, wrong.id)
            uow.commit()
        return f"{wrong.id} reversed by a linked entry (entries are never edited)"

    step("reversal", mistake)

    # 6. The API: the same transfer sent twice under one Idempotency-Key posts once.
    def api_round_trip() -> str:
        from finloop.app import create_app

        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="Using `httpx` with `starlette.testclient`")
            from fastapi.testclient import TestClient

        quiet = settings.model_copy(update={"log_level": "WARNING"})  # the app would configure INFO logs
        with TestClient(create_app(quiet, database=db, access_log=False)) as client:
            headers = {"Authorization": f"Bearer {secret}", "Idempotency-Key": "demo-api-1"}
            body = {"debit_account_id": chart["liabilities:promoter:P1"],
                    "credit_account_id": chart["assets:bank:main"], "amount": 1_00, "currency": CURRENCY,
                    "description": "Promoter payout via API"}
            first = client.post("/v1/transfers", json=body, headers=headers)
            again = client.post("/v1/transfers", json=body, headers=headers)
            bad = client.post("/v1/transfers", json={**body, "amount": 1.5}, headers={
                "Authorization": headers["Authorization"]})
        replayed = again.headers.get("Idempotent-Replayed") == "true" and again.json()["id"] == first.json()["id"]
        return (f"POST /v1/transfers {first.status_code}, retried with the same key -> "
                f"{'replayed, posted once' if replayed else 'NOT replayed'}; amount 1.5 -> {bad.status_code} "
                f"{bad.json()['error']['code']}")

    step("HTTP API", api_round_trip)

    # 7. A trading day of card payments through three sandbox channels, one down for ten minutes and one
    #    degraded for a quarter of an hour, routed by success rate; the same traffic on one static channel.
    #    Then the week after it: splits, settlement, reserves, payouts, the fund, reconciliation.
    day: list[DayReport] = []
    weeks: list[WeekReport] = []
    risk_days: list[RiskDay] = []
    with trading_world(db, clock, tenant_id, seed=seed) as world:
        parties = configure(world)

        def trading_day() -> str:
            top_up_and_save(world, parties)
            report = run_day(world, payments=payments, seed=seed, metadata=order_metadata(parties))
            day.append(report)
            return (f"{report.payments} payments, {report.success_rate:.1%} succeeded with routing "
                    f"({report.failovers} failovers) against {report.static_rate:.1%} on one static channel; "
                    f"every success in the ledger exactly once: {'yes' if report.ledger_ok else 'NO'}")

        step("payments", trading_day)

        def the_week() -> str:
            with Progress(console=console, transient=True) as progress:
                task = progress.add_task("simulating the week", total=5)
                weeks.append(run_week(world, parties, seed=seed, daily_payments=daily_payments,
                                      progress=lambda _: progress.advance(task)))
            return "5 business days of clearing, settlement, payouts, fund income and reconciliation"

        step("the week after", the_week)

        # 8. The risk day: laundering planted through the flows and found by the AML monitor; a model trained
        #    on one seed, the starter rules published by two analysts, another seed's traffic decided.
        def the_risk_day() -> str:
            with Progress(console=console, transient=True) as progress:
                tasks: dict[str, TaskID] = {}

                def report(stage: str, done: int, total: int) -> None:
                    if stage not in tasks:
                        tasks[stage] = progress.add_task(stage, total=total)
                    progress.update(tasks[stage], completed=done, total=total)

                risk_days.append(run_risk_day(world, training_days=risk_training_days,
                                              training_customers=risk_training_customers,
                                              traffic_days=risk_traffic_days,
                                              traffic_customers=risk_traffic_customers, progress=report))
            figures = risk_days[0]
            return (f"laundering planted and monitored; model trained on seed {TRAINING_SEED}, starter rules "
                    f"published through maker-checker; {figures.fraud.events} seed-{TRAFFIC_SEED} payments decided")

        step("the risk day", the_risk_day)

        # 9. The credit day: a scorecard trained and made champion, three products and three funding sources, the
        #    demo's customers and merchants apply; approved contracts are signed and the loans disbursed.
        credit_days: list[CreditDay] = []

        def the_credit_day() -> str:
            with Progress(console=console, transient=True) as progress:
                tasks: dict[str, TaskID] = {}

                def report(stage: str, done: int, total: int) -> None:
                    if stage not in tasks:
                        tasks[stage] = progress.add_task(stage, total=total)
                    progress.update(tasks[stage], completed=done, total=total)

                credit_days.append(run_credit_day(world, seed=seed, applications_per_scenario=credit_applications,
                                                  progress=report))
            figures = credit_days[0]
            total = sum(s.figures["applications"] for s in figures.scenarios)
            disbursed = sum(s.loans_disbursed for s in figures.scenarios)
            used = sum(1 for source in figures.sources if source.drawn)
            return (f"scorecard trained on simulated platform data and made champion; {total} applications "
                    f"decided in {len(figures.scenarios)} scenarios, approved contracts signed; {disbursed} loans "
                    f"disbursed from {used} of {len(figures.sources)} funding sources, cheapest first")

        step("the credit day", the_credit_day)

        # 10. The credit months: every day borrowers pay (or do not) and the loan book closes its day; each month a
        #     round of applications per scenario; the book, vintages, roll rates and P&L read back at the end.
        months: list[CreditMonths] = []

        def the_credit_months() -> str:
            with Progress(console=console, transient=True) as progress:
                tasks: dict[str, TaskID] = {}

                def report(stage: str, done: int, total: int) -> None:
                    if stage not in tasks:
                        tasks[stage] = progress.add_task(stage, total=total)
                    progress.update(tasks[stage], completed=done, total=total)

                months.append(run_credit_months(world, credit_days[0], seed=seed, months=credit_months,
                                                monthly_applications=credit_monthly_applications, progress=report))
            figures = months[0]
            loans = sum(s.book.get("disbursed_loans", 0) for s in figures.scenarios)
            paid = sum(s.repayments for s in figures.scenarios)
            return (f"{figures.days} days from {figures.first_day} to {figures.last_day}: {loans} loans in "
                    f"{len(figures.months)} monthly vintages, {paid} repayments, the loan book closed every day")

        step("the credit months", the_credit_months)
        staff = staff_and_work(db, tenant_id, world.merchant_id)
    print_week(console, weeks[0])
    print_risk_day(console, risk_days[0])
    print_credit_day(console, credit_days[0])
    print_credit_months(console, months[0])

    # 11. Proof.
    with db.uow(read_only=True) as uow:
        balances_table = Table("account (hot accounts' sub-accounts summed as :*)", "posted", "pending",
                               "available", title="Balances (CNY)")
        for code, (posted, pending, available) in sorted(grouped_balances(uow, tenant_id).items()):
            balances_table.add_row(code, _major(posted), _major(pending), _major(available))
        trial = reports.trial_balance(uow, tenant_id)
        problems = service.verify_integrity(uow, tenant_id)
        sheet = reports.balance_sheet(uow, tenant_id, as_of=uow.clock.now())
    console.print(balances_table)
    tb_table = Table("currency", "total debits", "total credits", "balanced", title="Trial balance")
    for tb in trial:
        tb_table.add_row(tb.currency, _major(tb.total_debits), _major(tb.total_credits),
                         "[green]yes[/green]" if tb.balanced else "[red]NO[/red]")
    console.print(tb_table)
    for s in sheet:
        console.print(f"balance sheet {s.currency}: assets {_major(s.assets.total)} = liabilities "
                      f"{_major(s.liabilities.total)} + equity {_major(s.equity.total)} + earnings "
                      f"{_major(s.retained_earnings)} -> {'balanced' if s.balanced else 'NOT BALANCED'}")
    console.print(f"integrity (running sums = postings and holds): "
                  f"{'[green]ok[/green]' if not problems else '[red]' + '; '.join(problems) + '[/red]'}")
    bean_ok, bean_detail = beancount_check(db, tenant_id)
    console.print(f"beancount (independent checker bean-check): "
                  f"{'[green]no errors[/green]' if bean_ok else '[red]' + bean_detail + '[/red]'}")
    elapsed = time.perf_counter() - started
    print_console(console, staff, settings.public_url)
    console.rule(f"done in {elapsed:.1f} s")
    return {"tenant_id": tenant_id, "trial_balanced": all(tb.balanced for tb in trial), "integrity": not problems,
            "beancount_ok": bean_ok, "seconds": round(elapsed, 2),
            "payments_success_rate": day[0].success_rate, "payments_static_rate": day[0].static_rate,
            "payments_ledger_ok": day[0].ledger_ok, "recon_precision": weeks[0].precision,
            "recon_recall": weeks[0].recall, "recon_injected": weeks[0].injected,
            "safeguarding": [d.safeguarding for d in weeks[0].days], **risk_days[0].as_dict(),
            **credit_days[0].as_dict(), **months[0].as_dict()}


def grouped_balances(uow: UnitOfWork, tenant_id: str) -> dict[str, tuple[int, int, int]]:
    """Every account's posted, pending and available balance, a hot account's shards summed as one line."""
    totals: dict[str, tuple[int, int, int]] = {}
    after: str | None = None
    while page := service.list_accounts(uow, tenant_id, after=after, limit=500):
        for account in page:
            b = service.balances(account)
            code = SHARD.sub(":*", account.code)
            posted, pending, available = totals.get(code, (0, 0, 0))
            totals[code] = (posted + b.posted, pending + b.pending_debits + b.pending_credits,
                            available + b.available)
        after = page[-1].id
    return totals


def code_of(chart: Chart, account_id: str) -> str:
    return next(code for code, value in chart.accounts.items() if value == account_id)


def _major(minor: int) -> str:
    return f"{Money(minor, CURRENCY).to_major():,}"


def bean_check_path() -> str | None:
    beside = Path(sys.executable).parent / "bean-check"
    return str(beside) if beside.exists() else shutil.which("bean-check")


def beancount_check(db: Database, tenant_id: str) -> tuple[bool, str]:
    """Export the tenant's journal and let Beancount's own checker judge it."""
    from finloop.ledger.export import export_beancount

    checker = bean_check_path()
    if checker is None:
        return False, "bean-check not found (pip install beancount)"
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "ledger.beancount"
        with db.uow(read_only=True) as uow, path.open("w", encoding="utf-8") as out:
            export_beancount(uow, tenant_id, out)
        result = subprocess.run([checker, str(path)], capture_output=True, text=True, check=False, timeout=300)  # noqa: S603
    output = (result.stdout + result.stderr).strip()
    return result.returncode == 0 and not output, output[:500]
