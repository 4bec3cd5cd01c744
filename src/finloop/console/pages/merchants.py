"""Merchants: the list, and a merchant's money: split rules, settlement terms, balances by bucket (read from the
ledger accounts settlement and splits post to), statements, payouts. A payout has its own page, which the
approvals queue links to.

What the API lets an integration change about a merchant is changed here the same way: its refund approval
threshold (``PATCH /v1/merchants/{id}``), its settlement profile (``PUT /v1/settlement-profiles/merchant/{id}``),
its split rules (``POST /v1/split-rules``, ``POST /v1/split-rules/{id}/retire``) and a split's preview
(``POST /v1/split-rules/preview``): each form is read as the API's request body, checked by the API's model, and
handed to the service call the endpoint makes, under the endpoint's permission."""

from __future__ import annotations

import csv
import io
import json
import re
from datetime import date, timedelta
from decimal import Decimal
from typing import Any, TypeVar

from fastapi import APIRouter, Request
from fastapi.responses import Response
from pydantic import BaseModel, TypeAdapter, ValidationError
from sqlalchemy import Select, or_, select

from finloop.api.errors import describe_validation_error
from finloop.api.types import CurrencyCode
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
    parse_amount,
    parse_day,
    reference_now,
    since,
    until,
)
from finloop.core.errors import InvalidRequest, NotFound
from finloop.db.uow import UnitOfWork
from finloop.payments import service as payments
from finloop.payments.models import Merchant
from finloop.payouts import service as payouts
from finloop.payouts.models import Payout, PayoutAccount, PayoutSchedule
from finloop.payouts.state import PayoutStatus
from finloop.settlement import service as settlement
from finloop.settlement import statement as statements
from finloop.settlement.accounts import PartyKind
from finloop.settlement.endpoints import CONFIGURE as SETTLEMENT_CONFIGURE
from finloop.settlement.endpoints import ProfileWrite, read_profile
from finloop.settlement.models import SettlementBatch, SettlementProfile
from finloop.splits import service as splits
from finloop.splits.domain import Bearer, PlatformKind
from finloop.splits.endpoints import WRITE_PERMISSION as SPLITS_CONFIGURE
from finloop.splits.models import SplitRule
from finloop.splits.schemas import PartRead, PreviewRead, PreviewRequest, SplitRuleCreate, read_rule
from finloop.splits.service import RuleScope, RuleStatus
from finloop.tenancy import service as tenancy

router = APIRouter()

#: The permission the API's ``PATCH /v1/merchants/{id}`` asks for.
CONFIGURE = "payments.configure"
STATEMENT_DAYS = 30
#: The most a minor-unit amount typed into a form may be (the API's bound for an amount).
MAX_AMOUNT = 10**15
#: The most text the split rule editor takes: a rule at the API's limits fits many times over.
MAX_RULE_CHARS = 20_000
#: The preview's currency until the merchant has a balance or a payout account to take it from.
FALLBACK_CURRENCY = "CNY"
WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")

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
        rules = _rules_of(uow, tenant_id, merchant.id)
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
        profile = settlement.find_profile(uow, tenant_id, party_kind=kind, party_id=merchant.id)
        own_rule = next((r for r in rules if r.scope == RuleScope.MERCHANT.value
                         and r.status == RuleStatus.ACTIVE.value), None)
        currencies = [b.currency for b in balances] + [a.currency for a in accounts] + [FALLBACK_CURRENCY]
        return html(request, "merchants/detail.html", merchant=merchant, balances=balances,
                    withdrawable=withdrawable, rules=rules, defaults=defaults, terms=_terms_text, profile=profile,
                    profile_values=profile_values(profile), weekdays=WEEKDAYS, rule_text=rule_text(own_rule,
                                                                                                merchant.id),
                    preview=_preview_form(rules, {"currency": currencies[0], "fee": "0"}),
                    reserves=settlement.held_reserves(uow, tenant_id, kind, merchant.id), statement=statement,
                    batches=batches, payouts=recent_payouts, payout_columns=PAYOUT_COLUMNS, schedules=schedules,
                    accounts=accounts, holders=holders)


def _rules_of(uow: UnitOfWork, tenant_id: str, merchant_id: str) -> list[SplitRule]:
    """The merchant's own rules (its merchant and category scopes), every version, newest first per scope."""
    return list(uow.session.scalars(select(SplitRule).where(
        SplitRule.tenant_id == tenant_id, SplitRule.merchant_id == merchant_id)
        .order_by(SplitRule.scope_key, SplitRule.version.desc())))


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


# ------------------------------------------------------------------------------ the API's bodies, from forms

Body = TypeVar("Body", bound=BaseModel)
_CURRENCY = TypeAdapter(CurrencyCode)
#: Longer digit strings stay text (the API refuses them either way), so no huge number is ever parsed.
_WHOLE_NUMBER = re.compile(r"-?[0-9]{1,30}")


def refusal(error: ValidationError, *, at: tuple[str, ...] = ()) -> InvalidRequest:
    """What the API answers to a body its model refuses (the same code, message and field), as the error a
    console page raises; ``at`` names the field when a single value was checked on its own."""
    details = [{**detail, "loc": (*at, *detail["loc"])} for detail in error.errors()]
    code, message, param = describe_validation_error(details)
    return InvalidRequest(message, code=code, param=param)


def api_body(model: type[Body], raw: object) -> Body:
    """``raw`` checked by the API's request model ``model``."""
    try:
        return model.model_validate(raw)
    except ValidationError as error:
        raise refusal(error) from None


def api_currency(text: str | None, *, param: str) -> str:
    """A currency code checked by the API's ``CurrencyCode`` (typed in any case)."""
    try:
        return _CURRENCY.validate_python((text or "").strip().upper())
    except ValidationError as error:
        raise refusal(error, at=(param,)) from None


def _typed(text: str) -> int | str:
    """A whole number typed into a form as the JSON number the API takes; anything else stays text, for the
    API's model to refuse as it would refuse it in a body."""
    cleaned = text.replace(",", "").replace("_", "")
    return int(cleaned) if _WHOLE_NUMBER.fullmatch(cleaned) else text


# ------------------------------------------------------------------------------------ settlement profile

#: The profile's fields a person types as whole numbers (days, a weekday, minor units).
_PROFILE_NUMBERS = frozenset({"offset_days", "weekday", "day_of_month", "freeze_days", "reserve_days",
                              "min_settlement_amount"})


def profile_values(profile: SettlementProfile | None) -> dict[str, str]:
    """The profile form's starting values: the profile as the API reads it out, or the API's defaults."""
    current = read_profile(profile).model_dump(mode="json") if profile is not None \
        else ProfileWrite().model_dump(mode="json")
    return {name: "" if current[name] is None else str(current[name]) for name in ProfileWrite.model_fields}


def profile_body(form: dict[str, str]) -> ProfileWrite:
    """The form as the body of ``PUT /v1/settlement-profiles/merchant/{id}``: a blank field takes the API's
    default. The minimum settlement is in minor units: it is compared with each sales currency's cohorts, so
    it belongs to no one currency whose decimals a major-unit amount could be read with."""
    raw: dict[str, object] = {}
    for name in ProfileWrite.model_fields:
        text = form.get(name, "").strip()
        if text:
            raw[name] = _typed(text) if name in _PROFILE_NUMBERS else text
    if "settlement_currency" in raw:
        raw["settlement_currency"] = form["settlement_currency"].strip().upper()
    return api_body(ProfileWrite, raw)


@router.post("/merchants/{merchant_id}/settlement-profile")
def settlement_profile(request: Request, staff: ActingStaff, merchant_id: str) -> Response:
    form = form_of(request)

    def work(uow: UnitOfWork) -> SettlementProfile:
        merchant = payments.get_merchant(uow, staff.tenant_id, merchant_id)
        body = profile_body(form)
        return settlement.set_profile(
            uow, staff.tenant_id, party_kind=PartyKind.MERCHANT, party_id=merchant.id, cycle=body.cycle,
            offset_days=body.offset_days, weekday=body.weekday, day_of_month=body.day_of_month,
            freeze_days=body.freeze_days, reserve_rate=Decimal(body.reserve_rate), reserve_days=body.reserve_days,
            settlement_currency=body.settlement_currency, min_settlement_amount=body.min_settlement_amount)

    return act(request, staff, action="merchant.settlement_profile_set", object_type="merchant",
               object_id=merchant_id, work=work, permission=SETTLEMENT_CONFIGURE, form=form,
               done="Settlement profile saved.", back=f"/console/merchants/{merchant_id}")


# ------------------------------------------------------------------------------------------- split rules


def rule_text(rule: SplitRule | None, merchant_id: str) -> str:
    """The rule editor's starting text: the merchant's active rule as the body ``POST /v1/split-rules`` takes
    (saved unchanged, it becomes the next version), or an example when it has none."""
    if rule is None:
        body: dict[str, object] = {"scope": RuleScope.MERCHANT.value, "merchant_id": merchant_id,
                                   "platform": {"kind": PlatformKind.RATIO.value, "ratio": "0.05"},
                                   "promoter_ratios": [], "refund_policy": "proportional", "description": ""}
    else:
        read = read_rule(rule)
        body = {"scope": read.scope.value, "merchant_id": merchant_id}
        if read.category is not None:
            body["category"] = read.category
        body |= {"platform": _platform_body(read.platform), "promoter_ratios": read.promoter_ratios,
                 "refund_policy": read.refund_policy.value, "description": read.description}
    return json.dumps(body, indent=2, ensure_ascii=False)


def _platform_body(stored: dict[str, Any]) -> dict[str, Any]:
    """The stored platform terms without the fields their kind leaves unused (the API refuses those)."""
    kind = PlatformKind(stored.get("kind", PlatformKind.NONE.value))
    body: dict[str, Any] = {"kind": kind.value}
    if kind is PlatformKind.RATIO:
        body["ratio"] = stored["ratio"]
    elif kind is PlatformKind.FIXED:
        body["amount"] = stored["amount"]
    elif kind is PlatformKind.TIERED:
        body |= {"tier_basis": stored["tier_basis"], "tiers": stored["tiers"]}
    if stored.get("category_ratios"):
        body["category_ratios"] = stored["category_ratios"]
    return body


def rule_body(text: str | None, merchant_id: str) -> SplitRuleCreate:
    """The editor's JSON as the body of ``POST /v1/split-rules``, for this merchant only: a body naming no
    merchant is given this one, a body naming another is refused."""
    if not text or not text.strip():
        raise InvalidRequest("The rule is required.", code="missing_field", param="rule")
    if len(text) > MAX_RULE_CHARS:
        raise InvalidRequest(f"A rule is at most {MAX_RULE_CHARS} characters.", code="too_long", param="rule")
    try:
        raw = json.loads(text)
    except ValueError as error:
        raise InvalidRequest(f"The rule is not valid JSON: {error}.", code="malformed_json", param="rule") from None
    if isinstance(raw, dict):
        named = raw.setdefault("merchant_id", merchant_id)
        if named != merchant_id:
            raise InvalidRequest(f"This page makes rules of merchant {merchant_id} only.", code="merchant_mismatch",
                                 param="merchant_id")
    return api_body(SplitRuleCreate, raw)


@router.post("/merchants/{merchant_id}/split-rules")
def split_rule_create(request: Request, staff: ActingStaff, merchant_id: str) -> Response:
    form = form_of(request)

    def work(uow: UnitOfWork) -> SplitRule:
        merchant = payments.get_merchant(uow, staff.tenant_id, merchant_id)
        body = rule_body(form.get("rule"), merchant.id)
        return splits.create_split_rule(uow, staff.tenant_id, scope=body.scope, terms=body.terms(),
                                        merchant_id=body.merchant_id, category=body.category,
                                        description=body.description)

    return act(request, staff, action="split_rule.created", object_type="split_rule", object_id=None, work=work,
               permission=SPLITS_CONFIGURE, form=form, done="Split rule created.",
               back=f"/console/merchants/{merchant_id}")


@router.post("/merchants/{merchant_id}/split-rules/{rule_id}/retire")
def split_rule_retire(request: Request, staff: ActingStaff, merchant_id: str, rule_id: str) -> Response:
    def work(uow: UnitOfWork) -> SplitRule:
        merchant = payments.get_merchant(uow, staff.tenant_id, merchant_id)
        if splits.get_split_rule(uow, staff.tenant_id, rule_id).merchant_id != merchant.id:
            raise NotFound(f"Merchant {merchant.id} has no split rule {rule_id}.", code="split_rule_not_found",
                           param="rule_id")
        return splits.retire_split_rule(uow, staff.tenant_id, rule_id)

    return act(request, staff, action="split_rule.retired", object_type="split_rule", object_id=rule_id, work=work,
               permission=SPLITS_CONFIGURE, form=form_of(request), done="Split rule retired.",
               back=f"/console/merchants/{merchant_id}")


# --------------------------------------------------------------------------------------------- preview

#: The preview form's optional fields, sent to the API only when filled in.
_PREVIEW_OPTIONAL = ("category", "promoter_id", "split_rule_id")


def _preview_form(rules: list[SplitRule], values: dict[str, str]) -> dict[str, Any]:
    """What the preview form shows: the values to start from, the rules it may be pinned to, the bearers."""
    return {"values": values, "bearers": [b.value for b in Bearer],
            "rules": [r for r in rules if r.status != RuleStatus.RETIRED.value]}


def preview_body(form: dict[str, str], merchant_id: str) -> PreviewRequest:
    """The form as the body of ``POST /v1/split-rules/preview``; amounts are typed in the currency's major
    units."""
    code = api_currency(form.get("currency"), param="currency")
    raw: dict[str, object] = {
        "amount": parse_amount(form.get("amount"), code, param="amount"),
        "currency": code, "merchant_id": merchant_id,
        "fee": parse_amount(form.get("fee") or "0", code, param="fee", positive=False),
        "fee_bearer": form.get("fee_bearer") or Bearer.PLATFORM.value,
    }
    raw |= {name: form[name].strip() for name in _PREVIEW_OPTIONAL if form.get(name, "").strip()}
    return api_body(PreviewRequest, raw)


def preview_split(uow: UnitOfWork, tenant_id: str, body: PreviewRequest) -> PreviewRead:
    """What ``POST /v1/split-rules/preview`` answers: the same checks and the same plan."""
    payments.get_merchant(uow, tenant_id, body.merchant_id)
    if body.promoter_id is not None:
        splits.get_promoter(uow, tenant_id, body.promoter_id)
    if body.split_rule_id is not None:
        splits.get_split_rule(uow, tenant_id, body.split_rule_id, param="split_rule_id")
    plan = splits.plan_split(uow, tenant_id, amount=body.amount, currency_code=body.currency,
                             merchant_id=body.merchant_id, fee=body.fee, bearer=body.fee_bearer,
                             category=body.category, promoter_id=body.promoter_id, rule_id=body.split_rule_id)
    return PreviewRead(amount=body.amount, currency=body.currency, rule_id=plan.rule.id if plan.rule else None,
                       rule_version=plan.rule.version if plan.rule else None,
                       parts=[PartRead(party_kind=p.role.value, party_id=p.party_id, level=p.level, amount=p.amount,
                                       fee_amount=p.fee, net_amount=p.net) for p in plan.allocation.parts])


@router.post("/merchants/{merchant_id}/split-preview")
def split_preview(request: Request, staff: ActingStaff, merchant_id: str) -> Response:
    """Read-only, as the API's preview is: any signed-in user may ask; nothing is written or audited."""
    form = form_of(request)
    with database(request).uow(read_only=True) as uow:
        merchant = payments.get_merchant(uow, staff.tenant_id, merchant_id)
        result = preview_split(uow, staff.tenant_id, preview_body(form, merchant.id))
        return html(request, "merchants/split_preview.html", merchant=merchant, result=result,
                    preview=_preview_form(_rules_of(uow, staff.tenant_id, merchant.id), form))
