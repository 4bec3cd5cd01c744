"""Ledger: accounts with their balances, an account's postings, an entry with what reversed it, and the
financial statements of ``ledger.reports`` (trial balance, income statement, balance sheet) as of a day or
over a period, each exportable and printable. Read-only: the ledger changes through the areas that post."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from fastapi.responses import Response
from sqlalchemy import or_, select

from finloop.console.auth import CurrentStaff, database
from finloop.console.web import (
    Column,
    Filter,
    badge,
    choice,
    csv_table,
    equals,
    html,
    listing,
    money,
    parse_day,
    reference_now,
    when,
)
from finloop.core.errors import InvalidRequest
from finloop.core.money import is_currency
from finloop.ledger import reports
from finloop.ledger import service as ledger
from finloop.ledger.domain import AccountStatus, AccountType
from finloop.ledger.models import Account, Entry, Posting
from finloop.ledger.service import AccountTotals

router = APIRouter()


def end_of(day: date) -> datetime:
    """The last instant of a UTC day: the reports count postings effective at or before ``as_of``."""
    return datetime.combine(day + timedelta(days=1), time.min, tzinfo=UTC) - timedelta(microseconds=1)


ACCOUNT_COLUMNS = (
    Column("Code", lambda a: a.code, link=lambda a: f"/console/ledger/accounts/{a.id}"),
    Column("Name", lambda a: a.name),
    Column("Type", lambda a: a.type),
    Column("Currency", lambda a: a.currency),
    Column("Status", lambda a: a.status, show=lambda a: badge(a.status)),
    Column("Posted", lambda a: ledger.balances(a).posted,
           show=lambda a: money(ledger.balances(a).posted, a.currency), numeric=True),
    Column("Pending debits", lambda a: a.debits_pending, show=lambda a: money(a.debits_pending, a.currency),
           numeric=True),
    Column("Pending credits", lambda a: a.credits_pending, show=lambda a: money(a.credits_pending, a.currency),
           numeric=True),
    Column("Available", lambda a: ledger.balances(a).available,
           show=lambda a: money(ledger.balances(a).available, a.currency), numeric=True),
    Column("Account", lambda a: a.id),
)


def _currencies(session: Any, tenant_id: str) -> list[str]:
    return list(session.scalars(select(Account.currency).where(Account.tenant_id == tenant_id).distinct()
                                .order_by(Account.currency)))


@router.get("/ledger")
def landing(request: Request, staff: CurrentStaff) -> Response:
    """The chart of accounts with balances (signed to each account's normal side)."""
    with database(request).uow(read_only=True) as uow:
        filters = (
            Filter("type", "Type", equals(Account.type), choice(*(t.value for t in AccountType))),
            Filter("currency", "Currency", equals(Account.currency),
                   choice(*_currencies(uow.session, staff.tenant_id))),
            Filter("status", "Status", equals(Account.status), choice(*(s.value for s in AccountStatus))),
        )
        return listing(request, uow.session, select(Account).where(Account.tenant_id == staff.tenant_id),
                       title="Ledger accounts", columns=ACCOUNT_COLUMNS, filters=filters,
                       order_by=(Account.code, Account.currency),
                       search=lambda q: or_(Account.code.contains(q, autoescape=True), Account.id == q),
                       search_label="account code", template="ledger/accounts.html", export_name="ledger-accounts")


def _debit(amount: int) -> int | None:
    return amount if amount > 0 else None


def _credit(amount: int) -> int | None:
    return -amount if amount < 0 else None


POSTING_COLUMNS = (
    Column("Effective", lambda p: p.effective_at, show=lambda p: when(p.effective_at)),
    Column("Entry", lambda p: p.entry_id, link=lambda p: f"/console/ledger/entries/{p.entry_id}"),
    Column("Kind", lambda p: p.kind),
    Column("Description", lambda p: p.description),
    Column("Debit", lambda p: _debit(p.amount), show=lambda p: money(_debit(p.amount), p.currency) if p.amount > 0
           else "", numeric=True),
    Column("Credit", lambda p: _credit(p.amount), show=lambda p: money(_credit(p.amount), p.currency)
           if p.amount < 0 else "", numeric=True),
    Column("Currency", lambda p: p.currency),
    Column("Posting", lambda p: p.id),
)


@router.get("/ledger/accounts/{account_id}")
def account_detail(request: Request, staff: CurrentStaff, account_id: str) -> Response:
    """An account's balances and its postings, newest first (a paged, exportable list)."""
    with database(request).uow(read_only=True) as uow:
        account = ledger.get_account(uow, staff.tenant_id, account_id)
        postings = select(
            Posting.id, Posting.entry_id, Posting.effective_at, Posting.amount, Posting.currency, Entry.kind,
            Entry.description).join(Entry, Entry.id == Posting.entry_id).where(
            Posting.tenant_id == staff.tenant_id, Entry.tenant_id == staff.tenant_id, Posting.account_id == account.id)
        return listing(request, uow.session, postings, title=f"Account {account.code}", columns=POSTING_COLUMNS,
                       order_by=(Posting.effective_at.desc(), Posting.id.desc()), scalars=False,
                       template="ledger/account.html", export_name=f"postings-{account.id}",
                       account=account, balances=ledger.balances(account))


@router.get("/ledger/entries/{entry_id}")
def entry_detail(request: Request, staff: CurrentStaff, entry_id: str) -> Response:
    """An entry's postings as debit and credit columns, what it reverses and what reversed it."""
    with database(request).uow(read_only=True) as uow:
        entry = ledger.get_entry(uow, staff.tenant_id, entry_id)
        postings = list(uow.session.execute(
            select(Posting.id, Posting.amount, Posting.currency, Account.id.label("account_id"), Account.code,
                   Account.name)
            .join(Account, Account.id == Posting.account_id)
            .where(Posting.tenant_id == staff.tenant_id, Account.tenant_id == staff.tenant_id,
                   Posting.entry_id == entry.id).order_by(Posting.id)))
        reversed_by = uow.session.scalar(select(Entry).where(Entry.tenant_id == staff.tenant_id,
                                                             Entry.reverses_id == entry.id))
        totals: dict[str, tuple[int, int]] = {}
        for posting in postings:
            debits, credits = totals.get(posting.currency, (0, 0))
            totals[posting.currency] = (debits + max(posting.amount, 0), credits + max(-posting.amount, 0))
        return html(request, "ledger/entry.html", entry=entry, postings=postings, reversed_by=reversed_by,
                    totals=totals)


# ---------------------------------------------------------------------------------------------- statements


def _optional_day(request: Request, name: str) -> date | None:
    text = request.query_params.get(name, "").strip()
    return parse_day(text, param=name) if text else None


def _day_param(request: Request, name: str, default: date) -> date:
    return _optional_day(request, name) or default


def _currency_param(request: Request) -> str | None:
    code = request.query_params.get("currency", "").strip().upper() or None
    if code is not None and not is_currency(code):
        raise InvalidRequest(f"{code} is not an ISO 4217 currency.", code="invalid_currency", param="currency")
    return code


def _wants_csv(request: Request) -> bool:
    return request.query_params.get("format") == "csv"


def _line_cells(line: AccountTotals) -> list[Any]:
    return [line.currency, line.code, line.name, line.type, line.debits, line.credits, line.balance]


LINE_HEADER = ("Currency", "Code", "Name", "Type", "Debits (minor units)", "Credits (minor units)",
               "Balance (minor units)")


@router.get("/ledger/trial-balance")
def trial_balance(request: Request, staff: CurrentStaff) -> Response:
    """Debit and credit totals of every account per currency, now or at the end of a chosen day."""
    as_of_day = _optional_day(request, "as_of")
    currency_code = _currency_param(request)
    with database(request).uow(read_only=True) as uow:
        balances = reports.trial_balance(uow, staff.tenant_id, currency_code=currency_code,
                                         as_of=end_of(as_of_day) if as_of_day else None)
        currencies = _currencies(uow.session, staff.tenant_id)
    if _wants_csv(request):
        name = f"trial-balance-{as_of_day.isoformat() if as_of_day else 'now'}"
        return csv_table(name, LINE_HEADER, (_line_cells(line) for tb in balances for line in tb.lines))
    return html(request, "ledger/trial_balance.html", title="Trial balance", balances=balances, as_of=as_of_day,
                currency=currency_code, currencies=currencies,
                export=_export_link(request, as_of=as_of_day, currency=currency_code))


def _export_link(request: Request, **chosen: date | str | None) -> str:
    """The page's address with what it shows spelled out (defaults included), asking for CSV: the export
    holds what the page shows even when the day turns between the two."""
    query = {name: str(value) for name, value in chosen.items() if value is not None}
    return request.url.path + "?" + urlencode({**query, "format": "csv"})


def _section_rows(name: str, lines: Sequence[AccountTotals]) -> Iterable[list[Any]]:
    for line in lines:
        yield [name, *_line_cells(line)]


SECTION_HEADER = ("Section", *LINE_HEADER)


@router.get("/ledger/income-statement")
def income_statement(request: Request, staff: CurrentStaff) -> Response:
    """Income and expenses of the postings effective in a period of whole UTC days (this month by default)."""
    with database(request).uow(read_only=True) as uow:
        today = reference_now(uow.session, staff, uow.clock.now()).date()
        start_day = _day_param(request, "from", today.replace(day=1))
        end_day = _day_param(request, "to", today)
        if end_day < start_day:
            raise InvalidRequest("The period ends before it starts.", code="invalid_range", param="to")
        statements = reports.income_statement(uow, staff.tenant_id, start=end_of(start_day - timedelta(days=1)),
                                              end=end_of(end_day))
    if _wants_csv(request):
        def rows() -> Iterable[list[Any]]:
            for s in statements:
                yield from _section_rows("income", s.income.lines)
                yield from _section_rows("expenses", s.expenses.lines)
        return csv_table(f"income-statement-{start_day.isoformat()}-{end_day.isoformat()}", SECTION_HEADER, rows())
    return html(request, "ledger/income_statement.html", title="Income statement", statements=statements,
                start=start_day, end=end_day, export=_export_link(request, **{"from": start_day, "to": end_day}))


@router.get("/ledger/balance-sheet")
def balance_sheet(request: Request, staff: CurrentStaff) -> Response:
    """Assets, liabilities and equity at the end of a day (today by default), with earnings retained to date."""
    with database(request).uow(read_only=True) as uow:
        as_of_day = _day_param(request, "as_of", reference_now(uow.session, staff, uow.clock.now()).date())
        sheets = reports.balance_sheet(uow, staff.tenant_id, as_of=end_of(as_of_day))
    if _wants_csv(request):
        def rows() -> Iterable[list[Any]]:
            for s in sheets:
                yield from _section_rows("assets", s.assets.lines)
                yield from _section_rows("liabilities", s.liabilities.lines)
                yield from _section_rows("equity", s.equity.lines)
                yield ["retained_earnings", s.currency, "", "", "", "", "", s.retained_earnings]
        return csv_table(f"balance-sheet-{as_of_day.isoformat()}", SECTION_HEADER, rows())
    return html(request, "ledger/balance_sheet.html", title="Balance sheet", sheets=sheets, as_of=as_of_day,
                export=_export_link(request, as_of=as_of_day))
