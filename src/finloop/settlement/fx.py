"""FX for settlement: a rate table, the FX position accounts, and closing a position at the real rate.

A cohort collected in currency P and settled in Q is converted at the latest rate (P→Q, or the inverse
of Q→P) at or before the settle time. The entry balances per currency through the position account of
the pair, ``assets:fx_position:<A>_<B>`` (A, B the two codes in alphabetical order), which exists once in
each currency of the pair: in P it is credited with what we must still sell, in Q debited with what we
expect to buy. ``close_fx_position`` books the real conversion at the bank and the difference to
``income:fx_gains`` / ``expenses:fx_losses`` (both in the bought currency).

Rounding: conversions round HALF_EVEN (banker's rounding) once per cohort; a partial close books the
proportional part of the expected amount, rounded HALF_EVEN.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from fractions import Fraction

from sqlalchemy import select

from finloop.core.errors import Conflict, InvalidRequest
from finloop.core.money import Rounding, check_amount, currency, round_minor
from finloop.db.uow import UnitOfWork
from finloop.ledger import service as ledger
from finloop.ledger.domain import AccountType, BalanceRule, PostingSpec, TransferSpec
from finloop.ledger.models import Entry
from finloop.payments.postings import AccountSpec, ensure_account
from finloop.settlement.accounts import CUSTODY_BANK_ACCOUNT, bank_account_code
from finloop.settlement.models import FxRate

FX_GAINS_CODE = "income:fx_gains"
FX_LOSSES_CODE = "expenses:fx_losses"
MAX_RATE = Decimal(10) ** 9
MAX_RATE_PLACES = 12
MAX_SOURCE = 100
MAX_REFERENCE = 100


def fx_position_code(first: str, second: str) -> str:
    a, b = sorted((first, second))
    return f"assets:fx_position:{a}_{b}"


def position_account(uow: UnitOfWork, tenant_id: str, pair: tuple[str, str], currency_code: str) -> str:
    return ensure_account(uow, tenant_id, AccountSpec(fx_position_code(*pair), AccountType.ASSET), currency_code)


@dataclass(frozen=True, slots=True)
class Quote:
    """A rate usable for P→Q, with where it came from."""

    base: str
    quote: str
    rate: Fraction  # quote units per base unit (major)
    rate_text: str  # as recorded (the inverse is written with 18 significant digits)
    source: str
    as_of: datetime
    rate_id: str
    inverted: bool

    def metadata(self) -> dict[str, str]:
        return {"fx_rate": self.rate_text, "fx_source": self.source, "fx_as_of": self.as_of.isoformat(),
                "fx_base": self.base, "fx_quote": self.quote, "fx_rate_id": self.rate_id,
                "fx_inverted": "true" if self.inverted else "false"}


def check_rate(value: Decimal) -> Decimal:
    if isinstance(value, bool) or not isinstance(value, Decimal) or not value.is_finite() \
            or not Decimal(0) < value <= MAX_RATE:
        raise InvalidRequest(f"A rate is a decimal above 0 and at most {MAX_RATE}.", code="invalid_rate",
                             param="rate")
    exponent = value.normalize().as_tuple().exponent
    if isinstance(exponent, int) and exponent < -MAX_RATE_PLACES:
        raise InvalidRequest(f"A rate has at most {MAX_RATE_PLACES} decimal places.", code="invalid_rate",
                             param="rate")
    return value


def add_rate(uow: UnitOfWork, tenant_id: str, *, base: str, quote: str, rate: Decimal, source: str,
             as_of: datetime) -> FxRate:
    """Record a rate: one ``base`` (major unit) is worth ``rate`` ``quote`` from ``as_of`` on."""
    for code, param in ((base, "base"), (quote, "quote")):
        try:
            currency(code)
        except InvalidRequest as error:
            error.param = param
            raise
    if base == quote:
        raise InvalidRequest("A rate converts between two different currencies.", code="same_currency",
                             param="quote")
    check_rate(rate)
    if not source or len(source) > MAX_SOURCE or "\x00" in source:
        raise InvalidRequest(f"A source of 1 to {MAX_SOURCE} characters is required.", code="invalid_source",
                             param="source")
    if as_of.tzinfo is None:
        raise InvalidRequest("as_of needs a UTC offset.", code="invalid_as_of", param="as_of")
    existing = uow.session.scalar(select(FxRate).where(
        FxRate.tenant_id == tenant_id, FxRate.base == base, FxRate.quote == quote, FxRate.as_of == as_of,
        FxRate.source == source))
    if existing is not None:
        if existing.rate != rate:
            raise Conflict("A different rate from this source at this time is already recorded.",
                           code="rate_exists", param="rate")
        return existing
    row = FxRate(id=uow.ids.new("fx_rate"), tenant_id=tenant_id, base=base, quote=quote, rate=rate,
                 source=source, as_of=as_of, created_at=uow.clock.now())
    uow.session.add(row)
    uow.session.flush()
    return row


def list_rates(uow: UnitOfWork, tenant_id: str, *, base: str | None = None, quote: str | None = None,
               after: str | None = None, limit: int = 50) -> list[FxRate]:
    """Rates by id (newest last), ``limit + 1`` rows so a page can tell that more exist."""
    query = select(FxRate).where(FxRate.tenant_id == tenant_id)
    if base:
        query = query.where(FxRate.base == base)
    if quote:
        query = query.where(FxRate.quote == quote)
    if after:
        query = query.where(FxRate.id > after)
    return list(uow.session.scalars(query.order_by(FxRate.id).limit(limit + 1)))


def _latest(uow: UnitOfWork, tenant_id: str, base: str, quote: str, at: datetime) -> FxRate | None:
    return uow.session.scalar(select(FxRate).where(
        FxRate.tenant_id == tenant_id, FxRate.base == base, FxRate.quote == quote, FxRate.as_of <= at)
        .order_by(FxRate.as_of.desc(), FxRate.created_at.desc(), FxRate.id.desc()).limit(1))


def find_quote(uow: UnitOfWork, tenant_id: str, *, base: str, quote: str, at: datetime) -> Quote | None:
    """The latest rate for base→quote at or before ``at``; the inverse of a quote→base rate when that is
    newer or the only one."""
    direct = _latest(uow, tenant_id, base, quote, at)
    inverse = _latest(uow, tenant_id, quote, base, at)
    if direct is not None and (inverse is None or direct.as_of >= inverse.as_of):
        return Quote(base, quote, Fraction(direct.rate), format(direct.rate.normalize(), "f"), direct.source,
                     direct.as_of, direct.id, inverted=False)
    if inverse is not None:
        exact = 1 / Fraction(inverse.rate)
        text = format(Decimal(exact.numerator) / Decimal(exact.denominator), "f")
        return Quote(base, quote, exact, text, inverse.source, inverse.as_of, inverse.id, inverted=True)
    return None


def _balance(uow: UnitOfWork, tenant_id: str, account_id: str) -> int:
    account = ledger.get_account(uow, tenant_id, account_id)
    uow.session.refresh(account)  # the ledger writes running sums with plain SQL on PostgreSQL
    return ledger.balances(account).posted


def close_fx_position(uow: UnitOfWork, tenant_id: str, *, sold_currency: str, bought_currency: str,
                      sold_amount: int, bought_amount: int, reference: str,
                      bank_account: str = CUSTODY_BANK_ACCOUNT) -> str:
    """Book a real conversion: ``sold_amount`` of ``sold_currency`` left our bank account and
    ``bought_amount`` of ``bought_currency`` arrived. The position of the pair is closed for the sold part
    at the amount booked when the cohorts settled; the difference is an FX gain or loss.

    In the sold currency: Dr fx_position, Cr bank. In the bought currency: Dr bank; Cr fx_position
    (the booked share, HALF_EVEN for a partial close); Cr fx_gains or Dr fx_losses (the difference).
    Returns the entry id; the same reference posts once.
    """
    for code, param in ((sold_currency, "sold_currency"), (bought_currency, "bought_currency")):
        try:
            currency(code)
        except InvalidRequest as error:
            error.param = param
            raise
    if sold_currency == bought_currency:
        raise InvalidRequest("A conversion is between two different currencies.", code="same_currency",
                             param="bought_currency")
    for value, param in ((sold_amount, "sold_amount"), (bought_amount, "bought_amount")):
        try:
            check_amount(value, allow_zero=False, allow_negative=False)
        except InvalidRequest as error:
            error.param = param
            raise
    if not reference or len(reference) > MAX_REFERENCE or "\x00" in reference:
        raise InvalidRequest(f"A reference of 1 to {MAX_REFERENCE} characters is required.",
                             code="invalid_reference", param="reference")
    pair = (sold_currency, bought_currency)
    sold_position = position_account(uow, tenant_id, pair, sold_currency)
    bought_position = position_account(uow, tenant_id, pair, bought_currency)
    owed = -_balance(uow, tenant_id, sold_position)  # what settlements left us to sell
    expected = _balance(uow, tenant_id, bought_position)  # what they expect us to buy
    key = f"fx_close:{reference}"
    if owed <= 0 or sold_amount > owed:
        replay = uow.session.scalar(select(Entry.id).where(Entry.tenant_id == tenant_id, Entry.transfer_key == key))
        if replay is not None:  # the same close again, after it already emptied the position
            return replay
        raise InvalidRequest(f"The open {sold_currency} position is {max(owed, 0)}; cannot sell {sold_amount}.",
                             code="fx_position_exceeded", param="sold_amount",
                             details={"open_amount": max(owed, 0)})
    booked = expected if sold_amount == owed else round_minor(Fraction(expected * sold_amount, owed),
                                                              Rounding.HALF_EVEN)
    difference = bought_amount - booked
    bank_sold = ensure_account(uow, tenant_id, AccountSpec(bank_account_code(bank_account), AccountType.ASSET),
                               sold_currency)
    bank_bought = ensure_account(uow, tenant_id, AccountSpec(bank_account_code(bank_account), AccountType.ASSET),
                                 bought_currency)
    legs: list[tuple[str, int, str]] = [
        (sold_position, sold_amount, sold_currency), (bank_sold, -sold_amount, sold_currency),
        (bank_bought, bought_amount, bought_currency), (bought_position, -booked, bought_currency)]
    if difference > 0:
        gains = ensure_account(uow, tenant_id, AccountSpec(FX_GAINS_CODE, AccountType.INCOME), bought_currency)
        legs.append((gains, -difference, bought_currency))
    elif difference < 0:
        losses = ensure_account(uow, tenant_id, AccountSpec(FX_LOSSES_CODE, AccountType.EXPENSE, BalanceRule.NONE),
                                bought_currency)
        legs.append((losses, -difference, bought_currency))
    posted = ledger.post_transfer(uow, tenant_id, TransferSpec(
        key=key, postings=tuple(PostingSpec(a, amount, c) for a, amount, c in legs if amount),
        description=f"FX conversion {reference}: {sold_amount} {sold_currency} -> {bought_amount} {bought_currency}",
        metadata={"reference": reference, "sold_currency": sold_currency, "bought_currency": bought_currency,
                  "sold_amount": sold_amount, "bought_amount": bought_amount, "booked_amount": booked,
                  "fx_difference": difference}))
    return posted.id
