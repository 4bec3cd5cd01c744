"""Fund custody safeguarding: is the money we hold for others all in the segregated custody account?

Customer, merchant and promoter money sits in the custody (reserve) bank account. Each business day,
per currency, the custody account's balance as the bank reports it — the closing balance of the latest
imported bank statement of the custody source dated on or before the day — is compared with everything
the ledger owes: the balances of all liability accounts under ``liabilities:merchant:``,
``liabilities:promoter:``, ``liabilities:customer:`` and ``liabilities:fund:`` (redemptions payable) at the end
of that business day. Fund units bought for holders (``assets:fund:``, from the ledger) count beside the bank
balance: that money left custody for the fund on the holders' behalf.

shortfall = max(0, owed − bank balance − fund units). Status ``ok`` (no shortfall), ``shortfall`` (an
alert: a webhook event ``safeguarding.shortfall``, delivered through the outbox) or ``no_statement`` (no
custody statement yet — also an alert when something is owed). One row per tenant, day and currency;
re-running the check updates it, and the alert is raised again only if the shortfall changed. No money
moves here, so nothing is posted.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from typing import Any

from sqlalchemy import case, func, or_, select

from finloop.db.uow import UnitOfWork
from finloop.ledger.models import Account, Entry, Posting
from finloop.reconciliation.models import ReconFile, SafeguardingCheck
from finloop.reconciliation.service import latest_statement
from finloop.settlement.accounts import CUSTODY_BANK_ACCOUNT, bank_account_code

SHORTFALL_TOPIC = "safeguarding.shortfall"
#: The liability accounts whose balances are owed to others and must be safeguarded.
OWED_PREFIXES: tuple[str, ...] = ("liabilities:merchant:", "liabilities:promoter:", "liabilities:customer:",
                                  "liabilities:fund:")
#: Money swept into the money-market fund left the custody account on the holders' behalf: the fund's units
#: (held for them, at a fixed price of 1.00) safeguard that part of what is owed.
FUND_PREFIX = "assets:fund:"


def owed_by_currency(uow: UnitOfWork, tenant_id: str, *, on: date) -> dict[str, dict[str, int]]:
    """Per currency, per prefix: what the ledger owes at the end of business day ``on``.

    The current posted balance (credits − debits) minus what was posted on later business days.
    """
    matches = or_(*(Account.code.startswith(prefix, autoescape=True) for prefix in OWED_PREFIXES))
    owed: dict[str, dict[str, int]] = {}
    prefix_of = _prefix_expr()
    rows = uow.session.execute(
        select(Account.currency, prefix_of, func.sum(Account.credits_posted - Account.debits_posted))
        .where(Account.tenant_id == tenant_id, matches).group_by(Account.currency, prefix_of)).all()
    for currency, prefix, amount in rows:
        owed.setdefault(currency, {})[prefix] = int(amount or 0)
    later = uow.session.execute(
        select(Account.currency, prefix_of, func.sum(Posting.amount))
        .join(Posting, Posting.account_id == Account.id)
        .join(Entry, Entry.id == Posting.entry_id)
        .where(Account.tenant_id == tenant_id, matches, Posting.tenant_id == tenant_id, Entry.business_date > on)
        .group_by(Account.currency, prefix_of)).all()
    for currency, prefix, amount in later:
        # A posting amount is signed, positive = debit: a later credit (negative) is added back out.
        bucket = owed.setdefault(currency, {})
        bucket[prefix] = bucket.get(prefix, 0) + int(amount or 0)
    return owed


def _prefix_expr() -> Any:
    return case(*((Account.code.startswith(prefix, autoescape=True), prefix.split(":")[1])
                  for prefix in OWED_PREFIXES), else_="other").label("party")


def fund_assets(uow: UnitOfWork, tenant_id: str, *, currency: str, on: date) -> int:
    """The fund units held for customers and merchants at the end of business day ``on`` (ledger)."""
    in_funds = Account.code.startswith(FUND_PREFIX, autoescape=True)
    now = uow.session.scalar(select(func.sum(Account.debits_posted - Account.credits_posted)).where(
        Account.tenant_id == tenant_id, Account.currency == currency, in_funds)) or 0
    later = uow.session.scalar(
        select(func.sum(Posting.amount)).join(Account, Posting.account_id == Account.id)
        .join(Entry, Entry.id == Posting.entry_id)
        .where(Account.tenant_id == tenant_id, Account.currency == currency, in_funds,
               Posting.tenant_id == tenant_id, Entry.business_date > on)) or 0
    return int(now) - int(later)


def _ledger_custody(uow: UnitOfWork, tenant_id: str, currency: str) -> int | None:
    balance = uow.session.execute(select(Account.debits_posted - Account.credits_posted).where(
        Account.tenant_id == tenant_id, Account.code == bank_account_code(CUSTODY_BANK_ACCOUNT),
        Account.currency == currency)).scalar()
    return None if balance is None else int(balance)


def run_check(uow: UnitOfWork, tenant_id: str, *, on: date,
              custody_source: str = CUSTODY_BANK_ACCOUNT) -> list[SafeguardingCheck]:
    """Run (or re-run) the safeguarding check of business day ``on``; one row per currency."""
    owed = owed_by_currency(uow, tenant_id, on=on)
    statement_currencies = set(uow.session.scalars(select(ReconFile.currency).distinct().where(
        ReconFile.tenant_id == tenant_id, ReconFile.source == custody_source, ReconFile.source_kind == "bank",
        ReconFile.business_date <= on, ReconFile.currency.is_not(None))))
    now = uow.clock.now()
    checks: list[SafeguardingCheck] = []
    for currency in sorted(set(owed) | {c for c in statement_currencies if c}):
        parts = owed.get(currency, {})
        owed_amount = sum(parts.values())
        statement = latest_statement(uow, tenant_id, source=custody_source, on=on, currency=currency)
        bank = statement.closing_balance if statement is not None else None
        in_funds = fund_assets(uow, tenant_id, currency=currency, on=on)
        if bank is None:
            status, shortfall = "no_statement", 0
        else:
            shortfall = max(0, owed_amount - bank - in_funds)
            status = "shortfall" if shortfall > 0 else "ok"
        breakdown = {"owed": parts, "fund_assets": in_funds,
                     "ledger_custody_balance": _ledger_custody(uow, tenant_id, currency)}
        check = uow.session.scalar(select(SafeguardingCheck).where(
            SafeguardingCheck.tenant_id == tenant_id, SafeguardingCheck.checked_on == on,
            SafeguardingCheck.currency == currency))
        changed = check is None or (check.status, check.shortfall_amount) != (status, shortfall)
        if check is None:
            check = SafeguardingCheck(id=uow.ids.new("safeguarding_check"), tenant_id=tenant_id, checked_on=on,
                                      currency=currency, created_at=now)
            uow.session.add(check)
        check.custody_source = custody_source
        check.statement_file_id = statement.id if statement is not None else None
        check.statement_on = statement.business_date if statement is not None else None
        check.bank_balance = bank
        check.owed_amount = owed_amount
        check.shortfall_amount = shortfall
        check.status = status
        check.breakdown = breakdown
        check.updated_at = now
        uow.session.flush()
        if changed and (status == "shortfall" or (status == "no_statement" and owed_amount > 0)):
            _alert(uow, check)
        checks.append(check)
    return checks


def _alert(uow: UnitOfWork, check: SafeguardingCheck) -> None:
    """The check row is the alert's record; the webhook event (through the outbox) is how it reaches people."""
    from finloop.webhooks import service as webhooks

    payload = {"check_id": check.id, "checked_on": check.checked_on.isoformat(), "currency": check.currency,
               "status": check.status, "bank_balance": check.bank_balance, "owed_amount": check.owed_amount,
               "shortfall_amount": check.shortfall_amount, "statement_file_id": check.statement_file_id}
    webhooks.publish_event(uow, check.tenant_id, type=SHORTFALL_TOPIC, data=payload)


def list_checks(uow: UnitOfWork, tenant_id: str, *, on: date | None = None, status: str | None = None,
                after: str | None = None, limit: int = 50) -> Sequence[SafeguardingCheck]:
    """Checks newest first."""
    query = select(SafeguardingCheck).where(SafeguardingCheck.tenant_id == tenant_id)
    if on is not None:
        query = query.where(SafeguardingCheck.checked_on == on)
    if status is not None:
        query = query.where(SafeguardingCheck.status == status)
    if after:
        query = query.where(SafeguardingCheck.id < after)
    return list(uow.session.scalars(query.order_by(SafeguardingCheck.id.desc()).limit(limit + 1)))
