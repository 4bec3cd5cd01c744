import json


def test_request_id_is_echoed_or_made(client):
    given = client.get("/healthz", headers={"X-Request-Id": "trace-123"})
    assert given.headers["X-Request-Id"] == "trace-123"
    made = client.get("/healthz", headers={"X-Request-Id": "bad id with spaces"})
    assert made.headers["X-Request-Id"].startswith("req_")


def test_metrics_count_requests_by_route_template(client, tenant):
    client.get("/v1/accounts/acc_missing", headers=tenant.headers)
    text = client.get("/metrics").text
    assert 'finloop_http_requests_total{method="GET",route="/v1/accounts/{account_id}",status="404"} 1.0' in text
    assert "finloop_http_request_seconds_bucket" in text


def test_access_log_is_json_with_request_id_and_no_secret(app, tenant, capsys):
    from fastapi.testclient import TestClient

    from finloop.app import create_app

    settings = app.state.settings.model_copy(update={"log_level": "INFO"})
    logged = create_app(settings, database=app.state.database, access_log=True)
    with TestClient(logged) as client:
        client.get("/v1/accounts", headers={**tenant.headers, "X-Request-Id": "trace-9"})
    lines = [json.loads(line) for line in capsys.readouterr().err.splitlines() if line.startswith("{")]
    request = next(line for line in lines if line.get("event") == "request")
    assert request["request_id"] == "trace-9" and request["status"] == 200 and request["route"] == "/v1/accounts"
    assert tenant.secret not in capsys.readouterr().err
