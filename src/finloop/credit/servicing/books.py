"""The general ledger accounts of loan servicing, by limit group and currency.

Receivables (assets): ``assets:loans:<group>:principal`` (the disbursement's), ``...:interest``, ``...:fees``,
``...:penalty``; the allowance against them ``assets:loans:<group>:allowance`` (a contra-asset, credit balance).
Income: ``income:credit:<group>:interest|fees|penalty|recoveries|subsidy``. Expenses:
``expenses:credit:<group>:provisions`` (charges to the allowance), ``expenses:credit:<group>:losses`` (what a
write-off takes beyond the allowance) and ``expenses:credit:<group>:subsidies`` (interest of interest-free loans the
platform pays, at disbursement). Money received and not yet owed: ``liabilities:credit:advances``. Money received by
hand or by bank transfer for loans: ``assets:bank:credit_collections``.
"""

from __future__ import annotations

from enum import StrEnum

from finloop.db.uow import UnitOfWork
from finloop.ledger.domain import AccountType
from finloop.payments.postings import AccountSpec, ensure_account


class Receivable(StrEnum):
    PRINCIPAL = "principal"
    INTEREST = "interest"
    FEES = "fees"
    PENALTY = "penalty"


class Income(StrEnum):
    INTEREST = "interest"
    FEES = "fees"
    PENALTY = "penalty"
    RECOVERIES = "recoveries"
    #: The interest of an interest-free loan that the platform pays (against ``expenses:credit:<group>:subsidies``).
    SUBSIDY = "subsidy"


ADVANCES_CODE = "liabilities:credit:advances"
COLLECTIONS_CODE = "assets:bank:credit_collections"


def receivable_code(group: str, component: Receivable | str) -> str:
    return f"assets:loans:{group}:{Receivable(component).value}"


def allowance_code(group: str) -> str:
    return f"assets:loans:{group}:allowance"


def income_code(group: str, kind: Income | str) -> str:
    return f"income:credit:{group}:{Income(kind).value}"


def provisions_code(group: str) -> str:
    return f"expenses:credit:{group}:provisions"


def subsidies_code(group: str) -> str:
    return f"expenses:credit:{group}:subsidies"


def losses_code(group: str) -> str:
    return f"expenses:credit:{group}:losses"


def account(uow: UnitOfWork, tenant_id: str, code: str, currency_code: str) -> str:
    """The id of a servicing account, created on first use; its type follows the code's first segment."""
    kind = {"assets": AccountType.ASSET, "income": AccountType.INCOME, "expenses": AccountType.EXPENSE,
            "liabilities": AccountType.LIABILITY}[code.split(":", 1)[0]]
    return ensure_account(uow, tenant_id, AccountSpec(code, kind), currency_code)


def receivable(uow: UnitOfWork, tenant_id: str, group: str, component: Receivable | str, currency_code: str) -> str:
    return account(uow, tenant_id, receivable_code(group, component), currency_code)


def income(uow: UnitOfWork, tenant_id: str, group: str, kind: Income | str, currency_code: str) -> str:
    return account(uow, tenant_id, income_code(group, kind), currency_code)
