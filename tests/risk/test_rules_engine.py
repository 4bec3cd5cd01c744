"""Compiling and evaluating rules: the context, runtime errors, cost, and a set of real fraud rules."""

from __future__ import annotations

from typing import Any

import pytest

from finloop.core.errors import InvalidRequest
from finloop.risk.rules import (
    RISK_CONTEXT,
    CompiledRule,
    EvaluationContext,
    RuleResult,
    compile_rule,
    make_context,
)

FRAUD_RULES: dict[str, str] = {
    "card_testing": 'event.amount <= 300 && "card.count.1h" in features && features["card.count.1h"] >= 5',
    "customer_velocity_1h": 'features["customer.count.1h"] > 10',
    "customer_sum_24h": 'features["customer.sum.24h"] + event.amount > 5000000',
    "ip_burst_10m": '"ip.count.10m" in features && features["ip.count.10m"] >= 20',
    "device_many_cards": 'features["device.distinct_cards.24h"] >= 4',
    "refund_abuse": 'event.type == "refund" && features["customer.refunds.30d"] >= 3',
    "black_ip": '"black:ip" in lists',
    "any_blacklist": 'lists.exists(l, l.startsWith("black:"))',
    "grey_card_card_payment": '"grey:card" in lists && event.method == "card"',
    "geo_mismatch": 'event.ip_country != "" && event.card_country != ""\n  && event.ip_country != event.card_country',
    "customer_country_mismatch": 'customer.country != "" && event.ip_country != customer.country && !customer.is_new',
    "high_risk_country": 'event.ip_country in ["KP", "IR", "SY", "CU"]',
    "night_large": "event.hour >= 0 && event.hour < 5 && event.amount >= 200000",
    "new_account_large": "customer.age_days < 7 && event.amount > 100000",
    "new_device_new_customer": "device.is_new && customer.is_new",
    "round_large_amount": "event.amount >= 1000000 && event.amount % 100000 == 0",
    "model_high": '"fraud" in model && model["fraud"] >= 900',
    "tor_exit": 'event.ip.matches(r"^(185\\.220\\.|171\\.25\\.)")',
    "segment_threshold": 'customer.segment == "vip" ? event.amount > 10000000 : event.amount > 1000000',
    "api_without_customer": 'event.channel == "api" && size(event.customer_id) == 0',
    "not_whitelisted_fast": '!("white:customer" in lists) && features["customer.count.1h"] * 60 > 600',
    "usd_small_cards": 'event.currency == "USD" && event.amount < 100 && event.method.endsWith("card")',
}

QUIET: dict[str, Any] = {
    "event": {"type": "payment", "amount": 4200, "currency": "CNY", "method": "card", "channel": "web",
              "merchant_id": "mer_1", "customer_id": "cus_1", "ip": "8.8.8.8", "ip_country": "CN",
              "card_country": "CN", "hour": 14},
    "customer": {"age_days": 400, "segment": "regular", "country": "CN", "is_new": False},
    "device": {"id": "dev_1", "is_new": False},
    "features": {"customer.count.1h": 1, "customer.sum.24h": 4200, "device.distinct_cards.24h": 1,
                 "customer.refunds.30d": 0},
    "lists": [],
    "model": {"fraud": 12},
}


def _ctx(**changes: Any) -> EvaluationContext:
    values: dict[str, Any] = {k: (dict(v) if isinstance(v, dict) else list(v)) for k, v in QUIET.items()}
    for dotted, value in changes.items():
        section, _, name = dotted.partition("__")
        if name:
            values[section][name] = value
        else:
            values[section] = value
    return make_context(values)


COMPILED = {name: compile_rule(expr) for name, expr in FRAUD_RULES.items()}

# the context that makes each rule fire; every other rule stays quiet on QUIET
FIRING: dict[str, dict[str, Any]] = {
    "card_testing": {"event__amount": 100, "features": {**QUIET["features"], "card.count.1h": 6}},
    "customer_velocity_1h": {"features": {**QUIET["features"], "customer.count.1h": 11}},
    "customer_sum_24h": {"event__amount": 2000000, "features": {**QUIET["features"], "customer.sum.24h": 3500000}},
    "ip_burst_10m": {"features": {**QUIET["features"], "ip.count.10m": 25}},
    "device_many_cards": {"features": {**QUIET["features"], "device.distinct_cards.24h": 4}},
    "refund_abuse": {"event__type": "refund", "features": {**QUIET["features"], "customer.refunds.30d": 3}},
    "black_ip": {"lists": ["black:ip"]},
    "any_blacklist": {"lists": ["white:customer", "black:device"]},
    "grey_card_card_payment": {"lists": ["grey:card"]},
    "geo_mismatch": {"event__ip_country": "RU"},
    "customer_country_mismatch": {"event__ip_country": "RU", "event__card_country": ""},
    "high_risk_country": {"event__ip_country": "KP", "event__card_country": ""},
    "night_large": {"event__hour": 3, "event__amount": 250000},
    "new_account_large": {"customer__age_days": 2, "event__amount": 150000},
    "new_device_new_customer": {"device__is_new": True, "customer__is_new": True},
    "round_large_amount": {"event__amount": 1500000},
    "model_high": {"model": {"fraud": 950}},
    "tor_exit": {"event__ip": "185.220.101.4"},
    "segment_threshold": {"event__amount": 1000001},
    "api_without_customer": {"event__channel": "api", "event__customer_id": ""},
    "not_whitelisted_fast": {"features": {**QUIET["features"], "customer.count.1h": 11}},
    "usd_small_cards": {"event__currency": "USD", "event__amount": 99},
}


def test_the_quiet_context_fires_nothing() -> None:
    ctx = _ctx()
    fired = [name for name, rule in COMPILED.items() if rule.evaluate(ctx)]
    assert fired == []
    assert all(rule.last_error is None for rule in COMPILED.values())


@pytest.mark.parametrize("name", sorted(FRAUD_RULES))
def test_each_fraud_rule_fires_on_its_pattern(name: str) -> None:
    ctx = _ctx(**FIRING[name])
    rule = COMPILED[name]
    assert rule.evaluate(ctx) is True, (name, rule.last_error)
    assert rule.last_error is None


def test_fraud_rules_on_a_combined_attack() -> None:
    ctx = _ctx(event__amount=250000, event__hour=2, event__ip_country="RU", customer__age_days=1,
               customer__is_new=True, device__is_new=True, lists=["black:ip"])
    fired = {name for name, rule in COMPILED.items() if rule.evaluate(ctx)}
    assert fired == {"black_ip", "any_blacklist", "geo_mismatch", "night_large", "new_account_large",
                     "new_device_new_customer"}
    # a whitelisted customer does not trigger the not-whitelisted rule even when fast
    fast = {**QUIET["features"], "customer.count.1h": 11}
    assert COMPILED["not_whitelisted_fast"].evaluate(_ctx(features=fast, lists=["white:customer"])) is False


def test_a_missing_map_key_makes_the_rule_not_fire_and_is_reported() -> None:
    rule = compile_rule('features["customer.count.1h"] > 10')
    ctx = make_context({"event": {"amount": 1}})
    assert rule.evaluate(ctx) is False
    assert rule.last_error is not None and "customer.count.1h" in rule.last_error
    assert rule.run(ctx) == RuleResult(False, rule.last_error)
    assert rule.evaluate(_ctx(features={"customer.count.1h": 11})) is True
    assert rule.last_error is None  # cleared by the next evaluation


@pytest.mark.parametrize(("expression", "error"), [
    ("event.amount / event.hour > 1", "ZeroDivisionError"),
    ("event.amount % event.hour == 1", "ZeroDivisionError"),
    ('lists[0] == "a"', "IndexError"),
    ("event.amount * 9223372036854775807 > 1", "OverflowError"),
    ('model["x"] > 1 || true', None),  # CEL's || absorbs an error when the other side is true
])
def test_runtime_errors_never_escape(expression: str, error: str | None) -> None:
    rule = compile_rule(expression)
    ctx = make_context({"event": {"amount": 5, "hour": 0}})
    result = rule.run(ctx)
    if error is None:
        assert result == RuleResult(True)
    else:
        assert result.fired is False and result.error is not None and result.error.startswith(error)


def test_cost_orders_cheap_rules_first() -> None:
    cheap = compile_rule("customer.is_new")
    lookup = compile_rule('features["a"] > 1')
    regex = compile_rule('event.ip.matches("^1")')
    macro = compile_rule('lists.exists(l, l.startsWith("black:"))')
    assert 0 < cheap.cost < lookup.cost < macro.cost < regex.cost
    ranked = sorted(COMPILED.values(), key=lambda r: r.cost)
    assert ranked[0].cost <= ranked[-1].cost and isinstance(ranked[0], CompiledRule)
    assert compile_rule("customer.is_new").cost == cheap.cost  # static: same text, same cost


def test_make_context_fills_typed_defaults_and_accepts_dotted_keys() -> None:
    ctx = make_context({"event.amount": 1500, "event.ip": None, "lists": {"b", "a"}, "customer": {"is_new": True}})
    assert ctx.values["event"]["amount"] == 1500
    assert ctx.values["event"]["ip"] == "" and ctx.values["event"]["hour"] == 0
    assert ctx.values["customer"] == {"age_days": 0, "segment": "", "country": "", "is_new": True}
    assert ctx.values["lists"] == ["a", "b"] and ctx.values["features"] == {} and ctx.values["model"] == {}
    assert ctx.values["device"] == {"id": "", "is_new": False}
    assert compile_rule("event.amount == 1500 && customer.is_new && size(features) == 0").evaluate(ctx)
    # undeclared keys are ignored, or refused when strict
    assert make_context({"event": {"amount": 1, "card_token": "tok"}, "extra": 1}).values["event"]["amount"] == 1
    with pytest.raises(InvalidRequest) as caught:
        make_context({"event": {"card_token": "tok"}}, strict=True)
    assert caught.value.param == "event.card_token"


@pytest.mark.parametrize(("values", "param"), [
    ({"event": {"amount": 12.5}}, "event.amount"),
    ({"event": {"amount": 12.0}}, "event.amount"),
    ({"event": {"amount": True}}, "event.amount"),
    ({"event": {"hour": False}}, "event.hour"),
    ({"event": {"amount": "100"}}, "event.amount"),
    ({"event": {"amount": 2**63}}, "event.amount"),
    ({"features": {"customer.count.1h": 1.0}}, "features['customer.count.1h']"),
    ({"features": {"customer.count.1h": True}}, "features['customer.count.1h']"),
    ({"model": {"fraud": 0.9}}, "model['fraud']"),
    ({"customer": {"is_new": 1}}, "customer.is_new"),
    ({"event": {"ip": 1234}}, "event.ip"),
    ({"lists": "black:ip"}, "lists"),
    ({"lists": [1]}, "lists[0]"),
    ({"features": [1]}, "features"),
    ({"event": "payment"}, "event"),
    ({"features": {1: 1}}, "features[1]"),
    ({"lists": ["x"] * 1001}, "lists"),
    ({"event": {"ip": "x" * 5000}}, "event.ip"),
    ({"device": {"id": None, "is_new": "yes"}}, "device.is_new"),
])
def test_make_context_refuses_wrong_types(values: dict[str, Any], param: str) -> None:
    with pytest.raises(InvalidRequest) as caught:
        make_context(values)
    assert caught.value.code == "invalid_context"
    assert caught.value.param == param


def test_one_context_serves_every_rule_of_a_decision() -> None:
    ctx = _ctx(lists=["black:ip"])
    first = [rule.evaluate(ctx) for rule in COMPILED.values()]
    second = [rule.evaluate(ctx) for rule in COMPILED.values()]
    assert first == second and sum(first) == 2
    assert ctx.schema is RISK_CONTEXT


def test_every_declared_field_is_usable_on_an_empty_context() -> None:
    probes = {"int": "{} >= 0", "string": '{} == ""', "bool": "!{}", "list_string": "size({}) == 0",
              "map_int": "size({}) == 0", "map_bool": "size({}) == 0"}
    ctx = make_context({})
    for path, kind in RISK_CONTEXT.paths().items():
        rule = compile_rule(probes[kind].format(path))
        assert rule.evaluate(ctx) is True, (path, rule.last_error)


def test_the_context_carries_no_functions() -> None:
    ctx = make_context(QUIET)
    assert ctx.cel.functions == {}
    assert ctx.values["event"]["amount"] == 4200 and "EvaluationContext" in repr(ctx)
