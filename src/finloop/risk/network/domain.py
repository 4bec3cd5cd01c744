"""The pure part of the association network and the geo/consistency features: what an event carries, the
feature names and how each feature is computed from the state before and after the event. No I/O here:
the live service (``service``) and the in-memory replay (``replay``) both call these functions, so a live
decision and a replayed one cannot compute a feature differently.

The network: a customer is linked to every value it carried (device id, IP, phone, card token, payout
account, e-mail). A value's customers are ranked in the order they first carried it (1, 2, ...). The links
of rank up to the hub limit join customers into connected components; a value carried by more customers
than the limit is a *hub* (a carrier-grade NAT address, a shop's shared terminal) and links nobody from
then on. The first ``hub_limit`` customers of a value stay joined by it (what was linked is not undone),
which keeps the components exactly incremental: merged, never split.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from finloop.risk.domain import mask, mask_email
from finloop.risk.network import geo
from finloop.risk.velocity.keys import normalize

#: Network kind -> the event key its value is read from (the device also from ``device.id``).
KINDS: dict[str, str] = {"device": "device_id", "ip": "ip", "phone": "phone", "card": "card_token",
                         "payout_account": "payout_account", "email": "email"}
#: A value shared by more customers than this is a hub: it stops linking (configurable, see ``service``).
DEFAULT_HUB_LIMIT = 20
#: Longer values and customer ids are not linked (the list entries' and the columns' limits).
MAX_VALUE = 200
MAX_CUSTOMER_ID = 100
#: Decision labels that make the decision's customer a known fraud.
FRAUD_LABELS = frozenset({"fraud_confirmed", "disputed"})
#: ``customer.account_age_days`` when neither our customer record nor the event tells the age.
UNKNOWN_AGE = -1
_ULID = frozenset("0123456789ABCDEFGHJKMNPQRSTVWXYZ")

FEATURE_NAMES: tuple[str, ...] = (
    "network.size", "network.fraud_members", "network.hubs",
    *(f"network.{kind}_customers" for kind in KINDS),
    "device.new_for_customer", "customer.account_age_days",
    "geo.ip_card_mismatch", "geo.ip_account_mismatch", "geo.travel_km", "geo.travel_kmh", "geo.impossible_travel",
)


def _text(value: Any) -> str | None:
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int):
        value = str(value)
    if not isinstance(value, str):
        return None
    value = value.strip()
    return value or None


def customer_key(value: Any) -> str | None:
    """The customer id linked (stripped; ints as text), or None when absent or longer than 100 characters."""
    text = _text(value)
    return text if text is not None and len(text) <= MAX_CUSTOMER_ID and "\x00" not in text else None


def is_our_customer_id(customer_id: str) -> bool:
    """``cus_`` and a 26-character ULID: an id of our ``customers`` table (worth one lookup)."""
    return len(customer_id) == 30 and customer_id.startswith("cus_") and set(customer_id[4:]) <= _ULID


def display(kind: str, value: str) -> str:
    """The masked form shown for a value: ``a***@example.com`` for e-mails, ``****1234`` otherwise."""
    return (mask_email(value) if kind == "email" else mask(value))[:MAX_VALUE]


@dataclass(frozen=True, slots=True)
class Observation:
    """What an event tells the network and the geo checks."""

    customer_id: str | None
    #: (kind, normalised value), one per kind present, in ``KINDS`` order.
    values: tuple[tuple[str, str], ...]
    ip_country: str | None
    card_country: str | None
    #: ``customer.country`` of the event.
    home_country: str | None
    #: ``customer.age_days`` of the event (a non-negative int), else None.
    age_days: int | None

    @property
    def device(self) -> str | None:
        return next((value for kind, value in self.values if kind == "device"), None)

    @property
    def located(self) -> str | None:
        """The IP country when it has a centroid (only such events move the customer's last location)."""
        return self.ip_country if self.ip_country in geo.CENTROIDS else None


def observe_event(event: Mapping[str, Any]) -> Observation:
    customer = event.get("customer")
    customer = customer if isinstance(customer, Mapping) else {}
    values: list[tuple[str, str]] = []
    for kind, key in KINDS.items():
        raw = event.get(key)
        if raw is None and kind == "device" and isinstance(event.get("device"), Mapping):
            raw = event["device"].get("id")
        text = _text(raw)
        if text is None or len(text) > MAX_VALUE or "\x00" in text:
            continue
        value = normalize(kind, text)
        if value:
            values.append((kind, value))
    age = customer.get("age_days")
    return Observation(
        customer_id=customer_key(event.get("customer_id")), values=tuple(values),
        ip_country=geo.country(event.get("ip_country")), card_country=geo.country(event.get("card_country")),
        home_country=geo.country(customer.get("country")),
        age_days=age if isinstance(age, int) and not isinstance(age, bool) and 0 <= age < 2**31 else None)


@dataclass(frozen=True, slots=True)
class AccountFacts:
    """Our ``customers`` record of the event's customer: when it was created and its ``metadata.country``."""

    created_at: datetime | None = None
    country: str | None = None


NO_FACTS = AccountFacts()


def account_facts(created_at: datetime | None, metadata: Any) -> AccountFacts:
    country = geo.country(metadata.get("country")) if isinstance(metadata, Mapping) else None
    return AccountFacts(created_at, country)


@dataclass(frozen=True, slots=True)
class Prior:
    """The customer as the network knew it before the event (``known`` False: never seen)."""

    known: bool = False
    #: Kinds of the event's values already linked to this customer.
    linked: frozenset[str] = frozenset()
    last_country: str | None = None
    last_located_at: datetime | None = None
    facts: AccountFacts = NO_FACTS


UNKNOWN = Prior()


def next_location(prior: Prior, observation: Observation, at: datetime) -> tuple[str, datetime] | None:
    """The customer's new last location after the event, or None when it does not move (an event without a
    known IP country, or older than the last located one)."""
    country = observation.located
    if country is None or (prior.last_located_at is not None and at < prior.last_located_at):
        return None
    return country, at


def account_age_days(facts: AccountFacts, observation: Observation, at: datetime) -> int:
    """Whole days since our customer record was created; else the event's ``customer.age_days``; else -1."""
    if facts.created_at is not None:
        return max(0, (at - facts.created_at) // timedelta(days=1))
    if observation.age_days is not None:
        return observation.age_days
    return UNKNOWN_AGE


def features(observation: Observation, *, at: datetime, prior: Prior, size: int, fraud_members: int,
             customers: Mapping[str, int], hub_limit: int) -> dict[str, int]:
    """Every name of ``FEATURE_NAMES``. ``prior``: the customer before the event; ``size``, ``fraud_members``:
    its component once the event's links are made; ``customers``: per kind of the event's values, the
    customers linked to that value once the event's links are made (this customer included)."""
    out = dict.fromkeys(FEATURE_NAMES, 0)
    has_customer = observation.customer_id is not None
    if has_customer:
        out["network.size"] = size
        out["network.fraud_members"] = fraud_members
        out["network.hubs"] = sum(1 for n in customers.values() if n > hub_limit)
        for kind, n in customers.items():
            out[f"network.{kind}_customers"] = max(0, n - 1)
        out["device.new_for_customer"] = int(observation.device is not None and "device" not in prior.linked)
    out["customer.account_age_days"] = account_age_days(prior.facts, observation, at)
    ip, card = observation.ip_country, observation.card_country
    home = observation.home_country or prior.facts.country
    out["geo.ip_card_mismatch"] = int(ip is not None and card is not None and ip != card)
    out["geo.ip_account_mismatch"] = int(ip is not None and home is not None and ip != home)
    if prior.last_country is not None and prior.last_located_at is not None and observation.located is not None:
        km, kmh, impossible = geo.travel(prior.last_country, prior.last_located_at, observation.located, at)
        out["geo.travel_km"], out["geo.travel_kmh"], out["geo.impossible_travel"] = km, kmh, int(impossible)
    return out
