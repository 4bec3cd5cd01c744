"""Merchants: the list, and a merchant's money: split rules, settlement terms, balances by bucket (read from the
ledger accounts settlement and splits post to), statements, payouts; its refund approval threshold is changed
here through the API's own service call and permission (``payments.configure``). A payout has its own page,
which the approvals queue links to."""

from __future__ import annotations

import csv
import io
import json
from datetime import date, timedelta
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response
from sqlalchemy import Select, or_, select

from finloop.console.actions import act
from finloop.console.auth import ActingStaff, CurrentStaff, database, field, form_of
from finloop.console.web import (
    Column,
    Filter,
    badge,
    choice,
    csv_table,
    equals,
    html,
    listing,
    money,
    parse_day,
    reference_now,
    since,
    until,
)
from finloop.core.errors import InvalidRequest
from finloop.db.uow import UnitOfWork
from finloop.payments import service as payments
from finloop.payments.models import Merchant
from finloop.payouts import service as payouts
from finloop.payouts.models import Payout, PayoutAccount, PayoutSchedule
from finloop.payouts.state import PayoutStatus
from finloop.settlement import service as settlement
from finloop.settlement import statement as statements
from finloop.settlement.accounts import PartyKind
from finloop.settlement.models import SettlementBatch
from finloop.splits import service as splits
from finloop.splits.models import SplitRule
from finloop.tenancy import service as tenancy

router = APIRouter()

#: The permission the API's ``PATCH /v1/merchants/{id}`` asks for.
CONFIGURE = "payments.configure"
STATEMENT_DAYS = 30
#: The most a minor-unit amount typed into a form may be (the API's bound for an amount).
MAX_AMOUNT = 10**15

COLUMNS = (
    Column("Merchant", lambda m: m.id, link=lambda m: f"/console/merchants/{m.id}"),
    Column("Reference", lambda m: m.reference),
    Column("Name", lambda m: m.name),
    Column("Status", lambda m: m.status, show=lambda m: badge(m.status)),
    Column("Refunds need approval above (minor units)", lambda m: m.refund_approval_amount,
           show=lambda m: "never" if m.refund_approval_amount is None else f"{m.refund_approval_amount:,}",
           numeric=True),
    Column("Created", lambda m: m.created_at),
)

PAYOUT_COLUMNS = (
    Column("Payout", lambda p: p.id, link=lambda p: f"/console/merchants/payouts/{p.id}"),
    Column("Created", lambda p: p.created_at),
    Column("Amount", lambda p: p.amount, show=lambda p: money(p.amount, p.currency), numeric=True),
    Column("Currency", lambda p: p.currency),
    Column("Status", lambda p: p.status, show=lambda p: badge(p.status)),
    Column("Automatic", lambda p: p.is_automatic, show=lambda p: "yes" if p.is_automatic else "no"),
    Column("Executed on", lambda p: p.executed_on),
    Column("Bank reference", lambda p: p.bank_reference),
    Column("Approval", lambda p: p.approval_id,
           link=lambda p: f"/console/approvals/{p.approval_id}" if p.approval_id else None),
)


@router.get("/merchants")
def landing(request: Request, staff: CurrentStaff) -> Response:
    def search(q: str) -> object:
        return or_(Merchant.id == q, Merchant.reference == q, Merchant.name.contains(q, autoescape=True))

    with database(request).uow(read_only=True) as uow:
        statuses = list(uow.session.scalars(select(Merchant.status).where(Merchant.tenant_id == staff.tenant_id)
                                            .distinct().order_by(Merchant.status)))
        return listing(request, uow.session, select(Merchant).where(Merchant.tenant_id == staff.tenant_id),
                       title="Merchants", columns=COLUMNS, order_by=(Merchant.name, Merchant.id),
                       filters=(Filter("status", "Status", equals(Merchant.status), choice(*statuses)),),
                       search=search, search_label="merchant id, reference or name")


def _period(request: Request, today: date) -> tuple[date, date]:
    to_on = parse_day(request.query_params["to"], param="to") if request.query_params.get("to") else today
    from_on = parse_day(request.query_params["from"], param="from") if request.query_params.get("from") \
        else to_on - timedelta(days=STATEMENT_DAYS)
    return from_on, to_on


@router.get("/merchants/{merchant_id}")
def merchant_detail(request: Request, staff: CurrentStaff, merchant_id: str) -> Response:
    tenant_id = staff.tenant_id
    with database(request).uow(read_only=True) as uow:
        merchant = payments.get_merchant(uow, tenant_id, merchant_id)
        kind = PartyKind.MERCHANT
        balances = splits.party_balances(uow, tenant_id, party_kind=kind, party_id=merchant.id)
        withdrawable = {b.currency: payouts.available_balance(uow, tenant_id, party_kind=kind, party_id=merchant.id,
                                                              currency=b.currency) for b in balances}
        rules = list(uow.session.scalars(select(SplitRule).where(
            SplitRule.tenant_id == tenant_id, SplitRule.merchant_id == merchant.id)
            .order_by(SplitRule.scope_key, SplitRule.version.desc())))
        defaults = list(uow.session.scalars(select(SplitRule).where(
            SplitRule.tenant_id == tenant_id, SplitRule.scope == "default", SplitRule.status == "active")))
        from_on, to_on = _period(request, reference_now(uow.session, staff, uow.clock.now()).date())
        statement = statements.statement(uow, tenant_id, party_kind=kind, party_id=merchant.id, from_on=from_on,
                                         to_on=to_on)
        batches = list(uow.session.scalars(select(SettlementBatch).where(
            SettlementBatch.tenant_id == tenant_id, SettlementBatch.party_kind == kind.value,
            SettlementBatch.party_id == merchant.id).order_by(SettlementBatch.id.desc()).limit(50)))
        recent_payouts = list(uow.session.scalars(_payouts_of(tenant_id, merchant.id).order_by(Payout.id.desc())
                                                  .limit(20)))
        schedules = list(uow.session.scalars(select(PayoutSchedule).where(
            PayoutSchedule.tenant_id == tenant_id, PayoutSchedule.party_kind == kind.value,
            PayoutSchedule.party_id == merchant.id).order_by(PayoutSchedule.currency)))
        accounts = payouts.list_payout_accounts(uow, tenant_id, party_kind=kind.value, party_id=merchant.id,
                                                limit=100)[:100]
        holders = {a.id: payouts.masked_holder(uow, a) for a in accounts}
        return html(request, "merchants/detail.html", merchant=merchant, balances=balances,
                    withdrawable=withdrawable, rules=rules, defaults=defaults, terms=_terms_text,
                    profile=settlement.find_profile(uow, tenant_id, party_kind=kind, party_id=merchant.id),
                    reserves=settlement.held_reserves(uow, tenant_id, kind, merchant.id), statement=statement,
                    batches=batches, payouts=recent_payouts, payout_columns=PAYOUT_COLUMNS, schedules=schedules,
                    accounts=accounts, holders=holders)


def _terms_text(terms: dict[str, object]) -> str:
    return json.dumps(terms, sort_keys=True)


def _payouts_of(tenant_id: str, merchant_id: str) -> Select[Any]:
    return select(Payout).where(Payout.tenant_id == tenant_id, Payout.party_kind == PartyKind.MERCHANT.value,
                                Payout.party_id == merchant_id)


@router.get("/merchants/{merchant_id}/payouts")
def merchant_payouts(request: Request, staff: CurrentStaff, merchant_id: str) -> Response:
    with database(request).uow(read_only=True) as uow:
        merchant = payments.get_merchant(uow, staff.tenant_id, merchant_id)
        filters = (
            Filter("status", "Status", equals(Payout.status), choice(*(s.value for s in PayoutStatus))),
            Filter("from", "From", since(Payout.created_at), kind="date"),
            Filter("to", "To", until(Payout.created_at), kind="date"),
        )
        return listing(request, uow.session, _payouts_of(staff.tenant_id, merchant.id),
                       title=f"Payouts of {merchant.name}", columns=PAYOUT_COLUMNS, order_by=(Payout.id.desc(),),
                       filters=filters, search=lambda q: or_(Payout.id == q, Payout.bank_reference == q),
                       search_label="payout id or bank reference", export_name=f"payouts-{merchant.id}")


@router.get("/merchants/{merchant_id}/statement.csv")
def statement_csv(request: Request, staff: CurrentStaff, merchant_id: str) -> Response:
    """The settlement statement the API gives (``GET /v1/statements/merchant/{id}?format=csv``), as a download."""
    with database(request).uow(read_only=True) as uow:
        merchant = payments.get_merchant(uow, staff.tenant_id, merchant_id)
        from_on, to_on = _period(request, reference_now(uow.session, staff, uow.clock.now()).date())
        result = statements.statement(uow, staff.tenant_id, party_kind=PartyKind.MERCHANT, party_id=merchant.id,
                                      from_on=from_on, to_on=to_on)
    header, *rows = list(csv.reader(io.StringIO(statements.to_csv(result))))
    return csv_table(f"statement-{merchant.id}-{from_on}-{to_on}", header, rows)


def parse_threshold(text: str | None) -> int | None:
    """A whole number of minor units, or None (blank: refunds never wait for approval)."""
    if text is None:
        return None
    cleaned = text.replace(",", "").replace("_", "")
    if not cleaned.isascii() or not cleaned.isdigit() or int(cleaned) > MAX_AMOUNT:
        raise InvalidRequest("The threshold is a whole number of minor units (e.g. 50000 for CNY 500.00), or blank.",
                             code="invalid_amount", param="refund_approval_amount")
    return int(cleaned)


@router.post("/merchants/{merchant_id}/refund-approval")
def refund_approval(request: Request, staff: ActingStaff, merchant_id: str) -> Response:
    form = form_of(request)

    def work(uow: UnitOfWork) -> Merchant:
        amount = parse_threshold(field(form, "refund_approval_amount", required=False))
        return payments.set_refund_approval_amount(uow, staff.tenant_id, merchant_id, amount,
                                                   actor=staff.principal.actor)

    return act(request, staff, action="merchant.refund_approval_amount_changed", object_type="merchant",
               object_id=merchant_id, work=work, permission=CONFIGURE, form=form,
               done="Refund approval threshold saved.", back=f"/console/merchants/{merchant_id}")


@router.get("/merchants/payouts/{payout_id}")
def payout_detail(request: Request, staff: CurrentStaff, payout_id: str) -> Response:
    with database(request).uow(read_only=True) as uow:
        payout = payouts.get_payout(uow, staff.tenant_id, payout_id)
        approval = tenancy.get_approval(uow, staff.tenant_id, payout.approval_id) if payout.approval_id else None
        account = uow.session.scalar(select(PayoutAccount).where(PayoutAccount.tenant_id == staff.tenant_id,
                                                                 PayoutAccount.id == payout.payout_account_id))
        merchant = uow.session.scalar(select(Merchant).where(Merchant.tenant_id == staff.tenant_id,
                                                             Merchant.id == payout.party_id)) \
            if payout.party_kind == PartyKind.MERCHANT.value else None
        holder = payouts.masked_holder(uow, account) if account is not None else None
        return html(request, "merchants/payout.html", payout=payout, approval=approval, account=account,
                    holder=holder, merchant=merchant)
