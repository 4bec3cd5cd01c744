"""`finloop credit collections` commands: run a day's collections, list and work cases (assign, escalate, note,
promise), the strategy, reminders and the monthly credit bureau file."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from finloop.core.errors import FinloopError
from finloop.db.uow import Database

collections_app = typer.Typer(help="Collections: cases per past-due loan, the strategy per bucket, promises to pay, "
                                   "repayment reminders and the credit bureau file.", no_args_is_help=True)
console = Console(emoji=False)


def _database() -> Database:
    from finloop.cli import database

    return database()


def _fail(error: FinloopError) -> typer.Exit:
    console.print(f"[red]{error.code}: {error.message}[/red]", markup=True, highlight=False)
    return typer.Exit(1)


def _date(value: str, hint: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise typer.BadParameter("a date, YYYY-MM-DD", param_hint=hint) from None


@collections_app.command("run")
def run(tenant: str = typer.Option(..., help="The tenant id."),
        business_date: str = typer.Option(..., "--date", help="The business date, YYYY-MM-DD.")) -> None:
    """Run the day's collections now (what the credit.collections job does, bureau file aside); prints the
    counts as JSON."""
    from finloop.credit.collections import service

    day = _date(business_date, "--date")
    try:
        result = service.run_day(_database(), tenant, day)
    except FinloopError as error:
        raise _fail(error) from None
    typer.echo(json.dumps(result.to_json()))


@collections_app.command("cases")
def cases(tenant: str = typer.Option(..., help="The tenant id."),
          status: str | None = typer.Option("open", help="open, cured or written_off (empty: all)."),
          queue: str | None = typer.Option(None, help="automatic or manual."),
          limit: int = typer.Option(50, min=1, max=500, help="At most this many.")) -> None:
    """Collection cases with their bucket, days past due, queue and assignee."""
    from finloop.credit.collections import service

    db = _database()
    table = Table("id", "loan", "status", "queue", "bucket", "dpd", "overdue", "assignee", "opened")
    with db.uow(read_only=True) as uow:
        for c in service.list_cases(uow, tenant, status=status or None, queue=queue, limit=limit):
            table.add_row(c.id, c.loan_id, c.status, c.queue, c.bucket, str(c.dpd),
                          f"{c.overdue_amount} {c.currency}", c.assignee_id or "-", c.opened_on.isoformat())
    console.print(table)


@collections_app.command("show")
def show(tenant: str = typer.Option(..., help="The tenant id."),
         case: str = typer.Option(..., "--case", help="The case id.")) -> None:
    """One case as JSON, with its actions, notes and promises."""
    from finloop.credit.collections import schemas, service

    db = _database()
    try:
        with db.uow(read_only=True) as uow:
            row = service.get_case(uow, tenant, case)
            shown = {"case": schemas.read_case(row).model_dump(mode="json"),
                     "actions": [schemas.read_action(a).model_dump(mode="json")
                                 for a in service.list_actions(uow, tenant, case, limit=500)],
                     "notes": [schemas.read_note(n).model_dump(mode="json")
                               for n in service.list_notes(uow, tenant, case, limit=500)],
                     "promises": [schemas.read_promise(p).model_dump(mode="json")
                                  for p in service.list_promises(uow, tenant, case_id=case, limit=500)]}
    except FinloopError as error:
        raise _fail(error) from None
    typer.echo(json.dumps(shown))


def _work(tenant: str, case: str, what: str, **kwargs: object) -> None:
    from finloop.credit.collections import schemas, service

    db = _database()
    try:
        with db.uow() as uow:
            if what == "assign":
                row = service.assign(uow, tenant, case, assignee_id=kwargs["assignee"], actor="cli")
            elif what == "escalate":
                row = service.escalate(uow, tenant, case, reason=kwargs["reason"], actor="cli")
            else:
                raise AssertionError(what)
            shown = schemas.read_case(row).model_dump_json()
            uow.commit()
    except FinloopError as error:
        raise _fail(error) from None
    typer.echo(shown)


@collections_app.command("assign")
def assign(tenant: str = typer.Option(..., help="The tenant id."),
           case: str = typer.Option(..., "--case", help="The case id."),
           user: str = typer.Option(..., "--user", help="The tenant user working the case.")) -> None:
    """Give an open case to a user (it joins the manual queue)."""
    _work(tenant, case, "assign", assignee=user)


@collections_app.command("escalate")
def escalate(tenant: str = typer.Option(..., help="The tenant id."),
             case: str = typer.Option(..., "--case", help="The case id."),
             reason: str = typer.Option("manual", help="Why (up to 40 characters).")) -> None:
    """Escalate an open case to the manual queue."""
    _work(tenant, case, "escalate", reason=reason)


@collections_app.command("note")
def note(tenant: str = typer.Option(..., help="The tenant id."),
         case: str = typer.Option(..., "--case", help="The case id."),
         body: str = typer.Option(..., help="The note."),
         author: str = typer.Option("cli", help="Who writes it.")) -> None:
    """Add a note to a case."""
    from finloop.credit.collections import schemas, service

    db = _database()
    try:
        with db.uow() as uow:
            shown = schemas.read_note(service.add_note(uow, tenant, case, body=body, author=author)).model_dump_json()
            uow.commit()
    except FinloopError as error:
        raise _fail(error) from None
    typer.echo(shown)


@collections_app.command("promise")
def promise(tenant: str = typer.Option(..., help="The tenant id."),
            case: str = typer.Option(..., "--case", help="The case id."),
            amount: int = typer.Option(..., min=1, help="Minor units promised."),
            by: str = typer.Option(..., "--by", help="The date promised, YYYY-MM-DD.")) -> None:
    """Record a promise to pay on an open case."""
    from finloop.credit.collections import schemas, service

    day = _date(by, "--by")
    db = _database()
    try:
        with db.uow() as uow:
            shown = schemas.read_promise(service.promise(uow, tenant, case, amount=amount, promised_on=day,
                                                         actor="cli")).model_dump_json()
            uow.commit()
    except FinloopError as error:
        raise _fail(error) from None
    typer.echo(shown)


@collections_app.command("policy")
def policy(tenant: str = typer.Option(..., help="The tenant id."),
           file: Path | None = typer.Option(None, help="A JSON file of rules per bucket M1..M4 to set.")) -> None:
    """Show (or set from a file) the collection strategy; prints it as JSON."""
    from finloop.credit.collections import schemas, service

    rules = None
    if file is not None:
        try:
            rules = json.loads(file.read_text())
        except (OSError, ValueError) as error:
            raise typer.BadParameter(f"a readable JSON file ({error})", param_hint="--file") from None
    db = _database()
    try:
        with db.uow() as uow:
            row = service.policy_row(uow, tenant) if rules is None else service.set_policy(uow, tenant, rules,
                                                                                          actor="cli")
            shown = schemas.read_policy(row).model_dump_json()
            uow.commit()
    except FinloopError as error:
        raise _fail(error) from None
    typer.echo(shown)


@collections_app.command("reminders")
def reminders(tenant: str = typer.Option(..., help="The tenant id."),
              loan: str | None = typer.Option(None, "--loan", help="Only this loan's."),
              limit: int = typer.Option(50, min=1, max=500, help="At most this many.")) -> None:
    """Repayment reminders: installment, kind, due date, amount and the SMS's status."""
    from finloop.credit.collections import service

    db = _database()
    table = Table("id", "loan", "#", "kind", "due on", "amount due", "sms", "event")
    with db.uow(read_only=True) as uow:
        for r in service.list_reminders(uow, tenant, loan_id=loan, limit=limit):
            table.add_row(r.id, r.loan_id, str(r.installment_number), r.kind, r.due_on.isoformat(),
                          f"{r.amount_due} {r.currency}", r.sms_status, r.message_id)
    console.print(table)


@collections_app.command("bureau-export")
def bureau_export_command(tenant: str = typer.Option(..., help="The tenant id."),
                          cycle: str = typer.Option(..., help="The month, YYYY-MM."),
                          out: Path | None = typer.Option(None, help="Write the file here too.")) -> None:
    """Make (or fetch, if made before) the credit bureau file of a closed month; prints its summary as JSON."""
    from finloop.credit.collections import bureau_export, schemas

    db = _database()
    try:
        with db.uow() as uow:
            row = bureau_export.export_cycle(uow, tenant, cycle, actor="cli")
            shown, content = schemas.read_export(row).model_dump_json(), row.content
            uow.commit()
    except FinloopError as error:
        raise _fail(error) from None
    if out is not None:
        out.write_bytes(content.encode())
    typer.echo(shown)
