"""``finloop worker`` and ``finloop jobs``."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from sqlalchemy import update
from typer.testing import CliRunner

from finloop.cli import app
from finloop.config import get_settings
from finloop.ledger.domain import AccountType
from finloop.ledger.models import Account
from tests.ledger.helpers import open_account, transfer


@pytest.fixture
def cli(db_url, monkeypatch):
    monkeypatch.setenv("FINLOOP_DATABASE_URL", db_url)
    monkeypatch.setenv("FINLOOP_LOG_LEVEL", "WARNING")
    monkeypatch.setenv("COLUMNS", "250")
    get_settings.cache_clear()
    yield lambda *args: CliRunner().invoke(app, list(args))
    get_settings.cache_clear()


def test_worker_once_runs_the_due_jobs_and_jobs_list_shows_them(db, tenant, cli):
    result = cli("worker", "--once", "--job", "ledger.expire_holds", "--job", "outbox.drain")
    assert result.exit_code == 0, result.output
    assert "ledger.expire_holds" in result.output and "outbox.drain" in result.output

    listed = cli("jobs", "list")
    assert listed.exit_code == 0, listed.output
    lines = [line for line in listed.output.splitlines() if "(all)" in line]
    assert len(lines) == 2 and all("succeeded" in line for line in lines), listed.output

    again = cli("worker", "--once", "--job", "ledger.expire_holds")
    assert again.exit_code == 0 and "Nothing was due." in again.output


def test_worker_once_exits_non_zero_when_a_job_fails(db, tenant, cli):
    # The tenant was made at the frozen test time, months before the real clock the CLI uses, so its
    # end-of-day backlog is due; books that disagree fail the first day.
    bank = open_account(db, tenant.id, "assets:bank:main", AccountType.ASSET)
    equity = open_account(db, tenant.id, "equity:capital", AccountType.EQUITY)
    transfer(db, tenant.id, "t", bank, equity, 10)
    with db.uow() as uow:
        uow.session.execute(update(Account).where(Account.id == bank).values(debits_posted=11))
        uow.commit()
    try:
        result = cli("worker", "--once", "--job", "ledger.end_of_day")
    finally:
        with db.uow() as uow:
            uow.session.execute(update(Account).where(Account.id == bank).values(debits_posted=10))
            uow.commit()
    assert result.exit_code == 1
    assert "books_disagree" in result.output
    assert "failed" in cli("jobs", "list", "--status", "failed").output


def test_unknown_job_is_refused(db, cli):
    result = cli("worker", "--once", "--job", "nope.never")
    assert result.exit_code == 2 and "Unknown job nope.never" in result.output


def test_ctrl_c_stops_the_worker_cleanly(tmp_path: Path):
    env = {**os.environ, "FINLOOP_DATABASE_URL": f"sqlite:///{tmp_path / 'worker.db'}",
           "FINLOOP_WORKER_POLL_SECONDS": "0.2", "FINLOOP_LOG_LEVEL": "WARNING"}
    process = subprocess.Popen([sys.executable, "-m", "finloop", "worker"], env=env, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True, cwd=tmp_path)
    try:
        assert process.stdout is not None
        first = process.stdout.readline()
        assert "worker running" in first
        time.sleep(0.5)  # a few passes
        process.send_signal(signal.SIGINT)
        output, _ = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 0, output
    assert "Worker stopped." in output
    assert "Traceback" not in output
