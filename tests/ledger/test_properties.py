"""Random sequences of ledger operations against the real service, checked step by step against a
small reference model of the books.

Each hypothesis example opens a fresh tenant (the ``db`` fixture is one database per test, shared by
the examples) with a chart that has balance rules, then runs transfers, multi-leg entries, batches,
holds (post in full or in part, void, expire), reversals, key retries and freezes. After every step:
the service accepted exactly what the model accepts, refused operations changed nothing, every
running sum equals the model's, the trial balance balances per currency, no account breaks its
balance rule, and ``verify_integrity`` finds nothing.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from finloop.core.clock import FrozenClock
from finloop.core.errors import FinloopError, InvalidRequest
from finloop.core.money import MAX_AMOUNT
from finloop.db.uow import Database, UnitOfWork
from finloop.ledger import reports, service
from finloop.ledger.domain import AccountStatus, AccountType, BalanceRule, PostingSpec, TransferSpec
from finloop.ledger.models import Account, Entry, Hold
from finloop.tenancy import service as tenancy

#: (code, type, currency, balance rule, overdraft limit)
CHART = [
    ("assets:bank:main", AccountType.ASSET, "CNY", BalanceRule.NONE, 0),
    ("liabilities:merchant:M1:available", AccountType.LIABILITY, "CNY", BalanceRule.DEBITS_MUST_NOT_EXCEED_CREDITS, 0),
    ("liabilities:merchant:M2:available", AccountType.LIABILITY, "CNY", BalanceRule.DEBITS_MUST_NOT_EXCEED_CREDITS,
     1_000),
    ("assets:loans:bnpl:principal", AccountType.ASSET, "CNY", BalanceRule.CREDITS_MUST_NOT_EXCEED_DEBITS, 0),
    ("income:fees", AccountType.INCOME, "CNY", BalanceRule.NONE, 0),
    ("assets:bank:usd", AccountType.ASSET, "USD", BalanceRule.NONE, 0),
    ("liabilities:merchant:M1:usd", AccountType.LIABILITY, "USD", BalanceRule.DEBITS_MUST_NOT_EXCEED_CREDITS, 0),
]


#: (key, debit, credit, amount) posted when the books open.
OPENING = [("open:m1", 0, 1, 10_000), ("open:m2", 0, 2, 3_000), ("open:loan", 3, 0, 8_000),
           ("open:usd", 5, 6, 10_000)]


class Refused(Exception):
    """The model refuses the operation: the service must refuse it too and change nothing."""


class Expired(Exception):
    """The model expires a hold on touch: the service must fail the request but keep the release."""


@dataclass
class ModelAccount:
    id: str
    currency: str
    rule: BalanceRule
    overdraft: int
    status: str = AccountStatus.OPEN.value
    debits_posted: int = 0
    credits_posted: int = 0
    debits_pending: int = 0
    credits_pending: int = 0

    def apply(self, signed: int, currency: str) -> None:
        if self.status != AccountStatus.OPEN or currency != self.currency:
            raise Refused
        if signed > 0:
            self.debits_posted += signed
        else:
            self.credits_posted -= signed

    def check_rule(self) -> None:
        debits_excess = self.debits_posted + self.debits_pending - self.credits_posted
        credits_excess = self.credits_posted + self.credits_pending - self.debits_posted
        if ((self.rule is BalanceRule.DEBITS_MUST_NOT_EXCEED_CREDITS and debits_excess > self.overdraft)
                or (self.rule is BalanceRule.CREDITS_MUST_NOT_EXCEED_DEBITS and credits_excess > self.overdraft)):
            raise Refused

    def sums(self) -> tuple[int, int, int, int, str]:
        return (self.debits_posted, self.credits_posted, self.debits_pending, self.credits_pending, self.status)


@dataclass
class ModelHold:
    id: str
    debit: int
    credit: int
    amount: int
    expires_at: datetime | None
    status: str = "pending"
    posted_amount: int = 0


@dataclass
class ModelEntry:
    id: str
    kind: str
    legs: list[tuple[int, int]]
    currency: str
    reversed: bool = False


@dataclass
class Model:
    accounts: list[ModelAccount]
    holds: list[ModelHold] = field(default_factory=list)
    entries: list[ModelEntry] = field(default_factory=list)
    #: Single transfers that posted: (key, legs, currency), for retries with the same key.
    transfers: list[tuple[str, list[tuple[int, int]], str]] = field(default_factory=list)

    def post(self, legs: list[tuple[int, int]], currency: str) -> None:
        """Apply one entry's legs, then check the rule of every account it touched."""
        if any(not 0 < abs(amount) <= MAX_AMOUNT for _, amount in legs):
            raise Refused
        if len({index for index, _ in legs}) != len(legs) or sum(amount for _, amount in legs) != 0:
            raise Refused
        for index, amount in legs:
            self.accounts[index].apply(amount, currency)
        for index, _ in legs:
            self.accounts[index].check_rule()

    def touch_hold(self, hold: ModelHold, now: datetime) -> None:
        """What every post or void does first: expire a timed-out hold, refuse a resolved one."""
        if hold.status == "pending" and hold.expires_at is not None and hold.expires_at <= now:
            self.release(hold)
            hold.status = "expired"
            raise Expired
        if hold.status != "pending":
            raise Refused

    def release(self, hold: ModelHold) -> None:
        self.accounts[hold.debit].debits_pending -= hold.amount
        self.accounts[hold.credit].credits_pending -= hold.amount


# ---------------------------------------------------------------------------------------------- operations

accounts_ = st.integers(min_value=0, max_value=len(CHART) - 1)
CURRENCY_GROUPS = [[i for i, row in enumerate(CHART) if row[2] == code] for code in ("CNY", "USD")]
#: Mostly two accounts of one currency, sometimes any two (a mismatch or the same account twice).
pairs = st.one_of(*[st.sampled_from(CURRENCY_GROUPS).flatmap(
    lambda group: st.lists(st.sampled_from(group), min_size=2, max_size=2, unique=True))] * 5,
                  st.lists(accounts_, min_size=2, max_size=2))
#: Mostly ordinary amounts, sometimes zero or the edges of the accepted range.
amounts = st.one_of(*[st.integers(min_value=1, max_value=5_000)] * 8, st.sampled_from([0, MAX_AMOUNT, MAX_AMOUNT + 1]))
references = st.integers(min_value=0, max_value=50)

transfers = pairs.flatmap(lambda pair: st.tuples(st.just(pair[0]), st.just(pair[1]), amounts))
OPERATION_ARGUMENTS: dict[str, st.SearchStrategy[tuple[Any, ...]]] = {
    "transfer": transfers,
    "split": st.tuples(st.lists(st.sampled_from(CURRENCY_GROUPS[0]), min_size=3, max_size=3), amounts, amounts).map(
        lambda t: (*t[0], t[1], t[2])),
    "batch": st.tuples(st.lists(transfers, min_size=1, max_size=4)),
    "hold": st.tuples(transfers, st.one_of(st.none(), st.integers(1, 7_200))).map(lambda t: (*t[0], t[1])),
    "post": st.tuples(references, st.one_of(st.none(), st.integers(min_value=0, max_value=5_000))),
    "void": st.tuples(references),
    "reverse": st.tuples(references),
    "retry": st.tuples(references, st.booleans()),
    "freeze": st.tuples(accounts_, st.booleans()),
    "advance": st.tuples(st.integers(min_value=1, max_value=3_600)),
}
#: How often each kind of operation is drawn, by repetition.
OPERATION_WEIGHTS = {"transfer": 3, "split": 1, "batch": 2, "hold": 3, "post": 3, "void": 2, "reverse": 2,
                     "retry": 1, "freeze": 1, "advance": 2}
operations = st.sampled_from([kind for kind, weight in OPERATION_WEIGHTS.items() for _ in range(weight)]).flatmap(
    lambda kind: OPERATION_ARGUMENTS[kind].map(lambda arguments: (kind, *arguments)))


class Runner:
    """Runs one operation on the model and on the service, as an API entry point would."""

    def __init__(self, db: Database, clock: FrozenClock, tenant_id: str, model: Model) -> None:
        self.db, self.clock, self.tenant_id, self.model = db, clock, tenant_id, model
        self.step = 0
        self.last_snapshot = snapshot(db, tenant_id)

    def spec(self, key: str, legs: list[tuple[int, int]], currency: str) -> TransferSpec:
        return TransferSpec(key, tuple(PostingSpec(self.model.accounts[i].id, amount, currency) for i, amount in legs))

    def run(self, op: tuple[Any, ...]) -> None:
        self.step += 1
        kind = op[0]
        if kind == "advance":
            self.clock.advance(timedelta(seconds=op[1]))
            return
        before = copy.deepcopy(self.model)
        self.service_call: Any = None
        expected = "accepted"
        try:
            getattr(self, f"_plan_{kind}")(*op[1:])
        except Refused:
            self.model, expected = before, "refused"
        except Expired:
            expected = "expired"
        if self.service_call is None:  # nothing to act on yet: no hold, entry or transfer to refer to
            self.model = before
            return
        outcome, error = self.call(self.service_call)
        event(f"{kind}: {outcome}")
        assert outcome == expected, f"step {self.step} {op}: model says {expected}, service {outcome} ({error})"
        if outcome == "refused":
            assert snapshot(self.db, self.tenant_id) == self.last_snapshot, f"refused {op} changed the books"

    # -- the model's side: each _plan_ method first records the service call that does the same, then
    # -- applies the operation to the model, raising Refused or Expired as the service should.

    def _plan_transfer(self, debit: int, credit: int, amount: int) -> None:
        key, currency, legs = f"t{self.step}", self.model.accounts[debit].currency, [(debit, amount), (credit, -amount)]
        spec = self.spec(key, legs, currency)
        self.service_call = lambda uow: new_entries([service.post_transfer(uow, self.tenant_id, spec)])
        self.model.post(legs, currency)
        self.model.entries.append(ModelEntry("", "transfer", legs, currency))
        self.model.transfers.append((key, legs, currency))

    def _plan_split(self, debit: int, first: int, second: int, a: int, b: int) -> None:
        currency, legs = self.model.accounts[debit].currency, [(debit, a + b), (first, -a), (second, -b)]
        spec = self.spec(f"s{self.step}", legs, currency)
        self.service_call = lambda uow: new_entries([service.post_transfer(uow, self.tenant_id, spec)])
        self.model.post(legs, currency)
        self.model.entries.append(ModelEntry("", "transfer", legs, currency))

    def _plan_batch(self, items: list[tuple[int, int, int]]) -> None:
        specs, planned = [], []
        for index, (debit, credit, amount) in enumerate(items):
            currency, legs = self.model.accounts[debit].currency, [(debit, amount), (credit, -amount)]
            specs.append(self.spec(f"b{self.step}.{index}", legs, currency))
            planned.append((legs, currency))
        self.service_call = lambda uow: new_entries(service.post_transfers(uow, self.tenant_id, specs,
                                                                            batch_id=uow.ids.new("batch")))
        for legs, currency in planned:
            self.model.post(legs, currency)
            self.model.entries.append(ModelEntry("", "transfer", legs, currency))

    def _plan_hold(self, debit: int, credit: int, amount: int, timeout: int | None) -> None:
        accounts, currency = self.model.accounts, self.model.accounts[debit].currency
        debit_id, credit_id = accounts[debit].id, accounts[credit].id
        self.service_call = lambda uow: [("hold", service.create_hold(
            uow, self.tenant_id, key=f"h{self.step}", debit_account_id=debit_id, credit_account_id=credit_id,
            amount=amount, currency_code=currency, timeout_seconds=timeout)[0].id)]
        if debit == credit or not 0 < amount <= MAX_AMOUNT:
            raise Refused
        for index in (debit, credit):
            if accounts[index].status != AccountStatus.OPEN or accounts[index].currency != currency:
                raise Refused
        accounts[debit].debits_pending += amount
        accounts[credit].credits_pending += amount
        accounts[debit].check_rule()
        accounts[credit].check_rule()
        expires_at = self.clock.now() + timedelta(seconds=timeout) if timeout else None
        self.model.holds.append(ModelHold("", debit, credit, amount, expires_at))

    def _pick(self, items: list[Any], reference: int) -> Any:
        return items[reference % len(items)] if items else None

    def _plan_post(self, reference: int, amount: int | None) -> None:
        hold = self._pick(self.model.holds, reference)
        if hold is None:
            return
        self.service_call = lambda uow: [("entry", service.post_hold(uow, self.tenant_id, hold.id,
                                                                       amount=amount)[1])]
        self.model.touch_hold(hold, self.clock.now())
        to_post = hold.amount if amount is None else amount
        if not 0 < to_post <= hold.amount:
            raise Refused
        self.model.release(hold)
        hold.status, hold.posted_amount = "posted", to_post
        currency = self.model.accounts[hold.debit].currency
        legs = [(hold.debit, to_post), (hold.credit, -to_post)]
        self.model.post(legs, currency)
        self.model.entries.append(ModelEntry("", "hold_post", legs, currency))

    def _plan_void(self, reference: int) -> None:
        hold = self._pick(self.model.holds, reference)
        if hold is None:
            return
        self.service_call = lambda uow: service.void_hold(uow, self.tenant_id, hold.id) and []
        self.model.touch_hold(hold, self.clock.now())
        self.model.release(hold)
        hold.status = "voided"

    def _plan_reverse(self, reference: int) -> None:
        entry = self._pick(self.model.entries, reference)
        if entry is None:
            return
        self.service_call = lambda uow: new_entries([service.reverse_entry(uow, self.tenant_id, entry.id)])
        if entry.kind == "reversal":
            raise Refused
        if entry.reversed:
            return  # the default reversal key replays the first reversal: nothing changes
        legs = [(index, -amount) for index, amount in entry.legs]
        self.model.post(legs, entry.currency)
        entry.reversed = True
        self.model.entries.append(ModelEntry("", "reversal", legs, entry.currency))

    def _plan_retry(self, reference: int, same: bool) -> None:
        original = self._pick(self.model.transfers, reference)
        if original is None:
            return
        key, legs, currency = original
        if not same:
            legs = [(legs[0][0], legs[0][1] + 1), (legs[1][0], legs[1][1] - 1)]
        spec = self.spec(key, legs, currency)
        self.service_call = lambda uow: new_entries([service.post_transfer(uow, self.tenant_id, spec)])
        if not same:
            raise Refused

    def _plan_freeze(self, index: int, freeze: bool) -> None:
        account = self.model.accounts[index]
        status = AccountStatus.FROZEN if freeze else AccountStatus.OPEN
        self.service_call = lambda uow: service.set_account_status(uow, self.tenant_id, account.id, status,
                                                                    actor="test") and []
        account.status = status.value

    # -- the service's side ---------------------------------------------------------------------------

    def call(self, work: Any) -> tuple[str, FinloopError | None]:
        with self.db.uow() as uow:
            try:
                result = work(uow)
            except FinloopError as error:
                if getattr(error, "keep_changes", False):
                    uow.commit()
                    return "expired", error
                return "refused", error
            uow.commit()
        self._learn_ids(result)
        return "accepted", None

    def _learn_ids(self, created: list[tuple[str, str]]) -> None:
        """Give the model's new entries and holds the ids the service chose, in creation order."""
        waiting = {"entry": [e for e in self.model.entries if not e.id],
                   "hold": [h for h in self.model.holds if not h.id]}
        for kind, object_id in created:
            assert waiting[kind], f"step {self.step}: the service created a {kind} the model did not expect"
            waiting[kind].pop(0).id = object_id
        assert not waiting["entry"] and not waiting["hold"], f"step {self.step}: the service created too little"


def new_entries(posted: list[service.PostedEntry]) -> list[tuple[str, str]]:
    return [("entry", p.id) for p in posted if not p.replayed]


def snapshot(db: Database, tenant_id: str) -> dict[str, Any]:
    """Everything an operation could change: running sums and status of each account, each hold's
    status and posted amount, and how many entries exist."""
    with db.uow(read_only=True) as uow:
        return read_books(uow, tenant_id)


def read_books(uow: UnitOfWork, tenant_id: str) -> dict[str, Any]:
    accounts = Account.__table__.c
    holds = Hold.__table__.c
    return {
        "accounts": {row[0]: tuple(row[1:]) for row in uow.session.execute(
            select(accounts.id, accounts.debits_posted, accounts.credits_posted, accounts.debits_pending,
                   accounts.credits_pending, accounts.status).where(accounts.tenant_id == tenant_id))},
        "holds": {row[0]: tuple(row[1:]) for row in uow.session.execute(
            select(holds.id, holds.status, holds.posted_amount).where(holds.tenant_id == tenant_id))},
        "entries": uow.session.scalar(select(func.count()).select_from(Entry).where(Entry.tenant_id == tenant_id)),
    }


def check_books(db: Database, tenant_id: str, model: Model) -> dict[str, Any]:
    """Compare the books with the model and check their invariants; return their snapshot."""
    with db.uow(read_only=True) as uow:
        books = read_books(uow, tenant_id)
        assert books["accounts"] == {a.id: a.sums() for a in model.accounts}
        assert books["holds"] == {h.id: (h.status, h.posted_amount) for h in model.holds}
        assert books["entries"] == len(model.entries)
        for account in service.list_accounts(uow, tenant_id, limit=100):
            if account.balance_rule == BalanceRule.DEBITS_MUST_NOT_EXCEED_CREDITS:
                assert (account.debits_posted + account.debits_pending
                        <= account.credits_posted + account.overdraft_limit), account.code
            if account.balance_rule == BalanceRule.CREDITS_MUST_NOT_EXCEED_DEBITS:
                assert (account.credits_posted + account.credits_pending
                        <= account.debits_posted + account.overdraft_limit), account.code
        for trial in reports.trial_balance(uow, tenant_id):
            assert trial.balanced and trial.total_debits == trial.total_credits, trial.currency
        assert all(total == 0 for total in service.postings_sum_by_currency(uow, tenant_id).values())
        assert service.verify_integrity(uow, tenant_id) == []
    return books


def open_books(db: Database) -> tuple[str, Model]:
    with db.uow() as uow:
        tenant = tenancy.create_tenant(uow, name="Property Co", actor="test")
        accounts = []
        for code, type_, currency, rule, overdraft in CHART:
            account = service.create_account(uow, tenant.id, code=code, type=type_, currency_code=currency,
                                             balance_rule=rule, overdraft_limit=overdraft)
            accounts.append(ModelAccount(account.id, currency, rule, overdraft))
        model = Model(accounts)
        # Opening balances, so that rule-bound accounts have room to move both ways.
        for key, debit, credit, amount in OPENING:
            currency = accounts[debit].currency
            legs = [(debit, amount), (credit, -amount)]
            posted = service.post_transfer(uow, tenant.id, TransferSpec(key, tuple(
                PostingSpec(accounts[i].id, signed, currency) for i, signed in legs)))
            model.post(legs, currency)
            model.entries.append(ModelEntry(posted.id, "transfer", legs, currency))
        uow.commit()
        return tenant.id, model


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(steps=st.lists(operations, min_size=8, max_size=25))
def test_random_operations_keep_the_books_exact(db: Database, clock: FrozenClock,
                                                 steps: list[tuple[Any, ...]]) -> None:
    tenant_id, model = open_books(db)
    runner = Runner(db, clock, tenant_id, model)
    for op in steps:
        runner.run(op)
        runner.last_snapshot = check_books(db, tenant_id, runner.model)


def test_hold_with_a_negative_amount_is_refused_as_invalid(db: Database) -> None:
    tenant_id, model = open_books(db)
    with db.uow() as uow, pytest.raises(InvalidRequest) as caught:
        service.create_hold(uow, tenant_id, key="negative", debit_account_id=model.accounts[0].id,
                            credit_account_id=model.accounts[4].id, amount=-500, currency_code="CNY")
    assert (caught.value.code, caught.value.param) == ("invalid_amount", "amount")
