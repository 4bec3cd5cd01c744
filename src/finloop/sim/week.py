"""The week after the trading day, for ``finloop demo``: money divided, held, released, paid out, and
proven against what the channels and the bank say happened.

Every business day, after the tenant's cut-off:
1. clearing batches per channel; each channel remits the day's expected net into the custody account;
2. settlement moves pending money to available on each party's cycle, holding a rolling reserve and
   releasing reserves that are due;
3. automatic payouts are held on the balances and sent in the sandbox bank's morning run (one retried,
   one refused and returned to the balance, one returned by the bank days after it was paid);
4. the money-market fund publishes its yield, accrues income, pays redemptions and sweeps idle balances;
5. each channel's bill (made by its sandbox) and the custody account's camt.053 statement are imported
   and reconciled; the safeguarding check compares the custody balance with everything owed.

The bills of the first day are tampered with, one discrepancy of each class per channel, and the bank
statement carries a charge we never booked; the week ends by scoring what reconciliation found against
what was injected (precision and recall) and by working the discrepancies.
"""

from __future__ import annotations

import dataclasses
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

from rich.console import Console
from rich.table import Table

from finloop.clearing import service as clearing
from finloop.core.calendar import BusinessCalendar, zone
from finloop.ledger import service as ledger
from finloop.onboarding import flows as onboarding
from finloop.payments import flows
from finloop.payments import service as payments
from finloop.payments.connectors.sandbox.engine import BillLine
from finloop.payouts import flows as payout_flows
from finloop.payouts import service as payouts
from finloop.payouts.bank_sandbox import BankBehaviour, SandboxBank
from finloop.reconciliation import discrepancies, safeguarding
from finloop.reconciliation import service as imports
from finloop.reconciliation import statements as unified
from finloop.reconciliation.match_models import Discrepancy
from finloop.reconciliation.matching import DiscrepancyClass
from finloop.reconciliation.statement_writer import Movement, camt053
from finloop.settlement import service as settlement
from finloop.settlement import statement as party_statements
from finloop.settlement.accounts import CUSTODY_BANK_ACCOUNT, PartyKind, bank_account_code
from finloop.sim.payments_day import CHANNELS, CURRENCY, TradingWorld, run_day
from finloop.splits import service as splits
from finloop.splits.domain import PlatformKind, RuleTerms
from finloop.tenancy.calendar import get_calendar
from finloop.wealth import service as wealth

#: The custody account's name at the bank, on its statements.
CUSTODY_IBAN = "CN88CUSTODY0000000001"
#: A bank charge on the first day's statement that our books never saw.
BANK_CHARGE = 15_00


@dataclass
class Parties:
    merchant_id: str
    promoter_id: str
    top_promoter_id: str
    customer_id: str
    fund_id: str
    branch_id: str


@dataclass(frozen=True)
class Injected:
    source: str
    kind: DiscrepancyClass
    references: frozenset[str]


@dataclass
class DayFigures:
    day: date
    payments: int = 0
    settled: int = 0
    reserve_held: int = 0
    released: int = 0
    payouts_paid: int = 0
    payouts_failed: int = 0
    payouts_returned: int = 0
    fund_income: int = 0
    bill_lines: int = 0
    matched: int = 0
    discrepancies: int = 0
    custody_balance: int = 0
    safeguarding: str = ""


@dataclass
class WeekReport:
    days: list[DayFigures] = field(default_factory=list)
    injected: int = 0
    found: int = 0
    true_found: int = 0
    recalled: int = 0
    resolved: dict[str, int] = field(default_factory=dict)
    left_open: int = 0
    split_example: list[tuple[str, int]] = field(default_factory=list)
    statements: dict[str, Any] = field(default_factory=dict)
    unified_rows: list[dict[str, Any]] = field(default_factory=list)

    @property
    def precision(self) -> float:
        return self.true_found / self.found if self.found else 1.0

    @property
    def recall(self) -> float:
        return self.recalled / self.injected if self.injected else 1.0


# ------------------------------------------------------------------------------------------ set-up


def configure(world: TradingWorld) -> Parties:
    """Promoters, split rules, a merchant hierarchy, fee schedules, settlement and payout terms, a fund, and
    the merchants' and promoters' onboarding (verified through the sandbox provider)."""
    db, tenant_id = world.db, world.tenant_id
    with db.uow() as uow:
        top = splits.create_promoter(uow, tenant_id, reference="P0", name="Regional agent")
        promoter = splits.create_promoter(uow, tenant_id, reference="P1", name="Tea blogger", parent_id=top.id)
        # 10% to the platform and 5% to the order's promoter; gifts pay two promoter levels, 8% and 3%.
        splits.create_split_rule(uow, tenant_id, scope=splits.RuleScope.DEFAULT, terms=RuleTerms(
            platform_kind=PlatformKind.RATIO, platform_ratio=Decimal("0.10"), promoter_ratios=(Decimal("0.05"),)),
            description="platform 10%, promoter 5%")
        splits.create_split_rule(uow, tenant_id, scope=splits.RuleScope.CATEGORY, category="gift", terms=RuleTerms(
            platform_kind=PlatformKind.RATIO, platform_ratio=Decimal("0.10"),
            promoter_ratios=(Decimal("0.08"), Decimal("0.03"))), description="gifts: two promoter levels")
        headquarters = payments.create_merchant(uow, tenant_id, reference="demo-hq", name="Tea Group HQ")
        branch = payments.create_merchant(uow, tenant_id, reference="demo-branch", name="Tea Group Pudong")
        splits.create_merchant_link(uow, tenant_id, merchant_id=branch.id, parent_merchant_id=headquarters.id,
                                    share_ratio=Decimal("0.02"))
        # The platform bears unionpay's fee; the merchant bears globalcard's.
        clearing.create_schedule(uow, tenant_id, clearing.ScheduleDraft(
            channel="unionpay", kind="percentage", rate=Decimal("0.006"), bearer="platform",
            description="unionpay card 0.6%"))
        clearing.create_schedule(uow, tenant_id, clearing.ScheduleDraft(
            channel="globalcard", kind="percentage", rate=Decimal("0.008"), bearer="merchant",
            description="globalcard card 0.8%, borne by the merchant"))
        settlement.set_profile(uow, tenant_id, party_kind=PartyKind.MERCHANT, party_id=world.merchant_id,
                               offset_days=1, reserve_rate=Decimal("0.10"), reserve_days=3)
        for kind, party, name, number in ((PartyKind.MERCHANT, world.merchant_id, "Demo Tea House Ltd",
                                           "6222020200112233445"),
                                          (PartyKind.PROMOTER, promoter.id, "Li Na", "6222020200998877665")):
            account = payouts.create_payout_account(uow, tenant_id, party_kind=kind, party_id=party,
                                                    currency=CURRENCY, holder_name=name, account_number=number,
                                                    bank_code="ICBKCNBJ")
            payouts.set_schedule(uow, tenant_id, party_kind=kind, party_id=party, currency=CURRENCY,
                                 interval="daily", minimum_balance=20_000_00 if kind is PartyKind.MERCHANT else 0,
                                 payout_account_id=account.id)
        customer = payments.create_customer(uow, tenant_id, reference="demo-saver")
        fund = wealth.create_fund(uow, tenant_id, code="MMF1", name="Demo Money Fund", currency_code=CURRENCY,
                                  fast_redemption_daily_limit=10_000_00, min_subscription_amount=1_00, actor="demo")
        wealth.set_sweep(uow, tenant_id, holder_kind="merchant", holder_id=world.merchant_id, fund_id=fund.id,
                         keep_amount=10_000_00, min_sweep_amount=100_00, actor="demo")
        uow.commit()
    # Onboarding: only verified parties are paid out to, so the merchants pass KYB (registry lookup, the
    # company and its owners screened) and the promoters KYC (document and liveness) through the sandbox
    # verification provider before the first payout.
    businesses = ((world.merchant_id, "Demo Tea House Ltd", "91310000MA1K00001A5"),
                  (headquarters.id, "Tea Group Holdings Ltd", "91310000MA1K00002B5"),
                  (branch.id, "Tea Group Pudong Branch Ltd", "91310000MA1K00003C5"))
    for merchant_id, name, number in businesses:
        onboarding.submit(db, tenant_id, party_kind="merchant", party_id=merchant_id, actor="demo", business={
            "registered_name": name, "registration_number": number, "country": "CN", "business_type": "retail",
            "beneficial_owners": [{"name": "Chen Jing", "date_of_birth": "1971-08-09", "nationality": "CN",
                                   "ownership_percent": 70}]})
    for promoter_id, name, number in ((top.id, "Zhao Lei", "E20000017"), (promoter.id, "Li Na", "E20000025")):
        onboarding.submit(db, tenant_id, party_kind="promoter", party_id=promoter_id, actor="demo", individual={
            "legal_name": name, "date_of_birth": "1988-03-14", "nationality": "CN",
            "national_id": "1101" + number[1:] + "0", "document_type": "passport", "document_number": number})
    return Parties(world.merchant_id, promoter.id, top.id, customer.id, fund.id, branch.id)


def order_metadata(parties: Parties) -> Callable[[int], dict[str, Any]]:
    """A third of the orders come without a promoter, a third through the blogger, a third are gifts."""
    def metadata(index: int) -> dict[str, Any]:
        if index % 3 == 0:
            return {}
        if index % 3 == 1:
            return {"promoter_id": parties.promoter_id}
        return {"promoter_id": parties.promoter_id, "category": "gift"}
    return metadata


def split_example(world: TradingWorld, parties: Parties) -> list[tuple[str, int]]:
    """The issue's example: a CNY 100.00 order with a promoter splits 10.00 / 5.00 / 85.00."""
    with world.db.uow(read_only=True) as uow:
        plan = splits.plan_split(uow, world.tenant_id, amount=100_00, currency_code=CURRENCY,
                                 merchant_id=parties.merchant_id, promoter_id=parties.promoter_id)
    return [(f"{part.role.value}{f' L{part.level}' if part.level else ''}", part.amount)
            for part in plan.allocation.parts]


def top_up_and_save(world: TradingWorld, parties: Parties) -> None:
    """The saver tops up the wallet by card and puts most of it in the fund."""
    db, tenant_id = world.db, world.tenant_id
    with db.uow() as uow:
        top_up = payments.create_payment(uow, tenant_id, payments.PaymentDraft(
            merchant_id=None, purpose="wallet_top_up", customer_id=parties.customer_id, amount=5_000_00,
            currency=CURRENCY, method="card", card_id=world.card_id, order_reference="top-up-1"))
        uow.commit()
    flows.confirm_payment(db, tenant_id, top_up.id)
    with db.uow() as uow:
        wealth.place_order(uow, tenant_id, fund_id=parties.fund_id, kind="subscribe", holder_kind="customer",
                           holder_id=parties.customer_id, amount=4_000_00, source="demo")
        uow.commit()


# ------------------------------------------------------------------------------------------ the week


@dataclass
class Week:
    world: TradingWorld
    parties: Parties
    rng: random.Random
    bank: SandboxBank
    report: WeekReport = field(default_factory=WeekReport)
    injected: list[Injected] = field(default_factory=list)
    carried: dict[str, list[BillLine]] = field(default_factory=dict)
    custody_balance: int = 0

    @property
    def calendar(self) -> BusinessCalendar:
        with self.world.db.uow(read_only=True) as uow:
            return get_calendar(uow, self.world.tenant_id)

    def at(self, day: date, local: time) -> None:
        """Move the simulated clock to a local time of ``day``."""
        instant = datetime.combine(day, local, tzinfo=zone(self.calendar.timezone))
        assert self.world.clock.now() <= instant, "simulated time only moves forward"
        self.world.clock.set(instant)


def run_week(world: TradingWorld, parties: Parties, *, seed: int, daily_payments: int,
             progress: Callable[[DayFigures], None] | None = None) -> WeekReport:
    bank = SandboxBank(world.clock, seed=seed, behaviour=BankBehaviour(return_after=timedelta(days=1)))
    # The first payouts: the blogger's is paid; the merchant's fails once (the bank's service is down) and
    # goes through on retry; the next day the blogger's account is closed and the money returns to the
    # balance; the merchant's next one is paid and then returned by the bank a day later.
    bank.queue("success", "retry", "fail", "return")
    week = Week(world, parties, random.Random(seed), bank)
    with world.db.uow(read_only=True) as uow:
        # The bank's statement starts where the custody account stands in our books before the week.
        custody = ledger.find_account_by_code(uow, world.tenant_id, bank_account_code(CUSTODY_BANK_ACCOUNT), CURRENCY)
        week.custody_balance = ledger.balances(custody).posted if custody is not None else 0
    week.report.split_example = split_example(world, parties)
    with payout_flows.use_bank(bank):
        first = week.calendar.business_date(world.clock.now())
        days = [first]
        while len(days) < 5:
            days.append(week.calendar.add_business_days(days[-1], 1))
        for index, day in enumerate(days):
            figures = DayFigures(day)
            if index:
                # The bank's morning run: yesterday's payouts go out, earlier failures are retried, and
                # returns it received are put back on the balances.
                week.at(day, time(9, 0))
                payout_flows.process(world.db)
                payout_flows.poll_returns(world.db)
                week.at(day, time(10, 0))
                figures.payments = run_day(world, payments=daily_payments, seed=seed + index,
                                           metadata=order_metadata(parties)).payments
                if index == 2:
                    refund_some(week)
            else:
                late_payments(week)
            week.at(day, time(23, 5))
            end_of_day(week, day, figures, tamper=index == 0)
            week.report.days.append(figures)
            if progress:
                progress(figures)
        score(week)
        work_discrepancies(week)
        week.report.statements = statements(week, days[0], days[-1])
        with world.db.uow(read_only=True) as uow:
            week.report.unified_rows = unified.build(uow, world.tenant_id, period=unified.Period.WEEKLY,
                                                     on=days[0]).totals["channel"].to_dicts()
    return week.report


def late_payments(week: Week) -> None:
    """Three orders just before the cut-off: channels often book these on their next day."""
    week.at(week.calendar.business_date(week.world.clock.now()), time(22, 45))
    run_day(week.world, payments=3, seed=99, metadata=order_metadata(week.parties))


def refund_some(week: Week) -> None:
    """Customers return goods: full and partial refunds claw back from every party of the split."""
    db, tenant_id = week.world.db, week.world.tenant_id
    with db.uow(read_only=True) as uow:
        paid = [p.id for p in payments.list_payments(uow, tenant_id, filters=payments.PaymentFilter(
            status="succeeded", merchant_id=week.parties.merchant_id), after=None, limit=200)]
    for number, payment_id in enumerate(week.rng.sample(paid, 12)):
        with db.uow(read_only=True) as uow:
            captured = payments.get_payment(uow, tenant_id, payment_id).captured_amount
        flows.refund_payment(db, tenant_id, payment_id, amount=None if number % 3 == 0 else captured // 2,
                             reason="returned goods")
    flows.resolve_open(db, limit=100)


def end_of_day(week: Week, day: date, figures: DayFigures, *, tamper: bool) -> None:
    db, tenant_id = week.world.db, week.world.tenant_id
    # 1. Clearing, and each channel's remittance of the day's net.
    remitted: list[Movement] = []
    with db.uow() as uow:
        for batch in clearing.build_batches(uow, tenant_id, business_date=day):
            net = batch.expected_net_amount
            if net:
                # A day of more refunds than payments: the channel takes the difference from the account.
                clearing.record_channel_settlement(uow, tenant_id, batch.id, amount=net, received_on=day,
                                                   reference=f"{batch.channel_code}-{day}")
                remitted.append(Movement(abs(net), "credit" if net > 0 else "debit", day, our_reference=batch.id,
                                         bank_reference=f"RMT{batch.channel_code.upper()}{day:%Y%m%d}",
                                         description=f"{batch.channel_code} settlement", kind="settlement"))
        uow.commit()
    # 2. Settlement on the parties' cycles, reserves and freezes released when due.
    with db.uow() as uow:
        result = settlement.run_settlement(uow, tenant_id, business_date=day)
        released = settlement.release_due(uow, tenant_id, business_date=day)
        uow.commit()
    figures.settled = sum(b.amount for b in result.batches)
    figures.reserve_held = sum(b.reserve_amount for b in result.batches)
    figures.released = sum(r.amount for r in released)
    # 3. The automatic payouts of the day, held on the balances until the bank's morning run sends them.
    payout_flows.run_automatic(db, tenant_id, day)
    with db.uow(read_only=True) as uow:
        for payout in payouts.list_payouts(uow, tenant_id, limit=200):
            figures.payouts_paid += payout.executed_on == day
            figures.payouts_failed += payout.status == "failed" and payout.updated_at.date() == day
            figures.payouts_returned += payout.returned_on == day
    # 4. The fund: the day's yield, income, redemptions due, sweeps of idle balances.
    with db.uow() as uow:
        wealth.publish_price(uow, tenant_id, week.parties.fund_id, price_on=day,
                             income_per_10k=Decimal("0.6500") + Decimal(week.rng.randint(0, 40)) / 10_000,
                             actor="demo")
        figures.fund_income = sum(r.amount for r in wealth.accrue(uow, tenant_id, business_date=day))
        wealth.settle_due_redemptions(uow, tenant_id, business_date=day)
        wealth.run_sweeps(uow, tenant_id, business_date=day)
        uow.commit()
    # 5. The channels' bills and the custody statement, imported and reconciled; safeguarding.
    for code in CHANNELS:
        lines = list(week.world.sandbox.engine.bill(code, day, tz_offset=timedelta(hours=8)))
        lines = week.carried.pop(code, []) + (inject(week, code, lines) if tamper else lines)
        bill = week.world.sandbox.providers[code].bill(lines, day, code)
        with db.uow() as uow:
            imports.import_file(uow, tenant_id, format="generic", content=bill.content, source=code,
                                business_date=day, filename=bill.filename)
            run = discrepancies.run_reconciliation(uow, tenant_id, source=code, business_date=day)
            uow.commit()
        figures.bill_lines += len(lines)
        figures.matched += run.matched_count
        figures.discrepancies += run.counts["discrepancies"]
    movements = remitted + bank_movements(week, day)
    if tamper:
        movements.append(Movement(BANK_CHARGE, "debit", day, bank_reference=f"CHG{day:%Y%m%d}",
                                  description="account maintenance charge", kind="fee"))
        week.injected.append(Injected(CUSTODY_BANK_ACCOUNT, DiscrepancyClass.MISSING_ON_PLATFORM,
                                      frozenset({f"CHG{day:%Y%m%d}"})))
    opening = week.custody_balance
    week.custody_balance += sum(m.amount if m.direction == "credit" else -m.amount for m in movements)
    content = camt053(account=CUSTODY_IBAN, currency=CURRENCY, opening_balance=opening, movements=movements,
                      statement_id=f"CUSTODY-{day:%Y%m%d}", created_at=week.world.clock.now(), opening_on=day,
                      closing_on=day)
    with db.uow() as uow:
        imports.import_file(uow, tenant_id, format="camt053", content=content, source=CUSTODY_BANK_ACCOUNT,
                            business_date=day, filename=f"custody-{day}.xml")
        run = discrepancies.run_reconciliation(uow, tenant_id, source=CUSTODY_BANK_ACCOUNT, business_date=day)
        checks = safeguarding.run_check(uow, tenant_id, on=day)
        uow.commit()
    figures.matched += run.matched_count
    figures.discrepancies += run.counts["discrepancies"]
    figures.custody_balance = week.custody_balance
    figures.safeguarding = ", ".join(sorted({c.status for c in checks}))


def bank_movements(week: Week, day: date) -> list[Movement]:
    """What the sandbox bank booked on the custody account: payouts, returns, and the fund's transfers."""
    from finloop.reconciliation.platform import fund_transfer_rows

    moved = [Movement(m.amount, m.direction, day, our_reference=m.reference, bank_reference=m.bank_reference,
                      description=m.kind, kind=m.kind) for m in week.bank.statement(day)]
    with week.world.db.uow(read_only=True) as uow:
        # The fund's custodian executes our subscriptions and redemptions as instructed.
        for row in fund_transfer_rows(uow, week.world.tenant_id, source=CUSTODY_BANK_ACCOUNT, business_date=day,
                                      at=week.world.clock.now()):
            moved.append(Movement(row["amount"], row["direction"], day, our_reference=row["our_reference"],
                                  description=row["description"], kind="other"))
    return moved


def inject(week: Week, source: str, lines: list[BillLine]) -> list[BillLine]:
    """One discrepancy of each class in a channel's bill, on distinct payments; remembered for scoring."""
    local = zone(week.calendar.timezone)
    boundary = datetime.combine(lines[0].at.astimezone(local).date(), time(22, 30), tzinfo=local) if lines else None
    payments_ = [line for line in lines if line.kind == "payment" and boundary and line.at < boundary]
    late = [line for line in lines if line.kind == "payment" and boundary and line.at >= boundary]
    if len(payments_) < 6:
        return lines
    missing, amount, status, fee, duplicate = week.rng.sample(payments_, 5)
    tampered = [line for line in lines if line is not missing and line not in late[:1]]
    changes = {id(amount): dataclasses.replace(amount, amount=amount.amount - 1_00),
               id(status): dataclasses.replace(status, status="refunded"),
               id(fee): dataclasses.replace(fee, fee=fee.fee + 7)}
    tampered = [changes.get(id(line), line) for line in tampered]
    tampered.append(duplicate)
    ghost = dataclasses.replace(missing, reference=f"att_ghost_{source}", channel_ref=f"GHOST{source.upper()}",
                                amount=12_345, fee=74)
    tampered.append(ghost)
    for line, kind in ((missing, DiscrepancyClass.MISSING_AT_CHANNEL), (amount, DiscrepancyClass.AMOUNT_MISMATCH),
                       (status, DiscrepancyClass.STATUS_MISMATCH), (fee, DiscrepancyClass.FEE_MISMATCH),
                       (duplicate, DiscrepancyClass.DUPLICATE), (ghost, DiscrepancyClass.MISSING_ON_PLATFORM)):
        week.injected.append(Injected(source, kind, frozenset({line.reference, line.channel_ref})))
    if late:
        # The channel books the late order on its next day: expected later, not a break.
        week.carried[source] = [late[0]]
        week.injected.append(Injected(source, DiscrepancyClass.SETTLEMENT_TIMING,
                                      frozenset({late[0].reference, late[0].channel_ref})))
    tampered.sort(key=lambda line: (line.at, line.kind, line.reference))
    return tampered


def _references(item: Discrepancy) -> set[str]:
    return {value for value in (item.our_reference, item.channel_reference, item.payment_id, item.record_id)
            if value}


def score(week: Week) -> None:
    """Every discrepancy reconciliation raised against every one injected: precision and recall."""
    with week.world.db.uow(read_only=True) as uow:
        found = [(d.source, d.discrepancy_class, _references(d))
                 for d in discrepancies.list_discrepancies(uow, week.world.tenant_id, limit=1000)]

    def same(injected: Injected, raised: tuple[str, str, set[str]]) -> bool:
        source, kind, references = raised
        return injected.source == source and injected.kind == kind and bool(injected.references & references)

    hits = [raised for raised in found if any(same(i, raised) for i in week.injected)]
    recalled = [i for i in week.injected if any(same(i, raised) for raised in found)]
    week.report.injected, week.report.found = len(week.injected), len(found)
    week.report.true_found, week.report.recalled = len(hits), len(recalled)


#: The channel whose discrepancies the demo leaves open, for a person to work in the console.
LEFT_FOR_THE_CONSOLE = "globalcard"


def work_discrepancies(week: Week) -> None:
    """The operations team's queue: timing items accepted, differences written off, the rest closed; one
    channel's items are left open for the console."""
    tenant_id = week.world.tenant_id
    with week.world.db.uow() as uow:
        for item in discrepancies.list_discrepancies(uow, tenant_id, status="open", limit=1000):
            if item.source == LEFT_FOR_THE_CONSOLE:
                week.report.left_open += 1
                continue
            if item.discrepancy_class == DiscrepancyClass.SETTLEMENT_TIMING:
                action = "accept_timing"
            elif item.discrepancy_class in (DiscrepancyClass.STATUS_MISMATCH, DiscrepancyClass.DUPLICATE):
                action = "mark_no_action"  # raised with the channel: no money of ours moved
            elif item.difference:
                action = "write_off"
            else:
                action = "mark_no_action"
            discrepancies.resolve(uow, tenant_id, item.id, action=action, reason="demo: worked by operations",
                                  actor="demo")
            week.report.resolved[action] = week.report.resolved.get(action, 0) + 1
        uow.commit()


def statements(week: Week, first: date, last: date) -> dict[str, Any]:
    tenant_id = week.world.tenant_id
    out: dict[str, Any] = {}
    with week.world.db.uow(read_only=True) as uow:
        for label, kind, party in (("merchant", PartyKind.MERCHANT, week.parties.merchant_id),
                                   ("promoter", PartyKind.PROMOTER, week.parties.promoter_id)):
            out[label] = party_statements.statement(uow, tenant_id, party_kind=kind, party_id=party,
                                                    from_on=first, to_on=last)
        out["fund"] = wealth.statement(uow, tenant_id, holder_kind="customer", holder_id=week.parties.customer_id,
                                       from_on=first, to_on=last)
    return out


# ------------------------------------------------------------------------------------------ printing


def _major(minor: int) -> str:
    return f"{Decimal(minor).scaleb(-2):,.2f}"


def print_week(console: Console, report: WeekReport) -> None:
    console.print("   a CNY 100.00 order with a promoter splits: " + ", ".join(
        f"{role} {_major(amount)}" for role, amount in report.split_example))
    days = Table("day", "payments", "settled", "reserve held", "released", "payouts paid / failed / returned",
                 "fund income", "bill lines", "matched", "breaks", "custody balance", "safeguarding",
                 title="The week after (CNY)")
    for d in report.days:
        days.add_row(d.day.strftime("%a %d %b"), str(d.payments), _major(d.settled), _major(d.reserve_held),
                     _major(d.released), f"{d.payouts_paid} / {d.payouts_failed} / {d.payouts_returned}",
                     _major(d.fund_income), str(d.bill_lines), str(d.matched), str(d.discrepancies),
                     _major(d.custody_balance), d.safeguarding)
    console.print(days)
    console.print(f"reconciliation: {report.injected} discrepancies injected (every class, in the channels' bills "
                  f"and the bank statement), {report.found} raised; precision {report.precision:.0%}, recall "
                  f"{report.recall:.0%}; worked: " + ", ".join(f"{n} {a}" for a, n in sorted(report.resolved.items()))
                  + f"; {report.left_open} left open for the console ({LEFT_FOR_THE_CONSOLE})")
    for label in ("merchant", "promoter"):
        statement = report.statements[label]
        for row in statement.currencies:
            upcoming = sum(u.amount for u in row.upcoming_settlements) + sum(r.amount for r in row.upcoming_releases)
            console.print(
                f"{label} statement {row.currency}: sold {_major(row.gross_sales_amount)}, fees "
                f"{_major(row.fee_amount)}, platform commission {_major(row.platform_commission_amount)}, promoter "
                f"commission {_major(row.promoter_commission_amount)}, clawed back {_major(row.clawed_back_amount)}"
                f" -> net {_major(row.net_amount)}; now pending {_major(row.pending)}, reserve {_major(row.reserve)}"
                f", available {_major(row.available)}, owes {_major(row.receivable)}; paid out "
                f"{_major(row.paid_out_amount)}; still to arrive {_major(upcoming)}")
    fund = report.statements["fund"]
    holdings = ", ".join(f"{h.fund_code} {_major(h.amount)}" for h in fund.holdings)
    income = ", ".join(f"{c} {_major(a)}" for c, a in fund.total_income.items())
    console.print(f"saver's fund statement: holds {holdings}, income this week {income}")
    channels = Table("channel", "payments", "refunds", "fees", "net", "count", title="Unified weekly statement (CNY)")
    for row in report.unified_rows:
        channels.add_row(str(row["channel"]), _major(row["payments"]), _major(row["refunds"]), _major(row["fees"]),
                         _major(row["net"]), str(row["count"]))
    console.print(channels)
