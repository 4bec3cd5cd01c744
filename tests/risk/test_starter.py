"""The starter rule pack: it passes the checker, stays silent on what an event does not carry, installs as a
draft (never live), is isolated per tenant, and its backtest on a fixed simulated seed catches every fraud
pattern; the CLI command."""

from __future__ import annotations

import json
from collections import defaultdict
from datetime import timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from finloop.cli import app as cli_app
from finloop.core.errors import InvalidRequest, NotFound
from finloop.db.uow import Database
from finloop.risk import rules as risk_rules
from finloop.risk import service, starter, velocity
from finloop.risk.domain import EVENT_TYPES, Label, parse_rules, parse_thresholds
from finloop.risk.models import RuleSet
from finloop.sim import fraud

PATTERN_FAMILIES = {"card_testing": "ct.", "account_takeover": "ato.", "promotion_abuse": "promo.",
                    "mule_ring": "mule."}


def _compiled() -> dict[str, risk_rules.CompiledRule]:
    return {r["id"]: risk_rules.compile_rule(r["expression"]) for r in starter.rules()}


def test_the_pack_passes_the_checker_and_covers_every_pattern() -> None:
    content = starter.pack()
    assert service.check_rules(content["rules"]) == []
    ids = [r["id"] for r in content["rules"]]
    assert len(ids) == len(set(ids)) and 25 <= len(ids) <= 60
    for family in (*PATTERN_FAMILIES.values(), "model.", "wd.", "rf.", "acct."):
        assert any(i.startswith(family) for i in ids), family
    thresholds = parse_thresholds(content["thresholds"])
    assert set(starter.EVENT_TYPES) <= set(thresholds)
    assert all(t.review < t.decline for t in thresholds.values())
    assert all(set(r["event_types"]) <= set(EVENT_TYPES) for r in content["rules"])
    # Every rule applies to an event type the starter rule set decides.
    assert all(not r["event_types"] or set(r["event_types"]) & set(starter.EVENT_TYPES) for r in content["rules"])
    bands = {r["id"]: r["expression"] for r in starter.rules(model_threshold=40)}
    assert bands["model.review"].endswith(">= 40") and bands["model.watch"].endswith(">= 20")


def test_rules_on_features_that_may_not_exist_stay_silent_without_error() -> None:
    compiled = _compiled()
    absent = risk_rules.make_context(service.context_values(
        "payment", {"amount": 5_000, "currency": "CNY"}, at=fraud.DEFAULT_START, features={}, lists=[], model={}))
    for rule_id in ("network.known_fraud", "geo.impossible_travel", "model.decline", "model.review",
                    "model.watch"):
        result = compiled[rule_id].run(absent)
        assert result.fired is False and result.error is None, (rule_id, result)
    present = risk_rules.make_context(service.context_values(
        "payment", {"amount": 5_000, "currency": "CNY"}, at=fraud.DEFAULT_START,
        features={"network.fraud_members": 1, "geo.impossible_travel": 1}, lists=[], model={"fraud": 600}))
    assert all(compiled[r].evaluate(present) for r in ("network.known_fraud", "geo.impossible_travel",
                                                       "model.decline", "model.review", "model.watch"))


@settings(max_examples=60, deadline=None)
@given(event_type=st.sampled_from(starter.EVENT_TYPES), amount=st.integers(min_value=1, max_value=4_999_999),
       hour=st.integers(min_value=6, max_value=23))
def test_an_event_without_history_or_sections_fires_nothing(event_type: str, amount: int, hour: int) -> None:
    # What the payment, withdrawal and refund wiring sends: no customer or device section, no history. The
    # defaults (0, "", false) must not look like a new account, a foreign IP or a burst.
    event = {"amount": amount, "currency": "CNY", "customer_id": "cus_1", "merchant_id": "mer_1", "hour": hour}
    context = risk_rules.make_context(service.context_values(
        event_type, event, at=fraud.DEFAULT_START, features=dict.fromkeys(velocity.FEATURE_NAMES, 0), lists=[],
        model={}))
    version = service.compile_version("v", parse_rules(starter.rules()), parse_thresholds(starter.THRESHOLDS))
    verdict = service.evaluate(version, context, event_type=event_type, stop_on_decline=False)
    assert verdict.fired == () and verdict.outcome.value == "approve"


def test_a_grey_listed_value_is_reviewed_on_every_event_type() -> None:
    version = service.compile_version("v", parse_rules(starter.rules()), parse_thresholds(starter.THRESHOLDS))
    for event_type in starter.EVENT_TYPES:
        context = risk_rules.make_context(service.context_values(
            event_type, {"amount": 100}, at=fraud.DEFAULT_START, features={}, lists=["grey:device"], model={}))
        assert service.evaluate(version, context, event_type=event_type).outcome.value == "review"


def test_a_model_threshold_out_of_range_is_refused() -> None:
    for bad in (0, 1, 501, True, "20"):
        with pytest.raises(InvalidRequest) as refused:
            starter.pack(model_threshold=bad)  # type: ignore[arg-type]
        assert refused.value.code == "invalid_model_threshold"


def test_install_writes_a_draft_per_call_and_is_tenant_scoped(db: Database, tenant, other_tenant) -> None:  # type: ignore[no-untyped-def]
    with db.uow() as uow:
        first = starter.install(uow, tenant.id, actor="test")
        second = starter.install(uow, tenant.id, actor="test", model_threshold=60)
        uow.commit()
    assert (first.number, second.number) == (1, 2) and first.rule_set_id == second.rule_set_id
    assert first.status == second.status == "draft"
    assert any(r["expression"].endswith(">= 60") for r in second.rules if r["id"] == "model.review")
    with db.uow(read_only=True) as uow:
        rule_set = service.get_rule_set(uow, tenant.id, first.rule_set_id)
        assert rule_set.name == starter.RULE_SET_NAME and rule_set.live_version_id is None
        assert sorted(rule_set.event_types) == sorted(starter.EVENT_TYPES)
        assert uow.session.query(RuleSet).filter(RuleSet.tenant_id == other_tenant.id).count() == 0
    with db.uow() as uow, pytest.raises(NotFound):
        starter.install(uow, other_tenant.id, actor="test", rule_set=first.rule_set_id)
    with db.uow() as uow, pytest.raises(NotFound):
        starter.install(uow, tenant.id, actor="test", rule_set="no such rule set")


def test_the_backtest_on_a_fixed_seed_catches_every_pattern(db: Database, tenant) -> None:  # type: ignore[no-untyped-def]
    """Seed 1's traffic decided with no rule set (every decision stored with its features), labelled, then the
    starter draft backtested once per pattern with that pattern's events labelled fraud: rules alone, no
    model."""
    history = fraud.generate(seed=1, days=5, customers=60, start=db.clock.now())
    decided: dict[str, list[str]] = defaultdict(list)
    with db.uow() as uow:
        for labelled in history:
            decision = service.decide(uow, tenant.id, event_type="payment", event=labelled.event, at=labelled.at)
            decided[labelled.pattern].append(decision.id)
            service.label_decision(uow, tenant.id, decision.id, Label.SUCCEEDED.value, actor="test")
        draft = starter.install(uow, tenant.id, actor="test")
        uow.commit()
    window = {"from_at": history[0].at, "to_at": history[-1].at + timedelta(seconds=1)}
    caught: dict[str, float] = {}
    for pattern in fraud.PATTERNS:
        with db.uow() as uow:
            for decision_id in decided[pattern]:
                service.label_decision(uow, tenant.id, decision_id, Label.FRAUD_CONFIRMED.value, actor="test")
            result = service.backtest(uow, tenant.id, draft.rule_set_id, draft.id, **window)
            for decision_id in decided[pattern]:
                service.label_decision(uow, tenant.id, decision_id, Label.SUCCEEDED.value, actor="test")
            uow.commit()
        assert result["fraud"] == len(decided[pattern]) > 0
        caught[pattern] = result["fraud_caught"] / result["fraud"]
        family = [r for r in result["rules"] if r["rule_id"].startswith(PATTERN_FAMILIES[pattern])]
        assert sum(r["labels"]["fraud_confirmed"] for r in family) > 0, pattern
    assert min(caught.values()) >= 0.4 and caught["card_testing"] == caught["promotion_abuse"] == 1.0, caught
    assert float(result["false_positive_rate"] or 0) < 0.25  # the other patterns count as non-fraud here


def test_cli_installs_a_draft_and_prints_the_pack(cli, db: Database, tenant) -> None:  # type: ignore[no-untyped-def]
    printed = cli.invoke(cli_app, ["risk", "starter", "--tenant", tenant.id, "--print"])
    assert printed.exit_code == 0, printed.output
    content = json.loads(printed.output)
    assert service.check_rules(content["rules"]) == [] and content["thresholds"]["payment"]
    installed = cli.invoke(cli_app, ["risk", "starter", "--tenant", tenant.id, "--model-threshold", "35"])
    assert installed.exit_code == 0, installed.output
    assert "Draft version 1" in installed.output
    with db.uow(read_only=True) as uow:
        rule_set = service.find_rule_set(uow, tenant.id, starter.RULE_SET_NAME)
        statuses = [v.status for v in service.list_versions(uow, tenant.id, rule_set.id)]
    assert statuses == ["draft"]
    missing = cli.invoke(cli_app, ["risk", "starter", "--tenant", tenant.id, "--rule-set", "nope"])
    assert missing.exit_code == 1 and "No rule set named nope" in missing.output
    out_of_range = cli.invoke(cli_app, ["risk", "starter", "--tenant", tenant.id, "--model-threshold", "1"])
    assert out_of_range.exit_code == 2
