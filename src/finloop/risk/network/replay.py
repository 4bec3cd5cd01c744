"""The network in memory: the same semantics as the tables, for backtests, training and tests.

``MemoryNetwork.observe(event, at)`` returns the event's features and records its links, exactly as
``service.observe`` does against the database (both call ``domain.features``); ``replay`` runs a whole
history through a fresh one, applying fraud marks at their times, as ``velocity.replay`` does for the
counters. Components are merged by relabelling the smaller one (ties: the older id keeps its label).
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from finloop.risk.network import config, domain
from finloop.risk.network.domain import AccountFacts, Prior


@dataclass
class _Node:
    component: int
    facts: AccountFacts
    sources: set[str] = field(default_factory=set)
    last_country: str | None = None
    last_located_at: datetime | None = None


class MemoryNetwork:
    def __init__(self, *, hub_limit: int = domain.DEFAULT_HUB_LIMIT,
                 accounts: Mapping[str, AccountFacts] | None = None) -> None:
        """``accounts``: our customer records by id (what ``service`` reads from ``customers``)."""
        if hub_limit < 1:
            raise ValueError("hub_limit is at least 1")
        self.hub_limit = hub_limit
        self._accounts = accounts or {}
        self._nodes: dict[str, _Node] = {}
        #: value -> its customers in rank order.
        self._values: dict[tuple[str, str], list[str]] = {}
        #: customer -> value -> rank.
        self._links: dict[str, dict[tuple[str, str], int]] = {}
        self._members: dict[int, set[str]] = {}
        self._fraud: dict[int, int] = {}
        self._next_component = 0

    # ------------------------------------------------------------------------------------------ state

    def _node(self, customer_id: str) -> _Node:
        node = self._nodes.get(customer_id)
        if node is None:
            facts = self._accounts.get(customer_id, domain.NO_FACTS) if domain.is_our_customer_id(customer_id) \
                else domain.NO_FACTS
            self._next_component += 1
            node = _Node(component=self._next_component, facts=facts)
            self._nodes[customer_id] = node
            self._members[node.component] = {customer_id}
            self._fraud[node.component] = 0
        return node

    def _union(self, a: str, b: str) -> None:
        first, second = self._nodes[a].component, self._nodes[b].component
        if first == second:
            return
        keep, drop = sorted((first, second), key=lambda c: (-len(self._members[c]), c))
        for member in self._members.pop(drop):
            self._nodes[member].component = keep
            self._members[keep].add(member)
        self._fraud[keep] += self._fraud.pop(drop)

    def components(self) -> list[frozenset[str]]:
        """Every component as the set of its customers."""
        return [frozenset(members) for members in self._members.values()]

    def component_of(self, customer_id: str) -> tuple[int, int]:
        """(size, fraud members) of the customer's component; (0, 0) for an unknown customer."""
        node = self._nodes.get(customer_id)
        if node is None:
            return 0, 0
        return len(self._members[node.component]), self._fraud[node.component]

    def links(self) -> Iterator[tuple[str, str, str, int]]:
        """(customer, kind, value, rank) of every link."""
        for customer_id, values in self._links.items():
            for (kind, value), rank in values.items():
                yield customer_id, kind, value, rank

    # ------------------------------------------------------------------------------------------ events

    def observe(self, event: Mapping[str, Any], at: datetime) -> dict[str, int]:
        """The event's features (see ``domain.features``), then its links are recorded."""
        observation = domain.observe_event(event)
        customer_id = observation.customer_id
        if customer_id is None:
            return domain.features(observation, at=at, prior=domain.UNKNOWN, size=0, fraud_members=0,
                                   customers={}, hub_limit=self.hub_limit)
        node = self._nodes.get(customer_id)
        linked = self._links.setdefault(customer_id, {})
        prior = Prior(known=node is not None,
                      linked=frozenset(kind for kind, value in observation.values if (kind, value) in linked),
                      last_country=node.last_country if node else None,
                      last_located_at=node.last_located_at if node else None,
                      facts=node.facts if node else (self._accounts.get(customer_id, domain.NO_FACTS)
                                                     if domain.is_our_customer_id(customer_id) else domain.NO_FACTS))
        node = self._node(customer_id)
        counts: dict[str, int] = {}
        for kind, value in observation.values:
            key = (kind, value)
            customers = self._values.setdefault(key, [])
            if key not in linked:
                customers.append(customer_id)
                linked[key] = len(customers)
                if 1 < len(customers) <= self.hub_limit:
                    self._union(customer_id, customers[0])
            counts[kind] = len(customers)
        moved = domain.next_location(prior, observation, at)
        if moved is not None:
            node.last_country, node.last_located_at = moved
        size, fraud = self.component_of(customer_id)
        return domain.features(observation, at=at, prior=prior, size=size, fraud_members=fraud, customers=counts,
                               hub_limit=self.hub_limit)

    def mark(self, customer_id: str, source: str) -> bool:
        """Count the customer as fraud because of ``source``; True when it was not fraud before."""
        key = domain.customer_key(customer_id)
        if key is None:
            return False
        node = self._node(key)
        became = not node.sources
        node.sources.add(source)
        if became:
            self._fraud[node.component] += 1
        return became

    def unmark(self, customer_id: str, source: str) -> bool:
        """Withdraw one reason; True when the customer is no longer fraud."""
        key = domain.customer_key(customer_id)
        node = self._nodes.get(key) if key is not None else None
        if node is None or source not in node.sources:
            return False
        node.sources.discard(source)
        if not node.sources:
            self._fraud[node.component] -= 1
            return True
        return False


def replay(tenant_id: str, events: Iterable[tuple[datetime, Mapping[str, Any]]], *,
           fraud_marks: Iterable[tuple[datetime, str]] = (), hub_limit: int | None = None,
           accounts: Mapping[str, AccountFacts] | None = None) -> Iterator[dict[str, int]]:
    """For a history sorted by time, each event's network and geo features as a live decision at that instant
    computed them, in a fresh ``MemoryNetwork``. ``fraud_marks`` (customer, from that instant) are applied
    before the first event at or after their time; ``hub_limit`` defaults to the one in force
    (``config.hub_limit``). ``tenant_id`` only mirrors ``velocity.replay``: nothing
    is keyed here (values are compared normalised, as their blind indexes are)."""
    del tenant_id
    network = MemoryNetwork(hub_limit=hub_limit or config.hub_limit(), accounts=accounts)
    pending = [(at, i, customer_id) for i, (at, customer_id) in enumerate(fraud_marks)]
    heapq.heapify(pending)
    for at, event in events:
        while pending and pending[0][0] <= at:
            _, _, customer_id = heapq.heappop(pending)
            network.mark(customer_id, "replay")
        yield network.observe(event, at)
