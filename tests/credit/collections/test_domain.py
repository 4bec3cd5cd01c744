"""Pure collections rules: the strategy's validation and defaults, actions over a range of days past due (the
union over any split of the range), promise evaluation, reminder windows that partition the days between runs,
the bureau status code and cycle bounds."""

from __future__ import annotations

from datetime import date, timedelta
from itertools import pairwise
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from finloop.core.errors import Conflict, InvalidRequest
from finloop.credit.collections.domain import (
    DEFAULT_STRATEGY,
    ActionKind,
    CaseStatus,
    PromiseStatus,
    ReminderKind,
    actions_on,
    bucket_range,
    bureau_status,
    check_case_transition,
    check_promise,
    check_strategy,
    cycle_bounds,
    due_actions,
    evaluate_promise,
    reminder_window,
)
from finloop.credit.servicing.domain import Bucket, bucket_for

SMS, CALL, ESCALATE = ActionKind.SMS, ActionKind.CALL, ActionKind.ESCALATE


def test_bucket_ranges_follow_the_servicing_buckets() -> None:
    assert [bucket_range(b) for b in (Bucket.M1, Bucket.M2, Bucket.M3, Bucket.M4)] == [
        (1, 30), (31, 60), (61, 90), (91, 720)]


def test_the_default_strategy_texts_in_m1_calls_weekly_in_m2_and_escalates_from_m3() -> None:
    acting = {dpd: set(actions_on(DEFAULT_STRATEGY, dpd)) for dpd in range(100)}
    assert [dpd for dpd, kinds in acting.items() if SMS in kinds] == [1, 7, 15, 25, 31, 45]
    assert [dpd for dpd, kinds in acting.items() if CALL in kinds] == [31, 38, 45, 52, 59]
    assert all(kinds == {ESCALATE} for dpd, kinds in acting.items() if dpd > 60)
    assert acting[0] == set()


@pytest.mark.parametrize(("rules", "param"), [
    ({"M5": {}}, "rules.M5"),
    ({"M1": []}, "rules.M1"),
    ({"M1": {"sms_on_dpd": [0]}}, "rules.M1.sms_on_dpd"),
    ({"M2": {"sms_on_dpd": [30]}}, "rules.M2.sms_on_dpd"),
    ({"M1": {"sms_on_dpd": [True]}}, "rules.M1.sms_on_dpd"),
    ({"M1": {"sms_on_dpd": "1"}}, "rules.M1.sms_on_dpd"),
    ({"M1": {"call_every_days": 0}}, "rules.M1.call_every_days"),
    ({"M1": {"sms_every_days": 91}}, "rules.M1.sms_every_days"),
    ({"M1": {"escalate": "yes"}}, "rules.M1.escalate"),
    ({"M1": {"text": True}}, "rules.M1.text"),
])
def test_a_bad_strategy_is_refused_with_its_field(rules: dict[str, Any], param: str) -> None:
    with pytest.raises(InvalidRequest) as bad:
        check_strategy(rules)
    assert (bad.value.code, bad.value.param) == ("invalid_strategy", param)


def test_a_strategy_round_trips_through_json() -> None:
    assert check_strategy(DEFAULT_STRATEGY.to_json()) == DEFAULT_STRATEGY


rules_st = st.fixed_dictionaries({}, optional={
    bucket: st.fixed_dictionaries({}, optional={
        "sms_on_dpd": st.lists(st.integers(*bucket_range(Bucket(bucket))), max_size=5),
        "sms_every_days": st.none() | st.integers(1, 90),
        "call_every_days": st.none() | st.integers(1, 90),
        "escalate": st.booleans()})
    for bucket in ("M1", "M2", "M3", "M4")})


@given(rules_st, st.integers(0, 200), st.integers(0, 200), st.integers(0, 200))
def test_actions_over_a_range_are_the_union_over_any_split(rules: dict[str, Any], a: int, b: int, c: int) -> None:
    strategy = check_strategy(rules)
    low, mid, high = sorted((a, b, c))
    whole = due_actions(strategy, low, high)
    assert whole == due_actions(strategy, low, mid) | due_actions(strategy, mid, high)
    assert whole == frozenset().union(*(actions_on(strategy, d) for d in range(low + 1, high + 1)))


@given(rules_st, st.integers(1, 200))
def test_a_day_acts_by_its_own_buckets_rule(rules: dict[str, Any], dpd: int) -> None:
    strategy = check_strategy(rules)
    rule = strategy.rule(bucket_for(dpd).value)
    kinds = actions_on(strategy, dpd)
    assert (ESCALATE in kinds) == rule.escalate
    if not rule.sms_on_dpd and rule.sms_every_days is None:
        assert SMS not in kinds
    if rule.call_every_days is None:
        assert CALL not in kinds


def test_case_transitions_are_one_way() -> None:
    check_case_transition("open", CaseStatus.CURED)
    check_case_transition("open", CaseStatus.WRITTEN_OFF)
    for current, target in (("cured", CaseStatus.OPEN), ("written_off", CaseStatus.CURED),
                            ("cured", CaseStatus.WRITTEN_OFF)):
        with pytest.raises(Conflict):
            check_case_transition(current, target)


TODAY = date(2026, 3, 2)


@given(st.integers(1, 10**6), st.integers(0, 60), st.integers(0, 2 * 10**6), st.integers(-5, 90))
def test_a_promise_is_kept_iff_paid_and_broken_only_after_its_date(amount: int, ahead: int, paid: int,
                                                                   offset: int) -> None:
    promised_on = TODAY + timedelta(days=ahead)
    today = promised_on + timedelta(days=offset)
    status = evaluate_promise(amount, promised_on, paid, today)
    assert (status is PromiseStatus.KEPT) == (paid >= amount)
    assert (status is PromiseStatus.BROKEN) == (paid < amount and today > promised_on)
    # Paying more never turns a kept promise back.
    if status is PromiseStatus.KEPT:
        assert evaluate_promise(amount, promised_on, paid + 1, today) is PromiseStatus.KEPT


@pytest.mark.parametrize(("amount", "promised_on", "code"), [
    (0, TODAY, "invalid_amount"), (1.5, TODAY, "invalid_amount"), (10**16, TODAY, "invalid_amount"),
    (1, TODAY - timedelta(days=1), "invalid_promise_date"), (1, TODAY + timedelta(days=61), "invalid_promise_date"),
])
def test_a_bad_promise_is_refused(amount: Any, promised_on: date, code: str) -> None:
    with pytest.raises(InvalidRequest) as bad:
        check_promise(amount, promised_on, TODAY)
    assert bad.value.code == code


def test_a_promise_may_fall_today_or_sixty_days_ahead() -> None:
    assert check_promise(1, TODAY, TODAY) == (1, TODAY)
    assert check_promise(5, TODAY + timedelta(days=60), TODAY) == (5, TODAY + timedelta(days=60))


@given(st.lists(st.integers(1, 4), min_size=2, max_size=30), st.sampled_from(list(ReminderKind)))
def test_reminder_windows_of_consecutive_runs_partition_the_days(gaps: list[int], kind: ReminderKind) -> None:
    runs = [TODAY]
    for gap in gaps:
        runs.append(runs[-1] + timedelta(days=gap))
    covered: list[date] = []
    for day, following in pairwise(runs):
        first, last = reminder_window(kind, day, following)
        covered.extend(first + timedelta(days=i) for i in range((last - first).days + 1))
    assert covered == sorted(set(covered))  # no day twice
    lead = timedelta(days=3 if kind is ReminderKind.UPCOMING else 0)
    span = (runs[-1] - runs[0]).days
    assert covered == [runs[0] + lead + timedelta(days=i) for i in range(1, span + 1)]  # and none missed


def test_the_upcoming_reminder_is_three_days_ahead_and_the_due_one_for_the_next_day() -> None:
    friday, monday = date(2026, 3, 6), date(2026, 3, 9)
    assert reminder_window(ReminderKind.DUE, friday, monday) == (date(2026, 3, 7), monday)
    assert reminder_window(ReminderKind.UPCOMING, friday, monday) == (date(2026, 3, 10), date(2026, 3, 12))


def test_bureau_status_codes() -> None:
    assert [bureau_status("performing", "M0"), bureau_status("overdue", "M1"), bureau_status("overdue", "M4"),
            bureau_status("paid_off", "M0"), bureau_status("written_off", "M4")] == ["0", "1", "4", "C", "W"]


def test_cycle_bounds_cover_the_month() -> None:
    assert cycle_bounds("2026-02") == (date(2026, 2, 1), date(2026, 2, 28))
    assert cycle_bounds("2026-12") == (date(2026, 12, 1), date(2026, 12, 31))
