"""Ledger use cases. Every function takes a unit of work and never commits.

Invariants owned here:
- every entry balances per currency and every account's balance rule holds after each transfer;
- running sums on ``accounts`` change only together with the postings (or holds) that explain them,
  in the same transaction, so they can always be recomputed from postings and pending holds;
- the accounts a transaction touches are locked once, in id order, so parallel batches never deadlock;
- a transfer key posts at most once per tenant, forever;
- nothing is posted with a business date inside a closed accounting period.

The posting path takes one lock per account per batch and writes each account's summed deltas once
(docs/adr/0001-ledger-posting-path.md). On PostgreSQL it talks to psycopg directly: the lock, the key
lookup and the closed periods travel in one pipeline, entries, postings and sums in another, so a
transfer or a batch of a thousand costs two round trips. SQLite uses SQLAlchemy Core, same steps.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any, cast

import psycopg
from sqlalchemy import Table, and_, bindparam, func, insert, or_, select, update
from sqlalchemy.exc import IntegrityError, OperationalError

from finloop.audit import service as audit
from finloop.core.calendar import BusinessCalendar
from finloop.core.errors import Conflict, FinloopError, InvalidRequest, InvariantViolation, NotFound
from finloop.core.money import check_amount, currency
from finloop.db.uow import UnitOfWork
from finloop.ledger.domain import (
    NORMAL_SIDE,
    AccountState,
    AccountStatus,
    AccountType,
    BalanceRule,
    Balances,
    EntryKind,
    HoldStatus,
    PostingSpec,
    Side,
    TransferSpec,
    check_account_code,
    check_distinct_keys,
    ensure_same_content,
    reversed_postings,
    signed_balance,
    validate_transfer,
)
from finloop.ledger.models import Account, AccountingPeriod, Entry, Hold, Posting
from finloop.tenancy.calendar import get_calendar

accounts_t = cast(Table, Account.__table__)
entries_t = cast(Table, Entry.__table__)
postings_t = cast(Table, Posting.__table__)
holds_t = cast(Table, Hold.__table__)

#: Clocks of clients and servers drift; an entry may be dated this far ahead of our clock.
FUTURE_SKEW = timedelta(minutes=5)

_UPDATE_SUMS = (
    update(accounts_t)
    .where(accounts_t.c.id == bindparam("b_id"))
    .values(
        debits_posted=accounts_t.c.debits_posted + bindparam("b_dp"),
        credits_posted=accounts_t.c.credits_posted + bindparam("b_cp"),
        debits_pending=accounts_t.c.debits_pending + bindparam("b_dpe"),
        credits_pending=accounts_t.c.credits_pending + bindparam("b_cpe"),
        version=accounts_t.c.version + 1,
        updated_at=bindparam("b_now"),
    )
)

_STATE_COLUMNS = (accounts_t.c.id, accounts_t.c.currency, accounts_t.c.status, accounts_t.c.balance_rule,
                  accounts_t.c.overdraft_limit, accounts_t.c.normal_side, accounts_t.c.debits_posted,
                  accounts_t.c.credits_posted, accounts_t.c.debits_pending, accounts_t.c.credits_pending)
# Built once: SQLAlchemy then reuses the compiled statements instead of rebuilding them per call.
_LOCK = (select(*_STATE_COLUMNS)
         .where(accounts_t.c.tenant_id == bindparam("tenant_id"), accounts_t.c.id.in_(bindparam("ids", expanding=True)))
         .order_by(accounts_t.c.id)
         .with_for_update(key_share=True))
_EXISTING = (select(entries_t.c.transfer_key, entries_t.c.id, entries_t.c.content_hash, entries_t.c.business_date,
                    entries_t.c.effective_at)
             .where(entries_t.c.tenant_id == bindparam("tenant_id"),
                    entries_t.c.transfer_key.in_(bindparam("keys", expanding=True))))
_CLOSED_PERIODS = select(AccountingPeriod.start_on, AccountingPeriod.end_on).where(
    AccountingPeriod.tenant_id == bindparam("tenant_id"), AccountingPeriod.status == "closed")
_INSERT_ENTRIES = insert(entries_t)
_INSERT_POSTINGS = insert(postings_t)

# PostgreSQL's posting path speaks to psycopg directly: pipelines have no SQLAlchemy equivalent, and
# array parameters keep every statement's text fixed (prepared once per connection) whatever the batch size.
_PG_LOCK = (
    "SELECT id, currency, status, balance_rule, overdraft_limit, normal_side, debits_posted, credits_posted,"
    " debits_pending, credits_pending FROM accounts WHERE tenant_id = %s AND id = ANY(%s::varchar[])"
    " ORDER BY id FOR NO KEY UPDATE")
# One unique-index probe per key whatever the statistics say (a fast-growing table often has none yet).
_PG_EXISTING = (
    "SELECT k.transfer_key, e.id, e.content_hash, e.business_date, e.effective_at"
    " FROM unnest(%s::varchar[]) AS k(transfer_key) CROSS JOIN LATERAL"
    " (SELECT id, content_hash, business_date, effective_at FROM entries"
    "  WHERE entries.tenant_id = %s AND entries.transfer_key = k.transfer_key) AS e")
_PG_CLOSED_PERIODS = "SELECT start_on, end_on FROM accounting_periods WHERE tenant_id = %s AND status = 'closed'"
_PG_INSERT_ENTRIES = (
    "INSERT INTO entries (id, tenant_id, transfer_key, content_hash, kind, description, effective_at,"
    " business_date, created_at, batch_id, hold_id, reverses_id, metadata)"
    " SELECT u.id, %s, u.transfer_key, u.content_hash, %s, u.description, u.effective_at, u.business_date, %s,"
    " %s, %s, %s, u.metadata::jsonb"
    " FROM unnest(%s::varchar[], %s::varchar[], %s::varchar[], %s::text[], %s::timestamptz[], %s::date[],"
    " %s::text[]) AS u(id, transfer_key, content_hash, description, effective_at, business_date, metadata)")
_PG_INSERT_POSTINGS = (
    "INSERT INTO postings (tenant_id, entry_id, account_id, currency, amount, effective_at)"
    " SELECT %s, u.entry_id, u.account_id, u.currency, u.amount, u.effective_at"
    " FROM unnest(%s::varchar[], %s::varchar[], %s::varchar[], %s::bigint[], %s::timestamptz[])"
    " AS u(entry_id, account_id, currency, amount, effective_at)")
_PG_UPDATE_SUMS = (
    "UPDATE accounts AS a SET debits_posted = a.debits_posted + u.dp, credits_posted = a.credits_posted + u.cp,"
    " debits_pending = a.debits_pending + u.dpe, credits_pending = a.credits_pending + u.cpe,"
    " version = a.version + 1, updated_at = %s"
    " FROM unnest(%s::varchar[], %s::bigint[], %s::bigint[], %s::bigint[], %s::bigint[]) AS u(id, dp, cp, dpe, cpe)"
    " WHERE a.id = u.id")


# ---------------------------------------------------------------------------------------------- accounts


def create_account(uow: UnitOfWork, tenant_id: str, *, code: str, type: AccountType, currency_code: str,
                   name: str = "", balance_rule: BalanceRule = BalanceRule.NONE, overdraft_limit: int = 0,
                   normal_side: Side | None = None, metadata: dict[str, Any] | None = None) -> Account:
    check_account_code(code, type)
    currency(currency_code)
    check_amount(overdraft_limit, allow_negative=False)
    if find_account_by_code(uow, tenant_id, code, currency_code) is not None:
        raise Conflict(f"Account {code} in {currency_code} already exists.", code="account_exists", param="code")
    now = uow.clock.now()
    account = Account(
        id=uow.ids.new("account"), tenant_id=tenant_id, code=code, name=name or code, type=type.value,
        normal_side=(normal_side or NORMAL_SIDE[type]).value, currency=currency_code,
        balance_rule=balance_rule.value, overdraft_limit=overdraft_limit, status=AccountStatus.OPEN.value,
        meta=metadata or {}, debits_posted=0, credits_posted=0, debits_pending=0, credits_pending=0,
        version=0, created_at=now, updated_at=now,
    )
    uow.session.add(account)
    uow.session.flush()
    return account


def find_account(uow: UnitOfWork, tenant_id: str, account_id: str) -> Account | None:
    return uow.session.scalar(select(Account).where(Account.tenant_id == tenant_id, Account.id == account_id))


def get_account(uow: UnitOfWork, tenant_id: str, account_id: str, param: str = "account_id") -> Account:
    account = find_account(uow, tenant_id, account_id)
    if account is None:
        raise NotFound(f"No such account: {account_id}.", code="account_not_found", param=param)
    return account


def find_account_by_code(uow: UnitOfWork, tenant_id: str, code: str, currency_code: str) -> Account | None:
    return uow.session.scalar(select(Account).where(
        Account.tenant_id == tenant_id, Account.code == code, Account.currency == currency_code))


def list_accounts(uow: UnitOfWork, tenant_id: str, *, after: str | None = None, limit: int = 50,
                  code_prefix: str | None = None, currency_code: str | None = None,
                  type: AccountType | None = None, status: AccountStatus | None = None) -> list[Account]:
    query = select(Account).where(Account.tenant_id == tenant_id)
    if after:
        query = query.where(Account.id > after)
    if code_prefix:
        query = query.where(Account.code.startswith(code_prefix, autoescape=True))
    if currency_code:
        query = query.where(Account.currency == currency_code)
    if type:
        query = query.where(Account.type == type.value)
    if status:
        query = query.where(Account.status == status.value)
    return list(uow.session.scalars(query.order_by(Account.id).limit(limit)))


def set_account_status(uow: UnitOfWork, tenant_id: str, account_id: str, status: AccountStatus, *,
                       actor: str) -> Account:
    # Locked, so that no posting commits between the emptiness check and the close.
    account = uow.session.scalar(select(Account).where(Account.tenant_id == tenant_id, Account.id == account_id)
                                 .with_for_update().execution_options(populate_existing=True))
    if account is None:
        raise NotFound(f"No such account: {account_id}.", code="account_not_found", param="account_id")
    before = account.status
    if account.status == AccountStatus.CLOSED:
        raise InvariantViolation("A closed account cannot change status.", code="account_closed")
    if status == AccountStatus.CLOSED and (account.debits_pending or account.credits_pending
                                           or account.debits_posted != account.credits_posted):
        raise InvariantViolation("Only an account with a zero balance and no holds can be closed.",
                                 code="account_not_empty")
    account.status = status.value
    account.updated_at = uow.clock.now()
    account.version += 1
    uow.session.flush()
    audit.record(uow, tenant_id, actor=actor, action=f"account.{status.value}", object_type="account",
                 object_id=account.id, before={"status": before}, after={"status": account.status})
    return account


def balances(account: Account) -> Balances:
    return Balances.of(account.normal_side, account.debits_posted, account.credits_posted,
                       account.debits_pending, account.credits_pending)


# ---------------------------------------------------------------------------------------------- posting


@dataclass(frozen=True, slots=True)
class PostedEntry:
    id: str
    key: str
    business_date: date
    effective_at: datetime
    replayed: bool  # True when the key had already posted this very transfer
    #: When the entry was written; known without a read only for an entry this call wrote.
    created_at: datetime | None = None


def _lock_accounts(uow: UnitOfWork, tenant_id: str, account_ids: Iterable[str]) -> dict[str, AccountState]:
    """Read and lock the given accounts in id order (the order that keeps parallel batches deadlock-free).

    The lock is ``FOR NO KEY UPDATE``, the one an UPDATE of the running sums takes anyway: it
    serialises every writer of an account, yet lets rows that merely reference the account (their
    foreign-key check takes ``FOR KEY SHARE``) be inserted meanwhile.
    """
    rows = uow.session.execute(_LOCK, {"tenant_id": tenant_id, "ids": sorted(set(account_ids))}).all()
    return {row[0]: AccountState(*row) for row in rows}


def _write_sums(uow: UnitOfWork, states: Iterable[AccountState], now: datetime) -> None:
    """Add each changed account's summed deltas to its running sums: one statement for all accounts."""
    changed = [s for s in states if s.changed]
    if not changed:
        return
    if uow.dialect == "postgresql":
        try:
            _driver_connection(uow).execute(_PG_UPDATE_SUMS, _sums_params(changed, now))
        except psycopg.Error as error:
            raise _sqlalchemy_error(error) from error
        return
    uow.session.execute(_UPDATE_SUMS, [
        {"b_id": s.id, "b_dp": s.delta_debits_posted, "b_cp": s.delta_credits_posted,
         "b_dpe": s.delta_debits_pending, "b_cpe": s.delta_credits_pending, "b_now": now}
        for s in changed])


def _sums_params(changed: Sequence[AccountState], now: datetime) -> tuple[Any, ...]:
    return (now, _array([s.id for s in changed]), _int_array([s.delta_debits_posted for s in changed]),
            _int_array([s.delta_credits_posted for s in changed]),
            _int_array([s.delta_debits_pending for s in changed]),
            _int_array([s.delta_credits_pending for s in changed]))


def _driver_connection(uow: UnitOfWork) -> psycopg.Connection[Any]:
    """The psycopg connection under the unit of work's transaction (PostgreSQL only)."""
    return cast("psycopg.Connection[Any]", uow.session.connection().connection.driver_connection)


def _sqlalchemy_error(error: psycopg.Error) -> Exception:
    """A driver error as SQLAlchemy would raise it, so callers and the API map it as any other."""
    if isinstance(error, psycopg.IntegrityError):
        return IntegrityError(None, None, error)
    if isinstance(error, psycopg.OperationalError):
        return OperationalError(None, None, error)
    return error


def _closed_periods(uow: UnitOfWork, tenant_id: str) -> list[tuple[date, date]]:
    rows = uow.session.execute(_CLOSED_PERIODS, {"tenant_id": tenant_id}).all()
    return [(row[0], row[1]) for row in rows]


def _business_date(calendar: BusinessCalendar, periods: list[tuple[date, date]], effective_at: datetime,
                   now: datetime, param: str) -> date:
    if effective_at > now + FUTURE_SKEW:
        raise InvalidRequest("An entry cannot be dated in the future.", code="effective_at_in_future",
                             param=param)
    day = calendar.business_date(effective_at)
    for start_on, end_on in periods:
        if start_on <= day <= end_on:
            raise InvariantViolation(
                f"The accounting period {start_on}..{end_on} is closed; post a correction in the open period.",
                code="period_closed", param=param)
    return day


#: Keys already posted: (entry id, content hash, business date, effective at) by transfer key.
_Existing = dict[str, tuple[str, str, date, datetime]]


def _read_for_posting(uow: UnitOfWork, tenant_id: str, account_ids: list[str], keys: list[str],
                      ) -> tuple[dict[str, AccountState], _Existing, list[tuple[date, date]]]:
    """Lock the accounts, then read the keys already posted and the closed periods.

    The key lookup runs after the lock on purpose: a retry racing its first attempt waits for it on
    the shared accounts, then sees its entry and replays it instead of failing on the unique key.
    On PostgreSQL the three statements travel in one pipeline: one round trip, same order.
    """
    if uow.dialect == "postgresql":
        connection = _driver_connection(uow)
        try:
            with connection.pipeline():
                locked = connection.execute(_PG_LOCK, (tenant_id, _array(account_ids)))
                found = connection.execute(_PG_EXISTING, (_array(keys), tenant_id))
                closed = connection.execute(_PG_CLOSED_PERIODS, (tenant_id,))
        except psycopg.Error as error:
            raise _sqlalchemy_error(error) from error
        states = {row[0]: AccountState(*row) for row in locked.fetchall()}
        existing = {row[0]: (row[1], row[2], row[3], row[4].astimezone(UTC)) for row in found.fetchall()}
        return states, existing, [(row[0], row[1]) for row in closed.fetchall()]
    states = _lock_accounts(uow, tenant_id, account_ids)
    existing = {row[0]: (row[1], row[2], row[3], row[4])
                for row in uow.session.execute(_EXISTING, {"tenant_id": tenant_id, "keys": keys})}
    return states, existing, _closed_periods(uow, tenant_id)


@dataclass(frozen=True, slots=True)
class _NewEntry:
    id: str
    spec: TransferSpec
    content_hash: str
    effective_at: datetime
    business_date: date


@dataclass(frozen=True, slots=True)
class _EntryContext:
    """What every entry of one call shares."""

    tenant_id: str
    kind: str
    created_at: datetime
    batch_id: str | None
    hold_id: str | None
    reverses_id: str | None


def post_transfers(uow: UnitOfWork, tenant_id: str, specs: Sequence[TransferSpec], *,
                   batch_id: str | None = None, kind: EntryKind = EntryKind.TRANSFER,
                   hold_id: str | None = None, reverses_id: str | None = None) -> list[PostedEntry]:
    """Post a batch of entries atomically: all of them or none.

    A transfer whose key already posted the same content is returned as ``replayed`` and posts
    nothing; a key reused for different content is a conflict that fails the whole batch.
    Each account's deltas are summed over the batch and written once, under one lock per account.
    Nothing is written before every transfer of the batch has passed its checks.
    """
    if not specs:
        raise InvalidRequest("A batch needs at least one transfer.", code="empty_batch", param="transfers")
    many = len(specs) > 1
    for index, spec in enumerate(specs):
        validate_transfer(spec, f"transfers[{index}]" if many else "")
    if many:
        check_distinct_keys(specs)
    results = _post(uow, tenant_id, specs, _EntryContext(tenant_id, kind.value, uow.clock.now(), batch_id, hold_id,
                                                         reverses_id), prefixed=many, independent=False)
    return cast(list[PostedEntry], results)  # not independent: the first refusal was raised


def post_each(uow: UnitOfWork, tenant_id: str, specs: Sequence[TransferSpec]) -> list[PostedEntry | FinloopError]:
    """Post transfers that do not depend on one another (concurrent single requests gathered into one
    transaction): each is posted or refused on its own, as if posted alone right after the ones before
    it, and a refusal writes nothing. A refusal is returned in the transfer's place, naming its fields as
    for a single transfer. A key given twice posts once; the second replays the first (or is refused if
    its content differs), as two requests one after the other would."""
    results: list[PostedEntry | FinloopError | None] = [None] * len(specs)
    valid: list[int] = []
    for index, spec in enumerate(specs):
        try:
            validate_transfer(spec)
        except FinloopError as error:
            results[index] = error
        else:
            valid.append(index)
    if valid:
        posted = _post(uow, tenant_id, [specs[i] for i in valid],
                       _EntryContext(tenant_id, EntryKind.TRANSFER.value, uow.clock.now(), None, None, None),
                       prefixed=False, independent=True)
        for index, result in zip(valid, posted, strict=True):
            results[index] = result
    return [result for result in results if result is not None]


def _post(uow: UnitOfWork, tenant_id: str, specs: Sequence[TransferSpec], context: _EntryContext, *,
          prefixed: bool, independent: bool) -> list[PostedEntry | FinloopError]:
    """The posting path of both: lock, check each transfer in order, write what was accepted.

    ``independent``: a transfer that fails its checks is undone in memory and its error returned in its
    place; otherwise the first error is raised and nothing is written."""
    # Work that needs no lock comes first, so the hot accounts stay locked for as short a time as possible.
    hashes = [spec.content_hash() for spec in specs]
    account_ids = sorted({p.account_id for s in specs for p in s.postings})
    calendar = get_calendar(uow, tenant_id)
    now = context.created_at
    states, existing, periods = _read_for_posting(uow, tenant_id, account_ids, [s.key for s in specs])

    results: list[PostedEntry | FinloopError] = []
    accepted: list[_NewEntry] = []
    business_dates: dict[datetime, date] = {}
    #: Keys posted by this call (independent transfers may repeat one): key → (content hash, result).
    posted_here: dict[str, tuple[str, PostedEntry]] = {}
    for index, (spec, content_hash) in enumerate(zip(specs, hashes, strict=True)):
        where = f"transfers[{index}]." if prefixed else ""
        applied: list[tuple[AccountState, int]] = []
        try:
            found = existing.get(spec.key)
            if found is not None:
                ensure_same_content(found[1], content_hash, spec.key)
                results.append(PostedEntry(found[0], spec.key, found[2], found[3], replayed=True))
                continue
            earlier = posted_here.get(spec.key)
            if earlier is not None:
                ensure_same_content(earlier[0], content_hash, spec.key)
                results.append(dataclasses.replace(earlier[1], replayed=True))
                continue
            effective_at = spec.effective_at or now
            business_date = business_dates.get(effective_at)
            if business_date is None:
                business_date = _business_date(calendar, periods, effective_at, now, f"{where}effective_at")
                business_dates[effective_at] = business_date
            for p_index, posting in enumerate(spec.postings):
                state = states.get(posting.account_id)
                if state is None:
                    raise NotFound(f"No such account: {posting.account_id}.", code="account_not_found",
                                   param=f"{where}postings[{p_index}].account_id")
                if state.status != AccountStatus.OPEN:
                    state.ensure_usable(f"{where}postings[{p_index}].account_id")
                if posting.currency != state.currency:
                    state.ensure_currency(posting.currency, f"{where}postings[{p_index}].currency")
                state.post(posting.amount)
                applied.append((state, posting.amount))
            # The rule holds after every transfer, not only at the end of the batch.
            for p_index, posting in enumerate(spec.postings):
                states[posting.account_id].ensure_rule(f"{where}postings[{p_index}].amount")
        except FinloopError as error:
            if not independent:
                raise
            for state, amount in applied:
                state.unpost(amount)
            results.append(error)
            continue
        entry_id = uow.ids.new("entry")
        accepted.append(_NewEntry(entry_id, spec, content_hash, effective_at, business_date))
        result = PostedEntry(entry_id, spec.key, business_date, effective_at, replayed=False, created_at=now)
        results.append(result)
        posted_here[spec.key] = (content_hash, result)

    if accepted:
        changed = [s for s in states.values() if s.changed]
        if uow.dialect == "postgresql":
            _insert_entries_pg(uow, context, accepted, changed)
        else:
            _insert_entries_core(uow, context, accepted)
            _write_sums(uow, changed, now)
    return results


def _key_posted_concurrently() -> Conflict:
    # Another transaction posted one of these keys first (with other accounts, so our locks did not
    # order us behind it).
    return Conflict("A transfer key of this request was posted concurrently.", code="transfer_key_reused",
                    param="key")


def _insert_entries_core(uow: UnitOfWork, context: _EntryContext, accepted: Sequence[_NewEntry]) -> None:
    entry_rows = [{
        "id": e.id, "tenant_id": context.tenant_id, "transfer_key": e.spec.key, "content_hash": e.content_hash,
        "kind": context.kind, "description": e.spec.description, "effective_at": e.effective_at,
        "business_date": e.business_date, "created_at": context.created_at, "batch_id": context.batch_id,
        "hold_id": context.hold_id, "reverses_id": context.reverses_id, "metadata": e.spec.metadata,
    } for e in accepted]
    posting_rows = [{
        "tenant_id": context.tenant_id, "entry_id": e.id, "account_id": p.account_id, "currency": p.currency,
        "amount": p.amount, "effective_at": e.effective_at,
    } for e in accepted for p in e.spec.postings]
    try:
        uow.session.execute(_INSERT_ENTRIES, entry_rows)
    except IntegrityError as error:
        raise _key_posted_concurrently() from error
    uow.session.execute(_INSERT_POSTINGS, posting_rows)


def _insert_entries_pg(uow: UnitOfWork, context: _EntryContext, accepted: Sequence[_NewEntry],
                       changed: Sequence[AccountState]) -> None:
    """Entries, postings and summed deltas: three statements in one pipeline, one round trip.

    Every column travels as one array literal that the server splits in C, so the statements'
    text never changes (each is prepared once per connection) and Python adapts no value per row.
    """
    instants: dict[datetime, str] = {}
    for e in accepted:
        if e.effective_at not in instants:
            instants[e.effective_at] = e.effective_at.isoformat()
    postings = [(e.id, p, instants[e.effective_at]) for e in accepted for p in e.spec.postings]
    connection = _driver_connection(uow)
    try:
        with connection.pipeline(), connection.cursor() as cursor:
            cursor.execute(_PG_INSERT_ENTRIES, (
                context.tenant_id, context.kind, context.created_at, context.batch_id, context.hold_id,
                context.reverses_id, _plain_array([e.id for e in accepted]),
                _array([e.spec.key for e in accepted]), _plain_array([e.content_hash for e in accepted]),
                _array([e.spec.description for e in accepted]),
                _plain_array([instants[e.effective_at] for e in accepted]),
                _plain_array([e.business_date.isoformat() for e in accepted]),
                _array([_metadata_json(e.spec.metadata) for e in accepted])))
            cursor.execute(_PG_INSERT_POSTINGS, (
                context.tenant_id, _plain_array([entry_id for entry_id, _, _ in postings]),
                _array([p.account_id for _, p, _ in postings]),
                _plain_array([p.currency for _, p, _ in postings]),
                _int_array([p.amount for _, p, _ in postings]),
                _plain_array([at for _, _, at in postings])))
            cursor.execute(_PG_UPDATE_SUMS, _sums_params(changed, context.created_at))
    except psycopg.Error as error:
        if isinstance(error, psycopg.errors.UniqueViolation) and error.diag.table_name == "entries":
            raise _key_posted_concurrently() from error
        raise _sqlalchemy_error(error) from error


def _metadata_json(metadata: dict[str, Any]) -> str:
    return json.dumps(metadata) if metadata else "{}"


_ARRAY_ESCAPES = str.maketrans({"\\": "\\\\", '"': '\\"'})


def _array(values: list[str]) -> str:
    """A PostgreSQL array literal: one text parameter the server splits in C, instead of one
    Python-adapted parameter per element."""
    return '{"' + '","'.join([value.translate(_ARRAY_ESCAPES) for value in values]) + '"}'


def _int_array(values: list[int]) -> str:
    return "{" + ",".join(map(str, values)) + "}"


def _plain_array(values: list[str]) -> str:
    """An array literal of values that cannot hold a quote or a backslash: ids we just made, hex
    digests, ISO dates and instants, ISO currency codes."""
    return '{"' + '","'.join(values) + '"}'


def post_transfer(uow: UnitOfWork, tenant_id: str, spec: TransferSpec) -> PostedEntry:
    return post_transfers(uow, tenant_id, [spec])[0]


def find_entry(uow: UnitOfWork, tenant_id: str, entry_id: str) -> Entry | None:
    return uow.session.scalar(select(Entry).where(Entry.tenant_id == tenant_id, Entry.id == entry_id))


def get_entry(uow: UnitOfWork, tenant_id: str, entry_id: str) -> Entry:
    entry = find_entry(uow, tenant_id, entry_id)
    if entry is None:
        raise NotFound(f"No such entry: {entry_id}.", code="entry_not_found", param="entry_id")
    return entry


def entry_postings(uow: UnitOfWork, entry_ids: Sequence[str]) -> dict[str, list[Posting]]:
    grouped: dict[str, list[Posting]] = {entry_id: [] for entry_id in entry_ids}
    if entry_ids:
        for posting in uow.session.scalars(
                select(Posting).where(Posting.entry_id.in_(entry_ids)).order_by(Posting.id)):
            grouped[posting.entry_id].append(posting)
    return grouped


def list_entries(uow: UnitOfWork, tenant_id: str, *, after: str | None = None, limit: int = 50,
                 account_id: str | None = None, batch_id: str | None = None,
                 created_from: datetime | None = None, created_to: datetime | None = None) -> list[Entry]:
    query = select(Entry).where(Entry.tenant_id == tenant_id)
    if after:
        query = query.where(Entry.id > after)
    if batch_id:
        query = query.where(Entry.batch_id == batch_id)
    if account_id:
        query = query.where(Entry.id.in_(select(Posting.entry_id).where(Posting.account_id == account_id)))
    if created_from:
        query = query.where(Entry.created_at >= created_from)
    if created_to:
        query = query.where(Entry.created_at < created_to)
    return list(uow.session.scalars(query.order_by(Entry.id).limit(limit)))


def reverse_entry(uow: UnitOfWork, tenant_id: str, entry_id: str, *, key: str | None = None,
                  description: str | None = None) -> PostedEntry:
    """Post the mirror image of an entry, dated now (the correction lands in the open period)."""
    entry = get_entry(uow, tenant_id, entry_id)
    if entry.kind == EntryKind.REVERSAL:
        raise InvariantViolation("A reversal cannot itself be reversed; post a new transfer.",
                                 code="entry_is_reversal", param="entry_id")
    already = uow.session.scalar(select(Entry.id).where(Entry.reverses_id == entry_id))
    original = [PostingSpec(p.account_id, p.amount, p.currency) for p in entry_postings(uow, [entry_id])[entry_id]]
    spec = TransferSpec(key or f"reversal:{entry_id}", reversed_postings(original),
                        description or f"Reversal of {entry_id}", None, {"reverses": entry_id})
    if already is not None:
        replay = uow.session.scalar(select(Entry).where(Entry.id == already))
        assert replay is not None
        if replay.transfer_key != spec.key:
            raise Conflict("This entry has already been reversed.", code="entry_already_reversed",
                           param="entry_id")
        return PostedEntry(replay.id, replay.transfer_key, replay.business_date, replay.effective_at, True)
    return post_transfers(uow, tenant_id, [spec], kind=EntryKind.REVERSAL, reverses_id=entry_id)[0]


# ---------------------------------------------------------------------------------------------- holds


def create_hold(uow: UnitOfWork, tenant_id: str, *, key: str, debit_account_id: str, credit_account_id: str,
                amount: int, currency_code: str, timeout_seconds: int | None = None, description: str = "",
                metadata: dict[str, Any] | None = None) -> tuple[Hold, bool]:
    """Reserve ``amount``: it counts against the available balance but is not posted.

    Returns the hold and whether it was replayed from an earlier call with the same key.
    """
    check_amount(amount, allow_zero=False, allow_negative=False)
    spec = TransferSpec.simple(key, debit_account_id, credit_account_id, amount, currency_code, description,
                               None, metadata)
    validate_transfer(spec)
    if timeout_seconds is not None and not 1 <= timeout_seconds <= 366 * 86400:
        raise InvalidRequest("A hold times out after 1 second to 366 days (omit it for no timeout).",
                             code="invalid_timeout", param="timeout_seconds")
    content_hash = hashlib.sha256(f"{spec.content_hash()}:{timeout_seconds}".encode()).hexdigest()
    states = _lock_accounts(uow, tenant_id, [debit_account_id, credit_account_id])
    existing = uow.session.scalar(select(Hold).where(Hold.tenant_id == tenant_id, Hold.transfer_key == key))
    if existing is not None:
        ensure_same_content(existing.content_hash, content_hash, key)
        return existing, True
    for index, posting in enumerate(spec.postings):
        param = "debit_account_id" if index == 0 else "credit_account_id"
        state = states.get(posting.account_id)
        if state is None:
            raise NotFound(f"No such account: {posting.account_id}.", code="account_not_found", param=param)
        state.ensure_usable(param)
        state.ensure_currency(currency_code, "currency")
        state.reserve(posting.amount)
    for state in states.values():
        state.ensure_rule("amount")
    now = uow.clock.now()
    hold = Hold(
        id=uow.ids.new("hold"), tenant_id=tenant_id, transfer_key=key, content_hash=content_hash,
        debit_account_id=debit_account_id, credit_account_id=credit_account_id, currency=currency_code,
        amount=amount, posted_amount=0, status=HoldStatus.PENDING.value, description=description,
        meta=metadata or {}, created_at=now,
        expires_at=now + timedelta(seconds=timeout_seconds) if timeout_seconds else None,
    )
    uow.session.add(hold)
    uow.session.flush()
    _write_sums(uow, states.values(), now)
    return hold, False


class HoldExpired(InvariantViolation):
    """The hold's timeout passed; the release of its funds is kept even though the request fails."""

    code = "hold_expired"
    keep_changes = True


def effective_hold_status(hold: Hold, now: datetime) -> HoldStatus:
    if hold.status == HoldStatus.PENDING and hold.expires_at is not None and hold.expires_at <= now:
        return HoldStatus.EXPIRED
    return HoldStatus(hold.status)


def get_hold(uow: UnitOfWork, tenant_id: str, hold_id: str, *, lock: bool = False) -> Hold:
    query = select(Hold).where(Hold.tenant_id == tenant_id, Hold.id == hold_id)
    if lock:
        query = query.with_for_update()
    hold = uow.session.scalar(query)
    if hold is None:
        raise NotFound(f"No such hold: {hold_id}.", code="hold_not_found", param="hold_id")
    return hold


def list_holds(uow: UnitOfWork, tenant_id: str, *, after: str | None = None, limit: int = 50,
               status: HoldStatus | None = None, account_id: str | None = None) -> list[Hold]:
    query = select(Hold).where(Hold.tenant_id == tenant_id)
    if after:
        query = query.where(Hold.id > after)
    if status:
        query = query.where(Hold.status == status.value)
    if account_id:
        query = query.where(or_(Hold.debit_account_id == account_id, Hold.credit_account_id == account_id))
    return list(uow.session.scalars(query.order_by(Hold.id).limit(limit)))


def _release(uow: UnitOfWork, tenant_id: str, hold: Hold, status: HoldStatus,
             posted_amount: int = 0, states: dict[str, AccountState] | None = None) -> dict[str, AccountState]:
    """Release a hold's pending amounts; ``states`` are the accounts when the caller already locked them."""
    if states is None:
        states = _lock_accounts(uow, tenant_id, [hold.debit_account_id, hold.credit_account_id])
    states[hold.debit_account_id].release(hold.amount)
    states[hold.credit_account_id].release(-hold.amount)
    now = uow.clock.now()
    hold.status = status.value
    hold.posted_amount = posted_amount
    hold.resolved_at = now
    return states


def _ensure_pending(uow: UnitOfWork, tenant_id: str, hold: Hold) -> None:
    now = uow.clock.now()
    status = effective_hold_status(hold, now)
    if status is HoldStatus.EXPIRED and hold.status == HoldStatus.PENDING:
        states = _release(uow, tenant_id, hold, HoldStatus.EXPIRED)
        _write_sums(uow, states.values(), now)
        uow.session.flush()
        raise HoldExpired(f"Hold {hold.id} expired at {hold.expires_at}.", param="hold_id")
    if status is not HoldStatus.PENDING:
        raise Conflict(f"Hold {hold.id} is already {status.value}.", code=f"hold_already_{status.value}",
                       param="hold_id")


def post_hold(uow: UnitOfWork, tenant_id: str, hold_id: str, *, amount: int | None = None) -> tuple[Hold, str]:
    """Post a pending hold in full or in part; the unposted rest is released. Returns the entry id."""
    hold = get_hold(uow, tenant_id, hold_id, lock=True)
    _ensure_pending(uow, tenant_id, hold)
    to_post = hold.amount if amount is None else check_amount(amount, allow_zero=False, allow_negative=False)
    if to_post > hold.amount:
        raise InvalidRequest(f"Cannot post {to_post}: the hold is for {hold.amount}.",
                             code="amount_exceeds_hold", param="amount")
    states = _release(uow, tenant_id, hold, HoldStatus.POSTED, to_post)
    _write_sums(uow, states.values(), uow.clock.now())
    uow.session.flush()
    spec = TransferSpec.simple(f"hold:{hold.id}:post", hold.debit_account_id, hold.credit_account_id, to_post,
                               hold.currency, hold.description or f"Post of hold {hold.id}", None,
                               {"hold_id": hold.id})
    posted = post_transfers(uow, tenant_id, [spec], kind=EntryKind.HOLD_POST, hold_id=hold.id)[0]
    hold.post_entry_id = posted.id
    uow.session.flush()
    return hold, posted.id


def void_hold(uow: UnitOfWork, tenant_id: str, hold_id: str) -> Hold:
    hold = get_hold(uow, tenant_id, hold_id, lock=True)
    _ensure_pending(uow, tenant_id, hold)
    states = _release(uow, tenant_id, hold, HoldStatus.VOIDED)
    _write_sums(uow, states.values(), uow.clock.now())
    uow.session.flush()
    return hold


def expire_holds(uow: UnitOfWork, *, tenant_id: str | None = None, limit: int = 1000) -> int:
    """Release pending holds whose timeout has passed; returns how many were expired."""
    now = uow.clock.now()
    query = (select(Hold).where(Hold.status == HoldStatus.PENDING.value, Hold.expires_at.is_not(None),
                                Hold.expires_at <= now)
             .order_by(Hold.id).limit(limit).with_for_update(skip_locked=True))
    if tenant_id:
        query = query.where(Hold.tenant_id == tenant_id)
    by_tenant: dict[str, list[Hold]] = {}
    for hold in uow.session.scalars(query).all():
        by_tenant.setdefault(hold.tenant_id, []).append(hold)
    for tenant, holds in sorted(by_tenant.items()):
        # All of a tenant's accounts at once and in id order, like a posting batch: never one hold at a time.
        states = _lock_accounts(uow, tenant, [a for h in holds for a in (h.debit_account_id, h.credit_account_id)])
        for hold in holds:
            _release(uow, tenant, hold, HoldStatus.EXPIRED, states=states)
        _write_sums(uow, states.values(), now)
    uow.session.flush()
    return sum(len(holds) for holds in by_tenant.values())


# ---------------------------------------------------------------------------------------------- periods


def close_period(uow: UnitOfWork, tenant_id: str, *, start_on: date, end_on: date, closed_by: str) -> AccountingPeriod:
    if end_on < start_on:
        raise InvalidRequest("A period ends on or after its start.", code="invalid_period", param="end_on")
    today = get_calendar(uow, tenant_id).business_date(uow.clock.now())
    if end_on >= today:
        raise InvalidRequest("Only a period that has ended can be closed.", code="period_not_ended",
                             param="end_on")
    overlapping = uow.session.scalar(select(AccountingPeriod.id).where(
        AccountingPeriod.tenant_id == tenant_id, AccountingPeriod.start_on <= end_on,
        AccountingPeriod.end_on >= start_on))
    if overlapping:
        raise Conflict("The period overlaps one already closed.", code="period_overlaps", param="start_on")
    period = AccountingPeriod(id=uow.ids.new("period"), tenant_id=tenant_id, start_on=start_on, end_on=end_on,
                              status="closed", closed_at=uow.clock.now(), closed_by=closed_by)
    uow.session.add(period)
    uow.session.flush()
    audit.record(uow, tenant_id, actor=closed_by, action="period.closed", object_type="accounting_period",
                 object_id=period.id, after={"start_on": start_on.isoformat(), "end_on": end_on.isoformat()})
    return period


def list_periods(uow: UnitOfWork, tenant_id: str) -> list[AccountingPeriod]:
    return list(uow.session.scalars(select(AccountingPeriod).where(AccountingPeriod.tenant_id == tenant_id)
                                    .order_by(AccountingPeriod.start_on)))


# ---------------------------------------------------------------------------------------------- history


def balance_as_of(uow: UnitOfWork, account: Account, at: datetime) -> Balances:
    """Posted balance at an instant, from the postings (pending holds are not history)."""
    debits, credits = uow.session.execute(
        select(func.coalesce(func.sum(postings_t.c.amount).filter(postings_t.c.amount > 0), 0),
               func.coalesce(-func.sum(postings_t.c.amount).filter(postings_t.c.amount < 0), 0))
        .where(postings_t.c.account_id == account.id, postings_t.c.effective_at <= at)).one()
    return Balances.of(account.normal_side, int(debits), int(credits), 0, 0)


@dataclass(frozen=True, slots=True)
class StatementLine:
    posting_id: int
    entry_id: str
    effective_at: datetime
    amount: int  # signed to the account's normal side
    balance: int
    description: str


def statement(uow: UnitOfWork, account: Account, *, after: tuple[datetime, int] | None = None,
              start: datetime | None = None, end: datetime | None = None, limit: int = 100) -> list[StatementLine]:
    """Postings in (effective_at, id) order with the running balance after each."""
    sign = 1 if account.normal_side == Side.DEBIT else -1
    bounds = [postings_t.c.account_id == account.id]
    if end is not None:
        bounds.append(postings_t.c.effective_at < end)
    lower = []
    if after is not None:
        lower.append(or_(postings_t.c.effective_at > after[0],
                         and_(postings_t.c.effective_at == after[0], postings_t.c.id > after[1])))
    if start is not None:
        lower.append(postings_t.c.effective_at >= start)
    rows = uow.session.execute(
        select(postings_t.c.id, postings_t.c.entry_id, postings_t.c.effective_at, postings_t.c.amount,
               entries_t.c.description)
        .join(entries_t, entries_t.c.id == postings_t.c.entry_id)
        .where(*bounds, *lower)
        .order_by(postings_t.c.effective_at, postings_t.c.id).limit(limit)).all()
    if not rows:
        return []
    first_at, first_id = rows[0][2], rows[0][0]
    opening = uow.session.scalar(
        select(func.coalesce(func.sum(postings_t.c.amount), 0)).where(
            postings_t.c.account_id == account.id,
            or_(postings_t.c.effective_at < first_at,
                and_(postings_t.c.effective_at == first_at, postings_t.c.id < first_id))))
    balance = sign * int(opening or 0)
    lines = []
    for posting_id, entry_id, effective_at, amount, description in rows:
        balance += sign * amount
        lines.append(StatementLine(posting_id, entry_id, effective_at, sign * amount, balance, description))
    return lines


@dataclass(frozen=True, slots=True)
class AccountTotals:
    account_id: str
    code: str
    name: str
    type: str
    normal_side: str
    currency: str
    debits: int
    credits: int

    @property
    def balance(self) -> int:
        return signed_balance(self.normal_side, self.debits, self.credits)


def account_totals(uow: UnitOfWork, tenant_id: str, *, as_of: datetime | None = None,
                   start: datetime | None = None, types: Sequence[AccountType] | None = None,
                   currency_code: str | None = None) -> list[AccountTotals]:
    """Debit and credit totals per account: from the running sums for now, from postings for history."""
    query = select(accounts_t.c.id, accounts_t.c.code, accounts_t.c.name, accounts_t.c.type,
                   accounts_t.c.normal_side, accounts_t.c.currency)
    if as_of is None and start is None:
        query = query.add_columns(accounts_t.c.debits_posted, accounts_t.c.credits_posted)
    else:
        conditions = [postings_t.c.account_id == accounts_t.c.id]
        if as_of is not None:
            conditions.append(postings_t.c.effective_at <= as_of)
        if start is not None:
            conditions.append(postings_t.c.effective_at >= start)
        sums = (select(postings_t.c.account_id,
                       func.coalesce(func.sum(postings_t.c.amount).filter(postings_t.c.amount > 0), 0)
                       .label("debits"),
                       func.coalesce(-func.sum(postings_t.c.amount).filter(postings_t.c.amount < 0), 0)
                       .label("credits"))
                .where(postings_t.c.tenant_id == tenant_id,
                       *(c for c in conditions[1:]))
                .group_by(postings_t.c.account_id).subquery())
        query = (query.add_columns(func.coalesce(sums.c.debits, 0), func.coalesce(sums.c.credits, 0))
                 .outerjoin(sums, sums.c.account_id == accounts_t.c.id))
    query = query.where(accounts_t.c.tenant_id == tenant_id)
    if types:
        query = query.where(accounts_t.c.type.in_([t.value for t in types]))
    if currency_code:
        query = query.where(accounts_t.c.currency == currency_code)
    rows: Sequence[Any] = uow.session.execute(query.order_by(accounts_t.c.currency, accounts_t.c.code)).all()
    return [AccountTotals(r[0], r[1], r[2], r[3], r[4], r[5], int(r[6]), int(r[7])) for r in rows]


def postings_sum_by_currency(uow: UnitOfWork, tenant_id: str | None = None) -> dict[str, int]:
    query = select(postings_t.c.currency, func.sum(postings_t.c.amount)).group_by(postings_t.c.currency)
    if tenant_id:
        query = query.where(postings_t.c.tenant_id == tenant_id)
    return {row[0]: int(row[1]) for row in uow.session.execute(query)}


def verify_integrity(uow: UnitOfWork, tenant_id: str | None = None) -> list[str]:
    """Recompute every running sum from postings and pending holds; return what disagrees.

    Postings carry no foreign keys (they would double the database's work per posting), so this
    check also looks for postings whose entry or account does not exist, or belongs to another tenant.
    """
    problems = [f"postings in {code} sum to {total}, not 0"
                for code, total in postings_sum_by_currency(uow, tenant_id).items() if total != 0]
    scope_postings = [postings_t.c.tenant_id == tenant_id] if tenant_id else []
    scope_holds = [holds_t.c.tenant_id == tenant_id] if tenant_id else []
    orphans = uow.session.scalar(
        select(func.count()).select_from(postings_t)
        .outerjoin(accounts_t, and_(accounts_t.c.id == postings_t.c.account_id,
                                    accounts_t.c.tenant_id == postings_t.c.tenant_id))
        .outerjoin(entries_t, and_(entries_t.c.id == postings_t.c.entry_id,
                                   entries_t.c.tenant_id == postings_t.c.tenant_id))
        .where(or_(accounts_t.c.id.is_(None), entries_t.c.id.is_(None)), *scope_postings))
    if orphans:
        problems.append(f"{orphans} posting(s) point at no account or entry of their tenant")
    posted = (select(postings_t.c.account_id,
                     func.coalesce(func.sum(postings_t.c.amount).filter(postings_t.c.amount > 0), 0).label("d"),
                     func.coalesce(-func.sum(postings_t.c.amount).filter(postings_t.c.amount < 0), 0).label("c"))
              .where(*scope_postings).group_by(postings_t.c.account_id).subquery())
    pending_debits = (select(holds_t.c.debit_account_id.label("account_id"), func.sum(holds_t.c.amount).label("d"))
                      .where(holds_t.c.status == HoldStatus.PENDING.value, *scope_holds)
                      .group_by(holds_t.c.debit_account_id).subquery())
    pending_credits = (select(holds_t.c.credit_account_id.label("account_id"), func.sum(holds_t.c.amount).label("c"))
                       .where(holds_t.c.status == HoldStatus.PENDING.value, *scope_holds)
                       .group_by(holds_t.c.credit_account_id).subquery())
    query = (select(accounts_t.c.id, accounts_t.c.debits_posted, accounts_t.c.credits_posted,
                    accounts_t.c.debits_pending, accounts_t.c.credits_pending,
                    func.coalesce(posted.c.d, 0), func.coalesce(posted.c.c, 0),
                    func.coalesce(pending_debits.c.d, 0), func.coalesce(pending_credits.c.c, 0))
             .outerjoin(posted, posted.c.account_id == accounts_t.c.id)
             .outerjoin(pending_debits, pending_debits.c.account_id == accounts_t.c.id)
             .outerjoin(pending_credits, pending_credits.c.account_id == accounts_t.c.id))
    if tenant_id:
        query = query.where(accounts_t.c.tenant_id == tenant_id)
    for row in uow.session.execute(query):
        stored, computed = tuple(int(v) for v in row[1:5]), tuple(int(v) for v in row[5:9])
        if stored != computed:
            problems.append(f"account {row[0]}: stored sums {stored} but postings and holds give {computed}")
    return problems
