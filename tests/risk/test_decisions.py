"""Pure decision pieces: verdicts, thresholds, masking, rates; and the CLI on both databases."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from finloop.cli import app
from finloop.core.errors import InvalidRequest
from finloop.risk.domain import (
    FiredRule,
    Outcome,
    Thresholds,
    mask_event,
    parse_thresholds,
    rate,
    verdict,
)

fired_rules = st.lists(st.builds(FiredRule, rule_id=st.from_regex(r"[a-z]{1,5}", fullmatch=True),
                                 score=st.integers(-50, 50),
                                 outcome=st.sampled_from([None, None, Outcome.REVIEW, Outcome.DECLINE])), max_size=8)


@settings(max_examples=60, deadline=None)
@given(fired=fired_rules, review=st.integers(1, 30), extra=st.integers(0, 30))
def test_verdict_forced_outcomes_win_and_score_sums(fired: list[FiredRule], review: int, extra: int) -> None:
    thresholds = Thresholds(review=review, decline=review + extra)
    result = verdict(fired, thresholds, {})
    assert result.score == sum(f.score for f in fired)
    severity = {Outcome.APPROVE: 0, Outcome.REVIEW: 1, Outcome.DECLINE: 2}
    forced = max((severity[f.outcome] for f in fired if f.outcome), default=0)
    assert severity[result.outcome] == max(forced, severity[thresholds.outcome(result.score)])
    assert (result.outcome is Outcome.APPROVE) == (not result.reasons)


def test_thresholds_and_masking_and_rates() -> None:
    assert parse_thresholds({"*": {"review": 1, "decline": 20}})["*"] == Thresholds(1, 20)
    for bad in ({"payment": {"review": 5, "decline": 4}}, {"mars": {"review": 1, "decline": 2}},
                {"payment": {"review": True, "decline": 2}}, {"payment": {"review": 1}}, []):
        with pytest.raises(InvalidRequest):
            parse_thresholds(bad)
    masked = mask_event({"phone": "+8613812345678", "email": "ann@example.com", "amount": 5,
                         "customer": {"national_id": "110101199003071234", "segment": "a"}})
    assert masked == {"phone": "****5678", "email": "a***@example.com", "amount": 5,
                      "customer": {"national_id": "****1234", "segment": "a"}}
    assert rate(2, 3) == "0.6667" and rate(0, 0) is None and rate(1, 8) == "0.1250"


def test_cli_validate_decide_rules_and_backtest(cli, db, tenant, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps([{"id": "r1", "expression": "event.amount > 1.5", "score": 1}]))
    result = cli.invoke(app, ["risk", "validate", "--file", str(bad)])
    assert result.exit_code == 1 and "r1 line 1 column" in result.output
    good = tmp_path / "good.json"
    good.write_text(json.dumps({"rules": [{"id": "r1", "expression": "event.amount > 100", "score": 30}],
                                "thresholds": {"*": {"review": 1, "decline": 20}}}))
    result = cli.invoke(app, ["risk", "validate", "--file", str(good)])
    assert result.exit_code == 0 and "1 rules valid" in result.output

    decided = cli.invoke(app, ["risk", "decide", "--tenant", tenant.id, "--event-type", "payment",
                               "--event", '{"amount": 500, "customer_id": "c1"}'])
    assert decided.exit_code == 0, decided.output
    assert json.loads(decided.output)["outcome"] == "approve"
    refused = cli.invoke(app, ["risk", "decide", "--tenant", tenant.id, "--event-type", "payment",
                               "--event", '{"amount": 1.5}'])
    assert refused.exit_code == 1

    from finloop.risk import service
    with db.uow() as uow:
        rs = service.create_rule_set(uow, tenant.id, name="main", actor="test")
        service.create_version(uow, tenant.id, rs.id, actor="test",
                               rules=json.loads(good.read_text())["rules"])
        # The CLI's decision above used the system clock; this one is at the test clock's T0.
        service.decide(uow, tenant.id, event_type="payment", event={"amount": 500})
        uow.commit()
    listed = cli.invoke(app, ["risk", "rules", "--tenant", tenant.id])
    assert listed.exit_code == 0 and "main" in listed.output and "draft" in listed.output
    replay = cli.invoke(app, ["risk", "backtest", "--tenant", tenant.id, "--rule-set", "main", "--version", "1",
                              "--from", "2026-03-01", "--to", "2026-03-03", "--json"])
    assert replay.exit_code == 0, replay.output
    figures = json.loads(replay.output)
    assert figures["events"] == 1 and figures["outcomes"]["decline"] == 1 and figures["rules"][0]["hits"] == 1
