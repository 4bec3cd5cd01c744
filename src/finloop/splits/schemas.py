"""Request and response models of the splits API, and the mapping from rows to responses."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from finloop.api.types import Amount, CurrencyCode, Line, NonNegativeAmount
from finloop.settlement.accounts import PartyKind
from finloop.splits.domain import (
    MAX_CATEGORIES,
    MAX_PROMOTER_LEVELS,
    MAX_TIERS,
    RATIO_PLACES,
    Bearer,
    PlatformKind,
    RefundPolicy,
    RuleTerms,
    Tier,
    TierBasis,
)
from finloop.splits.models import MerchantLink, PaymentSplit, PaymentSplitPart, Promoter, SplitClawback, SplitRule
from finloop.splits.service import PartyBalance, RuleScope, RuleStatus, terms_from_json


def _finite(value: Decimal) -> Decimal:
    if not value.is_finite():
        raise ValueError("A ratio is a finite decimal.")
    return value


Ratio = Annotated[Decimal, Field(ge=0, le=1, max_digits=RATIO_PLACES + 1, decimal_places=RATIO_PLACES,
                                 description='A fraction of the order amount, as a string: "0.08".'),
                  AfterValidator(_finite)]
Id = Annotated[Line, Field(min_length=1, max_length=40)]
Category = Annotated[Line, Field(min_length=1, max_length=100)]
Reference = Annotated[Line, Field(min_length=1, max_length=100)]
Name = Annotated[Line, Field(min_length=1, max_length=200)]


class PromoterCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reference: Reference
    name: Name
    parent_id: Id | None = Field(None, description="The parent promoter: it earns the next level's commission.")
    receivable_limit: NonNegativeAmount = Field(0, description="How much the promoter may owe after claw-backs.")


class PromoterRead(BaseModel):
    id: str
    object: str = "promoter"
    reference: str
    name: str
    parent_id: str | None
    receivable_limit: int
    created_at: datetime


def read_promoter(promoter: Promoter) -> PromoterRead:
    return PromoterRead(id=promoter.id, reference=promoter.reference, name=promoter.name, parent_id=promoter.parent_id,
                        receivable_limit=promoter.receivable_limit, created_at=promoter.created_at)


class BindingCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    customer_id: Id


class BindingRead(BaseModel):
    object: str = "promoter_binding"
    customer_id: str
    promoter_id: str


class MerchantLinkCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    merchant_id: Id
    parent_merchant_id: Id
    share_ratio: Ratio


class MerchantLinkRead(BaseModel):
    id: str
    object: str = "merchant_link"
    merchant_id: str
    parent_merchant_id: str
    share_ratio: Decimal
    created_at: datetime


def read_link(link: MerchantLink) -> MerchantLinkRead:
    return MerchantLinkRead(id=link.id, merchant_id=link.merchant_id, parent_merchant_id=link.parent_merchant_id,
                            share_ratio=link.share_ratio, created_at=link.created_at)


class TierIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    min_amount: NonNegativeAmount
    ratio: Ratio


class PlatformTerms(BaseModel):
    model_config = ConfigDict(extra="forbid")

    kind: PlatformKind = PlatformKind.NONE
    ratio: Ratio | None = None
    amount: Amount | None = None
    tier_basis: TierBasis = TierBasis.ORDER_AMOUNT
    tiers: Annotated[list[TierIn], Field(max_length=MAX_TIERS)] = []
    category_ratios: Annotated[dict[Category, Ratio], Field(max_length=MAX_CATEGORIES)] = {}


class SplitRuleCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    scope: RuleScope
    merchant_id: Id | None = None
    category: Category | None = None
    platform: PlatformTerms = PlatformTerms()
    promoter_ratios: Annotated[list[Ratio], Field(max_length=MAX_PROMOTER_LEVELS,
                                                  description="Level 1 (the order's promoter), level 2, ...")] = []
    refund_policy: RefundPolicy = RefundPolicy.PROPORTIONAL
    description: Annotated[Line, Field(max_length=500)] = ""

    def terms(self) -> RuleTerms:
        p = self.platform
        return RuleTerms(platform_kind=p.kind, platform_ratio=p.ratio or Decimal(0), platform_amount=p.amount or 0,
                         tiers=tuple(Tier(t.min_amount, t.ratio) for t in p.tiers), tier_basis=p.tier_basis,
                         category_ratios=tuple(sorted(p.category_ratios.items())),
                         promoter_ratios=tuple(self.promoter_ratios), refund_policy=self.refund_policy)


class SplitRuleRead(BaseModel):
    id: str
    object: str = "split_rule"
    scope: RuleScope
    merchant_id: str | None
    category: str | None
    version: int
    supersedes_id: str | None
    status: RuleStatus
    description: str
    platform: dict[str, Any]
    promoter_ratios: list[str]
    refund_policy: RefundPolicy
    created_at: datetime
    retired_at: datetime | None


def read_rule(rule: SplitRule) -> SplitRuleRead:
    terms = rule.terms
    terms_from_json(terms)  # a stored rule always parses
    return SplitRuleRead(id=rule.id, scope=RuleScope(rule.scope), merchant_id=rule.merchant_id, category=rule.category,
                         version=rule.version, supersedes_id=rule.supersedes_id, status=RuleStatus(rule.status),
                         description=rule.description, platform=terms.get("platform", {}),
                         promoter_ratios=list(terms.get("promoter_ratios", [])),
                         refund_policy=RefundPolicy(terms.get("refund_policy", "proportional")),
                         created_at=rule.created_at, retired_at=rule.retired_at)


class PreviewRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    amount: Amount
    currency: CurrencyCode
    merchant_id: Id
    category: Category | None = None
    promoter_id: Id | None = None
    split_rule_id: Id | None = None
    fee: NonNegativeAmount = 0
    fee_bearer: Bearer = Bearer.PLATFORM


class PartRead(BaseModel):
    party_kind: str = Field(description="platform, promoter or merchant.")
    party_id: str
    level: int
    amount: int = Field(description="The gross share of the order.")
    fee_amount: int = Field(description="The share of the channel fee this party bears.")
    net_amount: int
    recovered_amount: int = Field(0, description="Paid down the party's receivable instead of its pending balance.")
    clawed_amount: int = Field(0, description="Taken back by refunds so far.")


class PreviewRead(BaseModel):
    object: str = "split_preview"
    amount: int
    currency: str
    rule_id: str | None
    rule_version: int | None
    parts: list[PartRead]


class ClawbackRead(BaseModel):
    refund_id: str
    amount: int
    business_date: date
    pieces: list[dict[str, Any]]
    entry_id: str | None


class PaymentSplitRead(BaseModel):
    id: str
    object: str = "payment_split"
    payment_id: str
    capture_key: str
    merchant_id: str
    rule_id: str | None
    rule_version: int | None
    fee_bearer: str
    refund_policy: str
    amount: int
    fee_amount: int
    refunded_amount: int
    currency: str
    business_date: date
    entry_id: str | None
    parts: list[PartRead]
    clawbacks: list[ClawbackRead]


class PaymentSplitsRead(BaseModel):
    object: str = "list"
    payment_id: str
    data: list[PaymentSplitRead]


def read_part(part: PaymentSplitPart) -> PartRead:
    return PartRead(party_kind=part.party_kind, party_id=part.party_id, level=part.level, amount=part.amount,
                    fee_amount=part.fee_amount, net_amount=part.amount - part.fee_amount,
                    recovered_amount=part.recovered_amount, clawed_amount=part.clawed_amount)


def read_split(split: PaymentSplit, parts: list[PaymentSplitPart], claws: list[SplitClawback]) -> PaymentSplitRead:
    return PaymentSplitRead(
        id=split.id, payment_id=split.payment_id, capture_key=split.capture_key, merchant_id=split.merchant_id,
        rule_id=split.rule_id, rule_version=split.rule_version, fee_bearer=split.fee_bearer,
        refund_policy=split.refund_policy, amount=split.amount, fee_amount=split.fee_amount,
        refunded_amount=split.refunded_amount, currency=split.currency, business_date=split.business_date,
        entry_id=split.entry_id, parts=[read_part(p) for p in parts],
        clawbacks=[ClawbackRead(refund_id=c.refund_id, amount=c.amount, business_date=c.business_date,
                                pieces=list(c.pieces), entry_id=c.entry_id) for c in claws])


class BalanceRead(BaseModel):
    currency: str
    pending: int
    frozen: int
    reserve: int
    available: int
    receivable: int = Field(description="What the party owes the platform (claw-backs after payout).")


class PartyBalancesRead(BaseModel):
    object: str = "party_balances"
    party_kind: PartyKind
    party_id: str
    receivable_limit: int
    data: list[BalanceRead]


def read_balance(balance: PartyBalance) -> BalanceRead:
    return BalanceRead(currency=balance.currency, pending=balance.pending, frozen=balance.frozen,
                       reserve=balance.reserve, available=balance.available, receivable=balance.receivable)


class ReceivableLimitSet(BaseModel):
    model_config = ConfigDict(extra="forbid")

    receivable_limit: NonNegativeAmount
