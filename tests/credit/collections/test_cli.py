"""`finloop credit collections`: run a day, list and show cases, work a case (note, promise, escalate), the
strategy from a file, reminders and the bureau file written to disk; errors exit 1 with their code."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from typer.testing import CliRunner

from finloop.credit.collections.cli import collections_app
from finloop.db.uow import Database
from finloop.payouts.bank_sandbox import SandboxBank
from tests.conftest import TenantHandle
from tests.credit.collections.conftest import lending, loan, month_closed, set_account


def test_collections_cli(cli: CliRunner, db: Database, tenant: TenantHandle, bank: SandboxBank,
                         tmp_path: Path) -> None:
    lending(db, tenant.id)
    loan_id = loan(db, tenant.id)
    set_account(db, loan_id, dpd=31)
    ran = cli.invoke(collections_app, ["run", "--tenant", tenant.id, "--date", "2026-03-02"])
    assert ran.exit_code == 0, ran.output
    assert json.loads(ran.output) == {"opened": 1, "cured": 0, "written_off": 0, "kept": 0, "broken": 0,
                                          "actions": 2, "reminders": 0, "sent": 2}
    listed = cli.invoke(collections_app, ["cases", "--tenant", tenant.id])
    assert listed.exit_code == 0 and loan_id in listed.output and "M2" in listed.output
    from finloop.credit.collections import service

    with db.uow(read_only=True) as uow:
        case_id = service.list_cases(uow, tenant.id)[0].id
    noted = cli.invoke(collections_app, ["note", "--tenant", tenant.id, "--case", case_id, "--body", "Called."])
    assert noted.exit_code == 0 and json.loads(noted.output)["seq"] == 1
    by = (datetime.now(UTC).date() + timedelta(days=2)).isoformat()  # the CLI runs on the real clock
    promised = cli.invoke(collections_app, ["promise", "--tenant", tenant.id, "--case", case_id, "--amount", "500",
                                            "--by", by])
    assert promised.exit_code == 0 and json.loads(promised.output)["status"] == "pending"
    late = cli.invoke(collections_app, ["promise", "--tenant", tenant.id, "--case", case_id, "--amount", "500",
                                        "--by", by])
    assert late.exit_code == 1 and "promise_pending" in late.output
    escalated = cli.invoke(collections_app, ["escalate", "--tenant", tenant.id, "--case", case_id,
                                             "--reason", "hardship"])
    assert escalated.exit_code == 0 and json.loads(escalated.output)["queue"] == "manual"
    shown = json.loads(cli.invoke(collections_app, ["show", "--tenant", tenant.id, "--case", case_id]).output)
    assert [a["kind"] for a in shown["actions"]] == ["sms", "call", "escalate"]
    assert len(shown["notes"]) == 1 and len(shown["promises"]) == 1
    missing = cli.invoke(collections_app, ["assign", "--tenant", tenant.id, "--case", case_id, "--user", "usr_x"])
    assert missing.exit_code == 1 and "user_not_found" in missing.output

    rules = tmp_path / "rules.json"
    rules.write_text(json.dumps({"M1": {"sms_on_dpd": [2]}}))
    policy = cli.invoke(collections_app, ["policy", "--tenant", tenant.id, "--file", str(rules)])
    assert policy.exit_code == 0 and json.loads(policy.output)["rules"]["M1"]["sms_on_dpd"] == [2]
    rules.write_text(json.dumps({"M1": {"sms_on_dpd": [99]}}))
    bad = cli.invoke(collections_app, ["policy", "--tenant", tenant.id, "--file", str(rules)])
    assert bad.exit_code == 1 and "invalid_strategy" in bad.output

    reminders = cli.invoke(collections_app, ["reminders", "--tenant", tenant.id])
    assert reminders.exit_code == 0 and "8005" not in reminders.output

    early = cli.invoke(collections_app, ["bureau-export", "--tenant", tenant.id, "--cycle", "2026-03"])
    assert early.exit_code == 1 and "cycle_not_closed" in early.output
    month_closed(db, tenant.id, loan_id, "2026-03", date(2026, 4, 1), dpd=31)
    out = tmp_path / "bureau.csv"
    made = cli.invoke(collections_app, ["bureau-export", "--tenant", tenant.id, "--cycle", "2026-03",
                                        "--out", str(out)])
    assert made.exit_code == 0, made.output
    assert json.loads(made.output)["sha256"] == hashlib.sha256(out.read_bytes()).hexdigest()
    assert out.read_text().splitlines()[1].split(",")[11] == "2"
