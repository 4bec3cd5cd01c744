from __future__ import annotations

from sqlalchemy import select

from finloop.cli import app
from finloop.vault import service
from finloop.vault.models import Card, VaultKey


def tokenize(db, tenant_id, count):
    with db.uow() as uow:
        ids = [service.tokenize_card(uow, tenant_id, number="4242424242424242", exp_month=1, exp_year=2030).id
               for _ in range(count)]
        uow.commit()
    return ids


def test_status_on_an_empty_vault(cli, db):
    result = cli.invoke(app, ["vault", "status"])
    assert result.exit_code == 0, result.output
    assert "No keys yet" in result.output and "configured master key" in result.output


def test_rotate_rewrap_and_status(cli, db, tenant):
    tokenize(db, tenant.id, 3)
    rotated = cli.invoke(app, ["vault", "rotate-key"])
    assert rotated.exit_code == 0, rotated.output
    assert "version 2" in rotated.output and "3 cards use an older key" in rotated.output
    before = cli.invoke(app, ["vault", "status"])
    assert "3 cards use a retired key" in before.output and "retired" in before.output
    rewrapped = cli.invoke(app, ["vault", "rewrap", "--batch-size", "2"])
    assert rewrapped.exit_code == 0, rewrapped.output
    assert "3 cards rewrapped" in rewrapped.output
    with db.uow(read_only=True) as uow:
        active = uow.session.scalar(select(VaultKey.id).where(VaultKey.purpose == "data", VaultKey.status == "active"))
        assert set(uow.session.scalars(select(Card.key_id))) == {active}
    after = cli.invoke(app, ["vault", "status"])
    assert "retired key" not in after.output and active is not None and active[:12] in after.output


def test_rotate_master_key_rewraps_and_says_what_to_do(cli, db, tenant, tmp_path):
    from finloop.vault import crypto

    card_id = tokenize(db, tenant.id, 1)[0]
    key_file = tmp_path / "new.key"
    result = cli.invoke(app, ["vault", "rotate-master-key", "--new-key-file", str(key_file)])
    assert result.exit_code == 0, result.output
    assert "2 vault keys re-wrapped" in result.output and "FINLOOP_VAULT_MASTER_KEY" in result.output
    assert key_file.read_text().strip() not in result.output  # the key itself is never printed
    crypto.use_master_key(crypto.load_key_file(key_file))
    service._cache.clear()
    with db.uow(read_only=True) as uow:
        assert service.reveal_card(uow, tenant.id, card_id).number == "4242424242424242"
    again = cli.invoke(app, ["vault", "rotate-master-key", "--new-key-file", str(key_file)])
    assert again.exit_code == 1 and "is the configured one" in again.output
