"""Applicants' personal data: sealed at rest (bound to its row), masked in output, never logged, looked up
through keyed blind indexes that flag duplicates; bad input writes nothing; tenants share nothing."""

from __future__ import annotations

import json
import re

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, inspect, select, text

from finloop.app import create_app
from finloop.core.errors import Conflict, InvalidRequest, NotFound
from finloop.credit import service as credit
from finloop.credit.models import Applicant
from finloop.credit.service import PersonalField
from finloop.db.uow import Database
from finloop.payments import service as payments
from finloop.vault.crypto import DecryptionFailed
from tests.conftest import TenantHandle
from tests.credit.conftest import applicant_row, make_applicant

NATIONAL_ID = "110101199003070011"
PHONE_DIGITS = "8613800138000"
ACCOUNT = "6222020200112233445"


def scan_database(db: Database, needles: list[str]) -> list[str]:
    """Every table.column where one of ``needles`` appears (text, JSON or bytes)."""
    found = []
    with db.engine.connect() as connection:
        for table in inspect(connection).get_table_names():
            result = connection.execute(text(f'SELECT * FROM "{table}"'))
            for row in result:
                for column, value in zip(result.keys(), row, strict=True):
                    if value is None:
                        continue
                    raw = bytes(value) if isinstance(value, bytes | bytearray | memoryview) else None
                    as_text = json.dumps(value) if isinstance(value, dict | list) else str(value)
                    compact = as_text.replace(" ", "").replace("-", "")
                    if any(n in compact or (raw is not None and n.encode() in raw) for n in needles):
                        found.append(f"{table}.{column}")
    return found


def count(db: Database, tenant_id: str) -> int:
    with db.uow(read_only=True) as uow:
        return int(uow.session.scalar(select(func.count()).select_from(Applicant)
                                      .where(Applicant.tenant_id == tenant_id)) or 0)


def test_personal_data_is_sealed_indexed_and_masked(db: Database, tenant: TenantHandle) -> None:
    party = make_applicant(db, tenant.id, "alice", national_id=NATIONAL_ID, phone="+86 138 0013 8000",
                           bank_account=ACCOUNT)
    row = applicant_row(db, tenant.id, party.applicant_id)
    assert (row.national_id_last4, row.phone_last4, row.bank_account_last4) == ("0011", "8000", "3445")
    assert row.national_id_sealed.startswith("vault:v1:") and len(row.national_id_index) == 64
    assert scan_database(db, [NATIONAL_ID, PHONE_DIGITS, ACCOUNT]) == []
    with db.uow() as uow:
        applicant = credit.get_applicant(uow, tenant.id, party.applicant_id)
        assert credit.reveal(uow, applicant, PersonalField.NATIONAL_ID) == NATIONAL_ID
        assert credit.reveal(uow, applicant, PersonalField.PHONE) == "+" + PHONE_DIGITS
        assert credit.reveal(uow, applicant, PersonalField.BANK_ACCOUNT) == ACCOUNT
        # A ciphertext copied onto another applicant's row does not open there: the seal names its row.
        other = credit.get_applicant(uow, tenant.id, make_applicant_in(uow, tenant.id, "bob", "220102198811110022"))
        other.national_id_sealed = applicant.national_id_sealed
        with pytest.raises(DecryptionFailed):
            credit.reveal(uow, other, PersonalField.NATIONAL_ID)


def make_applicant_in(uow, tenant_id: str, reference: str, national_id: str) -> str:  # type: ignore[no-untyped-def]
    customer = payments.create_customer(uow, tenant_id, reference=reference)
    return credit.create_applicant(uow, tenant_id, party_kind="customer", party_id=customer.id,
                                   declared_income_amount=500_000, currency="CNY", employment="student",
                                   national_id=national_id, actor="test").id


def test_applicants_sharing_personal_data_are_flagged_through_the_blind_index(db: Database,
                                                                              tenant: TenantHandle) -> None:
    first = make_applicant(db, tenant.id, "alice", national_id=NATIONAL_ID, phone="13800138000",
                           bank_account=ACCOUNT)
    stranger = make_applicant(db, tenant.id, "carol", national_id="330106198501011234", phone="13900000001",
                              bank_account="6222000011112222")
    # The same id written differently, and the same phone; a different account.
    second = make_applicant(db, tenant.id, "bob", national_id="110101-19900307-0011", phone="138 0013 8000",
                            bank_account="6222999988887777")
    assert applicant_row(db, tenant.id, second.applicant_id).flags == ["duplicate_national_id", "shared_phone"]
    assert applicant_row(db, tenant.id, first.applicant_id).flags == ["duplicate_national_id", "shared_phone"]
    assert applicant_row(db, tenant.id, stranger.applicant_id).flags == []
    with db.uow(read_only=True) as uow:
        found = credit.find_applicants(uow, tenant.id, "national_id", "110101 1990 0307 0011")
        assert [a.id for a in found] == sorted([first.applicant_id, second.applicant_id])
        assert [a.id for a in credit.find_applicants(uow, tenant.id, "bank_account", ACCOUNT)] == [first.applicant_id]
        assert credit.duplicates(uow, tenant.id, credit.get_applicant(uow, tenant.id, first.applicant_id)) == {
            "national_id": [second.applicant_id], "phone": [second.applicant_id], "bank_account": []}
        actions = uow.session.execute(text(
            "SELECT action, object_id FROM audit_events WHERE tenant_id = :t AND action = 'credit.applicant.flagged'"),
            {"t": tenant.id}).all()
        assert [(a, o) for a, o in actions] == [("credit.applicant.flagged", first.applicant_id)] * 2


def test_other_tenants_share_no_index_and_see_nothing(db: Database, tenant: TenantHandle,
                                                      other_tenant: TenantHandle) -> None:
    mine = make_applicant(db, tenant.id, "alice", national_id=NATIONAL_ID)
    theirs = make_applicant(db, other_tenant.id, "alice", national_id=NATIONAL_ID)
    assert applicant_row(db, other_tenant.id, theirs.applicant_id).flags == []
    assert applicant_row(db, tenant.id, mine.applicant_id).national_id_index != \
        applicant_row(db, other_tenant.id, theirs.applicant_id).national_id_index
    with db.uow(read_only=True) as uow:
        with pytest.raises(NotFound):
            credit.get_applicant(uow, other_tenant.id, mine.applicant_id)
        assert [a.id for a in credit.list_applicants(uow, other_tenant.id)] == [theirs.applicant_id]


def test_bad_input_is_refused_and_writes_nothing(db: Database, tenant: TenantHandle,
                                                 other_tenant: TenantHandle) -> None:
    with db.uow() as uow:
        customer = payments.create_customer(uow, tenant.id, reference="alice").id
        foreign = payments.create_customer(uow, other_tenant.id, reference="mallory").id
        uow.commit()
    good = {"party_kind": "customer", "party_id": customer, "declared_income_amount": 800_000, "currency": "CNY",
            "employment": "employed", "national_id": NATIONAL_ID, "phone": None, "bank_account": None}
    cases = [({"party_kind": "bank"}, InvalidRequest, "party_kind"), ({"party_id": foreign}, NotFound, "party_id"),
             ({"declared_income_amount": -1}, InvalidRequest, "declared_income_amount"),
             ({"declared_income_amount": 1.5}, InvalidRequest, "declared_income_amount"),
             ({"currency": "XXZ"}, InvalidRequest, "currency"),
             ({"employment": "pirate"}, InvalidRequest, "employment"),
             ({"national_id": "12-34"}, InvalidRequest, "national_id"),
             ({"phone": "call me"}, InvalidRequest, "phone"),
             ({"bank_account": "12"}, InvalidRequest, "bank_account")]
    for change, error, param in cases:
        with db.uow() as uow, pytest.raises(error) as caught:
            credit.create_applicant(uow, tenant.id, **{**good, **change}, actor="test")  # type: ignore[arg-type]
        assert caught.value.param == param, change
        assert NATIONAL_ID not in caught.value.message
    assert count(db, tenant.id) == 0
    with db.uow() as uow:
        credit.create_applicant(uow, tenant.id, **good, actor="test")  # type: ignore[arg-type]
        uow.commit()
    with db.uow() as uow, pytest.raises(Conflict) as caught:
        credit.create_applicant(uow, tenant.id, **good, actor="test")  # type: ignore[arg-type]
    assert caught.value.code == "applicant_exists" and count(db, tenant.id) == 1


def test_personal_data_reaches_no_log_response_or_column(app, db: Database, tenant: TenantHandle,  # type: ignore[no-untyped-def]
                                                          capsys) -> None:
    settings = app.state.settings.model_copy(update={"log_level": "DEBUG"})
    logged = create_app(settings, database=db, access_log=True)
    with db.uow() as uow:
        customer = payments.create_customer(uow, tenant.id, reference="alice").id
        uow.commit()
    body = {"party_kind": "customer", "party_id": customer, "declared_income_amount": 800_000, "currency": "CNY",
            "employment": "employed", "national_id": NATIONAL_ID, "phone": "+86 138 0013 8000",
            "bank_account": ACCOUNT}
    with TestClient(logged, raise_server_exceptions=False) as client:
        headers = {**tenant.headers, "Idempotency-Key": "apl-1"}
        created = client.post("/v1/credit/applicants", headers=headers, json=body)
        replayed = client.post("/v1/credit/applicants", headers=headers, json=body)
        bad = client.post("/v1/credit/applicants", headers=tenant.headers, json={**body, "phone": "x" + NATIONAL_ID})
        applicant_id = created.json()["id"]
        consent = client.post(f"/v1/credit/applicants/{applicant_id}/consents", headers=tenant.headers,
                              json={"scope": ["bureau_report"]})
        pulled = client.post(f"/v1/credit/applicants/{applicant_id}/bureau-reports", headers=tenant.headers)
        fetched = client.get(f"/v1/credit/applicants/{applicant_id}", headers=tenant.headers)
        listed = client.get("/v1/credit/applicants", headers=tenant.headers)
    responses = [created, replayed, bad, consent, pulled, fetched, listed]
    assert [r.status_code for r in responses] == [201, 201, 400, 201, 201, 200, 200]
    shown = fetched.json()
    assert (shown["national_id"], shown["phone"], shown["bank_account"]) == ("****0011", "****8000", "****3445")
    assert replayed.json() == created.json() and bad.json()["error"]["param"] == "phone"
    logs = capsys.readouterr().err
    assert '"route": "/v1/credit/applicants"' in logs  # the capture works
    everything = logs + "".join(r.text for r in responses)
    compact = everything.replace(" ", "").replace("-", "")
    for secret in (NATIONAL_ID, PHONE_DIGITS, ACCOUNT):
        assert secret not in compact
    assert not re.search(r"\b1101011990", compact)
    assert scan_database(db, [NATIONAL_ID, PHONE_DIGITS, ACCOUNT]) == []


def test_risk_list_membership_is_asked_through_the_risk_engines_index(db: Database, tenant: TenantHandle) -> None:
    from finloop.risk import lists

    listed = make_applicant(db, tenant.id, "alice", phone="+86 138 0013 8000", bank_account=ACCOUNT)
    clean = make_applicant(db, tenant.id, "bob", national_id="220102198811110022", phone="13900000001",
                           bank_account=None)
    with db.uow() as uow:
        lists.add_entry(uow, tenant.id, kind="black", level="phone", value="+8613800138000", reason="fraud ring",
                        actor="test")
        lists.add_entry(uow, tenant.id, kind="grey", level="payout_account", value=ACCOUNT, reason="mule",
                        actor="test")
        uow.commit()
    with db.uow(read_only=True) as uow:
        assert credit.list_memberships(uow, tenant.id, credit.get_applicant(uow, tenant.id, listed.applicant_id)) == [
            "black:phone", "grey:payout_account"]
        assert credit.list_memberships(uow, tenant.id, credit.get_applicant(uow, tenant.id, clean.applicant_id)) == []
