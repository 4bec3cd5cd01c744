"""The association network live: links recorded and components maintained in the decision's transaction,
fraud marks, the rebuild from links and the read model of a customer's component.

Invariants owned here (see ``models`` for the columns):
- ``observe`` records every decided event of a customer: its values' links (blind indexes only, see
  ``lists.blind_index``), each new link ranked by the value's customer count; links of rank 2..hub limit
  merge the customer's component with the value's first customer's (the smaller component is relabelled);
  it returns the event's features computed by ``domain.features``, as ``replay`` does in memory;
- concurrency (PostgreSQL): locks are taken in one order by every writer — fraud marks and values
  (identifier rows, sorted) first, then the components (sorted by id, ``FOR UPDATE``), then customer rows.
  Components are read, locked, then read again: when the second read differs (another transaction merged
  them meanwhile) the locks are released through a savepoint and the step is redone. Two decisions merging
  the same components therefore serialise and never lose a member or a fraud count. On SQLite a write
  transaction holds the database lock from its start (``BEGIN IMMEDIATE``), so nothing can interleave;
- a customer ``is_fraud`` exactly when it has a fraud mark, and its component's ``fraud_members`` follows
  every change under the component's lock;
- ``rebuild`` recomputes every component from the links (plain union-find over the links of rank up to the
  hub limit in force) and the fraud counts from the marks; it locks the components table (PostgreSQL) so
  no decision merges meanwhile.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import String, Table, and_, bindparam, case, delete, exists, func, select, text, update
from sqlalchemy.dialects import postgresql, sqlite

from finloop.core.errors import Conflict, NotFound
from finloop.db.types import UTCDateTime
from finloop.db.uow import UnitOfWork
from finloop.risk import lists as risk_lists
from finloop.risk.network import config, domain
from finloop.risk.network.domain import AccountFacts, Observation, Prior
from finloop.risk.network.models import (
    NetworkComponent,
    NetworkCustomer,
    NetworkFraudMark,
    NetworkIdentifier,
    NetworkLink,
)

#: A link's ``last_seen_at`` is refreshed when an event comes more than this after it.
LINK_REFRESH = timedelta(days=1)
#: Times a component step is redone after a concurrent merge before giving up (409 ``network_busy``).
MAX_ATTEMPTS = 20
#: Members and links listed by ``view`` (the counts are always exact).
VIEW_MEMBERS = 100
VIEW_LINKS = 100

CUSTOMERS = cast(Table, NetworkCustomer.__table__)
IDENTIFIERS = cast(Table, NetworkIdentifier.__table__)
LINKS = cast(Table, NetworkLink.__table__)
COMPONENTS = cast(Table, NetworkComponent.__table__)
MARKS = cast(Table, NetworkFraudMark.__table__)
C, I, L, K, M = CUSTOMERS.c, IDENTIFIERS.c, LINKS.c, COMPONENTS.c, MARKS.c  # noqa: E741

Progress = Callable[[str, int, int], None]


def _quiet(stage: str, done: int, total: int) -> None:
    return None


class _Stale(Exception):
    """The components read before locking changed before the lock was granted: redo the step."""


_redone = [0]


def redone() -> int:
    """Component steps redone in this process after a concurrent change (a figure for tests and operators)."""
    return _redone[0]


def _insert(dialect: str, table: Any) -> Any:
    return postgresql.insert(table) if dialect == "postgresql" else sqlite.insert(table)


def _new_component_id(uow: UnitOfWork) -> str:
    return f"net_{uow.ids.ulid()}"


# ---------------------------------------------------------------------------------------------- statements


@functools.cache
def _read_statement(with_values: bool) -> Any:
    """The customer, its component and the event's values it is already linked to: one indexed statement."""
    joined = CUSTOMERS.outerjoin(COMPONENTS, and_(K.tenant_id == C.tenant_id, K.id == C.component_id))
    columns = [C.component_id, C.is_fraud, C.account_created_at, C.account_country, C.last_country,
               C.last_located_at, C.first_seen_at, K.size, K.fraud_members]
    if with_values:
        joined = joined.outerjoin(LINKS, and_(
            L.tenant_id == C.tenant_id, L.customer_id == C.customer_id,
            L.key_hash.in_(bindparam("hashes", expanding=True)))).outerjoin(
            IDENTIFIERS, and_(I.tenant_id == L.tenant_id, I.kind == L.kind, I.key_hash == L.key_hash))
        columns += [L.kind, L.key_hash, L.last_seen_at, I.customers]
    return select(*columns).select_from(joined).where(C.tenant_id == bindparam("t"),
                                                      C.customer_id == bindparam("c"))


@functools.cache
def _upsert_identifiers(dialect: str) -> Any:
    statement = _insert(dialect, IDENTIFIERS)
    return statement.on_conflict_do_update(
        index_elements=["tenant_id", "kind", "key_hash"], set_={"customers": I.customers + 1},
    ).returning(I.kind, I.key_hash, I.customers, I.first_customer_id)


@functools.cache
def _insert_links(dialect: str) -> Any:
    return _insert(dialect, LINKS).on_conflict_do_nothing().returning(L.kind, L.key_hash)


@functools.cache
def _insert_customer(dialect: str) -> Any:
    return _insert(dialect, CUSTOMERS).on_conflict_do_nothing().returning(C.customer_id)


@functools.cache
def _insert_mark(dialect: str) -> Any:
    return _insert(dialect, MARKS).on_conflict_do_nothing().returning(M.source)


_COMPONENTS_OF = select(C.customer_id, C.component_id).where(
    C.tenant_id == bindparam("t"), C.customer_id.in_(bindparam("customers", expanding=True)))


def _lock_components(uow: UnitOfWork) -> Any:
    query = select(K.id, K.size, K.fraud_members).where(
        K.tenant_id == bindparam("t"), K.id.in_(bindparam("ids", expanding=True))).order_by(K.id)
    return query.with_for_update() if uow.dialect == "postgresql" else query


@functools.cache
def _lock_components_of(dialect: str) -> Any:
    """The components of some customers, in id order, locked (``FOR UPDATE`` on PostgreSQL: rows are locked in
    the order they are returned)."""
    query = select(K.id, K.size, K.fraud_members).where(K.tenant_id == bindparam("t"), K.id.in_(
        select(C.component_id).where(C.tenant_id == bindparam("t"),
                                     C.customer_id.in_(bindparam("customers", expanding=True))))).order_by(K.id)
    return query.with_for_update() if dialect == "postgresql" else query


# Statements of the decision path are built once: building a statement costs more than SQLite running it.


@functools.cache
def _touch_customer(located: bool) -> Any:
    """Last seen; first seen when unset (a customer known from a mark, or made by a racing decision); the last
    location unless a later located event already moved it."""
    at = bindparam("at", type_=UTCDateTime())
    values: dict[str, Any] = {"last_seen_at": at, "first_seen_at": func.coalesce(C.first_seen_at, at)}
    if located:
        later = and_(C.last_located_at.is_not(None), C.last_located_at > at)
        values["last_country"] = case((later, C.last_country), else_=bindparam("country", type_=String()))
        values["last_located_at"] = case((later, C.last_located_at), else_=at)
    return update(CUSTOMERS).where(C.tenant_id == bindparam("t"), C.customer_id == bindparam("c")).values(values)


_UNCOUNT_IDENTIFIER = update(IDENTIFIERS).where(
    I.tenant_id == bindparam("t"), I.kind == bindparam("k"), I.key_hash == bindparam("h")).values(
    customers=I.customers - 1)
_INSERT_COMPONENT = COMPONENTS.insert()
_RELABEL = update(CUSTOMERS).where(C.tenant_id == bindparam("t"), C.component_id.in_(
    bindparam("losers", expanding=True))).values(component_id=bindparam("winner"))
_DROP_COMPONENTS = delete(COMPONENTS).where(K.tenant_id == bindparam("t"),
                                            K.id.in_(bindparam("losers", expanding=True)))
_SET_COMPONENT = update(COMPONENTS).where(K.tenant_id == bindparam("t"), K.id == bindparam("winner")).values(
    size=bindparam("v_size"), fraud_members=bindparam("v_fraud"), updated_at=bindparam("v_now"))
_IS_FRAUD = select(C.is_fraud).where(C.tenant_id == bindparam("t"), C.customer_id == bindparam("c"))
_SET_FRAUD = update(CUSTOMERS).where(C.tenant_id == bindparam("t"), C.customer_id == bindparam("c")).values(
    is_fraud=bindparam("v_fraud"))


# ---------------------------------------------------------------------------------------------- observe


@dataclass(frozen=True, slots=True)
class _Value:
    kind: str
    key_hash: str
    value: str


def _index_key(uow: UnitOfWork, tenant_id: str) -> bytes:
    key = risk_lists.tenant_index_key(uow, tenant_id)
    assert key is not None
    return key


def _values(uow: UnitOfWork, tenant_id: str, observation: Observation) -> list[_Value]:
    """The values' blind indexes: ``lists.blind_index`` (same key, same message), with the tenant key looked up
    once per event and the values already normalised."""
    if not observation.values:
        return []
    key = _index_key(uow, tenant_id)
    return [_Value(kind, hmac.new(key, kind.encode() + b"\x00" + value.encode(), hashlib.sha256).hexdigest(), value)
            for kind, value in observation.values]


def _account(uow: UnitOfWork, tenant_id: str, customer_id: str) -> AccountFacts:
    """Our customer record's creation time and country, for an id of ours (one primary-key read)."""
    if not domain.is_our_customer_id(customer_id):
        return domain.NO_FACTS
    from finloop.payments.models import Customer

    row = uow.session.execute(select(Customer.created_at, Customer.meta).where(
        Customer.tenant_id == tenant_id, Customer.id == customer_id)).first()
    return domain.account_facts(row[0], row[1]) if row is not None else domain.NO_FACTS


def observe(uow: UnitOfWork, tenant_id: str, event: Mapping[str, Any], *, at: datetime,
            mark: str | None = None) -> dict[str, int]:
    """The event's network and geo features (``domain.FEATURE_NAMES``), its links recorded in the caller's
    transaction. ``mark``: also count the customer as fraud from now on because of this source (a black-listed
    customer's decision), in the same lock order; the features do not include it. Usual cost: one read; a
    returning customer on known values adds one update; new values add two upserts and, when they join
    components, the component lock and relabel."""
    observation = domain.observe_event(event)
    limit = config.hub_limit()
    customer_id = observation.customer_id
    if customer_id is None:
        return domain.features(observation, at=at, prior=domain.UNKNOWN, size=0, fraud_members=0, customers={},
                               hub_limit=limit)
    values = _values(uow, tenant_id, observation)
    marked = mark is not None and bool(uow.session.execute(_insert_mark(uow.dialect), [{  # marks lock first
        "tenant_id": tenant_id, "customer_id": customer_id, "source": mark[:60], "marked_at": at}]).all())
    params: dict[str, Any] = {"t": tenant_id, "c": customer_id}
    if values:
        params["hashes"] = [v.key_hash for v in values]
    rows = uow.session.execute(_read_statement(bool(values)), params).all()
    kinds = {v.key_hash: v.kind for v in values}
    linked: dict[str, tuple[datetime, int]] = {}
    for row in rows:
        if values and row.key_hash is not None and row.key_hash in kinds:
            linked[row.key_hash] = (row.last_seen_at, int(row.customers or 0))
    first = rows[0] if rows else None
    facts = AccountFacts(first.account_created_at, first.account_country) if first is not None \
        else _account(uow, tenant_id, customer_id)
    prior = Prior(known=first is not None, linked=frozenset(kinds[h] for h in linked),
                  last_country=first.last_country if first else None,
                  last_located_at=first.last_located_at if first else None, facts=facts)
    counts = {kinds[h]: n for h, (_, n) in linked.items()}
    fresh = [v for v in values if v.key_hash not in linked]
    moved = domain.next_location(prior, observation, at)
    stale = [{"t": tenant_id, "c": customer_id, "k": kinds[h], "h": h, "at": at}
             for h, (seen, _) in linked.items() if seen is not None and at - seen > LINK_REFRESH]
    if stale:  # links before the customer row: the lock order of every writer
        uow.session.execute(_refresh_links(), stale)
    fraud_up = marked and not (first is not None and first.is_fraud)
    if first is not None and not fresh and not fraud_up:
        size, fraud = int(first.size or 0), int(first.fraud_members or 0)
        created = False
    else:
        size, fraud, created = _link(
            uow, tenant_id, customer_id, fresh, counts, facts=facts, location=moved, at=at, limit=limit,
            fraud_up=fraud_up, component=(first.component_id, int(first.size or 0), int(first.fraud_members or 0))
            if first is not None else None)
    if not created:
        uow.session.execute(_touch_customer(moved is not None), {"t": tenant_id, "c": customer_id, "at": at,
                                                                 **({"country": moved[0]} if moved else {})})
    return domain.features(observation, at=at, prior=prior, size=size, fraud_members=fraud, customers=counts,
                           hub_limit=limit)


@functools.cache
def _refresh_links() -> Any:
    return update(LINKS).where(
        L.tenant_id == bindparam("t"), L.customer_id == bindparam("c"), L.kind == bindparam("k"),
        L.key_hash == bindparam("h")).values(last_seen_at=bindparam("at"))


def _link(uow: UnitOfWork, tenant_id: str, customer_id: str, fresh: Sequence[_Value], counts: dict[str, int], *,
          facts: AccountFacts, location: tuple[str, datetime] | None, at: datetime, limit: int, fraud_up: bool,
          component: tuple[str, int, int] | None) -> tuple[int, int, bool]:
    """Record the links of ``fresh`` values (``counts`` gets their customer counts) and merge the components
    they join; with ``fraud_up`` the customer becomes fraud too. Returns the (size, fraud members before that
    mark) of the customer's component afterwards and whether the customer was created (with ``location``).
    ``component``: the customer's (id, size, fraud members) as read, None for a new customer."""
    dialect = uow.dialect
    anchors: set[str] = set()
    if fresh:
        ordered = sorted(fresh, key=lambda v: (v.kind, v.key_hash))  # one lock order for every writer
        ranked = uow.session.execute(_upsert_identifiers(dialect), [
            {"tenant_id": tenant_id, "kind": v.kind, "key_hash": v.key_hash, "display": domain.display(v.kind, v.value),
             "customers": 1, "first_customer_id": customer_id, "first_seen_at": at} for v in ordered]).all()
        rank = {row.key_hash: (int(row.customers), row.first_customer_id) for row in ranked}
        made = {row.key_hash for row in uow.session.execute(_insert_links(dialect), [
            {"tenant_id": tenant_id, "customer_id": customer_id, "kind": v.kind, "key_hash": v.key_hash,
             "rank": rank[v.key_hash][0], "first_seen_at": at, "last_seen_at": at} for v in ordered])}
        raced = [v for v in ordered if v.key_hash not in made]
        if raced:  # the same customer linked these values in a transaction that committed while we waited
            uow.session.execute(_UNCOUNT_IDENTIFIER, [{"t": tenant_id, "k": v.kind, "h": v.key_hash} for v in raced])
        for v in ordered:
            n, first_customer = rank[v.key_hash]
            counts[v.kind] = n if v.key_hash in made else n - 1
            if v.key_hash in made and 1 < n <= limit and first_customer != customer_id:
                anchors.add(first_customer)
    known = component is not None
    if not anchors:
        if component is not None and not fraud_up:
            return component[1], component[2], False
        if component is None:
            if _create_customer(uow, tenant_id, customer_id, facts, at=at, fraud=fraud_up, location=location):
                return 1, 0, True
            known = True  # created meanwhile by a decision of the same customer: join it like any other
    return _merge(uow, tenant_id, customer_id, anchors, known=known, facts=facts, location=location, at=at,
                  fraud_up=fraud_up)


def _create_customer(uow: UnitOfWork, tenant_id: str, customer_id: str, facts: AccountFacts, *, at: datetime | None,
                     fraud: bool, component_id: str | None = None,
                     location: tuple[str, datetime] | None = None) -> bool:
    """Insert the customer in a new component of its own (or in ``component_id``); False when it exists."""
    new_component = component_id is None
    component_id = component_id or _new_component_id(uow)
    made = uow.session.execute(_insert_customer(uow.dialect), [{
        "tenant_id": tenant_id, "customer_id": customer_id, "component_id": component_id, "is_fraud": fraud,
        "account_created_at": facts.created_at, "account_country": facts.country,
        "last_country": location[0] if location else None, "last_located_at": location[1] if location else None,
        "first_seen_at": at, "last_seen_at": at}]).all()
    if not made:
        return False
    if new_component:
        now = uow.clock.now()
        uow.session.execute(_INSERT_COMPONENT, [{
            "tenant_id": tenant_id, "id": component_id, "size": 1, "fraud_members": int(fraud), "created_at": now,
            "updated_at": now}])
    return True


def _savepoint(uow: UnitOfWork) -> Any:
    """A savepoint on PostgreSQL (rolling back to it releases the locks taken since); nothing on SQLite, where
    the transaction already holds the database lock."""
    if uow.dialect == "postgresql":
        return uow.session.begin_nested()
    import contextlib

    return contextlib.nullcontext()


def _merge(uow: UnitOfWork, tenant_id: str, customer_id: str, anchors: set[str], *, known: bool,
           facts: AccountFacts, location: tuple[str, datetime] | None, at: datetime,
           fraud_up: bool = False) -> tuple[int, int, bool]:
    """Lock the components of ``customer_id`` (when ``known``) and of ``anchors`` in id order, check they still
    hold those customers, relabel every smaller one into the largest (ties: the smallest id), add the
    customer when new (with ``location``) and, with ``fraud_up``, make it fraud. Returns the merged
    component's (size, fraud members before ``fraud_up``) and whether the customer was created."""
    for _ in range(MAX_ATTEMPTS):
        wanted = sorted(anchors | {customer_id}) if known else sorted(anchors)
        params = {"t": tenant_id, "customers": wanted}
        try:
            with _savepoint(uow):
                locked = uow.session.execute(_lock_components_of(uow.dialect), params).all()
                if uow.dialect == "postgresql":
                    # The lock waited for whoever held these rows; read again (a new snapshot): a component
                    # merged away or a member moved meanwhile means the locks are not the right ones.
                    now = {row.customer_id: row.component_id for row in uow.session.execute(_COMPONENTS_OF, params)}
                    if set(now.values()) != {r.id for r in locked} or len(now) != len(wanted):
                        raise _Stale
                if not locked:
                    raise Conflict("The network changed under this decision; retry.", code="network_busy")
                winner = min(locked, key=lambda r: (-int(r.size), r.id))
                losers = [r.id for r in locked if r.id != winner.id]
                size = sum(int(r.size) for r in locked) + (0 if known else 1)
                fraud = sum(int(r.fraud_members) for r in locked)
                created = not known and _create_customer(uow, tenant_id, customer_id, facts, at=at,
                                                         fraud=fraud_up, component_id=winner.id, location=location)
                if not known and not created:
                    known = True  # a decision of the same new customer committed it while we waited: redo
                    raise _Stale
                if losers:
                    uow.session.execute(_RELABEL, {"t": tenant_id, "losers": losers, "winner": winner.id})
                    uow.session.execute(_DROP_COMPONENTS, {"t": tenant_id, "losers": losers})
                turned = created and fraud_up
                who = {"t": tenant_id, "c": customer_id}
                if known and fraud_up and not uow.session.scalar(_IS_FRAUD, who):
                    uow.session.execute(_SET_FRAUD, {**who, "v_fraud": True})
                    turned = True
                uow.session.execute(_SET_COMPONENT, {"t": tenant_id, "winner": winner.id, "v_size": size,
                                                     "v_fraud": fraud + int(turned), "v_now": uow.clock.now()})
        except _Stale:
            _redone[0] += 1
            continue
        return size, fraud, created
    raise Conflict("The network is being changed by other decisions; retry.", code="network_busy")


# ---------------------------------------------------------------------------------------------- fraud marks


def mark_fraud(uow: UnitOfWork, tenant_id: str, customer_id: Any, *, source: str) -> bool:
    """Count the customer as fraud because of ``source`` (``decision:<id>``, ``case:<id>``, ``list``); a
    customer never seen joins the network alone. True when the customer was not fraud before."""
    key = domain.customer_key(customer_id)
    if key is None:
        return False
    made = uow.session.execute(_insert_mark(uow.dialect), [{"tenant_id": tenant_id, "customer_id": key,
                                                            "source": source[:60], "marked_at": uow.clock.now()}]).all()
    return bool(made) and _sync_fraud(uow, tenant_id, key) is True


def unmark_fraud(uow: UnitOfWork, tenant_id: str, customer_id: Any, *, source: str) -> bool:
    """Withdraw one reason; True when the customer is no longer fraud."""
    key = domain.customer_key(customer_id)
    if key is None:
        return False
    removed = uow.session.execute(delete(MARKS).where(
        M.tenant_id == tenant_id, M.customer_id == key, M.source == source[:60])).rowcount  # type: ignore[attr-defined]
    return bool(removed) and _sync_fraud(uow, tenant_id, key) is False


def _sync_fraud(uow: UnitOfWork, tenant_id: str, customer_id: str) -> bool | None:
    """Make ``is_fraud`` follow the marks, with the component's count, under the component's lock. Returns
    the new flag when it changed, else None."""
    for _ in range(MAX_ATTEMPTS):
        node = uow.session.execute(select(C.component_id, C.is_fraud).where(
            C.tenant_id == tenant_id, C.customer_id == customer_id)).first()
        if node is None:
            marked = bool(uow.session.scalar(select(exists().where(
                M.tenant_id == tenant_id, M.customer_id == customer_id))))
            if not marked:
                return None
            if _create_customer(uow, tenant_id, customer_id, _account(uow, tenant_id, customer_id), at=None,
                                fraud=True):
                return True
            continue
        try:
            with _savepoint(uow):
                locked = uow.session.execute(_lock_components(uow), {"t": tenant_id, "ids": [node.component_id]}).all()
                again = uow.session.execute(select(C.component_id, C.is_fraud).where(
                    C.tenant_id == tenant_id, C.customer_id == customer_id)).first()
                if not locked or again is None or again.component_id != node.component_id:
                    raise _Stale
                marked = bool(uow.session.scalar(select(exists().where(
                    M.tenant_id == tenant_id, M.customer_id == customer_id))))
                if marked == bool(again.is_fraud):
                    return None
                uow.session.execute(update(CUSTOMERS).where(
                    C.tenant_id == tenant_id, C.customer_id == customer_id).values(is_fraud=marked))
                uow.session.execute(update(COMPONENTS).where(
                    K.tenant_id == tenant_id, K.id == node.component_id).values(
                    fraud_members=K.fraud_members + (1 if marked else -1), updated_at=uow.clock.now()))
                return marked
        except _Stale:
            _redone[0] += 1
            continue
    raise Conflict("The network is being changed by other decisions; retry.", code="network_busy")


def label_changed(uow: UnitOfWork, tenant_id: str, decision_id: str, event: Mapping[str, Any],
                  before: str | None, after: str | None) -> None:
    """A decision's label moved from ``before`` to ``after``: its customer gains or loses the mark
    ``decision:<id>`` when the move crosses the fraud labels (``FRAUD_LABELS``)."""
    was, now = before in domain.FRAUD_LABELS, after in domain.FRAUD_LABELS
    if was == now:
        return
    customer_id = event.get("customer_id")
    if now:
        mark_fraud(uow, tenant_id, customer_id, source=f"decision:{decision_id}")
    else:
        unmark_fraud(uow, tenant_id, customer_id, source=f"decision:{decision_id}")


# ---------------------------------------------------------------------------------------------- rebuild


@dataclass(frozen=True, slots=True)
class RebuildResult:
    customers: int
    links: int
    components: int
    largest: int
    fraud_members: int
    relabelled: int
    hub_limit: int


class _UnionFind:
    def __init__(self) -> None:
        self.parent: dict[str, str] = {}

    def find(self, item: str) -> str:
        parent = self.parent.setdefault(item, item)
        while parent != item:
            grand = self.parent[parent]
            self.parent[item] = grand
            item, parent = parent, grand
        return item

    def union(self, a: str, b: str) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            self.parent[max(ra, rb)] = min(ra, rb)


def rebuild(uow: UnitOfWork, tenant_id: str, *, progress: Progress = _quiet) -> RebuildResult:
    """Recompute the tenant's components from its links (rank up to the hub limit in force) and fraud counts
    from its marks; the ``list`` marks follow the active black-list entries of customers first. Component
    ids are kept where most of their members stay together."""
    from finloop.risk.models import RiskListEntry

    limit = config.hub_limit()
    if uow.dialect == "postgresql":
        uow.session.execute(text("LOCK TABLE risk_network_components IN EXCLUSIVE MODE"))
    now = uow.clock.now()
    black = {value for (value,) in uow.session.execute(select(RiskListEntry.value).where(
        RiskListEntry.tenant_id == tenant_id, RiskListEntry.kind == "black", RiskListEntry.level == "customer",
        RiskListEntry.removed_at.is_(None),
        (RiskListEntry.expires_at.is_(None)) | (RiskListEntry.expires_at > now)))}
    listed = {c for (c,) in uow.session.execute(select(M.customer_id).where(M.tenant_id == tenant_id,
                                                                              M.source == "list"))}
    for customer_id in sorted(listed - black):
        uow.session.execute(delete(MARKS).where(
            M.tenant_id == tenant_id, M.customer_id == customer_id, M.source == "list"))
    missing = sorted(c for c in black - listed if domain.customer_key(c) == c)
    if missing:
        uow.session.execute(_insert_mark(uow.dialect), [
            {"tenant_id": tenant_id, "customer_id": c, "source": "list", "marked_at": now} for c in missing])
    marked = {c for (c,) in uow.session.execute(select(M.customer_id).where(M.tenant_id == tenant_id).distinct())}
    nodes = {row.customer_id: (row.component_id, bool(row.is_fraud)) for row in uow.session.execute(
        select(C.customer_id, C.component_id, C.is_fraud).where(C.tenant_id == tenant_id))}
    for customer_id in sorted(marked - set(nodes)):  # marked before any event and before marks made nodes
        placeholder = _new_component_id(uow)
        _create_customer(uow, tenant_id, customer_id, _account(uow, tenant_id, customer_id), at=None, fraud=True,
                         component_id=placeholder)
        nodes[customer_id] = (placeholder, True)
    total_links = int(uow.session.scalar(select(func.count()).select_from(LINKS).where(
        L.tenant_id == tenant_id)) or 0)
    progress("links", 0, total_links)
    groups = _UnionFind()
    anchors: dict[tuple[str, str], str] = {}
    linking = uow.session.execute(
        select(L.customer_id, L.kind, L.key_hash).where(L.tenant_id == tenant_id, L.rank <= limit)
        .order_by(L.kind, L.key_hash, L.rank).execution_options(yield_per=5000))
    for done, (customer_id, kind, key_hash) in enumerate(linking, start=1):
        groups.find(customer_id)
        anchor = anchors.setdefault((kind, key_hash), customer_id)
        if anchor != customer_id:
            groups.union(anchor, customer_id)
        if done % 5000 == 0:
            progress("links", done, total_links)
    progress("links", total_links, total_links)
    parts: dict[str, list[str]] = {}
    for customer_id in nodes:
        parts.setdefault(groups.find(customer_id), []).append(customer_id)
    ordered = sorted(parts.values(), key=lambda members: (-len(members), min(members)))
    used: set[str] = set()
    assignment: dict[str, str] = {}
    for members in ordered:
        votes = Counter(nodes[m][0] for m in members)
        keep = next((cid for cid, _ in sorted(votes.items(), key=lambda kv: (-kv[1], kv[0])) if cid not in used),
                    None) or _new_component_id(uow)
        used.add(keep)
        for m in members:
            assignment[m] = keep
    progress("components", 0, len(ordered))
    changed = [{"t": tenant_id, "c": m, "component": assignment[m], "fraud": m in marked}
               for m in sorted(nodes) if nodes[m] != (assignment[m], m in marked)]
    if changed:
        uow.session.execute(update(CUSTOMERS).where(
            C.tenant_id == bindparam("t"), C.customer_id == bindparam("c")).values(
            component_id=bindparam("component"), is_fraud=bindparam("fraud")), changed)
    uow.session.execute(delete(COMPONENTS).where(K.tenant_id == tenant_id))
    rows: list[dict[str, Any]] = []
    for members in ordered:
        rows.append({"tenant_id": tenant_id, "id": assignment[members[0]], "size": len(members),
                     "fraud_members": sum(1 for m in members if m in marked), "created_at": now, "updated_at": now})
    for start in range(0, len(rows), 1000):
        uow.session.execute(COMPONENTS.insert(), rows[start:start + 1000])
        progress("components", min(len(rows), start + 1000), len(rows))
    progress("components", len(rows), len(rows))
    return RebuildResult(customers=len(nodes), links=total_links, components=len(ordered),
                         largest=len(ordered[0]) if ordered else 0, fraud_members=sum(r["fraud_members"] for r in rows),
                         relabelled=sum(1 for c in changed if nodes[c["c"]][0] != c["component"]), hub_limit=limit)


# ---------------------------------------------------------------------------------------------- reads


@dataclass(frozen=True, slots=True)
class ValueView:
    kind: str
    #: Masked: the value itself is never stored.
    display: str
    #: Customers ever linked to the value.
    customers: int
    hub: bool
    #: This customer's rank on the value (its own links only): it is joined through it when within the limit.
    rank: int | None
    #: Members of the component carrying the value (shared values and hubs).
    carriers: int | None
    first_seen_at: datetime | None
    last_seen_at: datetime | None


@dataclass(frozen=True, slots=True)
class MemberView:
    customer_id: str
    is_fraud: bool
    first_seen_at: datetime | None
    last_seen_at: datetime | None


@dataclass(frozen=True, slots=True)
class NetworkView:
    customer_id: str
    component_id: str
    size: int
    fraud_members: int
    is_fraud: bool
    fraud_sources: tuple[str, ...]
    members: tuple[MemberView, ...]
    links: tuple[ValueView, ...]
    shared: tuple[ValueView, ...]
    hubs: tuple[ValueView, ...]
    hub_limit: int
    first_seen_at: datetime | None
    last_seen_at: datetime | None


def view(uow: UnitOfWork, tenant_id: str, customer_id: str, *, members: int = VIEW_MEMBERS) -> NetworkView:
    """A customer's component: its members (the first ``members`` by id, fraud first), this customer's values
    (masked), the values shared inside the component and the hubs among its members' values."""
    key = domain.customer_key(customer_id)
    node = uow.session.execute(select(C.component_id, C.is_fraud, C.first_seen_at, C.last_seen_at, K.size,
                                      K.fraud_members).select_from(CUSTOMERS.outerjoin(
        COMPONENTS, and_(K.tenant_id == C.tenant_id, K.id == C.component_id))).where(
        C.tenant_id == tenant_id, C.customer_id == key)).first() if key is not None else None
    if node is None or key is None:
        raise NotFound(f"No customer {customer_id} in the risk network.", code="network_customer_not_found",
                       param="customer_id")
    limit = config.hub_limit()
    sources = tuple(s for (s,) in uow.session.execute(select(M.source).where(
        M.tenant_id == tenant_id, M.customer_id == key).order_by(M.source)))
    found = uow.session.execute(select(C.customer_id, C.is_fraud, C.first_seen_at, C.last_seen_at).where(
        C.tenant_id == tenant_id, C.component_id == node.component_id)
        .order_by(C.is_fraud.desc(), C.customer_id).limit(members))
    listed = tuple(MemberView(r.customer_id, bool(r.is_fraud), r.first_seen_at, r.last_seen_at) for r in found)
    own = tuple(ValueView(r.kind, r.display, int(r.customers), int(r.customers) > limit, int(r.rank), None,
                          r.first_seen_at, r.last_seen_at)
                for r in uow.session.execute(select(L.kind, L.rank, L.first_seen_at, L.last_seen_at, I.display,
                                                    I.customers).select_from(LINKS.join(
                    IDENTIFIERS, and_(I.tenant_id == L.tenant_id, I.kind == L.kind,
                                                      I.key_hash == L.key_hash))).where(
                    L.tenant_id == tenant_id, L.customer_id == key).order_by(L.kind, L.first_seen_at, L.key_hash)
                    .limit(VIEW_LINKS)))
    carriers = func.count().label("carriers")
    inside = (select(L.kind, L.key_hash, I.display, I.customers, carriers, func.min(L.first_seen_at).label("first"),
                     func.max(L.last_seen_at).label("last"))
              .select_from(LINKS.join(CUSTOMERS, and_(
                  C.tenant_id == L.tenant_id, C.customer_id == L.customer_id)).join(
                  IDENTIFIERS, and_(I.tenant_id == L.tenant_id, I.kind == L.kind,
                                                    I.key_hash == L.key_hash)))
              .where(L.tenant_id == tenant_id, C.component_id == node.component_id)
              .group_by(L.kind, L.key_hash, I.display, I.customers))
    shared = tuple(_value(r, limit) for r in uow.session.execute(
        inside.where(L.rank <= limit).having(func.count() >= 2).order_by(carriers.desc(), L.kind, L.key_hash)
        .limit(VIEW_LINKS)))
    hubs = tuple(_value(r, limit) for r in uow.session.execute(
        inside.where(I.customers > limit).order_by(I.customers.desc(), L.kind, L.key_hash).limit(VIEW_LINKS)))
    return NetworkView(customer_id=key, component_id=node.component_id, size=int(node.size or 0),
                       fraud_members=int(node.fraud_members or 0), is_fraud=bool(node.is_fraud), fraud_sources=sources,
                       members=listed, links=own, shared=shared, hubs=hubs, hub_limit=limit,
                       first_seen_at=node.first_seen_at, last_seen_at=node.last_seen_at)


def _value(row: Any, limit: int) -> ValueView:
    return ValueView(row.kind, row.display, int(row.customers), int(row.customers) > limit, None, int(row.carriers),
                     row.first, row.last)


def components(uow: UnitOfWork, tenant_id: str) -> dict[str, frozenset[str]]:
    """Every component of the tenant as its set of customers (tests and checks)."""
    out: dict[str, set[str]] = {}
    for customer_id, component_id in uow.session.execute(select(C.customer_id, C.component_id).where(
            C.tenant_id == tenant_id)):
        out.setdefault(component_id, set()).add(customer_id)
    return {k: frozenset(v) for k, v in out.items()}


def check(uow: UnitOfWork, tenant_id: str) -> list[str]:
    """Broken invariants (none expected): component sizes and fraud counts against their members, fraud flags
    against the marks, identifier counts against their links, one rank per value."""
    problems: list[str] = []
    stored = {r.id: (int(r.size), int(r.fraud_members)) for r in uow.session.execute(
        select(K.id, K.size, K.fraud_members).where(K.tenant_id == tenant_id))}
    actual: dict[str, list[int]] = {}
    for component_id, is_fraud in uow.session.execute(select(C.component_id, C.is_fraud).where(
            C.tenant_id == tenant_id)):
        slot = actual.setdefault(component_id, [0, 0])
        slot[0] += 1
        slot[1] += int(bool(is_fraud))
    for component_id in sorted(set(stored) | set(actual)):
        if tuple(actual.get(component_id, [0, 0])) != stored.get(component_id):
            problems.append(f"component {component_id}: stored {stored.get(component_id)}, "
                            f"members {tuple(actual.get(component_id, [0, 0]))}")
    marked = {c for (c,) in uow.session.execute(select(M.customer_id).where(M.tenant_id == tenant_id))}
    for customer_id, is_fraud in uow.session.execute(select(C.customer_id, C.is_fraud).where(
            C.tenant_id == tenant_id)):
        if bool(is_fraud) != (customer_id in marked):
            problems.append(f"customer {customer_id}: is_fraud {bool(is_fraud)} with marks {customer_id in marked}")
    links = {(k, h): (int(n), int(lo), int(hi)) for k, h, n, lo, hi in uow.session.execute(
        select(L.kind, L.key_hash, func.count(), func.min(L.rank), func.max(L.rank)).where(L.tenant_id == tenant_id)
        .group_by(L.kind, L.key_hash))}
    for kind, key_hash, customers in uow.session.execute(select(I.kind, I.key_hash, I.customers).where(
            I.tenant_id == tenant_id)):
        n, lo, hi = links.get((kind, key_hash), (0, 0, 0))
        if n != int(customers) or (n and (lo != 1 or hi != n)):
            problems.append(f"identifier {kind}:{key_hash[:8]}: {customers} customers, {n} links ranked {lo}..{hi}")
    return problems


def marks_from(decisions: Iterable[tuple[datetime, Mapping[str, Any], str | None]]) -> list[tuple[datetime, str]]:
    """(instant, customer) fraud marks of labelled history ``(labelled_at, event, label)`` for ``replay``."""
    out = []
    for at, event, label in decisions:
        customer_id = domain.customer_key(event.get("customer_id"))
        if label in domain.FRAUD_LABELS and customer_id is not None:
            out.append((at, customer_id))
    return sorted(out)
