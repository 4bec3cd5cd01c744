"""`finloop risk` commands of cases (registered on the risk app): the review queue and the figures."""

from __future__ import annotations

import json

import typer
from rich.table import Table

from finloop.core.errors import FinloopError
from finloop.risk.cli import _database, _fail, _instant, console, risk_app


@risk_app.command("cases")
def cases(tenant: str = typer.Option(..., help="The tenant id."),
          status: str | None = typer.Option(None, help="open, investigating or closed."),
          limit: int = typer.Option(100, min=1, max=1000, help="At most this many cases.")) -> None:
    """The review queue: the tenant's cases, oldest first."""
    from finloop.risk.cases import service

    db = _database()
    try:
        with db.uow(read_only=True) as uow:
            rows = service.list_cases(uow, tenant, status=status, limit=limit)
            table = Table("case", "status", "source", "object", "priority", "assignee", "outcome", "action",
                          "reason")
            for c in rows:
                table.add_row(c.id, c.status, c.source, f"{c.object_type} {c.object_id}", str(c.priority),
                              c.assignee or "", c.outcome or "", c.action or "", c.reason)
    except FinloopError as error:
        raise _fail(error) from None
    finally:
        db.dispose()
    console.print(table)
    console.print(f"{len(rows)} case(s).", markup=False)


@risk_app.command("figures")
def figures(tenant: str = typer.Option(..., help="The tenant id."),
            from_: str = typer.Option(..., "--from", help="Start (inclusive), YYYY-MM-DD or ISO time."),
            to: str = typer.Option(..., "--to", help="End (exclusive), YYYY-MM-DD or ISO time."),
            bucket: str = typer.Option("day", help="day or hour."),
            as_json: bool = typer.Option(False, "--json", help="Print the figures as JSON.")) -> None:
    """Hit, review, approval, decline, interception and false positive rates and losses prevented, overall
    and per rule, for a range of decisions."""
    from finloop.risk.cases import figures as dashboard

    start, end = _instant(from_, "--from"), _instant(to, "--to")
    db = _database()
    try:
        with db.uow(read_only=True) as uow:
            result = dashboard.figures(uow, tenant, from_at=start, to_at=end, bucket=bucket)
    except FinloopError as error:
        raise _fail(error) from None
    finally:
        db.dispose()
    if as_json:
        typer.echo(json.dumps(result, indent=2))
        return
    columns = ("decisions", "hits", "hit_rate", "review_rate", "approval_rate", "decline_rate", "interception_rate",
               "false_positive_rate")
    table = Table(bucket, *columns, "losses prevented")
    for row in [*result["buckets"], {"start": "total", **result["total"]}]:
        table.add_row(row["start"][:16], *(str(row[c] if row[c] is not None else "-") for c in columns),
                      ", ".join(f"{v} {k}" for k, v in sorted(row["losses_prevented"].items())))
    console.print(table)
    rules = Table("rule", "hits", "hit_rate", "review_rate", "decline_rate", "interception_rate",
                  "false_positive_rate", "losses prevented")
    for rule in result["rules"]:
        t = rule["total"]
        rules.add_row(rule["rule_id"], str(t["hits"]), *(str(t[c] if t[c] is not None else "-") for c in (
            "hit_rate", "review_rate", "decline_rate", "interception_rate", "false_positive_rate")),
            ", ".join(f"{v} {k}" for k, v in sorted(t["losses_prevented"].items())))
    console.print(rules)
