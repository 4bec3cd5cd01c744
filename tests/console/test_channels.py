"""The Channels & routing pages: health, success rate over time, one channel's story, and routing configs
changed by an admin (audited) and refused to everyone else."""

from __future__ import annotations

import csv
import io
import json
from decimal import Decimal

from fastapi.testclient import TestClient

from finloop.audit.models import AuditEvent
from finloop.db.uow import Database
from finloop.payments.connectors.sandbox.app import InProcessSandbox
from finloop.payments.connectors.sandbox.engine import ChannelProfile
from finloop.payments.routing.models import RoutingConfigRow, RoutingOutcome
from tests.conftest import make_tenant
from tests.console.conftest import sign_in
from tests.payments.conftest import Shop, tokenize

PRIORITY = {"strategy": {"type": "priority", "channels": ["paypal", "unionpay"]}}


def _pay(client: TestClient, shop: Shop, sandbox: InProcessSandbox, count: int = 3) -> None:
    for code in shop.channels:
        sandbox.engine.configure(code, ChannelProfile(success_share=Decimal(1), latency_ms=(5, 10, 20)))
    card = tokenize(client, shop.tenant)
    for n in range(count):
        payment = client.post("/v1/payments", headers=shop.tenant.headers, json={
            "merchant_id": shop.merchant_id, "amount": 10_000, "currency": "CNY", "method": "card",
            "order_reference": f"order-{n}", "card_id": card, "confirm": True}).json()
        assert payment["status"] == "succeeded", payment


def _configs(db: Database) -> list[tuple[str, int, dict[str, object]]]:
    with db.uow(read_only=True) as uow:
        return [(row.scope, row.version, row.body) for row in uow.session.query(RoutingConfigRow)]


def _config_events(db: Database) -> list[AuditEvent]:
    with db.uow(read_only=True) as uow:
        return list(uow.session.query(AuditEvent).filter(AuditEvent.action == "console.routing.config_set"))


def test_channels_show_health_success_rate_and_export(client: TestClient, shop: Shop, sandbox: InProcessSandbox,
                                                      db: Database, staff_factory) -> None:  # type: ignore[no-untyped-def]
    _pay(client, shop, sandbox)
    with db.uow(read_only=True) as uow:
        used = {row.channel for row in uow.session.query(RoutingOutcome)}
    assert used
    auditor = staff_factory("auditor")
    page = auditor.get("/console/channels")
    assert page.status_code == 200, page.text
    assert "unionpay" in page.text and "paypal" in page.text and "<svg" in page.text
    assert ">closed</span>" in page.text
    assert "100.0%" in page.text  # every outcome succeeded
    assert "<circle" in page.text  # the day's point is drawn
    hourly = auditor.get("/console/channels", params={"by": "hour"})
    assert hourly.status_code == 200 and "<circle" in hourly.text
    assert auditor.get("/console/channels", params={"by": "week"}).status_code == 400
    assert "paypal" not in auditor.get("/console/channels", params={"q": "union"}).text.split("<h2>Channels</h2>")[1]

    exported = auditor.get("/console/channels", params={"format": "csv"})
    assert exported.headers["content-type"].startswith("text/csv")
    rows = {row["Channel"]: row for row in csv.DictReader(io.StringIO(exported.text))}
    assert set(rows) == {"unionpay", "paypal"}
    for code in used:
        assert rows[code]["Breaker"] == "closed" and rows[code]["Success rate (30 days)"] == "1.0"

    code = sorted(used)[0]
    detail = auditor.get(f"/console/channels/{code}")
    assert detail.status_code == 200
    assert "Recent outcomes" in detail.text and shop.merchant_id in detail.text and detail.text.count("<svg") == 2
    assert "<circle" in auditor.get(f"/console/channels/{code}", params={"by": "hour"}).text
    assert auditor.get("/console/channels/nope").status_code == 404


def test_an_admin_changes_routing_configs_and_it_is_audited(client: TestClient, shop: Shop, db: Database,
                                                           staff_factory) -> None:  # type: ignore[no-untyped-def]
    admin = staff_factory("admin")
    page = admin.get("/console/channels/routing/default")
    assert page.status_code == 200 and "built-in default" in page.text and "<textarea" in page.text
    saved = admin.post("/console/channels/routing/default", {"config": json.dumps(PRIORITY)},
                       page="/console/channels/routing/default")
    assert saved.status_code == 303, saved.text
    assert saved.headers["location"] == "/console/channels/routing/default"
    [(scope, version, body)] = _configs(db)
    assert (scope, version, body["strategy"]) == ("default", 1, PRIORITY["strategy"])
    [event] = _config_events(db)
    assert (event.action, event.object_type, event.object_id) == ("console.routing.config_set", "routing_config",
                                                                  "default")

    merchant_page = admin.get(f"/console/channels/routing/{shop.merchant_id}")
    assert merchant_page.status_code == 200 and "the tenant default" in merchant_page.text
    weighted = {"strategy": {"type": "weighted", "weights": {"unionpay": 3, "paypal": 1}}}
    assert admin.post(f"/console/channels/routing/{shop.merchant_id}", {"config": json.dumps(weighted)},
                      page=f"/console/channels/routing/{shop.merchant_id}").status_code == 303
    assert sorted((s, v) for s, v, _ in _configs(db)) == [("default", 1), (shop.merchant_id, 1)]
    api = client.get(f"/v1/routing/configs/{shop.merchant_id}", headers=shop.tenant.headers).json()
    assert (api["source"], api["config"]["strategy"]["weights"]) == ("merchant", {"unionpay": 3, "paypal": 1})
    overview = admin.get("/console/channels")
    assert shop.merchant_id in overview.text and "weighted" in overview.text and "Tea House" in overview.text


def test_refused_and_invalid_config_changes_write_nothing(shop: Shop, db: Database, staff_factory,
                                                          app) -> None:  # type: ignore[no-untyped-def]
    admin = staff_factory("admin")
    admin.post("/console/channels/routing/default", {"config": json.dumps(PRIORITY)},
               page="/console/channels/routing/default")
    before, events = _configs(db), len(_config_events(db))

    for role in ("auditor", "finance"):
        other = staff_factory(role)
        page = other.get("/console/channels/routing/default")
        assert page.status_code == 200 and "<textarea" not in page.text and "may not change" in page.text
        refused = other.post("/console/channels/routing/default", {"config": json.dumps({})})
        assert refused.status_code == 403 and "role_not_allowed" in refused.text

    for text, code in (("{not json", "invalid_json"), ("[1, 2]", "invalid_json"), ("", "missing_field"),
                       (json.dumps({"strategy": {"type": "fastest"}}), "union_tag_invalid"),
                       (json.dumps({"strategy": {"type": "priority", "channels": []}}), "too_short"),
                       (json.dumps({**PRIORITY, "colour": "red"}), "extra_forbidden")):
        answer = admin.post("/console/channels/routing/default", {"config": text},
                            page="/console/channels/routing/default")
        assert answer.status_code == 400 and code in answer.text, (text, answer.text)
    assert _configs(db) == before and len(_config_events(db)) == events

    stranger_tenant = make_tenant(db, "Other Co")
    stranger = sign_in(app, db, stranger_tenant.id, "eve@other.test", ["admin"])
    assert stranger.get(f"/console/channels/routing/{shop.merchant_id}").status_code == 404
    assert stranger.post(f"/console/channels/routing/{shop.merchant_id}",
                         {"config": json.dumps(PRIORITY)}).status_code == 404
    assert _configs(db) == before
