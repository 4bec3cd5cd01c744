"""Velocity features: window edges, counts/sums/distinct per dimension against a brute-force oracle, as-of
reads, concurrency without lost counts, blind indexes, pruning; on the memory store (pure) and on SQL (both
databases). The Redis store is checked against these in test_velocity_redis.py."""

from __future__ import annotations

import random
import threading
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from finloop.core.errors import InvalidRequest
from finloop.db.uow import Database
from finloop.risk import velocity
from finloop.risk.velocity import plan as vplan
from finloop.risk.velocity_models import VelocityCounter, VelocityMember
from finloop.vault import crypto
from tests.conftest import T0, TenantHandle

Event = dict[str, Any]
#: (record, features): the store under test behind one interface.
Runner = tuple[Callable[[str, Event, datetime], None], Callable[[str, Event, datetime], dict[str, int]]]


def memory_runner() -> Runner:
    store = velocity.MemoryStore()

    def record(tenant_id: str, event: Event, at: datetime) -> None:
        with velocity.use_store(store):
            velocity.record(None, tenant_id, event, at=at)

    def features(tenant_id: str, event: Event, at: datetime) -> dict[str, int]:
        with velocity.use_store(store):
            return velocity.features(None, tenant_id, event, at=at)

    return record, features


def db_runner(db: Database, store: velocity.Store) -> Runner:
    """Each record commits its own unit of work (Redis writes happen on commit); reads use a fresh one."""

    def record(tenant_id: str, event: Event, at: datetime) -> None:
        with velocity.use_store(store), db.uow() as uow:
            velocity.record(uow, tenant_id, event, at=at)
            uow.commit()

    def features(tenant_id: str, event: Event, at: datetime) -> dict[str, int]:
        with velocity.use_store(store), db.uow(read_only=True) as uow:
            return velocity.features(uow, tenant_id, event, at=at)

    return record, features


# --- edges -------------------------------------------------------------------------------------------------

def check_window_edges(runner: Runner, tenant_id: str) -> None:
    """For every window: an event in the window's first bucket counts, one a second earlier does not, and an
    event exactly the window's length old never counts."""
    record, features = runner
    at = T0 + timedelta(days=40, seconds=37)
    seconds = vplan.epoch(at)
    for name, (length, _) in vplan.WINDOWS.items():
        _, first, last = vplan.window_range(name, seconds)
        assert last <= seconds < last + vplan.WINDOWS[name][1] and first - (seconds - length) <= vplan.WINDOWS[name][1]
        inside = datetime.fromtimestamp(first, UTC)
        cases = {"in": inside, "out": inside - timedelta(seconds=1), "old": at - timedelta(seconds=length)}
        for label, when in cases.items():
            event = {"type": "payment", "customer_id": f"{label}-{name}", "ip": f"10.0.{len(name)}.{len(label)}",
                     "card_token": f"card-{label}-{name}", "amount": 250, "currency": "CNY"}
            record(tenant_id, event, when)
        for label, expected in (("in", 1), ("out", 0), ("old", 0)):
            got = features(tenant_id, {"customer_id": f"{label}-{name}", "currency": "CNY"}, at)
            assert got[f"customer.count.{name}"] == expected, (name, label, got)
            assert got[f"customer.sum.{name}"] == 250 * expected, (name, label)
            if name in vplan.DISTINCT_WINDOWS:
                assert got[f"customer.distinct_cards.{name}"] == expected, (name, label)


def test_window_edges_memory() -> None:
    check_window_edges(memory_runner(), "ten_edges")


# --- oracle --------------------------------------------------------------------------------------------------

def random_stream(seed: int, n: int) -> list[tuple[datetime, Event]]:
    """A seeded stream: few customers, cards, devices, IPs, phones and merchants so keys repeat; gaps from
    seconds to days so every window fills and drains; some refunds and events without an amount."""
    rng = random.Random(seed)
    at = T0
    events: list[tuple[datetime, Event]] = []
    for _ in range(n):
        at += timedelta(seconds=rng.choice([0, 1, 3, 9, 10, 11, 45, 59, 61, 300, 3599, 3601, 86399, 86401, 400000]))
        event: Event = {"type": rng.choice(["payment", "payment", "payment", "refund", "login"]),
                        "customer_id": f"cus_{rng.randrange(4)}", "merchant_id": f"mer_{rng.randrange(2)}"}
        if event["type"] != "login":
            event["amount"] = rng.randrange(1, 100_000)
            event["currency"] = rng.choice(["CNY", "USD"])
            event["card_token"] = f"card_{rng.randrange(6)}"
        for key, pattern in (("device_id", "dev_{}"), ("ip", "{}.1.1.1"), ("phone", "+86 138-0000-000{}")):
            if rng.random() < 0.8:
                event[key] = pattern.format(rng.randrange(4))
        events.append((at, event))
    return events


def oracle(history: list[tuple[datetime, Event]], event: Mapping[str, Any], at: datetime) -> dict[str, int]:
    """Features by scanning every earlier event with the documented bucket semantics (the slow truth)."""
    seconds = vplan.epoch(at)
    out = dict.fromkeys(vplan.FEATURE_NAMES, 0)
    currency = vplan.event_currency(event)
    for dimension, key in vplan.DIMENSIONS.items():
        value = event.get(key)
        if value is None:
            continue

        def inside(window: str, when: datetime) -> bool:
            # Written out again, not through window_range: the last W/g buckets, the current one included.
            length, granularity = vplan.WINDOWS[window]
            now_bucket = seconds - seconds % granularity
            t = int(when.timestamp())
            return now_bucket - length < t - t % granularity <= now_bucket

        same = [(when, e) for when, e in history if e.get(key) == value]
        for window in vplan.WINDOWS:
            hits = [e for when, e in same if inside(window, when)]
            out[f"{dimension}.count.{window}"] = len(hits)
            out[f"{dimension}.sum.{window}"] = sum(e["amount"] for e in hits if "amount" in e
                                                   and vplan.event_currency(e) == currency)
            if window in vplan.REFUND_WINDOWS:
                out[f"{dimension}.refunds.{window}"] = sum(1 for e in hits if e["type"] == "refund")
            if window in vplan.DISTINCT_WINDOWS:
                for member in vplan.DISTINCT.get(dimension, ()):
                    member_key = vplan.DIMENSIONS[member]
                    out[f"{dimension}.distinct_{vplan.PLURAL[member]}.{window}"] = len(
                        {e[member_key] for e in hits if e.get(member_key) is not None})
    return out


def run_stream(runner: Runner, tenant_id: str, stream: list[tuple[datetime, Event]]) -> list[dict[str, int]]:
    record, features = runner
    seen = []
    for at, event in stream:
        seen.append(features(tenant_id, event, at))
        record(tenant_id, event, at)
    return seen


def test_memory_store_matches_the_oracle_and_replay() -> None:
    stream = random_stream(7, 160)
    got = run_stream(memory_runner(), "ten_oracle", stream)
    for index, (at, event) in enumerate(stream):
        assert got[index] == oracle(stream[:index], event, at), index
    assert list(velocity.replay("ten_oracle", stream)) == got
    assert any(v for f in got for k, v in f.items() if ".distinct_" in k and v > 1)
    assert any(v for f in got for k, v in f.items() if ".refunds." in k and v > 0)


def test_phone_formats_match_and_features_are_complete() -> None:
    record, features = memory_runner()
    record("t", {"phone": "+86 138 0000 0001", "customer_id": "a"}, T0)
    record("t", {"phone": "+86-138-0000-0001", "customer_id": "b"}, T0)
    got = features("t", {"phone": "+8613800000001"}, T0 + timedelta(seconds=5))
    assert got["phone.count.1h"] == 2 and got["phone.distinct_customers.24h"] == 2
    assert set(got) == set(velocity.FEATURE_NAMES)
    assert velocity.features(None, "t", {}, at=T0) == dict.fromkeys(velocity.FEATURE_NAMES, 0)
    for name in ("customer.count.1h", "customer.sum.24h", "ip.count.10m", "device.distinct_cards.24h",
                 "customer.refunds.30d"):
        assert name in velocity.FEATURE_NAMES


@settings(max_examples=60, deadline=None)
@given(offset=st.integers(min_value=0, max_value=400 * 86400), window=st.sampled_from(sorted(vplan.WINDOWS)))
def test_a_window_is_between_its_length_less_one_bucket_and_its_length(offset: int, window: str) -> None:
    seconds = vplan.epoch(T0) + offset
    length, granularity = vplan.WINDOWS[window]
    g, first, last = vplan.window_range(window, seconds)
    assert g == granularity and first % g == 0 and (last - first) // g + 1 == length // g
    assert last <= seconds < last + g
    covered = seconds - first  # the window reads [first, seconds]
    assert length - g < covered + 1 <= length


def test_store_selection(monkeypatch: pytest.MonkeyPatch) -> None:
    memory = velocity.MemoryStore()
    try:
        velocity.configure(memory)
        assert velocity.current_store() is memory
        with velocity.use_store(velocity.SqlStore()) as scoped:
            assert velocity.current_store() is scoped
        assert velocity.current_store() is memory
        monkeypatch.setenv(velocity.REDIS_URL_VARIABLE, "redis://127.0.0.1:6379/0")
        velocity.configure(None)
        assert isinstance(velocity.current_store(), velocity.RedisStore)
        monkeypatch.delenv(velocity.REDIS_URL_VARIABLE)
        velocity.configure(None)
        assert isinstance(velocity.current_store(), velocity.SqlStore)
    finally:
        velocity.configure(None)


def test_blind_index_is_keyed_and_tenant_scoped() -> None:
    raw = "203.0.113.7"
    first = velocity.blind_index("ten_a", "ip", raw)
    assert first != raw and raw not in first and len(first) == 64
    assert first == velocity.blind_index("ten_a", "ip", " 203.0.113.7 ")
    assert first != velocity.blind_index("ten_b", "ip", raw)
    assert first != velocity.blind_index("ten_a", "device", raw)
    phone = velocity.blind_index("ten_a", "phone", "+86 138 0000 0001")
    assert phone == velocity.blind_index("ten_a", "phone", "+86-13800000001")
    crypto.use_master_key(crypto.MasterKey.generate())
    assert velocity.blind_index("ten_a", "ip", raw) != first
    with pytest.raises(ValueError):
        velocity.blind_index("ten_a", "shoe_size", "42")
    with pytest.raises(ValueError):
        velocity.features(None, "t", {"customer_id": "c"}, at=datetime(2026, 3, 2, 9))  # naive


# --- SQL -----------------------------------------------------------------------------------------------------

def count_rows(db: Database) -> tuple[int, int]:
    with db.uow(read_only=True) as uow:
        return (uow.session.scalar(select(func.count()).select_from(VelocityCounter)) or 0,
                uow.session.scalar(select(func.count()).select_from(VelocityMember)) or 0)


def test_sql_store(db: Database, tenant: TenantHandle, other_tenant: TenantHandle) -> None:
    """Edges, the oracle on a seeded stream, tenant isolation, no raw value stored, bad input writes nothing."""
    runner = db_runner(db, velocity.SqlStore())
    check_window_edges(runner, tenant.id)
    stream = random_stream(11, 45)
    got = run_stream(runner, other_tenant.id, stream)
    for index, (at, event) in enumerate(stream):
        assert got[index] == oracle(stream[:index], event, at), index
    # The edges written for `tenant` are invisible to `other_tenant` and the other way round.
    _, features = runner
    probe = {"customer_id": "in-1h", "currency": "CNY"}
    assert features(other_tenant.id, probe, T0 + timedelta(days=40, seconds=37))["customer.count.1h"] == 0
    with db.uow(read_only=True) as uow:
        stored = {value for row in uow.session.execute(select(VelocityCounter.key_hash)) for value in row}
        stored |= {value for row in uow.session.execute(select(VelocityMember.member_hash)) for value in row}
    raw = {v for _, e in stream for k, v in e.items() if k in vplan.DIMENSIONS.values()}
    assert stored and not (stored & raw) and all(len(v) == 64 for v in stored)
    before = count_rows(db)
    with pytest.raises(InvalidRequest) as error, db.uow() as uow:
        velocity.record(uow, tenant.id, {"customer_id": "c", "amount": 1.5}, at=T0)
    assert error.value.code == "invalid_amount" and count_rows(db) == before


def test_features_as_of_and_prune(db: Database, tenant: TenantHandle) -> None:
    """A past `at` never sees later buckets; replay is exact inside a bucket too; pruning keeps every read."""
    record, features = db_runner(db, velocity.SqlStore())
    customer = {"customer_id": "cus_asof", "type": "payment", "amount": 100, "currency": "USD"}
    record(tenant.id, customer, T0 + timedelta(hours=1))
    record(tenant.id, customer, T0 + timedelta(hours=3))
    assert features(tenant.id, customer, T0 + timedelta(hours=2))["customer.count.24h"] == 1
    assert features(tenant.id, customer, T0 + timedelta(hours=4))["customer.count.24h"] == 2
    assert features(tenant.id, customer, T0 - timedelta(days=1))["customer.count.30d"] == 0
    # Inside one bucket the live counters cannot tell before from after (documented); replay can.
    record(tenant.id, customer, T0 + timedelta(hours=3, seconds=50))
    asof = T0 + timedelta(hours=3, seconds=20)
    assert features(tenant.id, customer, asof)["customer.count.10m"] == 2
    history = [(T0 + timedelta(hours=1), customer), (T0 + timedelta(hours=3), customer),
               (asof, customer), (T0 + timedelta(hours=3, seconds=50), customer)]
    assert [f["customer.count.10m"] for f in velocity.replay(tenant.id, history)] == [0, 0, 1, 2]
    # Pruning: buckets no window reads any more go, and the features read afterwards do not change.
    later = T0 + timedelta(days=45)
    record(tenant.id, customer, later - timedelta(days=1))
    expected = features(tenant.id, customer, later)
    before = count_rows(db)
    with db.uow() as uow:
        removed = velocity.prune(uow, now=later, store=velocity.SqlStore())
        uow.commit()
    assert removed > 0 and count_rows(db)[0] < before[0]
    assert features(tenant.id, customer, later) == expected
    from finloop.worker import jobs  # noqa: F401 - registers every job
    from finloop.worker.registry import Every, registry

    spec = registry.get("risk.velocity_prune")
    assert spec.schedule == Every(3600.0)


def concurrent_records(db: Database, tenant_id: str, store: velocity.Store, *, threads: int, each: int) -> None:
    """``threads`` workers, each recording ``each`` events in its own units of work, all released at once."""
    barrier = threading.Barrier(threads, timeout=30)
    errors: list[BaseException] = []
    at = db.clock.now()

    def work(worker: int) -> None:
        try:
            barrier.wait()
            for index in range(each):
                with velocity.use_store(store), db.uow() as uow:
                    velocity.record(uow, tenant_id, {
                        "type": "payment", "customer_id": "cus_hot", "ip": "198.51.100.1", "device_id": "dev_hot",
                        "card_token": f"card_{worker}_{index % 3}", "amount": 7, "currency": "CNY"}, at=at)
                    uow.commit()
        except BaseException as error:  # reported by the test thread
            errors.append(error)

    workers = [threading.Thread(target=work, args=(n,)) for n in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(60)
    assert not errors, errors


def check_concurrent(db: Database, tenant_id: str, store: velocity.Store) -> None:
    threads, each = 6, 10
    concurrent_records(db, tenant_id, store, threads=threads, each=each)
    with velocity.use_store(store), db.uow(read_only=True) as uow:
        got = velocity.features(uow, tenant_id, {"customer_id": "cus_hot", "ip": "198.51.100.1",
                                                 "device_id": "dev_hot", "currency": "CNY"},
                                at=db.clock.now() + timedelta(seconds=1))
    total = threads * each
    assert got["customer.count.1m"] == got["ip.count.1h"] == got["device.count.30d"] == total
    assert got["customer.sum.24h"] == 7 * total
    assert got["device.distinct_cards.24h"] == got["customer.distinct_cards.1h"] == threads * 3


def test_concurrent_records_lose_no_counts(db: Database, tenant: TenantHandle) -> None:
    check_concurrent(db, tenant.id, velocity.SqlStore())
