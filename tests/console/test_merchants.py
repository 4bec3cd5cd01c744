"""The Merchants pages: the list, a merchant's balances, settlement terms, statements and payouts, a payout with
its approval, and the refund approval threshold changed by an admin (audited) and refused to everyone else."""

from __future__ import annotations

import csv
import io
from decimal import Decimal

from finloop.audit.models import AuditEvent
from finloop.db.uow import Database
from finloop.payments import service as payments
from finloop.payments.models import Merchant
from finloop.payouts import service as payouts
from finloop.settlement import service as settlement
from finloop.settlement.accounts import PartyKind
from finloop.tenancy.service import system_principal
from tests.conftest import TenantHandle, make_tenant
from tests.console.conftest import sign_in
from tests.payouts.conftest import Party, make_party


def _payout_for_approval(db: Database, party: Party, amount: int = 30_000) -> str:
    """A payout above the tenant's approval amount: it waits, its amount held."""
    with db.uow() as uow:
        payouts.set_settings(uow, party.tenant.id, approval_amount=20_000, actor="test")
        payout = payouts.request_payout(uow, party.tenant.id, party_kind=PartyKind.MERCHANT,
                                        party_id=party.merchant_id, amount=amount, currency="CNY",
                                        requested_by=system_principal(party.tenant.id, "test"))
        uow.commit()
        assert payout.status == "pending_approval"
        return payout.id


def _threshold(db: Database, merchant_id: str) -> int | None:
    with db.uow(read_only=True) as uow:
        merchant = uow.session.get(Merchant, merchant_id)
        assert merchant is not None
        return merchant.refund_approval_amount


def _threshold_events(db: Database) -> list[AuditEvent]:
    with db.uow(read_only=True) as uow:
        return list(uow.session.query(AuditEvent).filter(
            AuditEvent.action == "console.merchant.refund_approval_amount_changed"))


def test_list_search_and_csv(db: Database, tenant: TenantHandle, staff_factory) -> None:  # type: ignore[no-untyped-def]
    tea = make_party(db, tenant, reference="M1", funded=0)
    with db.uow() as uow:
        noodles = payments.create_merchant(uow, tenant.id, reference="M2", name="Noodle Bar",
                                           refund_approval_amount=50_000).id
        uow.commit()
    auditor = staff_factory("auditor")
    page = auditor.get("/console/merchants")
    assert page.status_code == 200 and "Tea House" in page.text and "Noodle Bar" in page.text
    found = auditor.get("/console/merchants", params={"q": "Noodle"})
    assert noodles in found.text and tea.merchant_id not in found.text
    assert noodles in auditor.get("/console/merchants", params={"q": "M2"}).text
    exported = auditor.get("/console/merchants", params={"format": "csv"})
    assert exported.headers["content-type"].startswith("text/csv")
    rows = {row["Merchant"]: row for row in csv.DictReader(io.StringIO(exported.text))}
    assert set(rows) == {tea.merchant_id, noodles}
    assert rows[noodles]["Refunds need approval above (minor units)"] == "50000"
    assert rows[tea.merchant_id]["Name"] == "Tea House"


def test_a_merchants_money_and_a_payout_waiting_for_approval(db: Database, tenant: TenantHandle,
                                                             staff_factory) -> None:  # type: ignore[no-untyped-def]
    party = make_party(db, tenant, funded=100_000)
    with db.uow() as uow:
        settlement.set_profile(uow, tenant.id, party_kind="merchant", party_id=party.merchant_id, freeze_days=3,
                               reserve_rate=Decimal("0.1"), reserve_days=90)
        uow.commit()
    payout_id = _payout_for_approval(db, party)
    auditor = staff_factory("auditor")
    page = auditor.get(f"/console/merchants/{party.merchant_id}")
    assert page.status_code == 200, page.text
    text = page.text
    assert "CNY 1,000.00" in text  # available, as posted
    assert "CNY 700.00" in text  # withdrawable: the waiting payout's amount is held
    assert "10.00% for 90 days" in text and "3 days" in text
    assert payout_id in text and "pending approval" in text
    assert "…3445" in text and "L***" in text  # the payout account, its number and holder masked
    assert "Statement" in text and "Settlement batches" in text and "Your role may not change" in text

    statement = auditor.get(f"/console/merchants/{party.merchant_id}/statement.csv")
    assert statement.headers["content-type"].startswith("text/csv")
    lines = list(csv.DictReader(io.StringIO(statement.text)))
    assert {"section": "balance", "currency": "CNY", "date": "", "name": "available", "amount": "100000",
            "detail": ""} in lines
    assert auditor.get(f"/console/merchants/{party.merchant_id}",
                       params={"from": "2026-02-01", "to": "2026-01-01"}).status_code == 400
    assert auditor.get(f"/console/merchants/{party.merchant_id}", params={"from": "soon"}).status_code == 400

    listed = auditor.get(f"/console/merchants/{party.merchant_id}/payouts", params={"format": "csv"})
    [row] = list(csv.DictReader(io.StringIO(listed.text)))
    assert (row["Payout"], row["Amount"], row["Status"]) == (payout_id, "30000", "pending_approval")
    assert payout_id not in auditor.get(f"/console/merchants/{party.merchant_id}/payouts",
                                        params={"status": "succeeded"}).text

    detail = auditor.get(f"/console/merchants/payouts/{payout_id}")
    assert detail.status_code == 200 and "CNY 300.00" in detail.text and "pending approval" in detail.text
    with db.uow(read_only=True) as uow:
        approval_id = payouts.get_payout(uow, tenant.id, payout_id).approval_id
    assert approval_id and f"/console/approvals/{approval_id}" in detail.text
    approval = auditor.get(f"/console/approvals/{approval_id}")
    assert f"/console/merchants/payouts/{payout_id}" in approval.text
    assert auditor.get("/console/merchants/payouts/po_nope").status_code == 404


def test_an_admin_changes_the_refund_threshold_and_it_is_audited(db: Database, tenant: TenantHandle,
                                                                 staff_factory) -> None:  # type: ignore[no-untyped-def]
    party = make_party(db, tenant, funded=0)
    path = f"/console/merchants/{party.merchant_id}"
    admin = staff_factory("admin")
    saved = admin.post(f"{path}/refund-approval", {"refund_approval_amount": "50,000"}, page=path)
    assert saved.status_code == 303 and saved.headers["location"] == path, saved.text
    assert _threshold(db, party.merchant_id) == 50_000
    [event] = _threshold_events(db)
    assert (event.object_type, event.object_id) == ("merchant", party.merchant_id)
    assert "50,000" in admin.get(path).text
    assert admin.post(f"{path}/refund-approval", {"refund_approval_amount": ""}, page=path).status_code == 303
    assert _threshold(db, party.merchant_id) is None


def test_refused_and_invalid_threshold_changes_write_nothing(db: Database, tenant: TenantHandle, staff_factory,
                                                             app) -> None:  # type: ignore[no-untyped-def]
    party = make_party(db, tenant, funded=0)
    path = f"/console/merchants/{party.merchant_id}"
    for role in ("auditor", "finance"):
        refused = staff_factory(role).post(f"{path}/refund-approval", {"refund_approval_amount": "1"})
        assert refused.status_code == 403 and "role_not_allowed" in refused.text
    admin = staff_factory("admin")
    for amount in ("12.5", "-1", "abc", "1e6", "9" * 20):
        answer = admin.post(f"{path}/refund-approval", {"refund_approval_amount": amount}, page=path)
        assert answer.status_code == 400 and "invalid_amount" in answer.text, (amount, answer.text)
    assert _threshold(db, party.merchant_id) is None and _threshold_events(db) == []

    payout_id = _payout_for_approval(db, make_party(db, tenant, reference="M9", funded=50_000))
    other = make_tenant(db, "Other Co")
    stranger = sign_in(app, db, other.id, "eve@other.test", ["admin"])
    assert stranger.get(path).status_code == 404
    assert stranger.get(f"{path}/payouts").status_code == 404
    assert stranger.get(f"{path}/statement.csv").status_code == 404
    assert stranger.get(f"/console/merchants/payouts/{payout_id}").status_code == 404
    assert party.merchant_id not in stranger.get("/console/merchants").text
    assert stranger.post(f"{path}/refund-approval", {"refund_approval_amount": "1"}).status_code == 404
    assert _threshold(db, party.merchant_id) is None
