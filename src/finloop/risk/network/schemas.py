"""Response models of the association network API: a customer's component, values masked."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field

from finloop.risk.network.service import MemberView, NetworkView, ValueView


class NetworkMember(BaseModel):
    customer_id: str
    is_fraud: bool
    first_seen_at: datetime | None
    last_seen_at: datetime | None


class NetworkValue(BaseModel):
    kind: str = Field(description="device, ip, phone, card, payout_account or email.")
    value: str = Field(description="Masked: only a blind index of the value is stored.")
    customers: int = Field(description="Customers ever linked to the value.")
    hub: bool = Field(description="Shared by more customers than the hub limit: it links nobody beyond the first "
                                  "hub_limit customers.")
    rank: int | None = Field(None, description="This customer's rank on the value (its own links): it is joined "
                                               "through the value when the rank is within the hub limit.")
    carriers: int | None = Field(None, description="Members of the component carrying the value.")
    first_seen_at: datetime | None
    last_seen_at: datetime | None


class NetworkComponentRead(BaseModel):
    id: str
    size: int
    fraud_members: int
    members: list[NetworkMember] = Field(description="Fraud members first, then by id; at most 100.")
    members_total: int
    members_truncated: bool
    shared: dict[str, list[NetworkValue]] = Field(
        description="By kind, the linking values carried by two or more members: what holds the component together.")
    hubs: list[NetworkValue] = Field(description="Hub values carried by members (they link nobody further).")


class CustomerNetworkRead(BaseModel):
    object: str = "risk_network_customer"
    customer_id: str
    is_fraud: bool
    fraud_sources: list[str] = Field(description="Why the customer counts as fraud: decision:<id>, case:<id>, list.")
    first_seen_at: datetime | None
    last_seen_at: datetime | None
    hub_limit: int
    component: NetworkComponentRead
    links: dict[str, list[NetworkValue]] = Field(description="By kind, this customer's values (masked).")


def _member(m: MemberView) -> NetworkMember:
    return NetworkMember(customer_id=m.customer_id, is_fraud=m.is_fraud, first_seen_at=m.first_seen_at,
                         last_seen_at=m.last_seen_at)


def _value(v: ValueView) -> NetworkValue:
    return NetworkValue(kind=v.kind, value=v.display, customers=v.customers, hub=v.hub, rank=v.rank,
                        carriers=v.carriers, first_seen_at=v.first_seen_at, last_seen_at=v.last_seen_at)


def _by_kind(values: tuple[ValueView, ...]) -> dict[str, list[NetworkValue]]:
    out: dict[str, list[NetworkValue]] = {}
    for v in values:
        out.setdefault(v.kind, []).append(_value(v))
    return out


def read_network(view: NetworkView) -> CustomerNetworkRead:
    return CustomerNetworkRead(
        customer_id=view.customer_id, is_fraud=view.is_fraud, fraud_sources=list(view.fraud_sources),
        first_seen_at=view.first_seen_at, last_seen_at=view.last_seen_at, hub_limit=view.hub_limit,
        component=NetworkComponentRead(
            id=view.component_id, size=view.size, fraud_members=view.fraud_members,
            members=[_member(m) for m in view.members], members_total=view.size,
            members_truncated=len(view.members) < view.size, shared=_by_kind(view.shared),
            hubs=[_value(v) for v in view.hubs]),
        links=_by_kind(view.links))
