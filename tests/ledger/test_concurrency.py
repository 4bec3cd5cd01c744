"""The posting path under real concurrency: many OS processes, a few hot accounts, PostgreSQL only.

Eight spawned processes post hundreds of random transfers each (singles, small all-or-nothing
batches, retried and shared keys, holds posted or voided) between six hot accounts, some of which
must not go negative, so a share of the transfers is refused for lack of funds. Afterwards the books
must show no broken balance rule, no lost update (every running sum equals its postings and pending
holds), postings summing to zero, and exactly as many entries as the workers saw succeed.

The test needs the PostgreSQL server: when it is unreachable the ``postgres_url`` fixture fails it.
"""

from __future__ import annotations

import multiprocessing
import random
import traceback
from dataclasses import dataclass, field
from typing import Any

import pytest
from sqlalchemy import func, select

from finloop.core.errors import InvariantViolation
from finloop.db.uow import Database
from finloop.ledger import service
from finloop.ledger.domain import AccountType, BalanceRule, TransferSpec
from finloop.ledger.models import Account, Entry, Hold

WORKERS = 8
OPERATIONS_PER_WORKER = 200
SHARED_KEYS = 40
CURRENCY = "CNY"
REFUSALS = {"insufficient_funds", "credit_limit_exceeded"}


@dataclass
class Chart:
    tenant_id: str
    #: Liabilities that must not go negative (debits must not exceed credits).
    wallets: list[str]
    #: An asset that must not go below zero (credits must not exceed debits).
    reserve: str
    #: Accounts without a rule.
    free: list[str]

    @property
    def all(self) -> list[str]:
        return [*self.wallets, self.reserve, *self.free]


@dataclass
class Outcome:
    worker: int
    entries: int = 0
    refused: int = 0
    replayed: int = 0
    holds_created: int = 0
    holds_posted: int = 0
    holds_voided: int = 0
    shared_posted: list[str] = field(default_factory=list)
    unexpected: list[str] = field(default_factory=list)


def _shared_transfer(chart: Chart, index: int) -> TransferSpec:
    """A transfer whose content depends only on its key, so workers racing on it send the same thing."""
    pick = random.Random(index)
    debit, credit = pick.sample(chart.all, 2)
    return TransferSpec.simple(f"shared-{index}", debit, credit, pick.randint(1, 3_000), CURRENCY)


def _post(database: Database, chart: Chart, specs: list[TransferSpec], outcome: Outcome) -> bool:
    try:
        with database.uow() as uow:
            posted = service.post_transfers(uow, chart.tenant_id, specs)
            uow.commit()
    except InvariantViolation as error:
        if error.code not in REFUSALS:
            raise
        outcome.refused += 1
        return False
    for entry in posted:
        if entry.replayed:
            outcome.replayed += 1
        else:
            outcome.entries += 1
            if entry.key.startswith("shared-"):
                outcome.shared_posted.append(entry.key)
    return True


def _hold_cycle(database: Database, chart: Chart, rng: random.Random, key: str, outcome: Outcome) -> None:
    wallet = rng.choice(chart.wallets)
    amount = rng.randint(1, 4_000)
    try:
        with database.uow() as uow:
            hold, _ = service.create_hold(uow, chart.tenant_id, key=key, debit_account_id=wallet,
                                          credit_account_id=rng.choice(chart.free), amount=amount,
                                          currency_code=CURRENCY)
            uow.commit()
    except InvariantViolation as error:
        if error.code not in REFUSALS:
            raise
        outcome.refused += 1
        return
    outcome.holds_created += 1
    # The reservation must make the later posting safe whatever the other workers do meanwhile.
    with database.uow() as uow:
        if rng.random() < 0.5:
            service.post_hold(uow, chart.tenant_id, hold.id, amount=rng.randint(1, amount))
            outcome.holds_posted += 1
            outcome.entries += 1
        else:
            service.void_hold(uow, chart.tenant_id, hold.id)
            outcome.holds_voided += 1
        uow.commit()


def _work(url: str, chart: Chart, worker: int, start: Any, results: Any) -> None:
    outcome = Outcome(worker)
    try:
        database = Database(url, pool_size=1, max_overflow=0)
        rng = random.Random(worker)
        start.wait(timeout=120)
        for n in range(OPERATIONS_PER_WORKER):
            roll = rng.random()
            if roll < 0.45:
                debit, credit = rng.sample(chart.all, 2)
                spec = TransferSpec.simple(f"w{worker}-{n}", debit, credit, rng.randint(1, 5_000), CURRENCY)
                if _post(database, chart, [spec], outcome) and rng.random() < 0.1:
                    _post(database, chart, [spec], outcome)  # a client retry: must replay, not post twice
            elif roll < 0.60:
                _post(database, chart, [_shared_transfer(chart, rng.randrange(SHARED_KEYS))], outcome)
            elif roll < 0.88:
                specs = []
                for leg in range(rng.randint(2, 6)):
                    debit, credit = rng.sample(chart.all, 2)
                    specs.append(TransferSpec.simple(f"w{worker}-{n}-{leg}", debit, credit,
                                                     rng.randint(1, 5_000), CURRENCY))
                _post(database, chart, specs, outcome)
            else:
                _hold_cycle(database, chart, rng, f"w{worker}-{n}-hold", outcome)
        database.dispose()
    except Exception:
        outcome.unexpected.append(traceback.format_exc())
    results.put(outcome)


def _open_chart(database: Database) -> tuple[Chart, int]:
    from finloop.tenancy import service as tenancy

    with database.uow() as uow:
        tenant = tenancy.create_tenant(uow, name="Concurrency", actor="test")

        def account(code: str, type_: AccountType, rule: BalanceRule = BalanceRule.NONE) -> str:
            return service.create_account(uow, tenant.id, code=code, type=type_, currency_code=CURRENCY,
                                          balance_rule=rule).id

        chart = Chart(
            tenant_id=tenant.id,
            wallets=[account(f"liabilities:customer:C{i}:wallet", AccountType.LIABILITY,
                             BalanceRule.DEBITS_MUST_NOT_EXCEED_CREDITS) for i in range(3)],
            reserve=account("assets:bank:reserve", AccountType.ASSET, BalanceRule.CREDITS_MUST_NOT_EXCEED_DEBITS),
            free=[account("assets:channel:wallet", AccountType.ASSET), account("income:fees", AccountType.INCOME)],
        )
        capital = account("equity:capital", AccountType.EQUITY)
        opening = [TransferSpec.simple(f"open-{wallet}", chart.free[0], wallet, 8_000, CURRENCY)
                   for wallet in chart.wallets]
        opening.append(TransferSpec.simple("open-reserve", chart.reserve, capital, 8_000, CURRENCY))
        service.post_transfers(uow, tenant.id, opening)
        uow.commit()
    return chart, len(opening)


@pytest.mark.slow
def test_parallel_posting_keeps_the_books_exact(postgres_url: str) -> None:
    database = Database(postgres_url)
    try:
        chart, opening_entries = _open_chart(database)
        context = multiprocessing.get_context("spawn")
        start = context.Barrier(WORKERS)
        results = context.Queue()
        workers = [context.Process(target=_work, args=(postgres_url, chart, n, start, results), daemon=True)
                   for n in range(WORKERS)]
        for process in workers:
            process.start()
        outcomes: list[Outcome] = [results.get(timeout=240) for _ in workers]
        for process in workers:
            process.join(timeout=30)

        failures = [trace for o in outcomes for trace in o.unexpected]
        assert [trace.strip().splitlines()[-1] for trace in failures] == [], "\n".join(failures)
        entries = sum(o.entries for o in outcomes)
        assert entries >= 1_000, "the workload should commit thousands of transfers"
        assert sum(o.refused for o in outcomes) > 0, "some transfers should be refused for lack of funds"
        assert sum(o.replayed for o in outcomes) > 0, "retries and shared keys should replay"
        assert sum(o.holds_posted for o in outcomes) > 0 and sum(o.holds_voided for o in outcomes) > 0
        shared = [key for o in outcomes for key in o.shared_posted]
        assert len(shared) == len(set(shared)), "a shared key was posted by two workers"

        with database.uow(read_only=True) as uow:
            assert service.verify_integrity(uow, chart.tenant_id) == []
            assert service.postings_sum_by_currency(uow, chart.tenant_id) == {CURRENCY: 0}
            broken = uow.session.scalars(select(Account.code).where(
                Account.tenant_id == chart.tenant_id,
                ((Account.balance_rule == BalanceRule.DEBITS_MUST_NOT_EXCEED_CREDITS)
                 & (Account.debits_posted + Account.debits_pending > Account.credits_posted + Account.overdraft_limit))
                | ((Account.balance_rule == BalanceRule.CREDITS_MUST_NOT_EXCEED_DEBITS)
                   & (Account.credits_posted + Account.credits_pending
                      > Account.debits_posted + Account.overdraft_limit)))).all()
            assert broken == []
            committed = uow.session.scalar(select(func.count()).select_from(Entry).where(
                Entry.tenant_id == chart.tenant_id))
            assert committed == opening_entries + entries
            pending = uow.session.scalar(select(func.count()).select_from(Hold).where(
                Hold.tenant_id == chart.tenant_id, Hold.status == "pending"))
            assert pending == 0
    finally:
        database.dispose()
