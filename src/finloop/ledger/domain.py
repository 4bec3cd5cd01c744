"""Pure rules of the ledger: account types, balance rules, transfer validation. No I/O.

Invariants owned here:
- an entry has at least two postings, each non-zero and within the amount range, no account twice,
  and the postings of each currency sum to zero;
- an account's balance rule holds after every transfer that touches it;
- the available balance counts pending holds against the account, the posted balance does not.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from finloop.core.errors import Conflict, InvalidRequest, InvariantViolation
from finloop.core.money import MAX_AMOUNT, check_amount, currency


class AccountType(StrEnum):
    ASSET = "asset"
    LIABILITY = "liability"
    EQUITY = "equity"
    INCOME = "income"
    EXPENSE = "expense"


class Side(StrEnum):
    DEBIT = "debit"
    CREDIT = "credit"


class BalanceRule(StrEnum):
    NONE = "none"
    DEBITS_MUST_NOT_EXCEED_CREDITS = "debits_must_not_exceed_credits"
    CREDITS_MUST_NOT_EXCEED_DEBITS = "credits_must_not_exceed_debits"


class AccountStatus(StrEnum):
    OPEN = "open"
    FROZEN = "frozen"
    CLOSED = "closed"


class HoldStatus(StrEnum):
    PENDING = "pending"
    POSTED = "posted"
    VOIDED = "voided"
    EXPIRED = "expired"


class EntryKind(StrEnum):
    TRANSFER = "transfer"
    HOLD_POST = "hold_post"
    REVERSAL = "reversal"


NORMAL_SIDE = {
    AccountType.ASSET: Side.DEBIT,
    AccountType.EXPENSE: Side.DEBIT,
    AccountType.LIABILITY: Side.CREDIT,
    AccountType.EQUITY: Side.CREDIT,
    AccountType.INCOME: Side.CREDIT,
}

#: The first segment of an account code names its type.
ROOT_TYPES = {
    "assets": AccountType.ASSET,
    "liabilities": AccountType.LIABILITY,
    "equity": AccountType.EQUITY,
    "income": AccountType.INCOME,
    "expenses": AccountType.EXPENSE,
}

_CODE = re.compile(r"^[a-z]+(:[A-Za-z0-9][A-Za-z0-9_.\-]*)+$")


def check_account_code(code: str, account_type: AccountType) -> None:
    """A code is hierarchical (``liabilities:merchant:M1:available``) and starts with its type's root."""
    if len(code) > 255 or not _CODE.match(code):
        raise InvalidRequest(
            "Account codes are segments joined by ':' starting with a root such as 'assets' "
            "(e.g. 'liabilities:merchant:M1:available').", code="invalid_account_code", param="code")
    root = code.split(":", 1)[0]
    if root not in ROOT_TYPES:
        raise InvalidRequest(f"Account code root must be one of {', '.join(ROOT_TYPES)}.",
                             code="invalid_account_code", param="code")
    if ROOT_TYPES[root] is not account_type:
        raise InvalidRequest(f"An account under '{root}' has type {ROOT_TYPES[root].value}.",
                             code="account_type_mismatch", param="type")


@dataclass(frozen=True, slots=True)
class PostingSpec:
    account_id: str
    amount: int  # signed minor units: debit positive, credit negative
    currency: str


@dataclass(frozen=True, slots=True)
class TransferSpec:
    """What a client asks the ledger to post: one balanced journal entry."""

    key: str
    postings: tuple[PostingSpec, ...]
    description: str = ""
    effective_at: datetime | None = None
    metadata: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def simple(cls, key: str, debit_account_id: str, credit_account_id: str, amount: int, currency_code: str,
               description: str = "", effective_at: datetime | None = None,
               metadata: dict[str, Any] | None = None) -> TransferSpec:
        return cls(key, (PostingSpec(debit_account_id, amount, currency_code),
                         PostingSpec(credit_account_id, -amount, currency_code)),
                   description, effective_at, metadata or {})

    def content_hash(self) -> str:
        """A digest of what the client asked for, to tell a retry from a reused key.

        The repr of a tuple of strings and ints is unambiguous and made in C; metadata, which may nest,
        goes through canonical JSON (skipped when empty, the common case on the posting path).
        """
        body = (
            tuple((p.account_id, p.amount, p.currency) for p in self.postings),
            self.description,
            self.effective_at.isoformat() if self.effective_at else None,
            json.dumps(self.metadata, sort_keys=True, default=str) if self.metadata else "",
        )
        return hashlib.sha256(repr(body).encode()).hexdigest()


def validate_transfer(spec: TransferSpec, param: str = "") -> None:
    """Check the shape of one entry before any account is read."""
    prefix = f"{param}." if param else ""
    if not spec.key or len(spec.key) > 255:
        raise InvalidRequest("A transfer key of 1 to 255 characters is required.", code="invalid_transfer_key",
                             param=f"{prefix}key")
    if len(spec.postings) < 2:
        raise InvalidRequest("An entry needs at least two postings.", code="too_few_postings",
                             param=f"{prefix}postings")
    seen: set[str] = set()
    sums: dict[str, int] = defaultdict(int)
    for index, posting in enumerate(spec.postings):
        where = f"{prefix}postings[{index}]"
        try:
            check_amount(posting.amount, allow_zero=False)
        except InvalidRequest as error:
            error.param = f"{where}.amount"
            raise
        try:
            currency(posting.currency)
        except InvalidRequest as error:
            error.param = f"{where}.currency"
            raise
        if posting.account_id in seen:
            raise InvalidRequest("An account appears twice in one entry.", code="duplicate_account",
                                 param=f"{where}.account_id")
        seen.add(posting.account_id)
        sums[posting.currency] += posting.amount
    unbalanced = sorted(code for code, total in sums.items() if total != 0)
    if unbalanced:
        raise InvalidRequest(f"Debits and credits differ in {', '.join(unbalanced)}.",
                             code="unbalanced_entry", param=f"{prefix}postings",
                             details={"imbalance": {c: sums[c] for c in unbalanced}})


def check_distinct_keys(specs: Sequence[TransferSpec]) -> None:
    seen: set[str] = set()
    for index, spec in enumerate(specs):
        if spec.key in seen:
            raise InvalidRequest("Two transfers of one batch share a key.", code="duplicate_transfer_key",
                                 param=f"transfers[{index}].key")
        seen.add(spec.key)


#: Running sums stay far below the BIGINT limit (9.2 * 10**18).
SAFE_TOTAL = MAX_AMOUNT * 1000


@dataclass(slots=True)
class AccountState:
    """An account's running sums as locked for a transaction, plus the deltas applied to them."""

    id: str
    currency: str
    status: str
    balance_rule: str
    overdraft_limit: int
    normal_side: str
    debits_posted: int
    credits_posted: int
    debits_pending: int
    credits_pending: int
    delta_debits_posted: int = 0
    delta_credits_posted: int = 0
    delta_debits_pending: int = 0
    delta_credits_pending: int = 0

    def ensure_usable(self, param: str) -> None:
        if self.status == AccountStatus.FROZEN:
            raise InvariantViolation(f"Account {self.id} is frozen.", code="account_frozen", param=param)
        if self.status == AccountStatus.CLOSED:
            raise InvariantViolation(f"Account {self.id} is closed.", code="account_closed", param=param)

    def ensure_currency(self, code: str, param: str) -> None:
        if code != self.currency:
            raise InvalidRequest(f"Account {self.id} holds {self.currency}, not {code}.",
                                 code="currency_mismatch", param=param)

    def post(self, amount: int) -> None:
        if amount > 0:
            self.debits_posted += amount
            self.delta_debits_posted += amount
        else:
            self.credits_posted -= amount
            self.delta_credits_posted -= amount

    def unpost(self, amount: int) -> None:
        """Undo ``post(amount)``."""
        if amount > 0:
            self.debits_posted -= amount
            self.delta_debits_posted -= amount
        else:
            self.credits_posted += amount
            self.delta_credits_posted += amount

    def reserve(self, amount: int) -> None:
        """Add (amount > 0: debit) or release (release=True via negative delta) a pending amount."""
        if amount > 0:
            self.debits_pending += amount
            self.delta_debits_pending += amount
        else:
            self.credits_pending -= amount
            self.delta_credits_pending -= amount

    def release(self, amount: int) -> None:
        """Undo ``reserve(amount)``."""
        if amount > 0:
            self.debits_pending -= amount
            self.delta_debits_pending -= amount
        else:
            self.credits_pending += amount
            self.delta_credits_pending += amount

    def ensure_rule(self, param: str) -> None:
        if self.debits_posted > SAFE_TOTAL or self.credits_posted > SAFE_TOTAL:
            raise InvariantViolation("Account totals would leave the safe range.", code="amount_too_large",
                                     param=param)
        if self.balance_rule == BalanceRule.DEBITS_MUST_NOT_EXCEED_CREDITS:
            excess = self.debits_posted + self.debits_pending - self.credits_posted
            if excess > self.overdraft_limit:
                raise InvariantViolation(
                    f"Account {self.id} lacks funds: debits would exceed credits by {excess} "
                    f"(overdraft limit {self.overdraft_limit}).",
                    code="insufficient_funds", param=param,
                    details={"account_id": self.id, "shortfall": excess - self.overdraft_limit})
        elif self.balance_rule == BalanceRule.CREDITS_MUST_NOT_EXCEED_DEBITS:
            excess = self.credits_posted + self.credits_pending - self.debits_posted
            if excess > self.overdraft_limit:
                raise InvariantViolation(
                    f"Account {self.id} would exceed its limit: credits would exceed debits by {excess} "
                    f"(overdraft limit {self.overdraft_limit}).",
                    code="credit_limit_exceeded", param=param,
                    details={"account_id": self.id, "shortfall": excess - self.overdraft_limit})

    @property
    def changed(self) -> bool:
        return bool(self.delta_debits_posted or self.delta_credits_posted
                    or self.delta_debits_pending or self.delta_credits_pending)


@dataclass(frozen=True, slots=True)
class Balances:
    """The figures a person reads off an account, signed to its normal side."""

    posted: int
    pending_debits: int
    pending_credits: int
    available: int
    debits_posted: int
    credits_posted: int

    @classmethod
    def of(cls, normal_side: str, debits_posted: int, credits_posted: int,
           debits_pending: int, credits_pending: int) -> Balances:
        posted = signed_balance(normal_side, debits_posted, credits_posted)
        # Only the pending side that would reduce the balance counts against what is available.
        available = posted - (credits_pending if normal_side == Side.DEBIT else debits_pending)
        return cls(posted, debits_pending, credits_pending, available, debits_posted, credits_posted)


def signed_balance(normal_side: str, debits: int, credits: int) -> int:
    return debits - credits if normal_side == Side.DEBIT else credits - debits


def reversed_postings(postings: Iterable[PostingSpec]) -> tuple[PostingSpec, ...]:
    return tuple(PostingSpec(p.account_id, -p.amount, p.currency) for p in postings)


def ensure_same_content(existing_hash: str, spec_hash: str, key: str) -> None:
    if existing_hash != spec_hash:
        raise Conflict(f"Transfer key {key!r} was already used for a different transfer.",
                       code="transfer_key_reused", param="key")
