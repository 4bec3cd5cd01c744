"""Balance wealth management: funds, published yields, orders, daily income, sweeps and statements.

Every function takes a unit of work and never commits. Money moves only through balanced ledger entries
posted in the caller's transaction (see docs/wealth.md for the tables of debits and credits):

- subscribe:    Dr source (wallet / merchant available), Cr holding;  Dr assets:fund:<code>, Cr assets:bank:custody
- redeem_fast:  Dr holding, Cr source;  Dr assets:bank:custody, Cr assets:fund:<code>
- redeem:       at the trade: Dr holding, Cr liabilities:fund:<code>:redemptions_payable;
                next business day: Dr redemptions_payable, Cr source;  Dr assets:bank:custody, Cr assets:fund:<code>
- income:       Dr assets:fund:<code>, Cr holding (one entry per holder, all of a fund's day in one batch)

A holding is the balance of ``liabilities:<kind>:<id>:fund:<code>``; nothing else stores it.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal
from fractions import Fraction
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from finloop.audit import service as audit
from finloop.core.calendar import BusinessCalendar
from finloop.core.errors import Conflict, InvalidRequest, InvariantViolation, NotFound
from finloop.core.money import check_amount, currency
from finloop.db.uow import UnitOfWork
from finloop.ledger import service as ledger
from finloop.ledger.domain import AccountType, BalanceRule, Balances, PostingSpec, TransferSpec
from finloop.ledger.models import Account
from finloop.payments import service as payments
from finloop.payments.postings import AccountSpec, ensure_account, wallet_account
from finloop.settlement.accounts import (
    CUSTODY_BANK_ACCOUNT,
    Bucket,
    PartyKind,
    bank_account_code,
    party_account_code,
)
from finloop.tenancy.calendar import get_calendar
from finloop.wealth.domain import (
    FundStatus,
    HolderKind,
    accrual_window,
    check_fund_code,
    check_holder_id,
    check_income_per_10k,
    daily_income,
    resolve_annualised,
    to_decimal,
)
from finloop.wealth.models import Fund, FundAccount, FundAccrual, FundOrder, FundPrice, Sweep
from finloop.wealth.state import INITIAL_STATUS, REDEMPTIONS, OrderKind, OrderStatus, check_transition

#: Publishing a price this far before today is refused (a typo in the year, not a correction).
EARLIEST_PRICE = date(2000, 1, 1)
#: The longest statement period.
MAX_STATEMENT_DAYS = 366

# ---------------------------------------------------------------------------------------------- accounts


def holding_code(holder_kind: HolderKind, holder_id: str, fund_code: str) -> str:
    return f"liabilities:{holder_kind.value}:{holder_id}:fund:{fund_code}"


def fund_asset_code(fund_code: str) -> str:
    """The platform's investment in the fund."""
    return f"assets:fund:{fund_code}"


def redemptions_payable_code(fund_code: str) -> str:
    """Units redeemed (normal redemption) whose money has not been credited yet."""
    return f"liabilities:fund:{fund_code}:redemptions_payable"


def _fund_asset(uow: UnitOfWork, fund: Fund) -> str:
    return ensure_account(uow, fund.tenant_id, AccountSpec(fund_asset_code(fund.code), AccountType.ASSET),
                          fund.currency)


def _custody(uow: UnitOfWork, fund: Fund) -> str:
    return ensure_account(uow, fund.tenant_id, AccountSpec(bank_account_code(CUSTODY_BANK_ACCOUNT),
                                                             AccountType.ASSET), fund.currency)


def _payable(uow: UnitOfWork, fund: Fund) -> str:
    return ensure_account(uow, fund.tenant_id, AccountSpec(
        redemptions_payable_code(fund.code), AccountType.LIABILITY, BalanceRule.DEBITS_MUST_NOT_EXCEED_CREDITS),
        fund.currency)


def source_account(uow: UnitOfWork, tenant_id: str, holder_kind: HolderKind, holder_id: str, currency_code: str) -> str:
    """Where a holder's money comes from and goes back to: a customer's wallet, a merchant's available balance."""
    if holder_kind is HolderKind.CUSTOMER:
        return wallet_account(uow, tenant_id, holder_id, currency_code)
    return ensure_account(uow, tenant_id, AccountSpec(
        party_account_code(PartyKind.MERCHANT, holder_id, Bucket.AVAILABLE), AccountType.LIABILITY,
        BalanceRule.DEBITS_MUST_NOT_EXCEED_CREDITS), currency_code)


def source_code(holder_kind: HolderKind, holder_id: str) -> str:
    if holder_kind is HolderKind.CUSTOMER:
        return f"liabilities:customer:{holder_id}:wallet"
    return party_account_code(PartyKind.MERCHANT, holder_id, Bucket.AVAILABLE)


def _holding_account(uow: UnitOfWork, fund: Fund, holder_kind: HolderKind, holder_id: str) -> str:
    link = uow.session.get(FundAccount, (fund.id, holder_kind.value, holder_id))
    if link is not None:
        return link.account_id
    account_id = ensure_account(uow, fund.tenant_id, AccountSpec(
        holding_code(holder_kind, holder_id, fund.code), AccountType.LIABILITY,
        BalanceRule.DEBITS_MUST_NOT_EXCEED_CREDITS), fund.currency)
    try:
        with uow.session.begin_nested():
            uow.session.add(FundAccount(fund_id=fund.id, holder_kind=holder_kind.value, holder_id=holder_id,
                                        tenant_id=fund.tenant_id, account_id=account_id, created_at=uow.clock.now()))
    except IntegrityError:  # a racing first order of the same holder linked it first: same account
        pass
    return account_id


def _lock(uow: UnitOfWork, account_ids: list[str]) -> dict[str, Balances]:
    """Lock the accounts an entry will touch, all at once and in id order, the order the ledger locks them in:
    a check made under these locks (a balance, a daily limit) still holds when the entry posts, and the
    ledger's own locking, later in the transaction, takes nothing new, so no two transactions deadlock."""
    rows = uow.session.execute(
        select(Account.id, Account.normal_side, Account.debits_posted, Account.credits_posted,
               Account.debits_pending, Account.credits_pending)
        .where(Account.id.in_(sorted(set(account_ids)))).order_by(Account.id).with_for_update(key_share=True))
    return {row[0]: Balances.of(row[1], row[2], row[3], row[4], row[5]) for row in rows}


def _available(uow: UnitOfWork, tenant_id: str, code: str, currency_code: str) -> int:
    account = ledger.find_account_by_code(uow, tenant_id, code, currency_code)
    return 0 if account is None else ledger.balances(account).available


def _check_holder(uow: UnitOfWork, tenant_id: str, holder_kind: HolderKind | str, holder_id: str) -> HolderKind:
    try:
        kind = HolderKind(holder_kind)
    except ValueError:
        raise InvalidRequest("A holder is a customer or a merchant.", code="invalid_holder_kind",
                             param="holder_kind") from None
    check_holder_id(holder_id)
    if kind is HolderKind.CUSTOMER:
        payments.get_customer(uow, tenant_id, holder_id, param="holder_id")
    else:
        payments.get_merchant(uow, tenant_id, holder_id, param="holder_id")
    return kind


def today(uow: UnitOfWork, tenant_id: str) -> date:
    """The tenant's current business date."""
    return get_calendar(uow, tenant_id).business_date(uow.clock.now())


def _ensure_closed(uow: UnitOfWork, calendar: BusinessCalendar, business_date: date) -> None:
    if uow.clock.now() < calendar.day_closes_at(business_date):
        raise InvalidRequest(f"The business day {business_date} is not over yet.", code="day_not_closed",
                             param="business_date")


# ---------------------------------------------------------------------------------------------- funds


def create_fund(uow: UnitOfWork, tenant_id: str, *, code: str, name: str, currency_code: str,
                fast_redemption_daily_limit: int, min_subscription_amount: int = 1,
                status: FundStatus = FundStatus.OPEN, actor: str) -> Fund:
    check_fund_code(code)
    name = name.strip()
    if not 1 <= len(name) <= 200:
        raise InvalidRequest("A fund's name is 1 to 200 characters.", code="invalid_name", param="name")
    try:
        currency(currency_code)
    except InvalidRequest as error:
        error.param = "currency"
        raise
    _amount(fast_redemption_daily_limit, "fast_redemption_daily_limit", minimum=0)
    _amount(min_subscription_amount, "min_subscription_amount", minimum=1)
    if uow.session.scalar(select(Fund.id).where(Fund.tenant_id == tenant_id, Fund.code == code)):
        raise Conflict(f"A fund with code {code} exists.", code="fund_exists", param="code")
    now = uow.clock.now()
    fund = Fund(id=uow.ids.new("fund"), tenant_id=tenant_id, code=code, name=name, currency=currency_code,
                fast_redemption_daily_limit=fast_redemption_daily_limit,
                min_subscription_amount=min_subscription_amount, status=FundStatus(status).value,
                created_at=now, updated_at=now)
    uow.session.add(fund)
    uow.session.flush()
    audit.record(uow, tenant_id, actor=actor, action="fund.created", object_type="fund", object_id=fund.id,
                 after={"code": code, "currency": currency_code, "status": fund.status,
                        "fast_redemption_daily_limit": fast_redemption_daily_limit,
                        "min_subscription_amount": min_subscription_amount})
    return fund


def _amount(value: int, param: str, *, minimum: int) -> int:
    try:
        check_amount(value, allow_negative=False, allow_zero=minimum == 0)
    except InvalidRequest as error:
        error.param = param
        raise
    return value


def find_fund(uow: UnitOfWork, tenant_id: str, fund_id: str) -> Fund | None:
    return uow.session.scalar(select(Fund).where(Fund.tenant_id == tenant_id, Fund.id == fund_id))


def get_fund(uow: UnitOfWork, tenant_id: str, fund_id: str, param: str = "fund_id") -> Fund:
    fund = find_fund(uow, tenant_id, fund_id)
    if fund is None:
        raise NotFound(f"No such fund: {fund_id}.", code="fund_not_found", param=param)
    return fund


def get_fund_by_code(uow: UnitOfWork, tenant_id: str, code: str, param: str = "fund") -> Fund:
    fund = uow.session.scalar(select(Fund).where(Fund.tenant_id == tenant_id, Fund.code == code))
    if fund is None:
        raise NotFound(f"No fund with code {code}.", code="fund_not_found", param=param)
    return fund


def list_funds(uow: UnitOfWork, tenant_id: str, *, after: str | None = None, limit: int = 50) -> list[Fund]:
    query = select(Fund).where(Fund.tenant_id == tenant_id)
    if after:
        query = query.where(Fund.id > after)
    return list(uow.session.scalars(query.order_by(Fund.id).limit(limit + 1)))


# ---------------------------------------------------------------------------------------------- prices


def publish_price(uow: UnitOfWork, tenant_id: str, fund_id: str, *, price_on: date, income_per_10k: Decimal,
                  annualised_7d: Decimal | None = None, actor: str) -> FundPrice:
    """Publish a day's income per 10,000 units; the seven-day annualised yield is computed from it and the
    six prices published before it, or checked when given. Publishing the same values again is a no-op;
    different values for a published day are a conflict (income may already have been paid on them)."""
    fund = get_fund(uow, tenant_id, fund_id)
    check_income_per_10k(income_per_10k)
    if not EARLIEST_PRICE <= price_on <= today(uow, tenant_id):
        raise InvalidRequest("Yields are published for past days and today, from 2000 on.", code="invalid_price_date",
                             param="price_on")
    earlier = list(uow.session.scalars(
        select(FundPrice.income_per_10k).where(FundPrice.fund_id == fund.id, FundPrice.price_on < price_on)
        .order_by(FundPrice.price_on.desc()).limit(6)))
    annualised = resolve_annualised(annualised_7d, [*reversed(earlier), income_per_10k])
    existing = uow.session.scalar(select(FundPrice).where(FundPrice.fund_id == fund.id, FundPrice.price_on == price_on))
    if existing is not None:
        if existing.income_per_10k == income_per_10k and (annualised_7d is None
                                                          or existing.annualised_7d == annualised_7d):
            return existing
        raise Conflict(f"The yield of {price_on} is already published.", code="price_already_published",
                       param="price_on")
    if uow.session.scalar(select(FundAccrual.id).where(FundAccrual.fund_id == fund.id,
                                                       FundAccrual.income_on >= price_on).limit(1)):
        raise Conflict(f"Income of {fund.code} for {price_on} was already paid at the business day's rate.",
                       code="income_already_accrued", param="price_on")
    price = FundPrice(id=uow.ids.new("fund_price"), tenant_id=tenant_id, fund_id=fund.id, price_on=price_on,
                      income_per_10k=income_per_10k, annualised_7d=annualised, published_by=actor[:100],
                      published_at=uow.clock.now())
    uow.session.add(price)
    uow.session.flush()
    audit.record(uow, tenant_id, actor=actor, action="fund.price_published", object_type="fund",
                 object_id=fund.id, after={"price_on": price_on.isoformat(), "income_per_10k": str(income_per_10k),
                                           "annualised_7d": str(annualised)})
    return price


def list_prices(uow: UnitOfWork, tenant_id: str, fund_id: str, *, before: date | None = None,
                limit: int = 50) -> list[FundPrice]:
    """Prices newest first; ``before`` is the cursor (the last ``price_on`` of the previous page)."""
    fund = get_fund(uow, tenant_id, fund_id)
    query = select(FundPrice).where(FundPrice.tenant_id == tenant_id, FundPrice.fund_id == fund.id)
    if before is not None:
        query = query.where(FundPrice.price_on < before)
    return list(uow.session.scalars(query.order_by(FundPrice.price_on.desc()).limit(limit + 1)))


# ---------------------------------------------------------------------------------------------- orders


def place_order(uow: UnitOfWork, tenant_id: str, *, fund_id: str, kind: OrderKind | str, holder_kind: HolderKind | str,
                holder_id: str, amount: int, source: str = "api", source_key: str | None = None) -> FundOrder:
    """Subscribe, redeem fast or redeem (see ``wealth.state``). Refusals write nothing: the caller's
    transaction is rolled back by the entry point, and every check runs before the first posting."""
    try:
        order_kind = OrderKind(kind)
    except ValueError:
        raise InvalidRequest("An order is subscribe, redeem_fast or redeem.", code="invalid_order_kind",
                             param="kind") from None
    _amount(amount, "amount", minimum=1)
    fund = get_fund(uow, tenant_id, fund_id)
    holder = _check_holder(uow, tenant_id, holder_kind, holder_id)
    if order_kind is OrderKind.SUBSCRIBE:
        return _subscribe(uow, fund, holder, holder_id, amount, source, source_key)
    return _redeem(uow, fund, holder, holder_id, order_kind, amount, source)


def _new_order(uow: UnitOfWork, fund: Fund, order_id: str, kind: OrderKind, holder_kind: HolderKind, holder_id: str,
               amount: int, *, trade_date: date, settle_on: date, entry_id: str, source: str,
               source_key: str | None) -> FundOrder:
    now = uow.clock.now()
    status = INITIAL_STATUS[kind]
    order = FundOrder(id=order_id, tenant_id=fund.tenant_id, fund_id=fund.id, kind=kind.value,
                      holder_kind=holder_kind.value, holder_id=holder_id, amount=amount, currency=fund.currency,
                      status=status.value, trade_date=trade_date, settle_on=settle_on, source=source,
                      source_key=source_key, entry_id=entry_id, settle_entry_id=None, created_at=now,
                      updated_at=now, settled_at=now if status is OrderStatus.COMPLETED else None)
    uow.session.add(order)
    uow.session.flush()
    return order


def _metadata(order_id: str, fund: Fund, holder_kind: HolderKind, holder_id: str) -> dict[str, Any]:
    return {"fund_order_id": order_id, "fund_id": fund.id, "holder_kind": holder_kind.value, "holder_id": holder_id}


def _subscribe(uow: UnitOfWork, fund: Fund, holder: HolderKind, holder_id: str, amount: int, source: str,
               source_key: str | None) -> FundOrder:
    if fund.status != FundStatus.OPEN:
        raise Conflict(f"Fund {fund.code} takes no subscriptions ({fund.status}).", code="fund_not_open",
                       param="fund_id")
    if amount < fund.min_subscription_amount:
        raise InvalidRequest(f"Subscriptions to {fund.code} are at least {fund.min_subscription_amount}.",
                             code="below_minimum_subscription", param="amount",
                             details={"min_subscription_amount": fund.min_subscription_amount})
    src = source_account(uow, fund.tenant_id, holder, holder_id, fund.currency)
    holding = _holding_account(uow, fund, holder, holder_id)
    asset, custody = _fund_asset(uow, fund), _custody(uow, fund)
    available = _lock(uow, [src, holding, asset, custody])[src].available
    if available < amount:
        raise InvariantViolation(f"The {holder.value}'s balance ({available}) is below {amount}.",
                                 code="insufficient_funds", param="amount",
                                 details={"available": available, "shortfall": amount - available})
    order_id = uow.ids.new("fund_order")
    posted = ledger.post_transfer(uow, fund.tenant_id, TransferSpec(
        key=f"wealth:order:{order_id}",
        postings=(PostingSpec(src, amount, fund.currency), PostingSpec(holding, -amount, fund.currency),
                  PostingSpec(asset, amount, fund.currency), PostingSpec(custody, -amount, fund.currency)),
        description=f"subscription {order_id} to {fund.code}", metadata=_metadata(order_id, fund, holder, holder_id)))
    return _new_order(uow, fund, order_id, OrderKind.SUBSCRIBE, holder, holder_id, amount,
                      trade_date=posted.business_date, settle_on=posted.business_date, entry_id=posted.id,
                      source=source, source_key=source_key)


def fast_redeemed(uow: UnitOfWork, fund: Fund, holder_kind: HolderKind, holder_id: str, trade_date: date) -> int:
    """What the holder redeemed fast from the fund on ``trade_date``."""
    return int(uow.session.scalar(select(func.coalesce(func.sum(FundOrder.amount), 0)).where(
        FundOrder.tenant_id == fund.tenant_id, FundOrder.holder_kind == holder_kind.value,
        FundOrder.holder_id == holder_id, FundOrder.fund_id == fund.id, FundOrder.trade_date == trade_date,
        FundOrder.kind == OrderKind.REDEEM_FAST.value)) or 0)


def _redeem(uow: UnitOfWork, fund: Fund, holder: HolderKind, holder_id: str, kind: OrderKind, amount: int,
            source: str) -> FundOrder:
    link = uow.session.get(FundAccount, (fund.id, holder.value, holder_id))
    if link is None:
        raise InvariantViolation(f"The {holder.value} holds no units of {fund.code}.", code="insufficient_holding",
                                 param="amount", details={"available": 0, "shortfall": amount})
    holding = link.account_id
    custody, asset = _custody(uow, fund), _fund_asset(uow, fund)
    if kind is OrderKind.REDEEM_FAST:
        accounts = [holding, source_account(uow, fund.tenant_id, holder, holder_id, fund.currency), custody, asset]
    else:
        accounts = [holding, _payable(uow, fund)]
    # Locked first: a holder's redemptions are checked against the holding and the daily limit one by one.
    held = _lock(uow, accounts)[holding].available
    if held < amount:
        raise InvariantViolation(f"The holding of {fund.code} ({held}) is below {amount}.",
                                 code="insufficient_holding", param="amount",
                                 details={"available": held, "shortfall": amount - held})
    calendar = get_calendar(uow, fund.tenant_id)
    trade_date = calendar.business_date(uow.clock.now())
    if kind is OrderKind.REDEEM_FAST:
        used = fast_redeemed(uow, fund, holder, holder_id, trade_date)
        if used + amount > fund.fast_redemption_daily_limit:
            remaining = max(0, fund.fast_redemption_daily_limit - used)
            raise InvariantViolation(
                f"Fast redemptions of {fund.code} are limited to {fund.fast_redemption_daily_limit} a day; "
                f"{remaining} remain for {trade_date}.", code="fast_redemption_limit_exceeded", param="amount",
                details={"limit": fund.fast_redemption_daily_limit, "used": used, "remaining": remaining})
    order_id = uow.ids.new("fund_order")
    # Debit the holding, credit the source (fast) or the redemptions payable (normal); fast also moves the cash.
    signs = (amount, -amount, amount, -amount)
    postings = tuple(PostingSpec(account, sign, fund.currency) for account, sign in zip(accounts, signs, strict=False))
    description = (f"fast redemption {order_id} from {fund.code}" if kind is OrderKind.REDEEM_FAST
                   else f"redemption {order_id} from {fund.code}")
    posted = ledger.post_transfer(uow, fund.tenant_id, TransferSpec(
        key=f"wealth:order:{order_id}", postings=postings, description=description,
        metadata=_metadata(order_id, fund, holder, holder_id)))
    settle_on = posted.business_date if kind is OrderKind.REDEEM_FAST else calendar.add_business_days(
        posted.business_date, 1)
    return _new_order(uow, fund, order_id, kind, holder, holder_id, amount, trade_date=posted.business_date,
                      settle_on=settle_on, entry_id=posted.id, source=source, source_key=None)


def get_order(uow: UnitOfWork, tenant_id: str, order_id: str) -> FundOrder:
    order = uow.session.scalar(select(FundOrder).where(FundOrder.tenant_id == tenant_id, FundOrder.id == order_id))
    if order is None:
        raise NotFound(f"No such fund order: {order_id}.", code="fund_order_not_found", param="order_id")
    return order


def list_orders(uow: UnitOfWork, tenant_id: str, *, fund_id: str | None = None, holder_kind: str | None = None,
                holder_id: str | None = None, kind: str | None = None, status: str | None = None,
                after: str | None = None, limit: int = 50) -> list[FundOrder]:
    """Orders newest first; ``after`` is the id of the last order of the previous page."""
    query = select(FundOrder).where(FundOrder.tenant_id == tenant_id)
    for column, value in ((FundOrder.fund_id, fund_id), (FundOrder.holder_kind, holder_kind),
                          (FundOrder.holder_id, holder_id), (FundOrder.kind, kind), (FundOrder.status, status)):
        if value is not None:
            query = query.where(column == value)
    if after:
        query = query.where(FundOrder.id < after)
    return list(uow.session.scalars(query.order_by(FundOrder.id.desc()).limit(limit + 1)))


def settle_due_redemptions(uow: UnitOfWork, tenant_id: str, *, business_date: date) -> int:
    """Credit the normal redemptions due by the business day after ``business_date`` (the run after
    ``business_date`` closes pays what was redeemed on it), one batch per fund. Returns how many were paid."""
    calendar = get_calendar(uow, tenant_id)
    _ensure_closed(uow, calendar, business_date)
    due_by = calendar.add_business_days(business_date, 1)
    orders = list(uow.session.scalars(select(FundOrder).where(
        FundOrder.tenant_id == tenant_id, FundOrder.status == OrderStatus.PENDING.value,
        FundOrder.kind == OrderKind.REDEEM.value, FundOrder.settle_on <= due_by)
        .order_by(FundOrder.fund_id, FundOrder.id).with_for_update()))
    by_fund: dict[str, list[FundOrder]] = defaultdict(list)
    for order in orders:
        by_fund[order.fund_id].append(order)
    for fund_id, fund_orders in by_fund.items():
        fund = get_fund(uow, tenant_id, fund_id)
        payable, custody, asset = _payable(uow, fund), _custody(uow, fund), _fund_asset(uow, fund)
        specs = []
        for order in fund_orders:
            kind = HolderKind(order.holder_kind)
            specs.append(TransferSpec(
                key=f"wealth:settle:{order.id}",
                postings=(PostingSpec(payable, order.amount, fund.currency),
                          PostingSpec(source_account(uow, tenant_id, kind, order.holder_id, fund.currency),
                                      -order.amount, fund.currency),
                          PostingSpec(custody, order.amount, fund.currency),
                          PostingSpec(asset, -order.amount, fund.currency)),
                description=f"redemption {order.id} from {fund.code} paid",
                metadata=_metadata(order.id, fund, kind, order.holder_id)))
        posted = ledger.post_transfers(uow, tenant_id, specs)
        now = uow.clock.now()
        for order, entry in zip(fund_orders, posted, strict=True):
            order.status = check_transition(order.status, OrderStatus.COMPLETED).value
            order.settle_entry_id = entry.id
            order.settled_at = now
            order.updated_at = now
    uow.session.flush()
    return len(orders)


# ---------------------------------------------------------------------------------------------- income


@dataclass(frozen=True, slots=True)
class AccrualResult:
    fund_id: str
    income_on: date
    days: int
    holders: int
    amount: int
    replayed: bool


def _sums_by_holder(uow: UnitOfWork, query: Any) -> dict[tuple[str, str], int]:
    return {(kind, holder): int(total) for kind, holder, total in uow.session.execute(query)}


def accrue_fund(uow: UnitOfWork, tenant_id: str, fund_id: str, *, business_date: date) -> AccrualResult:
    """Post the income of the window ending on ``business_date`` to every holder of the fund.

    Window: the calendar days after the previous business day up to ``business_date`` (money-market funds
    earn every calendar day; a weekend's or a holiday's income is paid by the next business day's run).
    A day's rate is its published income per 10,000 units; a day without a published price (a weekend
    the operator did not publish) takes the rate of ``business_date``, which must be published.

    Basis: the units held at the run that were already held before ``business_date``: subscriptions with
    trade date ``business_date`` or later and income of later windows are left out; redemptions dated
    after ``business_date`` are added back (units redeemed on ``business_date`` earn nothing for the window).

    Idempotent per fund and date: a second run returns the first one's result; every entry's transfer key
    (fund, holder, date) is permanent besides.
    """
    fund = get_fund(uow, tenant_id, fund_id)
    calendar = get_calendar(uow, tenant_id)
    _ensure_closed(uow, calendar, business_date)
    window = accrual_window(calendar, business_date)
    done = uow.session.execute(select(func.count(), func.coalesce(func.sum(FundAccrual.amount), 0)).where(
        FundAccrual.fund_id == fund.id, FundAccrual.income_on == business_date)).one()
    if done[0]:
        return AccrualResult(fund.id, business_date, len(window), int(done[0]), int(done[1]), replayed=True)
    holders = list(uow.session.execute(
        select(FundAccount.holder_kind, FundAccount.holder_id, FundAccount.account_id)
        .where(FundAccount.tenant_id == tenant_id, FundAccount.fund_id == fund.id)
        .order_by(FundAccount.holder_kind, FundAccount.holder_id)))
    if not holders:
        return AccrualResult(fund.id, business_date, len(window), 0, 0, replayed=False)
    # The holdings and the fund's account are locked (in id order) before the orders are read: an order
    # committing meanwhile is either in both the balances and the order sums, or in neither.
    asset = _fund_asset(uow, fund)
    locked = _lock(uow, [asset, *(account_id for _, _, account_id in holders)])

    holder = (FundOrder.holder_kind, FundOrder.holder_id)
    of_fund = (FundOrder.tenant_id == tenant_id, FundOrder.fund_id == fund.id)
    new_units = _sums_by_holder(uow, select(*holder, func.sum(FundOrder.amount)).where(
        *of_fund, FundOrder.kind == OrderKind.SUBSCRIBE.value, FundOrder.trade_date >= business_date).group_by(*holder))
    later_redeemed = _sums_by_holder(uow, select(*holder, func.sum(FundOrder.amount)).where(
        *of_fund, FundOrder.kind.in_([k.value for k in REDEMPTIONS]), FundOrder.trade_date > business_date)
        .group_by(*holder))
    accrual_holder = (FundAccrual.holder_kind, FundAccrual.holder_id)
    later_income = _sums_by_holder(uow, select(*accrual_holder, func.sum(FundAccrual.amount)).where(
        FundAccrual.fund_id == fund.id, FundAccrual.income_on > business_date).group_by(*accrual_holder))
    last = (select(FundAccrual.holder_kind, FundAccrual.holder_id, func.max(FundAccrual.income_on).label("last_on"))
            .where(FundAccrual.fund_id == fund.id, FundAccrual.income_on < business_date)
            .group_by(FundAccrual.holder_kind, FundAccrual.holder_id).subquery())
    carries: dict[tuple[str, str], Decimal] = {
        (kind, holder_id): carry for kind, holder_id, carry in uow.session.execute(
            select(FundAccrual.holder_kind, FundAccrual.holder_id, FundAccrual.carry).join(
                last, (last.c.holder_kind == FundAccrual.holder_kind) & (last.c.holder_id == FundAccrual.holder_id)
                & (last.c.last_on == FundAccrual.income_on)).where(FundAccrual.fund_id == fund.id))}

    earning: list[tuple[str, str, str, int, Decimal]] = []
    for kind, holder_id, account_id in holders:
        key = (kind, holder_id)
        basis = max(0, locked[account_id].posted - new_units.get(key, 0) + later_redeemed.get(key, 0)
                    - later_income.get(key, 0))
        carry = carries.get(key, Decimal(0))
        if basis or carry:
            earning.append((kind, holder_id, account_id, basis, carry))
    if not earning:
        return AccrualResult(fund.id, business_date, len(window), 0, 0, replayed=False)
    rate = _window_rate(uow, fund, window)

    now = uow.clock.now()
    rows: list[FundAccrual] = []
    specs: list[TransferSpec] = []
    for kind, holder_id, account_id, basis, carry in earning:
        income = daily_income(basis, rate, carry)
        row = FundAccrual(tenant_id=tenant_id, fund_id=fund.id, holder_kind=kind, holder_id=holder_id,
                          income_on=business_date, days=len(window), basis_amount=basis,
                          income_per_10k=to_decimal(rate), exact_amount=to_decimal(income.exact),
                          amount=income.amount, carry=to_decimal(income.carry), currency=fund.currency,
                          entry_id=None, created_at=now)
        rows.append(row)
        if income.amount:
            specs.append(TransferSpec.simple(
                f"wealth:income:{fund.id}:{kind}:{holder_id}:{business_date.isoformat()}", asset, account_id,
                income.amount, fund.currency, f"income of {fund.code} for {window[0]}..{business_date}",
                metadata={"fund_id": fund.id, "holder_kind": kind, "holder_id": holder_id,
                          "income_on": business_date.isoformat(), "days": len(window)}))
    if specs:
        # One batch for the whole fund and day: many holders, one transaction, one lock per account.
        entries = {entry.key: entry.id for entry in ledger.post_transfers(uow, tenant_id, specs)}
        for row in rows:
            if row.amount:
                row.entry_id = entries[f"wealth:income:{fund.id}:{row.holder_kind}:{row.holder_id}:"
                                       f"{business_date.isoformat()}"]
    uow.session.add_all(rows)
    uow.session.flush()
    return AccrualResult(fund.id, business_date, len(window), len(rows), sum(r.amount for r in rows), replayed=False)


def _window_rate(uow: UnitOfWork, fund: Fund, window: list[date]) -> Fraction:
    """The income per 10,000 units summed over the window's days; a day without a published price takes the
    rate of the window's business date, which must be published."""
    business_date = window[-1]
    prices: dict[date, Decimal] = {row[0]: row[1] for row in uow.session.execute(
        select(FundPrice.price_on, FundPrice.income_per_10k).where(
            FundPrice.fund_id == fund.id, FundPrice.price_on >= window[0], FundPrice.price_on <= business_date))}
    if business_date not in prices:
        raise InvariantViolation(f"No yield of fund {fund.code} is published for {business_date}.",
                                 code="price_missing", param="business_date")
    return sum((Fraction(prices.get(day, prices[business_date])) for day in window), Fraction(0))


def fund_ids(uow: UnitOfWork, tenant_id: str) -> list[str]:
    return list(uow.session.scalars(select(Fund.id).where(Fund.tenant_id == tenant_id).order_by(Fund.id)))


def accrue(uow: UnitOfWork, tenant_id: str, *, business_date: date) -> list[AccrualResult]:
    """``accrue_fund`` for every fund of the tenant."""
    return [accrue_fund(uow, tenant_id, fund_id, business_date=business_date) for fund_id in fund_ids(uow, tenant_id)]


# ---------------------------------------------------------------------------------------------- sweeps


def set_sweep(uow: UnitOfWork, tenant_id: str, *, holder_kind: HolderKind | str, holder_id: str, fund_id: str,
              keep_amount: int, min_sweep_amount: int = 1, enabled: bool = True, actor: str) -> Sweep:
    """Create or replace the holder's sweep (one per holder)."""
    kind = _check_holder(uow, tenant_id, holder_kind, holder_id)
    fund = get_fund(uow, tenant_id, fund_id)
    _amount(keep_amount, "keep_amount", minimum=0)
    _amount(min_sweep_amount, "min_sweep_amount", minimum=1)
    now = uow.clock.now()
    sweep = uow.session.scalar(select(Sweep).where(Sweep.tenant_id == tenant_id, Sweep.holder_kind == kind.value,
                                                   Sweep.holder_id == holder_id).with_for_update())
    before = None if sweep is None else _sweep_view(sweep)
    if sweep is None:
        sweep = Sweep(id=uow.ids.new("sweep"), tenant_id=tenant_id, holder_kind=kind.value, holder_id=holder_id,
                      created_at=now)
        uow.session.add(sweep)
    sweep.fund_id, sweep.keep_amount, sweep.min_sweep_amount = fund.id, keep_amount, min_sweep_amount
    sweep.enabled = enabled
    sweep.updated_at = now
    uow.session.flush()
    if before != _sweep_view(sweep):
        audit.record(uow, tenant_id, actor=actor, action="fund.sweep_set", object_type="sweep", object_id=sweep.id,
                     before=before, after=_sweep_view(sweep))
    return sweep


def _sweep_view(sweep: Sweep) -> dict[str, Any]:
    return {"fund_id": sweep.fund_id, "keep_amount": sweep.keep_amount, "min_sweep_amount": sweep.min_sweep_amount,
            "enabled": sweep.enabled}


def get_sweep(uow: UnitOfWork, tenant_id: str, *, holder_kind: str, holder_id: str) -> Sweep:
    sweep = uow.session.scalar(select(Sweep).where(Sweep.tenant_id == tenant_id, Sweep.holder_kind == holder_kind,
                                                   Sweep.holder_id == holder_id))
    if sweep is None:
        raise NotFound("This holder has no sweep.", code="sweep_not_found", param="holder_id")
    return sweep


def run_sweeps(uow: UnitOfWork, tenant_id: str, *, business_date: date) -> list[FundOrder]:
    """After ``business_date`` closes, subscribe each enabled sweep's balance above its keep amount, when
    at least its minimum (and the fund's minimum subscription) would move. Once per sweep and date."""
    _ensure_closed(uow, get_calendar(uow, tenant_id), business_date)
    orders: list[FundOrder] = []
    sweeps = list(uow.session.scalars(select(Sweep).where(Sweep.tenant_id == tenant_id, Sweep.enabled.is_(True))
                                      .order_by(Sweep.id)))
    for sweep in sweeps:
        key = f"sweep:{sweep.id}:{business_date.isoformat()}"
        if uow.session.scalar(select(FundOrder.id).where(FundOrder.tenant_id == tenant_id,
                                                         FundOrder.source_key == key)):
            continue
        fund = get_fund(uow, tenant_id, sweep.fund_id)
        kind = HolderKind(sweep.holder_kind)
        excess = _available(uow, tenant_id, source_code(kind, sweep.holder_id), fund.currency) - sweep.keep_amount
        if fund.status != FundStatus.OPEN or excess < max(sweep.min_sweep_amount, fund.min_subscription_amount):
            continue
        orders.append(_subscribe(uow, fund, kind, sweep.holder_id, excess, "sweep", key))
    return orders


# ---------------------------------------------------------------------------------------------- statements


@dataclass(frozen=True, slots=True)
class Holding:
    fund_id: str
    fund_code: str
    currency: str
    account_id: str
    amount: int


@dataclass(frozen=True, slots=True)
class FundTotals:
    fund_id: str
    currency: str
    subscribed: int
    redeemed: int
    income: int


@dataclass(frozen=True, slots=True)
class Statement:
    holder_kind: HolderKind
    holder_id: str
    from_on: date
    to_on: date
    holdings: list[Holding]
    subscriptions: list[FundOrder]
    redemptions: list[FundOrder]
    income: list[FundAccrual]
    totals: list[FundTotals]
    total_income: dict[str, int] = field(default_factory=dict)  # by currency


def holdings(uow: UnitOfWork, tenant_id: str, *, holder_kind: HolderKind | str, holder_id: str) -> list[Holding]:
    """The holder's units of every fund it ever held, read from the ledger accounts."""
    kind = _check_holder(uow, tenant_id, holder_kind, holder_id)
    rows = uow.session.execute(
        select(Fund.id, Fund.code, Fund.currency, Account.id, Account.normal_side, Account.debits_posted,
               Account.credits_posted, Account.debits_pending, Account.credits_pending)
        .join(FundAccount, FundAccount.fund_id == Fund.id).join(Account, Account.id == FundAccount.account_id)
        .where(FundAccount.tenant_id == tenant_id, FundAccount.holder_kind == kind.value,
               FundAccount.holder_id == holder_id).order_by(Fund.code))
    return [Holding(row[0], row[1], row[2], row[3], Balances.of(row[4], row[5], row[6], row[7], row[8]).posted)
            for row in rows]


def statement(uow: UnitOfWork, tenant_id: str, *, holder_kind: HolderKind | str, holder_id: str, from_on: date,
              to_on: date) -> Statement:
    """Holdings now; the orders traded and the income accrued from ``from_on`` to ``to_on`` (inclusive)."""
    if from_on > to_on:
        raise InvalidRequest("from_on must not be after to_on.", code="invalid_period", param="from_on")
    if (to_on - from_on) > timedelta(days=MAX_STATEMENT_DAYS):
        raise InvalidRequest(f"A statement covers at most {MAX_STATEMENT_DAYS} days.", code="invalid_period",
                             param="to_on")
    kind = _check_holder(uow, tenant_id, holder_kind, holder_id)
    held = holdings(uow, tenant_id, holder_kind=kind, holder_id=holder_id)
    orders = list(uow.session.scalars(select(FundOrder).where(
        FundOrder.tenant_id == tenant_id, FundOrder.holder_kind == kind.value, FundOrder.holder_id == holder_id,
        FundOrder.trade_date >= from_on, FundOrder.trade_date <= to_on).order_by(FundOrder.trade_date, FundOrder.id)))
    income = list(uow.session.scalars(select(FundAccrual).where(
        FundAccrual.tenant_id == tenant_id, FundAccrual.holder_kind == kind.value, FundAccrual.holder_id == holder_id,
        FundAccrual.income_on >= from_on, FundAccrual.income_on <= to_on)
        .order_by(FundAccrual.income_on, FundAccrual.fund_id)))
    funds: dict[str, str] = {h.fund_id: h.currency for h in held}
    subscribed: dict[str, int] = defaultdict(int)
    redeemed: dict[str, int] = defaultdict(int)
    earned: dict[str, int] = defaultdict(int)
    for order in orders:
        funds.setdefault(order.fund_id, order.currency)
        (subscribed if order.kind == OrderKind.SUBSCRIBE else redeemed)[order.fund_id] += order.amount
    total_income: dict[str, int] = defaultdict(int)
    for line in income:
        funds.setdefault(line.fund_id, line.currency)
        earned[line.fund_id] += line.amount
        total_income[line.currency] += line.amount
    totals = [FundTotals(fund_id, currency_code, subscribed[fund_id], redeemed[fund_id], earned[fund_id])
              for fund_id, currency_code in sorted(funds.items())]
    return Statement(kind, holder_id, from_on, to_on, held,
                     [o for o in orders if o.kind == OrderKind.SUBSCRIBE],
                     [o for o in orders if o.kind != OrderKind.SUBSCRIBE], income, totals, dict(total_income))
