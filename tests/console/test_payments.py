"""The payments pages and the refund approval flow, as staff use them: support asks, finance approves."""

from __future__ import annotations

import csv
import io
from decimal import Decimal

from fastapi.testclient import TestClient

from finloop.audit.models import AuditEvent
from finloop.db.uow import Database
from finloop.payments.connectors.sandbox.app import InProcessSandbox
from finloop.payments.connectors.sandbox.engine import ChannelProfile
from finloop.payments.models import Refund
from tests.conftest import make_tenant
from tests.payments.conftest import Shop, tokenize


def _paid(client: TestClient, shop: Shop, sandbox: InProcessSandbox, *, threshold: int | None = 5_000,
          order: str = "order-1") -> str:
    for code in shop.channels:
        sandbox.engine.configure(code, ChannelProfile(success_share=Decimal(1), latency_ms=(5, 10, 20)))
    client.patch(f"/v1/merchants/{shop.merchant_id}", headers=shop.tenant.headers,
                 json={"refund_approval_amount": threshold})
    payment = client.post("/v1/payments", headers=shop.tenant.headers, json={
        "merchant_id": shop.merchant_id, "amount": 20_000, "currency": "CNY", "method": "card",
        "order_reference": order, "card_id": tokenize(client, shop.tenant), "confirm": True}).json()
    assert payment["status"] == "succeeded", payment
    return str(payment["id"])


def _events(db: Database, action: str) -> list[AuditEvent]:
    with db.uow(read_only=True) as uow:
        return list(uow.session.query(AuditEvent).filter(AuditEvent.action == action))


def test_list_search_filters_and_csv(client: TestClient, shop: Shop, sandbox: InProcessSandbox,
                                     staff_factory) -> None:  # type: ignore[no-untyped-def]
    first = _paid(client, shop, sandbox, order="order-1")
    second = _paid(client, shop, sandbox, order="order-2")
    auditor = staff_factory("auditor")
    page = auditor.get("/console/payments")
    assert page.status_code == 200 and first in page.text and second in page.text and "CNY 200.00" in page.text
    found = auditor.get("/console/payments", params={"q": "order-2"})
    assert second in found.text and first not in found.text
    assert first not in auditor.get("/console/payments", params={"status": "failed"}).text
    exported = auditor.get("/console/payments", params={"format": "csv", "status": "succeeded"})
    assert exported.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(exported.text)))
    assert {row["Payment"] for row in rows} == {first, second}
    assert {row["Amount"] for row in rows} == {"20000"}
    detail = auditor.get(f"/console/payments/{first}")
    assert detail.status_code == 200
    assert "Routing decision" in detail.text and "Ledger entries" in detail.text
    assert "Your role may not refund" in detail.text  # the auditor reads, and is shown no refund form


def test_support_asks_finance_approves_the_refund(client: TestClient, shop: Shop, sandbox: InProcessSandbox,
                                                  db: Database, staff_factory) -> None:  # type: ignore[no-untyped-def]
    payment_id = _paid(client, shop, sandbox)
    support = staff_factory("support")
    asked = support.post(f"/console/payments/{payment_id}/refunds", {"amount": "60.00", "reason": "damaged"},
                         page=f"/console/payments/{payment_id}")
    assert asked.status_code == 303, asked.text
    with db.uow(read_only=True) as uow:
        [refund] = uow.session.query(Refund).all()
        assert (refund.amount, refund.status) == (6_000, "requires_approval")
        approval_id = refund.approval_id
    assert len(_events(db, "console.refund.requested")) == 1
    # Support can neither approve its own request nor one that needs finance.
    own = support.get(f"/console/approvals/{approval_id}")
    assert "You asked for this" in own.text
    refused = support.post(f"/console/approvals/{approval_id}/approve", page="/console/payments")
    assert refused.status_code == 403 and "self_approval" in refused.text
    other_support = staff_factory("support")
    assert other_support.post(f"/console/approvals/{approval_id}/approve").status_code == 403
    finance = staff_factory("finance")
    queue = finance.get("/console/approvals", params={"status": "pending"})
    assert approval_id in queue.text
    approved = finance.post(f"/console/approvals/{approval_id}/approve", {"reason": "ok"},
                            page=f"/console/approvals/{approval_id}")
    assert approved.status_code == 303, approved.text
    with db.uow(read_only=True) as uow:
        assert uow.session.get(Refund, refund.id).status == "succeeded"  # type: ignore[union-attr]
    assert len(_events(db, "console.approval.approved")) == 1
    assert len(_events(db, "approval.approved")) == 1


def test_refused_and_invalid_refunds_write_nothing(client: TestClient, shop: Shop, sandbox: InProcessSandbox,
                                                   db: Database, staff_factory) -> None:  # type: ignore[no-untyped-def]
    payment_id = _paid(client, shop, sandbox, threshold=None)
    auditor = staff_factory("auditor")
    refused = auditor.post(f"/console/payments/{payment_id}/refunds", {"amount": "10.00"})
    assert refused.status_code == 403 and "role_not_allowed" in refused.text
    finance = staff_factory("finance")
    for amount, code in (("10.001", "invalid_amount"), ("-1", "invalid_amount"), ("abc", "invalid_amount"),
                         ("999.00", "amount_too_large")):
        answer = finance.post(f"/console/payments/{payment_id}/refunds", {"amount": amount})
        assert answer.status_code == 400 and code in answer.text, (amount, answer.text)
    with db.uow(read_only=True) as uow:
        assert uow.session.query(Refund).count() == 0
    assert _events(db, "console.refund.requested") == []


def test_another_tenants_payment_is_not_found(client: TestClient, shop: Shop, sandbox: InProcessSandbox,
                                              db: Database, app) -> None:  # type: ignore[no-untyped-def]
    from tests.console.conftest import sign_in

    payment_id = _paid(client, shop, sandbox)
    other = make_tenant(db, "Other Co")
    stranger = sign_in(app, db, other.id, "eve@other.test", ["admin"])
    assert stranger.get(f"/console/payments/{payment_id}").status_code == 404
    assert payment_id not in stranger.get("/console/payments").text
    assert stranger.post(f"/console/payments/{payment_id}/refunds", {"amount": "1.00"}).status_code == 404


def test_the_overview_sums_the_days_payments(client: TestClient, shop: Shop, sandbox: InProcessSandbox,
                                             staff_factory) -> None:  # type: ignore[no-untyped-def]
    _paid(client, shop, sandbox, order="order-1")
    _paid(client, shop, sandbox, order="order-2")
    failing = client.post("/v1/payments", headers=shop.tenant.headers, json={
        "merchant_id": shop.merchant_id, "amount": 5_000, "currency": "CNY", "method": "card",
        "card_id": tokenize(client, shop.tenant, "4000000000000002"), "confirm": True}).json()
    auditor = staff_factory("auditor")
    page = auditor.get("/console").text
    assert "CNY 400.00" in page and "2 payments succeeded" in page
    assert failing["status"] == "failed"  # the sandbox's decline card
    assert "66.7%" in page  # two of three finished payments succeeded
    assert "Success rate by channel" in page and "<svg" in page
