"""The tenant's business time and holidays over HTTP."""

from __future__ import annotations

from tests.tenancy.helpers import error


def _audit(client, headers, object_type):  # type: ignore[no-untyped-def]
    events = client.get("/v1/audit-events", params={"object_type": object_type}, headers=headers).json()["data"]
    return [(e["action"], e["before"], e["after"]) for e in events]


def test_get_tenant_shows_business_time_and_todays_business_date(client, tenant):
    body = client.get("/v1/tenant", headers=tenant.headers).json()
    assert body == {"id": tenant.id, "object": "tenant", "name": "Acme", "timezone": "UTC", "cutoff": "00:00",
                    "weekend": [5, 6], "business_date": "2026-03-02", "created_at": "2026-03-02T09:00:00Z"}


def test_business_time_change_moves_the_business_date_and_is_audited(client, tenant):
    # 09:00 UTC is 17:00 in Shanghai: at the 17:00 cut-off the day's business is over.
    response = client.patch("/v1/tenant/business-time", headers=tenant.headers,
                            json={"timezone": "Asia/Shanghai", "cutoff": "17:00", "weekend": [6, 5, 6]})
    assert response.status_code == 200, response.text
    assert response.json()["business_date"] == "2026-03-03"
    assert response.json()["weekend"] == [5, 6]
    changed = _audit(client, tenant.headers, "tenant")[-1]
    assert changed == ("tenant.business_time_changed",
                       {"name": "Acme", "timezone": "UTC", "cutoff": "00:00", "weekend": [5, 6]},
                       {"name": "Acme", "timezone": "Asia/Shanghai", "cutoff": "17:00", "weekend": [5, 6]})
    assert client.get("/v1/tenant", headers=tenant.headers).json()["cutoff"] == "17:00"


def test_business_time_change_that_changes_nothing_records_nothing(client, tenant):
    before = len(_audit(client, tenant.headers, "tenant"))
    response = client.patch("/v1/tenant/business-time", json={"timezone": "UTC"}, headers=tenant.headers)
    assert response.status_code == 200
    assert len(_audit(client, tenant.headers, "tenant")) == before


def test_bad_business_time_is_refused_and_changes_nothing(client, tenant):
    cases = [
        ({"timezone": "Mars/Olympus"}, "unknown_timezone", "timezone"),
        ({"timezone": "localtime"}, "unknown_timezone", "timezone"),  # a host file, not an IANA zone
        ({"timezone": "x" * 65}, "too_long", "timezone"),
        ({"cutoff": "24:00"}, "invalid_format", "cutoff"),
        ({"cutoff": "9:5"}, "invalid_format", "cutoff"),
        ({"weekend": [7]}, "less_than_equal", "weekend[0]"),
        ({"weekend": [0, 1, 2, 3, 4, 5, 6]}, "too_many_items", "weekend"),
        ({"weekend": [True]}, "int_type", "weekend[0]"),
        ({"holidays": []}, "unknown_field", "holidays"),
    ]
    for body, code, param in cases:
        response = client.patch("/v1/tenant/business-time", json={"cutoff": "18:00", **body}, headers=tenant.headers)
        assert error(response) == (400, code), body
        assert response.json()["error"]["param"] == param
    assert client.get("/v1/tenant", headers=tenant.headers).json()["cutoff"] == "00:00"


def test_malformed_json_is_a_400(client, tenant):
    response = client.patch("/v1/tenant/business-time", content=b"{", headers={
        **tenant.headers, "Content-Type": "application/json"})
    assert error(response) == (400, "malformed_json")


def test_a_holiday_today_rolls_the_business_date_forward(client, tenant):
    response = client.put("/v1/tenant/holidays/2026-03-02", json={"name": "Founders' Day"}, headers=tenant.headers)
    assert response.status_code == 200
    assert response.json() == {"object": "holiday", "day": "2026-03-02", "name": "Founders' Day"}
    assert client.get("/v1/tenant", headers=tenant.headers).json()["business_date"] == "2026-03-03"
    assert client.get("/v1/tenant/holidays", headers=tenant.headers).json() == [response.json()]


def test_holiday_rename_and_removal_are_audited(client, tenant):
    client.put("/v1/tenant/holidays/2026-10-01", json={"name": "National Day"}, headers=tenant.headers)
    client.put("/v1/tenant/holidays/2026-10-01", json={"name": "National Day"}, headers=tenant.headers)
    client.put("/v1/tenant/holidays/2026-10-01", json={"name": "Golden Week"}, headers=tenant.headers)
    removed = client.delete("/v1/tenant/holidays/2026-10-01", headers=tenant.headers)
    assert removed.status_code == 200
    assert removed.json() == {"object": "holiday", "day": "2026-10-01", "deleted": True}
    assert client.get("/v1/tenant/holidays", headers=tenant.headers).json() == []
    assert _audit(client, tenant.headers, "holiday") == [
        ("calendar.holiday_set", None, {"day": "2026-10-01", "name": "National Day"}),
        ("calendar.holiday_set", {"day": "2026-10-01", "name": "National Day"},
         {"day": "2026-10-01", "name": "Golden Week"}),
        ("calendar.holiday_removed", {"day": "2026-10-01", "name": "Golden Week"}, None),
    ]


def test_holiday_without_a_body_has_an_empty_name(client, tenant):
    response = client.put("/v1/tenant/holidays/2026-12-25", headers=tenant.headers)
    assert response.json() == {"object": "holiday", "day": "2026-12-25", "name": ""}


def test_removing_a_day_that_is_no_holiday_is_a_404(client, tenant):
    assert error(client.delete("/v1/tenant/holidays/2026-12-25", headers=tenant.headers)) == (
        404, "holiday_not_found")


def test_bad_holiday_input_is_a_400(client, tenant):
    cases = [
        ("PUT", "/v1/tenant/holidays/2026-02-30", {"name": "x"}, "invalid_date"),
        ("DELETE", "/v1/tenant/holidays/tomorrow", None, "invalid_date"),
        ("PUT", "/v1/tenant/holidays/2026-12-25", {"name": "x" * 201}, "too_long"),
        ("PUT", "/v1/tenant/holidays/2026-12-25", {"name": "bad\u0000name"}, "invalid_text"),
    ]
    for method, path, body, code in cases:
        assert error(client.request(method, path, json=body, headers=tenant.headers)) == (400, code), path
    assert client.get("/v1/tenant/holidays", headers=tenant.headers).json() == []


def test_only_post_declares_an_idempotency_key(tmp_path):
    from finloop.app import create_app
    from finloop.config import Settings

    app = create_app(Settings(database_url=f"sqlite:///{tmp_path}/spec.db", log_level="WARNING"), access_log=False)
    spec = app.openapi()["paths"]
    for path in ["/v1/tenant/business-time", "/v1/tenant/holidays/{day}", "/v1/users/{user_id}",
                 "/v1/sessions/current"]:
        for method, operation in spec[path].items():
            headers = [p["name"] for p in operation.get("parameters", []) if p["in"] == "header"]
            assert "Idempotency-Key" not in headers, (method, path)
    for path in ["/v1/approvals", "/v1/api-keys", "/v1/api-keys/{key_id}/rotate"]:
        assert "Idempotency-Key" in [p["name"] for p in spec[path]["post"]["parameters"]], path
