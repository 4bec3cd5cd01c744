"""``finloop webhooks list`` and ``finloop webhooks replay``."""

from __future__ import annotations

from finloop.cli import app
from tests.webhooks.helpers import endpoint, outbox_rows, publish


def invoke(cli, monkeypatch, *args: str):  # type: ignore[no-untyped-def]
    monkeypatch.setenv("COLUMNS", "250")
    return cli.invoke(app, list(args))


def test_list_shows_endpoints_and_latest_messages_but_no_secret(db, tenant, other_tenant, cli, monkeypatch):
    endpoint_id, secret = endpoint(db, tenant.id, event_types=["payment.failed"], merchant_id="mer_A")
    message_id = publish(db, tenant.id, "payment.failed", merchant_id="mer_A")
    result = invoke(cli, monkeypatch, "webhooks", "list", "--tenant", tenant.id, "--messages", "5")
    assert result.exit_code == 0, result.output
    assert endpoint_id in result.output and "payment.failed" in result.output and "mer_A" in result.output
    assert message_id in result.output
    assert secret not in result.output and "whsec_" not in result.output
    several = invoke(cli, monkeypatch, "webhooks", "list")
    assert several.exit_code == 2


def test_replay_schedules_the_message_again(db, tenant, cli, monkeypatch):
    endpoint_id, _ = endpoint(db, tenant.id)
    message_id = publish(db, tenant.id)
    result = invoke(cli, monkeypatch, "webhooks", "replay", message_id)
    assert result.exit_code == 0, result.output
    assert endpoint_id in result.output
    assert [(r.payload["endpoint_id"], r.payload["trigger"]) for r in outbox_rows(db)] == [
        (endpoint_id, "scheduled"), (endpoint_id, "replay")]


def test_replay_of_an_unknown_message_or_endpoint_fails(db, tenant, cli, monkeypatch):
    assert invoke(cli, monkeypatch, "webhooks", "replay", "msg_nope").exit_code == 1
    message_id = publish(db, tenant.id)
    assert invoke(cli, monkeypatch, "webhooks", "replay", message_id, "--endpoint", "we_nope").exit_code == 1
    assert outbox_rows(db) == []
