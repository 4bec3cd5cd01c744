"""Routing over HTTP: configs (get, put, validation, audit, roles), decisions (explained, replayed), health."""

from __future__ import annotations

import pytest

from finloop.payments.routing import service
from finloop.payments.routing.domain import Candidate
from finloop.tenancy.service import Role
from tests.tenancy.helpers import error, key_headers

WEIGHTED = {"strategy": {"type": "weighted", "weights": {"wxpay": 3, "alipay": 1}}, "fallback": ["alipay"],
            "rules": [{"name": "big", "match": {"min_amount": 100000}, "strategy": {"type": "lowest_cost"}}]}


def _decision(db, tenant_id: str) -> str:  # type: ignore[no-untyped-def]
    with db.uow() as uow:
        decision = service.decide(uow, tenant_id, merchant_id="mer_1", payment_id="pay_1", method="wallet",
                                  amount=500, currency="CNY", customer_segment="vip",
                                  candidates=[Candidate("wxpay", 3), Candidate("alipay", 2)])
        uow.commit()
    return decision.id


@pytest.mark.parametrize(("method", "path"), [
    ("GET", "/v1/routing/configs/default"), ("PUT", "/v1/routing/configs/default"),
    ("GET", "/v1/routing/configs/mer_1"), ("PUT", "/v1/routing/configs/mer_1"),
    ("GET", "/v1/routing/decisions/rtd_1"), ("GET", "/v1/routing/health"),
])
def test_every_endpoint_needs_credentials(client, method, path):
    response = client.request(method, path, json={})
    assert error(response) == (401, "missing_api_key")


def test_without_any_config_the_builtin_default_applies(client, tenant):
    body = client.get("/v1/routing/configs/mer_1", headers=tenant.headers).json()
    assert (body["source"], body["version"], body["merchant_id"]) == ("builtin", 0, None)
    assert body["config"]["strategy"] == {"type": "success_rate"}


def test_put_and_get_merchant_and_default_configs(client, tenant):
    response = client.put("/v1/routing/configs/default", json={"strategy": {"type": "lowest_cost"}},
                          headers=tenant.headers)
    assert response.status_code == 200, response.text
    assert (response.json()["source"], response.json()["version"]) == ("default", 1)
    inherited = client.get("/v1/routing/configs/mer_1", headers=tenant.headers).json()
    assert (inherited["source"], inherited["config"]["strategy"]) == ("default", {"type": "lowest_cost"})

    response = client.put("/v1/routing/configs/mer_1", json=WEIGHTED, headers=tenant.headers)
    assert response.status_code == 200, response.text
    own = client.get("/v1/routing/configs/mer_1", headers=tenant.headers).json()
    assert (own["source"], own["merchant_id"], own["version"]) == ("merchant", "mer_1", 1)
    assert own["config"]["strategy"] == WEIGHTED["strategy"] and own["config"]["fallback"] == ["alipay"]
    assert own["config"]["rules"][0]["match"]["min_amount"] == 100000
    again = client.put("/v1/routing/configs/mer_1", json={**WEIGHTED, "fallback": []}, headers=tenant.headers)
    assert again.json()["version"] == 2


def test_a_config_change_is_in_the_audit_log(client, tenant):
    client.put("/v1/routing/configs/mer_1", json=WEIGHTED, headers=tenant.headers)
    events = client.get("/v1/audit-events", params={"object_type": "routing_config"}, headers=tenant.headers)
    (event,) = events.json()["data"]
    assert event["action"] == "routing.config_set"
    assert event["after"]["merchant_id"] == "mer_1" and event["after"]["version"] == 1
    assert event["after"]["config"]["strategy"] == WEIGHTED["strategy"]


@pytest.mark.parametrize(("body", "code", "param"), [
    ({"strategy": {"type": "weighted", "weights": {"a": 0}}}, "invalid_weights", "strategy.weighted.weights"),
    ({"strategy": {"type": "coin_flip"}}, "union_tag_invalid", "strategy"),
    ({"strategy": {"type": "priority", "channels": []}}, "too_few_items", "strategy.priority.channels"),
    ({"success_rate": {"epsilon": 1.5}}, "less_than_equal", "success_rate.epsilon"),
    ({"success_rate": {"window_size": 10, "min_samples": 11}}, "invalid_min_samples", "success_rate"),
    ({"breaker": {"cooldown_seconds": "soon"}}, "int_type", "breaker.cooldown_seconds"),
    ({"rules": [{"match": {"min_amount": 10, "max_amount": 10}, "strategy": {"type": "lowest_cost"}}]},
     "invalid_amount_band", "rules[0].match"),
    ({"downtime": [{"channel": "wxpay", "start": "2026-03-02T10:00:00Z", "end": "2026-03-02T09:00:00Z"}]},
     "invalid_downtime", "downtime[0]"),
    ({"downtime": [{"channel": "wxpay", "start": "2026-03-02T10:00:00", "end": "2026-03-02T11:00:00Z"}]},
     "invalid_datetime", "downtime[0].start"),
    ({"downtime": [{"channel": "wxpay", "start": "0001-01-01T00:00:00+14:00", "end": "2026-03-02T11:00:00Z"}]},
     "invalid_datetime", "downtime[0].start"),
    ({"downtime": [{"channel": "wxpay", "start": "2026-03-02T10:00:00Z", "end": "2026-03-02T11:00:00Z",
                    "note": "a\u0000b"}]}, "invalid_format", "downtime[0].note"),
    ({"fallback": ["bad channel"]}, "invalid_format", "fallback[0]"),
    ({"colour": "blue"}, "unknown_field", "colour"),
])
def test_a_bad_config_is_a_400_naming_the_field_and_changes_nothing(client, tenant, body, code, param):
    response = client.put("/v1/routing/configs/mer_1", json=body, headers=tenant.headers)
    assert error(response) == (400, code), response.text
    assert response.json()["error"]["param"] == param
    assert client.get("/v1/routing/configs/mer_1", headers=tenant.headers).json()["source"] == "builtin"


def test_a_malformed_merchant_id_is_a_400(client, tenant):
    response = client.put("/v1/routing/configs/mer-1", json={}, headers=tenant.headers)
    assert error(response) == (400, "invalid_format")


def test_a_role_without_tenant_configure_may_read_but_not_change_configs(db, client, tenant):
    headers = key_headers(db, tenant.id, Role.FINANCE)
    assert client.get("/v1/routing/configs/default", headers=headers).status_code == 200
    response = client.put("/v1/routing/configs/default", json={}, headers=headers)
    assert error(response) == (403, "role_not_allowed")


def test_a_decision_is_explained_with_its_inputs_and_replay(db, client, tenant):
    decision_id = _decision(db, tenant.id)
    response = client.get(f"/v1/routing/decisions/{decision_id}", headers=tenant.headers)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["id"] == decision_id and body["payment_id"] == "pay_1" and body["strategy"] == "success_rate"
    assert sorted(body["ranked"]) == ["alipay", "wxpay"] and set(body["scores"]) == {"alipay", "wxpay"}
    assert body["reason"].startswith("success_rate (config strategy)")
    assert body["inputs"]["candidates"] == [{"channel": "wxpay", "fee_amount": 3},
                                            {"channel": "alipay", "fee_amount": 2}]
    assert body["inputs"]["customer_segment"] == "vip" and body["inputs"]["rng_seed"] == body["rng_seed"]
    assert body["replay"] == {"ranked": body["ranked"], "explored": body["explored"], "matches": True}


def test_another_tenants_decision_is_a_404(db, client, tenant, other_tenant):
    decision_id = _decision(db, tenant.id)
    response = client.get(f"/v1/routing/decisions/{decision_id}", headers=other_tenant.headers)
    assert error(response) == (404, "routing_decision_not_found")
    assert error(client.get("/v1/routing/decisions/rtd_nothing", headers=tenant.headers)) == \
        (404, "routing_decision_not_found")


def test_health_lists_breakers(db, client, tenant):
    assert client.get("/v1/routing/health", headers=tenant.headers).json() == {"object": "list", "data": []}
    with db.uow() as uow:
        for _ in range(5):
            service.record_outcome(uow, tenant.id, merchant_id="mer_1", method="wallet", channel="wxpay",
                                   outcome="failure", latency_ms=900)
        service.record_outcome(uow, tenant.id, merchant_id="mer_1", method="wallet", channel="alipay",
                               outcome="success", latency_ms=100)
        uow.commit()
    data = client.get("/v1/routing/health", headers=tenant.headers).json()["data"]
    assert [(h["channel"], h["state"]) for h in data] == [("alipay", "closed"), ("wxpay", "open")]
    assert data[1]["opened_at"] == "2026-03-02T09:00:00Z" and data[1]["half_open_at"] == "2026-03-02T09:00:30Z"
