"""Engines for SQLite (the embedded default) and PostgreSQL.

SQLite has no row locks, so every write transaction begins with ``BEGIN IMMEDIATE``: it takes the
database write lock up front (waiting up to the busy timeout) instead of failing half-way on upgrade.
WAL mode lets readers run beside the one writer, so ``serve`` and ``worker`` work side by side.
Read-only units of work use a plain deferred ``BEGIN`` and never block writers.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url

READ_ONLY = "finloop_read_only"


def is_sqlite_url(url: str) -> bool:
    return make_url(url).get_backend_name() == "sqlite"


def make_engine(url: str, *, busy_timeout_ms: int = 30_000, echo: bool = False, **kwargs: Any) -> Engine:
    if is_sqlite_url(url):
        engine = create_engine(url, echo=echo, connect_args={"timeout": busy_timeout_ms / 1000,
                                                              "check_same_thread": False}, **kwargs)
        _configure_sqlite(engine, busy_timeout_ms)
        return engine
    kwargs.setdefault("pool_size", 10)
    kwargs.setdefault("max_overflow", 20)
    # No pre-ping: it costs a round trip on every checkout. A connection the server dropped fails its
    # request once (a 503 the client retries) and is then replaced; recycling bounds their age.
    kwargs.setdefault("pool_recycle", 1800)
    return create_engine(url, echo=echo, **kwargs)


def _configure_sqlite(engine: Engine, busy_timeout_ms: int) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy's "begin" event decide how a transaction starts.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA busy_timeout={int(busy_timeout_ms)}")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Any) -> None:
        if connection.get_execution_options().get(READ_ONLY):
            connection.exec_driver_sql("BEGIN")
        else:
            connection.exec_driver_sql("BEGIN IMMEDIATE")
