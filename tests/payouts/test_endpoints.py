"""The payouts API and CLI: happy paths, bad input, tenant isolation, and account numbers kept secret."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from finloop.cli import app as cli_app
from finloop.db.uow import Database
from finloop.payouts.bank_sandbox import SandboxBank
from tests.conftest import TenantHandle
from tests.onboarding.helpers import business
from tests.payouts.conftest import ACCOUNT_NUMBER, fund


def merchant(client: TestClient, tenant: TenantHandle, reference: str = "M1") -> str:
    response = client.post("/v1/merchants", headers=tenant.headers, json={"reference": reference, "name": "Tea"})
    assert response.status_code == 201, response.text
    merchant_id: str = response.json()["id"]
    onboarded = client.post("/v1/onboarding/profiles", headers=tenant.headers, json={
        "party_kind": "merchant", "party_id": merchant_id, "business": business(merchant_id)})
    assert onboarded.status_code == 201 and onboarded.json()["status"] == "approved", onboarded.text
    return merchant_id


def count(client: TestClient, tenant: TenantHandle, path: str) -> int:
    response = client.get(path, headers=tenant.headers, params={"limit": 500})
    assert response.status_code == 200, response.text
    return len(response.json()["data"])


def test_payouts_api(client: TestClient, db: Database, tenant: TenantHandle, other_tenant: TenantHandle,
                     bank: SandboxBank, cli: CliRunner, capsys: pytest.CaptureFixture[str],
                     caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    h = tenant.headers
    merchant_id = merchant(client, tenant)
    account = client.post("/v1/payout-accounts", headers=h, json={
        "party_kind": "merchant", "party_id": merchant_id, "currency": "CNY", "holder_name": "Li Wei",
        "account_number": ACCOUNT_NUMBER, "bank_code": "ICBKCNBJ"})
    assert account.status_code == 201, account.text
    body = account.json()
    assert (body["account_last4"], body["holder_name"], body["bank_code"]) == ("3445", "L***", "ICBKCNBJ")
    listed = client.get("/v1/payout-accounts", headers=h, params={"party_id": merchant_id})
    assert [a["id"] for a in listed.json()["data"]] == [body["id"]]
    fund(db, tenant.id, merchant_id, 50_000)

    # Bad input: a 4xx with code and param, nothing written.
    bad: list[tuple[str, dict[str, Any], str]] = [
        ("/v1/payouts", {"party_kind": "merchant", "party_id": merchant_id, "amount": 0, "currency": "CNY"},
         "amount"),
        ("/v1/payouts", {"party_kind": "merchant", "party_id": merchant_id, "amount": 10.5, "currency": "CNY"},
         "amount"),
        ("/v1/payouts", {"party_kind": "merchant", "party_id": merchant_id, "amount": "100", "currency": "CNY"},
         "amount"),
        ("/v1/payouts", {"party_kind": "merchant", "party_id": merchant_id, "amount": 100, "currency": "XXY"},
         "currency"),
        ("/v1/payouts", {"party_kind": "shop", "party_id": merchant_id, "amount": 100, "currency": "CNY"},
         "party_kind"),
        ("/v1/payouts", {"party_kind": "merchant", "party_id": merchant_id, "amount": 50_001, "currency": "CNY"},
         "amount"),
        ("/v1/payouts", {"party_kind": "merchant", "party_id": "mer_nobody", "amount": 100, "currency": "CNY"},
         "party_id"),
        ("/v1/payouts", {"party_kind": "merchant", "party_id": merchant_id, "amount": 100, "currency": "USD"},
         "payout_account_id"),
        ("/v1/payout-accounts", {"party_kind": "merchant", "party_id": merchant_id, "currency": "CNY",
                                 "holder_name": "X", "account_number": "12", "bank_code": "ICBK"},
         "account_number"),
        ("/v1/payout-accounts", {"party_kind": "merchant", "party_id": merchant_id, "currency": "CNY",
                                 "holder_name": "X", "account_number": "12345678", "bank_code": "ICBK",
                                 "extra": 1}, "extra"),
    ]
    for path, payload, param in bad:
        response = client.post(path, headers=h, json=payload)
        assert 400 <= response.status_code < 500, (payload, response.text)
        assert response.json()["error"]["param"] == param, (payload, response.text)
    insufficient = client.post("/v1/payouts", headers=h, json={
        "party_kind": "merchant", "party_id": merchant_id, "amount": 50_001, "currency": "CNY"})
    assert insufficient.json()["error"]["code"] == "insufficient_available_balance"
    assert count(client, tenant, "/v1/payouts") == 0
    assert count(client, tenant, "/v1/payout-accounts") == 1
    assert bank.calls == 0

    # Request: sent at once.
    created = client.post("/v1/payouts", headers=h, json={
        "party_kind": "merchant", "party_id": merchant_id, "amount": 20_000, "currency": "CNY",
        "description": "weekly"})
    assert created.status_code == 201, created.text
    payout = created.json()
    assert (payout["status"], payout["amount"], payout["attempts"]) == ("succeeded", 20_000, 1)
    assert client.get(f"/v1/payouts/{payout['id']}", headers=h).json()["status"] == "succeeded"
    cancel_paid = client.post(f"/v1/payouts/{payout['id']}/cancel", headers=h)
    assert cancel_paid.status_code == 409 and cancel_paid.json()["error"]["code"] == "payout_state_conflict"

    # Above the approval amount: parked, then canceled before sending.
    settings = client.put("/v1/payout-settings", headers=h, json={"approval_amount": 10_000})
    assert settings.status_code == 200 and settings.json()["approval_amount"] == 10_000
    parked = client.post("/v1/payouts", headers=h, json={
        "party_kind": "merchant", "party_id": merchant_id, "amount": 15_000, "currency": "CNY"}).json()
    assert parked["status"] == "pending_approval" and parked["approval_id"]
    canceled = client.post(f"/v1/payouts/{parked['id']}/cancel", headers=h)
    assert canceled.status_code == 200 and canceled.json()["status"] == "canceled"
    statuses = client.get("/v1/payouts", headers=h, params={"status": "canceled"}).json()["data"]
    assert [p["id"] for p in statuses] == [parked["id"]]

    # Schedules.
    schedule = client.put(f"/v1/payout-schedules/merchant/{merchant_id}", headers=h, json={
        "currency": "CNY", "interval": "weekly", "weekday": 4, "minimum_balance": 1_000})
    assert schedule.status_code == 200, schedule.text
    got = client.get(f"/v1/payout-schedules/merchant/{merchant_id}", headers=h).json()
    assert (got["interval"], got["weekday"], got["minimum_balance"]) == ("weekly", 4, 1_000)
    wrong = client.put(f"/v1/payout-schedules/merchant/{merchant_id}", headers=h, json={
        "currency": "CNY", "interval": "weekly", "weekday": 9})
    assert wrong.status_code in (400, 422) and wrong.json()["error"]["param"] == "weekday"
    no_weekday = client.put(f"/v1/payout-schedules/merchant/{merchant_id}", headers=h, json={
        "currency": "CNY", "interval": "weekly"})
    assert no_weekday.status_code == 400 and no_weekday.json()["error"]["param"] == "weekday"

    # Another tenant sees none of it.
    o = other_tenant.headers
    assert client.get(f"/v1/payouts/{payout['id']}", headers=o).status_code == 404
    assert client.post(f"/v1/payouts/{parked['id']}/cancel", headers=o).status_code == 404
    assert client.get(f"/v1/payout-schedules/merchant/{merchant_id}", headers=o).status_code == 404
    assert count(client, other_tenant, "/v1/payouts") == 0
    assert count(client, other_tenant, "/v1/payout-accounts") == 0
    assert client.post("/v1/payouts", headers=o, json={
        "party_kind": "merchant", "party_id": merchant_id, "amount": 100, "currency": "CNY"}).status_code == 404

    # The CLI.
    listing = cli.invoke(cli_app, ["payouts", "list", "--tenant", tenant.id], env={"COLUMNS": "200"})
    assert listing.exit_code == 0, listing.output
    assert payout["id"] in listing.output and "succeeded" in listing.output
    processed = cli.invoke(cli_app, ["payouts", "process"])
    assert processed.exit_code == 0 and "processed" in processed.output

    # The account number never shows: not in any answer, not in the logs.
    everything = [client.get(path, headers=h).text for path in (
        "/v1/payouts", "/v1/payout-accounts", f"/v1/payouts/{payout['id']}")]
    out = capsys.readouterr()
    for text in [*everything, created.text, account.text, listing.output, out.out, out.err, caplog.text]:
        assert ACCOUNT_NUMBER not in text and "Li Wei" not in text
