"""`finloop vault` commands: key status, data-key rotation, rewrap, master-key rotation.

Each rewrap batch is its own transaction, so a rewrap of millions of cards can be interrupted and
resumed, and never holds one transaction open for long.
"""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from finloop.core.errors import FinloopError
from finloop.db.uow import Database

vault_app = typer.Typer(help="The card vault: Luhn-checked card numbers tokenized under AES-GCM with versioned, "
                             "rotatable keys.", no_args_is_help=True)
console = Console(emoji=False)


def _database() -> Database:
    from finloop.cli import database  # the CLI root imports this module, so import it when run

    return database()


def _fail(error: FinloopError) -> typer.Exit:
    console.print(f"[red]{error.message}[/red]")
    return typer.Exit(1)


@vault_app.command("status")
def status() -> None:
    """Key versions, which is active, and how many cards each protects."""
    from finloop.vault import crypto, service

    db = _database()
    try:
        with db.uow(read_only=True) as uow:
            keys = service.key_status(uow)
            pending = service.pending_rewrap(uow)
    finally:
        db.dispose()
    table = Table(title="Vault keys")
    for heading in ("id", "purpose", "version", "status", "cards", "master key", "created", "retired"):
        table.add_column(heading, no_wrap=heading == "id")
    for key in keys:
        table.add_row(key.id, key.purpose, str(key.version),
                      "[green]active[/green]" if key.status == "active" else key.status,
                      str(key.cards) if key.purpose == "data" else "", key.master_key_id,
                      key.created_at.isoformat(timespec="seconds"),
                      key.retired_at.isoformat(timespec="seconds") if key.retired_at else "")
    console.print(table)
    if not keys:
        console.print("No keys yet: the first card or secret creates them.")
    try:
        master = crypto.master_key().id
    except FinloopError as error:
        raise _fail(error) from None
    console.print(f"configured master key: {master}")
    if pending:
        console.print(f"[yellow]{pending} cards use a retired key: run `finloop vault rewrap`.[/yellow]")


@vault_app.command("rotate-key")
def rotate_key() -> None:
    """Make a new data key active; the old one keeps decrypting until `rewrap` moves its cards."""
    from finloop.vault import service

    db = _database()
    try:
        with db.uow() as uow:
            key = service.rotate_data_key(uow, actor="cli")
            pending = service.pending_rewrap(uow)
            uow.commit()
    except FinloopError as error:
        raise _fail(error) from None
    finally:
        db.dispose()
    console.print(f"Active data key is now [bold]{key.id}[/bold] (version {key.version}).")
    if pending:
        console.print(f"{pending} cards use an older key: run `finloop vault rewrap`.")


@vault_app.command("rewrap")
def rewrap(batch_size: int = typer.Option(500, min=1, max=100_000, help="Cards per transaction.")) -> None:
    """Re-encrypt every card still under a retired key with the active key, one batch per transaction."""
    from finloop.vault import service

    db = _database()
    done = 0
    try:
        with db.uow(read_only=True) as uow:
            total = service.pending_rewrap(uow)
        with Progress(TextColumn("rewrap"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                      console=console, transient=False) as progress:
            task = progress.add_task("rewrap", total=total)
            while True:
                with db.uow() as uow:
                    moved = service.rewrap(uow, batch_size=batch_size)
                    uow.commit()
                if not moved:
                    break
                done += moved
                # Cards tokenized under a key retired while this runs are rewrapped too: let the total grow.
                progress.update(task, completed=done, total=max(total, done))
    except FinloopError as error:
        raise _fail(error) from None
    finally:
        db.dispose()
    console.print(f"[green]{done} cards rewrapped.[/green]")


@vault_app.command("rotate-master-key")
def rotate_master_key(new_key_file: Path = typer.Option(
        ..., "--new-key-file", help="File with the new master key (base64); created with a fresh key (0600) "
                                    "if it does not exist.")) -> None:
    """Re-wrap every vault key under a new master key, then tell you to switch the configuration."""
    from finloop.vault import crypto, service

    try:
        old = crypto.master_key()
        new = crypto.load_key_file(new_key_file)
    except FinloopError as error:
        raise _fail(error) from None
    if new.id == old.id:
        console.print("[red]The new master key is the configured one.[/red]")
        raise typer.Exit(1)
    db = _database()
    try:
        with db.uow() as uow:
            changed = service.rotate_master_key(uow, old=old, new=new, actor="cli")
            uow.commit()
    except FinloopError as error:
        raise _fail(error) from None
    finally:
        db.dispose()
    console.print(f"{changed} vault keys re-wrapped under master key {new.id}.")
    console.print(f"[yellow]Now set FINLOOP_VAULT_MASTER_KEY to the content of {new_key_file} (or "
                  f"FINLOOP_VAULT_KEY_FILE to that file) and restart every finloop process.[/yellow]")
