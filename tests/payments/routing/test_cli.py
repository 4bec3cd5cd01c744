"""``finloop routing show``, ``set`` and ``health``."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from finloop.payments.routing import service


def _routing(cli: CliRunner, *args: str):  # type: ignore[no-untyped-def]
    from finloop.cli import app

    return cli.invoke(app, ["routing", *args], env={"COLUMNS": "200"})


def test_set_then_show_a_merchant_config_and_the_change_is_audited(db, cli, client, tenant, tmp_path):
    path = tmp_path / "config.json"
    path.write_text(json.dumps({"strategy": {"type": "priority", "channels": ["alipay", "wxpay"]}}))
    result = _routing(cli, "set", "mer_1", "--file", str(path))
    assert result.exit_code == 0, result.output
    assert "version 1" in result.stdout
    shown = _routing(cli, "show", "mer_1")
    assert shown.exit_code == 0, shown.output
    assert json.loads(shown.stdout)["strategy"] == {"type": "priority", "channels": ["alipay", "wxpay"]}
    assert "source: merchant, version 1" in shown.stderr
    events = client.get("/v1/audit-events", params={"object_type": "routing_config"}, headers=tenant.headers)
    assert [(e["action"], e["actor"]) for e in events.json()["data"]] == [("routing.config_set", "cli")]


def test_show_default_without_a_config_prints_the_builtin(cli, tenant):
    result = _routing(cli, "show", "default")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["strategy"] == {"type": "success_rate"}
    assert "source: builtin" in result.stderr


def test_set_refuses_an_invalid_config_and_names_the_field(cli, tenant, tmp_path):
    path = tmp_path / "bad.json"
    path.write_text(json.dumps({"success_rate": {"epsilon": 3}}))
    result = _routing(cli, "set", "default", "--file", str(path))
    assert result.exit_code == 1
    assert "less_than_equal" in result.output and "success_rate.epsilon" in result.output
    path.write_text("{nope")
    assert _routing(cli, "set", "default", "--file", str(path)).exit_code == 2
    assert "source: builtin" in _routing(cli, "show", "default").stderr


def test_commands_need_a_tenant_when_there_are_several(cli, tenant, other_tenant):
    result = _routing(cli, "health")
    assert result.exit_code == 2 and "Pass --tenant" in result.output
    assert _routing(cli, "health", "--tenant", "ten_nobody").exit_code == 1


def test_health_shows_each_channels_breaker(db, cli, tenant):
    with db.uow() as uow:
        for _ in range(5):
            service.record_outcome(uow, tenant.id, merchant_id="mer_1", method="wallet", channel="wxpay",
                                   outcome="unknown", latency_ms=10)
        uow.commit()
    service.reset_cache()
    result = _routing(cli, "health", "--tenant", tenant.id)
    assert result.exit_code == 0, result.output
    row = next(line for line in result.stdout.splitlines() if "wxpay" in line)
    cells = [cell.strip() for cell in row.strip("│ ").split("│")]
    # The CLI runs on the real clock, long after the test's frozen 09:00: the cool-down is over.
    assert cells[:6] == ["wxpay", "half_open", "0", "0", "0.00", "5"]
    assert cells[6].startswith("2026-03-02T09:00:00")
