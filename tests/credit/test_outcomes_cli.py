"""`finloop credit outcomes`: label (a rerun labels nothing), list, compare with the champion and retrain from
outcomes; bad input."""

from __future__ import annotations

import json

import typer
from typer.testing import CliRunner

from finloop.credit import registry
from finloop.credit.outcomes_cli import outcomes_app
from finloop.credit.scorecard import Trained
from finloop.db.uow import Database
from tests.conftest import TenantHandle
from tests.credit.conftest import install
from tests.credit.test_outcomes import add_loans, parents, simulated_book

#: The sub-app mounted as the lead mounts it under ``finloop credit``.
app = typer.Typer()
app.add_typer(outcomes_app, name="outcomes")


def test_outcomes_from_the_command_line(cli: CliRunner, db: Database, tenant: TenantHandle,
                                        platform: Trained) -> None:
    add_loans(db, parents(db, tenant.id), simulated_book(100, seed=91))
    assert cli.invoke(app, ["outcomes", "label", "--tenant", tenant.id, "--as-of", "2026-02-30"]).exit_code == 2
    labelled = cli.invoke(app, ["outcomes", "label", "--tenant", tenant.id, "--as-of", "2026-03-02"])
    assert labelled.exit_code == 0, labelled.output
    run = json.loads(labelled.stdout)
    assert (run["as_of"], run["labelled"], sum(run["outcomes"].values())) == ("2026-03-02", 100, 100)
    again = cli.invoke(app, ["outcomes", "label", "--tenant", tenant.id, "--as-of", "2026-03-02"])
    assert json.loads(again.stdout)["labelled"] == 0

    listed = cli.invoke(app, ["outcomes", "list", "--tenant", tenant.id, "--label", "default"])
    assert listed.exit_code == 0 and "lou_" in listed.stdout
    assert f"default {run['outcomes']['default']}" in listed.stdout
    assert cli.invoke(app, ["outcomes", "list", "--tenant", tenant.id, "--label", "great"]).exit_code == 2

    with db.uow() as uow:
        draft, _ = registry.register(uow, tenant.id, platform, name="applicant", actor="test")
        uow.commit()
    refused = cli.invoke(app, ["outcomes", "compare", "--tenant", tenant.id, "--model", draft.id])
    assert refused.exit_code == 1 and "no_champion_model" in refused.stdout
    champion, _ = install(db, tenant.id, platform, challenger=False)
    compared = cli.invoke(app, ["outcomes", "compare", "--tenant", tenant.id, "--model", draft.id, "--json"])
    assert compared.exit_code == 0, compared.output
    body = json.loads(compared.stdout)
    assert body["against"]["model_id"] == champion.id and body["holdout"]["loans"] == 100
    shown = cli.invoke(app, ["outcomes", "compare", "--tenant", tenant.id, "--model", draft.id])
    assert shown.exit_code == 0 and "recommendation: keep_champion" in shown.stdout and "both_approve" in shown.stdout

    retrained = cli.invoke(app, ["outcomes", "retrain", "--tenant", tenant.id, "--rounds", "10",
                                 "--holdout-share", "0"])
    assert retrained.exit_code == 0, retrained.output
    assert "v3: scorecard cmd_" in retrained.stdout and "scorecard against the champion" in retrained.stdout
    assert cli.invoke(app, ["outcomes", "retrain", "--tenant", tenant.id, "--rounds", "5"]).exit_code == 2
    as_json = cli.invoke(app, ["outcomes", "retrain", "--tenant", tenant.id, "--rounds", "10", "--name", "9x",
                               "--json"])
    assert as_json.exit_code == 1 and "invalid_model_name" in as_json.stdout
