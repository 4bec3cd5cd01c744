"""`finloop risk` commands: rule sets, rule validation, backtests and one-off decisions."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.table import Table

import finloop.risk as package
from finloop.core.errors import FinloopError
from finloop.db.uow import Database

risk_app = typer.Typer(help=package.__doc__, no_args_is_help=True)
console = Console(emoji=False)


def _database() -> Database:
    from finloop.cli import database

    return database()


def _fail(error: FinloopError) -> typer.Exit:
    console.print(f"[red]{error.message}[/red]", markup=True, highlight=False)
    for issue in error.details.get("issues", []):
        console.print(f"  {issue.get('rule_id', '')} line {issue.get('line')} column {issue.get('column')} "
                      f"(offset {issue.get('position')}): {issue.get('message')}", markup=False, highlight=False)
    return typer.Exit(1)


def _instant(value: str, hint: str) -> datetime:
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise typer.BadParameter("a date (YYYY-MM-DD) or an ISO 8601 time", param_hint=hint) from None
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


def _rule_set(uow: Any, tenant: str, name_or_id: str) -> Any:
    from finloop.risk import service

    if name_or_id.startswith("rs_"):
        return service.get_rule_set(uow, tenant, name_or_id)
    return service.find_rule_set(uow, tenant, name_or_id)


@risk_app.command("rules")
def rules(tenant: str = typer.Option(..., help="The tenant id."),
          rule_set: str | None = typer.Option(None, "--rule-set", help="Only this rule set (name or id).")) -> None:
    """The tenant's rule sets, their versions, and the live version's rules."""
    from finloop.risk import service

    db = _database()
    try:
        with db.uow(read_only=True) as uow:
            sets = [_rule_set(uow, tenant, rule_set)] if rule_set else service.list_rule_sets(uow, tenant, limit=500)
            for rs in sets:
                console.print(f"[bold]{rs.name}[/bold] {rs.id} event types: {', '.join(rs.event_types) or 'all'}; "
                              f"live: {rs.live_version_id or '-'}; shadow: {rs.shadow_version_id or '-'}")
                versions = Table("version", "id", "status", "rules", "created by", "published")
                live = None
                for v in service.list_versions(uow, tenant, rs.id):
                    versions.add_row(str(v.number), v.id, v.status, str(len(v.rules)), v.created_by,
                                     v.published_at.isoformat(timespec="seconds") if v.published_at else "")
                    if v.id == rs.live_version_id:
                        live = v
                console.print(versions)
                if live is not None:
                    table = Table("rule", "score", "forces", "event types", "expression", "description")
                    for rule in live.rules:
                        table.add_row(rule["id"], str(rule["score"]), rule.get("outcome") or "",
                                      ", ".join(rule.get("event_types") or []) or "all", rule["expression"],
                                      rule.get("description", ""))
                    console.print(table)
                    console.print(f"thresholds: {json.dumps(live.thresholds)}", markup=False)
    except FinloopError as error:
        raise _fail(error) from None
    finally:
        db.dispose()


@risk_app.command("validate")
def validate(file: Path = typer.Option(..., "--file", exists=True, dir_okay=False,
                                       help="JSON: a list of rules, or {rules, thresholds}.")) -> None:
    """Check a rule file (structure, syntax and types against the risk context) without a database."""
    from finloop.risk import service
    from finloop.risk.domain import parse_thresholds

    try:
        content = json.loads(file.read_text())
    except (ValueError, UnicodeDecodeError) as error:
        console.print(f"[red]Not JSON: {error}[/red]")
        raise typer.Exit(1) from None
    rules_raw: Any = content.get("rules") if isinstance(content, dict) else content
    try:
        if isinstance(content, dict):
            parse_thresholds(content.get("thresholds"))
        issues = service.check_rules(rules_raw)
    except FinloopError as error:
        raise _fail(error) from None
    if issues:
        for issue in issues:
            console.print(f"{issue['rule_id']} line {issue['line']} column {issue['column']} (offset "
                          f"{issue['position']}): {issue['code']}: {issue['message']}", markup=False, highlight=False)
        console.print(f"[red]{len(issues)} issue(s).[/red]")
        raise typer.Exit(1)
    console.print(f"[green]{len(rules_raw or [])} rules valid.[/green]")


@risk_app.command("backtest")
def backtest(tenant: str = typer.Option(..., help="The tenant id."),
             rule_set: str = typer.Option(..., "--rule-set", help="The rule set (name or id)."),
             version: str = typer.Option(..., help="The version (number or id)."),
             from_: str = typer.Option(..., "--from", help="Start (inclusive), YYYY-MM-DD or ISO time."),
             to: str = typer.Option(..., "--to", help="End (exclusive), YYYY-MM-DD or ISO time."),
             as_json: bool = typer.Option(False, "--json", help="Print the figures as JSON.")) -> None:
    """Replay stored events of a range against a version: per rule and overall hits and rates."""
    from finloop.risk import service

    start, end = _instant(from_, "--from"), _instant(to, "--to")
    db = _database()
    try:
        with db.uow(read_only=True) as uow:
            rs = _rule_set(uow, tenant, rule_set)
            if version.isdigit():
                version_id = service.find_version(uow, tenant, rs.id, int(version)).id
            else:
                version_id = service.get_version(uow, tenant, rs.id, version).id
            result = service.backtest(uow, tenant, rs.id, version_id, from_at=start, to_at=end)
    except FinloopError as error:
        raise _fail(error) from None
    finally:
        db.dispose()
    if as_json:
        typer.echo(json.dumps(result, indent=2))
        return
    console.print(f"{result['events']} events; outcomes {result['outcomes']}; labels {result['labels']}",
                  markup=False)
    console.print(f"interception rate {result['interception_rate']} ({result['fraud_caught']}/{result['fraud']}); "
                  f"false positive rate {result['false_positive_rate']} "
                  f"({result['non_fraud_flagged']}/{result['non_fraud']})", markup=False)
    table = Table("rule", "hits", "fraud", "disputed", "refunded", "succeeded", "unlabelled")
    for r in result["rules"]:
        labels = r["labels"]
        table.add_row(r["rule_id"], str(r["hits"]), str(labels["fraud_confirmed"]), str(labels["disputed"]),
                      str(labels["refunded"]), str(labels["succeeded"]), str(labels["unlabelled"]))
    console.print(table)


@risk_app.command("decide")
def decide(tenant: str = typer.Option(..., help="The tenant id."),
           event_type: str = typer.Option(..., "--event-type", help="payment, refund, withdrawal, payout, ..."),
           event: str = typer.Option(..., help="The event as a JSON object."),
           object_ref: str | None = typer.Option(None, "--object-ref", help="The decided object's id.")) -> None:
    """Decide one event now (stored like any decision) and print it as JSON."""
    from finloop.risk import service

    try:
        payload = json.loads(event)
    except ValueError:
        raise typer.BadParameter("a JSON object", param_hint="--event") from None
    db = _database()
    try:
        with db.uow() as uow:
            decision = service.decide(uow, tenant, event_type=event_type, event=payload, object_ref=object_ref)
            uow.commit()
    except FinloopError as error:
        raise _fail(error) from None
    finally:
        db.dispose()
    typer.echo(json.dumps({
        "id": decision.id, "outcome": decision.outcome.value, "score": decision.score,
        "fired": [f.to_json() for f in decision.fired], "reasons": list(decision.reasons),
        "lists": list(decision.lists), "rule_set_version_id": decision.rule_set_version_id,
        "shadow_outcome": decision.shadow_outcome.value if decision.shadow_outcome else None}, indent=2))


@risk_app.command("starter")
def starter_pack(tenant: str = typer.Option(..., help="The tenant id."),
                 rule_set: str | None = typer.Option(None, "--rule-set",
                                                     help="Add the draft to this rule set (name or id); default: "
                                                          "the rule set 'starter', created when missing."),
                 model_threshold: int | None = typer.Option(None, "--model-threshold", min=2, max=500,
                                                            help="The model score from which a payment is "
                                                                 "reviewed (default 20)."),
                 print_only: bool = typer.Option(False, "--print", help="Print the pack as JSON (the format of "
                                                 "'risk validate --file') and write nothing.")) -> None:
    """Install the starter rule pack as a draft version: validate, backtest and publish it like any draft."""
    from finloop.risk import starter

    if print_only:
        typer.echo(json.dumps(starter.pack(model_threshold=model_threshold or starter.DEFAULT_MODEL_THRESHOLD),
                              indent=2))
        return
    db = _database()
    try:
        with db.uow() as uow:
            version = starter.install(uow, tenant, actor="cli", rule_set=rule_set, model_threshold=model_threshold)
            champion = starter.champion_threshold(uow, tenant)
            uow.commit()
            rule_set_id, version_id, number, rules = version.rule_set_id, version.id, version.number, len(version.rules)
    except FinloopError as error:
        raise _fail(error) from None
    finally:
        db.dispose()
    console.print(f"[green]Draft version {number} ({version_id}) of rule set {rule_set_id}: {rules} rules.[/green]")
    if champion is not None:
        console.print(f"The champion model's own operating threshold is {champion}; the pack reviews from "
                      f"{model_threshold or starter.DEFAULT_MODEL_THRESHOLD} (--model-threshold to change it).",
                      markup=False)
    console.print(f"Next: finloop risk backtest --tenant {tenant} --rule-set {rule_set_id} --version {number} "
                  "--from ... --to ..., then publish it (POST /v1/risk/rule-sets/{id}/versions/{version_id}/publish) "
                  "and have another risk analyst approve it.", markup=False)
