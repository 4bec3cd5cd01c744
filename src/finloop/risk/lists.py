"""Black, white and grey lists at customer, IP, device, card token, phone, e-mail and payout-account level.

Invariants owned here:
- phone, e-mail and payout-account values are never stored in clear: the row keeps a keyed blind index
  (HMAC-SHA256 under a per-tenant key derived from the vault's fingerprint key, which is never rotated)
  and a masked display; a lookup computes the same index from the event's value, nothing is decrypted;
- an entry past its ``expires_at`` (by the injected clock) or removed no longer matches;
- a white entry names the rule ids it bypasses (``*``: all, including the built-in black-list rule);
- adding and removing entries is audited.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import or_, select

from finloop.audit import service as audit
from finloop.core.errors import Conflict, InvalidRequest, NotFound
from finloop.db.uow import UnitOfWork
from finloop.risk.domain import BLACKLIST_RULE, RULE_ID, mask, mask_email
from finloop.risk.models import RiskListEntry
from finloop.risk.velocity import keys


class ListKind(StrEnum):
    BLACK = "black"
    WHITE = "white"
    GREY = "grey"


class ListLevel(StrEnum):
    CUSTOMER = "customer"
    IP = "ip"
    DEVICE = "device"
    CARD = "card"
    PHONE = "phone"
    EMAIL = "email"
    PAYOUT_ACCOUNT = "payout_account"


#: The event key each level is read from.
EVENT_KEYS: dict[ListLevel, str] = {
    ListLevel.CUSTOMER: "customer_id", ListLevel.IP: "ip", ListLevel.DEVICE: "device_id",
    ListLevel.CARD: "card_token", ListLevel.PHONE: "phone", ListLevel.EMAIL: "email",
    ListLevel.PAYOUT_ACCOUNT: "payout_account",
}
BLIND_LEVELS = frozenset({ListLevel.PHONE, ListLevel.EMAIL, ListLevel.PAYOUT_ACCOUNT})
MAX_VALUE = 200
MAX_REASON = 500
MAX_BYPASS = 200


# ---------------------------------------------------------------------------------------------- blind index

#: The label the tenant's blind-index key is derived under (lists, velocity-free lookups, the network).
BLIND_INDEX_LABEL = b"finloop.risk.blind-index\x00"


def tenant_index_key(uow: UnitOfWork, tenant_id: str, *, create: bool = True) -> bytes | None:
    """The tenant's blind-index key: HMAC(vault fingerprint key, label ‖ tenant), made on first use (``create``;
    otherwise None when there is none yet, so nothing can be indexed) and kept in memory once committed."""
    from finloop.vault import service as vault

    return vault.cached_index_key(uow, BLIND_INDEX_LABEL + tenant_id.encode(), create=create)


def forget_keys() -> None:
    """Drop the in-memory blind-index keys (a test that recreates its database's vault keys calls this)."""
    from finloop.vault import service as vault

    vault.forget_index_keys()


def normalize(level: ListLevel, value: str) -> str:
    """The canonical form matched on, the same as the velocity counters' (``velocity.keys.normalize``)."""
    return keys.normalize(level.value, value)


def _index(key: bytes, level: ListLevel, value: str) -> str:
    message = level.value.encode() + b"\x00" + normalize(level, value).encode()
    return hmac.new(key, message, hashlib.sha256).hexdigest()


def blind_index(uow: UnitOfWork, tenant_id: str, level: ListLevel | str, value: str) -> str:
    """64 hex characters: the keyed HMAC-SHA256 of the normalised value; equal values in one tenant, equal
    indexes; nothing about the value can be learnt without the key."""
    key = tenant_index_key(uow, tenant_id)
    assert key is not None
    return _index(key, ListLevel(level), value)


def _display(level: ListLevel, value: str) -> str:
    if level is ListLevel.EMAIL:
        return mask_email(normalize(level, value))
    if level in BLIND_LEVELS:
        return mask(normalize(level, value))
    return value


# ---------------------------------------------------------------------------------------------- entries


def entry_snapshot(entry: RiskListEntry) -> dict[str, Any]:
    return {"kind": entry.kind, "level": entry.level, "display": entry.display, "reason": entry.reason,
            "bypass_rules": list(entry.bypass_rules), "expires_at": entry.expires_at.isoformat()
            if entry.expires_at else None}


def _stored_value(uow: UnitOfWork, tenant_id: str, level: ListLevel, value: str, *,
                  create: bool = True) -> str | None:
    """What the row holds for ``value``; None for a blind-indexed level when no key exists yet (lookups do
    not create one: nothing can be on a list then)."""
    if level not in BLIND_LEVELS:
        return normalize(level, value)
    key = tenant_index_key(uow, tenant_id, create=create)
    return None if key is None else _index(key, level, value)


def add_entry(uow: UnitOfWork, tenant_id: str, *, kind: str, level: str, value: str, reason: str,
              actor: str, expires_at: datetime | None = None, bypass_rules: list[str] | None = None) -> RiskListEntry:
    try:
        kind_ = ListKind(kind)
    except ValueError:
        raise InvalidRequest("kind is black, white or grey.", code="invalid_list_kind", param="kind") from None
    try:
        level_ = ListLevel(level)
    except ValueError:
        raise InvalidRequest(f"level is one of {', '.join(ListLevel)}.", code="invalid_list_level",
                             param="level") from None
    if not isinstance(value, str) or not normalize(level_, value) or len(value) > MAX_VALUE or "\x00" in value:
        raise InvalidRequest(f"value is 1-{MAX_VALUE} characters.", code="invalid_list_value", param="value")
    if not isinstance(reason, str) or not reason.strip() or len(reason) > MAX_REASON or "\x00" in reason:
        raise InvalidRequest(f"reason is 1-{MAX_REASON} characters.", code="invalid_reason", param="reason")
    now = uow.clock.now()
    if expires_at is not None and expires_at <= now:
        raise InvalidRequest("expires_at is in the future.", code="invalid_expiry", param="expires_at")
    bypass: list[str] = []
    if kind_ is ListKind.WHITE:
        bypass = sorted(set(bypass_rules or ["*"]))
        if len(bypass) > MAX_BYPASS or any(
                r != "*" and r != BLACKLIST_RULE and not RULE_ID.match(r) for r in bypass):
            raise InvalidRequest("bypass_rules lists rule ids (or '*' for all).", code="invalid_bypass_rules",
                                 param="bypass_rules")
    elif bypass_rules:
        raise InvalidRequest("Only white entries bypass rules.", code="invalid_bypass_rules", param="bypass_rules")
    stored = _stored_value(uow, tenant_id, level_, value)
    assert stored is not None
    existing = uow.session.scalar(select(RiskListEntry.id).where(
        RiskListEntry.tenant_id == tenant_id, RiskListEntry.kind == kind_.value, RiskListEntry.level == level_.value,
        RiskListEntry.value == stored, RiskListEntry.removed_at.is_(None),
        or_(RiskListEntry.expires_at.is_(None), RiskListEntry.expires_at > now)).limit(1))
    if existing is not None:
        raise Conflict(f"This value is already on the {kind_.value} list: {existing}.", code="list_entry_exists",
                       param="value")
    entry = RiskListEntry(id=uow.ids.new("risk_list_entry"), tenant_id=tenant_id, kind=kind_.value,
                          level=level_.value, value=stored, display=_display(level_, value)[:MAX_VALUE],
                          reason=reason.strip(), bypass_rules=bypass, expires_at=expires_at, created_by=actor[:60],
                          created_at=now)
    uow.session.add(entry)
    uow.session.flush()
    _mark_in_network(uow, entry, listed=True)
    audit.record(uow, tenant_id, actor=actor, action="risk.list_entry.added", object_type="risk_list_entry",
                 object_id=entry.id, after=entry_snapshot(entry))
    return entry


def get_entry(uow: UnitOfWork, tenant_id: str, entry_id: str) -> RiskListEntry:
    entry = uow.session.scalar(select(RiskListEntry).where(RiskListEntry.tenant_id == tenant_id,
                                                           RiskListEntry.id == entry_id))
    if entry is None:
        raise NotFound(f"No such list entry: {entry_id}.", code="list_entry_not_found", param="entry_id")
    return entry


def list_entries(uow: UnitOfWork, tenant_id: str, *, kind: str | None = None, level: str | None = None,
                 value: str | None = None, active_only: bool = True, after: str | None = None,
                 limit: int = 50) -> list[RiskListEntry]:
    """Entries by id; ``value`` is looked up through the blind index for blind-indexed levels (needs ``level``)."""
    query = select(RiskListEntry).where(RiskListEntry.tenant_id == tenant_id)
    if kind:
        query = query.where(RiskListEntry.kind == kind)
    if level:
        query = query.where(RiskListEntry.level == level)
        if value:
            stored = _stored_value(uow, tenant_id, ListLevel(level), value, create=False)
            if stored is None:
                return []
            query = query.where(RiskListEntry.value == stored)
    elif value:
        raise InvalidRequest("Looking a value up needs its level.", code="level_required", param="level")
    if active_only:
        now = uow.clock.now()
        query = query.where(RiskListEntry.removed_at.is_(None),
                            or_(RiskListEntry.expires_at.is_(None), RiskListEntry.expires_at > now))
    if after:
        query = query.where(RiskListEntry.id > after)
    return list(uow.session.scalars(query.order_by(RiskListEntry.id).limit(limit)))


def _mark_in_network(uow: UnitOfWork, entry: RiskListEntry, *, listed: bool) -> None:
    """A black-listed customer counts as fraud in its network component from the moment it is listed, not
    only at its next decision. (An entry that expires is withdrawn from the network by ``rebuild``.)"""
    if entry.kind != ListKind.BLACK.value or entry.level != ListLevel.CUSTOMER.value:
        return
    from finloop.risk.network import service as network

    if listed:
        network.mark_fraud(uow, entry.tenant_id, entry.value, source="list")
    else:
        network.unmark_fraud(uow, entry.tenant_id, entry.value, source="list")


def remove_entry(uow: UnitOfWork, tenant_id: str, entry_id: str, *, actor: str) -> RiskListEntry:
    entry = get_entry(uow, tenant_id, entry_id)
    if entry.removed_at is not None:
        raise Conflict("This entry is already removed.", code="list_entry_removed", param="entry_id")
    before = entry_snapshot(entry)
    entry.removed_at = uow.clock.now()
    entry.removed_by = actor[:60]
    uow.session.flush()
    _mark_in_network(uow, entry, listed=False)
    audit.record(uow, tenant_id, actor=actor, action="risk.list_entry.removed", object_type="risk_list_entry",
                 object_id=entry.id, before=before, after={**before, "removed": True})
    return entry


@dataclass(frozen=True, slots=True)
class Memberships:
    #: "black:ip", "white:customer", ... sorted, unique.
    lists: tuple[str, ...]
    #: Rule ids the matching white entries bypass ("*": all).
    bypass: frozenset[str]

    @property
    def black(self) -> bool:
        return any(m.startswith("black:") for m in self.lists)


EMPTY = Memberships((), frozenset())


def memberships(uow: UnitOfWork, tenant_id: str, event: Mapping[str, Any], *, at: datetime) -> Memberships:
    """The lists the event's values are on at ``at``: one indexed query over every level present."""
    pairs: list[tuple[str, str]] = []
    for level, key in EVENT_KEYS.items():
        raw = event.get(key)
        if isinstance(raw, str) and raw.strip() and len(raw) <= MAX_VALUE:
            stored = _stored_value(uow, tenant_id, level, raw, create=False)
            if stored is not None:
                pairs.append((level.value, stored))
    if not pairs:
        return EMPTY
    wanted = set(pairs)
    found_rows = uow.session.execute(
        select(RiskListEntry.kind, RiskListEntry.level, RiskListEntry.value, RiskListEntry.bypass_rules).where(
            RiskListEntry.tenant_id == tenant_id, RiskListEntry.level.in_({level for level, _ in pairs}),
            RiskListEntry.value.in_({value for _, value in pairs}), RiskListEntry.removed_at.is_(None),
            or_(RiskListEntry.expires_at.is_(None), RiskListEntry.expires_at > at))).all()
    rows = [(kind, level, rules) for kind, level, value, rules in found_rows if (level, value) in wanted]
    if not rows:
        return EMPTY
    found = sorted({f"{kind}:{level}" for kind, level, _ in rows})
    bypass = frozenset(rule for kind, _, rules in rows if kind == ListKind.WHITE.value for rule in rules)
    return Memberships(tuple(found), bypass)
