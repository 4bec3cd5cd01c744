"""Splits HTTP endpoints: promoters, merchant hierarchy links, versioned split rules and their preview,
a payment's split with its claw-backs, and a party's balances.

Reads need any key of the tenant; writes need ``splits.configure``.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query

from finloop.api.deps import CurrentReader, CurrentWriter
from finloop.api.pagination import Cursor, Limit, Page, page
from finloop.api.types import Line
from finloop.db.uow import UnitOfWork
from finloop.settlement.accounts import PartyKind
from finloop.splits import service
from finloop.splits.schemas import (
    BindingCreate,
    BindingRead,
    MerchantLinkCreate,
    MerchantLinkRead,
    PartyBalancesRead,
    PaymentSplitsRead,
    PreviewRead,
    PreviewRequest,
    PromoterCreate,
    PromoterRead,
    ReceivableLimitSet,
    SplitRuleCreate,
    SplitRuleRead,
    read_balance,
    read_link,
    read_promoter,
    read_rule,
    read_split,
)
from finloop.splits.schemas import PartRead as PartOut
from finloop.splits.service import RuleStatus

router = APIRouter(tags=["splits"])

Id = Annotated[Line, Path(min_length=1, max_length=40)]
WRITE_PERMISSION = "splits.configure"


# ------------------------------------------------------------------------------------------ promoters


@router.post("/promoters", response_model=PromoterRead, status_code=201, summary="Create a promoter")
def create_promoter(body: PromoterCreate, writer: CurrentWriter):  # type: ignore[no-untyped-def]
    return writer.run(lambda uow: read_promoter(service.create_promoter(
        uow, writer.tenant_id, reference=body.reference, name=body.name, parent_id=body.parent_id,
        receivable_limit=body.receivable_limit)), permission=WRITE_PERMISSION, status_code=201)


@router.get("/promoters", response_model=Page[PromoterRead], summary="List promoters")
def list_promoters(reader: CurrentReader, limit: Limit = 50, starting_after: Cursor = None) -> Page[PromoterRead]:
    return reader.run(lambda uow: page(service.list_promoters(uow, reader.tenant_id, after=starting_after, limit=limit),
                                       limit, read_promoter, lambda p: p.id))


@router.get("/promoters/{promoter_id}", response_model=PromoterRead, summary="Get a promoter")
def get_promoter(promoter_id: Id, reader: CurrentReader) -> PromoterRead:
    return reader.run(lambda uow: read_promoter(service.get_promoter(uow, reader.tenant_id, promoter_id)))


@router.post("/promoters/{promoter_id}/customers", response_model=BindingRead,
             summary="Bind a customer to a promoter: its orders earn the promoter commission")
def bind_customer(promoter_id: Id, body: BindingCreate, writer: CurrentWriter):  # type: ignore[no-untyped-def]
    def work(uow: UnitOfWork) -> BindingRead:
        binding = service.bind_customer(uow, writer.tenant_id, customer_id=body.customer_id, promoter_id=promoter_id)
        return BindingRead(customer_id=binding.customer_id, promoter_id=binding.promoter_id)

    return writer.run(work, permission=WRITE_PERMISSION)


# ------------------------------------------------------------------------------------------ merchant links


@router.post("/merchant-links", response_model=MerchantLinkRead, status_code=201,
             summary="Put a merchant under a parent merchant, which takes a share of its orders")
def create_merchant_link(body: MerchantLinkCreate, writer: CurrentWriter):  # type: ignore[no-untyped-def]
    return writer.run(lambda uow: read_link(service.create_merchant_link(
        uow, writer.tenant_id, merchant_id=body.merchant_id, parent_merchant_id=body.parent_merchant_id,
        share_ratio=body.share_ratio)), permission=WRITE_PERMISSION, status_code=201)


@router.get("/merchant-links", response_model=Page[MerchantLinkRead], summary="List merchant hierarchy links")
def list_merchant_links(reader: CurrentReader, limit: Limit = 50,
                        starting_after: Cursor = None) -> Page[MerchantLinkRead]:
    return reader.run(lambda uow: page(service.list_merchant_links(uow, reader.tenant_id, after=starting_after,
                                                                   limit=limit), limit, read_link, lambda x: x.id))


# ------------------------------------------------------------------------------------------ split rules


@router.post("/split-rules", response_model=SplitRuleRead, status_code=201,
             summary="Create a split rule (a new version supersedes the scope's active rule)")
def create_split_rule(body: SplitRuleCreate, writer: CurrentWriter):  # type: ignore[no-untyped-def]
    return writer.run(lambda uow: read_rule(service.create_split_rule(
        uow, writer.tenant_id, scope=body.scope, terms=body.terms(), merchant_id=body.merchant_id,
        category=body.category, description=body.description)), permission=WRITE_PERMISSION, status_code=201)


@router.get("/split-rules", response_model=Page[SplitRuleRead], summary="List split rules")
def list_split_rules(reader: CurrentReader, limit: Limit = 50, starting_after: Cursor = None,
                     status: Annotated[RuleStatus | None, Query()] = None) -> Page[SplitRuleRead]:
    return reader.run(lambda uow: page(service.list_split_rules(uow, reader.tenant_id, after=starting_after,
                                                                limit=limit, status=status),
                                       limit, read_rule, lambda r: r.id))


@router.post("/split-rules/preview", response_model=PreviewRead,
             summary="Preview how an order would be split by the rules in force")
def preview_split(body: PreviewRequest, reader: CurrentReader) -> PreviewRead:
    def work(uow: UnitOfWork) -> PreviewRead:
        from finloop.payments import service as payments

        payments.get_merchant(uow, reader.tenant_id, body.merchant_id)
        if body.promoter_id is not None:
            service.get_promoter(uow, reader.tenant_id, body.promoter_id)
        if body.split_rule_id is not None:
            service.get_split_rule(uow, reader.tenant_id, body.split_rule_id, param="split_rule_id")
        plan = service.plan_split(uow, reader.tenant_id, amount=body.amount, currency_code=body.currency,
                                  merchant_id=body.merchant_id, fee=body.fee, bearer=body.fee_bearer,
                                  category=body.category, promoter_id=body.promoter_id, rule_id=body.split_rule_id)
        return PreviewRead(amount=body.amount, currency=body.currency, rule_id=plan.rule.id if plan.rule else None,
                           rule_version=plan.rule.version if plan.rule else None,
                           parts=[PartOut(party_kind=p.role.value, party_id=p.party_id, level=p.level, amount=p.amount,
                                          fee_amount=p.fee, net_amount=p.net) for p in plan.allocation.parts])

    return reader.run(work)


@router.get("/split-rules/{rule_id}", response_model=SplitRuleRead, summary="Get a split rule version")
def get_split_rule(rule_id: Id, reader: CurrentReader) -> SplitRuleRead:
    return reader.run(lambda uow: read_rule(service.get_split_rule(uow, reader.tenant_id, rule_id)))


@router.post("/split-rules/{rule_id}/retire", response_model=SplitRuleRead,
             summary="Retire a split rule: payments no longer split by it")
def retire_split_rule(rule_id: Id, writer: CurrentWriter):  # type: ignore[no-untyped-def]
    return writer.run(lambda uow: read_rule(service.retire_split_rule(uow, writer.tenant_id, rule_id)),
                      permission=WRITE_PERMISSION)


# ------------------------------------------------------------------------------------------ splits and parties


@router.get("/payment-splits/{payment_id}", response_model=PaymentSplitsRead,
            summary="A payment's split: its parts and the claw-backs of its refunds so far")
def get_payment_splits(payment_id: Id, reader: CurrentReader) -> PaymentSplitsRead:
    def work(uow: UnitOfWork) -> PaymentSplitsRead:
        splits = service.get_payment_splits(uow, reader.tenant_id, payment_id)
        return PaymentSplitsRead(payment_id=payment_id, data=[
            read_split(s, service.parts_of(uow, s.id), service.clawbacks_of(uow, s.id)) for s in splits])

    return reader.run(work)


@router.get("/parties/{kind}/{party_id}/balances", response_model=PartyBalancesRead,
            summary="A merchant's or promoter's pending, frozen, reserve and available balances and receivable")
def get_party_balances(kind: PartyKind, party_id: Id, reader: CurrentReader) -> PartyBalancesRead:
    def work(uow: UnitOfWork) -> PartyBalancesRead:
        service.ensure_party(uow, reader.tenant_id, kind, party_id)
        balances = service.party_balances(uow, reader.tenant_id, party_kind=kind, party_id=party_id)
        return PartyBalancesRead(party_kind=kind, party_id=party_id,
                                 receivable_limit=service.receivable_limit(uow, reader.tenant_id, kind, party_id),
                                 data=[read_balance(b) for b in balances])

    return reader.run(work)


@router.post("/parties/{kind}/{party_id}/receivable-limit", response_model=PartyBalancesRead,
             summary="Set how much the party may owe after claw-backs")
def set_receivable_limit(  # type: ignore[no-untyped-def]
        kind: PartyKind, party_id: Id, body: ReceivableLimitSet, writer: CurrentWriter):
    def work(uow: UnitOfWork) -> PartyBalancesRead:
        service.set_receivable_limit(uow, writer.tenant_id, party_kind=kind, party_id=party_id,
                                     limit=body.receivable_limit)
        balances = service.party_balances(uow, writer.tenant_id, party_kind=kind, party_id=party_id)
        return PartyBalancesRead(party_kind=kind, party_id=party_id, receivable_limit=body.receivable_limit,
                                 data=[read_balance(b) for b in balances])

    return writer.run(work, permission=WRITE_PERMISSION)
