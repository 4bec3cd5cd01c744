"""Bad input through the HTTP API: each gets its 4xx with a stable code and param, and writes nothing.

"Writes nothing" is checked on the database itself: every account's running sums and status, the
number of entries, and every hold's status are the same after the refused request as before it.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from finloop.core.clock import FrozenClock
from finloop.db.models import IdempotencyKey
from finloop.db.uow import Database
from finloop.ledger import service
from finloop.ledger.domain import AccountType, BalanceRule, TransferSpec
from finloop.ledger.models import Account, Entry, Hold
from tests.conftest import TenantHandle

#: Routes that answer without credentials, on purpose.
#: Routes that authenticate otherwise: signing in, channels' notifications (by the channel's own signature),
#: and the hosted payment page (by the signed token in its path).
PUBLIC_ROUTES = {("post", "/v1/sessions"), ("post", "/v1/channels/{channel_id}/notifications"),
                 ("get", "/v1/hosted/{token}")}


@dataclass
class Books:
    bank: str
    merchant: str
    fees: str
    usd: str
    foreign: str  # an account of another tenant


@pytest.fixture
def books(db: Database, tenant: TenantHandle, other_tenant: TenantHandle) -> Books:
    """A small chart, funded: the merchant holds 5,000 and may go 1,000 below zero."""
    with db.uow() as uow:
        def account(tenant_id: str, code: str, type_: AccountType, currency: str = "CNY", **rules: Any) -> str:
            return service.create_account(uow, tenant_id, code=code, type=type_, currency_code=currency,
                                          **rules).id

        created = Books(
            bank=account(tenant.id, "assets:bank:main", AccountType.ASSET),
            merchant=account(tenant.id, "liabilities:merchant:M1:available", AccountType.LIABILITY,
                             balance_rule=BalanceRule.DEBITS_MUST_NOT_EXCEED_CREDITS, overdraft_limit=1_000),
            fees=account(tenant.id, "income:fees", AccountType.INCOME),
            usd=account(tenant.id, "assets:bank:usd", AccountType.ASSET, "USD"),
            foreign=account(other_tenant.id, "assets:bank:main", AccountType.ASSET),
        )
        service.post_transfer(uow, tenant.id, TransferSpec.simple("opening", created.bank, created.merchant, 5_000,
                                                                  "CNY"))
        uow.commit()
    return created


def snapshot(db: Database) -> dict[str, Any]:
    """What a request could have written, across all tenants."""
    with db.uow(read_only=True) as uow:
        accounts = {a.id: (a.debits_posted, a.credits_posted, a.debits_pending, a.credits_pending, a.status)
                    for a in uow.session.scalars(select(Account))}
        holds = {h.id: (h.status, h.posted_amount) for h in uow.session.scalars(select(Hold))}
        entries = uow.session.scalar(select(func.count()).select_from(Entry))
    return {"accounts": accounts, "holds": holds, "entries": entries}


def assert_error(response: Any, status: int, code: str, param: str | None, case: object = None) -> None:
    assert response.status_code == status, (case, response.text)
    error = response.json()["error"]
    assert (error["code"], error["param"]) == (code, param), (case, error)
    assert set(error) >= {"type", "code", "message", "param"}
    assert error["message"]


def transfer(books: Books, **changes: Any) -> dict[str, Any]:
    body = {"key": "t-bad", "debit_account_id": books.bank, "credit_account_id": books.merchant, "amount": 100,
            "currency": "CNY"}
    body.update(changes)
    return {key: value for key, value in body.items() if value is not None}


def legs(books: Books, debit: Any, credit: Any, currency: str = "CNY") -> dict[str, Any]:
    return {"key": "t-legs", "postings": [
        {"account_id": books.bank, "direction": "debit", "amount": debit, "currency": currency},
        {"account_id": books.fees, "direction": "credit", "amount": credit, "currency": currency}]}


def raw_json(text: str) -> dict[str, Any]:
    """Send the body exactly as written (``1e2`` does not survive Python's json module)."""
    return {"content": text.encode(), "headers": {"content-type": "application/json"}}


def refuse(client: TestClient, db: Database, tenant: TenantHandle, method: str, path: str, *, status: int, code: str,
           param: str | None, case: object = None, **request: Any) -> Any:
    """Send a request that must fail with ``status``, ``code`` and ``param``, and check it wrote nothing.

    Tests that try many values loop over them in one test (naming the value in ``case``), since each
    test pays for a fresh database, two tenants and a chart of accounts.
    """
    before = snapshot(db)
    headers = {**tenant.headers, **request.pop("headers", {})}
    response = client.request(method, path, headers=headers, **request)
    assert_error(response, status, code, param, case)
    assert snapshot(db) == before, (case, "a refused request changed the books")
    return response


# ---------------------------------------------------------------------------------------------- amounts


BAD_AMOUNTS = [
    (12.5, "invalid_amount"), (100.0, "invalid_amount"), ("100", "invalid_amount"), ("12.50", "invalid_amount"),
    (True, "invalid_amount"), (False, "invalid_amount"), (0, "invalid_amount"), (-5, "invalid_amount"),
    ([100], "invalid_amount"), ({"value": 100}, "invalid_amount"), (10**15 + 1, "amount_too_large"),
    (2**63 - 1, "amount_too_large"), (2**63, "amount_too_large"), (2**64, "amount_too_large"),
    (10**30, "amount_too_large"), (-(2**64), "invalid_amount"),
]


def test_transfer_amount_that_is_not_a_valid_integer_is_refused(client, db, tenant, books):
    for amount, code in [*BAD_AMOUNTS, (None, "missing_field")]:
        refuse(client, db, tenant, "POST", "/v1/transfers", json=transfer(books, amount=amount), status=400,
               code=code, param="amount", case=amount)


def test_transfer_amount_written_as_a_json_float_is_refused(client, db, tenant, books):
    for literal in ["1e2", "100.0", "1E2", "1.0e2", "NaN", "Infinity", "-0.0"]:
        text = json.dumps(transfer(books, amount=999_999)).replace("999999", literal)
        refuse(client, db, tenant, "POST", "/v1/transfers", **raw_json(text), status=400, code="invalid_amount",
               param="amount", case=literal)


def test_bad_amounts_are_refused_in_every_place_an_amount_goes(client, db, tenant, books):
    hold = create_hold(client, tenant, books, "h-amounts")
    places = [
        ("/v1/transfers", lambda amount: legs(books, amount, 100), "postings[0].amount"),
        ("/v1/transfers/batch", lambda amount: {"transfers": [transfer(books, amount=amount)]},
         "transfers[0].amount"),
        ("/v1/holds", lambda amount: transfer(books, key="h-bad", amount=amount), "amount"),
        (f"/v1/holds/{hold}/post", lambda amount: {"amount": amount}, "amount"),
        ("/v1/accounts", lambda amount: {"code": "assets:bank:x", "type": "asset", "currency": "CNY",
                                         "overdraft_limit": amount}, "overdraft_limit"),
    ]
    for path, body, param in places:
        for amount, code in BAD_AMOUNTS:
            if path == "/v1/accounts" and amount == 0:
                continue  # a zero overdraft limit is the default, not an error
            refuse(client, db, tenant, "POST", path, json=body(amount), status=400, code=code, param=param,
                   case=(path, amount))


def test_largest_amount_is_accepted(client, db, tenant, books):
    response = client.post("/v1/transfers", headers=tenant.headers,
                           json=transfer(books, key="max", credit_account_id=books.fees, amount=10**15))
    assert response.status_code == 201, response.text
    assert response.json()["postings"][0]["amount"] == 10**15


# ---------------------------------------------------------------------------------------------- currencies and entries


def test_unknown_currency_is_refused(client, db, tenant, books):
    for currency, code in [("XXX", "unknown_currency"), ("ABC", "unknown_currency"), ("cny", "invalid_format"),
                           ("CNYY", "too_long"), (156, "string_type")]:
        refuse(client, db, tenant, "POST", "/v1/transfers", json=transfer(books, currency=currency), status=400,
               code=code, param="currency", case=currency)


def test_account_in_unknown_currency_is_refused(client, db, tenant, books):
    refuse(client, db, tenant, "POST", "/v1/accounts", json={"code": "assets:bank:x", "type": "asset",
                                                             "currency": "XXX"},
           status=400, code="unknown_currency", param="currency")


def test_currency_other_than_the_accounts_is_refused(client, db, tenant, books):
    refuse(client, db, tenant, "POST", "/v1/transfers", json=transfer(books, currency="USD"), status=400,
           code="currency_mismatch", param="currency")


def test_unbalanced_multi_leg_entry_is_refused(client, db, tenant, books):
    response = refuse(client, db, tenant, "POST", "/v1/transfers", json=legs(books, 100, 99), status=400,
                      code="unbalanced_entry", param="postings")
    assert response.json()["error"]["details"] == {"imbalance": {"CNY": 1}}


def test_entry_with_one_leg_is_refused(client, db, tenant, books):
    body = legs(books, 100, 100)
    body["postings"] = body["postings"][:1]
    refuse(client, db, tenant, "POST", "/v1/transfers", json=body, status=400, code="too_few_items",
           param="postings")


def test_same_account_on_both_sides_is_refused(client, db, tenant, books):
    refuse(client, db, tenant, "POST", "/v1/transfers", json=transfer(books, credit_account_id=books.bank),
           status=400, code="duplicate_account", param="credit_account_id")


def test_shorthand_and_postings_together_are_refused(client, db, tenant, books):
    body = {**legs(books, 100, 100), "amount": 100}
    refuse(client, db, tenant, "POST", "/v1/transfers", json=body, status=400, code="conflicting_fields",
           param=None)


# ---------------------------------------------------------------------------------------------- accounts


def test_unknown_account_is_not_found(client, db, tenant, books):
    refuse(client, db, tenant, "POST", "/v1/transfers", json=transfer(books, debit_account_id="acc_nope"),
           status=404, code="account_not_found", param="debit_account_id")


def test_another_tenants_account_is_not_found(client, db, tenant, books):
    refuse(client, db, tenant, "POST", "/v1/transfers", json=transfer(books, credit_account_id=books.foreign),
           status=404, code="account_not_found", param="credit_account_id")
    refuse(client, db, tenant, "GET", f"/v1/accounts/{books.foreign}", status=404, code="account_not_found",
           param="account_id")
    refuse(client, db, tenant, "POST", f"/v1/accounts/{books.foreign}/freeze", status=404,
           code="account_not_found", param="account_id")


def test_another_tenants_account_in_a_leg_is_not_found(client, db, tenant, books):
    body = legs(books, 100, 100)
    body["postings"][1]["account_id"] = books.foreign
    refuse(client, db, tenant, "POST", "/v1/transfers", json=body, status=404, code="account_not_found",
           param="postings[1].account_id")


def test_frozen_account_refuses_transfers_and_holds(client, db, tenant, books):
    frozen = client.post(f"/v1/accounts/{books.merchant}/freeze", headers=tenant.headers)
    assert frozen.status_code == 200 and frozen.json()["status"] == "frozen"
    refuse(client, db, tenant, "POST", "/v1/transfers", json=transfer(books), status=422, code="account_frozen",
           param="credit_account_id")
    refuse(client, db, tenant, "POST", "/v1/holds", json=transfer(books, key="h-frozen"), status=422,
           code="account_frozen", param="credit_account_id")


def test_overdraft_beyond_the_limit_is_refused(client, db, tenant, books):
    # The merchant holds 5,000 with an overdraft of 1,000: 6,001 is one too many.
    response = refuse(client, db, tenant, "POST", "/v1/transfers",
                      json=transfer(books, debit_account_id=books.merchant, credit_account_id=books.bank, amount=6_001),
                      status=422, code="insufficient_funds", param="amount")
    assert response.json()["error"]["details"]["shortfall"] == 1
    allowed = client.post("/v1/transfers", headers=tenant.headers, json=transfer(
        books, key="to-the-limit", debit_account_id=books.merchant, credit_account_id=books.bank, amount=6_000))
    assert allowed.status_code == 201, allowed.text


def test_batch_with_one_bad_transfer_writes_nothing(client, db, tenant, books):
    good = transfer(books, key="b0", amount=10)
    bad = transfer(books, key="b1", debit_account_id=books.merchant, credit_account_id=books.bank, amount=10_000)
    refuse(client, db, tenant, "POST", "/v1/transfers/batch", json={"transfers": [good, bad]}, status=422,
           code="insufficient_funds", param="transfers[1].amount")


def test_batch_with_a_bad_leg_names_its_position(client, db, tenant, books):
    body = {"transfers": [transfer(books, key="b0"), transfer(books, key="b1", amount=1.5)]}
    refuse(client, db, tenant, "POST", "/v1/transfers/batch", json=body, status=400, code="invalid_amount",
           param="transfers[1].amount")


# ---------------------------------------------------------------------------------------------- holds


def create_hold(client: TestClient, tenant: TenantHandle, books: Books, key: str, **extra: Any) -> str:
    response = client.post("/v1/holds", headers=tenant.headers, json={
        "key": key, "debit_account_id": books.merchant, "credit_account_id": books.bank, "amount": 700,
        "currency": "CNY", **extra})
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


def test_hold_posted_twice_is_refused(client, db, tenant, books):
    hold = create_hold(client, tenant, books, "h1")
    assert client.post(f"/v1/holds/{hold}/post", headers=tenant.headers, json={"amount": 300}).status_code == 200
    refuse(client, db, tenant, "POST", f"/v1/holds/{hold}/post", status=409, code="hold_already_posted",
           param="hold_id")
    refuse(client, db, tenant, "POST", f"/v1/holds/{hold}/void", status=409, code="hold_already_posted",
           param="hold_id")


def test_hold_voided_twice_is_refused(client, db, tenant, books):
    hold = create_hold(client, tenant, books, "h2")
    assert client.post(f"/v1/holds/{hold}/void", headers=tenant.headers).status_code == 200
    refuse(client, db, tenant, "POST", f"/v1/holds/{hold}/void", status=409, code="hold_already_voided",
           param="hold_id")
    refuse(client, db, tenant, "POST", f"/v1/holds/{hold}/post", status=409, code="hold_already_voided",
           param="hold_id")


def test_hold_posted_for_more_than_it_holds_is_refused(client, db, tenant, books):
    hold = create_hold(client, tenant, books, "h3")
    refuse(client, db, tenant, "POST", f"/v1/holds/{hold}/post", json={"amount": 701}, status=400,
           code="amount_exceeds_hold", param="amount")
    refuse(client, db, tenant, "POST", f"/v1/holds/{hold}/post", json={"amount": 0}, status=400,
           code="invalid_amount", param="amount")


def test_another_tenants_hold_is_not_found(client, db, tenant, other_tenant, books):
    hold = create_hold(client, tenant, books, "h4")
    refuse(client, db, other_tenant, "POST", f"/v1/holds/{hold}/post", status=404, code="hold_not_found",
           param="hold_id")
    refuse(client, db, other_tenant, "GET", f"/v1/holds/{hold}", status=404, code="hold_not_found",
           param="hold_id")


def test_post_of_an_expired_hold_fails_and_only_releases_it(client, db, tenant, books, clock: FrozenClock):
    hold = create_hold(client, tenant, books, "h5", timeout_seconds=60)
    clock.advance(timedelta(seconds=61))
    before = snapshot(db)
    response = client.post(f"/v1/holds/{hold}/post", headers=tenant.headers)
    assert_error(response, 422, "hold_expired", "hold_id")
    after = snapshot(db)
    # The one change kept is the release of the reserved funds: nothing is posted.
    assert after["entries"] == before["entries"]
    assert after["holds"][hold] == ("expired", 0)
    assert after["accounts"][books.merchant][:2] == before["accounts"][books.merchant][:2]
    assert after["accounts"][books.merchant][2] == before["accounts"][books.merchant][2] - 700
    assert after["accounts"][books.bank][3] == before["accounts"][books.bank][3] - 700
    refuse(client, db, tenant, "POST", f"/v1/holds/{hold}/post", status=409, code="hold_already_expired",
           param="hold_id")


# ---------------------------------------------------------------------------------------------- request shape


def test_malformed_json_is_refused(client, db, tenant, books):
    refuse(client, db, tenant, "POST", "/v1/transfers", **raw_json('{"amount": 100,'), status=400,
           code="malformed_json", param=None)


def test_body_that_cannot_be_decoded_is_malformed_json(client, db, tenant, books):
    for content in [b'{"key": "\xff\xfe"}', b"[" * 20_000 + b"]" * 20_000, b'{"amount": ' + b"9" * 5_000 + b"}"]:
        refuse(client, db, tenant, "POST", "/v1/transfers", content=content,
               headers={"content-type": "application/json"}, status=400, code="malformed_json", param=None,
               case=content[:20])


def test_missing_body_is_refused(client, db, tenant, books):
    refuse(client, db, tenant, "POST", "/v1/transfers", status=400, code="missing_field", param=None)


def test_body_that_is_not_an_object_is_refused(client, db, tenant, books):
    for body in [[1, 2], "transfer", 42, None]:
        refuse(client, db, tenant, "POST", "/v1/transfers", **raw_json(json.dumps(body)), status=400,
               code="invalid_body", param=None, case=body)


def test_unknown_fields_are_refused(client, db, tenant, books):
    for path, body, param in [
        ("/v1/transfers", {**transfer(books), "memo": "x"}, "memo"),
        ("/v1/accounts", {"code": "assets:bank:x", "type": "asset", "currency": "CNY", "balance": 5}, "balance"),
        ("/v1/transfers/batch", {"transfers": [{**transfer(books), "fx_rate": "1.2"}]}, "transfers[0].fx_rate"),
        ("/v1/holds", {**transfer(books), "capture": True}, "capture"),
    ]:
        refuse(client, db, tenant, "POST", path, json=body, status=400, code="unknown_field", param=param, case=path)


def test_missing_shorthand_field_is_named(client, db, tenant, books):
    refuse(client, db, tenant, "POST", "/v1/transfers", json=transfer(books, credit_account_id=None), status=400,
           code="missing_field", param="credit_account_id")


def test_text_no_database_can_store_is_refused(client, db, tenant, books):
    for field, value, code in [
        ("key", "a\x00b", "invalid_text"), ("key", "line\nbreak", "invalid_text"),
        ("description", "nul \x00 here", "invalid_text"), ("debit_account_id", "\ud800", "invalid_text"),
        ("metadata", {"order": "a\x00"}, "invalid_metadata"), ("metadata", {"order": 5}, "invalid_metadata"),
    ]:
        # json.dumps writes NUL and the lone surrogate as \\u escapes, which the server decodes back to them.
        refuse(client, db, tenant, "POST", "/v1/transfers", **raw_json(json.dumps(transfer(books, **{field: value}))),
               status=400, code=code, param=field, case=(field, value))


def test_bad_instants_are_refused(client, db, tenant, books):
    instants = ["2026-03-01T00:00:00", "0001-01-01T00:00:00%2B14:00", "9999-12-31T23:59:59-14:00", "yesterday"]
    for path, param in [(f"/v1/accounts/{books.bank}/balance", "as_of"), ("/v1/reports/trial-balance", "as_of"),
                        ("/v1/transfers", "created_from"), (f"/v1/accounts/{books.bank}/statement", "end")]:
        for instant in instants:
            refuse(client, db, tenant, "GET", f"{path}?{param}={instant}", status=400, code="invalid_datetime",
                   param=param, case=(path, instant))
    for instant in ["2026-03-01T00:00:00", "0001-01-01T00:00:00+14:00"]:
        refuse(client, db, tenant, "POST", "/v1/transfers", json=transfer(books, effective_at=instant), status=400,
               code="invalid_datetime", param="effective_at", case=instant)


def test_forged_statement_cursor_is_refused(client, db, tenant, books):
    forged = [b"2020-01-01T00:00:00+00:00", b"0001-01-01T00:00:00+14:00|1", b"2020-01-01T00:00:00|1",
              b"2020-01-01T00:00:00+00:00|99999999999999999999", b"2020-01-01T00:00:00+00:00|-1"]
    for cursor in ["%25%25%25", "YWJj", *(base64.urlsafe_b64encode(text).decode() for text in forged)]:
        refuse(client, db, tenant, "GET", f"/v1/accounts/{books.bank}/statement?starting_after={cursor}",
               status=400, code="invalid_cursor", param="starting_after", case=cursor)


def test_nul_in_the_path_or_query_is_refused(client, db, tenant, books):
    refuse(client, db, tenant, "GET", "/v1/accounts/acc%00x", status=400, code="invalid_text", param="account_id")
    refuse(client, db, tenant, "GET", "/v1/accounts?code_prefix=a%00", status=400, code="invalid_text",
           param="code_prefix")


# ---------------------------------------------------------------------------------------------- idempotency


def put_key(db: Database, clock: FrozenClock, tenant: TenantHandle, key: str, request_digest: str,
            lease: timedelta) -> None:
    now = clock.now()
    with db.uow() as uow:
        uow.session.add(IdempotencyKey(
            tenant_id=tenant.id, key=key, method="POST", path="/v1/transfers", request_hash=request_digest,
            status="in_flight", locked_until=now + lease, created_at=now - timedelta(seconds=5),
            expires_at=now + timedelta(days=1)))
        uow.commit()


def stored_key(db: Database, tenant: TenantHandle, key: str) -> dict[str, Any] | None:
    with db.uow(read_only=True) as uow:
        row = uow.session.get(IdempotencyKey, (tenant.id, key))
        if row is None:
            return None
        return {"status": row.status, "request_hash": row.request_hash, "response_status": row.response_status}


def test_idempotency_key_reused_with_another_body_is_refused(client, db, tenant, books):
    headers = {"Idempotency-Key": "idem-1"}
    first = client.post("/v1/transfers", headers={**tenant.headers, **headers}, json=transfer(books, key=None))
    assert first.status_code == 201, first.text
    refuse(client, db, tenant, "POST", "/v1/transfers", headers=headers, json=transfer(books, key=None, amount=101),
           status=422, code="idempotency_key_reused", param="Idempotency-Key")


def test_idempotency_key_with_the_same_body_replays_without_writing(client, db, tenant, books):
    headers = {**tenant.headers, "Idempotency-Key": "idem-2"}
    first = client.post("/v1/transfers", headers=headers, json=transfer(books, key=None))
    assert first.status_code == 201, first.text
    assert first.json()["key"] == "idem-2"
    before = snapshot(db)
    again = client.post("/v1/transfers", headers=headers, json=transfer(books, key=None))
    assert (again.status_code, again.json()) == (201, first.json())
    assert again.headers["Idempotent-Replayed"] == "true"
    assert snapshot(db) == before


def test_failed_request_releases_its_idempotency_key(client, db, tenant, books):
    headers = {**tenant.headers, "Idempotency-Key": "idem-3"}
    failed = client.post("/v1/transfers", headers=headers, json=transfer(books, key=None, currency="USD"))
    assert_error(failed, 400, "currency_mismatch", "currency")
    assert stored_key(db, tenant, "idem-3") is None
    fixed = client.post("/v1/transfers", headers=headers, json=transfer(books, key=None, amount=5))
    assert fixed.status_code == 201, fixed.text


def remembered_request(client: TestClient, db: Database, tenant: TenantHandle, body: bytes) -> str:
    """How the store remembers this request: sent once under a throwaway key, as a client would.

    The body names no transfer key, so the transfer takes the Idempotency-Key's name and a later
    request with the same body under another key posts a transfer of its own."""
    key = f"probe-{len(body)}"
    response = client.post("/v1/transfers", headers={**tenant.headers, "Idempotency-Key": key,
                                                     "content-type": "application/json"}, content=body)
    assert response.status_code == 201, response.text
    stored = stored_key(db, tenant, key)
    assert stored is not None
    return str(stored["request_hash"])


def test_idempotency_key_in_flight_is_refused(client, db, tenant, books, clock):
    body = json.dumps(transfer(books, key=None)).encode()
    put_key(db, clock, tenant, "busy", remembered_request(client, db, tenant, body), lease=timedelta(seconds=30))
    refuse(client, db, tenant, "POST", "/v1/transfers", headers={"Idempotency-Key": "busy",
                                                                 "content-type": "application/json"},
           content=body, status=409, code="idempotency_key_in_use", param="Idempotency-Key")
    still = stored_key(db, tenant, "busy")
    assert still is not None and still["status"] == "in_flight", "the refused request must not touch the live claim"


def test_idempotency_key_whose_lease_expired_is_taken_over(client, db, tenant, books, clock):
    body = json.dumps(transfer(books, key=None, amount=42)).encode()
    put_key(db, clock, tenant, "crashed", remembered_request(client, db, tenant, body), lease=-timedelta(seconds=1))
    before = snapshot(db)
    response = client.post("/v1/transfers", headers={**tenant.headers, "Idempotency-Key": "crashed",
                                                     "content-type": "application/json"}, content=body)
    assert response.status_code == 201, response.text
    assert "Idempotent-Replayed" not in response.headers
    assert response.json()["key"] == "crashed"
    assert snapshot(db)["entries"] == before["entries"] + 1
    stored = stored_key(db, tenant, "crashed")
    assert stored is not None and (stored["status"], stored["response_status"]) == ("completed", 201)


def test_bad_idempotency_key_is_refused(client, db, tenant, books):
    for key, code in [("x" * 256, "too_long"), ("tab\there", "invalid_idempotency_key")]:
        refuse(client, db, tenant, "POST", "/v1/transfers", headers={"Idempotency-Key": key},
               json=transfer(books, key=None), status=400, code=code, param="Idempotency-Key", case=key)


# ---------------------------------------------------------------------------------------------- authentication


def v1_operations(client: TestClient) -> list[tuple[str, str]]:
    spec = client.get("/openapi.json").json()
    return [(method, path) for path, item in spec["paths"].items() if path.startswith("/v1/")
            for method in item if method in {"get", "post", "put", "patch", "delete"}]


def concrete(path: str) -> str:
    return path.replace("{day}", "2026-03-02").replace("{", "").replace("}", "")


def test_every_v1_route_needs_credentials(client, db, tenant, books):
    operations = v1_operations(client)
    assert ("post", "/v1/transfers") in operations and len(operations) > 20
    assert set(operations) >= PUBLIC_ROUTES, "a public route listed here no longer exists"
    before = snapshot(db)
    for authorization in [None, "Bearer fl_sk_not-a-real-key", "Basic dXNlcjpwYXNz", "Bearer ", "fl_sk_x"]:
        headers = {"Authorization": authorization} if authorization else {}
        for method, path in operations:
            if (method, path) in PUBLIC_ROUTES:
                continue
            response = client.request(method.upper(), concrete(path), headers=headers, json={})
            assert response.status_code == 401, (authorization, method, path, response.text)
            assert response.json()["error"]["type"] == "authentication_error"
    assert snapshot(db) == before


@pytest.mark.parametrize(("loc", "param"), [
    (("body", "amount"), "amount"),
    (("body", "items", 0, "amount"), "items[0].amount"),
    (("query", "limit"), "limit"),
    (("body", "body"), "body"),  # a field called "body" is still named
    (("body", "path", "query"), "path.query"),
    (("body",), None),
])
def test_the_param_of_an_error_names_the_field_whatever_it_is_called(loc: tuple[Any, ...], param: str | None) -> None:
    from finloop.api.errors import _param

    assert _param(loc) == param
