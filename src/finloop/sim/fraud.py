"""A seeded generator of labelled payment events: the training history of the anti-fraud model.

Normal customers keep habits (a home country and currency, one or two cards and devices, a home IP, a
typical amount, active hours, a few payments a day at most); some travel or change device innocently, and
new customers sign up every day. Four fraud patterns are planted and labelled:

- ``card_testing``: one device and one foreign IP try many stolen cards with tiny amounts within minutes;
- ``account_takeover``: an old customer suddenly pays large amounts from a new device in another country
  at an unusual hour;
- ``promotion_abuse``: many new accounts on one device and one phone each place a small first order with a
  promotion code;
- ``mule_ring``: a handful of accounts sharing devices and IPs move large amounts through, day after day.

Every event is the mapping ``risk.service.decide`` takes for ``event_type="payment"`` (amounts are integers
of minor units). Pure: no database, no clock; the same seed gives the same history.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

PATTERNS = ("card_testing", "account_takeover", "promotion_abuse", "mule_ring")
NORMAL = "normal"
DEFAULT_START = datetime(2026, 2, 1, tzinfo=UTC)
COUNTRIES = (("CN", "CNY", 45), ("US", "USD", 25), ("GB", "GBP", 10), ("DE", "EUR", 10), ("SG", "SGD", 10))
FOREIGN = ("RU", "NG", "BR", "VN", "UA", "ID", "RO")
CURRENCY = {c: cur for c, cur, _ in COUNTRIES}


@dataclass(frozen=True, slots=True)
class LabelledEvent:
    at: datetime
    event_type: str
    event: dict[str, Any]
    fraud: bool
    pattern: str


@dataclass
class _Customer:
    id: str
    country: str
    created: datetime
    cards: list[str]
    devices: list[str]
    ip: str
    phone: str
    median: int
    hour: int
    rate: float
    seen_devices: set[str] = field(default_factory=set)


class _Generator:
    def __init__(self, seed: int, start: datetime) -> None:
        self.rng = random.Random(seed)
        self.start = start
        self.serial = 0
        self.merchants = [f"mer_{i:03d}" for i in range(40)]

    def next_id(self, prefix: str) -> str:
        self.serial += 1
        return f"{prefix}_{self.serial:06d}"

    def ip(self, country: str) -> str:
        base = (sum(map(ord, country)) * 7) % 200 + 20
        r = self.rng
        return f"{base}.{r.randrange(256)}.{r.randrange(256)}.{r.randrange(1, 255)}"

    def country(self) -> str:
        return self.rng.choices([c for c, _, _ in COUNTRIES], weights=[w for _, _, w in COUNTRIES])[0]

    def customer(self, created: datetime, *, country: str | None = None) -> _Customer:
        r = self.rng
        home = country or self.country()
        return _Customer(
            id=self.next_id("cus"), country=home, created=created,
            cards=[self.next_id("card") for _ in range(r.choice((1, 1, 2)))],
            devices=[self.next_id("dev") for _ in range(r.choice((1, 1, 2)))], ip=self.ip(home),
            phone=f"+{r.randrange(10**9, 10**10)}", median=int(r.lognormvariate(8.3, 0.8)),
            hour=r.randrange(8, 23), rate=r.uniform(0.2, 1.6))

    def event(self, c: _Customer, at: datetime, *, amount: int, device: str, ip: str, ip_country: str,
              card: str, card_country: str | None = None, merchant: str | None = None,
              phone: str | None = None, extra: dict[str, Any] | None = None) -> dict[str, Any]:
        is_new_device = device not in c.seen_devices
        c.seen_devices.add(device)
        age = max(0, (at - c.created).days)
        event: dict[str, Any] = {
            "customer_id": c.id, "card_token": card, "device_id": device, "ip": ip, "ip_country": ip_country,
            "card_country": card_country or c.country, "amount": max(1, amount), "currency": CURRENCY[c.country],
            "merchant_id": merchant or self.rng.choice(self.merchants), "hour": at.hour, "method": "card",
            "phone": phone or c.phone,
            "customer": {"age_days": age, "country": c.country, "is_new": age < 1},
            "device": {"id": device, "is_new": is_new_device}}
        if extra:
            event.update(extra)
        return event


def generate(*, seed: int = 1, days: int = 30, customers: int = 400, start: datetime = DEFAULT_START,
             attack_rate: float = 1.0) -> list[LabelledEvent]:
    """A labelled history of ``days`` days from ``start``, sorted by time. ``attack_rate`` scales how often
    the fraud patterns strike (1.0: about 2-4 % of events are fraud)."""
    if days < 1 or customers < 1 or not 0 <= attack_rate <= 10:
        raise ValueError("days and customers are positive, attack_rate within 0..10")
    if start.tzinfo is None:
        raise ValueError("start must be timezone-aware")
    g = _Generator(seed, start)
    r = g.rng
    people = [g.customer(start - timedelta(days=r.randrange(30, 1500))) for _ in range(customers)]
    for person in people:
        person.seen_devices.update(person.devices)
    rings = [[g.customer(start - timedelta(days=r.randrange(5, 60))) for _ in range(r.randrange(4, 7))]
             for _ in range(2)]
    ring_assets = [([g.next_id("dev") for _ in range(2)], [g.ip(ring[0].country) for _ in range(2)])
                   for ring in rings]
    out: list[LabelledEvent] = []
    for day in range(days):
        midnight = start + timedelta(days=day)
        out += _normal_day(g, people, midnight)
        out += _attacks(g, people, rings, ring_assets, midnight, attack_rate)
        for _ in range(max(1, customers // 50)):  # innocent sign-ups with a first order
            fresh = g.customer(midnight + timedelta(hours=r.uniform(6, 20)))
            people.append(fresh)
            at = fresh.created + timedelta(minutes=r.uniform(1, 90))
            out.append(LabelledEvent(at, "payment", g.event(
                fresh, at, amount=int(fresh.median * r.uniform(0.3, 1.2)), device=fresh.devices[0],
                ip=fresh.ip, ip_country=fresh.country, card=fresh.cards[0],
                extra={"promo_code": "WELCOME"} if r.random() < 0.5 else None), False, NORMAL))
    out.sort(key=lambda e: (e.at, e.event["customer_id"]))
    return out


def _normal_day(g: _Generator, people: list[_Customer], midnight: datetime) -> Iterator[LabelledEvent]:
    r = g.rng
    for c in people:
        if c.created > midnight:
            continue
        n = sum(1 for _ in range(3) if r.random() < c.rate / 3)
        for _ in range(n):
            hour = min(23, max(0, int(r.gauss(c.hour, 2.5))))
            at = midnight + timedelta(hours=hour, minutes=r.uniform(0, 59.9))
            device, ip, ip_country = r.choice(c.devices), c.ip, c.country
            if r.random() < 0.03:  # travelling: a foreign IP, same habits
                ip_country = r.choice([x for x, _, _ in COUNTRIES if x != c.country])
                ip = g.ip(ip_country)
            if r.random() < 0.02:  # a new phone
                device = g.next_id("dev")
                c.devices.append(device)
            amount = int(c.median * r.lognormvariate(0, 0.5))
            if r.random() < 0.01:  # a rare big purchase
                amount *= r.randrange(4, 10)
            yield LabelledEvent(at, "payment", g.event(c, at, amount=amount, device=device, ip=ip,
                                                       ip_country=ip_country, card=r.choice(c.cards)), False, NORMAL)


def _attacks(g: _Generator, people: list[_Customer], rings: list[list[_Customer]],
             ring_assets: list[tuple[list[str], list[str]]], midnight: datetime, rate: float) -> list[LabelledEvent]:
    r = g.rng
    out: list[LabelledEvent] = []
    if r.random() < 0.35 * rate:  # card testing
        country = r.choice(FOREIGN)
        device, ip = g.next_id("dev"), g.ip(country)
        at = midnight + timedelta(hours=r.uniform(0, 24))
        merchant = r.choice(g.merchants)
        for _ in range(r.randrange(12, 35)):
            at += timedelta(seconds=r.uniform(5, 60))
            guest = g.customer(at, country=r.choice([x for x, _, _ in COUNTRIES]))
            out.append(LabelledEvent(at, "payment", g.event(
                guest, at, amount=r.randrange(50, 300), device=device, ip=ip, ip_country=country,
                card=g.next_id("card"), card_country=r.choice([x for x, _, _ in COUNTRIES]), merchant=merchant),
                True, "card_testing"))
    for _ in range(sum(1 for _ in range(2) if r.random() < 0.5 * rate)):  # account takeover
        old = [c for c in people[:200] if (midnight - c.created).days > 180]
        if not old:
            break
        victim = r.choice(old)
        country = r.choice(FOREIGN)
        device, ip = g.next_id("dev"), g.ip(country)
        at = midnight + timedelta(hours=r.choice((1, 2, 3, 4, 5)), minutes=r.uniform(0, 59))
        for _ in range(r.randrange(1, 4)):
            at += timedelta(minutes=r.uniform(1, 20))
            out.append(LabelledEvent(at, "payment", g.event(
                victim, at, amount=victim.median * r.randrange(5, 25), device=device, ip=ip, ip_country=country,
                card=victim.cards[0]), True, "account_takeover"))
    if r.random() < 0.3 * rate:  # promotion abuse
        country = g.country()
        device, ip, phone = g.next_id("dev"), g.ip(country), f"+{r.randrange(10**9, 10**10)}"
        at = midnight + timedelta(hours=r.uniform(8, 22))
        for _ in range(r.randrange(5, 12)):
            at += timedelta(minutes=r.uniform(2, 15))
            fresh = g.customer(at - timedelta(minutes=1), country=country)
            out.append(LabelledEvent(at, "payment", g.event(
                fresh, at, amount=r.randrange(500, 2000), device=device, ip=ip, ip_country=country,
                card=g.next_id("card"), phone=phone, extra={"promo_code": "WELCOME"}), True, "promotion_abuse"))
    for ring, (devices, ips) in zip(rings, ring_assets, strict=True):  # mule rings
        if r.random() < 0.4 * rate:
            at = midnight + timedelta(hours=r.uniform(0, 20))
            for member in r.sample(ring, k=min(len(ring), r.randrange(2, 5))):
                at += timedelta(minutes=r.uniform(5, 90))
                out.append(LabelledEvent(at, "payment", g.event(
                    member, at, amount=r.randrange(20_000, 150_000), device=r.choice(devices), ip=r.choice(ips),
                    ip_country=member.country, card=member.cards[0]), True, "mule_ring"))
    return out
