"""Unit of work: one use case, one transaction.

Entry points (a request, a job, a command) open a unit of work and commit it; services receive it,
``flush`` when they need ids, and never commit. Leaving the block without ``commit()`` rolls back.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from finloop.core.clock import Clock, SystemClock
from finloop.core.ids import IdFactory
from finloop.db.session import READ_ONLY, make_engine


@dataclass
class UnitOfWork:
    session: Session
    clock: Clock
    ids: IdFactory
    read_only: bool = False
    _committed: bool = field(default=False, init=False)

    @property
    def dialect(self) -> str:
        return self.session.get_bind().dialect.name

    def commit(self) -> None:
        if self.read_only:
            raise RuntimeError("a read-only unit of work cannot commit")
        self.session.commit()
        self._committed = True

    def rollback(self) -> None:
        self.session.rollback()


class Database:
    """An engine plus the clock and id factory every unit of work carries."""

    def __init__(self, url: str, *, clock: Clock | None = None, ids: IdFactory | None = None,
                 engine: Engine | None = None, **engine_kwargs: Any) -> None:
        self.url = url
        self.engine = engine or make_engine(url, **engine_kwargs)
        self.clock: Clock = clock or SystemClock()
        self.ids = ids or IdFactory()
        self._writer = sessionmaker(bind=self.engine, expire_on_commit=False, autoflush=False)
        self._reader = sessionmaker(bind=self.engine.execution_options(**{READ_ONLY: True}),
                                    expire_on_commit=False, autoflush=False)
        # One statement needs no transaction: on PostgreSQL this saves BEGIN and ROLLBACK round trips.
        # SQLite keeps its deferred read transaction (its BEGIN is local and costs nothing).
        self._single_reader = sessionmaker(
            bind=self.engine.execution_options(isolation_level="AUTOCOMMIT", **{READ_ONLY: True})
            if self.engine.dialect.name == "postgresql" else self.engine.execution_options(**{READ_ONLY: True}),
            expire_on_commit=False, autoflush=False)

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    @contextmanager
    def uow(self, *, read_only: bool = False, single_statement: bool = False) -> Iterator[UnitOfWork]:
        """A unit of work; ``single_statement`` is for a read of one statement, which needs no snapshot."""
        factory = self._single_reader if single_statement else self._reader if read_only else self._writer
        session = factory()
        unit = UnitOfWork(session=session, clock=self.clock, ids=self.ids, read_only=read_only or single_statement)
        try:
            yield unit
        finally:
            # A reader changed nothing: closing ends its transaction without expiring what it loaded, so the
            # objects stay readable (a page renders them after the unit of work).
            if session.in_transaction() and not unit.read_only:
                session.rollback()
            session.close()

    def dispose(self) -> None:
        self.engine.dispose()
