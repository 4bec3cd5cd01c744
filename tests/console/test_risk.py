"""The Risk pages as staff use them: an analyst drafts, validates, backtests and asks to publish rules, another
analyst approves, the first publishes; the dashboard, lists, case queue and model registry; auditors read but
never act; another tenant's objects are not found."""

from __future__ import annotations

import csv
import io
import json
from datetime import timedelta
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import func, select

from finloop.audit.models import AuditEvent
from finloop.db.uow import Database
from finloop.risk import service as risk
from finloop.risk.cases import service as cases
from finloop.risk.cases.models import RiskCase
from finloop.risk.ml.models import RiskModel
from finloop.risk.models import RiskDecision, RiskListEntry, RuleSetVersion
from finloop.tenancy import service as tenancy
from finloop.tenancy.models import ApprovalRequest
from finloop.tenancy.service import Principal, Role
from tests.conftest import TenantHandle

RULES = [
    {"id": "big", "description": "Large payment", "expression": "event.amount >= 10000", "score": 5},
    {"id": "huge", "description": "Very large payment", "expression": "event.amount >= 100000", "score": 30},
]
THRESHOLDS = {"*": {"review": 5, "decline": 20}}
GOOD_BODY = json.dumps({"rules": RULES, "thresholds": THRESHOLDS, "note": "first rules"})
BAD_BODY = json.dumps({"rules": [{"id": "typo", "expression": "event.amount > 'five'", "score": 1}]})


def _audit_count(db: Database, tenant_id: str) -> int:
    with db.uow(read_only=True) as uow:
        return int(uow.session.scalar(select(func.count()).select_from(AuditEvent)
                                      .where(AuditEvent.tenant_id == tenant_id)) or 0)


def _count(db: Database, model: Any) -> int:
    with db.uow(read_only=True) as uow:
        return int(uow.session.scalar(select(func.count()).select_from(model)) or 0)


def _version(db: Database, version_id: str) -> RuleSetVersion:
    with db.uow(read_only=True) as uow:
        version = uow.session.get(RuleSetVersion, version_id)
        assert version is not None
        uow.session.expunge(version)
        return version


def _decide(client: TestClient, tenant: TenantHandle, amount: int, n: int) -> dict[str, Any]:
    answer = client.post("/v1/risk/decisions", headers=tenant.headers, json={
        "event_type": "payment", "object_ref": f"pay_{n}",
        "event": {"amount": amount, "currency": "CNY", "customer_id": f"cus_{n}", "ip": f"10.0.0.{n}"}})
    assert answer.status_code == 201, answer.text
    return dict(answer.json())


def _publish_by_service(db: Database, tenant_id: str, rule_set_id: str, rules: list[dict[str, Any]]) -> str:
    maker = Principal(tenant_id, "user:maker", frozenset({Role.RISK_ANALYST}), user_id="usr_maker")
    checker = Principal(tenant_id, "user:checker", frozenset({Role.RISK_ANALYST}), user_id="usr_checker")
    with db.uow() as uow:
        version = risk.create_version(uow, tenant_id, rule_set_id, rules=rules, thresholds=THRESHOLDS, actor="test")
        approval_id = risk.request_publish(uow, maker, rule_set_id, version.id).approval_id
        uow.commit()
    with db.uow() as uow:
        tenancy.decide_approval(uow, checker, approval_id or "", approve=True)
        uow.commit()
    with db.uow() as uow:
        assert risk.request_publish(uow, maker, rule_set_id, version.id).status == "published"
        uow.commit()
    return version.id


def test_draft_validate_backtest_approve_publish_and_roll_back(client: TestClient, db: Database, tenant,  # type: ignore[no-untyped-def]
                                                               other_tenant, staff_factory) -> None:
    created = client.post("/v1/risk/rule-sets", headers=tenant.headers,
                          json={"name": "payments", "event_types": ["payment"]})
    assert created.status_code == 201, created.text
    rule_set_id = created.json()["id"]
    # Stored events to replay: three payments, the largest later confirmed as fraud.
    decided = [_decide(client, tenant, amount, n) for n, amount in enumerate((500, 20_000, 200_000), start=1)]
    assert client.post(f"/v1/risk/decisions/{decided[2]['id']}/label", headers=tenant.headers,
                       json={"label": "fraud_confirmed"}).status_code == 200

    analyst = staff_factory("risk_analyst")
    checker = staff_factory("risk_analyst")
    auditor = staff_factory("auditor")
    page = f"/console/risk/rule-sets/{rule_set_id}"
    listed = auditor.get("/console/risk/rule-sets")
    assert listed.status_code == 200 and "payments" in listed.text
    assert auditor.get(page).status_code == 200

    # Validate: a type error is shown with its rule and position, the text is kept, nothing is written.
    before = _audit_count(db, tenant.id)
    bad = analyst.post(f"{page}/validate", {"body": BAD_BODY}, page=page)
    assert bad.status_code == 400 and "invalid_rule" in bad.text and "typo" in bad.text
    assert "event.amount &gt; &#39;five&#39;" in bad.text
    not_json = analyst.post(f"{page}/validate", {"body": "{rules"}, page=page)
    assert not_json.status_code == 400 and "invalid_json" in not_json.text
    good = analyst.post(f"{page}/validate", {"body": GOOD_BODY}, page=page)
    assert good.status_code == 200 and "Valid: 2 rules checked" in good.text
    assert _audit_count(db, tenant.id) == before and _count(db, RuleSetVersion) == 0
    # A draft whose structure is wrong is refused beside its text; nothing is written.
    unscored = analyst.post(f"{page}/versions", {"body": json.dumps({"rules": [{"id": "x", "expression": "true"}]})},
                            page=page)
    assert unscored.status_code == 400 and "rules[0].score" in unscored.text
    assert _count(db, RuleSetVersion) == 0

    drafted = analyst.post(f"{page}/versions", {"body": GOOD_BODY}, page=page)
    assert drafted.status_code == 303, drafted.text
    version_path = drafted.headers["location"]
    version_id = version_path.rsplit("/", 1)[1]
    assert _version(db, version_id).status == "draft" and _version(db, version_id).note == "first rules"
    shown = analyst.get(version_path)
    assert shown.status_code == 200 and "event.amount &gt;= 100000" in shown.text
    assert "Request publication</button>" not in shown.text and "Backtest</button>" in shown.text
    assert analyst.post(f"{version_path}/validate", page=version_path).status_code == 200

    # No publication request before a backtest in the console: 409, nothing parked.
    early = analyst.post(f"{version_path}/request-publication", page=version_path)
    assert early.status_code == 409 and "backtest_required" in early.text
    assert _count(db, ApprovalRequest) == 0 and _version(db, version_id).status == "draft"

    tested = analyst.post(f"{version_path}/backtest", {"from": "2026-02-01", "to": "2026-03-02"}, page=version_path)
    assert tested.status_code == 303, tested.text
    figures = analyst.get(version_path)
    assert "Replayed 3 stored events" in figures.text and "Request publication</button>" in figures.text
    assert "Would decline" in figures.text and "Precision" in figures.text and "100.0%" in figures.text
    with db.uow(read_only=True) as uow:
        [recorded] = uow.session.scalars(select(AuditEvent).where(
            AuditEvent.action == "risk.rule_set_version.backtested", AuditEvent.object_id == version_id)).all()
        assert recorded.after is not None
        assert recorded.after["outcomes"] == {"approve": 1, "review": 1, "decline": 1}
        assert recorded.after["fraud_caught"] == 1 and recorded.after["interception_rate"] == "1.0000"
    assert analyst.post(f"{version_path}/backtest", {"from": "2026-03-02", "to": "2026-02-01"},
                        page=version_path).status_code == 400

    asked = analyst.post(f"{version_path}/request-publication", page=version_path)
    assert asked.status_code == 303, asked.text
    version = _version(db, version_id)
    assert version.status == "pending_approval" and version.approval_id is not None
    with db.uow(read_only=True) as uow:
        approval = tenancy.get_approval(uow, tenant.id, version.approval_id)
        assert (approval.action, approval.object_id) == (risk.PUBLISH_ACTION, version_id)
    approval_path = f"/console/approvals/{version.approval_id}"
    assert f'href="{version_path}"' in checker.get(approval_path).text

    # The maker can neither approve their own request nor publish before the approval.
    own = analyst.post(f"{approval_path}/approve", page=version_path)
    assert own.status_code == 403 and "self_approval" in own.text
    waiting = analyst.post(f"{version_path}/publish", page=version_path)
    assert waiting.status_code == 409 and "approval_pending" in waiting.text
    assert checker.post(f"{approval_path}/approve", page=approval_path).status_code == 303
    ready = analyst.get(version_path)
    assert "Publish</button>" in ready.text
    published = analyst.post(f"{version_path}/publish", page=version_path)
    assert published.status_code == 303, published.text
    assert _version(db, version_id).status == "published"
    with db.uow(read_only=True) as uow:
        assert risk.get_rule_set(uow, tenant.id, rule_set_id).live_version_id == version_id
    live = _decide(client, tenant, 200_000, 9)
    assert (live["rule_set_version_id"], live["outcome"]) == (version_id, "decline")
    for action in ("risk.backtested", "risk.publication_requested", "risk.published"):
        with db.uow(read_only=True) as uow:
            assert uow.session.scalar(select(AuditEvent).where(AuditEvent.action == f"console.{action}",
                                                               AuditEvent.object_id == version_id)) is not None

    # A second version goes live; rolling back brings the first back.
    second = _publish_by_service(db, tenant.id, rule_set_id, RULES[:1])
    assert "Roll back</button>" in analyst.get(page).text
    rolled = analyst.post(f"{page}/rollback", page=page)
    assert rolled.status_code == 303
    assert (_version(db, second).status, _version(db, version_id).status) == ("rolled_back", "published")
    versions_page = auditor.get(page)
    assert "rolled back" in versions_page.text and version.created_by in versions_page.text

    # An auditor reads everything and is refused every action; nothing is written.
    draft = analyst.post(f"{page}/versions", {"body": GOOD_BODY}, page=page).headers["location"]
    before = _audit_count(db, tenant.id)
    versions = _count(db, RuleSetVersion)
    assert auditor.get(draft).status_code == 200 and "Backtest</button>" not in auditor.get(draft).text
    refused = [
        auditor.post("/console/risk/rule-sets", {"name": "mine"}, page=draft),
        auditor.post(f"{page}/validate", {"body": GOOD_BODY}, page=draft),
        auditor.post(f"{page}/versions", {"body": GOOD_BODY}, page=draft),
        auditor.post(f"{page}/rollback", page=draft),
        auditor.post(f"{draft}/validate", page=draft),
        auditor.post(f"{draft}/backtest", {"from": "2026-02-01", "to": "2026-03-02"}, page=draft),
        auditor.post(f"{draft}/request-publication", page=draft),
        auditor.post(f"{draft}/publish", page=draft),
        auditor.post(f"{draft}/return-to-draft", page=draft),
    ]
    assert [r.status_code for r in refused] == [403] * len(refused)
    assert all("role_not_allowed" in r.text for r in refused)
    assert _audit_count(db, tenant.id) == before and _count(db, RuleSetVersion) == versions

    # Another tenant's rule set and versions are not found, to read or to act on.
    with db.uow() as uow:
        foreign = risk.create_rule_set(uow, other_tenant.id, name="theirs", actor="test")
        foreign_version = risk.create_version(uow, other_tenant.id, foreign.id, rules=RULES, actor="test")
        uow.commit()
    assert analyst.get(f"/console/risk/rule-sets/{foreign.id}").status_code == 404
    assert analyst.get(f"/console/risk/versions/{foreign_version.id}").status_code == 404
    assert "theirs" not in analyst.get("/console/risk/rule-sets").text
    for path in (f"/console/risk/rule-sets/{foreign.id}/rollback", f"/console/risk/versions/{foreign_version.id}/"
                 "backtest", f"/console/risk/versions/{foreign_version.id}/request-publication"):
        answer = analyst.post(path, {"from": "2026-02-01", "to": "2026-03-02"}, page=page)
        assert answer.status_code == 404, path
    assert _version(db, foreign_version.id).status == "draft"


def test_dashboard_lists_cases_and_models(client: TestClient, db: Database, tenant, other_tenant,  # type: ignore[no-untyped-def]
                                          clock, staff_factory) -> None:
    with db.uow() as uow:
        rule_set = risk.create_rule_set(uow, tenant.id, name="main", actor="test")
        uow.commit()
    _publish_by_service(db, tenant.id, rule_set.id, RULES)
    # Five decisions: two approved, two reviewed, one declined; one reviewed later found legitimate.
    amounts = (500, 600, 20_000, 30_000, 200_000)
    decided = [_decide(client, tenant, amount, n) for n, amount in enumerate(amounts, start=1)]
    assert [d["outcome"] for d in decided] == ["approve", "approve", "review", "review", "decline"]
    client.post(f"/v1/risk/decisions/{decided[2]['id']}/label", headers=tenant.headers, json={"label": "succeeded"})

    analyst = staff_factory("risk_analyst")
    auditor = staff_factory("auditor")
    board = auditor.get("/console/risk")
    assert board.status_code == 200 and "<svg" in board.text
    assert "60.0%" in board.text and "3 of 5 declined or reviewed" in board.text  # interception
    assert "33.3%" in board.text and "1 of 3 declined or reviewed later labelled" in board.text  # false positives
    assert ">big<" in board.text and ">huge<" in board.text
    assert auditor.get("/console/risk", params={"days": "7"}).status_code == 200

    # Lists: add, find, export, remove; an auditor may do neither.
    added = analyst.post("/console/risk/lists", {"kind": "black", "level": "ip", "value": "10.9.9.9",
                                                 "reason": "card testing", "expires_on": ""},
                         page="/console/risk/lists")
    assert added.status_code == 303, added.text
    entry_path = added.headers["location"]
    entries = auditor.get("/console/risk/lists", params={"kind": "black", "state": "active"})
    assert entries.status_code == 200 and "10.9.9.9" in entries.text
    assert "10.9.9.9" not in auditor.get("/console/risk/lists", params={"kind": "white"}).text
    exported = auditor.get("/console/risk/lists", params={"format": "csv"})
    assert [row["Value"] for row in csv.DictReader(io.StringIO(exported.text))] == ["10.9.9.9"]
    twice = analyst.post("/console/risk/lists", {"kind": "black", "level": "ip", "value": "10.9.9.9", "reason": "x"},
                         page="/console/risk/lists")
    assert twice.status_code == 409 and "list_entry_exists" in twice.text
    assert auditor.post("/console/risk/lists", {"kind": "black", "level": "ip", "value": "10.1.1.1", "reason": "x"},
                        page="/console/risk/lists").status_code == 403
    assert auditor.post(f"{entry_path}/remove", page="/console/risk/lists").status_code == 403
    assert analyst.post(f"{entry_path}/remove", page=entry_path).status_code == 303
    with db.uow(read_only=True) as uow:
        [entry] = uow.session.scalars(select(RiskListEntry)).all()
        assert entry.removed_at is not None and entry.removed_by == f"user:{analyst.user_id}"
    assert "10.9.9.9" not in auditor.get("/console/risk/lists", params={"state": "active"}).text

    # Cases: the queue, a case with its decisions, assign, note and resolve.
    with db.uow() as uow:
        case = cases.open_case(uow, tenant.id, source="decision", object_type="payment", object_id="pay_4",
                               reason="Review decision", decision_id=decided[3]["id"], priority=5)
        foreign_case = cases.open_case(uow, other_tenant.id, source="decision", object_type="payment",
                                       object_id="pay_x", reason="theirs")
        uow.commit()
    queue = auditor.get("/console/risk/cases", params={"status": "open"})
    assert queue.status_code == 200 and case.id in queue.text and foreign_case.id not in queue.text
    assert case.id not in auditor.get("/console/risk/cases", params={"status": "closed"}).text
    assert case.id in auditor.get("/console/risk/cases", params={"q": "pay_4"}).text
    case_path = f"/console/risk/cases/{case.id}"
    detail = auditor.get(case_path)
    assert detail.status_code == 200 and decided[3]["id"] in detail.text and "Large payment" in detail.text
    before = _audit_count(db, tenant.id)
    for path, data in ((f"{case_path}/assign", {"assignee": "me"}), (f"{case_path}/notes", {"body": "n"}),
                       (f"{case_path}/close", {"outcome": "confirmed_fraud", "action": "decline"})):
        assert auditor.post(path, data, page="/console/risk/lists").status_code == 403
    assert _audit_count(db, tenant.id) == before
    assert analyst.post(f"{case_path}/assign", {"assignee": ""}, page=case_path).status_code == 303
    assert analyst.post(f"{case_path}/notes", {"body": "Same card as a chargeback"}, page=case_path).status_code == 303
    contradictory = analyst.post(f"{case_path}/close", {"outcome": "confirmed_fraud", "action": "approve"},
                                 page=case_path)
    assert contradictory.status_code == 400 and "invalid_action" in contradictory.text
    closed = analyst.post(f"{case_path}/close", {"outcome": "confirmed_fraud", "action": "none", "note": "done"},
                          page=case_path)
    assert closed.status_code == 303, closed.text
    with db.uow(read_only=True) as uow:
        row = uow.session.get(RiskCase, case.id)
        assert row is not None and (row.status, row.outcome, row.assignee) == (
            "closed", "confirmed_fraud", f"user:{analyst.user_id}")
        decision = uow.session.get(RiskDecision, decided[3]["id"])
        assert decision is not None and decision.label == "fraud_confirmed"
    resolved = auditor.get(case_path).text
    assert "Same card as a chargeback" in resolved and "Resolve</button>" not in resolved
    assert analyst.get(f"/console/risk/cases/{foreign_case.id}").status_code == 404
    assert analyst.post(f"/console/risk/cases/{foreign_case.id}/assign", {"assignee": "me"},
                        page=case_path).status_code == 404

    # Models: the registry's versions with their metrics; promoting moves the champion.
    with db.uow() as uow:
        rows = [RiskModel(
            id=uow.ids.new("risk_model"), tenant_id=tenant_id, name="fraud", version=number, status=status,
            algorithm="lightgbm", model_text="tree", digest="0" * 64, features=["amount"], encoding={},
            threshold=600, metrics={"auc": auc, "precision": 0.5, "recall": 0.4}, params={"rounds": 30},
            reference={}, data_from=clock.now() - timedelta(days=10), data_to=clock.now(),
            split_at=clock.now() - timedelta(days=2), drift=None, drift_at=None, created_by="test",
            created_at=clock.now(), promoted_at=None, retired_at=None)
            for tenant_id, number, status, auc in ((tenant.id, 1, "challenger", 0.8712),
                                                   (tenant.id, 2, "champion", 0.9134),
                                                   (other_tenant.id, 1, "champion", 0.5555))]
        uow.session.add_all(rows)
        uow.commit()
    challenger, champion, foreign_model = (row.id for row in rows)
    registry = auditor.get("/console/risk/models")
    assert registry.status_code == 200 and "0.9134" in registry.text and "0.8712" in registry.text
    assert "champion" in registry.text and "0.5555" not in registry.text
    assert champion in auditor.get("/console/risk/models", params={"status": "champion"}).text
    assert challenger not in auditor.get("/console/risk/models", params={"status": "champion"}).text
    assert "auc" in auditor.get(f"/console/risk/models/{challenger}").text
    assert auditor.post(f"/console/risk/models/{challenger}/promote", page="/console/risk/lists").status_code == 403
    assert analyst.post(f"/console/risk/models/{challenger}/promote",
                        page=f"/console/risk/models/{challenger}").status_code == 303
    with db.uow(read_only=True) as uow:
        assert dict(uow.session.execute(select(RiskModel.id, RiskModel.status).where(
            RiskModel.tenant_id == tenant.id)).all()) == {challenger: "champion", champion: "retired"}
    assert analyst.get(f"/console/risk/models/{foreign_model}").status_code == 404
