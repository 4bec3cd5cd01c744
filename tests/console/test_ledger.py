"""The ledger pages: accounts and their postings, an entry and its reversal, and the financial statements,
whose figures must be the ledger's own."""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from datetime import date, timedelta

from finloop.console.pages.ledger import end_of
from finloop.core.clock import FrozenClock
from finloop.db.uow import Database
from finloop.ledger import reports
from finloop.ledger import service as ledger
from finloop.ledger.domain import AccountType
from tests.conftest import TenantHandle
from tests.console.conftest import sign_in
from tests.ledger.helpers import open_account, transfer

DAY1 = date(2026, 3, 2)  # the clock's first day (T0)
DAY3 = date(2026, 3, 4)


@dataclass
class Books:
    cash: str
    usd_cash: str
    sales: str
    fees: str
    merchant: str
    capital: str
    owner_funds: str  # the capital paid in on day 1
    refundable: str  # an entry reversed on day 3
    reversal: str


def _books(db: Database, tenant_id: str, clock: FrozenClock) -> Books:
    """Day 1: capital 1,000.00 and sales 50.00 in cash; day 3: fees 12.00, and a 7.00 merchant entry reversed."""
    cash = open_account(db, tenant_id, "assets:cash", AccountType.ASSET)
    usd_cash = open_account(db, tenant_id, "assets:cash", AccountType.ASSET, currency="USD")
    sales = open_account(db, tenant_id, "income:sales", AccountType.INCOME)
    fees = open_account(db, tenant_id, "expenses:fees", AccountType.EXPENSE)
    merchant = open_account(db, tenant_id, "liabilities:merchant", AccountType.LIABILITY)
    capital = open_account(db, tenant_id, "equity:capital", AccountType.EQUITY)
    owner_funds = transfer(db, tenant_id, "capital", cash, capital, 100_000)
    transfer(db, tenant_id, "sale", cash, sales, 5_000)
    clock.advance(timedelta(days=2))
    transfer(db, tenant_id, "fee", fees, cash, 1_200)
    refundable = transfer(db, tenant_id, "owed", cash, merchant, 700)
    with db.uow() as uow:
        reversal = ledger.reverse_entry(uow, tenant_id, refundable).id
        uow.commit()
    return Books(cash, usd_cash, sales, fees, merchant, capital, owner_funds, refundable, reversal)


def _rows(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text)))


def test_accounts_search_filters_and_csv(db: Database, tenant: TenantHandle, clock: FrozenClock,
                                         staff_factory) -> None:  # type: ignore[no-untyped-def]
    books = _books(db, tenant.id, clock)
    auditor = staff_factory("auditor")
    page = auditor.get("/console/ledger")
    assert page.status_code == 200
    assert "assets:cash" in page.text and "CNY 1,038.00" in page.text and "Trial balance" in page.text

    def shown(**params: str) -> dict[str, dict[str, str]]:
        answer = auditor.get("/console/ledger", params={**params, "format": "csv"})
        assert answer.status_code == 200 and answer.headers["content-type"].startswith("text/csv")
        return {row["Account"]: row for row in _rows(answer.text)}

    everything = shown()
    assert set(everything) == {books.cash, books.usd_cash, books.sales, books.fees, books.merchant, books.capital}
    assert (everything[books.cash]["Posted"], everything[books.cash]["Available"]) == ("103800", "103800")
    assert everything[books.sales]["Posted"] == "5000"  # signed to the income account's credit side
    assert set(shown(q="cash")) == {books.cash, books.usd_cash}
    assert set(shown(type="income")) == {books.sales}
    assert set(shown(currency="USD")) == {books.usd_cash}
    assert set(shown(q="cash", currency="CNY")) == {books.cash}


def test_an_account_shows_its_balances_and_pages_its_postings(db: Database, tenant: TenantHandle, clock: FrozenClock,
                                                              staff_factory) -> None:  # type: ignore[no-untyped-def]
    books = _books(db, tenant.id, clock)
    auditor = staff_factory("auditor")
    where = f"/console/ledger/accounts/{books.cash}"
    page = auditor.get(where)
    assert page.status_code == 200
    assert "CNY 1,038.00" in page.text and "Available" in page.text and "Pending" in page.text
    first = auditor.get(where, params={"size": "2"})
    assert "page 1 of 3" in first.text and 'rel="next"' in first.text
    assert books.reversal in first.text and books.owner_funds not in first.text  # newest first
    last = auditor.get(where, params={"size": "2", "page": "3"})
    assert books.owner_funds in last.text
    postings = _rows(auditor.get(where, params={"format": "csv"}).text)
    assert len(postings) == 5
    assert sum(int(row["Debit"] or 0) - int(row["Credit"] or 0) for row in postings) == 103_800


def test_an_entry_shows_debits_credits_and_its_reversal(db: Database, tenant: TenantHandle, clock: FrozenClock,
                                                        staff_factory) -> None:  # type: ignore[no-untyped-def]
    books = _books(db, tenant.id, clock)
    auditor = staff_factory("auditor")
    entry = auditor.get(f"/console/ledger/entries/{books.refundable}")
    assert entry.status_code == 200
    assert "Reversed by" in entry.text and f"/console/ledger/entries/{books.reversal}" in entry.text
    assert "liabilities:merchant" in entry.text and entry.text.count("CNY 7.00") == 4  # two postings, two totals
    reversal = auditor.get(f"/console/ledger/entries/{books.reversal}")
    assert "This entry reverses" in reversal.text and f"/console/ledger/entries/{books.refundable}" in reversal.text
    plain = auditor.get(f"/console/ledger/entries/{books.owner_funds}")
    assert "Not reversed" in plain.text and "CNY 1,000.00" in plain.text
    assert auditor.get("/console/ledger/entries/je_missing").status_code == 404


def test_the_trial_balance_totals_are_the_ledgers(db: Database, tenant: TenantHandle, clock: FrozenClock,
                                                  staff_factory) -> None:  # type: ignore[no-untyped-def]
    _books(db, tenant.id, clock)
    auditor = staff_factory("auditor")
    with db.uow(read_only=True) as uow:
        now = {tb.currency: tb for tb in reports.trial_balance(uow, tenant.id)}
        day1 = {tb.currency: tb for tb in reports.trial_balance(uow, tenant.id, as_of=end_of(DAY1))}
    assert now["CNY"].total_debits != day1["CNY"].total_debits  # day 3 moved money: the chooser matters
    for params, expected in (({}, now), ({"as_of": DAY1.isoformat()}, day1)):
        page = auditor.get("/console/ledger/trial-balance", params=params)
        assert page.status_code == 200
        for code, tb in expected.items():
            assert tb.balanced
            assert f'data-total-debits="{tb.total_debits}"' in page.text
            assert f'data-total-credits="{tb.total_credits}"' in page.text
            assert f'<table data-currency="{code}">' in page.text
        exported = _rows(auditor.get("/console/ledger/trial-balance", params={**params, "format": "csv"}).text)
        cny = [row for row in exported if row["Currency"] == "CNY"]
        assert sum(int(row["Debits (minor units)"]) for row in cny) == expected["CNY"].total_debits
        assert sum(int(row["Credits (minor units)"]) for row in cny) == expected["CNY"].total_credits
    only_usd = auditor.get("/console/ledger/trial-balance", params={"currency": "USD"})
    assert 'data-currency="USD"' in only_usd.text and 'data-currency="CNY"' not in only_usd.text
    bad_day = auditor.get("/console/ledger/trial-balance", params={"as_of": "yesterday"})
    assert bad_day.status_code == 400 and "invalid_date" in bad_day.text
    assert auditor.get("/console/ledger/trial-balance", params={"currency": "ZZZ"}).status_code == 400


def test_income_statement_and_balance_sheet_over_chosen_days(db: Database, tenant: TenantHandle, clock: FrozenClock,
                                                             staff_factory) -> None:  # type: ignore[no-untyped-def]
    _books(db, tenant.id, clock)
    auditor = staff_factory("auditor")
    day1 = auditor.get("/console/ledger/income-statement", params={"from": "2026-03-02", "to": "2026-03-02"})
    assert day1.status_code == 200 and 'data-net-income="5000"' in day1.text
    later = auditor.get("/console/ledger/income-statement", params={"from": "2026-03-03", "to": "2026-03-04"})
    assert 'data-net-income="-1200"' in later.text and 'data-amount="1200"' in later.text
    this_month = auditor.get("/console/ledger/income-statement")  # the month to date by default
    assert 'data-net-income="3800"' in this_month.text
    rows = _rows(auditor.get("/console/ledger/income-statement",
                             params={"from": "2026-03-01", "to": "2026-03-31", "format": "csv"}).text)
    assert {(row["Section"], row["Code"], row["Balance (minor units)"]) for row in rows} == {
        ("income", "income:sales", "5000"), ("expenses", "expenses:fees", "1200")}
    backwards = auditor.get("/console/ledger/income-statement", params={"from": "2026-03-04", "to": "2026-03-02"})
    assert backwards.status_code == 400 and "invalid_range" in backwards.text

    sheet = auditor.get("/console/ledger/balance-sheet", params={"as_of": DAY3.isoformat()})
    assert sheet.status_code == 200 and "out of balance" not in sheet.text
    assert 'data-retained-earnings="3800"' in sheet.text and 'data-amount="103800"' in sheet.text
    first_day = auditor.get("/console/ledger/balance-sheet", params={"as_of": DAY1.isoformat()})
    assert 'data-retained-earnings="5000"' in first_day.text and 'data-amount="105000"' in first_day.text
    exported = _rows(auditor.get("/console/ledger/balance-sheet",
                                 params={"as_of": DAY3.isoformat(), "format": "csv"}).text)
    assert ["retained_earnings", "CNY", "3800"] in [[r["Section"], r["Currency"], r["Balance (minor units)"]]
                                                   for r in exported]


def test_another_tenants_accounts_and_entries_are_not_found(app, db: Database, tenant: TenantHandle,  # type: ignore[no-untyped-def]
                                                            other_tenant: TenantHandle, clock: FrozenClock) -> None:
    books = _books(db, tenant.id, clock)
    stranger = sign_in(app, db, other_tenant.id, "admin@other.example", ["admin"])
    assert stranger.get(f"/console/ledger/accounts/{books.cash}").status_code == 404
    assert stranger.get(f"/console/ledger/entries/{books.owner_funds}").status_code == 404
    assert books.cash not in stranger.get("/console/ledger", params={"format": "csv"}).text
    assert "assets:cash" not in stranger.get("/console/ledger/trial-balance").text

