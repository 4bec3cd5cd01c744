"""Test fixtures: every database test runs twice, on SQLite and on PostgreSQL, built by the migrations.

PostgreSQL is not optional: when the server at FINLOOP_TEST_POSTGRES_URL cannot be reached, the
database tests fail instead of being skipped. After every database test the books are checked:
postings sum to zero per currency and every account's running sums equal its postings and holds.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from contextlib import ExitStack
from datetime import UTC, datetime
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text
from typer.testing import CliRunner

from finloop.config import Settings, get_settings
from finloop.core.clock import FrozenClock
from finloop.db.base import Base, load_all_models
from finloop.db.migrate import scratch_database, upgrade
from finloop.db.uow import Database

# Rich sizes the CLI's consoles when they are created, at import: wide enough that no test reads a cell cut short.
os.environ["COLUMNS"] = "250"
POSTGRES_URL = os.environ.get("FINLOOP_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
#: A Monday morning, so business-date tests read naturally.
T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
BACKENDS = ["sqlite", "postgresql"]


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("sqlite") / "template.db"
    upgrade(f"sqlite:///{path}")
    return path


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A fresh database for this test session on the PostgreSQL server, migrated to head."""
    with ExitStack() as stack:
        try:
            url = stack.enter_context(scratch_database(POSTGRES_URL, "finloop_test"))
        except Exception as error:
            pytest.fail(f"PostgreSQL at {POSTGRES_URL} is required for the database tests and is unreachable: "
                        f"{error}")
        yield url


@pytest.fixture(scope="session")
def postgres_database(postgres_url: str) -> Iterator[Database]:
    database = Database(postgres_url)
    yield database
    database.dispose()


def _truncate_all(database: Database) -> None:
    load_all_models()
    tables = ", ".join(f'"{t.name}"' for t in Base.metadata.sorted_tables)
    with database.engine.begin() as connection:
        connection.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))


@pytest.fixture(autouse=True)
def _vault_master_key() -> Iterator[None]:
    """Every test seals with its own master key: nothing reads or writes a key file in the working directory."""
    from finloop.vault import crypto
    from finloop.vault import service as vault

    crypto.use_master_key(crypto.MasterKey.generate())
    vault._cache.clear()
    yield
    crypto.use_master_key(None)
    vault._cache.clear()


@pytest.fixture
def clock() -> FrozenClock:
    return FrozenClock(T0)


@pytest.fixture(params=BACKENDS)
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        path = tmp_path / "finloop.db"
        shutil.copy(request.getfixturevalue("sqlite_template"), path)
        return f"sqlite:///{path}"
    database: Database = request.getfixturevalue("postgres_database")
    _truncate_all(database)
    return str(request.getfixturevalue("postgres_url"))


@pytest.fixture
def db(db_url: str, clock: FrozenClock, request: pytest.FixtureRequest) -> Iterator[Database]:
    if db_url.startswith("sqlite"):
        database = Database(db_url, clock=clock)
    else:
        shared: Database = request.getfixturevalue("postgres_database")
        database = Database(db_url, clock=clock, engine=shared.engine)
    yield database
    assert_books_balance(database)
    if db_url.startswith("sqlite"):
        database.dispose()


def assert_books_balance(database: Database) -> None:
    from finloop.ledger.service import verify_integrity

    with database.uow(read_only=True) as uow:
        problems = verify_integrity(uow)
    assert problems == [], problems


@pytest.fixture
def settings(db_url: str) -> Settings:
    return Settings(database_url=db_url, log_json=True, log_level="WARNING")


@pytest.fixture
def app(settings: Settings, db: Database):  # type: ignore[no-untyped-def]
    from finloop.app import create_app

    return create_app(settings, database=db, access_log=False)


@pytest.fixture
def client(app) -> Iterator[TestClient]:  # type: ignore[no-untyped-def]
    with TestClient(app, raise_server_exceptions=False) as test_client:
        yield test_client


@pytest.fixture
def cli(db_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[CliRunner]:
    """A CLI runner whose ``finloop`` commands use the test's database."""
    monkeypatch.setenv("FINLOOP_DATABASE_URL", db_url)
    get_settings.cache_clear()
    yield CliRunner()
    get_settings.cache_clear()


class TenantHandle:
    def __init__(self, tenant_id: str, secret: str) -> None:
        self.id = tenant_id
        self.secret = secret
        self.headers = {"Authorization": f"Bearer {secret}"}


def make_tenant(database: Database, name: str = "Acme", **kwargs: object) -> TenantHandle:
    from finloop.tenancy import service as tenancy
    from finloop.tenancy.service import Role

    with database.uow() as uow:
        tenant = tenancy.create_tenant(uow, name=name, actor="test", **kwargs)  # type: ignore[arg-type]
        _, secret = tenancy.issue_api_key(uow, tenant.id, name="test", role=Role.ADMIN, actor="test")
        uow.commit()
    return TenantHandle(tenant.id, secret)


@pytest.fixture
def tenant(db: Database) -> TenantHandle:
    return make_tenant(db)


@pytest.fixture
def other_tenant(db: Database) -> TenantHandle:
    return make_tenant(db, "Other Co")
