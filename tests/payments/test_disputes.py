"""Disputes: opening from a channel's notification (money taken from the merchant at once), evidence,
won / lost / accepted / overdue, the ledger after each step, refunds blocked while open, and the API's
authentication, tenancy and validation — each on SQLite and PostgreSQL."""

from __future__ import annotations

import inspect
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from finloop.core.clock import FrozenClock
from finloop.core.errors import Conflict, InvalidRequest, NotFound
from finloop.db.uow import Database
from finloop.ledger import service as ledger
from finloop.ledger.domain import AccountType, PostingSpec, TransferSpec
from finloop.ledger.models import Entry
from finloop.payments import disputes, flows
from finloop.payments.connectors.base import NotificationKind, NotificationParser
from finloop.payments.connectors.sandbox.app import InProcessSandbox
from finloop.payments.connectors.sandbox.engine import ChannelProfile
from finloop.payments.dispute_endpoints import router as disputes_router
from finloop.payments.dispute_models import Dispute
from finloop.payments.disputes import TRANSITIONS, DisputeEvent, DisputeStatus
from finloop.payments.models import Channel
from finloop.payments.postings import (
    AccountSpec,
    channel_receivable_code,
    ensure_account,
    merchant_pending_code,
    shard_of,
)
from finloop.tenancy import service as tenancy
from finloop.webhooks.models import WebhookMessage
from tests.conftest import TenantHandle
from tests.payments.conftest import Shop, tokenize


@pytest.fixture(autouse=True)
def _disputes_routes(app: FastAPI) -> None:
    """Mount the disputes router until the lead includes it in ``api/router.py`` (then this does nothing)."""
    if not any(getattr(route, "path", None) == "/v1/disputes" for route in app.routes):
        app.include_router(disputes_router, prefix="/v1")


def _always() -> ChannelProfile:
    return ChannelProfile(success_share=Decimal(1), latency_ms=(5, 10, 20))


def _paid(client: TestClient, shop: Shop, sandbox: InProcessSandbox, amount: int = 10_000) -> dict[str, Any]:
    """A succeeded card payment, with its attempt id and channel."""
    for code in shop.channels:
        sandbox.engine.configure(code, _always())
    response = client.post("/v1/payments", headers=shop.tenant.headers, json={
        "merchant_id": shop.merchant_id, "amount": amount, "currency": "CNY", "method": "card",
        "card_id": tokenize(client, shop.tenant), "order_reference": "order-1", "confirm": True})
    assert response.status_code == 201, response.text
    payment: dict[str, Any] = response.json()
    assert payment["status"] == "succeeded"
    attempts = client.get(f"/v1/payments/{payment['id']}/attempts", headers=shop.tenant.headers).json()
    payment["attempt_id"] = next(a["id"] for a in attempts if a["status"] == "succeeded")
    return payment


def _notice(payment: dict[str, Any], amount: int, *, dispute_id: str = "dp_ch_1", status: str | None = None,
            due: datetime | None = None, clock: FrozenClock | None = None) -> dict[str, Any]:
    """A dispute mapping as the connectors put it in ``Notification.dispute``."""
    notice: dict[str, Any] = {
        "reference": payment["attempt_id"], "channel_ref": None, "amount": amount, "currency": "CNY",
        "reason": "fraudulent", "dispute_id": dispute_id,
        "evidence_due_by": due or ((clock.now() if clock else datetime.now(UTC)) + timedelta(days=7))}
    if status is not None:
        notice["status"] = status
    return notice


def _notify(db: Database, shop: Shop, payment: dict[str, Any], notice: Mapping[str, Any]) -> Dispute | None:
    with db.uow() as uow:
        dispute = disputes.handle_dispute_notification(uow, shop.tenant.id, payment["channel"], notice)
        uow.commit()
        return dispute


def _open(db: Database, shop: Shop, payment: dict[str, Any], amount: int, clock: FrozenClock, *,
          dispute_id: str = "dp_ch_1", due: datetime | None = None) -> str:
    dispute = _notify(db, shop, payment, _notice(payment, amount, dispute_id=dispute_id, due=due, clock=clock))
    assert dispute is not None
    return dispute.id


def _balance(db: Database, tenant_id: str, code: str) -> int:
    """Signed to the account's normal side; 0 for an account that does not exist."""
    with db.uow(read_only=True) as uow:
        account = ledger.find_account_by_code(uow, tenant_id, code, "CNY")
        return 0 if account is None else ledger.balances(account).posted


def _pending(db: Database, shop: Shop) -> int:
    return _balance(db, shop.tenant.id, merchant_pending_code(shop.merchant_id))


def _receivable(db: Database, shop: Shop, payment: dict[str, Any]) -> int:
    return _balance(db, shop.tenant.id, channel_receivable_code(payment["channel"], shard_of(payment["id"])))


def _events(db: Database, tenant_id: str, type_: str) -> int:
    with db.uow(read_only=True) as uow:
        return uow.session.scalar(select(func.count()).select_from(WebhookMessage).where(
            WebhookMessage.tenant_id == tenant_id, WebhookMessage.type == type_)) or 0


def _entries(db: Database, tenant_id: str, dispute_id: str) -> list[str]:
    with db.uow(read_only=True) as uow:
        return sorted(uow.session.scalars(select(Entry.transfer_key).where(
            Entry.tenant_id == tenant_id, Entry.transfer_key.startswith(f"dispute:{dispute_id}:"))))


def _get(client: TestClient, tenant: TenantHandle, path: str) -> dict[str, Any]:
    response = client.get(path, headers=tenant.headers)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


# ------------------------------------------------------------------------------------------ state machine


def test_transition_table_refuses_every_move_it_does_not_list() -> None:
    for status in DisputeStatus:
        for event in DisputeEvent:
            if (status, event) in TRANSITIONS:
                assert disputes.next_status(status.value, event, "dp_x") is TRANSITIONS[(status, event)]
            else:
                with pytest.raises(Conflict) as error:
                    disputes.next_status(status.value, event, "dp_x")
                assert error.value.code == "dispute_state_conflict"
    closed = {DisputeStatus.WON, DisputeStatus.LOST}
    assert not any(status in closed for status, _ in TRANSITIONS), "a closed dispute never moves"


# ------------------------------------------------------------------------------------------ opening


def test_open_takes_the_amount_from_the_merchant_and_blocks_refunds(
        client: TestClient, shop: Shop, sandbox: InProcessSandbox, db: Database, clock: FrozenClock) -> None:
    payment = _paid(client, shop, sandbox)
    receivable_before = _receivable(db, shop, payment)
    dispute_id = _open(db, shop, payment, 4_000, clock)

    assert _pending(db, shop) == 6_000
    assert _receivable(db, shop, payment) == receivable_before - 4_000
    body = _get(client, shop.tenant, f"/v1/disputes/{dispute_id}")
    assert (body["status"], body["amount"], body["payment_id"]) == ("needs_response", 4_000, payment["id"])
    assert (body["from_pending_amount"], body["from_reserve_amount"], body["receivable_amount"]) == (4_000, 0, 0)
    assert body["opened_entry_id"].startswith("je_") and body["evidence"] is None
    assert body["evidence_due_by"] is not None
    assert _get(client, shop.tenant, f"/v1/payments/{payment['id']}")["is_disputed"] is True
    refused = client.post(f"/v1/payments/{payment['id']}/refunds", headers=shop.tenant.headers, json={})
    assert refused.status_code == 409 and refused.json()["error"]["code"] == "payment_disputed"
    assert _events(db, shop.tenant.id, "dispute.opened") == 1
    listed = _get(client, shop.tenant, f"/v1/disputes?payment_id={payment['id']}")
    assert [d["id"] for d in listed["data"]] == [dispute_id]


def test_duplicate_notification_opens_and_posts_once(
        client: TestClient, shop: Shop, sandbox: InProcessSandbox, db: Database, clock: FrozenClock) -> None:
    payment = _paid(client, shop, sandbox)
    notice = _notice(payment, 4_000, clock=clock)
    first = _notify(db, shop, payment, notice)
    again = _notify(db, shop, payment, notice)
    assert first is not None and again is not None and first.id == again.id
    assert _pending(db, shop) == 6_000
    assert _entries(db, shop.tenant.id, first.id) == [f"dispute:{first.id}:open"]
    assert _events(db, shop.tenant.id, "dispute.opened") == 1


def test_dispute_found_by_the_channels_reference_of_the_attempt(
        client: TestClient, shop: Shop, sandbox: InProcessSandbox, db: Database, clock: FrozenClock) -> None:
    payment = _paid(client, shop, sandbox)
    [attempt] = client.get(f"/v1/payments/{payment['id']}/attempts", headers=shop.tenant.headers).json()
    assert attempt["channel_ref"]
    notice = {**_notice(payment, 1_000, clock=clock), "reference": None, "channel_ref": attempt["channel_ref"]}
    dispute = _notify(db, shop, payment, notice)
    assert dispute is not None and dispute.payment_id == payment["id"]


def test_notification_for_an_unknown_payment_is_ignored(
        client: TestClient, shop: Shop, sandbox: InProcessSandbox, db: Database, clock: FrozenClock) -> None:
    payment = _paid(client, shop, sandbox)
    assert _notify(db, shop, payment, {**_notice(payment, 1_000, clock=clock), "reference": "att_unknown"}) is None
    with db.uow() as uow, pytest.raises(NotFound) as error:
        disputes.open_dispute(uow, shop.tenant.id, channel=payment["channel"], reference="att_unknown",
                              channel_ref=None, amount=1_000, currency="CNY", reason="fraudulent",
                              evidence_due_by=None, channel_dispute_id="dp_ch_9")
    assert error.value.code == "payment_not_found"
    assert _pending(db, shop) == 10_000


def test_dispute_larger_than_what_is_left_is_refused(
        client: TestClient, shop: Shop, sandbox: InProcessSandbox, db: Database, clock: FrozenClock) -> None:
    payment = _paid(client, shop, sandbox)
    refund = client.post(f"/v1/payments/{payment['id']}/refunds", headers=shop.tenant.headers,
                         json={"amount": 3_000})
    assert refund.status_code == 201, refund.text
    with pytest.raises(InvalidRequest) as error:
        _notify(db, shop, payment, _notice(payment, 7_001, clock=clock))
    assert (error.value.code, error.value.param) == ("amount_too_large", "amount")
    _open(db, shop, payment, 5_000, clock, dispute_id="dp_ch_1")
    with pytest.raises(InvalidRequest) as again:  # a second dispute counts the first
        _notify(db, shop, payment, _notice(payment, 2_001, dispute_id="dp_ch_2", clock=clock))
    assert again.value.code == "amount_too_large"
    _open(db, shop, payment, 2_000, clock, dispute_id="dp_ch_2")
    assert _pending(db, shop) == 0


@pytest.mark.parametrize(("change", "code", "param"), [
    ({"currency": "XXQ"}, "unknown_currency", "currency"),
    ({"currency": "USD"}, "currency_mismatch", "currency"),
    ({"amount": 0}, "invalid_amount", "amount"),
    ({"evidence_due_by": datetime(2026, 3, 9, 9, 0)}, "invalid_datetime", "evidence_due_by"),
    ({"channel_dispute_id": " "}, "parameter_missing", "channel_dispute_id"),
    ({"reason": "x" * 101}, "invalid_text", "reason"),
])
def test_open_refuses_bad_input_and_writes_nothing(
        client: TestClient, shop: Shop, sandbox: InProcessSandbox, db: Database, change: dict[str, Any], code: str,
        param: str) -> None:
    payment = _paid(client, shop, sandbox)
    arguments: dict[str, Any] = {
        "channel": payment["channel"], "reference": payment["attempt_id"], "channel_ref": None, "amount": 1_000,
        "currency": "CNY", "reason": "fraudulent", "evidence_due_by": None, "channel_dispute_id": "dp_ch_1",
        **change}
    with db.uow() as uow, pytest.raises(InvalidRequest) as error:
        disputes.open_dispute(uow, shop.tenant.id, **arguments)
    assert (error.value.code, error.value.param) == (code, param)
    assert _get(client, shop.tenant, "/v1/disputes")["data"] == []


def test_shortfall_comes_from_the_reserve_then_a_merchant_receivable_and_a_win_restores_it(
        client: TestClient, shop: Shop, sandbox: InProcessSandbox, db: Database, clock: FrozenClock) -> None:
    payment = _paid(client, shop, sandbox)
    tenant_id, merchant = shop.tenant.id, shop.merchant_id
    reserve_code = f"liabilities:merchant:{merchant}:reserve"
    with db.uow() as uow:  # settlement moved 1,000 to the reserve and paid 8,000 out
        pending = ensure_account(uow, tenant_id, AccountSpec(merchant_pending_code(merchant),
                                                             AccountType.LIABILITY), "CNY")
        reserve = ensure_account(uow, tenant_id, AccountSpec(reserve_code, AccountType.LIABILITY), "CNY")
        bank = ensure_account(uow, tenant_id, AccountSpec("assets:bank:main", AccountType.ASSET), "CNY")
        ledger.post_transfer(uow, tenant_id, TransferSpec("test:settle", (
            PostingSpec(pending, 9_000, "CNY"), PostingSpec(reserve, -1_000, "CNY"),
            PostingSpec(bank, -8_000, "CNY"))))
        uow.commit()
    dispute_id = _open(db, shop, payment, 5_000, clock)
    body = _get(client, shop.tenant, f"/v1/disputes/{dispute_id}")
    assert (body["from_pending_amount"], body["from_reserve_amount"], body["receivable_amount"]) == (
        1_000, 1_000, 3_000)
    receivable_code = f"assets:merchant_receivable:{merchant}"
    assert (_pending(db, shop), _balance(db, tenant_id, reserve_code),
            _balance(db, tenant_id, receivable_code)) == (0, 0, 3_000)
    with db.uow() as uow:
        disputes.close_dispute(uow, tenant_id, dispute_id, won=True)
        uow.commit()
    assert (_pending(db, shop), _balance(db, tenant_id, reserve_code),
            _balance(db, tenant_id, receivable_code)) == (1_000, 1_000, 0)


def test_disputed_wallet_top_up_comes_out_of_the_wallet_then_a_customer_receivable(
        client: TestClient, shop: Shop, sandbox: InProcessSandbox, db: Database, clock: FrozenClock) -> None:
    for code in shop.channels:
        sandbox.engine.configure(code, _always())
    headers = shop.tenant.headers
    customer = client.post("/v1/customers", headers=headers, json={"reference": "C1"}).json()["id"]
    top_up = client.post("/v1/payments", headers=headers, json={
        "purpose": "wallet_top_up", "customer_id": customer, "amount": 10_000, "currency": "CNY",
        "method": "card", "card_id": tokenize(client, shop.tenant), "confirm": True}).json()
    assert top_up["status"] == "succeeded", top_up
    spent = client.post("/v1/payments", headers=headers, json={
        "merchant_id": shop.merchant_id, "customer_id": customer, "amount": 7_000, "currency": "CNY",
        "method": "wallet_balance", "confirm": True}).json()
    assert spent["status"] == "succeeded", spent
    [attempt] = client.get(f"/v1/payments/{top_up['id']}/attempts", headers=headers).json()
    top_up["attempt_id"] = attempt["id"]
    dispute_id = _open(db, shop, top_up, 5_000, clock)
    body = _get(client, shop.tenant, f"/v1/disputes/{dispute_id}")
    assert body["merchant_id"] is None
    assert (body["from_pending_amount"], body["receivable_amount"]) == (3_000, 2_000)
    wallet, owed = f"liabilities:customer:{customer}:wallet", f"assets:customer_receivable:{customer}"
    assert (_balance(db, shop.tenant.id, wallet), _balance(db, shop.tenant.id, owed)) == (0, 2_000)
    with db.uow() as uow:
        disputes.close_dispute(uow, shop.tenant.id, dispute_id, won=True)
        uow.commit()
    assert (_balance(db, shop.tenant.id, wallet), _balance(db, shop.tenant.id, owed)) == (3_000, 0)


# ------------------------------------------------------------------------------------------ answering


def test_evidence_puts_the_dispute_under_review_once(
        client: TestClient, shop: Shop, sandbox: InProcessSandbox, db: Database, clock: FrozenClock) -> None:
    payment = _paid(client, shop, sandbox)
    dispute_id = _open(db, shop, payment, 4_000, clock)
    response = client.post(f"/v1/disputes/{dispute_id}/evidence", headers=shop.tenant.headers,
                           json={"text": "Delivered and signed for.", "files": ["file_receipt_1"]})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["status"] == "under_review"
    assert body["evidence"]["text"] == "Delivered and signed for."
    assert body["evidence"]["files"] == ["file_receipt_1"]
    again = client.post(f"/v1/disputes/{dispute_id}/evidence", headers=shop.tenant.headers, json={"text": "More."})
    assert again.status_code == 409 and again.json()["error"]["code"] == "dispute_state_conflict"
    assert _pending(db, shop) == 6_000
    assert _get(client, shop.tenant, "/v1/disputes?status=under_review")["data"][0]["id"] == dispute_id
    assert _get(client, shop.tenant, "/v1/disputes?status=needs_response")["data"] == []


def test_won_gives_the_money_back_and_refunds_work_again(
        client: TestClient, shop: Shop, sandbox: InProcessSandbox, db: Database, clock: FrozenClock) -> None:
    payment = _paid(client, shop, sandbox)
    receivable_before = _receivable(db, shop, payment)
    dispute_id = _open(db, shop, payment, 4_000, clock)
    client.post(f"/v1/disputes/{dispute_id}/evidence", headers=shop.tenant.headers, json={"text": "Proof."})
    closed = _notify(db, shop, payment, _notice(payment, 4_000, status="won", clock=clock))
    assert closed is not None and closed.id == dispute_id
    body = _get(client, shop.tenant, f"/v1/disputes/{dispute_id}")
    assert (body["status"], body["resolution"]) == ("won", "channel")
    assert body["closed_entry_id"].startswith("je_") and body["closed_at"] is not None
    assert _pending(db, shop) == 10_000
    assert _receivable(db, shop, payment) == receivable_before
    assert _entries(db, shop.tenant.id, dispute_id) == [f"dispute:{dispute_id}:open", f"dispute:{dispute_id}:won"]
    assert _events(db, shop.tenant.id, "dispute.closed") == 1
    assert _get(client, shop.tenant, f"/v1/payments/{payment['id']}")["is_disputed"] is False
    # Won is final: the same report again changes nothing, a contradicting one is ignored.
    _notify(db, shop, payment, _notice(payment, 4_000, status="won", clock=clock))
    _notify(db, shop, payment, _notice(payment, 4_000, status="lost", clock=clock))
    assert _get(client, shop.tenant, f"/v1/disputes/{dispute_id}")["status"] == "won"
    assert _pending(db, shop) == 10_000
    with db.uow() as uow, pytest.raises(Conflict) as error:
        disputes.close_dispute(uow, shop.tenant.id, dispute_id, won=False)
    assert error.value.code == "dispute_state_conflict"
    refund = client.post(f"/v1/payments/{payment['id']}/refunds", headers=shop.tenant.headers, json={})
    assert refund.status_code == 201 and refund.json()["amount"] == 10_000


def test_lost_keeps_the_money_with_the_channel_and_books_its_fee(
        client: TestClient, shop: Shop, sandbox: InProcessSandbox, db: Database, clock: FrozenClock) -> None:
    payment = _paid(client, shop, sandbox)
    with db.uow() as uow:
        channel = uow.session.scalar(select(Channel).where(Channel.tenant_id == shop.tenant.id,
                                                           Channel.code == payment["channel"]))
        assert channel is not None
        channel.settings = {**channel.settings, "chargeback_fee_amount": "1500"}
        uow.commit()
    receivable_before = _receivable(db, shop, payment)
    dispute_id = _open(db, shop, payment, 4_000, clock)
    with db.uow() as uow:
        disputes.close_dispute(uow, shop.tenant.id, dispute_id, won=False)
        uow.commit()
    body = _get(client, shop.tenant, f"/v1/disputes/{dispute_id}")
    assert (body["status"], body["resolution"], body["fee_amount"]) == ("lost", "channel", 1_500)
    assert _pending(db, shop) == 6_000
    assert _receivable(db, shop, payment) == receivable_before - 4_000 - 1_500
    assert _balance(db, shop.tenant.id, f"expenses:chargeback_fees:{payment['channel']}") == 1_500
    assert _get(client, shop.tenant, f"/v1/payments/{payment['id']}")["is_disputed"] is False
    assert _events(db, shop.tenant.id, "dispute.closed") == 1


def test_lost_without_a_fee_moves_nothing_more(
        client: TestClient, shop: Shop, sandbox: InProcessSandbox, db: Database, clock: FrozenClock) -> None:
    payment = _paid(client, shop, sandbox)
    dispute_id = _open(db, shop, payment, 4_000, clock)
    _notify(db, shop, payment, _notice(payment, 4_000, status="lost", clock=clock))
    body = _get(client, shop.tenant, f"/v1/disputes/{dispute_id}")
    assert (body["status"], body["fee_amount"], body["closed_entry_id"]) == ("lost", 0, None)
    assert _entries(db, shop.tenant.id, dispute_id) == [f"dispute:{dispute_id}:open"]
    assert _pending(db, shop) == 6_000


def test_closed_report_arriving_first_opens_and_closes(
        client: TestClient, shop: Shop, sandbox: InProcessSandbox, db: Database, clock: FrozenClock) -> None:
    payment = _paid(client, shop, sandbox)
    dispute = _notify(db, shop, payment, _notice(payment, 4_000, status="lost", clock=clock))
    assert dispute is not None
    assert _get(client, shop.tenant, f"/v1/disputes/{dispute.id}")["status"] == "lost"
    late_open = _notify(db, shop, payment, _notice(payment, 4_000, clock=clock))
    assert late_open is not None and late_open.status == "lost"
    assert _pending(db, shop) == 6_000


def test_accepting_loses_the_dispute(
        client: TestClient, shop: Shop, sandbox: InProcessSandbox, db: Database, clock: FrozenClock) -> None:
    payment = _paid(client, shop, sandbox)
    dispute_id = _open(db, shop, payment, 4_000, clock)
    response = client.post(f"/v1/disputes/{dispute_id}/accept", headers=shop.tenant.headers)
    assert response.status_code == 200, response.text
    assert (response.json()["status"], response.json()["resolution"]) == ("lost", "accepted")
    again = client.post(f"/v1/disputes/{dispute_id}/accept", headers=shop.tenant.headers)
    assert again.status_code == 409 and again.json()["error"]["code"] == "dispute_state_conflict"
    assert _pending(db, shop) == 6_000
    assert _get(client, shop.tenant, f"/v1/payments/{payment['id']}")["is_disputed"] is False


def test_accepting_after_evidence_is_a_conflict(
        client: TestClient, shop: Shop, sandbox: InProcessSandbox, db: Database, clock: FrozenClock) -> None:
    payment = _paid(client, shop, sandbox)
    dispute_id = _open(db, shop, payment, 4_000, clock)
    client.post(f"/v1/disputes/{dispute_id}/evidence", headers=shop.tenant.headers, json={"text": "Proof."})
    response = client.post(f"/v1/disputes/{dispute_id}/accept", headers=shop.tenant.headers)
    assert response.status_code == 409 and response.json()["error"]["code"] == "dispute_state_conflict"


def test_overdue_disputes_expire_as_lost_and_refuse_late_evidence(
        client: TestClient, shop: Shop, sandbox: InProcessSandbox, db: Database, clock: FrozenClock) -> None:
    payment = _paid(client, shop, sandbox)
    due = clock.now() + timedelta(days=1)
    overdue = _open(db, shop, payment, 1_000, clock, dispute_id="dp_ch_1", due=due)
    answered = _open(db, shop, payment, 1_000, clock, dispute_id="dp_ch_2", due=due)
    waiting = _open(db, shop, payment, 1_000, clock, dispute_id="dp_ch_3", due=due + timedelta(days=5))
    client.post(f"/v1/disputes/{answered}/evidence", headers=shop.tenant.headers, json={"text": "Proof."})
    clock.advance(timedelta(days=2))
    late = client.post(f"/v1/disputes/{overdue}/evidence", headers=shop.tenant.headers, json={"text": "Late."})
    assert late.status_code == 409 and late.json()["error"]["code"] == "evidence_overdue"
    with db.uow() as uow:
        assert disputes.expire_overdue(uow, now=clock.now()) == 1
        uow.commit()
    with db.uow() as uow:
        assert disputes.expire_overdue(uow, now=clock.now()) == 0
    statuses = {d["id"]: (d["status"], d["resolution"]) for d in _get(client, shop.tenant, "/v1/disputes")["data"]}
    assert statuses == {overdue: ("lost", "evidence_overdue"), answered: ("under_review", None),
                        waiting: ("needs_response", None)}
    assert _pending(db, shop) == 7_000
    assert _get(client, shop.tenant, f"/v1/payments/{payment['id']}")["is_disputed"] is True


def test_channel_win_after_a_local_expiry_gives_the_money_back(
        client: TestClient, shop: Shop, sandbox: InProcessSandbox, db: Database, clock: FrozenClock) -> None:
    payment = _paid(client, shop, sandbox)
    dispute_id = _open(db, shop, payment, 4_000, clock, due=clock.now() + timedelta(days=1))
    clock.advance(timedelta(days=2))
    with db.uow() as uow:
        assert disputes.expire_overdue(uow, now=clock.now()) == 1
        uow.commit()
    _notify(db, shop, payment, _notice(payment, 4_000, status="won", clock=clock))
    body = _get(client, shop.tenant, f"/v1/disputes/{dispute_id}")
    assert (body["status"], body["resolution"]) == ("won", "channel")
    assert _pending(db, shop) == 10_000


def test_disputes_page_newest_first(
        client: TestClient, shop: Shop, sandbox: InProcessSandbox, db: Database, clock: FrozenClock) -> None:
    payment = _paid(client, shop, sandbox)
    ids = [_open(db, shop, payment, 1_000, clock, dispute_id=f"dp_ch_{n}") for n in range(3)]
    first = _get(client, shop.tenant, "/v1/disputes?limit=2")
    assert [d["id"] for d in first["data"]] == ids[::-1][:2] and first["has_more"] is True
    rest = _get(client, shop.tenant, f"/v1/disputes?limit=2&starting_after={first['next_cursor']}")
    assert [d["id"] for d in rest["data"]] == [ids[0]] and rest["has_more"] is False


# ------------------------------------------------------------------------------------------ API guards


def test_disputes_require_an_api_key(client: TestClient) -> None:
    for method, path in [("GET", "/v1/disputes"), ("GET", "/v1/disputes/dp_1"),
                         ("POST", "/v1/disputes/dp_1/evidence"), ("POST", "/v1/disputes/dp_1/accept")]:
        response = client.request(method, path, json={"text": "x"} if method == "POST" else None)
        assert response.status_code == 401, (method, path, response.text)
        assert response.json()["error"]["type"] == "authentication_error"


def test_another_tenants_dispute_is_not_found(
        client: TestClient, shop: Shop, sandbox: InProcessSandbox, db: Database, clock: FrozenClock,
        other_tenant: TenantHandle) -> None:
    payment = _paid(client, shop, sandbox)
    dispute_id = _open(db, shop, payment, 4_000, clock)
    assert client.get(f"/v1/disputes/{dispute_id}", headers=other_tenant.headers).status_code == 404
    for action, body in [("evidence", {"text": "Mine."}), ("accept", None)]:
        response = client.post(f"/v1/disputes/{dispute_id}/{action}", headers=other_tenant.headers, json=body)
        assert response.status_code == 404 and response.json()["error"]["code"] == "dispute_not_found"
    assert _get(client, other_tenant, "/v1/disputes")["data"] == []
    assert _get(client, shop.tenant, f"/v1/disputes/{dispute_id}")["status"] == "needs_response"
    with db.uow() as uow, pytest.raises(NotFound):
        disputes.close_dispute(uow, other_tenant.id, dispute_id, won=True)


def test_answering_needs_the_refund_permission(
        client: TestClient, shop: Shop, sandbox: InProcessSandbox, db: Database, clock: FrozenClock) -> None:
    payment = _paid(client, shop, sandbox)
    dispute_id = _open(db, shop, payment, 4_000, clock)
    with db.uow() as uow:
        _, secret = tenancy.issue_api_key(uow, shop.tenant.id, name="audit", role=tenancy.Role.AUDITOR,
                                          actor="test")
        uow.commit()
    auditor = {"Authorization": f"Bearer {secret}"}
    assert client.get(f"/v1/disputes/{dispute_id}", headers=auditor).status_code == 200
    response = client.post(f"/v1/disputes/{dispute_id}/accept", headers=auditor)
    assert response.status_code == 403, response.text
    assert _get(client, shop.tenant, f"/v1/disputes/{dispute_id}")["status"] == "needs_response"


@pytest.mark.parametrize(("body", "code", "param"), [
    ({}, "missing_field", "text"),
    ({"text": ""}, "too_short", "text"),
    ({"text": "x" * 20_001}, "too_long", "text"),
    ({"text": "ok", "files": "receipt"}, "invalid_list", "files"),
    ({"text": "ok", "files": ["a\nb"]}, "invalid_text", "files[0]"),
    ({"text": "ok", "files": ["f"] * 21}, "too_many_items", "files"),
    ({"text": "ok", "extra": 1}, "unknown_field", "extra"),
])
def test_bad_evidence_is_refused_and_writes_nothing(
        client: TestClient, shop: Shop, sandbox: InProcessSandbox, db: Database, clock: FrozenClock,
        body: dict[str, Any], code: str, param: str) -> None:
    payment = _paid(client, shop, sandbox)
    dispute_id = _open(db, shop, payment, 4_000, clock)
    response = client.post(f"/v1/disputes/{dispute_id}/evidence", headers=shop.tenant.headers, json=body)
    assert response.status_code == 400, response.text
    assert (response.json()["error"]["code"], response.json()["error"]["param"]) == (code, param)
    assert _get(client, shop.tenant, f"/v1/disputes/{dispute_id}")["status"] == "needs_response"


def test_bad_list_filter_is_refused(client: TestClient, tenant: TenantHandle) -> None:
    response = client.get("/v1/disputes?status=open", headers=tenant.headers)
    assert response.status_code == 400
    assert (response.json()["error"]["code"], response.json()["error"]["param"]) == ("invalid_choice", "status")
    assert client.get("/v1/disputes/nope", headers=tenant.headers).status_code == 404


# ------------------------------------------------------------------------------------------ through the channel


def _dispute_at_the_channel(client: TestClient, shop: Shop, sandbox: InProcessSandbox,
                            clock: FrozenClock) -> dict[str, Any]:
    payment = _paid(client, shop, sandbox)
    sandbox.deliver_notifications(client)  # the payment's own notification, out of the way
    opened = sandbox.engine.open_dispute(payment["channel"], payment["attempt_id"], 4_000, "fraudulent")
    payment["sandbox_dispute"] = opened
    clock.advance(timedelta(seconds=30))
    return payment


def test_sandbox_dispute_notification_parsed_by_the_connector_opens_the_dispute(
        client: TestClient, shop: Shop, sandbox: InProcessSandbox, db: Database, clock: FrozenClock) -> None:
    payment = _dispute_at_the_channel(client, shop, sandbox, clock)
    items = [item for item in sandbox.engine.due_notifications() if item.kind == "dispute"]
    assert items, "the sandbox sends a dispute notification"
    headers, body = sandbox.providers[payment["channel"]].notification(items[0])
    connector = sandbox.connector(payment["channel"])
    assert isinstance(connector, NotificationParser)
    notification = connector.parse_notification(headers, body)
    assert notification.kind is NotificationKind.DISPUTE and notification.dispute is not None
    for _ in range(2):  # delivered twice: opened once
        dispute = _notify(db, shop, payment, notification.dispute)
    assert dispute is not None
    assert dispute.channel_dispute_id == payment["sandbox_dispute"]["id"]
    assert dispute.evidence_due_by == datetime.fromisoformat(payment["sandbox_dispute"]["evidence_due_by"])
    assert (dispute.amount, dispute.reason) == (4_000, "fraudulent")
    assert _pending(db, shop) == 6_000


_WIRED = "handle_dispute_notification" in inspect.getsource(flows)


@pytest.mark.skipif(not _WIRED, reason="needs lead wiring")
def test_sandbox_dispute_posted_to_the_notification_endpoint_opens_the_dispute(
        client: TestClient, shop: Shop, sandbox: InProcessSandbox, db: Database, clock: FrozenClock) -> None:
    payment = _dispute_at_the_channel(client, shop, sandbox, clock)
    assert sandbox.deliver_notifications(client) >= 1
    listed = _get(client, shop.tenant, f"/v1/disputes?payment_id={payment['id']}")["data"]
    assert [(d["amount"], d["status"]) for d in listed] == [(4_000, "needs_response")]
    assert _get(client, shop.tenant, f"/v1/payments/{payment['id']}")["is_disputed"] is True
    assert _pending(db, shop) == 6_000
