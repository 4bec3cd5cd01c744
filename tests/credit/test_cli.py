"""`finloop credit`: train on the German data and on simulated applicants, the registry, scoring, the monthly
re-score and stability, and bad input."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from finloop.cli import app
from finloop.db.uow import Database
from tests.conftest import TenantHandle
from tests.credit.conftest import make_applicant


def test_train_on_the_german_data_reports_held_out_metrics_of_both_models() -> None:
    result = CliRunner().invoke(app, ["credit", "train", "--dataset", "german", "--json", "--top", "5"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["split"]["test_rows"] == 300 and report["registered"] is None
    assert 0.74 <= report["scorecard"]["auc"] <= 0.82
    for model in ("scorecard", "gbm"):
        assert {"auc", "ks", "gini"} <= set(report[model])
    assert report["iv"][0]["feature"] == "status_of_existing_checking_account" and len(report["iv"]) == 5
    table = CliRunner().invoke(app, ["credit", "train", "--dataset", "german", "--rounds", "30"])
    assert table.exit_code == 0 and "Held-out metrics" in table.stdout and "Information value" in table.stdout
    assert "not registered" in table.stdout


def test_bad_training_options_are_refused() -> None:
    runner = CliRunner()
    assert runner.invoke(app, ["credit", "train", "--dataset", "mnist"]).exit_code == 2
    assert runner.invoke(app, ["credit", "train", "--dataset", "german", "--promote"]).exit_code == 2
    assert runner.invoke(app, ["credit", "train", "--dataset", "german", "--pdo", "abc"]).exit_code == 2
    refused = runner.invoke(app, ["credit", "train", "--dataset", "german", "--pdo", "0"])
    assert refused.exit_code == 1 and "invalid_scaling" in refused.stdout


def test_register_score_rescore_and_stability(cli: CliRunner, db: Database, tenant: TenantHandle) -> None:
    parties = [make_applicant(db, tenant.id, f"c{i}", national_id=f"3301061985010{i:05d}") for i in range(3)]
    trained = cli.invoke(app, ["credit", "train", "--dataset", "platform", "--rows", "1500", "--rounds", "30",
                               "--tenant", tenant.id, "--promote", "--json"])
    assert trained.exit_code == 0, trained.output
    registered = json.loads(trained.stdout)["registered"]
    assert registered["scorecard"]["status"] == "champion" and registered["gbm"]["status"] == "challenger"
    listed = cli.invoke(app, ["credit", "models", "--tenant", tenant.id])
    assert registered["scorecard"]["id"] in listed.stdout and "challenger" in listed.stdout
    scored = cli.invoke(app, ["credit", "score", "--tenant", tenant.id, "--applicant", parties[0].applicant_id])
    assert scored.exit_code == 0 and json.loads(scored.stdout)["model_id"] == registered["scorecard"]["id"]
    first = cli.invoke(app, ["credit", "rescore", "--tenant", tenant.id, "--month", "2026-03"])
    assert first.exit_code == 0, first.output
    assert json.loads(first.stdout)["scored"] == 3 and json.loads(first.stdout)["stability"]["scores"] == 3
    again = cli.invoke(app, ["credit", "rescore", "--tenant", tenant.id, "--month", "2026-03"])
    assert json.loads(again.stdout)["scored"] == 0
    stability = cli.invoke(app, ["credit", "stability", "--tenant", tenant.id, "--model",
                                 registered["gbm"]["id"], "--month", "2026-03"])
    assert stability.exit_code == 0 and json.loads(stability.stdout)["scores"] == 3
    promoted = cli.invoke(app, ["credit", "promote", "--tenant", tenant.id, "--model", registered["gbm"]["id"]])
    assert promoted.exit_code == 0 and "champion" in promoted.stdout
    for bad in (["credit", "promote", "--tenant", tenant.id, "--model", "cmd_nope"],
                ["credit", "rescore", "--tenant", tenant.id, "--month", "2026-3"],
                ["credit", "score", "--tenant", tenant.id, "--applicant", "apl_nope"]):
        result = cli.invoke(app, bad)
        assert result.exit_code == 1, (bad, result.output)
