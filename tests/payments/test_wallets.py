"""Customer wallets: top-up through a channel, pay from balance, refunds back to balance, a refund's
fallback into the wallet, withdrawals held while the payout is in flight, and the statement."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

from fastapi.testclient import TestClient

from finloop.core.clock import FrozenClock
from finloop.db.uow import Database
from finloop.payments import flows
from finloop.payments.connectors.sandbox.app import InProcessSandbox
from finloop.payments.connectors.sandbox.engine import ChannelProfile
from tests.conftest import make_tenant
from tests.onboarding.helpers import individual
from tests.payments.conftest import Shop, tokenize


def _reliable(sandbox: InProcessSandbox, shop: Shop, **changes: object) -> None:
    for code in shop.channels:
        sandbox.engine.configure(code, ChannelProfile(success_share=Decimal(1), latency_ms=(5, 10, 20),
                                                      payout_async=False, **changes))  # type: ignore[arg-type]


def _customer(client: TestClient, shop: Shop, reference: str = "C1") -> str:
    response = client.post("/v1/customers", headers=shop.tenant.headers, json={"reference": reference})
    assert response.status_code == 201, response.text
    customer_id: str = response.json()["id"]
    onboarded = client.post("/v1/onboarding/profiles", headers=shop.tenant.headers, json={
        "party_kind": "customer", "party_id": customer_id, "individual": individual(customer_id)})
    assert onboarded.status_code == 201 and onboarded.json()["status"] == "approved", onboarded.text
    return customer_id


def _top_up(client: TestClient, shop: Shop, customer_id: str, amount: int) -> dict:  # type: ignore[type-arg]
    response = client.post("/v1/payments", headers=shop.tenant.headers, json={
        "purpose": "wallet_top_up", "customer_id": customer_id, "amount": amount, "currency": "CNY",
        "method": "card", "card_id": tokenize(client, shop.tenant), "confirm": True})
    assert response.status_code == 201, response.text
    return response.json()  # type: ignore[no-any-return]


def _balance(client: TestClient, shop: Shop, customer_id: str) -> int:
    response = client.get(f"/v1/customers/{customer_id}/wallet", headers=shop.tenant.headers)
    assert response.status_code == 200, response.text
    balances = {b["currency"]: b for b in response.json()["balances"]}
    return int(balances["CNY"]["available"]) if "CNY" in balances else 0


def _pay_from_wallet(client: TestClient, shop: Shop, customer_id: str, amount: int) -> dict:  # type: ignore[type-arg]
    response = client.post("/v1/payments", headers=shop.tenant.headers, json={
        "merchant_id": shop.merchant_id, "customer_id": customer_id, "amount": amount, "currency": "CNY",
        "method": "wallet_balance", "confirm": True})
    assert response.status_code == 201, response.text
    return response.json()  # type: ignore[no-any-return]


def test_top_up_then_pay_from_balance_then_refund_to_balance(client: TestClient, shop: Shop,
                                                             sandbox: InProcessSandbox) -> None:
    _reliable(sandbox, shop)
    customer = _customer(client, shop)
    top_up = _top_up(client, shop, customer, 50_000)
    assert top_up["status"] == "succeeded" and top_up["merchant_id"] is None
    assert _balance(client, shop, customer) == 50_000

    paid = _pay_from_wallet(client, shop, customer, 12_000)
    assert paid["status"] == "succeeded" and paid["channel"] is None
    assert _balance(client, shop, customer) == 38_000

    refund = client.post(f"/v1/payments/{paid['id']}/refunds", headers=shop.tenant.headers, json={"amount": 2_000})
    assert refund.status_code == 201 and refund.json()["status"] == "succeeded", refund.text
    assert refund.json()["channel"] == "wallet"
    assert _balance(client, shop, customer) == 40_000

    statement = client.get(f"/v1/customers/{customer}/wallet/statement", headers=shop.tenant.headers,
                           params={"currency": "CNY"}).json()
    assert [line["amount"] for line in statement["data"]] == [50_000, -12_000, 2_000]
    assert statement["data"][-1]["balance"] == 40_000


def test_paying_more_than_the_balance_is_a_recorded_decline(client: TestClient, shop: Shop,
                                                           sandbox: InProcessSandbox) -> None:
    _reliable(sandbox, shop)
    customer = _customer(client, shop)
    _top_up(client, shop, customer, 1_000)
    paid = _pay_from_wallet(client, shop, customer, 1_001)
    assert paid["status"] == "failed" and paid["failure_code"] == "insufficient_wallet_balance"
    assert _balance(client, shop, customer) == 1_000


def test_a_failed_refund_falls_back_to_the_wallet(client: TestClient, shop: Shop, sandbox: InProcessSandbox,
                                                  db: Database, clock: FrozenClock) -> None:
    _reliable(sandbox, shop)
    customer = _customer(client, shop)
    paid = client.post("/v1/payments", headers=shop.tenant.headers, json={
        "merchant_id": shop.merchant_id, "customer_id": customer, "amount": 9_000, "currency": "CNY",
        "method": "card", "card_id": tokenize(client, shop.tenant), "confirm": True}).json()
    assert paid["status"] == "succeeded"
    # From now on the channel accepts refunds and then fails every one of them.
    _reliable(sandbox, shop, refund_async=True, refund_failure_share=Decimal(1), refund_delay_seconds=(1, 1))
    refund = client.post(f"/v1/payments/{paid['id']}/refunds", headers=shop.tenant.headers, json={}).json()
    assert refund["status"] in ("processing", "failed"), refund
    clock.advance(timedelta(minutes=1))
    flows.resolve_open(db)
    failed = client.get(f"/v1/refunds/{refund['id']}", headers=shop.tenant.headers).json()
    assert failed["status"] == "failed", failed
    assert client.get(f"/v1/payments/{paid['id']}", headers=shop.tenant.headers).json()["refunded_amount"] == 0

    retry = client.post(f"/v1/refunds/{refund['id']}/retry", headers=shop.tenant.headers, json={"route": "wallet"})
    assert retry.status_code == 200, retry.text
    assert retry.json()["status"] == "succeeded" and retry.json()["channel"] == "wallet"
    assert _balance(client, shop, customer) == 9_000
    again = client.post(f"/v1/refunds/{refund['id']}/retry", headers=shop.tenant.headers, json={"route": "wallet"})
    assert again.status_code == 409


def test_withdrawal_holds_then_pays_out(client: TestClient, shop: Shop, sandbox: InProcessSandbox) -> None:
    _reliable(sandbox, shop)
    customer = _customer(client, shop)
    _top_up(client, shop, customer, 30_000)
    channel = next(iter(shop.channels))
    response = client.post(f"/v1/customers/{customer}/wallet/withdrawals", headers=shop.tenant.headers, json={
        "channel": channel, "amount": 10_000, "currency": "CNY", "account_name": "Li Lei",
        "account_number": "6222 0212 3456 7890"})
    assert response.status_code == 201, response.text
    withdrawal = response.json()
    assert withdrawal["status"] == "succeeded" and withdrawal["account_last4"] == "7890"
    assert "6222021234567890" not in response.text
    assert _balance(client, shop, customer) == 20_000
    too_much = client.post(f"/v1/customers/{customer}/wallet/withdrawals", headers=shop.tenant.headers, json={
        "channel": channel, "amount": 20_001, "currency": "CNY", "account_name": "Li Lei",
        "account_number": "6222021234567890"})
    assert too_much.status_code in (400, 409, 422) and too_much.json()["error"]["code"] == "insufficient_funds"


def test_failed_payout_releases_the_hold(client: TestClient, shop: Shop, sandbox: InProcessSandbox) -> None:
    _reliable(sandbox, shop)
    customer = _customer(client, shop)
    _top_up(client, shop, customer, 5_000)
    _reliable(sandbox, shop, payout_success_share=Decimal(0))
    channel = next(iter(shop.channels))
    response = client.post(f"/v1/customers/{customer}/wallet/withdrawals", headers=shop.tenant.headers, json={
        "channel": channel, "amount": 5_000, "currency": "CNY", "account_name": "Han Meimei",
        "account_number": "6222021234567891"})
    assert response.status_code == 201, response.text
    assert response.json()["status"] == "failed"
    assert _balance(client, shop, customer) == 5_000


def test_wallets_are_tenant_scoped_and_validated(client: TestClient, shop: Shop, sandbox: InProcessSandbox,
                                                db: Database) -> None:
    _reliable(sandbox, shop)
    customer = _customer(client, shop)
    other = make_tenant(db, "Rival")
    assert client.get(f"/v1/customers/{customer}/wallet", headers=other.headers).status_code == 404
    top_up_with_merchant = client.post("/v1/payments", headers=shop.tenant.headers, json={
        "purpose": "wallet_top_up", "merchant_id": shop.merchant_id, "customer_id": customer, "amount": 100,
        "currency": "CNY"})
    assert top_up_with_merchant.status_code == 400
    assert top_up_with_merchant.json()["error"]["param"] == "merchant_id"
    no_customer = client.post("/v1/payments", headers=shop.tenant.headers, json={
        "merchant_id": shop.merchant_id, "amount": 100, "currency": "CNY", "method": "wallet_balance"})
    assert no_customer.status_code == 400 and no_customer.json()["error"]["param"] == "customer_id"
    bad_account = client.post(f"/v1/customers/{customer}/wallet/withdrawals", headers=shop.tenant.headers, json={
        "channel": next(iter(shop.channels)), "amount": 100, "currency": "CNY", "account_name": "X",
        "account_number": "12345!"})
    assert bad_account.status_code == 400 and bad_account.json()["error"]["param"] == "account_number"
