"""`finloop credit limits`: grant, show, adjust, freeze, unfreeze, the change log, the review by hand and the
policy; bad input."""

from __future__ import annotations

import json
from datetime import date, timedelta
from pathlib import Path

from typer.testing import CliRunner

from finloop.cli import app
from finloop.db.uow import Database
from tests.conftest import TenantHandle
from tests.credit.conftest import make_applicant
from tests.credit.test_limits import rated


def test_credit_lines_from_the_command_line(cli: CliRunner, db: Database, tenant: TenantHandle,
                                            tmp_path: Path) -> None:
    # The commands run on the system clock, so no bureau report is recent for them: B, 4 × 12,000.00, × 0.5 for
    # the missing report = 24,000.00, and the applicant asks for 20,000.00.
    party = make_applicant(db, tenant.id, "alice", phone=None, bank_account=None)
    rated(db, tenant.id, party.applicant_id, "B")
    policy = tmp_path / "policy.json"
    policy.write_text(json.dumps({"review_interval_days": 7}))
    set_policy = cli.invoke(app, ["credit", "limits", "policy", "--tenant", tenant.id, "--set", str(policy)])
    assert set_policy.exit_code == 0 and json.loads(set_policy.stdout)["review_interval_days"] == 7
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"step": -1}))
    refused = cli.invoke(app, ["credit", "limits", "policy", "--tenant", tenant.id, "--set", str(bad)])
    assert refused.exit_code == 1 and "invalid_limit_policy" in refused.stdout

    granted = cli.invoke(app, ["credit", "limits", "grant", "--tenant", tenant.id, "--applicant", party.applicant_id,
                               "--requested", "20000.00"])
    assert granted.exit_code == 0, granted.output
    line = json.loads(granted.stdout)
    assert line["limit_amount"] == 2_000_000
    assert cli.invoke(app, ["credit", "limits", "grant", "--tenant", tenant.id, "--applicant", party.applicant_id,
                            "--requested", "1.001"]).exit_code == 2
    again = cli.invoke(app, ["credit", "limits", "grant", "--tenant", tenant.id, "--applicant", party.applicant_id])
    assert again.exit_code == 1 and "credit_line_exists" in again.stdout

    shown = cli.invoke(app, ["credit", "limits", "show", "--tenant", tenant.id, "--applicant", party.applicant_id])
    assert shown.exit_code == 0 and "20000.00" in shown.stdout and "requested_need" in shown.stdout
    assert cli.invoke(app, ["credit", "limits", "show", "--tenant", tenant.id]).exit_code == 2
    adjusted = cli.invoke(app, ["credit", "limits", "adjust", "--tenant", tenant.id, "--line", line["id"],
                                "--limit", "15000.00", "--note", "asked for less"])
    assert adjusted.exit_code == 0 and json.loads(adjusted.stdout)["limit_amount"] == 1_500_000
    frozen = cli.invoke(app, ["credit", "limits", "freeze", "--tenant", tenant.id, "--line", line["id"], "--note",
                              "check"])
    assert frozen.exit_code == 0 and "frozen" in frozen.stdout
    assert cli.invoke(app, ["credit", "limits", "unfreeze", "--tenant", tenant.id, "--line", line["id"]]
                      ).exit_code == 0
    assert cli.invoke(app, ["credit", "limits", "unfreeze", "--tenant", tenant.id, "--line", line["id"]]
                      ).exit_code == 1

    due = (date.fromisoformat(line["reviewed_on"]) + timedelta(days=7)).isoformat()
    early = cli.invoke(app, ["credit", "limits", "review", "--tenant", tenant.id, "--date",
                             (date.fromisoformat(due) - timedelta(days=1)).isoformat()])
    assert json.loads(early.stdout)["reviewed"] == 0
    reviewed = cli.invoke(app, ["credit", "limits", "review", "--tenant", tenant.id, "--date", due])
    assert reviewed.exit_code == 0, reviewed.output
    assert json.loads(reviewed.stdout) == {"business_date": due, "reviewed": 1, "lines": 1}
    rerun = cli.invoke(app, ["credit", "limits", "review", "--tenant", tenant.id, "--date", due])
    assert json.loads(rerun.stdout)["reviewed"] == 0
    log = cli.invoke(app, ["credit", "limits", "changes", "--tenant", tenant.id, "--line", line["id"]])
    assert log.exit_code == 0
    for text in ("granted", "asked for less", "frozen", "unfrozen", "periodic_review"):
        assert text in log.stdout
    missing = cli.invoke(app, ["credit", "limits", "changes", "--tenant", tenant.id, "--line", "cln_nope"])
    assert missing.exit_code == 1 and "credit_line_not_found" in missing.stdout
