"""Business time: timezones, cut-offs, weekends, holidays and T+n."""

from __future__ import annotations

import itertools
from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from finloop.core.calendar import BusinessCalendar
from finloop.core.errors import InvalidRequest

SHANGHAI = BusinessCalendar.build("Asia/Shanghai", time(23, 0))
UTC_MIDNIGHT = BusinessCalendar.build("UTC", time(0, 0))
#: 2026-03-02 is a Monday; 2026-03-06 a Friday.
MONDAY = date(2026, 3, 2)
FRIDAY = date(2026, 3, 6)


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)  # type: ignore[misc]


# ---------------------------------------------------------------------------------------------- business dates


def test_event_after_the_shanghai_cutoff_is_the_next_local_day() -> None:
    # 15:30 UTC is 23:30 in Shanghai, past the 23:00 cut-off: Tuesday's business.
    assert SHANGHAI.local_date(utc(2026, 3, 2, 15, 30)) == date(2026, 3, 3)
    assert SHANGHAI.business_date(utc(2026, 3, 2, 15, 30)) == date(2026, 3, 3)


def test_event_before_the_shanghai_cutoff_is_the_same_local_day() -> None:
    assert SHANGHAI.business_date(utc(2026, 3, 2, 14, 59)) == MONDAY


def test_event_exactly_at_the_cutoff_belongs_to_the_next_day() -> None:
    assert SHANGHAI.business_date(utc(2026, 3, 2, 15, 0)) == date(2026, 3, 3)


def test_event_after_local_midnight_but_before_utc_midnight_is_the_local_day() -> None:
    # 17:00 UTC Monday is 01:00 Tuesday in Shanghai.
    assert SHANGHAI.business_date(utc(2026, 3, 2, 17, 0)) == date(2026, 3, 3)
    assert UTC_MIDNIGHT.business_date(utc(2026, 3, 2, 17, 0)) == MONDAY


def test_friday_evening_after_the_cutoff_rolls_to_monday() -> None:
    assert SHANGHAI.business_date(utc(2026, 3, 6, 15, 30)) == date(2026, 3, 9)


def test_weekend_event_rolls_forward_to_monday() -> None:
    assert UTC_MIDNIGHT.business_date(utc(2026, 3, 7, 12, 0)) == date(2026, 3, 9)
    assert UTC_MIDNIGHT.business_date(utc(2026, 3, 8, 23, 59)) == date(2026, 3, 9)


def test_holiday_rolls_forward_past_it_and_the_weekend() -> None:
    calendar = BusinessCalendar.build("UTC", time(0, 0), holidays=[FRIDAY, date(2026, 3, 9)])
    assert calendar.business_date(utc(2026, 3, 6, 10, 0)) == date(2026, 3, 10)


def test_custom_weekend_is_respected() -> None:
    # A Friday-Saturday weekend: Sunday is a business day.
    calendar = BusinessCalendar.build("Asia/Dubai", time(0, 0), weekend=[4, 5])
    assert calendar.business_date(utc(2026, 3, 6, 10, 0)) == date(2026, 3, 8)
    assert calendar.is_business_day(date(2026, 3, 8))


def test_naive_datetime_is_refused() -> None:
    with pytest.raises(ValueError, match="aware"):
        SHANGHAI.business_date(datetime(2026, 3, 2, 12, 0))


def test_unknown_timezone_is_refused() -> None:
    with pytest.raises(InvalidRequest) as caught:
        BusinessCalendar.build("Mars/Olympus", time(0, 0))
    assert (caught.value.code, caught.value.param) == ("unknown_timezone", "timezone")


def test_calendar_without_business_days_is_refused() -> None:
    calendar = BusinessCalendar.build("UTC", time(0, 0), weekend=range(7))
    with pytest.raises(InvalidRequest) as caught:
        calendar.next_business_day(MONDAY)
    assert caught.value.code == "calendar_exhausted"


# ---------------------------------------------------------------------------------------------- T+n


def test_t_plus_zero_of_a_business_day_is_that_day() -> None:
    assert UTC_MIDNIGHT.add_business_days(MONDAY, 0) == MONDAY


def test_t_plus_zero_of_a_saturday_is_monday() -> None:
    assert UTC_MIDNIGHT.add_business_days(date(2026, 3, 7), 0) == date(2026, 3, 9)


def test_t_plus_one_over_a_weekend() -> None:
    assert UTC_MIDNIGHT.add_business_days(FRIDAY, 1) == date(2026, 3, 9)
    assert UTC_MIDNIGHT.add_business_days(date(2026, 3, 7), 1) == date(2026, 3, 10)


def test_t_plus_n_over_a_holiday() -> None:
    calendar = BusinessCalendar.build("UTC", time(0, 0), holidays=[date(2026, 3, 9)])
    assert calendar.add_business_days(FRIDAY, 1) == date(2026, 3, 10)
    assert calendar.add_business_days(date(2026, 3, 5), 2) == date(2026, 3, 10)


def test_t_plus_five_is_a_week_later() -> None:
    assert UTC_MIDNIGHT.add_business_days(MONDAY, 5) == date(2026, 3, 9)


def test_negative_offset_is_refused() -> None:
    with pytest.raises(InvalidRequest) as caught:
        UTC_MIDNIGHT.add_business_days(MONDAY, -1)
    assert caught.value.code == "invalid_offset"


def test_business_days_between_counts_the_half_open_range() -> None:
    assert UTC_MIDNIGHT.business_days_between(FRIDAY, date(2026, 3, 9)) == 1
    assert UTC_MIDNIGHT.business_days_between(MONDAY, MONDAY) == 0
    assert UTC_MIDNIGHT.business_days_between(MONDAY, date(2026, 3, 16)) == 10


# ---------------------------------------------------------------------------------------------- closing time


def test_day_closes_at_the_cutoff_in_the_tenant_zone() -> None:
    assert SHANGHAI.day_closes_at(MONDAY) == utc(2026, 3, 2, 15, 0)


def test_day_without_cutoff_closes_at_the_next_local_midnight() -> None:
    assert UTC_MIDNIGHT.day_closes_at(MONDAY) == utc(2026, 3, 3, 0, 0)
    tokyo = BusinessCalendar.build("Asia/Tokyo", time(0, 0))
    assert tokyo.day_closes_at(MONDAY) == utc(2026, 3, 2, 15, 0)


def test_cutoff_in_a_spring_forward_gap_closes_the_day_when_the_clocks_jump() -> None:
    # New York skips 02:00-03:00 on 2026-03-08 (07:00 UTC); a 02:30 cut-off first passes at the jump.
    calendar = BusinessCalendar.build("America/New_York", time(2, 30))
    closes = calendar.day_closes_at(date(2026, 3, 8))
    assert closes == utc(2026, 3, 8, 7, 0)
    assert calendar.local_date(closes - timedelta(microseconds=1)) == date(2026, 3, 8)
    assert calendar.local_date(closes) == date(2026, 3, 9)


def test_cutoff_in_a_repeated_hour_closes_the_day_at_its_first_occurrence() -> None:
    # New York repeats 01:00-02:00 on 2026-11-01: 01:30 EDT is 05:30 UTC, 01:30 EST is 06:30 UTC.
    calendar = BusinessCalendar.build("America/New_York", time(1, 30))
    assert calendar.day_closes_at(date(2026, 11, 1)) == utc(2026, 11, 1, 5, 30)
    # 01:15 EST comes after the day closed at 01:30 EDT: it is the next day's business, not back in the old one.
    assert calendar.local_date(utc(2026, 11, 1, 6, 15)) == date(2026, 11, 2)


def test_midnight_skipped_by_the_clocks_closes_the_day_at_the_jump() -> None:
    # Santiago jumps from 00:00 to 01:00 on 2026-09-06 (04:00 UTC), and back from 24:00 to 23:00 on
    # 2026-04-04 (03:00 UTC), which makes that Saturday 25 hours long.
    calendar = BusinessCalendar.build("America/Santiago", time(0, 0), weekend=[])
    assert calendar.day_closes_at(date(2026, 9, 5)) == utc(2026, 9, 6, 4, 0)
    assert calendar.day_closes_at(date(2026, 4, 4)) == utc(2026, 4, 5, 4, 0)
    assert calendar.local_date(utc(2026, 4, 5, 3, 30)) == date(2026, 4, 4)
    assert calendar.local_date(utc(2026, 4, 5, 4, 0)) == date(2026, 4, 5)


# ---------------------------------------------------------------------------------------------- properties

days = st.dates(min_value=date(2000, 1, 1), max_value=date(2060, 12, 31))
offsets = st.integers(min_value=0, max_value=400)


ZONES = ["UTC", "Asia/Shanghai", "Asia/Kolkata", "America/New_York", "Europe/London", "Australia/Lord_Howe",
         "America/Santiago"]
cutoffs = st.one_of(st.sampled_from([time(0, 0), time(0, 30), time(1, 30), time(2, 30), time(23, 0)]),
                    st.builds(time, st.integers(min_value=0, max_value=23), st.integers(min_value=0, max_value=59)))


@lru_cache
def offset_changes(timezone: str) -> list[datetime]:
    """The hours of 2026 at whose start the zone's UTC offset differs from the hour before."""
    tz = ZoneInfo(timezone)
    hours = [utc(2026, 1, 1) + timedelta(hours=h) for h in range(366 * 24)]
    return [b for a, b in itertools.pairwise(hours) if a.astimezone(tz).utcoffset() != b.astimezone(tz).utcoffset()]


@st.composite
def calendars(draw: st.DrawFn, timezone: str | None = None, cutoff: time | None = None) -> BusinessCalendar:
    weekend = draw(st.sets(st.integers(min_value=0, max_value=6), max_size=3))
    start = draw(days)
    holidays = draw(st.sets(st.dates(min_value=start, max_value=start + timedelta(days=60)), max_size=15))
    return BusinessCalendar.build(timezone or draw(st.sampled_from(ZONES)), cutoff or draw(cutoffs), holidays,
                                  weekend)


@st.composite
def calendar_and_instant(draw: st.DrawFn) -> tuple[BusinessCalendar, datetime]:
    """A calendar and an instant; mostly within hours of a daylight-saving change of the calendar's
    zone, with a cut-off at a wall time near the change, where wall clocks skip or repeat it."""
    timezone = draw(st.sampled_from(ZONES))
    changes = offset_changes(timezone)
    if not changes or draw(st.integers(min_value=0, max_value=3)) == 0:
        at = draw(st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2060, 1, 1),
                               timezones=st.just(UTC)))
        return draw(calendars(timezone)), at
    change = draw(st.sampled_from(changes))
    near = (change + timedelta(minutes=draw(st.integers(min_value=-90, max_value=90)))).astimezone(ZoneInfo(timezone))
    cutoff = draw(st.one_of(st.just(time(near.hour, near.minute)), cutoffs))
    at = change + timedelta(seconds=draw(st.integers(min_value=-3 * 3600, max_value=3 * 3600)))
    return draw(calendars(timezone, cutoff)), at


@given(calendar=calendars(), day=days, n=offsets)
def test_add_business_days_lands_on_a_business_day(calendar: BusinessCalendar, day: date, n: int) -> None:
    result = calendar.add_business_days(day, n)
    assert calendar.is_business_day(result)
    assert result >= day
    assert calendar.business_days_between(calendar.add_business_days(day, 0), result) == n


@given(calendar=calendars(), day=days, n=offsets)
def test_add_business_days_is_strictly_increasing_in_n(calendar: BusinessCalendar, day: date, n: int) -> None:
    assert calendar.add_business_days(day, n) < calendar.add_business_days(day, n + 1)


@given(case=calendar_and_instant())
def test_business_date_is_a_business_day_on_or_after_the_local_date(
        case: tuple[BusinessCalendar, datetime]) -> None:
    calendar, at = case
    booked = calendar.business_date(at)
    assert calendar.is_business_day(booked)
    assert booked >= calendar.local_date(at) >= at.astimezone(UTC).date() - timedelta(days=1)


@given(case=calendar_and_instant(), later=st.integers(min_value=0, max_value=4 * 3600))
def test_business_date_never_goes_backwards(case: tuple[BusinessCalendar, datetime], later: int) -> None:
    calendar, at = case
    assert calendar.local_date(at) <= calendar.local_date(at + timedelta(seconds=later))
    assert calendar.business_date(at) <= calendar.business_date(at + timedelta(seconds=later))


@given(case=calendar_and_instant())
def test_local_date_is_the_day_whose_window_holds_the_instant(case: tuple[BusinessCalendar, datetime]) -> None:
    calendar, at = case
    day = calendar.local_date(at)
    assert calendar.day_closes_at(day - timedelta(days=1)) <= at < calendar.day_closes_at(day)
