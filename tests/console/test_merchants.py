"""The Merchants pages: the list, a merchant's balances, settlement terms, statements and payouts, a payout with
its approval; the refund approval threshold changed by an admin (audited) and refused to everyone else; the
settlement profile and split rules changed as the API changes them (its model, codes and permissions, audited),
and a split previewed by anyone."""

from __future__ import annotations

import csv
import html
import io
import re
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from finloop.audit.models import AuditEvent
from finloop.db.uow import Database
from finloop.payments import service as payments
from finloop.payments.models import Merchant
from finloop.payouts import service as payouts
from finloop.settlement import service as settlement
from finloop.settlement.accounts import PartyKind
from finloop.settlement.models import SettlementProfile
from finloop.splits.models import SplitRule
from finloop.tenancy.service import system_principal
from tests.conftest import TenantHandle, make_tenant
from tests.console.conftest import StaffBrowser, sign_in
from tests.payouts.conftest import Party, make_party

StaffFactory = Callable[[str], StaffBrowser]


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


def test_list_search_and_csv(db: Database, tenant: TenantHandle, staff_factory: StaffFactory) -> None:
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
                                                             staff_factory: StaffFactory) -> None:
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
                                                                 staff_factory: StaffFactory) -> None:
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


def test_refused_and_invalid_threshold_changes_write_nothing(db: Database, tenant: TenantHandle,
                                                             staff_factory: StaffFactory, app: FastAPI) -> None:
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


# ------------------------------------------------------------------------------ settlement profile, split rules

_RULE_EDITOR = re.compile(r'<textarea name="rule"[^>]*>(.*?)</textarea>', re.DOTALL)


def _console_events(db: Database, prefix: str) -> list[AuditEvent]:
    with db.uow(read_only=True) as uow:
        return list(uow.session.query(AuditEvent).filter(AuditEvent.action.startswith(f"console.{prefix}")))


def _changes(db: Database) -> list[AuditEvent]:
    """What the console recorded about merchants and split rules (signing in is recorded too, elsewhere)."""
    return _console_events(db, "merchant.") + _console_events(db, "split_rule.")


def _editor_text(page: str) -> str:
    found = _RULE_EDITOR.search(page)
    assert found, page[-1500:]
    return html.unescape(found.group(1))


def _profiles(db: Database) -> list[SettlementProfile]:
    with db.uow(read_only=True) as uow:
        return list(uow.session.query(SettlementProfile))


def _rules(db: Database) -> list[tuple[str, int, str]]:
    with db.uow(read_only=True) as uow:
        return sorted((r.id, r.version, r.status) for r in uow.session.query(SplitRule))


def _api(client: TestClient, tenant: TenantHandle, method: str, path: str, body: dict[str, Any],
         status: int = 200) -> Any:
    answer = client.request(method, path, headers=tenant.headers, json=body)
    assert answer.status_code == status, answer.text
    return answer.json()


def _refused(answer: Any, code: str, param: str | None = None) -> None:
    assert answer.status_code == 400, answer.text
    assert code in answer.text, (code, answer.text[-1500:])
    if param is not None:
        assert param in answer.text, (param, answer.text[-1500:])


def test_finance_saves_the_settlement_profile_and_it_is_audited(db: Database, tenant: TenantHandle, client: TestClient,
                                                                staff_factory: StaffFactory) -> None:
    party = make_party(db, tenant, funded=0)
    path = f"/console/merchants/{party.merchant_id}"
    finance = staff_factory("finance")
    page = finance.get(path).text
    assert "Save settlement profile" in page and 'name="offset_days" inputmode="numeric" value="1"' in page

    form = {"cycle": "weekly", "offset_days": "1", "weekday": "4", "day_of_month": "", "freeze_days": "3",
            "reserve_rate": "0.1", "reserve_days": "90", "settlement_currency": "usd",
            "min_settlement_amount": "10,000"}
    saved = finance.post(f"{path}/settlement-profile", form, page=path)
    assert saved.status_code == 303 and saved.headers["location"] == path, saved.text
    profile = _api(client, tenant, "GET", f"/v1/settlement-profiles/merchant/{party.merchant_id}", {})
    assert {k: profile[k] for k in form} == {
        "cycle": "weekly", "offset_days": 0, "weekday": 4, "day_of_month": None, "freeze_days": 3,
        "reserve_rate": "0.1", "reserve_days": 90, "settlement_currency": "USD", "min_settlement_amount": 10_000}
    [event] = _console_events(db, "merchant.settlement_profile_set")
    assert (event.object_type, event.object_id) == ("merchant", party.merchant_id)
    assert event.after is not None and event.after["form"]["reserve_rate"] == "0.1"

    again = finance.get(path).text  # the form starts from the saved profile
    assert '<option value="weekly" selected>' in again and '<option value="4" selected>Friday' in again
    assert 'name="reserve_rate" inputmode="decimal" value="0.1"' in again and 'value="USD"' in again

    # Blank fields take the API's defaults: back to T+1, nothing held.
    blank = finance.post(f"{path}/settlement-profile", {name: "" for name in form}, page=path)
    assert blank.status_code == 303, blank.text
    profile = _api(client, tenant, "GET", f"/v1/settlement-profiles/merchant/{party.merchant_id}", {})
    assert (profile["cycle"], profile["offset_days"], profile["reserve_rate"], profile["settlement_currency"]) == \
        ("t_plus_n", 1, "0", None)
    assert len(_console_events(db, "merchant.settlement_profile_set")) == 2


@pytest.mark.parametrize(("form", "body", "code", "param"), [
    ({"reserve_rate": "-0.1", "reserve_days": "30"}, {"reserve_rate": "-0.1", "reserve_days": 30},
     "invalid_format", "reserve_rate"),
    ({"reserve_days": "-1"}, {"reserve_days": -1}, "greater_than_equal", "reserve_days"),
    ({"settlement_currency": "XYZ"}, {"settlement_currency": "XYZ"}, "unknown_currency", "settlement_currency"),
    ({"min_settlement_amount": "-5"}, {"min_settlement_amount": -5}, "invalid_amount", "min_settlement_amount"),
    ({"min_settlement_amount": "12.50"}, {"min_settlement_amount": "12.50"}, "invalid_amount",
     "min_settlement_amount"),
    ({"offset_days": "soon"}, {"offset_days": "soon"}, "int_type", "offset_days"),
    ({"cycle": "daily"}, {"cycle": "daily"}, "invalid_choice", "cycle"),
    ({"cycle": "weekly"}, {"cycle": "weekly"}, "invalid_weekday", "weekday"),
    ({"reserve_rate": "0.1"}, {"reserve_rate": "0.1"}, "invalid_days", "reserve_days"),
])
def test_a_profile_the_api_refuses_is_refused_with_its_code(
        db: Database, tenant: TenantHandle, client: TestClient, staff_factory: StaffFactory,
        form: dict[str, str], body: dict[str, Any], code: str, param: str) -> None:
    party = make_party(db, tenant, funded=0)
    path = f"/console/merchants/{party.merchant_id}"
    api = client.put(f"/v1/settlement-profiles/merchant/{party.merchant_id}", headers=tenant.headers, json=body)
    assert api.status_code == 400 and (api.json()["error"]["code"], api.json()["error"]["param"]) == (code, param)
    answer = staff_factory("finance").post(f"{path}/settlement-profile", form, page=path)
    _refused(answer, code, param)
    assert _profiles(db) == [] and _console_events(db, "merchant.settlement_profile_set") == []


def test_finance_creates_a_split_rule_version_from_the_page(db: Database, tenant: TenantHandle, client: TestClient,
                                                            staff_factory: StaffFactory) -> None:
    party = make_party(db, tenant, funded=0)
    path = f"/console/merchants/{party.merchant_id}"
    finance = staff_factory("finance")
    example = _editor_text(finance.get(path).text)
    assert f'"merchant_id": "{party.merchant_id}"' in example and "Create split rule" in finance.get(path).text

    rule = '{"scope": "merchant", "platform": {"kind": "ratio", "ratio": "0.10"}, "promoter_ratios": ["0.05"]}'
    created = finance.post(f"{path}/split-rules", {"rule": rule}, page=path)
    assert created.status_code == 303 and created.headers["location"] == path, created.text
    [(first_id, version, status)] = _rules(db)
    assert (version, status) == (1, "active")
    first = _api(client, tenant, "GET", f"/v1/split-rules/{first_id}", {})
    assert (first["scope"], first["merchant_id"], first["promoter_ratios"]) == ("merchant", party.merchant_id,
                                                                                ["0.05"])
    [event] = _console_events(db, "split_rule.created")
    assert (event.object_type, event.object_id) == ("split_rule", first_id)

    # The editor now holds the active rule as the API takes it: saved unchanged, it is the next version.
    current = _editor_text(finance.get(path).text)
    assert finance.post(f"{path}/split-rules", {"rule": current}, page=path).status_code == 303
    versions = {version: (rule_id, status) for rule_id, version, status in _rules(db)}
    assert versions[1] == (first_id, "superseded") and versions[2][1] == "active"
    second = _api(client, tenant, "GET", f"/v1/split-rules/{versions[2][0]}", {})
    assert (second["platform"], second["promoter_ratios"], second["supersedes_id"]) == \
        (first["platform"], first["promoter_ratios"], first_id)

    # A category rule of this merchant, with a fixed commission, also round-trips through the editor.
    category = ('{"scope": "category", "category": "books", "platform": {"kind": "fixed", "amount": 200},'
                ' "description": "Books"}')
    assert finance.post(f"{path}/split-rules", {"rule": category}, page=path).status_code == 303
    assert len(_console_events(db, "split_rule.created")) == 3


@pytest.mark.parametrize(("rule", "code", "param"), [
    ('{"scope": "merchant", "platform": {"kind": "ratio", "ratio": "0.10"}', "malformed_json", "rule"),
    ("", "missing_field", "rule"),
    ('{"scope": "merchant", "platform": {"kind": "ratio", "ratio": "0.7"}, "promoter_ratios": ["0.2", "0.2"]}',
     "ratios_exceed_one", "promoter_ratios"),
    ('{"scope": "merchant", "platform": {"kind": "ratio", "ratio": "1.5"}}', "less_than_equal", "platform.ratio"),
    ('{"scope": "merchant", "platform": {"kind": "ratio"}, "colour": "red"}', "unknown_field", "colour"),
    ('{"scope": "default", "platform": {"kind": "ratio", "ratio": "0.1"}}', "merchant_not_allowed", "merchant_id"),
    ('{"scope": "merchant", "merchant_id": "mer_someone_else"}', "merchant_mismatch", "merchant_id"),
])
def test_a_split_rule_the_api_refuses_is_refused_and_nothing_is_written(
        db: Database, tenant: TenantHandle, client: TestClient, staff_factory: StaffFactory,
        rule: str, code: str, param: str) -> None:
    party = make_party(db, tenant, funded=0)
    path = f"/console/merchants/{party.merchant_id}"
    if code not in ("malformed_json", "missing_field", "merchant_mismatch"):  # the API's own answer to the body
        api = client.post("/v1/split-rules", headers={**tenant.headers, "content-type": "application/json"},
                          content=rule.replace("{", f'{{"merchant_id": "{party.merchant_id}", ', 1))
        assert (api.status_code, api.json()["error"]["code"]) == (400, code), api.text
    answer = staff_factory("finance").post(f"{path}/split-rules", {"rule": rule}, page=path)
    _refused(answer, code, param)
    assert _rules(db) == [] and _console_events(db, "split_rule.created") == []


def test_finance_retires_a_rule_of_the_merchant(db: Database, tenant: TenantHandle, client: TestClient,
                                                staff_factory: StaffFactory) -> None:
    party = make_party(db, tenant, funded=0)
    neighbour = make_party(db, tenant, reference="M2", funded=0)
    path = f"/console/merchants/{party.merchant_id}"
    rule = _api(client, tenant, "POST", "/v1/split-rules", {
        "scope": "merchant", "merchant_id": party.merchant_id, "platform": {"kind": "ratio", "ratio": "0.1"}}, 201)
    theirs = _api(client, tenant, "POST", "/v1/split-rules", {
        "scope": "merchant", "merchant_id": neighbour.merchant_id, "platform": {"kind": "ratio", "ratio": "0.1"}},
        201)
    finance = staff_factory("finance")
    assert f"/split-rules/{rule['id']}/retire" in finance.get(path).text
    # Another merchant's rule is not this page's to retire.
    assert finance.post(f"{path}/split-rules/{theirs['id']}/retire", page=path).status_code == 404
    retired = finance.post(f"{path}/split-rules/{rule['id']}/retire", page=path)
    assert retired.status_code == 303 and retired.headers["location"] == path, retired.text
    assert _api(client, tenant, "GET", f"/v1/split-rules/{rule['id']}", {})["status"] == "retired"
    assert _api(client, tenant, "GET", f"/v1/split-rules/{theirs['id']}", {})["status"] == "active"
    [event] = _console_events(db, "split_rule.retired")
    assert (event.object_type, event.object_id) == ("split_rule", rule["id"])
    assert "Retire rule" not in finance.get(path).text
    again = finance.post(f"{path}/split-rules/{rule['id']}/retire", page=path)
    assert again.status_code == 409 and "split_rule_not_active" in again.text
    assert len(_console_events(db, "split_rule.retired")) == 1


def test_a_preview_splits_the_whole_order_and_writes_nothing(db: Database, tenant: TenantHandle, client: TestClient,
                                                             staff_factory: StaffFactory) -> None:
    party = make_party(db, tenant, funded=0)
    path = f"/console/merchants/{party.merchant_id}"
    top = _api(client, tenant, "POST", "/v1/promoters", {"reference": "L2", "name": "Top"}, 201)["id"]
    first = _api(client, tenant, "POST", "/v1/promoters", {"reference": "L1", "name": "First", "parent_id": top},
                 201)["id"]
    rule = _api(client, tenant, "POST", "/v1/split-rules", {
        "scope": "merchant", "merchant_id": party.merchant_id, "platform": {"kind": "ratio", "ratio": "0.07"},
        "promoter_ratios": ["0.033", "0.011"]}, 201)
    auditor = staff_factory("auditor")  # a preview writes nothing: any role may ask, as any API key may
    page = auditor.get(path).text
    assert "Preview split" in page and rule["id"] in page
    form = {"amount": "1,234.57", "currency": "cny", "fee": "3.21", "fee_bearer": "pro_rata", "promoter_id": first}
    answer = auditor.post(f"{path}/split-preview", form, page=path)
    assert answer.status_code == 200, answer.text
    shares = [int(share) for share in re.findall(r'data-share="(-?[0-9]+)"', answer.text)]
    assert len(shares) == 4 and sum(shares) == 123_457
    assert 'data-total="123457"' in answer.text and "CNY 1,234.57" in answer.text
    api = _api(client, tenant, "POST", "/v1/split-rules/preview", {
        "amount": 123_457, "currency": "CNY", "merchant_id": party.merchant_id, "fee": 321, "fee_bearer": "pro_rata",
        "promoter_id": first})
    assert shares == [part["amount"] for part in api["parts"]] and api["rule_id"] == rule["id"]
    assert 'value="1,234.57"' in answer.text  # the form keeps what was asked, for another try

    pinned = auditor.post(f"{path}/split-preview", {"amount": "10", "currency": "CNY", "split_rule_id": rule["id"]},
                          page=path)
    assert pinned.status_code == 200 and sum(int(s) for s in re.findall(r'data-share="(-?[0-9]+)"',
                                                                         pinned.text)) == 1_000
    for bad, code, param in (({"amount": "12.345"}, "invalid_amount", "amount"),
                             ({"amount": "0"}, "invalid_amount", "amount"),
                             ({"currency": "XYZ"}, "unknown_currency", "currency"),
                             ({"fee": "-1"}, "invalid_amount", "fee"),
                             ({"fee_bearer": "nobody"}, "invalid_choice", "fee_bearer"),
                             ({"promoter_id": "prm_nope"}, "promoter_not_found", "promoter_id")):
        refused = auditor.post(f"{path}/split-preview", {"amount": "10", "currency": "CNY", **bad}, page=path)
        assert refused.status_code in (400, 404) and code in refused.text and param in refused.text, \
            (bad, refused.text[-1500:])
    assert _changes(db) == []


def test_auditors_and_support_may_not_change_terms_or_rules(db: Database, tenant: TenantHandle, client: TestClient,
                                                            staff_factory: StaffFactory) -> None:
    party = make_party(db, tenant, funded=0)
    path = f"/console/merchants/{party.merchant_id}"
    rule = _api(client, tenant, "POST", "/v1/split-rules", {
        "scope": "merchant", "merchant_id": party.merchant_id, "platform": {"kind": "ratio", "ratio": "0.1"}}, 201)
    for role in ("auditor", "support"):
        staff = staff_factory(role)
        page = staff.get(path).text
        for button in ("Save settlement profile", "Create split rule", "Retire rule"):
            assert button not in page, (role, button)
        for action, form in (("settlement-profile", {"freeze_days": "3"}),
                             ("split-rules", {"rule": '{"scope": "merchant"}'}),
                             (f"split-rules/{rule['id']}/retire", {})):
            refused = staff.post(f"{path}/{action}", form, page=path)
            assert refused.status_code == 403 and "role_not_allowed" in refused.text, (role, action, refused.text)
    assert _profiles(db) == [] and _rules(db) == [(rule["id"], 1, "active")]
    assert _changes(db) == []


def test_another_tenants_merchant_is_not_found(db: Database, tenant: TenantHandle, client: TestClient,
                                               app: FastAPI) -> None:
    party = make_party(db, tenant, funded=0)
    path = f"/console/merchants/{party.merchant_id}"
    rule = _api(client, tenant, "POST", "/v1/split-rules", {
        "scope": "merchant", "merchant_id": party.merchant_id, "platform": {"kind": "ratio", "ratio": "0.1"}}, 201)
    other = make_tenant(db, "Other Co")
    stranger = sign_in(app, db, other.id, "eve@other.test", ["admin"])
    for action, form in (("settlement-profile", {"freeze_days": "3"}),
                         ("split-rules", {"rule": '{"scope": "merchant", "platform": {"kind": "none"}}'}),
                         (f"split-rules/{rule['id']}/retire", {}),
                         ("split-preview", {"amount": "10", "currency": "CNY"})):
        answer = stranger.post(f"{path}/{action}", form)
        assert answer.status_code == 404, (action, answer.text)
    assert _profiles(db) == [] and _rules(db) == [(rule["id"], 1, "active")]
    assert _changes(db) == []
