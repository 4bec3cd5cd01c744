from __future__ import annotations

from datetime import timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from finloop.core.clock import FrozenClock
from finloop.payments.connectors.base import Outcome, PayoutRequest, PayoutSender
from finloop.payouts.bank_sandbox import OUTCOMES, BankBehaviour, SandboxBank
from tests.conftest import T0


def request(reference: str, amount: int = 500) -> PayoutRequest:
    return PayoutRequest(reference=reference, amount=amount, currency="CNY", account_name="Li Wei",
                         account_number="6222020200112233445", bank_code="ICBKCNBJ")


def test_scripted_outcomes_delay_unknown_and_returns() -> None:
    clock = FrozenClock(T0)
    bank = SandboxBank(clock, behaviour=BankBehaviour(delay=timedelta(hours=2), return_after=timedelta(days=3)))
    assert isinstance(bank, PayoutSender)
    bank.queue("success", "fail", "retry", "delay", "unknown", "return")

    assert bank.payout(request("p1")).outcome is Outcome.SUCCEEDED
    failed = bank.payout(request("p2"))
    assert (failed.outcome, failed.retryable, failed.error_code) == (Outcome.FAILED, False, "account_closed")
    busy = bank.payout(request("p3"))
    assert (busy.outcome, busy.retryable) == (Outcome.FAILED, True)
    assert bank.payout(request("p4")).outcome is Outcome.PROCESSING
    assert bank.payout(request("p5")).outcome is Outcome.UNKNOWN
    assert bank.query_payout("p5").outcome is Outcome.SUCCEEDED  # paid despite the lost reply
    assert bank.payout(request("p6")).outcome is Outcome.SUCCEEDED
    assert bank.query_payout("nope").outcome is Outcome.NOT_FOUND

    # A reference already accepted is never paid twice; a retryable refusal may be sent again.
    assert bank.payout(request("p1")).outcome is Outcome.SUCCEEDED
    assert bank.payout(request("p2")).outcome is Outcome.FAILED
    assert bank.payout(request("p3")).outcome is Outcome.SUCCEEDED  # the random draw: all shares 0 → success

    assert bank.query_payout("p4").outcome is Outcome.PROCESSING
    clock.advance(timedelta(hours=2))
    resolved = bank.query_payout("p4")
    assert resolved.outcome is Outcome.SUCCEEDED and resolved.raw["value_date"] == "2026-03-02"

    assert bank.poll_returns(T0 - timedelta(days=1)) == []
    clock.advance(timedelta(days=3))
    returns = bank.poll_returns(T0 - timedelta(days=1))
    assert [r.reference for r in returns] == ["p6"]
    assert bank.poll_returns(clock.now()) == []  # only returns after "since"

    debits = [m.reference for m in bank.movements if m.direction == "debit"]
    assert sorted(debits) == ["p1", "p3", "p4", "p5", "p6"]
    credits = [(m.reference, m.kind, m.value_date.isoformat()) for m in bank.movements if m.direction == "credit"]
    assert credits == [("p6", "payout_return", "2026-03-05")]
    assert all("6222020200112233445" not in repr(m) for m in bank.movements)
    assert [m.reference for m in bank.statement(T0.date())] == ["p1", "p5", "p6", "p3", "p4"]


def test_shares_are_seeded_and_validated() -> None:
    behaviour = BankBehaviour(failure_share=0.2, retryable_share=0.2, delay_share=0.2, return_share=0.5)
    outcomes = []
    for _ in range(2):
        bank = SandboxBank(FrozenClock(T0), seed=11, behaviour=behaviour)
        outcomes.append([bank.payout(request(f"r{i}")).outcome for i in range(40)])
    assert outcomes[0] == outcomes[1]
    assert {Outcome.SUCCEEDED, Outcome.FAILED, Outcome.PROCESSING} <= set(outcomes[0])
    with pytest.raises(ValueError):
        BankBehaviour(failure_share=0.7, retryable_share=0.5)
    with pytest.raises(ValueError):
        SandboxBank(FrozenClock(T0)).queue("explode")


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(OUTCOMES), st.integers(0, 3)), max_size=20))
def test_a_reference_is_paid_at_most_once(calls: list[tuple[str, int]]) -> None:
    clock = FrozenClock(T0)
    bank = SandboxBank(clock)
    for outcome, ref in calls:
        bank.queue(outcome)
        bank.payout(request(f"ref{ref}"))
        bank.query_payout(f"ref{ref}")
        clock.advance(timedelta(hours=1))
    debits = [m.reference for m in bank.movements if m.direction == "debit"]
    assert len(debits) == len(set(debits))
