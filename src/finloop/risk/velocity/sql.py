"""The SQL store (default): counters and member sets in the caller's transaction.

Increments are one multi-row ``INSERT ... ON CONFLICT DO UPDATE SET event_count = event_count +
excluded.event_count`` (on PostgreSQL its rows travel as arrays): concurrent writers never lose a count, and rows
are written in sorted order so two recorders cannot deadlock on each other. Members are inserted or ignored.
A read is two statements: the covered buckets of every series, and ``COUNT(DISTINCT member)`` per window.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from sqlalchemy import TextClause, delete, text
from sqlalchemy.dialects import postgresql, sqlite

from finloop.risk.velocity.plan import RETENTION, CounterDelta, CounterRow, DistinctCounts, MemberAdd, ReadPlan
from finloop.risk.velocity_models import VelocityCounter, VelocityMember

if TYPE_CHECKING:
    from finloop.db.uow import UnitOfWork

C = VelocityCounter.__table__.c


def _insert(dialect: str, table: Any) -> Any:
    return postgresql.insert(table) if dialect == "postgresql" else sqlite.insert(table)


@functools.cache
def _upsert(dialect: str) -> Any:
    """``INSERT ... ON CONFLICT (primary key) DO UPDATE SET event_count = event_count + excluded.event_count,
    amount_sum = amount_sum + excluded.amount_sum``: atomic per row on both databases."""
    statement = _insert(dialect, VelocityCounter.__table__)
    return statement.on_conflict_do_update(
        index_elements=["tenant_id", "dimension", "key_hash", "metric", "granularity", "bucket"],
        set_={"event_count": C.event_count + statement.excluded.event_count,
              "amount_sum": C.amount_sum + statement.excluded.amount_sum})


#: PostgreSQL: the same upsert as ``_upsert`` in one statement whose rows arrive as seven arrays. A
#: multi-row VALUES built by SQLAlchemy cost more Python per row (binding every parameter) than the query
#: itself; the rows come out of ``unnest`` in array order, which is sorted, so the lock order is unchanged.
_PG_UPSERT = text(
    "INSERT INTO risk_velocity_counters "
    "(tenant_id, dimension, key_hash, metric, granularity, bucket, event_count, amount_sum) "
    "SELECT :t, d, k, m, g, b, c, a FROM unnest(CAST(:d AS varchar[]), CAST(:k AS varchar[]), "
    "CAST(:m AS varchar[]), CAST(:g AS integer[]), CAST(:b AS bigint[]), CAST(:c AS bigint[]), "
    "CAST(:a AS bigint[])) WITH ORDINALITY AS u(d, k, m, g, b, c, a, n) ORDER BY n "
    "ON CONFLICT (tenant_id, dimension, key_hash, metric, granularity, bucket) DO UPDATE SET "
    "event_count = risk_velocity_counters.event_count + excluded.event_count, "
    "amount_sum = risk_velocity_counters.amount_sum + excluded.amount_sum")


@functools.cache
def _counter_sql(keys: int, metrics: int, ranges: int) -> TextClause:
    metric_list = ", ".join(f":m{i}" for i in range(metrics))
    spans = " OR ".join(f"(granularity = :g{i} AND bucket BETWEEN :a{i} AND :b{i})" for i in range(ranges))
    return text(" UNION ALL ".join(
        "SELECT dimension, key_hash, metric, granularity, bucket, event_count, amount_sum "
        f"FROM risk_velocity_counters WHERE tenant_id = :t AND dimension = :d{i} AND key_hash = :k{i} "
        f"AND metric IN ({metric_list}) AND ({spans})" for i in range(keys)))


@functools.cache
def _member_sql(series: int, windows: int) -> TextClause:
    counts = ", ".join(f"COUNT(DISTINCT CASE WHEN granularity = :g{w} AND bucket BETWEEN :a{w} AND :b{w} "
                       f"THEN member_hash END) AS w{w}" for w in range(windows))
    spans = " OR ".join(f"(granularity = :g{w} AND bucket BETWEEN :a{w} AND :b{w})" for w in range(windows))
    return text(" UNION ALL ".join(
        f"SELECT {i} AS series, {counts} FROM risk_velocity_members WHERE tenant_id = :t AND dimension = :d{i} "
        f"AND key_hash = :k{i} AND metric = :m{i} AND ({spans})" for i in range(series)))


@functools.cache
def _insert_members(dialect: str) -> Any:
    return _insert(dialect, VelocityMember.__table__).on_conflict_do_nothing()


def _unit(uow: UnitOfWork | None) -> UnitOfWork:
    if uow is None:
        raise ValueError("the SQL velocity store needs a unit of work")
    return uow


class SqlStore:
    name = "sql"

    def add(self, uow: UnitOfWork | None, tenant_id: str, counters: Sequence[CounterDelta],
            members: Sequence[MemberAdd]) -> None:
        uow = _unit(uow)
        if counters:
            merged: dict[tuple[str, str, str, int, int], list[int]] = {}
            for d in counters:
                slot = merged.setdefault((d.dimension, d.key_hash, d.metric, d.granularity, d.bucket), [0, 0])
                slot[0] += d.count
                slot[1] += d.amount
            ordered = sorted(merged.items())  # the lock order is the same for every writer
            if uow.dialect == "postgresql":
                uow.session.execute(_PG_UPSERT, {
                    "t": tenant_id, "d": [k[0] for k, _ in ordered], "k": [k[1] for k, _ in ordered],
                    "m": [k[2] for k, _ in ordered], "g": [k[3] for k, _ in ordered],
                    "b": [k[4] for k, _ in ordered], "c": [v[0] for _, v in ordered],
                    "a": [v[1] for _, v in ordered]})
            else:
                # An executemany of one cached statement (SQLAlchemy batches it into multi-row VALUES).
                uow.session.execute(_upsert(uow.dialect), [
                    {"tenant_id": tenant_id, "dimension": k[0], "key_hash": k[1], "metric": k[2], "granularity": k[3],
                     "bucket": k[4], "event_count": v[0], "amount_sum": v[1]} for k, v in ordered])
        if members:
            member_rows = [{"tenant_id": tenant_id, "dimension": m.dimension, "key_hash": m.key_hash,
                            "metric": m.metric, "granularity": m.granularity, "bucket": m.bucket,
                            "member_hash": m.member_hash} for m in sorted(set(members))]
            uow.session.execute(_insert_members(uow.dialect), member_rows)

    def read(self, uow: UnitOfWork | None, tenant_id: str, plan: ReadPlan) -> tuple[list[CounterRow], DistinctCounts]:
        """Two statements, each a ``UNION ALL`` of one branch per key: every branch is an index range on the
        primary key (tenant, dimension, key, metric, granularity, bucket), never a scan of the tenant. The SQL
        is written once per shape (number of keys): building expression trees per call cost more than the
        queries."""
        uow = _unit(uow)
        rows: list[CounterRow] = []
        if plan.counter_series:
            pairs = sorted({(s.dimension, s.key_hash) for s in plan.counter_series})
            metrics = sorted({s.metric for s in plan.counter_series})
            ranges = sorted(plan.ranges.items())
            params: dict[str, Any] = {"t": tenant_id}
            for i, (dimension, key_hash) in enumerate(pairs):
                params[f"d{i}"], params[f"k{i}"] = dimension, key_hash
            for i, metric in enumerate(metrics):
                params[f"m{i}"] = metric
            for i, (granularity, (first, last)) in enumerate(ranges):
                params[f"g{i}"], params[f"a{i}"], params[f"b{i}"] = granularity, first, last
            result = uow.session.execute(_counter_sql(len(pairs), len(metrics), len(ranges)), params)
            rows = [(r[0], r[1], r[2], int(r[3]), int(r[4]), int(r[5]), int(r[6])) for r in result]
        distinct: DistinctCounts = {}
        if plan.member_series:
            names = sorted(plan.distinct_windows)
            series = list(plan.member_series)
            params = {"t": tenant_id}
            for i, s in enumerate(series):
                params[f"d{i}"], params[f"k{i}"], params[f"m{i}"] = s.dimension, s.key_hash, s.metric
            for i, name in enumerate(names):
                params[f"g{i}"], params[f"a{i}"], params[f"b{i}"] = plan.distinct_windows[name]
            result = uow.session.execute(_member_sql(len(series), len(names)), params)
            for r in result:
                s = series[int(r[0])]
                for offset, name in enumerate(names):
                    if r[1 + offset]:
                        distinct[(s.dimension, s.key_hash, s.metric, name)] = int(r[1 + offset])
        return rows, distinct

    def prune(self, uow: UnitOfWork | None, *, now: int) -> int:
        """Delete, per granularity, buckets older than the longest window read with it (one bucket of margin)."""
        uow = _unit(uow)
        removed = 0
        for granularity, length in sorted(RETENTION.items()):
            cutoff = now - now % granularity - length
            for model in (VelocityCounter, VelocityMember):
                result = uow.session.execute(delete(model).where(model.granularity == granularity,
                                                                 model.bucket < cutoff))
                removed += int(result.rowcount or 0)  # type: ignore[attr-defined]
        return removed
