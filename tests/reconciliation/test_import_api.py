"""The import routes: upload as raw body, rejection, listing with cursors, mappings, isolation, bad input."""

from __future__ import annotations

from fastapi.testclient import TestClient

from tests.conftest import TenantHandle
from tests.reconciliation.conftest import BANK_EXPORT_COLUMNS, sample

FILES = "/v1/reconciliation/files"


def test_upload_list_read_and_page_lines(client: TestClient, tenant: TenantHandle,
                                         other_tenant: TenantHandle) -> None:
    params = {"format": "stripe", "source": "stripe-eu", "filename": "report.csv"}
    created = client.post(FILES, params=params, content=sample("stripe_good.csv"), headers=tenant.headers)
    assert created.status_code == 201, created.text
    body = created.json()
    assert (body["line_count"], body["business_date"], body["source_kind"], body["currency"]) == (
        3, "2026-03-02", "channel", "CNY")
    again = client.post(FILES, params=params, content=sample("stripe_good.csv"), headers=tenant.headers)
    assert again.json()["id"] == body["id"]
    bank = client.post(FILES, params={"format": "mt940", "source": "custody", "business_date": "2026-03-02"},
                       content=sample("mt940_good.sta"), headers=tenant.headers).json()
    assert bank["account"] == "••••••••••••••••••3000" and bank["closing_balance"] == 5_748_500

    listed = client.get(FILES, params={"limit": 1}, headers=tenant.headers).json()
    assert [f["id"] for f in listed["data"]] == [bank["id"]] and listed["has_more"]
    rest = client.get(FILES, params={"starting_after": listed["next_cursor"]}, headers=tenant.headers).json()
    assert [f["id"] for f in rest["data"]] == [body["id"]] and not rest["has_more"]
    assert client.get(FILES, params={"source": "custody"}, headers=tenant.headers).json()["data"][0]["id"] == bank["id"]
    assert client.get(f"{FILES}/{body['id']}", headers=tenant.headers).json()["filename"] == "report.csv"

    page = client.get(f"{FILES}/{body['id']}/lines", params={"limit": 2}, headers=tenant.headers).json()
    assert [line["our_reference"] for line in page["data"]] == ["pay_01SAMPLE0000000000000000A",
                                                               "pay_01SAMPLE0000000000000000B"]
    last = client.get(f"{FILES}/{body['id']}/lines", params={"starting_after": page["next_cursor"]},
                      headers=tenant.headers).json()
    assert [(line["kind"], line["amount"], line["direction"]) for line in last["data"]] == [("refund", 2000, "debit")]

    # Another tenant sees nothing of it.
    for path in (f"{FILES}/{body['id']}", f"{FILES}/{body['id']}/lines"):
        assert client.get(path, headers=other_tenant.headers).status_code == 404
    assert client.get(FILES, headers=other_tenant.headers).json()["data"] == []


def test_a_bad_file_is_a_400_naming_the_line_and_nothing_is_stored(client: TestClient, tenant: TenantHandle) -> None:
    response = client.post(FILES, params={"format": "camt053", "source": "custody"},
                           content=sample("camt053_billion_laughs.xml"), headers=tenant.headers)
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "file_rejected" and error["param"] == "file" and "line 2" in error["message"]
    response = client.post(FILES, params={"format": "generic", "source": "g"}, content=sample("generic_bad_amount.csv"),
                           headers=tenant.headers)
    assert response.json()["error"]["message"] == "File rejected, line 3: bad amount"
    for params, code in [({"format": "excel", "source": "x"}, 400), ({"format": "csv", "source": "x"}, 400),
                         ({"format": "csv", "source": "x", "mapping_id": "rcm_missing"}, 404),
                         ({"format": "wechat"}, 400), ({"format": "wechat", "source": "x" * 65}, 400),
                         ({"format": "wechat", "source": "x", "business_date": "2026-02-30"}, 400)]:
        assert client.post(FILES, params=params, content=b"a,b\n", headers=tenant.headers).status_code == code, params
    assert client.post(FILES, params={"format": "wechat", "source": "x"}, content=b"",
                       headers=tenant.headers).status_code == 400
    assert client.get(f"{FILES}/rcf_nope/lines", params={"starting_after": "abc"},
                      headers=tenant.headers).status_code == 400
    assert client.get(FILES, headers=tenant.headers).json()["data"] == []
    assert client.post(FILES, params={"format": "wechat", "source": "x"}, content=b"").status_code == 401


def test_mappings_saved_and_used(client: TestClient, tenant: TenantHandle, other_tenant: TenantHandle) -> None:
    mapping = {"name": "hausbank", "columns": BANK_EXPORT_COLUMNS, "delimiter": ";", "date_format": "%d.%m.%Y"}
    created = client.post("/v1/reconciliation/mappings", json=mapping, headers=tenant.headers)
    assert created.status_code == 201, created.text
    mapping_id = created.json()["id"]
    assert client.post("/v1/reconciliation/mappings", json=mapping, headers=tenant.headers).json()["error"]["code"] \
        == "mapping_exists"
    for bad, param in [({"columns": {"amount": "A"}}, "columns"), ({"date_format": "no directives"}, "date_format"),
                       ({"sign": "direction"}, "sign"), ({"columns": {"value_on": "D", "amount": "A"}},
                                                         "default_currency")]:
        response = client.post("/v1/reconciliation/mappings", json={**mapping, "name": "x", **bad},
                               headers=tenant.headers)
        assert response.status_code == 400 and response.json()["error"]["param"] == param, bad
    assert client.post("/v1/reconciliation/mappings", json={**mapping, "name": "y", "extra": 1},
                       headers=tenant.headers).status_code == 400
    listed = client.get("/v1/reconciliation/mappings", headers=tenant.headers).json()["data"]
    assert [m["id"] for m in listed] == [mapping_id]
    assert client.get("/v1/reconciliation/mappings", headers=other_tenant.headers).json()["data"] == []

    params = {"format": "csv", "source": "hausbank", "mapping_id": mapping_id}
    imported = client.post(FILES, params=params, content=sample("bank_export.csv"), headers=tenant.headers)
    assert imported.status_code == 201 and imported.json()["line_count"] == 3
    rejected = client.post(FILES, params=params, content=sample("bank_export_bad_date.csv"), headers=tenant.headers)
    assert rejected.json()["error"]["message"] == "File rejected, line 4: bad date"
    # Another tenant cannot use this tenant's mapping.
    assert client.post(FILES, params=params, content=sample("bank_export.csv"),
                       headers=other_tenant.headers).status_code == 404
