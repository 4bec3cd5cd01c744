"""Every payments endpoint: authentication, tenant isolation, role permissions, validation, list filters.

Invariants checked, each on SQLite and PostgreSQL:
- no endpoint answers without an API key (401);
- another tenant's merchant, customer, channel, payment or refund is a 404, for reads and writes alike;
- a role without the permission gets 403 on every POST/PATCH (payments.configure: admin only;
  payments.write and payments.refund: admin, finance, support) — an auditor may only read;
- each invalid body field is refused with its error ``code`` and ``param``, and a refused request writes
  nothing (row counts of merchants, customers, channels, payments, attempts and refunds unchanged);
- list filters (status, merchant, channel, created range) and cursor pagination (``starting_after``,
  ``has_more``, ``next_cursor``) return each matching row exactly once, newest first.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from finloop.core.clock import FrozenClock
from finloop.db.uow import Database
from finloop.payments import gateway
from finloop.payments.connectors.sandbox.app import InProcessSandbox
from finloop.payments.connectors.sandbox.engine import ChannelProfile
from finloop.payments.models import Attempt, Channel, Customer, Merchant, Payment, Refund
from finloop.tenancy.service import Role
from tests.conftest import TenantHandle, make_tenant
from tests.payments.conftest import SANDBOX_CHANNELS, Shop, tokenize


@pytest.fixture
def sandbox(clock: FrozenClock) -> Iterator[InProcessSandbox]:
    box = InProcessSandbox(clock, seed=3, channels=SANDBOX_CHANNELS,
                           profiles={code: ChannelProfile(success_share=Decimal(1), latency_ms=(1, 2, 3))
                                     for code in SANDBOX_CHANNELS})
    with gateway.use_http_client(box.client):
        yield box


def _key(db: Database, tenant_id: str, role: Role) -> dict[str, str]:
    from finloop.tenancy import service as tenancy

    with db.uow() as uow:
        _, secret = tenancy.issue_api_key(uow, tenant_id, name=f"{role.value} key", role=role, actor="test")
        uow.commit()
    return {"Authorization": f"Bearer {secret}"}


def _counts(db: Database) -> dict[str, int]:
    with db.uow(read_only=True) as uow:
        return {model.__tablename__: uow.session.scalar(select(func.count()).select_from(model)) or 0
                for model in (Merchant, Customer, Channel, Payment, Attempt, Refund)}


def _objects(client: TestClient, shop: Shop) -> dict[str, str]:
    """One of each object: a customer, a succeeded payment with a refund."""
    headers = shop.tenant.headers
    customer = client.post("/v1/customers", headers=headers, json={"reference": "C1", "segment": "vip"})
    assert customer.status_code == 201, customer.text
    payment = client.post("/v1/payments", headers=headers, json={
        "merchant_id": shop.merchant_id, "amount": 5_000, "currency": "CNY", "method": "card",
        "card_id": tokenize(client, shop.tenant), "customer_id": customer.json()["id"], "confirm": True})
    assert payment.status_code == 201 and payment.json()["status"] == "succeeded", payment.text
    refund = client.post(f"/v1/payments/{payment.json()['id']}/refunds", headers=headers, json={"amount": 100})
    assert refund.status_code == 201, refund.text
    return {"merchant": shop.merchant_id, "customer": customer.json()["id"],
            "channel": next(iter(shop.channels.values()))["id"], "payment": payment.json()["id"],
            "refund": refund.json()["id"]}


def _endpoints(ids: dict[str, str]) -> list[tuple[str, str, dict[str, Any] | None, str | None]]:
    """(method, path, body, permission) for every tenant-authenticated payments endpoint."""
    pay, channel = ids["payment"], ids["channel"]
    return [
        ("GET", "/v1/merchants", None, None),
        ("GET", f"/v1/merchants/{ids['merchant']}", None, None),
        ("POST", "/v1/merchants", {"reference": "M-new", "name": "New"}, "payments.configure"),
        ("GET", f"/v1/customers/{ids['customer']}", None, None),
        ("POST", "/v1/customers", {"reference": "C-new"}, "payments.write"),
        ("GET", "/v1/channels", None, None),
        ("GET", f"/v1/channels/{channel}", None, None),
        ("POST", "/v1/channels", {"code": "newpay", "provider": "generic", "base_url": "http://sandbox/newpay",
                                  "methods": ["card"], "currencies": ["CNY"]}, "payments.configure"),
        ("PATCH", f"/v1/channels/{channel}", {"status": "disabled"}, "payments.configure"),
        ("GET", "/v1/payments", None, None),
        ("GET", f"/v1/payments/{pay}", None, None),
        ("GET", f"/v1/payments/{pay}/attempts", None, None),
        ("POST", "/v1/payments", {"merchant_id": ids["merchant"], "amount": 100, "currency": "CNY"},
         "payments.write"),
        ("POST", f"/v1/payments/{pay}/confirm", {}, "payments.write"),
        ("POST", f"/v1/payments/{pay}/capture", {}, "payments.write"),
        ("POST", f"/v1/payments/{pay}/cancel", {}, "payments.write"),
        ("POST", f"/v1/payments/{pay}/refunds", {"amount": 1}, "payments.refund"),
        ("GET", "/v1/refunds", None, None),
        ("GET", f"/v1/refunds/{ids['refund']}", None, None),
    ]


def _call(client: TestClient, method: str, path: str, body: dict[str, Any] | None,
          headers: dict[str, str] | None = None) -> Any:
    return client.request(method, path, json=body, headers=headers or {})


def test_every_endpoint_needs_a_key_and_hides_other_tenants(client: TestClient, shop: Shop,
                                                            sandbox: InProcessSandbox, db: Database) -> None:
    ids = _objects(client, shop)
    rival: TenantHandle = make_tenant(db, "Rival")
    before = _counts(db)
    for method, path, body, _ in _endpoints(ids):
        anonymous = _call(client, method, path, body)
        assert anonymous.status_code == 401, (method, path, anonymous.text)
        assert anonymous.json()["error"]["type"] == "authentication_error"
        garbage = _call(client, method, path, body, {"Authorization": "Bearer fl_sk_not-a-key"})
        assert garbage.status_code == 401, (method, path, garbage.text)
        if "{" in path or path.count("/") > 2:  # an object of the shop's: the rival must not see it
            foreign = _call(client, method, path, body, rival.headers)
            assert foreign.status_code == 404, (method, path, foreign.status_code, foreign.text)
    assert _counts(db) == before, "a refused request wrote something"
    # The rival's lists are empty, and its payment cannot use the shop's merchant or customer.
    for path in ("/v1/merchants", "/v1/payments", "/v1/refunds"):
        assert client.get(path, headers=rival.headers).json()["data"] == [], path
    assert client.get("/v1/channels", headers=rival.headers).json() == []
    borrowed = client.post("/v1/payments", headers=rival.headers, json={
        "merchant_id": ids["merchant"], "amount": 100, "currency": "CNY"})
    assert (borrowed.status_code, borrowed.json()["error"]["param"]) == (404, "merchant_id")
    assert _counts(db) == before


def test_roles_without_the_permission_are_refused(client: TestClient, shop: Shop, sandbox: InProcessSandbox,
                                                  db: Database) -> None:
    from finloop.tenancy.service import PERMISSIONS

    ids = _objects(client, shop)
    before = _counts(db)
    auditor = _key(db, shop.tenant.id, Role.AUDITOR)
    for method, path, body, permission in _endpoints(ids):  # the auditor reads everything, acts on nothing
        response = _call(client, method, path, body, auditor)
        expected = 200 if permission is None else 403
        assert response.status_code == expected, (method, path, response.status_code, response.text)
        if permission is not None:
            assert response.json()["error"]["code"] == "role_not_allowed"
    for role in (Role.SUPPORT, Role.RISK_ANALYST):  # only what the role lacks: the rest would write
        headers = _key(db, shop.tenant.id, role)
        for method, path, body, permission in _endpoints(ids):
            if permission is not None and role not in PERMISSIONS[permission]:
                response = _call(client, method, path, body, headers)
                assert response.status_code == 403, (role, method, path, response.status_code, response.text)
                assert response.json()["error"]["code"] == "role_not_allowed"
    assert _counts(db) == before, "a refused request wrote something"
    # Allowed roles get past the permission check (the state machine answers instead).
    finance = _key(db, shop.tenant.id, Role.FINANCE)
    assert client.post(f"/v1/payments/{ids['payment']}/confirm", headers=finance, json={}).status_code == 409
    assert client.post("/v1/customers", headers=finance, json={"reference": "C9"}).status_code == 201


def test_each_invalid_field_is_refused_with_its_code_and_writes_nothing(
        client: TestClient, shop: Shop, sandbox: InProcessSandbox, db: Database) -> None:
    ids = _objects(client, shop)
    headers = shop.tenant.headers
    open_payment = client.post("/v1/payments", headers=headers, json={
        "merchant_id": shop.merchant_id, "amount": 700, "currency": "CNY"}).json()["id"]
    manual_card = tokenize(client, shop.tenant)
    channel = {"code": "newpay", "provider": "generic", "base_url": "http://sandbox/newpay", "methods": ["card"],
               "currencies": ["CNY"]}
    payment = {"merchant_id": shop.merchant_id, "amount": 100, "currency": "CNY"}
    long = "x" * 501
    cases: list[tuple[str, dict[str, Any], int, str | None, str | None]] = [
        # path, body, status, code (None: any), param
        ("/v1/merchants", {"name": "No ref"}, 400, None, "reference"),
        ("/v1/merchants", {"reference": "", "name": "Empty"}, 400, None, "reference"),
        ("/v1/merchants", {"reference": "M1", "name": "Again"}, 409, "merchant_exists", "reference"),
        ("/v1/merchants", {"reference": "M2", "name": "x" * 201}, 400, None, "name"),
        ("/v1/merchants", {"reference": "M2", "name": "N", "colour": "red"}, 400, None, "colour"),
        ("/v1/customers", {"reference": "C1"}, 409, "customer_exists", "reference"),
        ("/v1/customers", {"reference": "C2", "segment": "s" * 51}, 400, None, "segment"),
        ("/v1/channels", {**channel, "code": "Bad Code"}, 400, "invalid_channel_code", "code"),
        ("/v1/channels", {**channel, "provider": "nopay"}, 400, "unknown_provider", "provider"),
        ("/v1/channels", {**channel, "base_url": "ftp://sandbox/x"}, 400, "invalid_url", "base_url"),
        ("/v1/channels", {**channel, "methods": ["telepathy"]}, 400, None, "methods[0]"),
        ("/v1/channels", {**channel, "methods": []}, 400, None, "methods"),
        ("/v1/channels", {**channel, "currencies": ["XXQ"]}, 400, None, "currencies[0]"),
        ("/v1/channels", {**channel, "fee_rate": "1.5"}, 400, None, "fee_rate"),
        ("/v1/channels", {**channel, "fee_fixed_amount": -1}, 400, None, "fee_fixed_amount"),
        ("/v1/channels", {**channel, "refund_fee_policy": "keep"}, 400, None, "refund_fee_policy"),
        ("/v1/channels", {**channel, "timeout_ms": 5}, 400, None, "timeout_ms"),
        ("/v1/channels", {**channel, "code": "unionpay"}, 409, "channel_exists", "code"),
        ("/v1/payments", {**payment, "amount": -5}, 400, None, "amount"),
        ("/v1/payments", {**payment, "amount": "100"}, 400, None, "amount"),
        ("/v1/payments", {**payment, "currency": "cny1"}, 400, None, "currency"),
        ("/v1/payments", {**payment, "merchant_id": ""}, 400, None, "merchant_id"),
        ("/v1/payments", {**payment, "customer_id": "cus_nope"}, 404, "customer_not_found", "customer_id"),
        ("/v1/payments", {**payment, "capture_method": "later"}, 400, None, "capture_method"),
        ("/v1/payments", {**payment, "card_id": "card_nope"}, 404, None, "card_id"),
        ("/v1/payments", {**payment, "method": "qr", "card_id": manual_card}, 400, "invalid_payment_method",
         "card_id"),
        ("/v1/payments", {**payment, "description": long}, 400, None, "description"),
        ("/v1/payments", {**payment, "order_reference": "o" * 101}, 400, None, "order_reference"),
        ("/v1/payments", {**payment, "confirm": "yes please"}, 400, None, "confirm"),
        (f"/v1/payments/{open_payment}/confirm", {}, 400, "parameter_missing", "method"),
        (f"/v1/payments/{open_payment}/confirm", {"method": "card"}, 400, "parameter_missing", "card_id"),
        (f"/v1/payments/{open_payment}/confirm", {"method": "telepathy"}, 400, None, "method"),
        (f"/v1/payments/{open_payment}/confirm", {"method": "card", "card_id": "card_nope"}, 404, None,
         "card_id"),
        (f"/v1/payments/{ids['payment']}/capture", {"amount": 0}, 400, None, "amount"),
        (f"/v1/payments/{ids['payment']}/cancel", {"reason": "r" * 101}, 400, None, "reason"),
        (f"/v1/payments/{ids['payment']}/refunds", {"amount": 0}, 400, None, "amount"),
        (f"/v1/payments/{ids['payment']}/refunds", {"amount": 4_901}, 400, "amount_too_large", "amount"),
        (f"/v1/payments/{ids['payment']}/refunds", {"reason": long}, 400, None, "reason"),
        (f"/v1/payments/{open_payment}/refunds", {}, 409, "payment_not_refundable", None),
        ("/v1/payments/pay_nope/refunds", {}, 404, "payment_not_found", "payment_id"),
    ]
    before = _counts(db)
    problems = []
    for path, body, status, code, param in cases:
        response = client.post(path, headers=headers, json=body)
        error = response.json().get("error", {}) if response.headers.get("content-type", "").startswith(
            "application/json") else {}
        if (response.status_code, error.get("param")) != (status, param) or (code and error.get("code") != code):
            problems.append((path, body if len(str(body)) < 120 else "<long>", response.status_code, error))
    assert problems == [], "\n".join(map(str, problems))
    assert _counts(db) == before, "a refused request wrote something"
    patch = client.patch(f"/v1/channels/{ids['channel']}", headers=headers, json={"status": "paused"})
    assert (patch.status_code, patch.json()["error"]["param"]) == (400, "status")


def test_payment_list_filters_and_pagination(client: TestClient, shop: Shop, sandbox: InProcessSandbox,
                                             db: Database, clock: FrozenClock) -> None:
    headers = shop.tenant.headers
    other = client.post("/v1/merchants", headers=headers, json={"reference": "M2", "name": "Noodle Bar"}).json()["id"]
    card = tokenize(client, shop.tenant)
    created: list[dict[str, Any]] = []
    started = clock.now()
    for n in range(7):
        merchant = shop.merchant_id if n % 2 == 0 else other
        confirm = n < 4
        response = client.post("/v1/payments", headers=headers, json={
            "merchant_id": merchant, "amount": 100 + n, "currency": "CNY", "method": "card", "card_id": card,
            "confirm": confirm})
        assert response.status_code == 201, response.text
        created.append(response.json())
        clock.advance(timedelta(minutes=1))
    newest_first = [p["id"] for p in reversed(created)]

    def listed(**params: Any) -> list[str]:
        seen: list[str] = []
        cursor = None
        pages = 0
        while True:
            query = {**params, "limit": 2, **({"starting_after": cursor} if cursor else {})}
            response = client.get("/v1/payments", headers=headers, params=query)
            assert response.status_code == 200, response.text
            page = response.json()
            pages += 1
            assert len(page["data"]) <= 2
            seen += [p["id"] for p in page["data"]]
            if not page["has_more"]:
                assert page["next_cursor"] is None
                break
            assert page["next_cursor"] == page["data"][-1]["id"]
            cursor = page["next_cursor"]
            assert pages < 10
        return seen

    assert listed() == newest_first
    assert len(newest_first) > 2  # more than one page was walked
    assert listed(status="succeeded") == [p["id"] for p in reversed(created) if p["status"] == "succeeded"]
    assert listed(status="requires_confirmation") == [p["id"] for p in reversed(created[4:])]
    assert listed(merchant_id=other) == [p["id"] for p in reversed(created) if p["merchant_id"] == other]
    succeeded_via = {p["channel"] for p in created if p["channel"]}
    for code in SANDBOX_CHANNELS:
        assert listed(channel=code) == [p["id"] for p in reversed(created) if p["channel"] == code]
    assert succeeded_via
    window = {"created_gte": (started + timedelta(minutes=2)).isoformat(),
              "created_lt": (started + timedelta(minutes=5)).isoformat()}
    assert listed(**window) == [p["id"] for p in reversed(created[2:5])]
    assert listed(status="succeeded", merchant_id=shop.merchant_id, **window) == [created[2]["id"]]
    for bad in ({"status": "paid"}, {"limit": 0}, {"limit": 501}, {"created_gte": "yesterday"}):
        response = client.get("/v1/payments", headers=headers, params=bad)
        assert response.status_code == 400, (bad, response.text)
        assert response.json()["error"]["param"] == next(iter(bad)), (bad, response.json())

    # Refunds and merchants paginate the same way.
    for p in created[:4]:
        for amount in (10, 20):
            assert client.post(f"/v1/payments/{p['id']}/refunds", headers=headers,
                               json={"amount": amount}).status_code == 201
    first = client.get("/v1/refunds", headers=headers, params={"limit": 5}).json()
    assert len(first["data"]) == 5 and first["has_more"] and first["next_cursor"] == first["data"][-1]["id"]
    rest = client.get("/v1/refunds", headers=headers, params={"limit": 5, "starting_after": first["next_cursor"]})
    assert len(rest.json()["data"]) == 3 and rest.json()["has_more"] is False
    ids = [r["id"] for r in first["data"] + rest.json()["data"]]
    assert ids == sorted(ids, reverse=True) and len(set(ids)) == 8
    one = client.get("/v1/refunds", headers=headers, params={"payment_id": created[0]["id"]}).json()["data"]
    assert [r["amount"] for r in one] == [20, 10]
    merchants = client.get("/v1/merchants", headers=headers, params={"limit": 1}).json()
    assert merchants["has_more"] and len(merchants["data"]) == 1
    after = client.get("/v1/merchants", headers=headers,
                       params={"limit": 1, "starting_after": merchants["next_cursor"]}).json()
    assert after["has_more"] is False and {merchants["data"][0]["id"], after["data"][0]["id"]} == {
        shop.merchant_id, other}
