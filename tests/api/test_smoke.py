def test_health_and_openapi(client):
    assert client.get("/healthz").json() == {"status": "ok"}
    assert client.get("/readyz").status_code == 200
    spec = client.get("/openapi.json").json()
    assert "/v1/transfers" in spec["paths"]


def test_account_and_transfer_round_trip(client, tenant):
    h = tenant.headers
    bank = client.post("/v1/accounts", json={"code": "assets:bank:main", "type": "asset", "currency": "CNY"},
                       headers=h)
    assert bank.status_code == 201, bank.text
    merchant = client.post("/v1/accounts", headers=h, json={
        "code": "liabilities:merchant:M1:available", "type": "liability", "currency": "CNY",
        "balance_rule": "debits_must_not_exceed_credits"})
    body = {"debit_account_id": bank.json()["id"], "credit_account_id": merchant.json()["id"], "amount": 12345,
            "currency": "CNY"}
    first = client.post("/v1/transfers", json=body, headers={**h, "Idempotency-Key": "abc"})
    assert first.status_code == 201, first.text
    again = client.post("/v1/transfers", json=body, headers={**h, "Idempotency-Key": "abc"})
    assert again.status_code == 201 and again.json() == first.json()
    assert again.headers["Idempotent-Replayed"] == "true"
    account = client.get(f"/v1/accounts/{merchant.json()['id']}", headers=h).json()
    assert account["balances"]["posted"] == 12345
