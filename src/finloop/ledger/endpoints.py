"""Ledger HTTP endpoints: accounts, transfers, batches, holds, reversals, balances, statements, reports."""

from __future__ import annotations

import base64
import re
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Path, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse

from finloop.api.deps import CurrentPrincipal, CurrentReader, CurrentWriter, IdempotencyKeyHeader, render, writing
from finloop.api.pagination import Cursor, Limit, Page, page
from finloop.api.types import Instant, Line
from finloop.core.errors import FinloopError, InvalidRequest
from finloop.db import idempotency
from finloop.db.group_commit import GroupCommit
from finloop.db.uow import UnitOfWork
from finloop.ledger import reports, service
from finloop.ledger.domain import AccountStatus, AccountType, EntryKind, PostingSpec, Side, TransferSpec
from finloop.ledger.models import Account, AccountingPeriod, Entry, Hold, Posting
from finloop.ledger.schemas import (
    AccountCreate,
    AccountRead,
    AsOfBalance,
    BalanceSheetCurrency,
    BalanceSheetRead,
    BalancesRead,
    BatchCreate,
    BatchRead,
    EntryRead,
    HoldCreate,
    HoldPost,
    HoldRead,
    IncomeStatementCurrency,
    IncomeStatementRead,
    PeriodClose,
    PeriodRead,
    PostingRead,
    ReverseCreate,
    StatementLineRead,
    StatementSection,
    TransferCreate,
    TrialBalanceCurrency,
    TrialBalanceLine,
    TrialBalanceRead,
)

router = APIRouter(tags=["ledger"])
Id = Annotated[Line, Path(min_length=1, max_length=40)]
InstantQuery = Annotated[Instant | None, Query(description="An ISO 8601 instant with its offset.")]
RequiredInstant = Annotated[Instant, Query(description="An ISO 8601 instant with its offset.")]
IdFilter = Annotated[Line | None, Query(max_length=40)]
CurrencyFilter = Annotated[Line | None, Query(max_length=3)]

#: Where the service's names for the legs of a two-posting entry point in a shorthand request.
_SHORTHAND_PARAMS = {
    "postings[0].account_id": "debit_account_id", "postings[1].account_id": "credit_account_id",
    "postings[0].amount": "amount", "postings[1].amount": "amount",
    "postings[0].currency": "currency", "postings[1].currency": "currency",
}
_BATCH_PARAM = re.compile(r"^transfers\[(\d+)\]\.(.+)$")


# ---------------------------------------------------------------------------------------------- reads


def read_balances(account: Account) -> BalancesRead:
    b = service.balances(account)
    return BalancesRead(currency=account.currency, posted=b.posted, pending_debits=b.pending_debits,
                        pending_credits=b.pending_credits, available=b.available, debits_posted=b.debits_posted,
                        credits_posted=b.credits_posted)


def read_account(account: Account) -> AccountRead:
    return AccountRead(id=account.id, code=account.code, name=account.name, type=AccountType(account.type),
                       normal_side=Side(account.normal_side), currency=account.currency,
                       status=AccountStatus(account.status), balance_rule=account.balance_rule,
                       overdraft_limit=account.overdraft_limit, balances=read_balances(account),
                       metadata=account.meta, created_at=account.created_at)


def read_entries(uow: UnitOfWork, entries: list[Entry]) -> list[EntryRead]:
    postings = service.entry_postings(uow, [e.id for e in entries])
    return [_entry(e, postings[e.id]) for e in entries]


def _entry(entry: Entry, postings: list[Posting]) -> EntryRead:
    return EntryRead(
        id=entry.id, key=entry.transfer_key, kind=entry.kind, description=entry.description,
        effective_at=entry.effective_at, business_date=entry.business_date, created_at=entry.created_at,
        batch_id=entry.batch_id, hold_id=entry.hold_id, reverses_id=entry.reverses_id, metadata=entry.meta,
        postings=[PostingRead(account_id=p.account_id, direction=Side.DEBIT if p.amount > 0 else Side.CREDIT,
                              amount=abs(p.amount), currency=p.currency) for p in postings])


def read_entry_ids(uow: UnitOfWork, tenant_id: str, ids: list[str]) -> list[EntryRead]:
    by_id = {e.id: e for e in uow.session.query(Entry).filter(Entry.tenant_id == tenant_id, Entry.id.in_(ids))}
    return read_entries(uow, [by_id[i] for i in ids])


def read_hold(hold: Hold, now: datetime) -> HoldRead:
    return HoldRead(id=hold.id, key=hold.transfer_key, status=service.effective_hold_status(hold, now).value,
                    debit_account_id=hold.debit_account_id, credit_account_id=hold.credit_account_id,
                    amount=hold.amount, posted_amount=hold.posted_amount, currency=hold.currency,
                    description=hold.description, expires_at=hold.expires_at, created_at=hold.created_at,
                    resolved_at=hold.resolved_at, post_entry_id=hold.post_entry_id, metadata=hold.meta)


def read_posted(uow: UnitOfWork, tenant_id: str, specs: list[TransferSpec], posted: list[service.PostedEntry], *,
                batch_id: str | None = None) -> list[EntryRead]:
    """The entries a posting call returned: built from what was posted, read back only for replays."""
    replayed = [p.id for p in posted if p.replayed or p.created_at is None]
    stored = {e.id: e for e in read_entry_ids(uow, tenant_id, replayed)} if replayed else {}
    reads = []
    for spec, entry in zip(specs, posted, strict=True):
        if entry.id in stored:
            reads.append(stored[entry.id])
            continue
        assert entry.created_at is not None
        reads.append(EntryRead(
            id=entry.id, key=entry.key, kind=EntryKind.TRANSFER.value, description=spec.description,
            effective_at=entry.effective_at, business_date=entry.business_date, created_at=entry.created_at,
            batch_id=batch_id, hold_id=None, reverses_id=None, metadata=spec.metadata,
            postings=[PostingRead(account_id=p.account_id, direction=Side.DEBIT if p.amount > 0 else Side.CREDIT,
                                  amount=abs(p.amount), currency=p.currency) for p in spec.postings]))
    return reads


def _spec(body: TransferCreate, key: str | None, where: str = "") -> TransferSpec:
    if body.postings is None:
        missing = [name for name in ("debit_account_id", "credit_account_id", "amount", "currency")
                   if getattr(body, name) is None]
        if missing:
            raise InvalidRequest(f"{', '.join(missing)} {'is' if len(missing) == 1 else 'are'} required "
                                 "(or give postings).", code="missing_field", param=f"{where}{missing[0]}")
    chosen = body.key or key
    if not chosen:
        raise InvalidRequest("Give the transfer a key, or send an Idempotency-Key header.",
                             code="missing_transfer_key", param=f"{where}key")
    if body.postings is not None:
        postings = tuple(PostingSpec(p.account_id, p.amount if p.direction == Side.DEBIT else -p.amount,
                                     p.currency) for p in body.postings)
        return TransferSpec(chosen, postings, body.description, body.effective_at, body.metadata)
    assert body.debit_account_id and body.credit_account_id and body.amount and body.currency
    return TransferSpec.simple(chosen, body.debit_account_id, body.credit_account_id, body.amount, body.currency,
                               body.description, body.effective_at, body.metadata)


def _named_as_sent(error: FinloopError, body: TransferCreate) -> FinloopError:
    """Name the offending field as the client sent it: the service speaks of ``postings[0].account_id``
    where a shorthand request said ``debit_account_id``."""
    if body.postings is None and error.param in _SHORTHAND_PARAMS:
        error.param = _SHORTHAND_PARAMS[error.param]
    return error


@contextmanager
def _shorthand_params(bodies: Sequence[TransferCreate]) -> Iterator[None]:
    """The same renaming for a batch, whose errors name ``transfers[i].…``."""
    try:
        yield
    except FinloopError as error:
        param, prefix, index = error.param or "", "", 0
        batch = _BATCH_PARAM.match(param)
        if batch:
            index, param = int(batch.group(1)), batch.group(2)
            prefix = f"transfers[{index}]."
        if index < len(bodies) and bodies[index].postings is None and param in _SHORTHAND_PARAMS:
            error.param = prefix + _SHORTHAND_PARAMS[param]
        raise


# ---------------------------------------------------------------------------------------------- accounts


@router.post("/accounts", status_code=201, response_model=AccountRead, summary="Create an account")
def create_account(body: AccountCreate, writer: CurrentWriter):  # type: ignore[no-untyped-def]
    return writer.run(lambda uow: read_account(service.create_account(
        uow, writer.tenant_id, code=body.code, type=body.type, currency_code=body.currency, name=body.name,
        balance_rule=body.balance_rule, overdraft_limit=body.overdraft_limit, normal_side=body.normal_side,
        metadata=body.metadata)), status_code=201, permission="ledger.write")


@router.get("/accounts", response_model=Page[AccountRead], summary="List accounts")
def list_accounts(reader: CurrentReader, limit: Limit = 50, starting_after: Cursor = None,
                  code_prefix: Annotated[Line | None, Query(max_length=255)] = None,
                  currency: CurrencyFilter = None,
                  type: AccountType | None = None, status: AccountStatus | None = None) -> Page[AccountRead]:
    return reader.run(lambda uow: page(service.list_accounts(
        uow, reader.tenant_id, after=starting_after, limit=limit + 1, code_prefix=code_prefix,
        currency_code=currency, type=type, status=status), limit, read_account, lambda a: a.id))


@router.get("/accounts/{account_id}", response_model=AccountRead, summary="Get an account with its balances")
def get_account(account_id: Id, reader: CurrentReader) -> AccountRead:
    return reader.run(lambda uow: read_account(service.get_account(uow, reader.tenant_id, account_id)))


def _status_change(account_id: str, writer: CurrentWriter, status: AccountStatus):  # type: ignore[no-untyped-def]
    return writer.run(lambda uow: read_account(service.set_account_status(
        uow, writer.tenant_id, account_id, status, actor=writer.principal.actor)), permission="ledger.write")


@router.post("/accounts/{account_id}/freeze", response_model=AccountRead, summary="Freeze an account")
def freeze_account(account_id: Id, writer: CurrentWriter):  # type: ignore[no-untyped-def]
    return _status_change(account_id, writer, AccountStatus.FROZEN)


@router.post("/accounts/{account_id}/unfreeze", response_model=AccountRead, summary="Unfreeze an account")
def unfreeze_account(account_id: Id, writer: CurrentWriter):  # type: ignore[no-untyped-def]
    return _status_change(account_id, writer, AccountStatus.OPEN)


@router.post("/accounts/{account_id}/close", response_model=AccountRead, summary="Close an empty account")
def close_account(account_id: Id, writer: CurrentWriter):  # type: ignore[no-untyped-def]
    return _status_change(account_id, writer, AccountStatus.CLOSED)


@router.get("/accounts/{account_id}/balance", response_model=AsOfBalance,
            summary="Balances now, or the posted balance as of a past instant")
def account_balance(account_id: Id, reader: CurrentReader, as_of: InstantQuery = None) -> AsOfBalance:
    def work(uow: UnitOfWork) -> AsOfBalance:
        account = service.get_account(uow, reader.tenant_id, account_id)
        if as_of is None:
            return AsOfBalance(account_id=account.id, as_of=uow.clock.now(), balances=read_balances(account))
        b = service.balance_as_of(uow, account, as_of)
        return AsOfBalance(account_id=account.id, as_of=as_of, balances=BalancesRead(
            currency=account.currency, posted=b.posted, pending_debits=0, pending_credits=0, available=b.posted,
            debits_posted=b.debits_posted, credits_posted=b.credits_posted))

    return reader.run(work)


def statement_cursor(line: service.StatementLine) -> str:
    return base64.urlsafe_b64encode(f"{line.effective_at.isoformat()}|{line.posting_id}".encode()).decode()


def parse_statement_cursor(cursor: str | None) -> tuple[datetime, int] | None:
    if not cursor:
        return None
    try:
        at_text, id_text = base64.urlsafe_b64decode(cursor.encode()).decode().split("|")
        at, posting_id = datetime.fromisoformat(at_text), int(id_text)
        # A cursor is made by statement_cursor; anything else (a naive time, an id past BIGINT) was forged.
        if at.tzinfo is None or not 0 <= posting_id < 2**63:
            raise ValueError(cursor)
        return at.astimezone(UTC), posting_id
    except (ValueError, UnicodeDecodeError, OverflowError) as error:
        raise InvalidRequest("Malformed cursor.", code="invalid_cursor", param="starting_after") from error


@router.get("/accounts/{account_id}/statement", response_model=Page[StatementLineRead],
            summary="Postings with the running balance")
def account_statement(account_id: Id, reader: CurrentReader, limit: Limit = 100, starting_after: Cursor = None,
                      start: InstantQuery = None, end: InstantQuery = None) -> Page[StatementLineRead]:
    after = parse_statement_cursor(starting_after)

    def work(uow: UnitOfWork) -> Page[StatementLineRead]:
        account = service.get_account(uow, reader.tenant_id, account_id)
        lines = service.statement(uow, account, after=after, start=start, end=end, limit=limit + 1)
        return page(lines, limit, lambda line: StatementLineRead(
            posting_id=line.posting_id, entry_id=line.entry_id, effective_at=line.effective_at, amount=line.amount,
            balance=line.balance, description=line.description), statement_cursor)

    return reader.run(work)


# ---------------------------------------------------------------------------------------------- transfers


@dataclass(frozen=True, slots=True)
class _Single:
    """A single transfer waiting for its group commit, with its Idempotency-Key claim if it has one."""

    tenant_id: str
    body: TransferCreate
    spec: TransferSpec
    claim: idempotency.Claim | None = None


def _post_singles(uow: UnitOfWork, singles: Sequence[_Single]) -> list[EntryRead | FinloopError]:
    """Post concurrent single transfers in one transaction, each tenant's with one ``post_each`` call:
    each is posted or refused on its own, and a refusal names the fields as its request did."""
    by_tenant: dict[str, list[int]] = {}
    for index, single in enumerate(singles):
        by_tenant.setdefault(single.tenant_id, []).append(index)
    answers: dict[int, EntryRead | FinloopError] = {}
    for tenant_id, indexes in by_tenant.items():
        specs = [singles[i].spec for i in indexes]
        results = service.post_each(uow, tenant_id, specs)
        posted = [(i, spec, r) for i, spec, r in zip(indexes, specs, results, strict=True)
                  if isinstance(r, service.PostedEntry)]
        reads = read_posted(uow, tenant_id, [spec for _, spec, _ in posted], [r for _, _, r in posted])
        answers.update((i, read) for (i, _, _), read in zip(posted, reads, strict=True))
        for i, result in zip(indexes, results, strict=True):
            if isinstance(result, FinloopError):
                answers[i] = _named_as_sent(result, singles[i].body)
    return [answers[index] for index in range(len(singles))]


def _answer_singles(uow: UnitOfWork, singles: Sequence[_Single]) -> list[JSONResponse | FinloopError]:
    """The group's answers, each stored under its Idempotency-Key in the transaction that posted it."""
    answers: list[JSONResponse | FinloopError] = []
    for single, result in zip(singles, _post_singles(uow, singles), strict=True):
        if isinstance(result, FinloopError):
            answers.append(result)
            continue
        answer = render(result, 201)
        if single.claim is not None:
            idempotency.complete(uow, single.claim, 201, bytes(answer.body).decode())
        answers.append(answer)
    return answers


def _one(result: EntryRead | FinloopError) -> EntryRead:
    if isinstance(result, FinloopError):
        raise result
    return result


def _singles_committer(request: Request) -> GroupCommit[_Single, JSONResponse] | None:
    state = request.app.state
    committer: GroupCommit[_Single, JSONResponse] | None = getattr(state, "ledger_singles", None)
    if committer is None and state.settings.group_commit_max > 0:
        committer = state.ledger_singles = GroupCommit(
            state.database, _answer_singles, max_group=state.settings.group_commit_max, name="ledger-group-commit")
    return committer


@router.post("/transfers", status_code=201, response_model=EntryRead, summary="Post a transfer (one entry)")
async def create_transfer(request: Request, body: TransferCreate, principal: CurrentPrincipal,
                          idempotency_key: IdempotencyKeyHeader = None) -> JSONResponse:
    """Post one entry. Concurrent requests may be committed in one transaction; each still gets its own
    answer, and a refused transfer never holds back another."""
    # Group commit: docs/adr/0004-group-commit.md.
    principal.require("ledger.write")
    spec = _spec(body, idempotency_key)
    committer = _singles_committer(request)
    async with writing(request, principal, idempotency_key) as writer:
        single = _Single(principal.tenant_id, body, spec, writer.claim)
        if committer is None:
            return await run_in_threadpool(writer.run, lambda uow: _one(_post_singles(uow, [single])[0]),
                                           status_code=201)
        answer = await committer.submit(single)
        writer.completed = True
        return answer


@router.post("/transfers/batch", status_code=201, response_model=BatchRead,
             summary="Post a batch of transfers atomically (all or nothing)")
def create_batch(body: BatchCreate, writer: CurrentWriter):  # type: ignore[no-untyped-def]
    base = writer.claim.key if writer.claim else None
    specs = [_spec(t, f"{base}:{i}" if base else None, f"transfers[{i}].") for i, t in enumerate(body.transfers)]

    def work(uow: UnitOfWork) -> BatchRead:
        batch_id = uow.ids.new("batch")
        with _shorthand_params(body.transfers):
            posted = service.post_transfers(uow, writer.tenant_id, specs, batch_id=batch_id)
        return BatchRead(batch_id=batch_id,
                         entries=read_posted(uow, writer.tenant_id, specs, posted, batch_id=batch_id))

    return writer.run(work, status_code=201, permission="ledger.write")


@router.get("/transfers", response_model=Page[EntryRead], summary="List entries")
def list_transfers(reader: CurrentReader, limit: Limit = 50, starting_after: Cursor = None,
                   account_id: IdFilter = None, batch_id: IdFilter = None,
                   created_from: InstantQuery = None, created_to: InstantQuery = None) -> Page[EntryRead]:
    def work(uow: UnitOfWork) -> Page[EntryRead]:
        entries = service.list_entries(uow, reader.tenant_id, after=starting_after, limit=limit + 1,
                                       account_id=account_id, batch_id=batch_id, created_from=created_from,
                                       created_to=created_to)
        reads = {r.id: r for r in read_entries(uow, entries[:limit])}
        return page(entries, limit, lambda e: reads[e.id], lambda e: e.id)

    return reader.run(work)


@router.get("/transfers/{entry_id}", response_model=EntryRead, summary="Get an entry with its postings")
def get_transfer(entry_id: Id, reader: CurrentReader) -> EntryRead:
    return reader.run(lambda uow: read_entries(uow, [service.get_entry(uow, reader.tenant_id, entry_id)])[0])


@router.post("/entries/{entry_id}/reverse", status_code=201, response_model=EntryRead,
             summary="Reverse an entry with a linked, mirror-image entry")
def reverse_entry(entry_id: Id, writer: CurrentWriter, body: ReverseCreate | None = None):  # type: ignore[no-untyped-def]
    body = body or ReverseCreate()

    def work(uow: UnitOfWork) -> EntryRead:
        posted = service.reverse_entry(uow, writer.tenant_id, entry_id, key=body.key, description=body.description)
        return read_entry_ids(uow, writer.tenant_id, [posted.id])[0]

    return writer.run(work, status_code=201, permission="ledger.write")


# ---------------------------------------------------------------------------------------------- holds


@router.post("/holds", status_code=201, response_model=HoldRead, summary="Reserve funds (pending transfer)")
def create_hold(body: HoldCreate, writer: CurrentWriter):  # type: ignore[no-untyped-def]
    key = body.key or (writer.claim.key if writer.claim else None)
    if not key:
        raise InvalidRequest("Give the hold a key, or send an Idempotency-Key header.",
                             code="missing_transfer_key", param="key")

    def work(uow: UnitOfWork) -> HoldRead:
        hold, _ = service.create_hold(
            uow, writer.tenant_id, key=key, debit_account_id=body.debit_account_id,
            credit_account_id=body.credit_account_id, amount=body.amount, currency_code=body.currency,
            timeout_seconds=body.timeout_seconds, description=body.description, metadata=body.metadata)
        return read_hold(hold, uow.clock.now())

    return writer.run(work, status_code=201, permission="ledger.write")


@router.get("/holds", response_model=Page[HoldRead], summary="List holds")
def list_holds(reader: CurrentReader, limit: Limit = 50, starting_after: Cursor = None,
               account_id: IdFilter = None) -> Page[HoldRead]:
    def work(uow: UnitOfWork) -> Page[HoldRead]:
        now = uow.clock.now()
        holds = service.list_holds(uow, reader.tenant_id, after=starting_after, limit=limit + 1,
                                   account_id=account_id)
        return page(holds, limit, lambda h: read_hold(h, now), lambda h: h.id)

    return reader.run(work)


@router.get("/holds/{hold_id}", response_model=HoldRead, summary="Get a hold")
def get_hold(hold_id: Id, reader: CurrentReader) -> HoldRead:
    return reader.run(lambda uow: read_hold(service.get_hold(uow, reader.tenant_id, hold_id), uow.clock.now()))


@router.post("/holds/{hold_id}/post", response_model=HoldRead,
             summary="Post a hold in full or in part (the rest is released)")
def post_hold(hold_id: Id, writer: CurrentWriter, body: HoldPost | None = None):  # type: ignore[no-untyped-def]
    amount = body.amount if body else None

    def work(uow: UnitOfWork) -> HoldRead:
        hold, _ = service.post_hold(uow, writer.tenant_id, hold_id, amount=amount)
        return read_hold(hold, uow.clock.now())

    return writer.run(work, permission="ledger.write")


@router.post("/holds/{hold_id}/void", response_model=HoldRead, summary="Void a hold, releasing its funds")
def void_hold(hold_id: Id, writer: CurrentWriter):  # type: ignore[no-untyped-def]
    return writer.run(lambda uow: read_hold(service.void_hold(uow, writer.tenant_id, hold_id), uow.clock.now()),
                      permission="ledger.write")


# ---------------------------------------------------------------------------------------------- reports


def _line(t: service.AccountTotals) -> TrialBalanceLine:
    return TrialBalanceLine(account_id=t.account_id, code=t.code, type=t.type, debits=t.debits, credits=t.credits,
                            balance=t.balance)


def _section(section: reports.Section) -> StatementSection:
    return StatementSection(lines=[_line(t) for t in section.lines], total=section.total)


@router.get("/reports/trial-balance", response_model=TrialBalanceRead, summary="Trial balance per currency")
def trial_balance(reader: CurrentReader, as_of: InstantQuery = None,
                  currency: CurrencyFilter = None) -> TrialBalanceRead:
    return reader.run(lambda uow: TrialBalanceRead(as_of=as_of, currencies=[
        TrialBalanceCurrency(currency=tb.currency, lines=[_line(t) for t in tb.lines], total_debits=tb.total_debits,
                             total_credits=tb.total_credits, balanced=tb.balanced)
        for tb in reports.trial_balance(uow, reader.tenant_id, as_of=as_of, currency_code=currency)]))


@router.get("/reports/income-statement", response_model=IncomeStatementRead,
            summary="Income and expenses over (start, end]")
def income_statement(reader: CurrentReader, start: RequiredInstant, end: RequiredInstant) -> IncomeStatementRead:
    if end < start:
        raise InvalidRequest("end is before start.", code="invalid_range", param="end")
    return reader.run(lambda uow: IncomeStatementRead(start=start, end=end, currencies=[
        IncomeStatementCurrency(currency=s.currency, income=_section(s.income), expenses=_section(s.expenses),
                                net_income=s.net_income)
        for s in reports.income_statement(uow, reader.tenant_id, start=start, end=end)]))


@router.get("/reports/balance-sheet", response_model=BalanceSheetRead, summary="Balance sheet as of an instant")
def balance_sheet(reader: CurrentReader, as_of: InstantQuery = None) -> BalanceSheetRead:
    def work(uow: UnitOfWork) -> BalanceSheetRead:
        at = as_of or uow.clock.now()
        return BalanceSheetRead(as_of=at, currencies=[
            BalanceSheetCurrency(currency=s.currency, assets=_section(s.assets), liabilities=_section(s.liabilities),
                                 equity=_section(s.equity), retained_earnings=s.retained_earnings, balanced=s.balanced)
            for s in reports.balance_sheet(uow, reader.tenant_id, as_of=at)])

    return reader.run(work)


# ---------------------------------------------------------------------------------------------- periods


def _period(p: AccountingPeriod) -> PeriodRead:
    return PeriodRead(id=p.id, start_on=p.start_on, end_on=p.end_on, status=p.status, closed_at=p.closed_at,
                      closed_by=p.closed_by)


@router.post("/periods/close", status_code=201, response_model=PeriodRead,
             summary="Close an accounting period: postings dated in it are refused from now on")
def close_period(body: PeriodClose, writer: CurrentWriter):  # type: ignore[no-untyped-def]
    return writer.run(lambda uow: _period(service.close_period(
        uow, writer.tenant_id, start_on=body.start_on, end_on=body.end_on, closed_by=writer.principal.actor)),
        status_code=201, permission="ledger.close_period")


@router.get("/periods", response_model=list[PeriodRead], summary="Closed accounting periods")
def list_periods(reader: CurrentReader) -> list[PeriodRead]:
    return reader.run(lambda uow: [_period(p) for p in service.list_periods(uow, reader.tenant_id)])
