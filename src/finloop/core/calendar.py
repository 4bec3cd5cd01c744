"""Business time: a tenant's timezone and daily cut-off decide an event's business date, and a
business-day calendar (weekends plus configured holidays) answers T+n questions.

An event at or after the cut-off belongs to the next calendar day's business; a business date that is
not a business day rolls forward to the next one. Pure code: no I/O.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from finloop.core.errors import InvalidRequest


def zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise InvalidRequest(f"Unknown timezone {name!r}.", code="unknown_timezone", param="timezone") from exc


@dataclass(frozen=True)
class BusinessCalendar:
    timezone: str = "UTC"
    cutoff: time = time(0, 0)
    weekend: frozenset[int] = frozenset({5, 6})  # Monday is 0
    holidays: frozenset[date] = field(default_factory=frozenset)

    @classmethod
    def build(cls, timezone: str, cutoff: time, holidays: Iterable[date] = (),
              weekend: Iterable[int] = (5, 6)) -> BusinessCalendar:
        zone(timezone)
        return cls(timezone=timezone, cutoff=cutoff, weekend=frozenset(weekend), holidays=frozenset(holidays))

    def is_business_day(self, day: date) -> bool:
        return day.weekday() not in self.weekend and day not in self.holidays

    def next_business_day(self, day: date) -> date:
        """``day`` itself when it is a business day, else the next one."""
        for _ in range(3660):
            if self.is_business_day(day):
                return day
            day += timedelta(days=1)
        raise InvalidRequest("Calendar has no business day within ten years.", code="calendar_exhausted")

    def local_date(self, at: datetime) -> date:
        """The calendar date of an instant in the tenant's zone, shifted by the cut-off.

        It never goes backwards: when clocks are set back over the cut-off (or over midnight), the
        repeated wall times after the day closed stay in the next day.
        """
        if at.tzinfo is None:
            raise ValueError("business time needs an aware datetime")
        local = at.astimezone(zone(self.timezone))
        day = local.date()
        if self.cutoff != time(0, 0) and local.time() >= self.cutoff:
            day += timedelta(days=1)
        if local.fold and at >= self.day_closes_at(day):
            day += timedelta(days=1)
        return day

    def business_date(self, at: datetime) -> date:
        """The business date an event at ``at`` is booked on."""
        return self.next_business_day(self.local_date(at))

    def add_business_days(self, day: date, n: int) -> date:
        """T+n: the n-th business day after ``day`` (T+0 is ``day`` rolled to a business day)."""
        if n < 0:
            raise InvalidRequest("T+n needs n >= 0.", code="invalid_offset", param="n")
        current = self.next_business_day(day)
        for _ in range(n):
            current = self.next_business_day(current + timedelta(days=1))
        return current

    def business_days_between(self, start: date, end: date) -> int:
        """How many business days lie in (start, end]."""
        count, day = 0, start
        while day < end:
            day += timedelta(days=1)
            if self.is_business_day(day):
                count += 1
        return count

    def day_closes_at(self, business_day: date) -> datetime:
        """The UTC instant at which ``business_day`` is over: the first moment its zone's wall clock
        reads the cut-off (midnight of the next day without one)."""
        if self.cutoff == time(0, 0):
            return _first_instant_at(datetime.combine(business_day + timedelta(days=1), time(0, 0)),
                                     zone(self.timezone))
        return _first_instant_at(datetime.combine(business_day, self.cutoff), zone(self.timezone))


def _first_instant_at(wall: datetime, tz: ZoneInfo) -> datetime:
    """The first UTC instant at which the wall clock of ``tz`` reads ``wall`` or later.

    Usually ``wall`` itself, at its first occurrence when clocks are set back (fold 0). When clocks
    jump over ``wall`` it never appears, and the answer is the moment of the jump: fold 0 reads
    ``wall`` with the offset before the jump (an instant after it), fold 1 with the offset after
    (an instant before it), and the jump is found between them.
    """
    after = wall.replace(tzinfo=tz, fold=0).astimezone(UTC)
    if after.astimezone(tz).replace(tzinfo=None) == wall:
        return after
    before = wall.replace(tzinfo=tz, fold=1).astimezone(UTC)
    while after - before > timedelta(microseconds=1):
        middle = before + (after - before) / 2
        if middle.astimezone(tz).replace(tzinfo=None) >= wall:
            after = middle
        else:
            before = middle
    return after
