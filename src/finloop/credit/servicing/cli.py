"""`finloop credit servicing` commands: the end of day with a progress bar, the sub-ledger check, loan accounts,
repayments and early repayment, write-off, recoveries and the provisioning policy."""

from __future__ import annotations

import json
from datetime import date

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn, TimeElapsedColumn
from rich.table import Table

from finloop.core.errors import FinloopError
from finloop.db.uow import Database

servicing_app = typer.Typer(help="Loan servicing: the end of day, repayments, write-off and the loan sub-ledger.",
                            no_args_is_help=True)
console = Console(emoji=False)


def _database() -> Database:
    from finloop.cli import database

    return database()


def _fail(error: FinloopError) -> typer.Exit:
    console.print(f"[red]{error.code}: {error.message}[/red]", markup=True, highlight=False)
    return typer.Exit(1)


@servicing_app.command("eod")
def end_of_day(tenant: str = typer.Option(..., help="The tenant id."),
               through: str = typer.Option(..., help="Close every calendar day not yet closed through this one "
                                                     "(YYYY-MM-DD)."),
               chunk: int = typer.Option(20_000, min=1, max=1_000_000, help="Loans per transaction.")) -> None:
    """Run the loan book's end of day (accrual, billing, days past due, penalties, write-off, allowance)."""
    from sqlalchemy import func, select

    from finloop.credit.servicing import eod
    from finloop.credit.servicing.domain import OPEN_STATES
    from finloop.credit.servicing.models import LoanAccount

    try:
        last = date.fromisoformat(through)
    except ValueError:
        raise typer.BadParameter("a date YYYY-MM-DD", param_hint="--through") from None
    db = _database()
    step = eod.committing(db)
    try:
        with step() as uow:
            days = eod.plan(uow, tenant, last)
    except FinloopError as error:
        raise _fail(error) from None
    with step() as uow:
        open_loans = uow.session.scalar(select(func.count()).select_from(LoanAccount).where(
            LoanAccount.tenant_id == tenant, LoanAccount.state.in_(OPEN_STATES))) or 0
    table = Table("date", "loans", "chunks", "accrued", "billed", "penalised", "late fees", "written off", "status")
    try:
        for day in days:
            with Progress(TextColumn(f"end of day {day.isoformat()}"), BarColumn(), MofNCompleteColumn(),
                          TimeElapsedColumn(), console=console, transient=True) as progress:
                task = progress.add_task("eod", total=open_loans)

                def advance(count: int, progress: Progress = progress, task: TaskID = task) -> None:
                    progress.advance(task, count)

                run = eod.run_day(step, tenant, day, chunk=chunk, progress=advance)
            counts = run.totals.get("counts", {})
            accrued = sum(v.get("interest", 0) for v in run.totals.get("sums", {}).values())
            table.add_row(day.isoformat(), str(run.loans), str(run.chunks), str(accrued),
                          str(counts.get("billed", 0)), str(counts.get("penalised", 0)),
                          str(counts.get("late_fees", 0)), str(counts.get("written_off", 0)), run.status)
    except FinloopError as error:
        console.print(table)
        raise _fail(error) from None
    console.print(table)


@servicing_app.command("check")
def check(tenant: str = typer.Option(..., help="The tenant id.")) -> None:
    """Compare the loan sub-ledger with the general ledger's loan accounts; exits 1 on any difference."""
    from finloop.credit.servicing import eod

    db = _database()
    with db.uow(read_only=True) as uow:
        problems = eod.check_subledger(uow, tenant)
    for problem in problems:
        console.print(f"[red]{problem}[/red]", markup=True, highlight=False)
    if problems:
        raise typer.Exit(1)
    console.print("The loan sub-ledger equals the general ledger.")


@servicing_app.command("accounts")
def accounts(tenant: str = typer.Option(..., help="The tenant id."),
             state: str | None = typer.Option(None, help="performing, overdue, paid_off or written_off."),
             bucket: str | None = typer.Option(None, help="M0 to M4."),
             limit: int = typer.Option(50, min=1, max=500, help="At most this many.")) -> None:
    """Loan accounts: what each loan owes and its days past due."""
    from finloop.credit.servicing import service as servicing

    db = _database()
    table = Table("loan", "state", "bucket", "dpd", "principal", "billed", "penalty", "advance", "allowance")
    with db.uow(read_only=True) as uow:
        for row in servicing.list_accounts(uow, tenant, state=state, bucket=bucket, limit=limit):
            billed = row.principal_billed + row.interest_billed + row.fees_billed
            table.add_row(row.loan_id, row.state, row.bucket, str(row.dpd), str(row.principal_outstanding),
                          str(billed), str(row.penalty_outstanding), str(row.advance_amount),
                          str(row.provision_amount))
    console.print(table)


@servicing_app.command("repay")
def repay(tenant: str = typer.Option(..., help="The tenant id."),
          loan: str = typer.Option(..., "--loan", help="The loan id."),
          amount: int = typer.Option(..., min=1, help="Minor units received."),
          reference: str = typer.Option(..., help="The payment's reference (a repeat is the same repayment)."),
          prepayment: str | None = typer.Option(None, help="reduce_installment, reduce_term or payoff.")) -> None:
    """Apply money received for a loan; prints the repayment with its allocation as JSON."""
    from finloop.credit.servicing import service as servicing
    from finloop.credit.servicing.schemas import read_repayment

    db = _database()
    try:
        with db.uow() as uow:
            shown = read_repayment(servicing.repay(uow, tenant, loan, amount=amount, reference=reference,
                                                   prepayment=prepayment, actor="cli")).model_dump_json()
            uow.commit()
    except FinloopError as error:
        raise _fail(error) from None
    typer.echo(shown)


@servicing_app.command("write-off")
def write_off(tenant: str = typer.Option(..., help="The tenant id."),
              loan: str = typer.Option(..., "--loan", help="The loan id."),
              reason: str = typer.Option(..., help="Why (fraud, deceased, settlement...).")) -> None:
    """Write a loan off now, against its allowance first."""
    from finloop.credit.servicing import service as servicing
    from finloop.credit.servicing.schemas import read_account

    db = _database()
    try:
        with db.uow() as uow:
            shown = read_account(servicing.write_off_loan(uow, tenant, loan, reason=reason,
                                                          actor="cli")).model_dump_json()
            uow.commit()
    except FinloopError as error:
        raise _fail(error) from None
    typer.echo(shown)


@servicing_app.command("provision-policy")
def provision_policy(tenant: str = typer.Option(..., help="The tenant id."),
                     policy: str | None = typer.Option(None, help="The policy as JSON, e.g. "
                                                                  "'{\"method\": \"expected_loss\"}'.")) -> None:
    """Show (or set) the provisioning policy; prints it as JSON."""
    from finloop.credit.servicing import eod
    from finloop.credit.servicing.schemas import read_policy

    db = _database()
    try:
        with db.uow() as uow:
            if policy is None:
                shown = read_policy(eod.provision_policy(uow, tenant)).model_dump_json()
            else:
                try:
                    data = json.loads(policy)
                except json.JSONDecodeError:
                    raise typer.BadParameter("a JSON object", param_hint="--policy") from None
                if not isinstance(data, dict):
                    raise typer.BadParameter("a JSON object", param_hint="--policy")
                shown = read_policy(eod.set_provision_policy(uow, tenant, data, actor="cli")).model_dump_json()
            uow.commit()
    except FinloopError as error:
        raise _fail(error) from None
    typer.echo(shown)
