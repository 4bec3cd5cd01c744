"""The Redis store: the same buckets as the SQL store, for scale.

Layout (``<p>`` = prefix and tenant):
- counters: one hash per series, granularity and page of buckets, ``<p>:c:<dimension>:<key>:<metric>:<g>:<page>``,
  field ``<bucket>`` the count and ``<bucket>:s`` the amount sum, incremented by ``HINCRBY`` (atomic: no
  lost counts under concurrency). A page spans the longest window read at that granularity, so a window
  touches at most two pages;
- members: one set per series, granularity and bucket, ``<p>:m:<dimension>:<key>:<metric>:<g>:<bucket>``,
  ``SADD``; a distinct count is the size of the ``SUNION`` of the window's buckets (exact, like SQL; no
  HyperLogLog, so the same figures as SQL).
Every key gets an ``EXPIRE`` (relative, so that it follows the event's clock) once no window reads it.
Writes made with a unit of work wait for its commit (``after_commit``), in one pipeline: a rolled-back
decision counts nothing. A read is one Lua script call that does the filtering and the unions server-side.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import structlog
from sqlalchemy import event as sa_event

from finloop.risk.velocity.plan import RETENTION, CounterDelta, CounterRow, DistinctCounts, MemberAdd, ReadPlan

if TYPE_CHECKING:
    import redis

    from finloop.db.uow import UnitOfWork

log = structlog.get_logger("finloop.risk.velocity")
_PENDING = "finloop.risk.velocity.redis_pending"
_LISTENING = "finloop.risk.velocity.redis_listening"


#: The read in one call. ARGV: n, then n × (page key, first bucket, last bucket); m, then m × (set key
#: prefix, first bucket, last bucket, step). Returns {flat (request, bucket, 0 count | 1 sum, value as text),
#: m union sizes}. The unions name keys the script was not given: fine on one Redis server, not on a cluster.
_READ_LUA = """
local found, sizes = {}, {}
local i = 2
for request = 1, tonumber(ARGV[1]) do
  local key, first, last = ARGV[i], tonumber(ARGV[i + 1]), tonumber(ARGV[i + 2])
  i = i + 3
  local fields = redis.call('HGETALL', key)
  for j = 1, #fields, 2 do
    local field = fields[j]
    local colon = string.find(field, ':', 1, true)
    local bucket = tonumber(colon and string.sub(field, 1, colon - 1) or field)
    if bucket >= first and bucket <= last then
      found[#found + 1] = request
      found[#found + 1] = bucket
      found[#found + 1] = colon and 1 or 0
      found[#found + 1] = fields[j + 1]
    end
  end
end
local unions = tonumber(ARGV[i])
i = i + 1
for _ = 1, unions do
  local prefix, first, last, step = ARGV[i], tonumber(ARGV[i + 1]), tonumber(ARGV[i + 2]), tonumber(ARGV[i + 3])
  i = i + 4
  local keys = {}
  for bucket = first, last, step do keys[#keys + 1] = prefix .. string.format('%d', bucket) end
  sizes[#sizes + 1] = #redis.call('SUNION', unpack(keys))
end
return {found, sizes}
"""


class RedisStore:
    name = "redis"

    def __init__(self, client: redis.Redis | str = "redis://127.0.0.1:6379/0", *,
                 prefix: str = "finloop:risk:v1") -> None:
        if isinstance(client, str):
            import redis as redis_module

            client = redis_module.Redis.from_url(client, socket_timeout=2.0, socket_connect_timeout=2.0)
        self.client = client
        self.prefix = prefix
        self._read = client.register_script(_READ_LUA)

    def _counter_key(self, tenant_id: str, dimension: str, key_hash: str, metric: str, granularity: int,
                     page: int) -> str:
        return f"{self.prefix}:{tenant_id}:c:{dimension}:{key_hash}:{metric}:{granularity}:{page}"

    def _member_key(self, tenant_id: str, dimension: str, key_hash: str, metric: str, granularity: int,
                    bucket: int) -> str:
        return f"{self.prefix}:{tenant_id}:m:{dimension}:{key_hash}:{metric}:{granularity}:{bucket}"

    def commands(self, tenant_id: str, counters: Sequence[CounterDelta],
                 members: Sequence[MemberAdd]) -> list[tuple[str, tuple[Any, ...]]]:
        """The pipeline that applies the writes: HINCRBY/SADD, then one EXPIRE per key touched."""
        commands: list[tuple[str, tuple[Any, ...]]] = []
        expiry: dict[str, int] = {}
        for d in counters:
            span = RETENTION[d.granularity]
            page = d.bucket - d.bucket % span
            key = self._counter_key(tenant_id, d.dimension, d.key_hash, d.metric, d.granularity, page)
            commands.append(("hincrby", (key, str(d.bucket), d.count)))
            if d.amount:
                commands.append(("hincrby", (key, f"{d.bucket}:s", d.amount)))
            # Readable until its last bucket leaves the longest window; relative to the bucket written.
            ttl = page + 2 * span + d.granularity - d.bucket
            expiry[key] = max(expiry.get(key, 0), ttl)
        for m in members:
            key = self._member_key(tenant_id, m.dimension, m.key_hash, m.metric, m.granularity, m.bucket)
            commands.append(("sadd", (key, m.member_hash)))
            expiry[key] = max(expiry.get(key, 0), RETENTION[m.granularity] + m.granularity)
        commands += [("expire", (key, ttl)) for key, ttl in expiry.items()]
        return commands

    def _execute(self, commands: list[tuple[str, tuple[Any, ...]]]) -> None:
        pipe = self.client.pipeline(transaction=False)
        for name, args in commands:
            getattr(pipe, name)(*args)
        pipe.execute()

    def add(self, uow: UnitOfWork | None, tenant_id: str, counters: Sequence[CounterDelta],
            members: Sequence[MemberAdd]) -> None:
        commands = self.commands(tenant_id, counters, members)
        if uow is None:
            self._execute(commands)
            return
        session = uow.session
        if not session.info.get(_LISTENING):
            # Once per session (a unit of work's session lives for one use case).
            sa_event.listen(session, "after_commit", _flush)
            sa_event.listen(session, "after_rollback", _discard)
            session.info[_LISTENING] = True
        session.info.setdefault(_PENDING, []).append((self, commands))

    def read(self, uow: UnitOfWork | None, tenant_id: str, plan: ReadPlan) -> tuple[list[CounterRow], DistinctCounts]:
        """One script call: ``HGETALL`` of each page a window touches, filtered to the plan's buckets, and per
        distinct window the size of the ``SUNION`` of its bucket sets, all server-side (no member travels)."""
        args: list[Any] = []
        asked: list[tuple[str, str, str, int]] = []
        for s in plan.counter_series:
            for granularity, (first, last) in sorted(plan.ranges.items()):
                span = RETENTION[granularity]
                for page in range(first - first % span, last + 1, span):
                    args += [self._counter_key(tenant_id, s.dimension, s.key_hash, s.metric, granularity, page),
                             first, last]
                    asked.append((s.dimension, s.key_hash, s.metric, granularity))
        unions: list[tuple[str, str, str, str]] = []
        union_args: list[Any] = []
        for s in plan.member_series:
            for name, (granularity, first, last) in sorted(plan.distinct_windows.items()):
                prefix = self._member_key(tenant_id, s.dimension, s.key_hash, s.metric, granularity, 0)[:-1]
                union_args += [prefix, first, last, granularity]
                unions.append((s.dimension, s.key_hash, s.metric, name))
        found, sizes = self._read(keys=[], args=[len(asked), *args, len(unions), *union_args])
        buckets: dict[tuple[int, int], list[int]] = {}
        for index in range(0, len(found), 4):
            slot = buckets.setdefault((int(found[index]), int(found[index + 1])), [0, 0])
            slot[int(found[index + 2])] = int(found[index + 3])
        rows: list[CounterRow] = []
        for (request, bucket), (count, amount) in buckets.items():
            dimension, key_hash, metric, granularity = asked[request - 1]
            rows.append((dimension, key_hash, metric, granularity, bucket, count, amount))
        distinct: DistinctCounts = {union: int(size) for union, size in zip(unions, sizes, strict=True) if size}
        return rows, distinct

    def prune(self, uow: UnitOfWork | None, *, now: int) -> int:
        """Nothing to do: every key carries its own EXPIRE."""
        return 0

    def clear(self) -> int:
        """Delete every key under this store's prefix (tests, or a reset after a master-key rotation)."""
        removed = 0
        for key in self.client.scan_iter(match=f"{self.prefix}:*", count=1000):
            removed += int(self.client.delete(key))
        return removed


def _flush(session: Any) -> None:
    pending = session.info.pop(_PENDING, None) or []
    for store, commands in pending:
        try:
            store._execute(commands)
        except Exception as error:  # noqa: BLE001 - the transaction is committed: report, never undo it
            log.warning("risk.velocity.redis_write_failed", error=type(error).__name__, commands=len(commands))


def _discard(session: Any) -> None:
    session.info.pop(_PENDING, None)
