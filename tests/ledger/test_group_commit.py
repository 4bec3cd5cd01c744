"""Group commit: concurrent single transfers share a transaction and each keeps its own answer.

The first group is held open by a gate until every other request is waiting, so the second group
gathers all of them deterministically, failures included.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections import Counter
from collections.abc import Sequence
from typing import Any

import httpx
import pytest

from finloop.db.group_commit import GroupCommit
from finloop.db.uow import Database, UnitOfWork
from finloop.ledger import endpoints, service
from finloop.ledger.domain import AccountType, BalanceRule
from finloop.ledger.schemas import EntryRead
from tests.ledger.helpers import balance, open_account, transfer


def _gate_first_group(monkeypatch: pytest.MonkeyPatch) -> threading.Event:
    """Hold the first group of the ledger's committer until the returned event is set."""
    gate = threading.Event()
    real = endpoints._post_singles
    calls = 0

    def gated(uow: UnitOfWork, singles: Sequence[Any]) -> list[EntryRead]:
        nonlocal calls
        calls += 1
        if calls == 1:
            assert gate.wait(30), "the test never opened the gate"
        return real(uow, singles)

    monkeypatch.setattr(endpoints, "_post_singles", gated)
    return gate


async def _post_all(app: Any, headers: dict[str, str], requests: list[tuple[dict[str, Any], dict[str, str]]],
                    gate: threading.Event) -> list[httpx.Response]:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://finloop") as client:
        first = asyncio.create_task(client.post("/v1/transfers", json=requests[0][0],
                                                headers={**headers, **requests[0][1]}))
        while getattr(app.state, "ledger_singles", None) is None or app.state.ledger_singles.waiting:
            await asyncio.sleep(0.005)  # the first request is in the (gated) committer
        rest = [asyncio.create_task(client.post("/v1/transfers", json=body, headers={**headers, **extra}))
                for body, extra in requests[1:]]
        gathered = sum(1 for _, extra in requests[1:] if "Idempotency-Key" not in extra)
        deadline = time.monotonic() + 30
        while app.state.ledger_singles.waiting < gathered and time.monotonic() < deadline:
            await asyncio.sleep(0.005)
        gate.set()
        return [await first, *[await task for task in rest]]


def test_concurrent_transfers_commit_together_and_answer_alone(app, db: Database, tenant, monkeypatch):  # type: ignore[no-untyped-def]
    funding = open_account(db, tenant.id, "assets:funding", AccountType.ASSET)
    rich = open_account(db, tenant.id, "liabilities:rich", AccountType.LIABILITY,
                        rule=BalanceRule.DEBITS_MUST_NOT_EXCEED_CREDITS)
    poor = open_account(db, tenant.id, "liabilities:poor", AccountType.LIABILITY,
                        rule=BalanceRule.DEBITS_MUST_NOT_EXCEED_CREDITS)
    sink = open_account(db, tenant.id, "assets:sink", AccountType.ASSET)
    transfer(db, tenant.id, "fund-rich", funding, rich, 10_000)
    transfer(db, tenant.id, "fund-poor", funding, poor, 100)
    gate = _gate_first_group(monkeypatch)

    def move(key: str, debit: str, credit: str, amount: int) -> dict[str, Any]:
        return {"key": key, "debit_account_id": debit, "credit_account_id": credit, "amount": amount,
                "currency": "CNY"}

    requests: list[tuple[dict[str, Any], dict[str, str]]] = [(move("first", rich, sink, 1), {})]
    requests += [(move(f"ok-{n}", rich, sink, 10), {}) for n in range(10)]
    requests += [(move(f"drain-{n}", poor, sink, 60), {}) for n in range(3)]  # only one of them fits
    requests += [(move("twice", rich, sink, 5), {}), (move("twice", rich, sink, 5), {})]  # a retry racing itself
    requests += [(move("reused", rich, sink, 7), {}), (move("reused", rich, sink, 8), {})]  # one key, two contents
    requests += [(move("wrong-currency", rich, sink, 5) | {"currency": "USD"}, {})]
    requests += [(move("with-header", rich, sink, 3) | {"key": None}, {"Idempotency-Key": "idem-1"})]

    responses = asyncio.run(_post_all(app, tenant.headers, requests, gate))
    by_key: dict[str, list[httpx.Response]] = {}
    for (body, extra), response in zip(requests, responses, strict=True):
        by_key.setdefault(body["key"] or extra["Idempotency-Key"], []).append(response)

    assert all(r.status_code == 201 for key in ["first", *[f"ok-{n}" for n in range(10)]] for r in by_key[key])
    drains = [by_key[f"drain-{n}"][0] for n in range(3)]
    assert sorted(r.status_code for r in drains) == [201, 422, 422]
    refused = [r.json()["error"] for r in drains if r.status_code == 422]
    assert {(e["code"], e["param"]) for e in refused} == {("insufficient_funds", "amount")}
    twice = by_key["twice"]
    assert [r.status_code for r in twice] == [201, 201] and twice[0].json()["id"] == twice[1].json()["id"]
    assert sorted(r.status_code for r in by_key["reused"]) == [201, 409]
    assert [e.json()["error"]["code"] for e in by_key["reused"] if e.status_code == 409] == ["transfer_key_reused"]
    mismatch = by_key["wrong-currency"][0]
    assert mismatch.status_code == 400 and mismatch.json()["error"]["code"] == "currency_mismatch"
    assert mismatch.json()["error"]["param"] == "currency"  # named as the request named it
    assert by_key["idem-1"][0].status_code == 201

    reused_amount = next(r.json()["postings"][0]["amount"] for r in by_key["reused"] if r.status_code == 201)
    assert balance(db, tenant.id, poor) == 100 - 60
    assert balance(db, tenant.id, rich) == 10_000 - 1 - 10 * 10 - 5 - reused_amount - 3
    # The first group held one transfer; the second gathered the rest (the one with an Idempotency-Key may
    # come later, after its claim), refused its bad members and committed the others: every success
    # committed once, nothing else.
    assert app.state.ledger_singles.items == 16
    assert Counter(r.status_code for r in responses) == Counter({201: 16, 422: 2, 400: 1, 409: 1})


def test_a_group_commits_once_for_all_its_transfers(app, db: Database, tenant, monkeypatch):  # type: ignore[no-untyped-def]
    funding = open_account(db, tenant.id, "assets:funding", AccountType.ASSET)
    wallet = open_account(db, tenant.id, "liabilities:wallet", AccountType.LIABILITY)
    gate = _gate_first_group(monkeypatch)
    requests: list[tuple[dict[str, Any], dict[str, str]]] = [
        ({"key": f"t{n}", "debit_account_id": funding, "credit_account_id": wallet, "amount": n + 1,
          "currency": "CNY"}, {}) for n in range(12)]

    responses = asyncio.run(_post_all(app, tenant.headers, requests, gate))

    assert [r.status_code for r in responses] == [201] * 12
    assert [r.json()["key"] for r in responses] == [f"t{n}" for n in range(12)]
    committer = app.state.ledger_singles
    assert (committer.groups, committer.items) == (2, 12)
    with db.uow(read_only=True) as uow:
        entries = service.list_entries(uow, tenant.id, limit=100)
    assert len(entries) == 12 and all(e.batch_id is None for e in entries)
    assert balance(db, tenant.id, wallet) == sum(range(1, 13))


def test_group_commit_off_posts_each_alone(db: Database, tenant, settings):  # type: ignore[no-untyped-def]
    from fastapi.testclient import TestClient

    from finloop.app import create_app

    funding = open_account(db, tenant.id, "assets:funding", AccountType.ASSET)
    wallet = open_account(db, tenant.id, "liabilities:wallet", AccountType.LIABILITY)
    app = create_app(settings.model_copy(update={"group_commit_max": 0}), database=db, access_log=False)
    with TestClient(app) as client:
        response = client.post("/v1/transfers", headers=tenant.headers, json={
            "key": "alone", "debit_account_id": funding, "credit_account_id": wallet, "amount": 5, "currency": "CNY"})
    assert response.status_code == 201
    assert getattr(app.state, "ledger_singles", None) is None


# ---------------------------------------------------------------------------------------------- the committer


def _account_opener(tenant_id: str) -> Any:
    def commit_group(uow: UnitOfWork, codes: Sequence[str]) -> list[str]:
        return [service.create_account(uow, tenant_id, code=code, type=AccountType.ASSET, currency_code="CNY").id
                for code in codes]

    return commit_group


def test_committer_answers_in_order_and_isolates_a_failure(db: Database, tenant):  # type: ignore[no-untyped-def]
    committer: GroupCommit[str, str] = GroupCommit(db, _account_opener(tenant.id), max_group=4, idle_seconds=0.05)
    codes = ["assets:a", "assets:b", "not a code", "assets:c", "assets:d", "assets:e"]

    async def submit_all() -> list[Any]:
        return await asyncio.gather(*[committer.submit(code) for code in codes], return_exceptions=True)

    outcomes = asyncio.run(submit_all())

    assert isinstance(outcomes[2], Exception) and getattr(outcomes[2], "code", None) == "invalid_account_code"
    with db.uow(read_only=True) as uow:
        for code, outcome in zip(codes, outcomes, strict=True):
            if code != "not a code":
                assert service.get_account(uow, tenant.id, outcome).code == code
    assert committer.items == 5  # the failing one committed nothing
    deadline = time.monotonic() + 10
    while committer.running and time.monotonic() < deadline:
        time.sleep(0.02)
    assert not committer.running  # an idle committer's thread ends; the next submission starts another
    assert asyncio.run(committer.submit("assets:f")).startswith("acc_")
    assert committer.items == 6


def test_committer_rejects_a_group_size_below_one(db: Database) -> None:
    with pytest.raises(ValueError, match="max_group"):
        GroupCommit(db, lambda uow, items: [], max_group=0)


def test_idempotency_key_through_the_group(client, db: Database, tenant):  # type: ignore[no-untyped-def]
    funding = open_account(db, tenant.id, "assets:funding", AccountType.ASSET)
    wallet = open_account(db, tenant.id, "liabilities:wallet", AccountType.LIABILITY,
                          rule=BalanceRule.DEBITS_MUST_NOT_EXCEED_CREDITS)
    to_funding = {"debit_account_id": wallet, "credit_account_id": funding, "amount": 40, "currency": "CNY"}

    def post(key: str, body: dict[str, Any]) -> Any:
        return client.post("/v1/transfers", json=body, headers={**tenant.headers, "Idempotency-Key": key})

    refused = post("pay-out", to_funding)
    assert refused.status_code == 422 and refused.json()["error"]["code"] == "insufficient_funds"
    first = post("fund", {**to_funding, "debit_account_id": funding, "credit_account_id": wallet, "amount": 100})
    assert first.status_code == 201 and first.json()["key"] == "fund"
    replay = post("fund", {**to_funding, "debit_account_id": funding, "credit_account_id": wallet, "amount": 100})
    assert replay.status_code == 201 and replay.content == first.content
    reused = post("fund", {**to_funding, "debit_account_id": funding, "credit_account_id": wallet, "amount": 99})
    assert reused.status_code == 422 and reused.json()["error"]["code"] == "idempotency_key_reused"
    retried = post("pay-out", to_funding)  # the refused request left no claim behind: its retry posts
    assert retried.status_code == 201
    assert balance(db, tenant.id, wallet) == 60
    assert client.app.state.ledger_singles.items == 2


def test_many_concurrent_transfers_keep_the_books(app, db: Database, tenant):  # type: ignore[no-untyped-def]
    """Two hundred concurrent requests between hot accounts, a fifth of them too large for the wallets that
    pay them: every 201 is exactly one entry, every refusal none, and the balances are the sum of the 201s."""
    import random

    funding = open_account(db, tenant.id, "assets:funding", AccountType.ASSET)
    wallets = [open_account(db, tenant.id, f"liabilities:wallet{n}", AccountType.LIABILITY,
                            rule=BalanceRule.DEBITS_MUST_NOT_EXCEED_CREDITS) for n in range(4)]
    for n, wallet in enumerate(wallets):
        transfer(db, tenant.id, f"fund-{n}", funding, wallet, 5_000)
    chooser = random.Random(7)
    bodies = []
    for n in range(200):
        payer, payee = chooser.sample(wallets, 2)
        bodies.append({"key": f"move-{n}", "debit_account_id": payer, "credit_account_id": payee,
                       "amount": chooser.randint(1, 100) if chooser.random() < 0.8 else 6_000, "currency": "CNY"})

    async def post_all() -> list[httpx.Response]:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://finloop") as client:
            return await asyncio.gather(*[client.post("/v1/transfers", json=body, headers=tenant.headers)
                                          for body in bodies])

    responses = asyncio.run(post_all())

    assert {r.status_code for r in responses} <= {201, 422}
    assert all(r.json()["error"]["code"] == "insufficient_funds" for r in responses if r.status_code == 422)
    posted = [body for body, r in zip(bodies, responses, strict=True) if r.status_code == 201]
    expected = dict.fromkeys(wallets, 5_000)
    for body in posted:
        expected[body["debit_account_id"]] -= body["amount"]
        expected[body["credit_account_id"]] += body["amount"]
    assert {w: balance(db, tenant.id, w) for w in wallets} == expected
    assert min(expected.values()) >= 0 and len(posted) < len(bodies)  # some were refused, none overdrew
    with db.uow(read_only=True) as uow:
        keys = [e.transfer_key for e in service.list_entries(uow, tenant.id, limit=500)
                if e.transfer_key.startswith("move-")]
    assert sorted(keys) == sorted(body["key"] for body in posted)
    assert app.state.ledger_singles.groups < len(posted)  # they were gathered
