"""AML monitoring and screening on the database (both backends): alerts idempotent and cases opened, SAR
reports, watchlist imports, screening hits and reviews, permissions, bad input, tenant isolation, CLI."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import func, select

from finloop.cli import app as cli_app
from finloop.db.uow import Database
from finloop.payments.models import Customer, Merchant, Payment, Withdrawal
from finloop.risk.aml import service
from finloop.risk.aml.models import AmlAlert, Screening, WatchlistEntry
from finloop.risk.cases import service as cases
from finloop.risk.cases.models import RiskCase
from finloop.tenancy import service as tenancy
from finloop.tenancy.service import Role
from finloop.worker.runner import Runner

SAMPLES = Path(__file__).parent / "samples"


def _seed(db: Database, tenant_id: str, t0: datetime) -> dict[str, str]:
    """A merchant; a customer structuring (three payments of 48,123.45 CNY in 50 hours), one paying
    60,000.00 CNY from North Korea, one innocent."""
    with db.uow() as uow:
        merchant = Merchant(id=uow.ids.new("merchant"), tenant_id=tenant_id, reference="m1", name="Shop",
                            status="active", meta={}, created_at=t0 - timedelta(days=30))
        uow.session.add(merchant)
        ids: dict[str, str] = {"merchant": merchant.id}
        for ref in ("structurer", "large", "innocent", "mover", "sleeper"):
            c = Customer(id=uow.ids.new("customer"), tenant_id=tenant_id, reference=ref, segment=None, meta={},
                         created_at=t0 - timedelta(days=30))
            uow.session.add(c)
            ids[ref] = c.id
        uow.session.flush()

        def pay(customer: str, amount: int, at: datetime, meta: dict[str, Any] | None = None) -> None:
            uow.session.add(Payment(
                id=uow.ids.new("payment"), tenant_id=tenant_id, merchant_id=merchant.id, customer_id=customer,
                purpose="order", amount=amount, currency="CNY", captured_amount=amount, status="succeeded",
                meta=meta or {}, created_at=at, updated_at=at, succeeded_at=at))

        for hours in (-50, -20, 1):
            pay(ids["structurer"], 4_812_345, t0 + timedelta(hours=hours))
        pay(ids["large"], 6_000_000, t0 + timedelta(hours=2), {"country": "kp"})
        pay(ids["innocent"], 12_345, t0 + timedelta(hours=3))
        pay(ids["sleeper"], 1_234, t0 - timedelta(days=200))  # before the range: read as last activity
        pay(ids["sleeper"], 5_678, t0 + timedelta(hours=5))
        at = t0 + timedelta(hours=4)
        uow.session.add(Payment(
            id=uow.ids.new("payment"), tenant_id=tenant_id, merchant_id=None, customer_id=ids["mover"],
            purpose="wallet_top_up", amount=2_000_012, currency="CNY", captured_amount=2_000_012,
            status="succeeded", meta={}, created_at=at, updated_at=at, succeeded_at=at))
        out = t0 + timedelta(hours=6)
        uow.session.add(Withdrawal(
            id="wd_test_1", tenant_id=tenant_id, customer_id=ids["mover"], channel="sandbox",
            amount=1_900_000, currency="CNY", fee_amount=0, status="succeeded", account_name="x",
            account_last4="1234", account_sealed="x", hold_id="hld_x", created_at=out, updated_at=out))
        uow.commit()
    return ids


def test_monitoring_alerts_cases_and_reports(client: TestClient, db: Database, tenant, other_tenant,  # type: ignore[no-untyped-def]
                                             clock, cli) -> None:
    t0 = clock.now()
    ids = _seed(db, tenant.id, t0)
    h = tenant.headers
    window = {"from": (t0 - timedelta(days=1)).isoformat(), "to": (t0 + timedelta(days=1)).isoformat()}
    first = client.post("/v1/risk/aml/run", headers=h, json=window)
    assert first.status_code == 200, first.text
    assert first.json()["created"] == 5 and first.json()["alerts"] == 5
    alerts = client.get("/v1/risk/aml/alerts", headers=h).json()["data"]
    found = sorted((a["scenario"], a["subject_id"]) for a in alerts)
    assert found == sorted([("structuring", ids["structurer"]), ("large_transaction", ids["large"]),
                            ("high_risk_geography", ids["large"]), ("rapid_movement", ids["mover"]),
                            ("dormant_reactivated", ids["sleeper"])])
    rapid = next(a for a in alerts if a["scenario"] == "rapid_movement")
    assert [t["source"] for t in rapid["evidence"]["transactions"]] == ["top_up", "withdrawal"]
    assert rapid["evidence"]["figures"]["share_permille"] == 949
    structuring = next(a for a in alerts if a["scenario"] == "structuring")
    assert len(structuring["evidence"]["transaction_ids"]) == 3 and structuring["total_amount"] == 3 * 4_812_345
    assert structuring["evidence"]["figures"]["threshold"] == 5_000_000
    with db.uow(read_only=True) as uow:
        for a in alerts:
            case = cases.get_case(uow, tenant.id, a["case_id"])
            assert (case.source, case.object_type, case.alert_id) == ("aml_alert", "aml_alert", a["id"])

    # Idempotent: the same range, an overlapping one, the CLI and the closed-day job store nothing new.
    again = client.post("/v1/risk/aml/run", headers=h, json=window).json()
    assert again["created"] == 0 and sorted(again["alert_ids"]) == sorted(a["id"] for a in alerts)
    overlap = {"from": (t0 - timedelta(hours=1)).isoformat(), "to": (t0 + timedelta(days=2)).isoformat()}
    assert client.post("/v1/risk/aml/run", headers=h, json=overlap).json()["created"] == 0
    run = cli.invoke(cli_app, ["risk", "aml-run", "--tenant", tenant.id, "--from", "2026-03-01", "--to", "2026-03-04"])
    assert run.exit_code == 0, run.output
    assert "5 alerts (0 new)" in run.output
    with db.uow() as uow:
        assert service.run_business_day(uow, tenant.id, business_date=t0.date()).created == 0
        uow.commit()
    with db.uow(read_only=True) as uow:
        assert uow.session.scalar(select(func.count()).select_from(AmlAlert)) == 5
        assert uow.session.scalar(select(func.count()).select_from(RiskCase).where(
            RiskCase.source == "aml_alert")) == 5

    # SAR export, JSON and CSV.
    report = client.get(f"/v1/risk/aml/alerts/{structuring['id']}/report", headers=h)
    assert report.status_code == 200
    body = report.json()
    assert body["subject"] == {"kind": "customer", "id": ids["structurer"]} and body["scenario"] == "structuring"
    assert body["transaction_count"] == 3 and body["total_amount"] == 3 * 4_812_345
    assert [t["amount"] for t in body["transactions"]] == [4_812_345] * 3 and body["case_id"]
    assert "just below the reporting threshold" in body["narrative"]["summary"]
    text = client.get(f"/v1/risk/aml/alerts/{structuring['id']}/report?format=csv", headers=h)
    assert text.status_code == 200 and text.headers["content-type"].startswith("text/csv")
    assert f"subject_id,{ids['structurer']}" in text.text and text.text.count("4812345") == 3

    # Closing the alert's case with a verdict closes the alert.
    with db.uow() as uow:
        cases.close_case(uow, tenant.id, structuring["case_id"], outcome="valuable_alert", action="decline",
                         actor="user:analyst")
        uow.commit()
    assert client.get(f"/v1/risk/aml/alerts/{structuring['id']}", headers=h).json()["status"] == "closed"
    assert [a["id"] for a in client.get("/v1/risk/aml/alerts?status=closed", headers=h).json()["data"]] == [
        structuring["id"]]

    # Configuration: a higher threshold for the tenant; the other tenant keeps the defaults.
    configured = client.patch("/v1/risk/aml/config", headers=h, json={"large_thresholds": {"CNY": {"*": 9_000_000}},
                                                                     "high_risk_countries": ["IR"]})
    assert configured.status_code == 200, configured.text
    assert configured.json()["large_thresholds"]["CNY"] == {"*": 9_000_000}
    assert client.get("/v1/risk/aml/config", headers=other_tenant.headers).json()["large_thresholds"]["CNY"] == {
        "*": 5_000_000}

    # Bad input: 4xx, nothing written.
    backwards = client.post("/v1/risk/aml/run", headers=h, json={"from": window["to"], "to": window["from"]})
    assert backwards.status_code == 400 and backwards.json()["error"]["code"] == "invalid_range"
    naive = client.post("/v1/risk/aml/run", headers=h, json={"from": "2026-03-01T00:00:00", "to": window["to"]})
    assert 400 <= naive.status_code < 500
    assert client.patch("/v1/risk/aml/config", headers=h, json={"enabled": ["nope"]}).status_code in (400, 422)
    assert client.patch("/v1/risk/aml/config", headers=h, json={"dormant_days": 0}).status_code in (400, 422)
    assert client.get("/v1/risk/aml/alerts/aml_missing/report", headers=h).status_code == 404

    # Tenant isolation.
    assert client.get(f"/v1/risk/aml/alerts/{structuring['id']}", headers=other_tenant.headers).status_code == 404
    assert client.get(f"/v1/risk/aml/alerts/{structuring['id']}/report",
                      headers=other_tenant.headers).status_code == 404
    assert client.get("/v1/risk/aml/alerts", headers=other_tenant.headers).json()["data"] == []
    other_run = client.post("/v1/risk/aml/run", headers=other_tenant.headers, json=window).json()
    assert other_run["transactions"] == 0 and other_run["alerts"] == 0

    # The closed-day job: Monday's scenarios once the day is over, nothing new (the alerts exist).
    clock.advance(timedelta(days=1))
    outcomes = Runner(db, only=["aml.monitor"]).run_pass().outcomes
    mine = [o for o in outcomes if o.tenant_id == tenant.id]
    assert [(o.business_date, o.status, o.processed) for o in mine] == [(t0.date(), "succeeded", 0)]


def test_watchlists_screening_and_review(client: TestClient, db: Database, tenant, other_tenant, cli) -> None:  # type: ignore[no-untyped-def]
    h = tenant.headers
    with db.uow() as uow:
        _, support = tenancy.issue_api_key(uow, tenant.id, name="support", role=Role.SUPPORT, actor="test")
        uow.commit()
    sh = {"Authorization": f"Bearer {support}"}
    ofac = (SAMPLES / "sdn.csv").read_bytes()
    up = "/v1/risk/watchlists/import?format=ofac_csv"
    assert client.post(up, headers={**sh, "Content-Type": "text/csv"}, content=ofac).status_code == 403
    imported = client.post(up, headers={**h, "Content-Type": "text/csv"}, content=ofac)
    assert imported.status_code == 201, imported.text
    assert imported.json()["entries"] == 5 and imported.json()["unchanged"] is False
    assert client.post(up, headers=h, content=ofac).json()["unchanged"] is True
    bad = client.post(up, headers=h, content=(SAMPLES / "sdn_malformed.csv").read_bytes())
    assert bad.status_code == 400 and bad.json()["error"]["code"] == "watchlist_rejected"
    assert "Line 2" in bad.json()["error"]["message"]
    bad_xml = client.post("/v1/risk/watchlists/import?format=un_xml", headers=h,
                          content=(SAMPLES / "un_malformed.xml").read_bytes())
    assert bad_xml.status_code == 400 and bad_xml.json()["error"]["code"] == "watchlist_rejected"
    assert client.post("/v1/risk/watchlists/import?format=pdf", headers=h, content=b"x").status_code in (400, 422)
    loaded = cli.invoke(cli_app, ["risk", "watchlist-import", "--tenant", tenant.id, "--format", "un_xml",
                                  "--file", str(SAMPLES / "un_consolidated.xml")])
    assert loaded.exit_code == 0 and "3 entries imported" in loaded.output, loaded.output
    with db.uow(read_only=True) as uow:
        assert uow.session.scalar(select(func.count()).select_from(WatchlistEntry).where(
            WatchlistEntry.tenant_id == tenant.id)) == 8

    def screen(name: str, kind: str = "individual", headers: dict[str, str] = h) -> Any:
        return client.post("/v1/risk/screenings", headers=headers, json={
            "name": name, "kind": kind, "subject_type": "beneficiary", "subject_id": "pa_1"})

    hit = screen("Vladimir Putin", headers=sh)  # support may screen (risk.decide)
    assert hit.status_code == 201, hit.text
    body = hit.json()
    assert body["status"] == "potential_match" and body["hits"][0]["ref"] == "ofac:2674" and body["case_id"]
    assert body["hits"][0]["score"] >= 88 and "Putin" not in body["name"]
    assert screen("Владимир Путин").json()["hits"][0]["ref"] == "ofac:2674"
    assert screen("José Müller").json()["hits"][0]["ref"] == "ofac:9001"
    assert screen("Ioannis Papadopoulos").json()["hits"][0]["ref"] == "un:6908556"
    assert screen("komid", kind="entity").json()["hits"][0]["ref"] == "un:110404"
    assert screen("Komid").json()["status"] == "clear"  # entities are not compared with individuals
    miss = screen("Vladimir Petrov").json()
    assert miss["status"] == "clear" and miss["hits"] == [] and miss["case_id"] is None
    with db.uow(read_only=True) as uow:
        case = cases.get_case(uow, tenant.id, body["case_id"])
        assert (case.source, case.object_type, case.object_id) == ("screening", "screening", body["id"])
        sealed = uow.session.get(Screening, body["id"])
        assert sealed is not None and "Putin" not in sealed.name_sealed

    # Review: confirm or dismiss a potential match once; a clear screening cannot be reviewed.
    review = f"/v1/risk/screenings/{body['id']}/review"
    assert client.post(review, headers=sh, json={"decision": "confirm"}).status_code == 403
    confirmed = client.post(review, headers=h, json={"decision": "confirm", "note": "same DOB"})
    assert confirmed.status_code == 200 and confirmed.json()["status"] == "confirmed"
    again = client.post(review, headers=h, json={"decision": "dismiss"})
    assert again.status_code == 409 and again.json()["error"]["code"] == "screening_not_reviewable"
    assert client.post(f"/v1/risk/screenings/{miss['id']}/review", headers=h,
                       json={"decision": "dismiss"}).status_code == 409
    assert client.post(review, headers=h, json={"decision": "maybe"}).status_code in (400, 422)
    assert client.get(f"/v1/risk/screenings/{body['id']}", headers=h).json()["status"] == "confirmed"

    # Bad input and tenant isolation.
    assert screen("   ").status_code == 400
    assert screen("!!!").json()["error"]["code"] == "invalid_name"
    assert screen("x" * 301).status_code in (400, 422)
    assert client.post("/v1/risk/screenings", headers=h, json={
        "name": "A B", "subject_type": "planet", "subject_id": "x"}).status_code in (400, 422)
    assert client.get(f"/v1/risk/screenings/{body['id']}", headers=other_tenant.headers).status_code == 404
    assert screen("Vladimir Putin", headers=other_tenant.headers).json()["status"] == "clear"

    shown = cli.invoke(cli_app, ["risk", "screen", "--tenant", tenant.id, "--name", "PUTIN Vladimir"])
    assert shown.exit_code == 0 and "potential_match" in shown.output and "ofac:2674" in shown.output, shown.output
