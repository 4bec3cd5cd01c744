from __future__ import annotations

from typing import Any

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Column, Index, Table, UniqueConstraint

from finloop.db.base import Base, load_all_models

VAULT_TABLES = {"vault_keys", "cards"}


def _table(diff: Any) -> str | None:
    """The table a compare_metadata difference is about (modifications come as lists of tuples)."""
    if isinstance(diff, list):
        return _table(diff[0])
    for item in diff[1:]:
        if isinstance(item, Table):
            return item.name
        if isinstance(item, Column | Index | UniqueConstraint) and item.table is not None:
            return item.table.name
        if isinstance(item, str) and item in VAULT_TABLES:
            return item
    return None


def test_the_vault_migration_matches_the_models(db):
    # Only the vault's tables: the other branches' migrations are checked by tests/db/test_database.py.
    load_all_models()
    with db.engine.connect() as connection:
        diff = compare_metadata(MigrationContext.configure(connection), Base.metadata)
    assert [d for d in diff if _table(d) in VAULT_TABLES] == []
