"""Risk cases: lifecycle and illegal moves, resolvers in the closing transaction, idempotent open, listing,
labels, bad input, tenant isolation; the API and CLI; figures on a fixed set of decisions."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest

from finloop.cli import app
from finloop.core.errors import Conflict, InvalidRequest, NotFound
from finloop.db.uow import Database, UnitOfWork
from finloop.risk import lists, service
from finloop.risk.cases import figures as dashboard
from finloop.risk.cases import service as cases
from finloop.risk.cases.models import RiskCase
from finloop.risk.cases.state import CASE_TRANSITIONS, CaseStatus
from finloop.tenancy import service as tenancy
from finloop.tenancy.service import Principal, Role

RULES = [
    {"id": "big", "description": "Large payment", "expression": "event.amount >= 10000", "score": 5},
    {"id": "huge", "description": "Very large payment", "expression": "event.amount >= 100000", "score": 30},
    {"id": "odd_hour", "description": "Night", "expression": "event.hour < 6", "score": 1},
]
THRESHOLDS = {"*": {"review": 5, "decline": 20}}


def _publish(db: Database, tenant_id: str) -> None:
    maker = Principal(tenant_id, "user:maker", frozenset({Role.RISK_ANALYST}), user_id="usr_maker")
    checker = Principal(tenant_id, "user:checker", frozenset({Role.RISK_ANALYST}), user_id="usr_checker")
    with db.uow() as uow:
        rs = service.create_rule_set(uow, tenant_id, name="main", actor="test")
        version = service.create_version(uow, tenant_id, rs.id, rules=RULES, thresholds=THRESHOLDS, actor="test")
        approval_id = service.request_publish(uow, maker, rs.id, version.id).approval_id
        uow.commit()
    with db.uow() as uow:
        tenancy.decide_approval(uow, checker, approval_id or "", approve=True)
        uow.commit()
    with db.uow() as uow:
        assert service.request_publish(uow, maker, rs.id, version.id).status == "published"
        uow.commit()


def _event(n: int, amount: int) -> dict[str, Any]:
    return {"amount": amount, "currency": "CNY", "customer_id": f"cus_{n}", "device_id": f"dev_{n}",
            "ip": f"10.0.0.{n}", "card_token": f"tok_{n}"}


@pytest.fixture
def verdicts() -> Iterator[list[tuple[str, str]]]:
    seen: list[tuple[str, str]] = []

    def resolver(uow: UnitOfWork, case: RiskCase, verdict: str) -> None:
        if case.object_id == "pay_boom":
            raise RuntimeError("resolver failed")
        seen.append((case.object_id, verdict))

    # The payments wiring registered its own resolver at import: stand in for it, then put it back.
    wired = cases._resolver("payment")
    cases.register_resolver("payment", resolver)
    yield seen
    if wired is None:
        cases.unregister_resolver("payment")
    else:
        cases.register_resolver("payment", wired)


def test_case_lifecycle_resolvers_labels_and_lists(db: Database, tenant, other_tenant, clock,  # type: ignore[no-untyped-def]
                                                    verdicts) -> None:
    t = tenant.id
    _publish(db, t)
    with db.uow() as uow:
        decisions = {name: service.decide(uow, t, event_type="payment", event=_event(n, 20000),
                                          object_ref=f"pay_{name}")
                     for n, name in enumerate(["ok", "fraud", "listed", "boom"], start=1)}
        assert all(d.outcome.value == "review" for d in decisions.values())
        opened = {name: cases.open_case(uow, t, source="decision", object_type="payment", object_id=f"pay_{name}",
                                        reason="Review decision", decision_id=d.id, priority=5)
                  for name, d in decisions.items()}
        # Idempotent: the same open case; an AML alert on the same object is another case.
        again = cases.open_case(uow, t, source="decision", object_type="payment", object_id="pay_ok",
                                reason="again", decision_id=decisions["ok"].id)
        assert again.id == opened["ok"].id
        assert cases.find_open_case(uow, t, source="decision", object_type="payment", object_id="pay_ok") is again
        alert = cases.open_case(uow, t, source="aml_alert", object_type="payment", object_id="pay_ok",
                                reason="structuring", alert_id="aml_1")
        assert alert.id != opened["ok"].id
        uow.commit()
    ids = {name: c.id for name, c in opened.items()}

    # Bad input: 400s with their param, nothing written.
    with db.uow() as uow:
        bad_input: list[tuple[dict[str, Any], str]] = [
            ({"source": "tweet"}, "source"), ({"object_id": ""}, "object_id"), ({"reason": "x" * 501}, "reason"),
            ({"priority": -1}, "priority"), ({"priority": True}, "priority"),
            ({"object_type": "a\x00b"}, "object_type")]
        for kwargs, param in bad_input:
            args: dict[str, Any] = {"source": "decision", "object_type": "payment", "object_id": "pay_new",
                                    "reason": "r", **kwargs}
            with pytest.raises(InvalidRequest) as bad:
                cases.open_case(uow, t, **args)
            assert bad.value.param == param
        with pytest.raises(NotFound):  # another tenant's decision
            cases.open_case(uow, other_tenant.id, source="decision", object_type="payment", object_id="pay_x",
                            reason="r", decision_id=decisions["ok"].id)
        with pytest.raises(InvalidRequest) as bad:
            cases.close_case(uow, t, ids["ok"], outcome="confirmed_fraud", action="approve", actor="ann")
        assert bad.value.code == "invalid_action"
        with pytest.raises(InvalidRequest):
            cases.close_case(uow, t, ids["ok"], outcome="meh", action="none", actor="ann")
        assert len(cases.list_cases(uow, t)) == 5

    # Assign, note, close as a false positive with approve: resolver approves, decision labelled succeeded.
    with db.uow() as uow:
        case = cases.assign_case(uow, t, ids["ok"], assignee="ann", actor="lead")
        assert (case.status, case.assignee) == ("investigating", "ann")
        cases.add_note(uow, t, ids["ok"], body="Known customer,\nregular amount.", author="ann")
        case = cases.close_case(uow, t, ids["ok"], outcome="false_positive", action="approve", actor="ann",
                                note="Called the customer.")
        assert (case.status, case.outcome, case.action, case.closed_by) == ("closed", "false_positive", "approve",
                                                                            "ann")
        uow.commit()
    assert verdicts == [("pay_ok", "approve")]
    with db.uow() as uow:
        assert service.get_decision(uow, t, decisions["ok"].id).label == "succeeded"
        assert [n.seq for n in cases.list_notes(uow, t, ids["ok"])] == [1, 2]
        # Illegal moves: a closed case never moves (409); a new review opens a new case.
        with pytest.raises(Conflict) as illegal:
            cases.assign_case(uow, t, ids["ok"], assignee="bob", actor="lead")
        assert illegal.value.code == "invalid_case_state"
        with pytest.raises(Conflict):
            cases.close_case(uow, t, ids["ok"], outcome="false_positive", action="none", actor="ann")
        fresh = cases.open_case(uow, t, source="decision", object_type="payment", object_id="pay_ok", reason="r",
                                decision_id=decisions["ok"].id)
        assert fresh.id != ids["ok"] and fresh.status == "open"
        uow.commit()

    # A resolver that fails rolls the whole close back: no label, still open.
    with db.uow() as uow, pytest.raises(RuntimeError):
        cases.close_case(uow, t, ids["boom"], outcome="confirmed_fraud", action="decline", actor="ann")
    with db.uow() as uow:
        case = cases.get_case(uow, t, ids["boom"])
        assert (case.status, case.outcome) == ("open", None)
        assert service.get_decision(uow, t, decisions["boom"].id).label is None

    # Confirmed fraud, declined; and confirmed fraud added to the black list (which declines the object).
    with db.uow() as uow:
        cases.close_case(uow, t, ids["fraud"], outcome="confirmed_fraud", action="decline", actor="ann")
        cases.close_case(uow, t, ids["listed"], outcome="confirmed_fraud", action="add_to_list", actor="ann")
        uow.commit()
    assert verdicts[1:] == [("pay_fraud", "decline"), ("pay_listed", "decline")]
    with db.uow() as uow:
        assert service.get_decision(uow, t, decisions["fraud"].id).label == "fraud_confirmed"
        assert service.get_decision(uow, t, decisions["listed"].id).label == "fraud_confirmed"
        entries = lists.list_entries(uow, t, kind="black")
        assert sorted((e.level, e.value) for e in entries) == [
            ("card", "tok_3"), ("customer", "cus_3"), ("device", "dev_3"), ("ip", "10.0.0.3")]
        # The next decision of that customer is declined by the black list.
        assert service.decide(uow, t, event_type="payment", event={"amount": 100, "customer_id": "cus_3"}
                              ).outcome.value == "decline"
        # add_to_list needs a decision to list from.
        with pytest.raises(Conflict) as nothing:
            cases.close_case(uow, t, alert.id, outcome="valuable_alert", action="add_to_list", actor="ann")
        assert nothing.value.code == "nothing_to_list"
        # Filters and isolation.
        assert [c.id for c in cases.list_cases(uow, t, status="closed")] == sorted(
            [ids["ok"], ids["fraud"], ids["listed"]])
        assert [c.id for c in cases.list_cases(uow, t, source="aml_alert")] == [alert.id]
        assert cases.list_cases(uow, other_tenant.id) == []
        with pytest.raises(NotFound):
            cases.get_case(uow, other_tenant.id, ids["fraud"])
        actions = [a for (a,) in uow.session.execute(
            __import__("sqlalchemy").text("SELECT action FROM audit_events WHERE object_type = 'risk_case'"))]
        assert {"risk.case.opened", "risk.case.assigned", "risk.case.noted", "risk.case.closed",
                "risk.case.resolved"} <= set(actions)


def test_transition_table_is_closed() -> None:
    assert CASE_TRANSITIONS[CaseStatus.CLOSED] == frozenset()
    for status, targets in CASE_TRANSITIONS.items():
        for target in CaseStatus:
            if target not in targets:
                with pytest.raises(Conflict):
                    __import__("finloop.risk.cases.state", fromlist=["x"]).check_case_transition(status, target)


def test_figures_on_fixed_decisions(db: Database, tenant, other_tenant, clock) -> None:  # type: ignore[no-untyped-def]
    """Day 1 (T0 09:00 and on): 500 approve; 20000 review (big) ×3; 200000 decline (big, huge) ×2.
    Day 2: 500 approve ×2 at 03:00 (odd_hour → score 1, still approve). Labels: one review and one decline
    fraud, one approve fraud (missed), one decline succeeded."""
    t = tenant.id
    _publish(db, t)
    start = clock.now()
    day1 = [500, 20000, 20000, 20000, 200000, 200000]
    with db.uow() as uow:
        made = [service.decide(uow, t, event_type="payment", event=_event(n, amount),
                               at=start + timedelta(minutes=n)) for n, amount in enumerate(day1)]
        night = start.replace(hour=3) + timedelta(days=1)
        made += [service.decide(uow, t, event_type="payment", event=_event(10 + n, 500), at=night)
                 for n in range(2)]
        service.decide(uow, other_tenant.id, event_type="payment", event=_event(1, 999), at=start)
        for index, label in [(1, "fraud_confirmed"), (4, "fraud_confirmed"), (0, "fraud_confirmed"),
                             (5, "succeeded")]:
            service.label_decision(uow, t, made[index].id, label, actor="test")
        uow.commit()
    assert [d.outcome.value for d in made] == ["approve", "review", "review", "review", "decline", "decline",
                                               "approve", "approve"]
    with db.uow(read_only=True) as uow:
        result = dashboard.figures(uow, t, from_at=start.replace(hour=0), to_at=start.replace(hour=0)
                                   + timedelta(days=3), bucket="day")
        hourly = dashboard.figures(uow, t, from_at=start, to_at=start + timedelta(hours=2), bucket="hour")
        empty = dashboard.figures(uow, other_tenant.id, from_at=start, to_at=night)
        for bad in [dict(from_at=start, to_at=start), dict(from_at=start, to_at=start + timedelta(days=400)),
                    dict(from_at=start, to_at=start + timedelta(days=40), bucket="hour"),
                    dict(from_at=start, to_at=start + timedelta(days=1), bucket="week")]:
            with pytest.raises(InvalidRequest):
                dashboard.figures(uow, t, **bad)
    total = result["total"]
    assert (total["decisions"], total["hits"], total["reviews"], total["declines"]) == (8, 7, 3, 2)
    assert (total["fraud"], total["fraud_caught"], total["non_fraud"], total["non_fraud_flagged"]) == (3, 2, 5, 3)
    assert total["interception_rate"] == "0.6667" and total["false_positive_rate"] == "0.6000"
    assert total["review_rate"] == "0.3750" and total["approval_rate"] == "0.3750"
    assert total["hit_rate"] == "0.8750" and total["losses_prevented"] == {"CNY": 200000}
    assert [b["decisions"] for b in result["buckets"]] == [6, 2, 0]
    assert result["buckets"][2]["interception_rate"] is None
    rules = {r["rule_id"]: r for r in result["rules"]}
    assert sorted(rules) == ["big", "huge", "odd_hour"]
    big = rules["big"]["total"]
    assert (big["hits"], big["reviews"], big["declines"], big["fraud_caught"], big["non_fraud_flagged"]) == (
        5, 3, 2, 2, 3)
    assert big["decline_rate"] == "0.4000" and big["interception_rate"] == "0.6667"
    assert rules["huge"]["total"]["losses_prevented"] == {"CNY": 200000}
    assert rules["odd_hour"]["buckets"][1]["hits"] == 2 and rules["odd_hour"]["total"]["review_rate"] == "0.0000"
    assert [b["decisions"] for b in hourly["buckets"]] == [6, 0]
    assert empty["total"]["decisions"] == 1 and empty["rules"] == []


def test_cases_api_and_cli(db: Database, client, tenant, other_tenant, cli) -> None:  # type: ignore[no-untyped-def]
    t = tenant.id
    with db.uow() as uow:
        decision = service.decide(uow, t, event_type="payment", event=_event(1, 700), object_ref="pay_1")
        case = cases.open_case(uow, t, source="decision", object_type="payment", object_id="pay_1",
                               reason="Manual review", decision_id=decision.id)
        uow.commit()
    h = tenant.headers
    listed = client.get("/v1/risk/cases?status=open&source=decision&object_type=payment", headers=h)
    assert listed.status_code == 200 and [c["id"] for c in listed.json()["data"]] == [case.id]
    assert client.get(f"/v1/risk/cases/{case.id}", headers=other_tenant.headers).status_code == 404
    assert client.get("/v1/risk/cases", headers=other_tenant.headers).json()["data"] == []
    assert client.post(f"/v1/risk/cases/{case.id}/assign", headers=other_tenant.headers,
                       json={"assignee": "eve"}).status_code == 404
    assigned = client.post(f"/v1/risk/cases/{case.id}/assign", headers=h, json={"assignee": "ann"})
    assert assigned.status_code == 200 and assigned.json()["status"] == "investigating"
    noted = client.post(f"/v1/risk/cases/{case.id}/notes", headers=h, json={"body": "Looks fine."})
    assert noted.status_code == 201 and noted.json()["seq"] == 1
    for body in [{"outcome": "false_positive"}, {"outcome": "nope", "action": "none"},
                 {"outcome": "false_positive", "action": "none", "extra": 1}]:
        assert client.post(f"/v1/risk/cases/{case.id}/close", headers=h, json=body).status_code == 400
    refused = client.post(f"/v1/risk/cases/{case.id}/close", headers=h,
                          json={"outcome": "confirmed_fraud", "action": "approve"})
    assert refused.status_code == 400 and refused.json()["error"]["param"] == "action"
    closed = client.post(f"/v1/risk/cases/{case.id}/close", headers=h,
                         json={"outcome": "false_positive", "action": "none", "note": "ok"})
    assert closed.status_code == 200 and closed.json()["outcome"] == "false_positive"
    again = client.post(f"/v1/risk/cases/{case.id}/assign", headers=h, json={"assignee": "bob"})
    assert again.status_code == 409 and again.json()["error"]["code"] == "invalid_case_state"
    detail = client.get(f"/v1/risk/cases/{case.id}", headers=h).json()
    assert [n["body"] for n in detail["notes"]] == ["Looks fine.", "ok"]
    assert detail["decision"]["id"] == decision.id and detail["decision"]["amount"] == 700

    figures = client.get("/v1/risk/figures", headers=h, params={
        "from_at": "2026-03-02T00:00:00Z", "to_at": "2026-03-03T00:00:00Z", "bucket": "hour"})
    assert figures.status_code == 200, figures.text
    assert figures.json()["total"]["decisions"] == 1 and len(figures.json()["buckets"]) == 24
    assert client.get("/v1/risk/figures", headers=h, params={
        "from_at": "2026-03-02T00:00:00Z", "to_at": "2026-03-01T00:00:00Z"}).status_code == 400
    assert client.get("/v1/risk/figures", headers=h, params={
        "from_at": "2026-03-02T00:00:00", "to_at": "2026-03-03T00:00:00Z"}).status_code == 400

    for edge in [("0001-01-02T00:00:00Z", "0001-01-03T00:00:00Z"), ("9999-12-29T00:00:00Z", "9999-12-30T00:00:00Z")]:
        at_edge = client.get("/v1/risk/figures", headers=h, params={"from_at": edge[0], "to_at": edge[1],
                                                                     "bucket": "hour"})
        assert at_edge.status_code == 200 and at_edge.json()["total"]["decisions"] == 0, at_edge.text

    shown = cli.invoke(app, ["risk", "cases", "--tenant", t, "--status", "closed"])
    assert shown.exit_code == 0 and case.id in shown.output, shown.output
    fig = cli.invoke(app, ["risk", "figures", "--tenant", t, "--from", "2026-03-02", "--to", "2026-03-03",
                           "--json"])
    assert fig.exit_code == 0 and json.loads(fig.output)["total"]["decisions"] == 1, fig.output
    table = cli.invoke(app, ["risk", "figures", "--tenant", t, "--from", "2026-03-02", "--to", "2026-03-03"])
    assert table.exit_code == 0 and "total" in table.output
    assert cli.invoke(app, ["risk", "cases", "--tenant", t, "--status", "bogus"]).exit_code == 1


def test_open_is_idempotent_under_concurrency(db: Database, db_url: str, tenant) -> None:  # type: ignore[no-untyped-def]
    """Two transactions open the same case at once (PostgreSQL; SQLite serialises writers): one case."""
    if not db_url.startswith("postgresql"):
        pytest.skip("SQLite runs one writer at a time")
    import threading

    args: dict[str, Any] = {"source": "aml_alert", "object_type": "customer", "object_id": "cus_1",
                            "reason": "structuring", "alert_id": "aml_1"}
    found: list[str] = []
    with db.uow() as first:
        opened = cases.open_case(first, tenant.id, **args)

        def second() -> None:
            with db.uow() as uow:
                found.append(cases.open_case(uow, tenant.id, **args).id)
                uow.commit()

        racer = threading.Thread(target=second)
        racer.start()
        racer.join(0.3)
        assert racer.is_alive()  # waiting on the first transaction's open key
        first.commit()
    racer.join(10)
    assert found == [opened.id]
    with db.uow() as uow:
        assert [c.id for c in cases.list_cases(uow, tenant.id)] == [opened.id]
