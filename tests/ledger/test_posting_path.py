"""The fast posting path (``post_transfers``): large batches, summed deltas, odd texts, replays.

These run on both backends; on PostgreSQL they go through the psycopg pipelines and array
literals, so they pin down what that path must keep equal to the SQLAlchemy one.
"""

from __future__ import annotations

import random
from datetime import timedelta

import pytest

from finloop.core.errors import InvariantViolation
from finloop.ledger import service
from finloop.ledger.domain import AccountType, BalanceRule, PostingSpec, TransferSpec
from tests.ledger.helpers import balance, open_account


@pytest.fixture
def hot(db, tenant):
    return [open_account(db, tenant.id, f"assets:hot:{i}", AccountType.ASSET) for i in range(5)]


def test_large_batch_writes_each_accounts_summed_delta_once(db, tenant, hot):
    rng = random.Random(7)
    expected = dict.fromkeys(hot, 0)
    specs = []
    for n in range(300):
        debit, credit = rng.sample(hot, 2)
        amount = rng.randint(1, 10_000)
        expected[debit] += amount
        expected[credit] -= amount
        specs.append(TransferSpec.simple(f"t{n}", debit, credit, amount, "CNY"))
    with db.uow() as uow:
        posted = service.post_transfers(uow, tenant.id, specs, batch_id="bat_big")
        uow.commit()
    assert len({p.id for p in posted}) == 300 and not any(p.replayed for p in posted)
    assert {account: balance(db, tenant.id, account) for account in hot} == expected
    with db.uow(read_only=True) as uow:
        versions = {service.get_account(uow, tenant.id, account).version for account in hot}
        assert versions == {1}
        assert len(service.list_entries(uow, tenant.id, batch_id="bat_big", limit=500)) == 300


def test_texts_with_quotes_escapes_and_separators_round_trip(db, tenant, hot):
    odd = 'a "quoted", {braced}\\back\tslash\nNULL ✓'
    spec = TransferSpec(f"key {odd}", (PostingSpec(hot[0], 250, "CNY"), PostingSpec(hot[1], -250, "CNY")),
                        description=odd, metadata={"note": odd, "n": 3})
    filler = [TransferSpec.simple(f"filler-{n}", hot[2], hot[3], 1, "CNY") for n in range(3)]
    with db.uow() as uow:
        [first, *_] = service.post_transfers(uow, tenant.id, [spec, *filler])
        uow.commit()
    with db.uow(read_only=True) as uow:
        entry = service.get_entry(uow, tenant.id, first.id)
        assert (entry.transfer_key, entry.description, entry.meta) == (spec.key, odd, {"note": odd, "n": 3})
    with db.uow() as uow:
        [again] = service.post_transfers(uow, tenant.id, [spec])
    assert again.replayed and again.id == first.id


def test_batch_mixing_replays_and_new_transfers_posts_only_the_new(db, tenant, hot, clock):
    first = [TransferSpec.simple(f"k{n}", hot[0], hot[1], 100, "CNY") for n in range(3)]
    with db.uow() as uow:
        original = service.post_transfers(uow, tenant.id, first)
        uow.commit()
    clock.advance(timedelta(hours=1))
    second = [*first, TransferSpec.simple("k3", hot[1], hot[2], 40, "CNY")]
    with db.uow() as uow:
        posted = service.post_transfers(uow, tenant.id, second)
        uow.commit()
    assert [p.replayed for p in posted] == [True, True, True, False]
    assert [(p.id, p.effective_at, p.business_date) for p in posted[:3]] == [
        (p.id, p.effective_at, p.business_date) for p in original]
    assert posted[0].effective_at.utcoffset() == timedelta(0)
    assert (balance(db, tenant.id, hot[0]), balance(db, tenant.id, hot[1])) == (300, -260)


def test_refusal_late_in_a_large_batch_writes_nothing_and_keeps_the_transaction(db, tenant, hot):
    wallet = open_account(db, tenant.id, "liabilities:customer:C1:wallet", AccountType.LIABILITY,
                          rule=BalanceRule.DEBITS_MUST_NOT_EXCEED_CREDITS)
    specs = [TransferSpec.simple(f"in{n}", hot[0], wallet, 10, "CNY") for n in range(150)]
    specs.append(TransferSpec.simple("out", wallet, hot[1], 1_501, "CNY"))
    with db.uow() as uow:
        with pytest.raises(InvariantViolation) as caught:
            service.post_transfers(uow, tenant.id, specs)
        assert caught.value.code == "insufficient_funds"
        assert caught.value.param == "transfers[150].postings[0].amount"
        service.post_transfers(uow, tenant.id, [TransferSpec.simple("after", hot[0], wallet, 7, "CNY")])
        uow.commit()
    assert balance(db, tenant.id, wallet) == 7


def test_integrity_check_finds_a_posting_without_its_account(db, tenant):
    from sqlalchemy import text

    from finloop.ledger import service
    from finloop.ledger.domain import AccountType, TransferSpec
    from tests.ledger.helpers import open_account

    bank = open_account(db, tenant.id, "assets:bank:main", AccountType.ASSET)
    cash = open_account(db, tenant.id, "assets:cash:main", AccountType.ASSET)
    with db.uow() as uow:
        service.post_transfer(uow, tenant.id, TransferSpec.simple("t", bank, cash, 10, "CNY"))
        uow.commit()
    with db.engine.begin() as connection:
        connection.execute(text("UPDATE postings SET account_id = 'acc_gone' WHERE account_id = :a"), {"a": cash})
    with db.uow(read_only=True) as uow:
        problems = service.verify_integrity(uow, tenant.id)
    assert any("point at no account" in p for p in problems)
    with db.engine.begin() as connection:  # put it back so the automatic end-of-test check passes
        connection.execute(text("UPDATE postings SET account_id = :a WHERE account_id = 'acc_gone'"), {"a": cash})
