"""Claiming an Idempotency-Key: one INSERT when the key is new; the locked read decides everything else."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import event, select

from finloop.core.clock import FrozenClock
from finloop.db import idempotency
from finloop.db.models import IdempotencyKey
from finloop.db.uow import Database
from tests.db.test_idempotency_hash import CARD_FINGERPRINT, claim, tenant_x  # noqa: F401 - the fixture


def test_a_new_key_is_one_insert_and_the_others_are_decided_by_the_stored_row(db: Database, clock: FrozenClock,
                                                                               tenant_x: None) -> None:  # noqa: F811
    statements: list[str] = []

    def before(_conn, _cursor, statement, _params, _context, _many):  # type: ignore[no-untyped-def]
        statements.append(statement.split()[0].upper())

    event.listen(db.engine, "before_cursor_execute", before)
    try:
        first = claim(db, "pay-1", CARD_FINGERPRINT)
    finally:
        event.remove(db.engine, "before_cursor_execute", before)
    assert first.replay is None
    assert [s for s in statements if s in ("SELECT", "INSERT", "UPDATE")] == ["INSERT"]
    with pytest.raises(idempotency.KeyInUse):  # still in flight
        claim(db, "pay-1", CARD_FINGERPRINT)
    with pytest.raises(idempotency.KeyReused):
        claim(db, "pay-1", CARD_FINGERPRINT + b"x")
    clock.advance(timedelta(seconds=31))  # the lease ran out: the request crashed; the next one takes over
    taken = claim(db, "pay-1", CARD_FINGERPRINT)
    with db.uow() as uow:
        idempotency.complete(uow, taken, 201, '{"id": "pay_1"}')
        uow.commit()
    assert claim(db, "pay-1", CARD_FINGERPRINT).replay == (201, '{"id": "pay_1"}')
    with db.uow(read_only=True) as uow:
        row = uow.session.scalars(select(IdempotencyKey).where(IdempotencyKey.key == "pay-1")).one()
        assert (row.status, row.locked_until) == ("completed", None)
    clock.advance(timedelta(days=2))  # expired: the key may be used afresh
    assert claim(db, "pay-1", CARD_FINGERPRINT + b"other").replay is None


def test_completing_a_lost_claim_is_refused_and_writes_nothing(db: Database, tenant_x: None) -> None:  # noqa: F811
    lost = claim(db, "pay-2", CARD_FINGERPRINT)
    idempotency.release(db, lost)
    with db.uow() as uow, pytest.raises(idempotency.KeyInUse):
        idempotency.complete(uow, lost, 201, "{}")
    with db.uow(read_only=True) as uow:
        assert uow.session.scalars(select(IdempotencyKey).where(IdempotencyKey.key == "pay-2")).all() == []
