from __future__ import annotations

import threading
import time
from decimal import Decimal

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Column, MetaData, String, Table, create_engine, insert, select, text

from finloop.db.base import Base, load_all_models
from finloop.db.migrate import downgrade, upgrade
from finloop.db.session import make_engine
from finloop.db.types import ExactDecimal


def test_migrations_match_the_models(db):
    load_all_models()
    with db.engine.connect() as connection:
        diff = compare_metadata(MigrationContext.configure(connection), Base.metadata)
    assert diff == []


def test_migrations_downgrade_and_upgrade_again(tmp_path):
    url = f"sqlite:///{tmp_path / 'm.db'}"
    upgrade(url)
    downgrade(url, "base")
    engine = create_engine(url)
    with engine.connect() as connection:
        assert "accounts" not in {row[0] for row in connection.execute(text(
            "SELECT name FROM sqlite_master WHERE type='table'"))}
    upgrade(url)
    with engine.connect() as connection:
        assert connection.execute(text("SELECT count(*) FROM accounts")).scalar() == 0


def test_exact_decimal_survives_a_round_trip(db_url):
    engine = make_engine(db_url)
    metadata = MetaData()
    rates = Table("test_rates", metadata, Column("name", String(10), primary_key=True), Column("rate", ExactDecimal()))
    metadata.create_all(engine)
    try:
        value = Decimal("7.123456789012345678")
        with engine.begin() as connection:
            connection.execute(insert(rates), [{"name": "usdcny", "rate": value}])
        with engine.connect() as connection:
            stored = connection.execute(select(rates.c.rate)).scalar_one()
        assert stored == value and isinstance(stored, Decimal)
    finally:
        metadata.drop_all(engine)
        engine.dispose()


def test_sqlite_uses_wal_and_immediate_write_transactions(tmp_path):
    engine = make_engine(f"sqlite:///{tmp_path / 'w.db'}", busy_timeout_ms=5_000)
    with engine.connect() as connection:
        assert connection.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        connection.exec_driver_sql("CREATE TABLE counter (n INTEGER)")
        connection.exec_driver_sql("INSERT INTO counter VALUES (0)")
        connection.commit()

    def increment() -> None:
        # Read then write: without BEGIN IMMEDIATE two of these would lose updates or deadlock.
        for _ in range(50):
            with engine.begin() as connection:
                n = connection.exec_driver_sql("SELECT n FROM counter").scalar_one()
                time.sleep(0.0005)
                connection.exec_driver_sql(f"UPDATE counter SET n = {n + 1}")

    threads = [threading.Thread(target=increment) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    with engine.connect() as connection:
        assert connection.exec_driver_sql("SELECT n FROM counter").scalar_one() == 200
    engine.dispose()
