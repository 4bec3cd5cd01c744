"""Payouts HTTP endpoints: payout accounts, payouts, schedules and settings, and skipped automatic payouts.

A payout to a party whose onboarding is not verified is a 422 ``party_not_verified`` (the gate, ``gate``).

Reads need any key of the tenant; requesting and canceling payouts need ``payouts.request``; accounts,
schedules and settings need ``payouts.configure``. Account numbers are never returned, only their last four
digits.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query

from finloop.api.deps import CurrentReader, CurrentWriter
from finloop.api.pagination import Cursor, Limit, Page, page
from finloop.api.types import Line
from finloop.db.uow import UnitOfWork
from finloop.payouts import flows, service
from finloop.payouts.models import Payout, PayoutAccount, PayoutSchedule, PayoutSettings, PayoutSkip
from finloop.payouts.schemas import (
    PartyId,
    PayoutAccountCreate,
    PayoutAccountRead,
    PayoutCreate,
    PayoutRead,
    PayoutSkipRead,
    ScheduleRead,
    ScheduleWrite,
    SettingsRead,
    SettingsWrite,
)
from finloop.payouts.state import PayoutStatus
from finloop.settlement.accounts import PartyKind

router = APIRouter(tags=["payouts"])

Id = Annotated[Line, Path(min_length=1, max_length=40)]
PartyPath = Annotated[str, Path(min_length=1, max_length=40, pattern=r"^[A-Za-z0-9_\-]+$")]
REQUEST = "payouts.request"
CONFIGURE = "payouts.configure"


def read_account(uow: UnitOfWork, account: PayoutAccount) -> PayoutAccountRead:
    return PayoutAccountRead(id=account.id, party_kind=PartyKind(account.party_kind), party_id=account.party_id,
                             currency=account.currency, holder_name=service.masked_holder(uow, account),
                             account_last4=account.account_last4, bank_code=account.bank_code,
                             status=account.status, created_at=account.created_at)


def read_payout(payout: Payout) -> PayoutRead:
    return PayoutRead(
        id=payout.id, party_kind=PartyKind(payout.party_kind), party_id=payout.party_id,
        payout_account_id=payout.payout_account_id, amount=payout.amount, currency=payout.currency,
        status=PayoutStatus(payout.status), description=payout.description, is_automatic=payout.is_automatic,
        hold_id=payout.hold_id, approval_id=payout.approval_id, screening_id=payout.screening_id,
        attempts=payout.attempts,
        next_attempt_at=payout.next_attempt_at, bank_reference=payout.bank_reference,
        failure_code=payout.error_code, failure_message=payout.error_message, executed_on=payout.executed_on,
        returned_on=payout.returned_on, post_entry_id=payout.post_entry_id, return_entry_id=payout.return_entry_id,
        created_at=payout.created_at, updated_at=payout.updated_at)


def read_skip(skip: PayoutSkip) -> PayoutSkipRead:
    return PayoutSkipRead(id=skip.id, automatic_key=skip.automatic_key, schedule_id=skip.schedule_id,
                          party_kind=PartyKind(skip.party_kind), party_id=skip.party_id, amount=skip.amount,
                          currency=skip.currency, reason=skip.reason, decision_id=skip.decision_id,
                          business_date=skip.business_date, created_at=skip.created_at)


def read_schedule(schedule: PayoutSchedule) -> ScheduleRead:
    return ScheduleRead(
        id=schedule.id, party_kind=PartyKind(schedule.party_kind), party_id=schedule.party_id,
        currency=schedule.currency, interval=service.ScheduleInterval(schedule.interval), weekday=schedule.weekday,
        threshold_amount=schedule.threshold_amount, minimum_balance=schedule.minimum_balance,
        approval_amount=schedule.approval_amount, payout_account_id=schedule.payout_account_id,
        last_run_on=schedule.last_run_on, updated_at=schedule.updated_at)


def read_settings(settings: PayoutSettings) -> SettingsRead:
    return SettingsRead(approval_amount=settings.approval_amount, max_attempts=settings.max_attempts)


# ------------------------------------------------------------------------------------------ accounts


@router.post("/payout-accounts", response_model=PayoutAccountRead, status_code=201,
             summary="Add a bank account a merchant or promoter is paid out to")
def create_account(body: PayoutAccountCreate, writer: CurrentWriter):  # type: ignore[no-untyped-def]
    def work(uow: UnitOfWork) -> PayoutAccountRead:
        account = service.create_payout_account(
            uow, writer.tenant_id, party_kind=body.party_kind, party_id=body.party_id, currency=body.currency,
            holder_name=body.holder_name, account_number=body.account_number, bank_code=body.bank_code)
        return read_account(uow, account)

    return writer.run(work, permission=CONFIGURE, status_code=201)


@router.get("/payout-accounts", response_model=Page[PayoutAccountRead], summary="List payout accounts")
def list_accounts(reader: CurrentReader, limit: Limit = 50, starting_after: Cursor = None,
                  party_kind: Annotated[PartyKind | None, Query()] = None,
                  party_id: Annotated[PartyId | None, Query()] = None) -> Page[PayoutAccountRead]:
    return reader.run(lambda uow: page(service.list_payout_accounts(
        uow, reader.tenant_id, party_kind=party_kind.value if party_kind else None, party_id=party_id,
        after=starting_after, limit=limit), limit, lambda a: read_account(uow, a), lambda a: a.id))


# ------------------------------------------------------------------------------------------ payouts


@router.post("/payouts", response_model=PayoutRead, status_code=201,
             summary="Request a payout up to the available balance; it is sent at once unless it needs approval")
def create_payout(body: PayoutCreate, writer: CurrentWriter):  # type: ignore[no-untyped-def]
    created: list[str] = []

    def flow() -> None:
        created.append(flows.request_payout(
            writer.db, writer.tenant_id, party_kind=body.party_kind, party_id=body.party_id, amount=body.amount,
            currency=body.currency, payout_account_id=body.payout_account_id, requested_by=writer.principal))

    return writer.run_flow(flow, lambda uow: read_payout(service.get_payout(uow, writer.tenant_id, created[0])),
                           permission=REQUEST, status_code=201)


@router.get("/payouts", response_model=Page[PayoutRead], summary="List payouts, newest first")
def list_payouts(reader: CurrentReader, limit: Limit = 50, starting_after: Cursor = None,
                 status: Annotated[PayoutStatus | None, Query()] = None,
                 party_kind: Annotated[PartyKind | None, Query()] = None,
                 party_id: Annotated[PartyId | None, Query()] = None) -> Page[PayoutRead]:
    return reader.run(lambda uow: page(service.list_payouts(
        uow, reader.tenant_id, status=status.value if status else None,
        party_kind=party_kind.value if party_kind else None, party_id=party_id, after=starting_after,
        limit=limit), limit, read_payout, lambda p: p.id))


@router.get("/payouts/{payout_id}", response_model=PayoutRead, summary="Get a payout")
def get_payout(payout_id: Id, reader: CurrentReader) -> PayoutRead:
    return reader.run(lambda uow: read_payout(service.get_payout(uow, reader.tenant_id, payout_id)))


@router.post("/payouts/{payout_id}/cancel", response_model=PayoutRead,
             summary="Cancel a payout not yet sent; its amount is available again")
def cancel_payout(payout_id: Id, writer: CurrentWriter):  # type: ignore[no-untyped-def]
    return writer.run(lambda uow: read_payout(service.cancel_payout(uow, writer.tenant_id, payout_id)),
                      permission=REQUEST)


@router.get("/payout-skips", response_model=Page[PayoutSkipRead],
            summary="Automatic payouts that were due and not made, and why, newest first")
def list_skips(reader: CurrentReader, limit: Limit = 50,
               starting_after: Annotated[int | None, Query(ge=1, description="The next_cursor of the previous page.")]
               = None, party_kind: Annotated[PartyKind | None, Query()] = None,
               party_id: Annotated[PartyId | None, Query()] = None,
               reason: Annotated[Line | None, Query(max_length=60)] = None) -> Page[PayoutSkipRead]:
    return reader.run(lambda uow: page(service.list_skips(
        uow, reader.tenant_id, party_kind=party_kind.value if party_kind else None, party_id=party_id,
        reason=reason, after=starting_after, limit=limit), limit, read_skip, lambda s: str(s.id)))


# ------------------------------------------------------------------------------------------ schedules, settings


@router.put("/payout-schedules/{party_kind}/{party_id}", response_model=ScheduleRead,
            summary="Set a party's automatic payout schedule")
def put_schedule(party_kind: PartyKind, party_id: PartyPath, body: ScheduleWrite,  # type: ignore[no-untyped-def]
                 writer: CurrentWriter):
    return writer.run(lambda uow: read_schedule(service.set_schedule(
        uow, writer.tenant_id, party_kind=party_kind, party_id=party_id, currency=body.currency,
        interval=body.interval, weekday=body.weekday, threshold_amount=body.threshold_amount,
        minimum_balance=body.minimum_balance, approval_amount=body.approval_amount,
        payout_account_id=body.payout_account_id)), permission=CONFIGURE)


@router.get("/payout-schedules/{party_kind}/{party_id}", response_model=ScheduleRead,
            summary="Get a party's payout schedule")
def get_schedule(party_kind: PartyKind, party_id: PartyPath, reader: CurrentReader) -> ScheduleRead:
    return reader.run(lambda uow: read_schedule(service.get_schedule(uow, reader.tenant_id, party_kind, party_id)))


@router.put("/payout-settings", response_model=SettingsRead, summary="Set the tenant's payout approval amount")
def put_settings(body: SettingsWrite, writer: CurrentWriter):  # type: ignore[no-untyped-def]
    return writer.run(lambda uow: read_settings(service.set_settings(
        uow, writer.tenant_id, approval_amount=body.approval_amount, max_attempts=body.max_attempts,
        actor=writer.principal.actor)), permission=CONFIGURE)


@router.get("/payout-settings", response_model=SettingsRead, summary="Get the tenant's payout settings")
def get_settings(reader: CurrentReader) -> SettingsRead:
    return reader.run(lambda uow: read_settings(service.get_settings(uow, reader.tenant_id)))
