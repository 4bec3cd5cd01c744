"""AML monitoring scenarios: each with planted and innocent activity (pure, no database)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from finloop.risk.aml import scenarios
from finloop.risk.aml.scenarios import AmlConfig

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
CONFIG = AmlConfig()
_seq = iter(range(1, 10**9))


def tx(customer: str, amount: int, *, hours: float = 0, direction: str = "out", currency: str = "CNY",
       counterparty: str | None = "mer_1", country: str | None = "CN", customer_type: str = "individual",
       last_activity: datetime | None = None, created: datetime | None = None) -> dict[str, Any]:
    return {"id": f"pay_{next(_seq)}", "source": "payment", "customer_id": customer, "account_kind": "customer",
            "customer_type": customer_type, "counterparty_id": counterparty, "direction": direction,
            "amount": amount, "currency": currency, "at": T0 + timedelta(hours=hours), "country": country,
            "account_created_at": created or T0 - timedelta(days=30), "last_activity_at": last_activity}


def by_scenario(rows: list[dict[str, Any]], name: str, config: AmlConfig = CONFIG) -> list[scenarios.Alert]:
    return scenarios.RUNNERS[name](scenarios.frame(rows), config)


def test_large_transactions_per_currency_and_customer_type() -> None:
    config = AmlConfig(large_thresholds={"CNY": {"*": 5_000_000, "business": 20_000_000}, "USD": {"*": 1_000_000}})
    rows = [tx("cus_big", 5_000_000), tx("cus_big", 6_000_000, hours=1),  # planted: at and above CNY 50,000.00
            tx("cus_small", 4_999_999),                                    # innocent: one fen below
            tx("cus_usd", 1_000_000, currency="USD"),                      # planted: USD 10,000.00
            tx("cus_biz", 6_000_000, customer_type="business"),            # innocent: business threshold higher
            tx("cus_eur", 99_000_000, currency="EUR")]                     # not monitored: no EUR threshold
    alerts = by_scenario(rows, "large_transaction", config)
    assert sorted((a.subject_id, a.currency, len(a.transaction_ids)) for a in alerts) == [
        ("cus_big", "CNY", 2), ("cus_usd", "USD", 1)]
    big = next(a for a in alerts if a.subject_id == "cus_big")
    assert big.total_amount == 11_000_000 and big.figures["threshold"] == 5_000_000
    assert big.window_key == "CNY:2026-03-02"


def test_structuring_just_below_threshold_within_window() -> None:
    planted = [tx("cus_s", 4_800_000, hours=h) for h in (0, 30, 60)]          # 96% of the threshold, 3 in 7 days
    spread = [tx("cus_spread", 4_800_000, hours=h) for h in (0, 200, 400)]   # too far apart
    low = [tx("cus_low", 4_400_000, hours=h) for h in (0, 1, 2)]            # 88%: below the band
    alerts = by_scenario(planted + spread + low, "structuring")
    assert [(a.subject_id, len(a.transaction_ids)) for a in alerts] == [("cus_s", 3)]
    assert alerts[0].figures["threshold"] == 5_000_000
    assert alerts[0].window_start == T0 and alerts[0].window_end == T0 + timedelta(hours=60)


def test_rapid_movement_in_and_out_within_24_hours() -> None:
    planted = [tx("cus_r", 2_000_000, direction="in", counterparty=None),
               tx("cus_r", 900_000, hours=5), tx("cus_r", 800_000, hours=20)]        # 85% out within 24 h
    slow = [tx("cus_slow", 2_000_000, direction="in", counterparty=None), tx("cus_slow", 1_900_000, hours=30)]
    partial = [tx("cus_part", 2_000_000, direction="in", counterparty=None), tx("cus_part", 1_000_000, hours=2)]
    tiny = [tx("cus_tiny", 50_000, direction="in", counterparty=None), tx("cus_tiny", 50_000, hours=1)]
    alerts = by_scenario(planted + slow + partial + tiny, "rapid_movement")
    assert [a.subject_id for a in alerts] == ["cus_r"]
    assert alerts[0].figures["in_amount"] == 2_000_000 and alerts[0].figures["out_amount"] == 1_700_000
    assert alerts[0].figures["share_permille"] == 850


def test_round_amounts_repeated() -> None:
    planted = [tx("cus_round", 300_000, hours=h) for h in (0, 10, 20)]          # 3,000.00 three times
    innocent = [tx("cus_odd", 300_001, hours=h) for h in (0, 10, 20)] + [tx("cus_two", 100_000, hours=h)
                                                                          for h in (0, 1)]
    alerts = by_scenario(planted + innocent, "round_amounts")
    assert [(a.subject_id, a.figures["count"]) for a in alerts] == [("cus_round", 3)]


def test_high_risk_geography_configurable() -> None:
    rows = [tx("cus_kp", 1_000, country="KP"), tx("cus_cn", 1_000, country="CN"), tx("cus_none", 1_000, country=None)]
    assert [a.subject_id for a in by_scenario(rows, "high_risk_geography")] == ["cus_kp"]
    custom = AmlConfig(high_risk_countries=("CN",))
    assert [a.subject_id for a in by_scenario(rows, "high_risk_geography", custom)] == ["cus_cn"]
    assert by_scenario(rows, "high_risk_geography", AmlConfig(high_risk_countries=())) == []


def test_dormant_account_suddenly_active() -> None:
    long_ago = T0 - timedelta(days=200)
    rows = [tx("cus_dormant", 10_000, last_activity=long_ago),                     # idle 200 days
            tx("cus_new_idle", 10_000, created=T0 - timedelta(days=365)),          # never used for a year
            tx("cus_busy", 10_000, last_activity=T0 - timedelta(days=10)),
            tx("cus_gap", 10_000, hours=-24 * 190, last_activity=T0 - timedelta(days=191)),
            tx("cus_gap", 10_000)]                                                  # 190 days between two in-frame rows
    alerts = by_scenario(rows, "dormant_reactivated")
    assert sorted(a.subject_id for a in alerts) == ["cus_dormant", "cus_gap", "cus_new_idle"]
    dormant = next(a for a in alerts if a.subject_id == "cus_dormant")
    assert dormant.figures["idle_days"] == 200


def test_funnelling_many_payers_to_one_account() -> None:
    planted = [tx("cus_mule", 10_000, hours=i, direction="in", counterparty=f"cus_p{i}") for i in range(10)]
    few = [tx("cus_few", 10_000, hours=i, direction="in", counterparty=f"cus_p{i % 3}") for i in range(12)]
    slow = [tx("cus_slow", 10_000, hours=i * 20, direction="in", counterparty=f"cus_q{i}") for i in range(10)]
    merchant = [tx("mer_shop", 10_000, hours=i, direction="in", counterparty=f"cus_p{i}", customer_type="merchant")
                for i in range(12)]
    alerts = by_scenario(planted + few + slow + merchant, "funnelling")
    assert [(a.subject_id, a.figures["payers"]) for a in alerts] == [("cus_mule", 10)]


def test_run_all_keeps_alerts_ending_in_range_and_is_deterministic() -> None:
    rows = [tx("cus_s", 4_812_345, hours=h) for h in (-50, -20, 1)] + [tx("cus_old", 9_000_000, hours=-48)]
    df = scenarios.frame(rows)
    alerts = scenarios.run_all(df, CONFIG, since=T0)
    assert {(a.scenario, a.subject_id) for a in alerts} == {("structuring", "cus_s")}
    assert alerts == scenarios.run_all(df, CONFIG, since=T0)
    assert scenarios.run_all(scenarios.empty_frame(), CONFIG) == []


def test_config_round_trips_through_json() -> None:
    config = AmlConfig(high_risk_countries=("IR",), large_thresholds={"CNY": {"*": 1}}, enabled=("structuring",))
    assert AmlConfig.from_json(config.to_json()) == config
    with pytest.raises(TypeError):
        AmlConfig.from_json({"nonsense": 1})


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["a", "b", "c"]), st.integers(1, 10_000_000), st.integers(0, 400),
                          st.sampled_from(["in", "out"]), st.sampled_from(["CNY", "USD", "KP"])), max_size=40))
def test_alerts_cite_only_their_subjects_transactions_and_sum_them(raw: list[tuple[str, int, int, str, str]]) -> None:
    rows = [tx(c, amount, hours=h, direction=d, currency="USD" if k == "USD" else "CNY",
               country="KP" if k == "KP" else "CN", counterparty=f"p{amount % 11}") for c, amount, h, d, k in raw]
    df = scenarios.frame(rows)
    by_id = {r["id"]: r for r in rows}
    for alert in scenarios.run_all(df, CONFIG):
        cited = [by_id[i] for i in alert.transaction_ids]
        assert cited and all(r["customer_id"] == alert.subject_id and r["currency"] == alert.currency for r in cited)
        assert alert.total_amount == sum(r["amount"] for r in cited)
        assert alert.window_start <= alert.window_end
        assert alert.window_end == max(r["at"] for r in cited)
    assert isinstance(df, pl.DataFrame)
