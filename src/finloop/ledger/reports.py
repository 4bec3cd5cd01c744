"""Financial statements computed from the ledger: trial balance, income statement, balance sheet.

Each is grouped per currency; amounts are never converted here. The balance sheet balances when
assets equal liabilities plus equity plus retained earnings (income less expenses to date).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime

from finloop.db.uow import UnitOfWork
from finloop.ledger.domain import AccountType
from finloop.ledger.service import AccountTotals, account_totals


@dataclass
class Section:
    lines: list[AccountTotals] = field(default_factory=list)

    @property
    def total(self) -> int:
        return sum(line.balance for line in self.lines)


@dataclass
class TrialBalance:
    currency: str
    lines: list[AccountTotals]

    @property
    def total_debits(self) -> int:
        return sum(line.debits for line in self.lines)

    @property
    def total_credits(self) -> int:
        return sum(line.credits for line in self.lines)

    @property
    def balanced(self) -> bool:
        return self.total_debits == self.total_credits


def _by_currency(rows: Iterable[AccountTotals]) -> dict[str, list[AccountTotals]]:
    grouped: dict[str, list[AccountTotals]] = defaultdict(list)
    for row in rows:
        grouped[row.currency].append(row)
    return dict(sorted(grouped.items()))


def trial_balance(uow: UnitOfWork, tenant_id: str, *, as_of: datetime | None = None,
                  currency_code: str | None = None) -> list[TrialBalance]:
    rows = account_totals(uow, tenant_id, as_of=as_of, currency_code=currency_code)
    return [TrialBalance(code, lines) for code, lines in _by_currency(rows).items()]


@dataclass
class IncomeStatement:
    currency: str
    income: Section
    expenses: Section

    @property
    def net_income(self) -> int:
        return self.income.total - self.expenses.total


def income_statement(uow: UnitOfWork, tenant_id: str, *, start: datetime, end: datetime) -> list[IncomeStatement]:
    """Income and expenses of postings effective in (start, end]."""
    upto = account_totals(uow, tenant_id, as_of=end, types=[AccountType.INCOME, AccountType.EXPENSE])
    before = {t.account_id: t for t in account_totals(uow, tenant_id, as_of=start,
                                                      types=[AccountType.INCOME, AccountType.EXPENSE])}
    result = []
    for code, lines in _by_currency(upto).items():
        statement = IncomeStatement(code, Section(), Section())
        for line in lines:
            prior = before[line.account_id]
            # effective_at <= end counts the instant ``end``; subtracting ``<= start`` gives (start, end].
            moved = AccountTotals(line.account_id, line.code, line.name, line.type, line.normal_side,
                                  line.currency, line.debits - prior.debits, line.credits - prior.credits)
            (statement.income if line.type == AccountType.INCOME else statement.expenses).lines.append(moved)
        result.append(statement)
    return result


@dataclass
class BalanceSheet:
    currency: str
    assets: Section
    liabilities: Section
    equity: Section
    retained_earnings: int

    @property
    def balanced(self) -> bool:
        return self.assets.total == self.liabilities.total + self.equity.total + self.retained_earnings


def balance_sheet(uow: UnitOfWork, tenant_id: str, *, as_of: datetime) -> list[BalanceSheet]:
    result = []
    for code, lines in _by_currency(account_totals(uow, tenant_id, as_of=as_of)).items():
        sheet = BalanceSheet(code, Section(), Section(), Section(), 0)
        for line in lines:
            if line.type == AccountType.ASSET:
                sheet.assets.lines.append(line)
            elif line.type == AccountType.LIABILITY:
                sheet.liabilities.lines.append(line)
            elif line.type == AccountType.EQUITY:
                sheet.equity.lines.append(line)
            elif line.type == AccountType.INCOME:
                sheet.retained_earnings += line.balance
            else:
                sheet.retained_earnings -= line.balance
        result.append(sheet)
    return result
