from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from finloop.core.errors import Conflict
from finloop.payouts.models import PayoutSchedule
from finloop.payouts.service import schedule_due
from finloop.payouts.state import HOLDING, TERMINAL, TRANSITIONS, PayoutStatus, check_move


def test_transition_table() -> None:
    assert set(TRANSITIONS) == set(PayoutStatus)
    assert {PayoutStatus.FAILED, PayoutStatus.RETURNED, PayoutStatus.CANCELED} == TERMINAL
    assert not HOLDING & (TERMINAL | {PayoutStatus.SUCCEEDED})
    check_move("approved", PayoutStatus.PROCESSING, "mpo_1")
    check_move("processing", PayoutStatus.APPROVED, "mpo_1")  # a retry goes back to the queue
    for current, target in [("processing", PayoutStatus.CANCELED), ("succeeded", PayoutStatus.FAILED),
                            ("failed", PayoutStatus.APPROVED), ("pending_approval", PayoutStatus.PROCESSING)]:
        with pytest.raises(Conflict) as caught:
            check_move(current, target, "mpo_1")
        assert caught.value.code == "payout_state_conflict"


def schedule(interval: str, weekday: int | None = None, last_run_on: date | None = None) -> PayoutSchedule:
    return PayoutSchedule(interval=interval, weekday=weekday, last_run_on=last_run_on,
                          created_at=datetime(2026, 3, 2, 9, tzinfo=UTC))  # a Monday


def test_schedule_due() -> None:
    monday, tuesday, friday = date(2026, 3, 2), date(2026, 3, 3), date(2026, 3, 6)
    assert schedule_due(schedule("daily"), monday)
    assert not schedule_due(schedule("daily", last_run_on=monday), monday)
    assert schedule_due(schedule("daily", last_run_on=monday), tuesday)
    # Weekly on Friday: due that Friday, not before, once.
    weekly = schedule("weekly", weekday=4)
    assert not schedule_due(weekly, monday) and not schedule_due(weekly, tuesday)
    assert schedule_due(weekly, friday)
    assert not schedule_due(schedule("weekly", weekday=4, last_run_on=friday), date(2026, 3, 9))
    # Weekly on Saturday (not a business day): paid on the next business day.
    assert schedule_due(schedule("weekly", weekday=5), date(2026, 3, 9))
    assert schedule_due(schedule("threshold"), monday)
    assert not schedule_due(schedule("manual"), monday)


@settings(max_examples=60, deadline=None)
@given(st.integers(0, 6), st.sets(st.integers(0, 55), max_size=20))
def test_weekly_pays_once_in_every_week_that_has_a_business_day(weekday: int, holidays: set[int]) -> None:
    start = date(2026, 3, 2)  # Monday, the schedule's creation day
    plan = schedule("weekly", weekday=weekday)
    paid: list[date] = []
    for offset in range(56):
        day = start + timedelta(days=offset)
        if day.weekday() >= 5 or offset in holidays:
            continue
        if schedule_due(plan, day):
            paid.append(day)
            plan.last_run_on = day
    # Windows run from one occurrence of the weekday to the next; the first starts at the first occurrence.
    first = start + timedelta(days=(weekday - start.weekday()) % 7)
    windows: dict[int, list[date]] = {}
    for day in paid:
        assert day >= first
        windows.setdefault((day - first).days // 7, []).append(day)
    assert all(len(days) == 1 for days in windows.values())
    for index in range(8):
        begin = first + timedelta(days=7 * index)
        business = [begin + timedelta(days=i) for i in range(7)
                    if (begin + timedelta(days=i)).weekday() < 5
                    and (begin + timedelta(days=i) - start).days not in holidays
                    and (begin + timedelta(days=i) - start).days < 56]
        assert (index in windows) == bool(business)
