"""The Redis velocity store gives the same features as the SQL store. Redis is part of the machine
(``./dev test`` starts it): when it does not answer, these tests fail rather than skip."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import timedelta

import pytest
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from finloop.db.uow import Database
from finloop.risk import velocity
from tests.conftest import T0, TenantHandle
from tests.risk.test_velocity import (
    check_concurrent,
    check_window_edges,
    db_runner,
    oracle,
    random_stream,
    run_stream,
)

REDIS_URL = "redis://127.0.0.1:6379/0"


@pytest.fixture
def redis_store() -> Iterator[velocity.RedisStore]:
    client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2, socket_timeout=5)
    try:
        client.ping()
    except redis.RedisError as error:
        pytest.fail(f"Redis at {REDIS_URL} is required by the velocity tests and is unreachable: {error}")
    store = velocity.RedisStore(client, prefix=f"finloop:test:{uuid.uuid4().hex}")
    yield store
    store.clear()
    client.close()


def test_redis_matches_sql_on_a_seeded_stream(db: Database, tenant: TenantHandle,
                                              redis_store: velocity.RedisStore) -> None:
    stream = random_stream(23, 40)
    from_sql = run_stream(db_runner(db, velocity.SqlStore()), tenant.id, stream)
    from_redis = run_stream(db_runner(db, redis_store), tenant.id, stream)
    assert from_redis == from_sql
    assert from_redis[-1] == oracle(stream[:-1], stream[-1][1], stream[-1][0])
    assert any(v > 1 for f in from_redis for k, v in f.items() if ".distinct_" in k)
    check_window_edges(db_runner(db, redis_store), tenant.id)


def test_redis_writes_wait_for_the_commit_and_lose_no_counts(db: Database, tenant: TenantHandle,
                                                             redis_store: velocity.RedisStore) -> None:
    event = {"type": "refund", "customer_id": "cus_tx", "amount": 5, "currency": "CNY"}
    at = T0 + timedelta(minutes=1)

    def refunds() -> int:
        with velocity.use_store(redis_store):
            return velocity.features(None, tenant.id, event, at=at)["customer.refunds.1h"]

    with velocity.use_store(redis_store), db.uow() as uow:
        velocity.record(uow, tenant.id, event, at=T0)
        assert refunds() == 0  # not before the commit
        uow.rollback()
    assert refunds() == 0  # a rolled-back decision counts nothing
    with velocity.use_store(redis_store), db.uow() as uow:
        velocity.record(uow, tenant.id, event, at=T0)
        uow.commit()
    assert refunds() == 1
    with velocity.use_store(redis_store):
        velocity.record(None, tenant.id, event, at=T0)  # no unit of work: at once
    assert refunds() == 2
    ttls = [redis_store.client.ttl(key) for key in redis_store.client.scan_iter(match=f"{redis_store.prefix}:*")]
    assert ttls and all(0 < int(ttl) <= 2 * 30 * 86400 + 86400 for ttl in ttls)
    check_concurrent(db, tenant.id, redis_store)


def test_a_redis_outage_after_commit_never_undoes_the_transaction(db: Database, tenant: TenantHandle) -> None:
    refused = redis.Redis(host="127.0.0.1", port=1, socket_connect_timeout=0.5, retry=Retry(NoBackoff(), 0))
    down = velocity.RedisStore(refused,
                               prefix=f"finloop:test:{uuid.uuid4().hex}")
    with db.uow() as uow:
        with velocity.use_store(down):
            velocity.record(uow, tenant.id, {"customer_id": "cus_down"}, at=T0)
        velocity.record(uow, tenant.id, {"customer_id": "cus_down"}, at=T0)  # the SQL store, same transaction
        uow.commit()  # the Redis pipeline fails after the commit: logged, not raised
    with db.uow(read_only=True) as uow:
        assert velocity.features(uow, tenant.id, {"customer_id": "cus_down"}, at=T0)["customer.count.1m"] == 1
    with velocity.use_store(down), pytest.raises(redis.ConnectionError):
        velocity.features(None, tenant.id, {"customer_id": "cus_down"}, at=T0)
