"""The audit log: append-only and hash-chained per tenant.

Each event's hash covers its content and the previous event's hash, so changing, removing or
reordering any event breaks every hash after it; ``verify`` walks the chain and reports the first break.
Appends to one tenant's chain are serialised by locking the tenant row.

What is hashed must be exactly what the database gives back, on SQLite (JSON text) and on PostgreSQL
(JSONB, which turns ``1e20`` into ``100000000000000000000``): content is reduced to strings, integers,
booleans, null, lists and objects before hashing, and a float is recorded as its ``repr`` string.
The chain proves that nothing inside it was changed, removed or reordered; cutting events off its end
leaves a shorter valid chain, which only an anchor kept outside the database (a published head hash)
would reveal.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select

from finloop.audit.models import AuditEvent
from finloop.core.clock import utc
from finloop.db.uow import UnitOfWork
from finloop.tenancy.models import Tenant

GENESIS = "0" * 64


def _canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)


def _plain(value: Any) -> Any:
    """Content as JSON gives it back from either database: no floats, no tuples, string keys."""
    if value is None or isinstance(value, str | bool | int):
        return value
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, dict):
        return {str(key): _plain(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(item) for item in value]
    return str(value)


def event_hash(prev_hash: str, *, tenant_id: str, seq: int, actor: str, action: str, object_type: str,
               object_id: str | None, before: Any, after: Any, at: datetime) -> str:
    body = _canonical({
        "tenant_id": tenant_id, "seq": seq, "actor": actor, "action": action, "object_type": object_type,
        "object_id": object_id, "before": before, "after": after, "at": utc(at).isoformat(),
    })
    return hashlib.sha256((prev_hash + body).encode()).hexdigest()


def record(uow: UnitOfWork, tenant_id: str, *, actor: str, action: str, object_type: str,
           object_id: str | None = None, before: dict[str, Any] | None = None,
           after: dict[str, Any] | None = None) -> AuditEvent:
    """Append one event to the tenant's chain, in the caller's transaction."""
    # FOR NO KEY UPDATE serialises appends without blocking the foreign-key checks (FOR KEY SHARE on
    # the tenant row) that every concurrent insert of an entry, hold or account takes.
    uow.session.execute(select(Tenant.id).where(Tenant.id == tenant_id).with_for_update(key_share=True))
    last = uow.session.execute(
        select(AuditEvent.seq, AuditEvent.hash).where(AuditEvent.tenant_id == tenant_id)
        .order_by(AuditEvent.seq.desc()).limit(1)).first()
    seq, prev_hash = (last[0] + 1, last[1]) if last else (1, GENESIS)
    before = _plain(before)
    after = _plain(after)
    at = uow.clock.now()
    digest = event_hash(prev_hash, tenant_id=tenant_id, seq=seq, actor=actor, action=action,
                        object_type=object_type, object_id=object_id, before=before, after=after, at=at)
    event = AuditEvent(tenant_id=tenant_id, seq=seq, actor=actor, action=action, object_type=object_type,
                       object_id=object_id, before=before, after=after, at=at, prev_hash=prev_hash, hash=digest)
    uow.session.add(event)
    uow.session.flush()
    return event


def list_events(uow: UnitOfWork, tenant_id: str, *, after_seq: int | None = None, limit: int = 100,
                object_type: str | None = None, object_id: str | None = None) -> list[AuditEvent]:
    query = select(AuditEvent).where(AuditEvent.tenant_id == tenant_id)
    if after_seq is not None:
        query = query.where(AuditEvent.seq > after_seq)
    if object_type:
        query = query.where(AuditEvent.object_type == object_type)
    if object_id:
        query = query.where(AuditEvent.object_id == object_id)
    return list(uow.session.scalars(query.order_by(AuditEvent.seq).limit(limit)))


@dataclass(frozen=True)
class ChainReport:
    tenant_id: str
    events: int
    ok: bool
    broken_at_seq: int | None = None
    reason: str | None = None


def chain_tenant_ids(uow: UnitOfWork) -> list[str]:
    """Every tenant that has a chain or should have one (a tenant row with its events deleted counts)."""
    with_events = set(uow.session.scalars(select(AuditEvent.tenant_id).distinct()))
    return sorted(with_events | set(uow.session.scalars(select(Tenant.id))))


def verify(uow: UnitOfWork, tenant_id: str, *, batch: int = 5000) -> ChainReport:
    """Walk the tenant's chain from its first event and report the first break, if any."""
    prev_hash, expected_seq, checked = GENESIS, 1, 0
    after = 0
    while True:
        events = list_events(uow, tenant_id, after_seq=after, limit=batch)
        if not events:
            # Creating a tenant records its first event, so a tenant without any lost its whole chain.
            if checked == 0 and uow.session.get(Tenant, tenant_id) is not None:
                return ChainReport(tenant_id, 0, False, 1, "the tenant's events are missing")
            return ChainReport(tenant_id, checked, True)
        for event in events:
            if event.seq != expected_seq:
                return ChainReport(tenant_id, checked, False, expected_seq, "an event is missing")
            if event.prev_hash != prev_hash:
                return ChainReport(tenant_id, checked, False, event.seq, "link to the previous event is broken")
            digest = event_hash(prev_hash, tenant_id=event.tenant_id, seq=event.seq, actor=event.actor,
                                action=event.action, object_type=event.object_type, object_id=event.object_id,
                                before=event.before, after=event.after, at=event.at)
            if digest != event.hash:
                return ChainReport(tenant_id, checked, False, event.seq, "the event's content was changed")
            prev_hash, expected_seq, checked = event.hash, expected_seq + 1, checked + 1
        after = events[-1].seq
