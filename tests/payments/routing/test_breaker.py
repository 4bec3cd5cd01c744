"""The circuit breaker state machine, driven by outcomes and the clock."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from finloop.payments.routing.domain import Breaker, BreakerBoard, BreakerSettings, BreakerState

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
SETTINGS = BreakerSettings(window_size=10, error_rate=0.5, min_calls=6, consecutive_failures=4, cooldown_seconds=30,
                           probe_share=0.1, probe_successes=2)


def breaker() -> Breaker:
    return Breaker("a", SETTINGS)


def test_k_consecutive_failures_open_the_breaker():
    b = breaker()
    assert [b.feed("failure", T0) for _ in range(3)] == [[], [], []]
    (transition,) = b.feed("unknown", T0)  # unknown counts as a failure
    assert (transition.from_state, transition.to_state) == (BreakerState.CLOSED, BreakerState.OPEN)
    assert transition.reason == "4 consecutive failures"
    assert b.state_at(T0) is BreakerState.OPEN


def test_declines_count_as_the_channel_working():
    b = breaker()
    for _ in range(50):
        assert b.feed("decline", T0) == []
    assert b.state_at(T0) is BreakerState.CLOSED and b.error_rate() == 0.0


def test_error_rate_over_the_window_opens_the_breaker_once_there_are_enough_calls():
    b = breaker()
    outcomes = ["failure", "success", "failure", "success", "failure"]
    assert all(b.feed(o, T0) == [] for o in outcomes)  # 3 of 5 failed, but fewer than min_calls
    (transition,) = b.feed("success", T0) or b.feed("failure", T0)
    assert transition.to_state is BreakerState.OPEN and "error rate" in transition.reason


def test_error_rate_below_the_threshold_keeps_it_closed():
    b = breaker()
    for i in range(100):
        assert b.feed("failure" if i % 3 == 0 else "success", T0) == []
    assert b.state_at(T0) is BreakerState.CLOSED


def test_open_turns_half_open_after_the_cool_down_and_outcomes_before_it_prove_nothing():
    b = breaker()
    for _ in range(4):
        b.feed("failure", T0)
    assert b.feed("success", T0 + timedelta(seconds=10)) == []  # a late result of an earlier call
    assert b.state_at(T0 + timedelta(seconds=29)) is BreakerState.OPEN
    assert b.state_at(T0 + timedelta(seconds=30)) is BreakerState.HALF_OPEN
    assert b.half_open_at() == T0 + timedelta(seconds=30)


def test_probe_successes_close_the_breaker():
    b = breaker()
    for _ in range(4):
        b.feed("failure", T0)
    later = T0 + timedelta(seconds=31)
    assert b.feed("success", later) == []
    (transition,) = b.feed("success", later)
    assert (transition.from_state, transition.to_state) == (BreakerState.HALF_OPEN, BreakerState.CLOSED)
    assert b.state_at(later) is BreakerState.CLOSED
    assert b.feed("failure", later) == []  # a fresh window: one failure does not reopen it


def test_a_probe_failure_opens_it_again_for_another_cool_down():
    b = breaker()
    for _ in range(4):
        b.feed("failure", T0)
    later = T0 + timedelta(seconds=40)
    b.feed("success", later)
    (transition,) = b.feed("failure", later)
    assert (transition.from_state, transition.to_state) == (BreakerState.HALF_OPEN, BreakerState.OPEN)
    assert b.state_at(later + timedelta(seconds=29)) is BreakerState.OPEN
    assert b.state_at(later + timedelta(seconds=30)) is BreakerState.HALF_OPEN


def test_board_keeps_one_breaker_per_channel():
    board = BreakerBoard(SETTINGS)
    for _ in range(4):
        board.feed("a", "failure", T0)
    board.feed("b", "success", T0)
    assert board.states(["a", "b", "c"], T0) == {"a": BreakerState.OPEN, "b": BreakerState.CLOSED,
                                                   "c": BreakerState.CLOSED}


@given(st.lists(st.tuples(st.sampled_from(["success", "failure", "decline", "unknown"]), st.integers(0, 20)),
                max_size=200))
def test_transitions_only_follow_the_table(events):
    allowed = {(BreakerState.CLOSED, BreakerState.OPEN), (BreakerState.HALF_OPEN, BreakerState.CLOSED),
               (BreakerState.HALF_OPEN, BreakerState.OPEN)}
    b = breaker()
    at = T0
    for outcome, seconds in events:
        at += timedelta(seconds=seconds)
        before = b.state_at(at)
        for transition in b.feed(outcome, at):
            assert transition.from_state is before
            assert (transition.from_state, transition.to_state) in allowed
            before = transition.to_state
        assert b.state_at(at) is before
        assert 0 <= b.failures <= len(b.window) <= SETTINGS.window_size
