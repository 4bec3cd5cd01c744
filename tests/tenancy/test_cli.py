"""``finloop admin rotate-key`` and ``revoke-key``."""

from __future__ import annotations

import re

from typer.testing import CliRunner

from finloop.tenancy import service as tenancy


def _admin(cli: CliRunner, *args: str):  # type: ignore[no-untyped-def]
    from finloop.cli import app

    return cli.invoke(app, ["admin", *args], env={"COLUMNS": "200"})


def _key_id(db, secret: str) -> str:  # type: ignore[no-untyped-def]
    with db.uow(read_only=True) as uow:
        return tenancy.authenticate(uow, secret).actor.removeprefix("key:")


def test_rotate_key_prints_a_working_secret_and_ends_the_old_key(db, client, cli, tenant):
    result = _admin(cli, "rotate-key", tenant.id, _key_id(db, tenant.secret))
    assert result.exit_code == 0, result.output
    secret = re.search(r"fl_sk_\S+", result.output).group(0)
    assert client.get("/v1/tenant", headers={"Authorization": f"Bearer {secret}"}).status_code == 200
    assert client.get("/v1/tenant", headers=tenant.headers).status_code == 401


def test_revoke_key_ends_the_key_and_refuses_an_unknown_one(db, client, cli, tenant, other_tenant):
    key_id = _key_id(db, tenant.secret)
    assert _admin(cli, "revoke-key", other_tenant.id, key_id).exit_code == 1
    assert client.get("/v1/tenant", headers=tenant.headers).status_code == 200
    result = _admin(cli, "revoke-key", tenant.id, key_id)
    assert result.exit_code == 0, result.output
    assert client.get("/v1/tenant", headers=tenant.headers).status_code == 401
