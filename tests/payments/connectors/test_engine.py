"""The sandbox engine: deterministic, statistically faithful to its profile, and honest about money."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from finloop.core.clock import FrozenClock
from finloop.payments.connectors.sandbox.engine import (
    ChannelProfile,
    Outage,
    SandboxEngine,
    SandboxFailure,
    TxStatus,
    latency_scope,
)

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
OK_CARD = "4000000000000077"  # always succeeds


def make(profile: ChannelProfile | None = None, seed: int = 0, **kwargs: object) -> tuple[SandboxEngine, FrozenClock]:
    clock = FrozenClock(T0)
    engine = SandboxEngine(clock, seed=seed, profiles={"ch": profile or ChannelProfile()}, **kwargs)  # type: ignore[arg-type]
    return engine, clock


def card_pay(engine: SandboxEngine, reference: str, amount: int = 1000, *, capture: bool = True,
             card: str = "4242424242424242", notify_url: str | None = "http://finloop/n") -> object:
    try:
        return engine.pay("ch", reference=reference, amount=amount, currency="CNY", method="card", capture=capture,
                          notify_url=notify_url, card_number=card)
    except SandboxFailure as failure:
        return failure


def outcomes(seed: int) -> list[tuple[str, ...]]:
    engine, _ = make(ChannelProfile(success_share=Decimal("0.7"), timeout_share=Decimal("0.1")), seed=seed)
    result: list[tuple[str, ...]] = []
    for i in range(200):
        answer = card_pay(engine, f"r{i}")
        result.append((answer.kind, answer.code) if isinstance(answer, SandboxFailure)
                      else (str(answer.status), answer.channel_ref))  # type: ignore[attr-defined]
        result.append(("latency", str(engine.last_latency_ms)))
    return result


def test_same_seed_same_calls_same_results() -> None:
    assert outcomes(42) == outcomes(42)
    assert outcomes(42) != outcomes(43)


def test_success_share_matches_profile_within_tolerance() -> None:
    engine, _ = make(ChannelProfile(success_share=Decimal("0.8"), decline_share=Decimal("0.25")), seed=3)
    answers = [card_pay(engine, f"r{i}", notify_url=None) for i in range(2000)]
    succeeded = sum(1 for a in answers if not isinstance(a, SandboxFailure))
    declined = sum(1 for a in answers if isinstance(a, SandboxFailure) and a.kind == "declined")
    errors = sum(1 for a in answers if isinstance(a, SandboxFailure) and a.kind == "error")
    assert abs(succeeded / 2000 - 0.8) < 0.03          # sd is 0.009
    assert abs(declined / (declined + errors) - 0.25) < 0.07
    assert succeeded + declined + errors == 2000


def test_degraded_window_lowers_success_then_recovers() -> None:
    profile = ChannelProfile(success_share=Decimal("1"),
                             degraded=[(T0, T0 + timedelta(hours=1), Decimal("0.2"))])
    engine, clock = make(profile)
    during = [card_pay(engine, f"d{i}") for i in range(300)]
    clock.advance(timedelta(hours=2))
    after = [card_pay(engine, f"a{i}") for i in range(100)]
    assert 0.1 < sum(not isinstance(a, SandboxFailure) for a in during) / 300 < 0.3
    assert all(not isinstance(a, SandboxFailure) for a in after)


def test_outage_refuses_unavailable_and_records_nothing() -> None:
    profile = ChannelProfile(success_share=Decimal("1"), outages=[Outage(T0, T0 + timedelta(minutes=10))])
    engine, clock = make(profile)
    failure = card_pay(engine, "r1")
    assert isinstance(failure, SandboxFailure) and failure.kind == "unavailable"
    clock.advance(timedelta(minutes=10))
    assert engine.query("ch", "r1") is None
    assert engine.query("ch", "r1") is None
    tx = card_pay(engine, "r1")
    assert not isinstance(tx, SandboxFailure) and tx.status is TxStatus.SUCCEEDED  # type: ignore[attr-defined]


def test_timeout_outage_raises_timeout() -> None:
    engine, _ = make()
    engine.add_outage("ch", T0, T0 + timedelta(minutes=1), kind="timeout")
    failure = card_pay(engine, "r1")
    assert isinstance(failure, SandboxFailure) and failure.kind == "timeout"


def test_timeout_that_succeeded_shows_in_query() -> None:
    engine, _ = make(ChannelProfile(success_share=Decimal("1"), timeout_share=Decimal("1"),
                                    timeout_success_share=Decimal("1")))
    failure = card_pay(engine, "r1")
    assert isinstance(failure, SandboxFailure) and failure.kind == "timeout"
    tx = engine.query("ch", "r1")
    assert tx is not None and tx.status is TxStatus.SUCCEEDED and tx.captured == 1000


def test_timeout_that_never_arrived_is_not_found() -> None:
    engine, _ = make(ChannelProfile(timeout_share=Decimal("1"), timeout_success_share=Decimal("0")))
    assert isinstance(card_pay(engine, "r1"), SandboxFailure)
    assert engine.query("ch", "r1") is None


def test_same_reference_same_amount_returns_existing() -> None:
    engine, _ = make()
    first = card_pay(engine, "r1", card=OK_CARD)
    again = card_pay(engine, "r1", card=OK_CARD)
    assert first == again
    assert len(engine.transactions("ch")) == 1


def test_same_reference_other_amount_is_duplicate_reference() -> None:
    engine, _ = make()
    card_pay(engine, "r1", card=OK_CARD)
    failure = card_pay(engine, "r1", amount=999, card=OK_CARD)
    assert isinstance(failure, SandboxFailure) and (failure.kind, failure.code) == ("invalid", "duplicate_reference")


def test_declined_payment_is_recorded_failed_and_repeats_its_decline() -> None:
    engine, _ = make()
    failure = card_pay(engine, "r1", card="4000000000009995")
    assert isinstance(failure, SandboxFailure) and (failure.kind, failure.code) == ("declined", "insufficient_funds")
    tx = engine.query("ch", "r1")
    assert tx is not None and tx.status is TxStatus.FAILED and tx.error_kind == "declined" and tx.fee == 0
    again = card_pay(engine, "r1", card="4000000000009995")
    assert isinstance(again, SandboxFailure) and again.code == "insufficient_funds"


def test_card_number_is_never_stored() -> None:
    engine, _ = make()
    card_pay(engine, "r1", card="4000000000000077")
    assert "4000000000000077" not in repr(engine.transactions()) + repr(engine.pending_notifications())
    assert engine.transactions()[0].card_last4 == "0077"


def test_fee_uses_rate_fixed_and_named_rounding() -> None:
    engine, _ = make(ChannelProfile(fee_rate=Decimal("0.006"), fee_fixed=10, fee_rounding="down"))
    tx = card_pay(engine, "r1", amount=250, card=OK_CARD)
    assert tx.fee == 1 + 10  # type: ignore[attr-defined]   # 1.5 rounded down, plus the fixed part
    engine.configure("ch", ChannelProfile(fee_rate=Decimal("0.006"), fee_rounding="half_up"))
    assert engine.fee("ch", 250) == 2


def test_authorise_then_partial_capture() -> None:
    engine, _ = make()
    tx = card_pay(engine, "r1", capture=False, card=OK_CARD)
    assert tx.status is TxStatus.AUTHORIZED and tx.captured == 0 and tx.fee == 0  # type: ignore[attr-defined]
    captured = engine.capture("ch", "r1", 600)
    assert (captured.status, captured.captured, captured.fee) == (TxStatus.SUCCEEDED, 600, engine.fee("ch", 600))
    with pytest.raises(SandboxFailure) as error:
        engine.refund("ch", reference="r1", refund_reference="re1", amount=601, notify_url=None)
    assert error.value.code == "refund_exceeds_captured"


def test_capture_more_than_authorised_is_refused() -> None:
    engine, _ = make()
    card_pay(engine, "r1", capture=False, card=OK_CARD)
    with pytest.raises(SandboxFailure) as error:
        engine.capture("ch", "r1", 1001)
    assert error.value.code == "invalid_amount"


def test_close_voids_authorisation_and_refuses_paid() -> None:
    engine, _ = make()
    card_pay(engine, "r1", capture=False, card=OK_CARD)
    assert engine.close("ch", "r1").status is TxStatus.CLOSED
    card_pay(engine, "r2", card=OK_CARD)
    with pytest.raises(SandboxFailure) as error:
        engine.close("ch", "r2")
    assert error.value.code == "invalid_state"


@settings(max_examples=60, deadline=None)
@given(st.integers(min_value=1, max_value=100_000), st.lists(st.integers(min_value=1, max_value=60_000), max_size=8))
def test_refunds_never_exceed_captured_and_return_the_fee_exactly(amount: int, refunds: list[int]) -> None:
    engine, _ = make(ChannelProfile(fee_rate=Decimal("0.0061"), fee_fixed=3))
    tx = card_pay(engine, "r1", amount=amount, card=OK_CARD)
    taken = 0
    for i, part in enumerate(refunds):
        try:
            engine.refund("ch", reference="r1", refund_reference=f"re{i}", amount=part, notify_url=None)
            taken += part
        except SandboxFailure as failure:
            assert failure.code == "refund_exceeds_captured"
            assert taken + part > amount
    rest = amount - taken
    if rest:
        engine.refund("ch", reference="r1", refund_reference="last", amount=rest, notify_url=None)
    records = engine.refunds("ch")
    assert sum(r.amount for r in records) == amount
    assert sum(r.fee_returned for r in records) == tx.fee  # type: ignore[attr-defined]
    final = engine.query("ch", "r1")
    assert final is not None and final.status is TxStatus.REFUNDED and final.refunded == amount


def test_repeated_refund_reference_returns_it_and_other_amount_is_duplicate() -> None:
    engine, _ = make()
    card_pay(engine, "r1", card=OK_CARD)
    first = engine.refund("ch", reference="r1", refund_reference="re1", amount=100, notify_url=None)
    assert engine.refund("ch", reference="r1", refund_reference="re1", amount=100, notify_url=None) == first
    with pytest.raises(SandboxFailure) as error:
        engine.refund("ch", reference="r1", refund_reference="re1", amount=200, notify_url=None)
    assert error.value.code == "duplicate_reference"
    assert engine.query("ch", "r1").refunded == 100  # type: ignore[union-attr]


def test_async_refund_is_processing_counts_in_flight_and_finishes_later() -> None:
    engine, clock = make(ChannelProfile(refund_async=True, refund_delay_seconds=(10, 20)))
    card_pay(engine, "r1", card=OK_CARD)
    record = engine.refund("ch", reference="r1", refund_reference="re1", amount=800, notify_url=None)
    assert record.status == "processing"
    with pytest.raises(SandboxFailure):
        engine.refund("ch", reference="r1", refund_reference="re2", amount=300, notify_url=None)
    clock.advance(timedelta(seconds=21))
    done = engine.query_refund("ch", "re1")
    assert done is not None and done.status == "succeeded"
    assert done.succeeded_at is not None
    assert T0 + timedelta(seconds=10) <= done.succeeded_at <= T0 + timedelta(seconds=20)


def test_qr_payment_waits_then_customer_pays_in_simulated_time() -> None:
    profile = ChannelProfile(success_share=Decimal("1"), customer_pays_share=Decimal("1"),
                             customer_delay_seconds=(5, 60))
    engine, clock = make(profile)
    tx = engine.pay("ch", reference="r1", amount=500, currency="CNY", method="qr", capture=True, notify_url=None)
    assert tx.status is TxStatus.WAITING
    assert engine.query("ch", "r1").status is TxStatus.WAITING  # type: ignore[union-attr]
    clock.advance(timedelta(seconds=61))
    paid = engine.query("ch", "r1")
    assert paid is not None and paid.status is TxStatus.SUCCEEDED and paid.captured == 500
    assert paid.paid_at is not None and T0 + timedelta(seconds=5) <= paid.paid_at <= T0 + timedelta(seconds=60)


def test_customer_who_abandons_leaves_a_closed_transaction() -> None:
    engine, _clock = make(ChannelProfile(success_share=Decimal("1"), customer_pays_share=Decimal("0")))
    engine.pay("ch", reference="r1", amount=500, currency="CNY", method="h5", capture=True, notify_url=None)
    engine.advance(T0 + timedelta(minutes=5))
    assert engine.query("ch", "r1").status is TxStatus.CLOSED  # type: ignore[union-attr]


def test_customer_acts_forces_the_outcome_now() -> None:
    engine, _ = make(ChannelProfile(customer_pays_share=Decimal("0")))
    engine.pay("ch", reference="r1", amount=500, currency="CNY", method="qr", capture=True, notify_url=None)
    tx = engine.customer_acts("ch", "r1", pays=True)
    assert tx.status is TxStatus.SUCCEEDED and tx.paid_at == T0
    with pytest.raises(SandboxFailure):
        engine.customer_acts("ch", "r1")


def test_notifications_fall_due_after_their_delay() -> None:
    engine, clock = make(ChannelProfile(notify_delay_seconds=(3, 3)))
    card_pay(engine, "r1", card=OK_CARD)
    assert engine.due_notifications() == []
    clock.advance(timedelta(seconds=3))
    [item] = engine.due_notifications()
    assert (item.kind, item.url, item.transaction.reference) == ("payment", "http://finloop/n", "r1")  # type: ignore[union-attr]
    assert engine.due_notifications() == []


def test_duplicated_notifications_share_their_id() -> None:
    engine, _clock = make(ChannelProfile(notify_duplicate_share=Decimal("1"), notify_delay_seconds=(0, 0)))
    card_pay(engine, "r1", card=OK_CARD)
    items = engine.due_notifications()
    assert len(items) == 2 and items[0] == items[1]


def test_lost_notifications_never_come() -> None:
    engine, clock = make(ChannelProfile(notify_loss_share=Decimal("1"), notify_delay_seconds=(0, 0)))
    card_pay(engine, "r1", card=OK_CARD)
    assert engine.due_notifications() == []
    clock.advance(timedelta(days=1))
    assert engine.due_notifications() == []


def test_reordered_notifications_arrive_shuffled() -> None:
    engine, clock = make(ChannelProfile(notify_reorder=True, notify_delay_seconds=(1, 1)))
    for i in range(20):
        card_pay(engine, f"r{i:02d}", card=OK_CARD)
        clock.advance(timedelta(milliseconds=10))
    clock.advance(timedelta(seconds=2))
    references = [item.transaction.reference for item in engine.due_notifications()]  # type: ignore[union-attr]
    assert sorted(references) == [f"r{i:02d}" for i in range(20)]
    assert references != sorted(references)


def test_requeued_notification_comes_back_with_its_attempt() -> None:
    engine, clock = make(ChannelProfile(notify_delay_seconds=(0, 0)))
    card_pay(engine, "r1", card=OK_CARD)
    [item] = engine.due_notifications()
    engine.requeue(item, T0 + timedelta(seconds=15))
    assert engine.due_notifications() == []
    clock.advance(timedelta(seconds=15))
    [again] = engine.due_notifications()
    assert (again.id, again.attempt) == (item.id, 1)


def test_dispute_makes_a_dispute_notification() -> None:
    engine, _clock = make(ChannelProfile(notify_delay_seconds=(0, 0)))
    card_pay(engine, "r1", card=OK_CARD)
    engine.due_notifications()
    dispute = engine.open_dispute("ch", "r1", 400, "fraudulent")
    assert dispute["amount"] == 400 and dispute["reference"] == "r1"
    [item] = engine.due_notifications()
    assert item.kind == "dispute" and item.dispute is not None and item.dispute["id"] == dispute["id"]
    with pytest.raises(SandboxFailure):
        engine.open_dispute("ch", "r1", 1001, "fraudulent")


def test_bill_lists_the_days_payments_and_refunds_and_sums() -> None:
    engine, clock = make(ChannelProfile(success_share=Decimal("0.7")), seed=5)
    for i in range(50):
        card_pay(engine, f"r{i}")
        clock.advance(timedelta(minutes=5))
    paid = [tx for tx in engine.transactions("ch") if tx.status is TxStatus.SUCCEEDED]
    for tx in paid[:10]:
        engine.refund("ch", reference=tx.reference, refund_reference=f"re-{tx.reference}", amount=tx.captured // 2,
                      notify_url=None)
    lines = engine.bill("ch", date(2026, 3, 2))
    payments = [line for line in lines if line.kind == "payment"]
    refunds = [line for line in lines if line.kind == "refund"]
    assert len(payments) == len(paid) and len(refunds) == 10
    assert sum(line.amount for line in payments) - sum(line.amount for line in refunds) == sum(
        tx.captured - tx.refunded for tx in engine.transactions("ch"))
    assert sum(line.fee for line in payments) == sum(tx.fee for tx in paid)
    assert engine.bill("ch", date(2026, 3, 3)) == []
    # At UTC+16 the afternoon's lines belong to the next business day.
    shifted = engine.bill("ch", date(2026, 3, 3), tz_offset=timedelta(hours=16))
    assert shifted and all((line.at + timedelta(hours=16)).date() == date(2026, 3, 3) for line in shifted)


def test_payout_processing_then_settles() -> None:
    engine, clock = make(ChannelProfile(payout_success_share=Decimal("1"), payout_delay_seconds=(30, 30)))
    record = engine.payout("ch", reference="po1", amount=5000, currency="CNY", account_number="6222020200112233")
    assert record.status == "processing" and record.account_last4 == "2233"
    assert "6222020200112233" not in repr(engine.payouts())
    clock.advance(timedelta(seconds=30))
    assert engine.query_payout("ch", "po1").status == "succeeded"  # type: ignore[union-attr]


def test_sync_payout_to_bad_account_is_declined() -> None:
    engine, _ = make(ChannelProfile(payout_async=False))
    with pytest.raises(SandboxFailure) as error:
        engine.payout("ch", reference="po1", amount=5000, currency="CNY", account_number="not-an-account")
    assert error.value.kind == "declined"
    assert engine.query_payout("ch", "po1").status == "failed"  # type: ignore[union-attr]


def test_advance_clock_moves_the_clock_by_the_latency() -> None:
    engine, clock = make(ChannelProfile(latency_ms=(40, 80, 400)), advance_clock=True)
    card_pay(engine, "r1")
    assert clock.now() - T0 == timedelta(milliseconds=engine.last_latency_ms)
    assert engine.last_latency_ms >= 40


def test_realtime_latency_is_collected_for_the_app_not_slept_by_the_engine() -> None:
    engine, clock = make(ChannelProfile(latency_ms=(100, 100, 100)), realtime=True, advance_clock=True)
    with latency_scope() as sink:
        card_pay(engine, "r1")
        card_pay(engine, "r2")
    assert sink.ms == 200 and not sink.timed_out and clock.now() == T0
    engine.add_outage("ch", T0, T0 + timedelta(minutes=1), kind="timeout")
    with latency_scope() as sink:
        card_pay(engine, "r3")
    assert sink.timed_out


def test_profile_round_trips_through_json_and_refuses_floats() -> None:
    profile = ChannelProfile(success_share=Decimal("0.9"), outages=[Outage(T0, T0 + timedelta(hours=1), "timeout")],
                             degraded=[(T0, T0 + timedelta(hours=2), Decimal("0.5"))], latency_ms=(1, 2, 3))
    assert ChannelProfile.from_dict(profile.to_dict()) == profile
    with pytest.raises(ValueError):
        ChannelProfile.from_dict({"success_share": 0.9})
    with pytest.raises(ValueError):
        ChannelProfile.from_dict({"success_share": "1.5"})
    with pytest.raises(ValueError):
        ChannelProfile.from_dict({"no_such_field": 1})
    with pytest.raises(ValueError):
        ChannelProfile.from_dict({"fee_rounding": "sideways"})
