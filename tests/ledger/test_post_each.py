"""``post_each``: transfers gathered into one transaction, each posted or refused on its own.

The property: for any list of transfers (valid, overdrawing, unknown accounts, wrong currency, malformed,
repeated keys with the same or other content), ``post_each`` in one transaction gives every transfer the
same outcome, and leaves the same balances, as posting them one by one, each in its own transaction, on a
twin set of books.
"""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from finloop.core.errors import FinloopError
from finloop.db.uow import Database
from finloop.ledger import service
from finloop.ledger.domain import AccountType, BalanceRule, PostingSpec, TransferSpec
from finloop.tenancy import service as tenancy
from tests.ledger.helpers import balance

#: (code, type, currency, rule, opening credit)
CHART = [
    ("assets:bank", AccountType.ASSET, "CNY", BalanceRule.NONE, 0),
    ("liabilities:w1", AccountType.LIABILITY, "CNY", BalanceRule.DEBITS_MUST_NOT_EXCEED_CREDITS, 300),
    ("liabilities:w2", AccountType.LIABILITY, "CNY", BalanceRule.DEBITS_MUST_NOT_EXCEED_CREDITS, 100),
    ("liabilities:w3", AccountType.LIABILITY, "CNY", BalanceRule.DEBITS_MUST_NOT_EXCEED_CREDITS, 0),
    ("liabilities:usd", AccountType.LIABILITY, "USD", BalanceRule.NONE, 0),
]
UNKNOWN = 99  # an account index no chart has

transfer = st.tuples(
    st.sampled_from(["k1", "k2", "k3", "k4", "k5", "k6", "k7", "k8"]),  # keys repeat: replays and conflicts
    st.sampled_from([0, 1, 2, 3, 4, UNKNOWN]),
    st.sampled_from([0, 1, 2, 3, 4]),
    st.integers(min_value=1, max_value=250),
    st.sampled_from(["CNY", "CNY", "CNY", "USD"]),
)


def _open_books(db: Database, name: str) -> tuple[str, list[str]]:
    with db.uow() as uow:
        tenant = tenancy.create_tenant(uow, name=name, actor="test")
        ids = [service.create_account(uow, tenant.id, code=code, type=type_, currency_code=cur, balance_rule=rule).id
               for code, type_, cur, rule, _ in CHART]
        service.post_transfers(uow, tenant.id, [
            TransferSpec.simple(f"open:{n}", ids[0], ids[n], credit, "CNY")
            for n, (_, _, _, _, credit) in enumerate(CHART) if credit])
        uow.commit()
    return tenant.id, ids


def _spec(raw: tuple[str, int, int, int, str], ids: list[str]) -> TransferSpec:
    key, debit, credit, amount, cur = raw
    debit_id = ids[debit] if debit != UNKNOWN else "acc_00000000000000000000000000"
    # debit == credit gives a malformed entry (one account twice): refused before any account is read.
    return TransferSpec(key, (PostingSpec(debit_id, amount, cur), PostingSpec(ids[credit], -amount, cur)))


def _outcome(result: service.PostedEntry | FinloopError) -> tuple[Any, ...]:
    if isinstance(result, FinloopError):
        return ("refused", result.code, result.param)
    return ("posted", result.key, result.replayed)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(transfers=st.lists(transfer, min_size=1, max_size=12))
def test_post_each_equals_posting_one_by_one(db: Database, transfers: list[tuple[str, int, int, int, str]]) -> None:
    gathered_tenant, gathered_ids = _open_books(db, "gathered")
    alone_tenant, alone_ids = _open_books(db, "alone")

    with db.uow() as uow:
        gathered = [_outcome(r) for r in service.post_each(uow, gathered_tenant,
                                                          [_spec(t, gathered_ids) for t in transfers])]
        uow.commit()
    alone: list[tuple[Any, ...]] = []
    for raw in transfers:
        try:
            with db.uow() as uow:
                alone.append(_outcome(service.post_transfer(uow, alone_tenant, _spec(raw, alone_ids))))
                uow.commit()
        except FinloopError as error:
            alone.append(_outcome(error))

    assert gathered == alone
    assert [balance(db, gathered_tenant, a) for a in gathered_ids] == [balance(db, alone_tenant, a) for a in alone_ids]
    with db.uow(read_only=True) as uow:
        assert service.verify_integrity(uow, gathered_tenant) == []
