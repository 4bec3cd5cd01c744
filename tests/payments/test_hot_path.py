"""The payment hot path (``POST /v1/payments`` with ``confirm: true``): what it writes and reads, and the
caches it relies on — each safe against rollbacks, other tenants and key changes."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from decimal import Decimal

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import event

from finloop.db.uow import Database
from finloop.ledger import service as ledger
from finloop.ledger.domain import AccountType
from finloop.payments import gateway, postings, service
from finloop.payments.connectors.sandbox.app import InProcessSandbox
from finloop.payments.connectors.sandbox.engine import ChannelProfile
from finloop.vault import crypto
from finloop.vault import service as vault
from tests.payments.conftest import Shop, tokenize


@contextmanager
def recorded(database: Database) -> Iterator[tuple[list[str], list[int]]]:
    """The SQL statements (through SQLAlchemy) and the commits made meanwhile."""
    statements: list[str] = []
    commits: list[int] = []

    def before(_conn, _cursor, statement, _params, _context, _many):  # type: ignore[no-untyped-def]
        statements.append(" ".join(statement.split()))

    def commit(_conn) -> None:  # type: ignore[no-untyped-def]
        commits.append(1)

    event.listen(database.engine, "before_cursor_execute", before)
    event.listen(database.engine, "commit", commit)
    try:
        yield statements, commits
    finally:
        event.remove(database.engine, "before_cursor_execute", before)
        event.remove(database.engine, "commit", commit)


def _reads(statements: list[str], table: str) -> int:
    return sum(1 for s in statements if s.startswith("SELECT") and f" FROM {table} " in f"{s} ")


def test_create_and_confirm_answers_from_its_last_transaction(client: TestClient, shop: Shop,
                                                              sandbox: InProcessSandbox, db: Database) -> None:
    for code in shop.channels:
        sandbox.engine.configure(code, ChannelProfile(success_share=Decimal(1), latency_ms=(1, 1, 1)))
    card = tokenize(client, shop.tenant)
    body = {"merchant_id": shop.merchant_id, "amount": 2500, "currency": "CNY", "method": "card", "card_id": card,
            "confirm": True}
    warm = client.post("/v1/payments", headers=shop.tenant.headers, json=body)  # first use: keys, accounts
    assert warm.status_code == 201 and warm.json()["status"] == "succeeded", warm.text
    headers = {**shop.tenant.headers, "Idempotency-Key": "hot-1"}
    with recorded(db) as (statements, commits):
        first = client.post("/v1/payments", headers=headers, json=body)
    assert first.status_code == 201 and first.json()["status"] == "succeeded", first.text
    # The claim, the creation with the confirmation's first step, the channel's answer with the response:
    # three transactions, no read-back of the payment or of the key after the last one.
    assert len(commits) == 3, statements
    assert _reads(statements, "idempotency_keys") == 0
    assert _reads(statements, "vault_keys") == 0  # the card's data key and the channel credentials: in memory
    assert _reads(statements, "cards") == 1  # checked on creation, revealed from the same read
    assert _reads(statements, "payments") == 1  # the lock before the channel's answer is applied
    # What was answered is what was committed, and what a replay answers.
    payment_id = first.json()["id"]
    assert client.get(f"/v1/payments/{payment_id}", headers=shop.tenant.headers).json() == first.json()
    replay = client.post("/v1/payments", headers=headers, json=body)
    assert replay.status_code == 201 and replay.json() == first.json()
    assert len(sandbox.engine.transactions()) == 2


def test_a_refused_confirmation_keeps_the_payment_as_two_steps_would(client: TestClient, shop: Shop) -> None:
    headers = shop.tenant.headers
    no_card = client.post("/v1/payments", headers=headers, json={
        "merchant_id": shop.merchant_id, "amount": 100, "currency": "CNY", "method": "card", "confirm": True})
    assert no_card.status_code == 400 and no_card.json()["error"]["code"] == "parameter_missing", no_card.text
    no_channel = client.post("/v1/payments", headers=headers, json={
        "merchant_id": shop.merchant_id, "amount": 100, "currency": "EUR", "method": "card",
        "card_id": tokenize(client, shop.tenant), "confirm": True})
    assert no_channel.status_code == 400, no_channel.text
    assert no_channel.json()["error"]["code"] == "no_channel_available"
    listed = client.get("/v1/payments", headers=headers).json()["data"]
    assert sorted((p["currency"], p["status"]) for p in listed) == [
        ("CNY", "requires_payment_method"), ("EUR", "requires_confirmation")]
    # A creation that is itself refused writes nothing.
    missing = client.post("/v1/payments", headers=headers, json={
        "merchant_id": "mer_nope", "amount": 100, "currency": "CNY", "confirm": True})
    assert missing.status_code == 404
    assert len(client.get("/v1/payments", headers=headers).json()["data"]) == 2


def test_account_ids_are_remembered_only_once_committed(db: Database, shop: Shop) -> None:
    tenant_id = shop.tenant.id
    spec = postings.AccountSpec("assets:test:hot", AccountType.ASSET)
    key = (tenant_id, spec.code, "CNY")
    with db.uow() as uow:
        postings.ensure_account(uow, tenant_id, spec, "CNY")
        uow.rollback()  # created, then rolled back: never remembered
    assert key not in postings._account_ids
    with db.uow() as uow:
        with uow.session.begin_nested():
            postings.ensure_account(uow, tenant_id, spec, "CNY")  # savepoint released: not yet committed
        assert key not in postings._account_ids
        uow.session.begin_nested().rollback()  # any savepoint rolled back forgets what the transaction saw
        assert postings.ensure_account(uow, tenant_id, spec, "CNY")
        uow.commit()
    with db.uow(read_only=True) as uow:
        account = ledger.find_account_by_code(uow, tenant_id, spec.code, "CNY")
        assert account is not None
        account_id = account.id
    assert postings._account_ids[key] == account_id
    with recorded(db) as (statements, _), db.uow() as uow:
        assert postings.ensure_account(uow, tenant_id, spec, "CNY") == account_id
    assert statements == []


def test_keys_and_credentials_are_read_once_and_follow_the_master_key(db: Database, shop: Shop) -> None:
    tenant_id = shop.tenant.id
    with db.uow() as uow:
        channel = service.channel_by_code(uow, tenant_id, next(iter(shop.channels)))
        expected = gateway.channel_config(uow, channel).credentials
        sealed = vault.seal_secret(uow, tenant_id, b"s3cret", purpose="test")
        uow.commit()
    assert expected
    with recorded(db) as (statements, _), db.uow(read_only=True) as uow:
        assert gateway.channel_config(uow, channel).credentials == expected
        assert vault.unseal_secret(uow, tenant_id, sealed, purpose="test") == b"s3cret"
    assert _reads(statements, "vault_keys") == 0
    # Another master key: nothing cached under the old one is used; the key is read and refused.
    crypto.use_master_key(crypto.MasterKey.generate())
    with db.uow(read_only=True) as uow, pytest.raises(crypto.VaultMisconfigured):
        gateway.channel_config(uow, channel)
