"""Splits of real sandbox payments: the issue's 100.00 → 10/5/85 example shown at once in the parties'
pending balances, refund claw-backs from pending, then available, then into a limited receivable, and
recovery of that receivable from the next earnings — on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Any

import pytest
from fastapi.testclient import TestClient

from finloop.clearing import service as clearing
from finloop.core.errors import InvariantViolation
from finloop.db.uow import Database
from finloop.ledger import service as ledger
from finloop.ledger.domain import AccountType, TransferSpec
from finloop.payments import service as payments
from finloop.payments.connectors.sandbox.app import InProcessSandbox
from finloop.payments.connectors.sandbox.engine import ChannelProfile
from finloop.payments.postings import AccountSpec, ensure_account, post_payment_captured, shard_of
from finloop.settlement.accounts import Bucket, PartyKind, bank_account_code, commission_code, party_account_code
from finloop.splits import service
from tests.payments.conftest import Shop, tokenize


def _pay(client: TestClient, shop: Shop, amount: int, **metadata: str) -> dict[str, Any]:
    response = client.post("/v1/payments", headers=shop.tenant.headers, json={
        "merchant_id": shop.merchant_id, "amount": amount, "currency": "CNY", "method": "card",
        "card_id": tokenize(client, shop.tenant), "order_reference": "o", "confirm": True, "metadata": metadata})
    assert response.status_code == 201 and response.json()["status"] == "succeeded", response.text
    body: dict[str, Any] = response.json()
    return body


def _balances(client: TestClient, shop: Shop, kind: str, party_id: str) -> dict[str, int]:
    response = client.get(f"/v1/parties/{kind}/{party_id}/balances", headers=shop.tenant.headers)
    assert response.status_code == 200, response.text
    [cny] = response.json()["data"]
    return {k: cny[k] for k in ("pending", "available", "receivable")}


def _move(db: Database, shop: Shop, key: str, debit: str, credit: str, amount: int) -> None:
    """Stand-in for settlement and payout: move a party's money between accounts by a plain transfer."""
    with db.uow() as uow:
        accounts = [ensure_account(uow, shop.tenant.id, AccountSpec(code, type_), "CNY") for code, type_ in (
            (debit, AccountType.LIABILITY), (credit, AccountType.ASSET if credit.startswith("assets")
                                                   else AccountType.LIABILITY))]
        ledger.post_transfer(uow, shop.tenant.id, TransferSpec.simple(key, accounts[0], accounts[1], amount, "CNY"))
        uow.commit()


def test_issue_example_splits_at_once_and_refunds_claw_back_to_a_limited_receivable(
        client: TestClient, shop: Shop, sandbox: InProcessSandbox, db: Database) -> None:
    for code in shop.channels:
        sandbox.engine.configure(code, ChannelProfile(success_share=Decimal(1), latency_ms=(5, 10, 20)))
    headers, merchant = shop.tenant.headers, shop.merchant_id
    promoter = client.post("/v1/promoters", headers=headers, json={"reference": "P1", "name": "Ann"}).json()
    rule = client.post("/v1/split-rules", headers=headers, json={
        "scope": "default", "platform": {"kind": "ratio", "ratio": "0.10"}, "promoter_ratios": ["0.05"]})
    assert rule.status_code == 201, rule.text

    payment = _pay(client, shop, 10_000, promoter_id=promoter["id"])
    # At once: 10.00 platform commission, 5.00 promoter commission, 85.00 merchant income.
    assert _balances(client, shop, "merchant", merchant) == {"pending": 8_500, "available": 0, "receivable": 0}
    assert _balances(client, shop, "promoter", promoter["id"]) == {"pending": 500, "available": 0, "receivable": 0}
    [split] = client.get(f"/v1/payment-splits/{payment['id']}", headers=headers).json()["data"]
    assert [(p["party_kind"], p["amount"]) for p in split["parts"]] == [
        ("platform", 1_000), ("promoter", 500), ("merchant", 8_500)]
    assert split["rule_id"] == rule.json()["id"] and split["rule_version"] == 1 and split["fee_bearer"] == "platform"
    with db.uow(read_only=True) as uow:
        entry = ledger.get_entry(uow, shop.tenant.id, payment["ledger_entry_id"])
        assert entry.meta["split_id"] == split["id"] and entry.meta["merchant_id"] == merchant
        commission = ledger.find_account_by_code(uow, shop.tenant.id, commission_code(shard_of(payment["id"])), "CNY")
        assert commission is not None and ledger.balances(commission).posted == 1_000
        [earned] = service.party_earnings(uow, shop.tenant.id, party_kind=PartyKind.MERCHANT, party_id=merchant,
                                          from_on=date.fromisoformat(split["business_date"]),
                                          to_on=date.fromisoformat(split["business_date"]))
        assert (earned.gross_sales_amount, earned.platform_commission_amount, earned.promoter_commission_amount,
                earned.net_amount) == (10_000, 1_000, 500, 8_500)

    # A partial refund claws back in proportion, from pending.
    refund = client.post(f"/v1/payments/{payment['id']}/refunds", headers=headers, json={"amount": 3_000})
    assert refund.status_code == 201 and refund.json()["status"] == "succeeded", refund.text
    assert _balances(client, shop, "merchant", merchant)["pending"] == 8_500 - 2_550
    assert _balances(client, shop, "promoter", promoter["id"])["pending"] == 500 - 150

    # Settled: the merchant's money moves to available; the next refund is taken from there.
    pending, available = (party_account_code(PartyKind.MERCHANT, merchant, b) for b in (Bucket.PENDING,
                                                                                       Bucket.AVAILABLE))
    _move(db, shop, "settle", pending, available, 5_950)
    refund = client.post(f"/v1/payments/{payment['id']}/refunds", headers=headers, json={"amount": 3_000})
    assert refund.status_code == 201, refund.text
    assert _balances(client, shop, "merchant", merchant) == {"pending": 0, "available": 3_400, "receivable": 0}

    # Paid out: the last refund would leave the merchant owing 3,400, above its limit of 0: the refund flow's
    # pre-flight refuses it; within a limit of 5,000 it goes through and the merchant owes it.
    _move(db, shop, "payout", available, bank_account_code("custody"), 3_400)
    with db.uow(read_only=True) as uow:
        row = payments.get_payment(uow, shop.tenant.id, payment["id"])
        with pytest.raises(InvariantViolation) as refused:
            service.check_refund(uow, row, 4_000)
        assert refused.value.code == "party_receivable_limit"
    limit = client.post(f"/v1/parties/merchant/{merchant}/receivable-limit", headers=headers,
                        json={"receivable_limit": 5_000})
    assert limit.status_code == 200 and limit.json()["receivable_limit"] == 5_000
    with db.uow(read_only=True) as uow:
        service.check_refund(uow, payments.get_payment(uow, shop.tenant.id, payment["id"]), 4_000)
    last = client.post(f"/v1/payments/{payment['id']}/refunds", headers=headers, json={})
    assert last.status_code == 201 and last.json()["status"] == "succeeded", last.text
    assert _balances(client, shop, "merchant", merchant) == {"pending": 0, "available": 0, "receivable": 3_400}
    [split] = client.get(f"/v1/payment-splits/{payment['id']}", headers=headers).json()["data"]
    assert [p["clawed_amount"] for p in split["parts"]] == [1_000, 500, 8_500]  # exactly a full refund's
    assert [c["amount"] for c in split["clawbacks"]] == [3_000, 3_000, 4_000]
    assert split["clawbacks"][2]["pieces"][-1]["to_receivable"] == 3_400
    day = date.fromisoformat(split["business_date"])
    with db.uow(read_only=True) as uow:
        [earned] = service.party_earnings(uow, shop.tenant.id, party_kind=PartyKind.PROMOTER, party_id=promoter["id"],
                                          from_on=day, to_on=day)
        assert (earned.gross_sales_amount, earned.clawed_back_amount, earned.net_amount) == (10_000, 500, 0)

    # The next earnings (no promoter this time: 90.00) pay the receivable down first, in the same entry.
    second = _pay(client, shop, 10_000)
    assert _balances(client, shop, "merchant", merchant) == {"pending": 9_000 - 3_400, "available": 0,
                                                             "receivable": 0}
    [split] = client.get(f"/v1/payment-splits/{second['id']}", headers=headers).json()["data"]
    assert split["parts"][-1]["recovered_amount"] == 3_400

    # Paid out again: a full refund would leave the merchant owing 9,000 > its 5,000 limit, so it is refused
    # before the channel is asked, and nothing is written.
    _move(db, shop, "payout-2", pending, bank_account_code("custody"), 5_600)
    refund = client.post(f"/v1/payments/{second['id']}/refunds", headers=headers, json={})
    assert (refund.status_code, refund.json()["error"]["code"]) == (422, "party_receivable_limit"), refund.text
    assert _balances(client, shop, "merchant", merchant)["receivable"] == 0
    assert client.get(f"/v1/payments/{second['id']}", headers=headers).json()["refunded_amount"] == 0


def test_wallet_payments_split_top_ups_do_not_and_a_refund_over_the_limit_writes_nothing(
        client: TestClient, shop: Shop, sandbox: InProcessSandbox, db: Database) -> None:
    for code in shop.channels:
        sandbox.engine.configure(code, ChannelProfile(success_share=Decimal(1), latency_ms=(5, 10, 20)))
    headers, merchant = shop.tenant.headers, shop.merchant_id
    customer = client.post("/v1/customers", headers=headers, json={"reference": "C1"}).json()["id"]
    promoter = client.post("/v1/promoters", headers=headers, json={"reference": "P1", "name": "Ann"}).json()["id"]
    bound = client.post(f"/v1/promoters/{promoter}/customers", headers=headers, json={"customer_id": customer})
    assert bound.status_code == 200, bound.text
    assert client.post("/v1/split-rules", headers=headers, json={
        "scope": "merchant", "merchant_id": merchant, "platform": {"kind": "ratio", "ratio": "0.1"},
        "promoter_ratios": ["0.05"], "refund_policy": "merchant_first"}).status_code == 201
    top_up = client.post("/v1/payments", headers=headers, json={
        "purpose": "wallet_top_up", "customer_id": customer, "amount": 50_000, "currency": "CNY", "method": "card",
        "card_id": tokenize(client, shop.tenant), "confirm": True}).json()
    assert client.get(f"/v1/payment-splits/{top_up['id']}", headers=headers).json()["data"] == []

    paid = client.post("/v1/payments", headers=headers, json={
        "merchant_id": merchant, "customer_id": customer, "amount": 10_000, "currency": "CNY",
        "method": "wallet_balance", "confirm": True}).json()
    assert paid["status"] == "succeeded", paid
    [split] = client.get(f"/v1/payment-splits/{paid['id']}", headers=headers).json()["data"]
    assert split["capture_key"] == "wallet" and [p["amount"] for p in split["parts"]] == [1_000, 500, 8_500]
    assert _balances(client, shop, "promoter", promoter)["pending"] == 500  # by the customer's binding

    # merchant_first: the merchant's part is clawed back before anyone else's.
    refund = client.post(f"/v1/payments/{paid['id']}/refunds", headers=headers, json={"amount": 8_000})
    assert refund.status_code == 201 and refund.json()["status"] == "succeeded", refund.text
    assert _balances(client, shop, "merchant", merchant)["pending"] == 500
    assert _balances(client, shop, "promoter", promoter)["pending"] == 500

    # The merchant is paid out; the next refund would leave it owing above its limit: refused, nothing written.
    _move(db, shop, "payout", party_account_code(PartyKind.MERCHANT, merchant, Bucket.PENDING),
          bank_account_code("custody"), 500)
    refused = client.post(f"/v1/payments/{paid['id']}/refunds", headers=headers, json={"amount": 2_000})
    assert refused.status_code == 422 and refused.json()["error"]["code"] == "party_receivable_limit", refused.text
    assert client.get(f"/v1/payments/{paid['id']}", headers=headers).json()["refunded_amount"] == 8_000
    assert len(client.get("/v1/refunds", headers=headers, params={"payment_id": paid["id"]}).json()["data"]) == 1
    assert _balances(client, shop, "merchant", merchant) == {"pending": 0, "available": 0, "receivable": 0}


def test_hierarchy_shares_and_a_merchant_borne_fee_are_posted_in_the_capture_entry(
        client: TestClient, shop: Shop, sandbox: InProcessSandbox, db: Database,
        monkeypatch: pytest.MonkeyPatch) -> None:
    for code in shop.channels:
        sandbox.engine.configure(code, ChannelProfile(success_share=Decimal(1), latency_ms=(5, 10, 20)))
    headers, merchant = shop.tenant.headers, shop.merchant_id
    hq = client.post("/v1/merchants", headers=headers, json={"reference": "HQ", "name": "HQ"}).json()["id"]
    assert client.post("/v1/merchant-links", headers=headers, json={
        "merchant_id": merchant, "parent_merchant_id": hq, "share_ratio": "0.03"}).status_code == 201
    assert client.post("/v1/split-rules", headers=headers, json={
        "scope": "category", "category": "tea", "platform": {"kind": "ratio", "ratio": "0.1"}}).status_code == 201
    monkeypatch.setattr(clearing, "fee_bearer", lambda *args, **kwargs: clearing.FeeBearer.MERCHANT)

    payment = _pay(client, shop, 10_000, category="tea")
    fee = payment["fee_amount"]
    assert fee > 0
    [split] = client.get(f"/v1/payment-splits/{payment['id']}", headers=headers).json()["data"]
    assert [(p["party_id"], p["amount"], p["fee_amount"]) for p in split["parts"]] == [
        ("platform", 1_000, 0), (hq, 300, 0), (merchant, 8_700, fee)]
    assert _balances(client, shop, "merchant", hq)["pending"] == 300
    assert _balances(client, shop, "merchant", merchant)["pending"] == 8_700 - fee
    with db.uow(read_only=True) as uow:
        postings = ledger.entry_postings(uow, [payment["ledger_entry_id"]])[payment["ledger_entry_id"]]
        codes = {ledger.get_account(uow, shop.tenant.id, p.account_id).code: p.amount for p in postings}
    shard = shard_of(payment["id"])
    assert codes[service.fee_recovery_code(shard)] == -fee and codes[commission_code(shard)] == -1_000
    assert sum(codes.values()) == 0
    # Posting the same success again is a replay: the same entry, no second split.
    with db.uow() as uow:
        row = payments.get_payment(uow, shop.tenant.id, payment["id"], lock=True)
        again = post_payment_captured(uow, row, attempt_id=split["capture_key"], channel=row.channel or "",
                                      amount=10_000, fee=fee)
        assert again == payment["ledger_entry_id"]
        assert len(service.get_payment_splits(uow, shop.tenant.id, payment["id"])) == 1
        uow.commit()
