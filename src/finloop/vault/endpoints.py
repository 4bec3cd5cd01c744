"""Vault HTTP endpoints: tokenize, read and delete cards.

No endpoint returns a card number: a card is revealed only inside the payments service, for one
connector call. The CVC a checkout may send is checked and dropped here, before any service call.
Tokenizing is what a checkout does, so any API key may do it, except an auditor's, which acts on nothing.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path
from fastapi.responses import JSONResponse

from finloop.api.deps import CurrentPrincipal, CurrentReader, CurrentWriter, Writer, get_database
from finloop.core.errors import PermissionDenied
from finloop.db.uow import Database
from finloop.tenancy.service import Principal, Role
from finloop.vault import service
from finloop.vault.domain import CardRecord
from finloop.vault.schemas import CardCreate, CardRead

router = APIRouter(tags=["cards"])
CardId = Annotated[str, Path(min_length=1, max_length=40, pattern=r"^[A-Za-z0-9_]+$")]


def _unkeyed_writer(db: Annotated[Database, Depends(get_database)], principal: CurrentPrincipal) -> Writer:
    return Writer(db, principal)


#: DELETE is idempotent by itself: same commit and error rules, no Idempotency-Key.
UnkeyedWriter = Annotated[Writer, Depends(_unkeyed_writer)]


def _require_actor(principal: Principal) -> None:
    if not principal.roles - {Role.AUDITOR}:
        raise PermissionDenied("Your role may not change cards.", code="role_not_allowed")


def read_card(card: CardRecord) -> CardRead:
    return CardRead(id=card.id, brand=card.brand, last4=card.last4, exp_month=card.exp_month,
                    exp_year=card.exp_year, fingerprint=card.fingerprint, customer_id=card.customer_id,
                    created_at=card.created_at, deleted_at=card.deleted_at)


@router.post("/cards", status_code=201, response_model=CardRead, summary="Tokenize a card")
def create_card(body: CardCreate, writer: CurrentWriter) -> JSONResponse:
    _require_actor(writer.principal)
    return writer.run(lambda uow: read_card(service.tokenize_card(
        uow, writer.tenant_id, number=body.number, exp_month=body.exp_month, exp_year=body.exp_year,
        holder=body.holder, customer_id=body.customer_id)), status_code=201)


@router.get("/cards/{card_id}", response_model=CardRead, summary="Get a card (brand, last four, expiry)")
def get_card(card_id: CardId, reader: CurrentReader) -> CardRead:
    return reader.run(lambda uow: read_card(service.get_card(uow, reader.tenant_id, card_id)))


@router.delete("/cards/{card_id}", response_model=CardRead,
               summary="Delete a card: its encrypted number is destroyed, the masked record stays")
def delete_card(card_id: CardId, writer: UnkeyedWriter) -> JSONResponse:
    _require_actor(writer.principal)
    return writer.run(lambda uow: read_card(service.delete_card(
        uow, writer.tenant_id, card_id, actor=writer.principal.actor)))
