"""The splits API: versioned rules and their precedence, multi-level promoters and merchant hierarchies
through the preview, bad input on every write route (4xx, nothing written), tenant isolation, the CLI."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient
from typer.testing import CliRunner

from finloop.cli import app
from finloop.db.uow import Database
from tests.conftest import TenantHandle


def _post(client: TestClient, tenant: TenantHandle, path: str, body: dict[str, Any], status: int = 201) -> Any:
    response = client.post(path, headers=tenant.headers, json=body)
    assert response.status_code == status, response.text
    return response.json()


def _merchant(client: TestClient, tenant: TenantHandle, reference: str) -> str:
    merchant_id: str = _post(client, tenant, "/v1/merchants", {"reference": reference, "name": reference})["id"]
    return merchant_id


def _preview(client: TestClient, tenant: TenantHandle, **body: Any) -> list[tuple[str, str, int]]:
    result = _post(client, tenant, "/v1/split-rules/preview", {"amount": 10_000, "currency": "CNY", **body}, 200)
    return [(p["party_kind"], p["party_id"], p["amount"]) for p in result["parts"]]


def test_rules_versions_precedence_levels_and_hierarchy(client: TestClient, tenant: TenantHandle,
                                                        other_tenant: TenantHandle, cli: CliRunner) -> None:
    shop, branch, hq = (_merchant(client, tenant, ref) for ref in ("SHOP", "BRANCH", "HQ"))
    top = _post(client, tenant, "/v1/promoters", {"reference": "L2", "name": "Top"})["id"]
    first = _post(client, tenant, "/v1/promoters", {"reference": "L1", "name": "First", "parent_id": top})["id"]
    assert _preview(client, tenant, merchant_id=shop) == [("platform", "platform", 0), ("merchant", shop, 10_000)]

    default = _post(client, tenant, "/v1/split-rules", {"scope": "default", "platform": {"kind": "ratio",
                                                                                         "ratio": "0.05"}})
    merchant_rule = _post(client, tenant, "/v1/split-rules", {
        "scope": "merchant", "merchant_id": shop, "platform": {"kind": "ratio", "ratio": "0.10"},
        "promoter_ratios": ["0.08", "0.03"]})
    category = _post(client, tenant, "/v1/split-rules", {
        "scope": "category", "category": "books", "platform": {"kind": "fixed", "amount": 200}})
    order = _post(client, tenant, "/v1/split-rules", {"scope": "order", "platform": {
        "kind": "tiered", "tiers": [{"min_amount": 0, "ratio": "0.02"}, {"min_amount": 5_000, "ratio": "0.01"}]}})
    # Multi-level: 8% to the order's promoter, 3% to its parent.
    assert _preview(client, tenant, merchant_id=shop, promoter_id=first) == [
        ("platform", "platform", 1_000), ("promoter", first, 800), ("promoter", top, 300), ("merchant", shop, 7_900)]
    assert _preview(client, tenant, merchant_id=branch)[0][2] == 500  # the tenant default
    assert _preview(client, tenant, merchant_id=shop, category="books")[0][2] == 200
    assert _preview(client, tenant, merchant_id=shop, category="books", split_rule_id=order["id"])[0][2] == 100

    # Headquarters → branch → shop: each level takes its share, the shop the remainder.
    _post(client, tenant, "/v1/merchant-links", {"merchant_id": shop, "parent_merchant_id": branch,
                                                 "share_ratio": "0.02"})
    _post(client, tenant, "/v1/merchant-links", {"merchant_id": branch, "parent_merchant_id": hq,
                                                 "share_ratio": "0.01"})
    assert _preview(client, tenant, merchant_id=shop) == [
        ("platform", "platform", 1_000), ("merchant", branch, 200), ("merchant", hq, 100), ("merchant", shop, 8_700)]
    cycle = client.post("/v1/merchant-links", headers=tenant.headers,
                        json={"merchant_id": hq, "parent_merchant_id": shop, "share_ratio": "0.01"})
    assert cycle.status_code == 400 and cycle.json()["error"]["code"] == "link_cycle"

    # A new version supersedes; a rule is retired, never edited.
    second = _post(client, tenant, "/v1/split-rules", {"scope": "merchant", "merchant_id": shop,
                                                       "platform": {"kind": "ratio", "ratio": "0.12"}})
    assert second["version"] == 2 and second["supersedes_id"] == merchant_rule["id"]
    old = client.get(f"/v1/split-rules/{merchant_rule['id']}", headers=tenant.headers).json()
    assert old["status"] == "superseded" and old["platform"]["ratio"] == "0.10"
    assert _post(client, tenant, f"/v1/split-rules/{second['id']}/retire", {}, 200)["status"] == "retired"
    again = client.post(f"/v1/split-rules/{second['id']}/retire", headers=tenant.headers, json={})
    assert again.status_code == 409
    assert _preview(client, tenant, merchant_id=shop)[0][2] == 500  # back to the default
    active = client.get("/v1/split-rules", headers=tenant.headers, params={"status": "active"}).json()["data"]
    assert {r["id"] for r in active} == {default["id"], category["id"], order["id"]}
    assert len(client.get("/v1/promoters", headers=tenant.headers).json()["data"]) == 2
    assert len(client.get("/v1/merchant-links", headers=tenant.headers).json()["data"]) == 2

    # Another tenant sees none of it.
    for path in (f"/v1/promoters/{first}", f"/v1/split-rules/{default['id']}", f"/v1/parties/merchant/{shop}/balances",
                 f"/v1/parties/promoter/{first}/balances", "/v1/payment-splits/pay_nope"):
        assert client.get(path, headers=other_tenant.headers).status_code == 404, path
    assert client.post(f"/v1/split-rules/{default['id']}/retire", headers=other_tenant.headers,
                       json={}).status_code == 404
    assert client.post("/v1/split-rules/preview", headers=other_tenant.headers,
                       json={"amount": 1, "currency": "CNY", "merchant_id": shop}).status_code == 404
    assert client.get("/v1/split-rules", headers=other_tenant.headers).json()["data"] == []

    listed = cli.invoke(app, ["splits", "rules", "--tenant", tenant.id])
    assert listed.exit_code == 0 and default["id"] in listed.output, listed.output
    shown = cli.invoke(app, ["splits", "preview", "--tenant", tenant.id, "--merchant", shop, "--amount", "10000",
                             "--promoter", first])
    assert shown.exit_code == 0 and "9200" in shown.output.replace(",", ""), shown.output  # default 5%, hierarchy


def test_bad_input_on_every_write_route_is_a_4xx_and_writes_nothing(client: TestClient, tenant: TenantHandle,
                                                                    db: Database) -> None:
    shop = _merchant(client, tenant, "SHOP")
    promoter = _post(client, tenant, "/v1/promoters", {"reference": "P", "name": "P"})["id"]
    cases: list[tuple[str, dict[str, Any], int, str | None]] = [
        ("/v1/promoters", {"reference": "", "name": "x"}, 400, None),
        ("/v1/promoters", {"reference": "P", "name": "dup"}, 409, "promoter_exists"),
        ("/v1/promoters", {"reference": "Q", "name": "x", "parent_id": "prm_nope"}, 404, "promoter_not_found"),
        ("/v1/promoters", {"reference": "Q", "name": "x", "receivable_limit": -1}, 400, None),
        (f"/v1/promoters/{promoter}/customers", {"customer_id": "cus_nope"}, 404, "customer_not_found"),
        ("/v1/merchant-links", {"merchant_id": shop, "parent_merchant_id": shop, "share_ratio": "0.1"}, 400,
         "link_cycle"),
        ("/v1/merchant-links", {"merchant_id": shop, "parent_merchant_id": "mer_nope", "share_ratio": "0.1"}, 404,
         "merchant_not_found"),
        ("/v1/merchant-links", {"merchant_id": shop, "parent_merchant_id": shop, "share_ratio": "1.5"}, 400, None),
        ("/v1/split-rules", {"scope": "galaxy"}, 400, None),
        ("/v1/split-rules", {"scope": "merchant"}, 400, "merchant_required"),
        ("/v1/split-rules", {"scope": "category", "merchant_id": shop}, 400, "category_required"),
        ("/v1/split-rules", {"scope": "default", "platform": {"kind": "ratio", "ratio": "0.6"},
                             "promoter_ratios": ["0.3", "0.2"]}, 400, "ratios_exceed_one"),
        ("/v1/split-rules", {"scope": "default", "platform": {"kind": "fixed"}}, 400, "invalid_amount"),
        ("/v1/split-rules", {"scope": "default", "platform": {"kind": "ratio", "ratio": "0.1234567"}}, 400, None),
        ("/v1/split-rules", {"scope": "default", "platform": {"kind": "tiered", "tiers": [
            {"min_amount": 10, "ratio": "0.1"}]}}, 400, "invalid_tiers"),
        ("/v1/split-rules", {"scope": "default", "promoter_ratios": ["0.1"] * 6}, 400, None),
        ("/v1/split-rules", {"scope": "merchant", "merchant_id": "mer_nope"}, 404, "merchant_not_found"),
        ("/v1/split-rules", {"scope": "default", "surprise": 1}, 400, None),
        ("/v1/split-rules/srl_nope/retire", {}, 404, "split_rule_not_found"),
        ("/v1/split-rules/preview", {"amount": 0, "currency": "CNY", "merchant_id": shop}, 400, None),
        ("/v1/split-rules/preview", {"amount": 100, "currency": "XXX1", "merchant_id": shop}, 400, None),
        (f"/v1/parties/merchant/{shop}/receivable-limit", {"receivable_limit": -5}, 400, None),
        ("/v1/parties/merchant/mer_nope/receivable-limit", {"receivable_limit": 5}, 404, "merchant_not_found"),
        ("/v1/parties/platform/x/receivable-limit", {"receivable_limit": 5}, 400, None),
    ]
    for path, body, status, code in cases:
        response = client.post(path, headers=tenant.headers, json=body)
        assert response.status_code == status, (path, body, response.text)
        if code is not None:
            assert response.json()["error"]["code"] == code, (path, body, response.text)
    assert len(client.get("/v1/promoters", headers=tenant.headers).json()["data"]) == 1
    assert client.get("/v1/split-rules", headers=tenant.headers).json()["data"] == []
    assert client.get("/v1/merchant-links", headers=tenant.headers).json()["data"] == []
