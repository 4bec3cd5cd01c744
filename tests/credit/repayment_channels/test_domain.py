"""Pure rules of the repayment channels: the retry policy's checks, when the next attempt may run, the debit's
amount and the debit state machine."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from finloop.core.errors import InvalidRequest
from finloop.credit.repayment_channels.domain import (
    DEFAULT_POLICY,
    DebitStatus,
    RetryPolicy,
    can_move_debit,
    check_policy,
    debit_amount,
    next_retry_at,
)

START = datetime(2026, 4, 2, 8, 0, tzinfo=UTC)


def test_the_default_policy_retries_the_same_day_the_next_day_and_three_days_later() -> None:
    assert check_policy({}) == DEFAULT_POLICY
    assert [next_retry_at(DEFAULT_POLICY, attempt_number=n, cycle_started_at=START, failed_at=START)
            for n in (1, 2, 3, 4)] == [START + timedelta(hours=4), START + timedelta(days=1),
                                       START + timedelta(days=3), None]


def test_fewer_attempts_keep_the_start_of_the_default_ladder() -> None:
    assert check_policy({"max_attempts": 2}).retry_offsets_hours == (4,)
    assert check_policy({"max_attempts": 1}).retry_offsets_hours == ()


@pytest.mark.parametrize(("data", "code", "param"), [
    ({"enabled": "yes"}, "invalid_policy", "enabled"),
    ({"max_attempts": 0}, "invalid_max_attempts", "max_attempts"),
    ({"max_attempts": 11}, "invalid_max_attempts", "max_attempts"),
    ({"max_attempts": True}, "invalid_max_attempts", "max_attempts"),
    ({"max_attempts": 3, "retry_offsets_hours": [4]}, "invalid_retry_offsets", "retry_offsets_hours"),
    ({"max_attempts": 3, "retry_offsets_hours": [24, 4]}, "invalid_retry_offsets", "retry_offsets_hours"),
    ({"max_attempts": 3, "retry_offsets_hours": [4, 4]}, "invalid_retry_offsets", "retry_offsets_hours"),
    ({"max_attempts": 2, "retry_offsets_hours": [0]}, "invalid_retry_offsets", "retry_offsets_hours"),
    ({"max_attempts": 2, "retry_offsets_hours": [4.5]}, "invalid_retry_offsets", "retry_offsets_hours"),
    ({"max_attempts": 5}, "invalid_retry_offsets", "retry_offsets_hours"),
])
def test_a_bad_policy_names_its_field(data: dict[str, object], code: str, param: str) -> None:
    with pytest.raises(InvalidRequest) as refused:
        check_policy(data)
    assert (refused.value.code, refused.value.param) == (code, param)


@given(offsets=st.lists(st.integers(1, 720), min_size=0, max_size=9, unique=True).map(sorted),
       delays=st.lists(st.integers(0, 2000), min_size=10, max_size=10))
def test_failing_forever_makes_at_most_max_attempts_never_earlier_than_planned(offsets: list[int],
                                                                                delays: list[int]) -> None:
    policy = RetryPolicy(True, len(offsets) + 1, tuple(offsets))
    attempts, now = [START], START
    while True:
        failed_at = now + timedelta(minutes=delays[len(attempts) - 1])
        after = next_retry_at(policy, attempt_number=len(attempts), cycle_started_at=START, failed_at=failed_at)
        if after is None:
            break
        assert after >= failed_at and after >= START + timedelta(hours=offsets[len(attempts) - 1])
        attempts.append(after)
        now = after
    assert len(attempts) == policy.max_attempts
    assert attempts == sorted(attempts)


@given(due=st.integers(-10, 10**12), cap=st.none() | st.integers(1, 10**12))
def test_a_debit_asks_for_the_amount_due_capped_by_the_mandate(due: int, cap: int | None) -> None:
    asked = debit_amount(due, cap)
    assert 0 <= asked <= max(due, 0)
    assert asked == (0 if due <= 0 else min(due, cap) if cap is not None else due)


def test_a_finished_debit_never_moves_again() -> None:
    assert can_move_debit("pending", DebitStatus.PROCESSING) and can_move_debit("processing", DebitStatus.SUCCEEDED)
    for final in ("succeeded", "failed"):
        assert not any(can_move_debit(final, target) for target in DebitStatus)
    assert not can_move_debit("processing", DebitStatus.PENDING)
