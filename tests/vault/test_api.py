from __future__ import annotations

import pytest
from sqlalchemy import select

from finloop.db.models import IdempotencyKey
from finloop.tenancy import service as tenancy
from finloop.tenancy.service import Role
from finloop.vault import service
from finloop.vault.models import Card

PAN = "5555 5555 5555 4444"
BODY = {"number": PAN, "exp_month": 12, "exp_year": 2030, "holder": "Ada Lovelace"}


def create(client, tenant, body=None, **headers):
    return client.post("/v1/cards", json=body or BODY, headers={**tenant.headers, **headers})


def test_tokenize_returns_the_masked_card_only(client, tenant):
    response = create(client, tenant, {**BODY, "cvc": "123", "customer_id": "cus_9"})
    assert response.status_code == 201, response.text
    card = response.json()
    assert set(card) == {"id", "object", "brand", "last4", "exp_month", "exp_year", "fingerprint", "customer_id",
                         "created_at", "deleted_at"}
    assert (card["object"], card["brand"], card["last4"], card["exp_month"], card["exp_year"]) == (
        "card", "mastercard", "4444", 12, 2030)
    assert card["customer_id"] == "cus_9" and card["deleted_at"] is None and card["id"].startswith("card_")
    assert "5555555555554444" not in response.text and "Ada" not in response.text
    got = client.get(f"/v1/cards/{card['id']}", headers=tenant.headers)
    assert got.status_code == 200 and got.json() == card


def test_idempotent_replay_stores_no_number(client, tenant, db):
    first = create(client, tenant, **{"Idempotency-Key": "checkout-1"})
    replay = create(client, tenant, **{"Idempotency-Key": "checkout-1"})
    assert first.status_code == replay.status_code == 201
    assert replay.headers.get("Idempotent-Replayed") == "true" and replay.json() == first.json()
    with db.uow(read_only=True) as uow:
        row = uow.session.scalar(select(IdempotencyKey).where(IdempotencyKey.key == "checkout-1"))
        assert uow.session.scalar(select(Card.id)) == first.json()["id"]
        assert row is not None and row.response_body is not None
        stored = " ".join([row.response_body, row.request_hash, row.path, row.method])
    assert "5555555555554444" not in stored and '"last4":"4444"' in stored  # the masked answer, only
    assert "Ada" not in stored and "number" not in stored


def test_unauthenticated_requests_are_refused(client):
    assert client.post("/v1/cards", json=BODY).status_code == 401
    assert client.get("/v1/cards/card_x").status_code == 401
    assert client.delete("/v1/cards/card_x").status_code == 401


def test_another_tenants_card_is_404(client, tenant, other_tenant):
    card_id = create(client, tenant).json()["id"]
    for method in ("get", "delete"):
        response = getattr(client, method)(f"/v1/cards/{card_id}", headers=other_tenant.headers)
        assert response.status_code == 404 and response.json()["error"]["code"] == "card_not_found"
    assert client.get(f"/v1/cards/{card_id}", headers=tenant.headers).json()["deleted_at"] is None


def test_missing_card_is_404(client, tenant):
    response = client.get("/v1/cards/card_nope", headers=tenant.headers)
    assert response.status_code == 404 and response.json()["error"]["param"] == "card_id"


@pytest.mark.parametrize(("change", "code", "param"), [
    ({"number": "5555 5555 5555 4445"}, "invalid_card_number", "number"),
    ({"number": "5555"}, "invalid_card_number", "number"),
    ({"number": "5555 5555 5555 444a"}, "invalid_card_number", "number"),
    ({"number": 5555555555554444}, "string_type", "number"),
    ({"exp_month": 2, "exp_year": 2026}, "card_expired", "exp_year"),
    ({"exp_month": 0}, "invalid_expiry", "exp_month"),
    ({"exp_month": "12"}, "int_type", "exp_month"),
    ({"exp_year": 26}, "invalid_expiry", "exp_year"),
    ({"cvc": "12"}, "invalid_cvc", "cvc"),
    ({"cvc": "12345"}, "invalid_cvc", "cvc"),
    ({"holder": "x" * 201}, "invalid_holder", "holder"),
    ({"pan": "1"}, "unknown_field", "pan"),
])
def test_bad_input_is_400_with_a_stable_code_and_no_echo(client, tenant, db, change, code, param):
    response = create(client, tenant, {**BODY, **change})
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert (error["code"], error["param"]) == (code, param)
    for value in change.values():
        digits = str(value).replace(" ", "")
        if len(digits) >= 4:
            assert digits not in response.text
    with db.uow(read_only=True) as uow:
        assert uow.session.scalars(select(Card)).all() == []


def test_delete_destroys_the_number_and_keeps_the_record(client, tenant, db):
    card = create(client, tenant).json()
    deleted = client.delete(f"/v1/cards/{card['id']}", headers=tenant.headers)
    assert deleted.status_code == 200 and deleted.json()["deleted_at"] is not None
    assert {k: v for k, v in deleted.json().items() if k != "deleted_at"} == {
        k: v for k, v in card.items() if k != "deleted_at"}
    assert client.get(f"/v1/cards/{card['id']}", headers=tenant.headers).json() == deleted.json()
    with db.uow(read_only=True) as uow:
        row = uow.session.get(Card, card["id"])
        assert row is not None and row.ciphertext is None
        with pytest.raises(Exception, match="deleted"):
            service.reveal_card(uow, tenant.id, card["id"])


def test_an_auditor_key_reads_cards_but_cannot_change_them(client, tenant, db):
    card_id = create(client, tenant).json()["id"]
    with db.uow() as uow:
        _, secret = tenancy.issue_api_key(uow, tenant.id, name="audit", role=Role.AUDITOR, actor="test")
        uow.commit()
    headers = {"Authorization": f"Bearer {secret}"}
    assert client.get(f"/v1/cards/{card_id}", headers=headers).status_code == 200
    for response in (client.post("/v1/cards", json=BODY, headers=headers),
                     client.delete(f"/v1/cards/{card_id}", headers=headers)):
        assert response.status_code == 403 and response.json()["error"]["code"] == "role_not_allowed"


def test_a_support_key_may_tokenize(client, tenant, db):
    with db.uow() as uow:
        _, secret = tenancy.issue_api_key(uow, tenant.id, name="checkout", role=Role.SUPPORT, actor="test")
        uow.commit()
    assert client.post("/v1/cards", json=BODY, headers={"Authorization": f"Bearer {secret}"}).status_code == 201


@pytest.mark.parametrize("change", [
    {"number": "4242\x004242\x004242\x004242"}, {"number": "\x00"}, {"number": "1e400"}, {"number": "9" * 5000},
    {"holder": "a\x00b"}, {"customer_id": "\x00"}, {"cvc": "\x00\x00\x00"}, {"exp_month": 2**64},
    {"exp_year": 10**30}, {"exp_year": -(2**63) - 1}, {"exp_month": 12.0}, {"exp_year": True}, {"number": None},
])
def test_nasty_values_are_refused_with_a_400(client, tenant, change):
    response = create(client, tenant, {**BODY, **change})
    assert response.status_code == 400, response.text


def test_nasty_card_ids_are_404_or_400(client, tenant):
    for card_id in ["card_%00", "..%2F..%2Fetc", "x" * 41]:
        assert client.get(f"/v1/cards/{card_id}", headers=tenant.headers).status_code in (400, 404)
