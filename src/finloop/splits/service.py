"""Split settlement use cases. Every function takes a unit of work and never commits.

- Parties: promoters (with an optional parent, for multi-level commission), customer → promoter
  bindings, merchant → parent merchant links (headquarters → branch → distributor), per-party
  receivable limits.
- Rules: versioned data (``split_rules``); a new rule for a scope supersedes the active one, a rule is
  never edited. Precedence when a payment succeeds: the order's rule (``payment.meta["split_rule_id"]``)
  > the merchant's category rule > the tenant's category rule > the merchant's rule > the tenant
  default > none (the merchant takes everything).
- Posting: ``post_capture`` and ``post_clawback`` are called by ``finloop.payments.postings`` and turn a
  payment's success or refund into one balanced entry crediting (or debiting) every party's buckets,
  recording the split, its parts and claw-backs in the same transaction.

Rounding and claw-back rules: see ``finloop.splits.domain``.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from enum import StrEnum
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from finloop.audit import service as audit
from finloop.core.errors import Conflict, InvalidRequest, InvariantViolation, NotFound
from finloop.core.money import check_amount
from finloop.db.uow import UnitOfWork
from finloop.ledger import service as ledger
from finloop.ledger.domain import AccountType, BalanceRule, PostingSpec, TransferSpec
from finloop.payments.models import Payment, Refund
from finloop.settlement.accounts import (
    Bucket,
    PartyKind,
    commission_code,
    party_account_code,
    party_receivable_code,
)
from finloop.splits.domain import (
    MAX_HIERARCHY_DEPTH,
    MAX_PROMOTER_LEVELS,
    Allocation,
    Bearer,
    Part,
    PartyRole,
    PlatformKind,
    RefundPolicy,
    RuleTerms,
    SplitContext,
    Tier,
    TierBasis,
    allocate_split,
    check_ratio,
    clawback,
    draw,
    validate_terms,
)
from finloop.splits.models import (
    MerchantLink,
    PartyLimit,
    PaymentSplit,
    PaymentSplitPart,
    Promoter,
    PromoterBinding,
    SplitClawback,
    SplitRule,
)

WALLET_CAPTURE = "wallet"


class RuleScope(StrEnum):
    ORDER = "order"
    CATEGORY = "category"
    MERCHANT = "merchant"
    DEFAULT = "default"


class RuleStatus(StrEnum):
    ACTIVE = "active"
    SUPERSEDED = "superseded"
    RETIRED = "retired"


def fee_recovery_code(shard: int) -> str:
    """The platform's income from channel fees a party bears (merchant or pro-rata bearer)."""
    return f"income:fee_recovery:{shard}"


# ------------------------------------------------------------------------------------------ promoters


def create_promoter(uow: UnitOfWork, tenant_id: str, *, reference: str, name: str, parent_id: str | None = None,
                    receivable_limit: int = 0) -> Promoter:
    check_amount(receivable_limit, allow_negative=False)
    if uow.session.scalar(select(Promoter.id).where(Promoter.tenant_id == tenant_id,
                                                    Promoter.reference == reference)) is not None:
        raise Conflict(f"A promoter with reference {reference!r} exists.", code="promoter_exists", param="reference")
    if parent_id is not None:
        chain = promoter_chain(uow, tenant_id, get_promoter(uow, tenant_id, parent_id, param="parent_id").id)
        if len(chain) >= MAX_PROMOTER_LEVELS:
            raise InvalidRequest(f"Promoter chains are at most {MAX_PROMOTER_LEVELS} deep.",
                                 code="promoter_chain_too_deep", param="parent_id")
    promoter = Promoter(id=uow.ids.new("promoter"), tenant_id=tenant_id, reference=reference, name=name,
                        parent_id=parent_id, receivable_limit=receivable_limit, created_at=uow.clock.now())
    _insert(uow, promoter, Conflict(f"A promoter with reference {reference!r} exists.", code="promoter_exists",
                                    param="reference"))
    return promoter


def _insert(uow: UnitOfWork, row: object, conflict: Conflict) -> None:
    """Insert a row whose unique key a racing transaction may have taken: that is a 409, not a 500."""
    try:
        with uow.session.begin_nested():
            uow.session.add(row)
            uow.session.flush()
    except IntegrityError as error:
        raise conflict from error


def find_promoter(uow: UnitOfWork, tenant_id: str, promoter_id: str) -> Promoter | None:
    return uow.session.scalar(select(Promoter).where(Promoter.tenant_id == tenant_id, Promoter.id == promoter_id))


def get_promoter(uow: UnitOfWork, tenant_id: str, promoter_id: str, param: str = "promoter_id") -> Promoter:
    promoter = find_promoter(uow, tenant_id, promoter_id)
    if promoter is None:
        raise NotFound(f"No such promoter: {promoter_id}.", code="promoter_not_found", param=param)
    return promoter


def list_promoters(uow: UnitOfWork, tenant_id: str, *, after: str | None = None, limit: int = 50) -> list[Promoter]:
    query = select(Promoter).where(Promoter.tenant_id == tenant_id)
    if after:
        query = query.where(Promoter.id > after)
    return list(uow.session.scalars(query.order_by(Promoter.id).limit(limit + 1)))


def promoter_chain(uow: UnitOfWork, tenant_id: str, promoter_id: str) -> tuple[str, ...]:
    """The promoter and its ancestors, nearest first (at most ``MAX_PROMOTER_LEVELS``)."""
    chain: list[str] = []
    current: str | None = promoter_id
    while current is not None and current not in chain and len(chain) < MAX_PROMOTER_LEVELS:
        promoter = find_promoter(uow, tenant_id, current)
        if promoter is None:
            break
        chain.append(promoter.id)
        current = promoter.parent_id
    return tuple(chain)


def bind_customer(uow: UnitOfWork, tenant_id: str, *, customer_id: str, promoter_id: str) -> PromoterBinding:
    """The customer's orders earn ``promoter_id`` (and its parents) commission from now on."""
    from finloop.payments import service as payments

    payments.get_customer(uow, tenant_id, customer_id)
    get_promoter(uow, tenant_id, promoter_id)
    binding = uow.session.scalar(select(PromoterBinding).where(PromoterBinding.tenant_id == tenant_id,
                                                               PromoterBinding.customer_id == customer_id))
    if binding is None:
        binding = PromoterBinding(tenant_id=tenant_id, customer_id=customer_id, promoter_id=promoter_id,
                                  created_at=uow.clock.now())
        uow.session.add(binding)
    else:
        binding.promoter_id = promoter_id
    uow.session.flush()
    return binding


# ------------------------------------------------------------------------------------------ merchant links


def create_merchant_link(uow: UnitOfWork, tenant_id: str, *, merchant_id: str, parent_merchant_id: str,
                         share_ratio: Decimal) -> MerchantLink:
    from finloop.payments import service as payments

    check_ratio(share_ratio, "share_ratio")
    payments.get_merchant(uow, tenant_id, merchant_id)
    payments.get_merchant(uow, tenant_id, parent_merchant_id, param="parent_merchant_id")
    if merchant_id == parent_merchant_id:
        raise InvalidRequest("A merchant cannot be its own parent.", code="link_cycle", param="parent_merchant_id")
    if _link_of(uow, tenant_id, merchant_id) is not None:
        raise Conflict(f"Merchant {merchant_id} already has a parent.", code="merchant_link_exists",
                       param="merchant_id")
    ancestors = merchant_hierarchy(uow, tenant_id, parent_merchant_id)
    if merchant_id in (m for m, _ in ancestors):
        raise InvalidRequest("The link would make a cycle.", code="link_cycle", param="parent_merchant_id")
    if len(ancestors) + 1 > MAX_HIERARCHY_DEPTH:
        raise InvalidRequest(f"Hierarchies are at most {MAX_HIERARCHY_DEPTH} levels above a merchant.",
                             code="hierarchy_too_deep", param="parent_merchant_id")
    if share_ratio + sum((r for _, r in ancestors), Decimal(0)) > 1:
        raise InvalidRequest("The hierarchy's shares would sum to more than 1.", code="ratios_exceed_one",
                             param="share_ratio")
    link = MerchantLink(id=uow.ids.new("merchant_link"), tenant_id=tenant_id, merchant_id=merchant_id,
                        parent_merchant_id=parent_merchant_id, share_ratio=share_ratio, created_at=uow.clock.now())
    _insert(uow, link, Conflict(f"Merchant {merchant_id} already has a parent.", code="merchant_link_exists",
                                param="merchant_id"))
    return link


def _link_of(uow: UnitOfWork, tenant_id: str, merchant_id: str) -> MerchantLink | None:
    return uow.session.scalar(select(MerchantLink).where(MerchantLink.tenant_id == tenant_id,
                                                         MerchantLink.merchant_id == merchant_id))


def list_merchant_links(uow: UnitOfWork, tenant_id: str, *, after: str | None = None,
                        limit: int = 50) -> list[MerchantLink]:
    query = select(MerchantLink).where(MerchantLink.tenant_id == tenant_id)
    if after:
        query = query.where(MerchantLink.id > after)
    return list(uow.session.scalars(query.order_by(MerchantLink.id).limit(limit + 1)))


def merchant_hierarchy(uow: UnitOfWork, tenant_id: str, merchant_id: str) -> tuple[tuple[str, Decimal], ...]:
    """The merchant's ancestors with their shares, nearest parent first."""
    chain: list[tuple[str, Decimal]] = []
    current = merchant_id
    seen = {merchant_id}
    while len(chain) < MAX_HIERARCHY_DEPTH:
        link = _link_of(uow, tenant_id, current)
        if link is None or link.parent_merchant_id in seen:
            break
        chain.append((link.parent_merchant_id, Decimal(link.share_ratio)))
        seen.add(link.parent_merchant_id)
        current = link.parent_merchant_id
    return tuple(chain)


# ------------------------------------------------------------------------------------------ limits


def set_receivable_limit(uow: UnitOfWork, tenant_id: str, *, party_kind: PartyKind, party_id: str,
                         limit: int) -> PartyLimit | None:
    """A promoter's limit is its own column; a merchant's is a row of ``split_party_limits``."""
    check_amount(limit, allow_negative=False)
    ensure_party(uow, tenant_id, party_kind, party_id)
    if party_kind is PartyKind.PROMOTER:
        get_promoter(uow, tenant_id, party_id, param="party_id").receivable_limit = limit
        uow.session.flush()
        return None
    row = uow.session.scalar(select(PartyLimit).where(PartyLimit.tenant_id == tenant_id,
                                                      PartyLimit.party_kind == party_kind.value,
                                                      PartyLimit.party_id == party_id))
    if row is None:
        row = PartyLimit(tenant_id=tenant_id, party_kind=party_kind.value, party_id=party_id, receivable_limit=limit,
                         updated_at=uow.clock.now())
        uow.session.add(row)
    else:
        row.receivable_limit = limit
        row.updated_at = uow.clock.now()
    uow.session.flush()
    return row


def receivable_limit(uow: UnitOfWork, tenant_id: str, party_kind: PartyKind, party_id: str) -> int:
    """How much the party may owe (0 unless configured)."""
    if party_kind is PartyKind.PROMOTER:
        promoter = find_promoter(uow, tenant_id, party_id)
        return promoter.receivable_limit if promoter is not None else 0
    row = uow.session.scalar(select(PartyLimit.receivable_limit).where(
        PartyLimit.tenant_id == tenant_id, PartyLimit.party_kind == party_kind.value, PartyLimit.party_id == party_id))
    return int(row) if row is not None else 0


def ensure_party(uow: UnitOfWork, tenant_id: str, party_kind: PartyKind, party_id: str) -> None:
    """A 404 unless the party is the tenant's."""
    if party_kind is PartyKind.PROMOTER:
        get_promoter(uow, tenant_id, party_id, param="party_id")
    else:
        from finloop.payments import service as payments

        payments.get_merchant(uow, tenant_id, party_id, param="party_id")


# ------------------------------------------------------------------------------------------ rules


def terms_to_json(terms: RuleTerms) -> dict[str, Any]:
    return {
        "platform": {"kind": terms.platform_kind.value, "ratio": str(terms.platform_ratio),
                     "amount": terms.platform_amount, "tier_basis": terms.tier_basis.value,
                     "tiers": [{"min_amount": t.min_amount, "ratio": str(t.ratio)} for t in terms.tiers],
                     "category_ratios": {c: str(r) for c, r in terms.category_ratios}},
        "promoter_ratios": [str(r) for r in terms.promoter_ratios],
        "refund_policy": terms.refund_policy.value,
    }


def terms_from_json(data: dict[str, Any]) -> RuleTerms:
    platform = data.get("platform", {})
    return RuleTerms(
        platform_kind=PlatformKind(platform.get("kind", "none")),
        platform_ratio=Decimal(platform.get("ratio", "0")), platform_amount=int(platform.get("amount", 0)),
        tier_basis=TierBasis(platform.get("tier_basis", "order_amount")),
        tiers=tuple(Tier(int(t["min_amount"]), Decimal(t["ratio"])) for t in platform.get("tiers", [])),
        category_ratios=tuple((c, Decimal(r)) for c, r in sorted(platform.get("category_ratios", {}).items())),
        promoter_ratios=tuple(Decimal(r) for r in data.get("promoter_ratios", [])),
        refund_policy=RefundPolicy(data.get("refund_policy", "proportional")))


def _scope_key(scope: RuleScope, merchant_id: str | None, category: str | None, rule_id: str) -> str:
    if scope is RuleScope.ORDER:
        return f"order:{rule_id}"
    if scope is RuleScope.CATEGORY:
        return f"category:{merchant_id or '*'}:{category}"
    if scope is RuleScope.MERCHANT:
        return f"merchant:{merchant_id}"
    return "default"


def create_split_rule(uow: UnitOfWork, tenant_id: str, *, scope: RuleScope, terms: RuleTerms,
                      merchant_id: str | None = None, category: str | None = None,
                      description: str = "") -> SplitRule:
    """Record a rule; an active rule of the same scope is superseded by it (a new version)."""
    from finloop.payments import service as payments

    validate_terms(terms)
    if scope is RuleScope.MERCHANT and merchant_id is None:
        raise InvalidRequest("A merchant rule names its merchant.", code="merchant_required", param="merchant_id")
    if scope is RuleScope.CATEGORY and not category:
        raise InvalidRequest("A category rule names its category.", code="category_required", param="category")
    if scope in (RuleScope.DEFAULT, RuleScope.ORDER) and merchant_id is not None:
        raise InvalidRequest(f"A {scope.value} rule applies to any merchant.", code="merchant_not_allowed",
                             param="merchant_id")
    if scope is not RuleScope.CATEGORY and category is not None:
        raise InvalidRequest("Only a category rule has a category.", code="category_not_allowed", param="category")
    if merchant_id is not None:
        payments.get_merchant(uow, tenant_id, merchant_id)
    rule_id = uow.ids.new("split_rule")
    key = _scope_key(scope, merchant_id, category, rule_id)
    active = uow.session.scalar(select(SplitRule).where(
        SplitRule.tenant_id == tenant_id, SplitRule.scope_key == key, SplitRule.status == RuleStatus.ACTIVE.value)
        .with_for_update())
    latest = uow.session.scalar(select(func.max(SplitRule.version)).where(SplitRule.tenant_id == tenant_id,
                                                                          SplitRule.scope_key == key)) or 0
    now = uow.clock.now()
    if active is not None:
        active.status = RuleStatus.SUPERSEDED.value
        active.retired_at = now
    rule = SplitRule(id=rule_id, tenant_id=tenant_id, scope=scope.value, scope_key=key, merchant_id=merchant_id,
                     category=category, version=latest + 1, supersedes_id=active.id if active else None,
                     status=RuleStatus.ACTIVE.value, description=description, terms=terms_to_json(terms),
                     created_at=now, retired_at=None)
    _insert(uow, rule, Conflict("Another version of this rule was created at the same time; retry.",
                                code="split_rule_conflict", param="scope"))
    return rule


def get_split_rule(uow: UnitOfWork, tenant_id: str, rule_id: str, param: str = "rule_id") -> SplitRule:
    rule = uow.session.scalar(select(SplitRule).where(SplitRule.tenant_id == tenant_id, SplitRule.id == rule_id))
    if rule is None:
        raise NotFound(f"No such split rule: {rule_id}.", code="split_rule_not_found", param=param)
    return rule


def list_split_rules(uow: UnitOfWork, tenant_id: str, *, after: str | None = None, limit: int = 50,
                     status: RuleStatus | None = None) -> list[SplitRule]:
    query = select(SplitRule).where(SplitRule.tenant_id == tenant_id)
    if status is not None:
        query = query.where(SplitRule.status == status.value)
    if after:
        query = query.where(SplitRule.id > after)
    return list(uow.session.scalars(query.order_by(SplitRule.id).limit(limit + 1)))


def retire_split_rule(uow: UnitOfWork, tenant_id: str, rule_id: str) -> SplitRule:
    rule = get_split_rule(uow, tenant_id, rule_id)
    if rule.status != RuleStatus.ACTIVE.value:
        raise Conflict(f"Split rule {rule_id} is {rule.status}.", code="split_rule_not_active")
    rule.status = RuleStatus.RETIRED.value
    rule.retired_at = uow.clock.now()
    uow.session.flush()
    return rule


def resolve_rule(uow: UnitOfWork, tenant_id: str, *, merchant_id: str, category: str | None,
                 rule_id: str | None) -> SplitRule | None:
    """The rule a payment splits by: order > merchant category > tenant category > merchant > default."""
    if rule_id:
        pinned = uow.session.scalar(select(SplitRule).where(SplitRule.tenant_id == tenant_id, SplitRule.id == rule_id))
        if pinned is not None and pinned.status != RuleStatus.RETIRED.value:
            return pinned
    keys = []
    if category:
        keys += [f"category:{merchant_id}:{category}", f"category:*:{category}"]
    keys += [f"merchant:{merchant_id}", "default"]
    rules = {r.scope_key: r for r in uow.session.scalars(select(SplitRule).where(
        SplitRule.tenant_id == tenant_id, SplitRule.scope_key.in_(keys), SplitRule.status == RuleStatus.ACTIVE.value))}
    return next((rules[k] for k in keys if k in rules), None)


# ------------------------------------------------------------------------------------------ allocation


@dataclass(frozen=True, slots=True)
class Plan:
    rule: SplitRule | None
    terms: RuleTerms | None
    allocation: Allocation
    bearer: Bearer


def _meta_str(meta: dict[str, Any] | None, key: str) -> str | None:
    value = (meta or {}).get(key)
    return value if isinstance(value, str) and 0 < len(value) <= 100 else None


def monthly_volume(uow: UnitOfWork, tenant_id: str, merchant_id: str, currency_code: str, on: date) -> int:
    """The merchant's split sales in ``currency_code`` this calendar month before today's payment."""
    start = on.replace(day=1)
    total = uow.session.scalar(select(func.coalesce(func.sum(PaymentSplit.amount), 0)).where(
        PaymentSplit.tenant_id == tenant_id, PaymentSplit.merchant_id == merchant_id,
        PaymentSplit.currency == currency_code, PaymentSplit.business_date >= start, PaymentSplit.business_date <= on))
    return int(total or 0)


def plan_split(uow: UnitOfWork, tenant_id: str, *, amount: int, currency_code: str, merchant_id: str, fee: int = 0,
               bearer: Bearer = Bearer.PLATFORM, category: str | None = None, promoter_id: str | None = None,
               customer_id: str | None = None, rule_id: str | None = None) -> Plan:
    """The split a payment of ``amount`` would get now (the preview and the posting use this)."""
    from finloop.tenancy.service import current_business_date

    rule = resolve_rule(uow, tenant_id, merchant_id=merchant_id, category=category, rule_id=rule_id)
    terms = terms_from_json(rule.terms) if rule is not None else None
    if promoter_id is None and customer_id is not None:
        promoter_id = uow.session.scalar(select(PromoterBinding.promoter_id).where(
            PromoterBinding.tenant_id == tenant_id, PromoterBinding.customer_id == customer_id))
    promoters = promoter_chain(uow, tenant_id, promoter_id) if promoter_id else ()
    volume = 0
    if terms is not None and terms.platform_kind is PlatformKind.TIERED \
            and terms.tier_basis is TierBasis.MONTHLY_VOLUME:
        volume = monthly_volume(uow, tenant_id, merchant_id, currency_code, current_business_date(uow, tenant_id))
    context = SplitContext(merchant_id, category=category, promoters=promoters,
                           hierarchy=merchant_hierarchy(uow, tenant_id, merchant_id), monthly_volume=volume)
    return Plan(rule, terms, allocate_split(amount, fee, bearer, terms, context), bearer)


# ------------------------------------------------------------------------------------------ posting


def _account(uow: UnitOfWork, tenant_id: str, code: str, type_: AccountType, rule: BalanceRule,
             currency_code: str) -> str:
    from finloop.payments.postings import AccountSpec, ensure_account

    return ensure_account(uow, tenant_id, AccountSpec(code, type_, rule), currency_code)


def _bucket(uow: UnitOfWork, tenant_id: str, kind: PartyKind, party_id: str, bucket: Bucket, cur: str) -> str:
    return _account(uow, tenant_id, party_account_code(kind, party_id, bucket), AccountType.LIABILITY,
                    BalanceRule.DEBITS_MUST_NOT_EXCEED_CREDITS, cur)


def _receivable(uow: UnitOfWork, tenant_id: str, kind: PartyKind, party_id: str, cur: str) -> str:
    return _account(uow, tenant_id, party_receivable_code(kind, party_id), AccountType.ASSET,
                    BalanceRule.CREDITS_MUST_NOT_EXCEED_DEBITS, cur)


def _balance(uow: UnitOfWork, tenant_id: str, code: str, cur: str) -> int:
    account = ledger.find_account_by_code(uow, tenant_id, code, cur)
    return 0 if account is None else ledger.balances(account).available


def _party_kind(part: Part) -> PartyKind | None:
    return None if part.role is PartyRole.PLATFORM else PartyKind(part.role.value)


def _sum_postings(postings: Iterable[tuple[str, int]], cur: str) -> tuple[PostingSpec, ...]:
    totals: dict[str, int] = defaultdict(int)
    for account, delta in postings:
        totals[account] += delta
    return tuple(PostingSpec(account, delta, cur) for account, delta in totals.items() if delta)


def find_split(uow: UnitOfWork, tenant_id: str, payment_id: str, capture_key: str) -> PaymentSplit | None:
    return uow.session.scalar(select(PaymentSplit).where(
        PaymentSplit.tenant_id == tenant_id, PaymentSplit.payment_id == payment_id,
        PaymentSplit.capture_key == capture_key))


def post_capture(uow: UnitOfWork, payment: Payment, *, capture_key: str, amount: int, fee: int, channel: str | None,
                 debits: Sequence[tuple[str, int]], key: str, description: str, metadata: dict[str, Any]) -> str:
    """Split a captured amount and post it: ``debits`` (the channel receivable and fee, or the wallet)
    against a credit to each party's pending balance (after paying down what it owes), the platform's
    commission and the fee it recovers. Records the split and its parts; returns the entry id."""
    from finloop.payments.postings import shard_of
    from finloop.tenancy.service import current_business_date

    tenant_id, cur = payment.tenant_id, payment.currency
    assert payment.merchant_id is not None
    existing = find_split(uow, tenant_id, payment.id, capture_key)
    if existing is not None and existing.entry_id is not None:
        return existing.entry_id
    bearer = Bearer.PLATFORM
    if channel is not None and fee:
        from finloop.clearing.service import fee_bearer

        bearer = Bearer(fee_bearer(uow, tenant_id, channel, payment.method or "", currency=cur).value)
    plan = plan_split(uow, tenant_id, amount=amount, currency_code=cur, merchant_id=payment.merchant_id, fee=fee,
                      bearer=bearer, category=_meta_str(payment.meta, "category"),
                      promoter_id=_meta_str(payment.meta, "promoter_id"), customer_id=payment.customer_id,
                      rule_id=_meta_str(payment.meta, "split_rule_id"))
    shard = shard_of(payment.id)
    split = PaymentSplit(id=uow.ids.new("payment_split"), tenant_id=tenant_id, payment_id=payment.id,
                         capture_key=capture_key, merchant_id=payment.merchant_id,
                         rule_id=plan.rule.id if plan.rule else None,
                         rule_version=plan.rule.version if plan.rule else None,
                         refund_policy=(plan.terms.refund_policy if plan.terms else RefundPolicy.PROPORTIONAL).value,
                         fee_bearer=bearer.value, amount=amount, fee_amount=fee, refunded_amount=0, currency=cur,
                         business_date=current_business_date(uow, tenant_id), entry_id=None,
                         created_at=uow.clock.now())
    uow.session.add(split)
    postings: list[tuple[str, int]] = list(debits)
    recovered_fee = 0
    owed: dict[tuple[PartyKind, str], int] = {}
    rows = []
    for seq, part in enumerate(plan.allocation.parts):
        kind = _party_kind(part)
        recovered = 0
        if kind is None:
            if part.amount:
                postings.append((_account(uow, tenant_id, commission_code(shard), AccountType.INCOME, BalanceRule.NONE,
                                          cur), -part.amount))
        else:
            recovered_fee += part.fee
            if part.net:
                party = (kind, part.party_id)
                if party not in owed:
                    owed[party] = max(_balance(uow, tenant_id, party_receivable_code(kind, part.party_id), cur), 0)
                recovered = min(owed[party], part.net)
                owed[party] -= recovered
                if recovered:
                    postings.append((_receivable(uow, tenant_id, kind, part.party_id, cur), -recovered))
                if part.net - recovered:
                    postings.append((_bucket(uow, tenant_id, kind, part.party_id, Bucket.PENDING, cur),
                                     -(part.net - recovered)))
        rows.append(PaymentSplitPart(tenant_id=tenant_id, split_id=split.id, seq=seq, party_kind=part.role.value,
                                     party_id=part.party_id, level=part.level, amount=part.amount, fee_amount=part.fee,
                                     recovered_amount=recovered, clawed_amount=0))
    if recovered_fee:
        postings.append((_account(uow, tenant_id, fee_recovery_code(shard), AccountType.INCOME, BalanceRule.NONE,
                                  cur), -recovered_fee))
    posted = ledger.post_transfer(uow, tenant_id, TransferSpec(
        key=key, postings=_sum_postings(postings, cur), description=description,
        metadata={**metadata, "split_id": split.id}))
    split.entry_id = posted.id
    split.business_date = posted.business_date
    uow.session.add_all(rows)
    uow.session.flush()
    return posted.id


def parts_of(uow: UnitOfWork, split_id: str) -> list[PaymentSplitPart]:
    return list(uow.session.scalars(select(PaymentSplitPart).where(PaymentSplitPart.split_id == split_id)
                                    .order_by(PaymentSplitPart.seq)))


def post_clawback(uow: UnitOfWork, payment: Payment, refund: Refund, *, credits: Sequence[tuple[str, int]], key: str,
                  description: str, metadata: dict[str, Any], enforce_limit: bool = True) -> str | None:
    """Take a refund back from the parties of the split it refunds: from each party's pending balance,
    then its available balance, and what neither covers into its receivable.
    ``credits`` are where the money goes (the channel receivable and returned fee, or the wallet).
    Returns None when the capture was never split (the caller posts the unsplit reversal).

    A receivable above the party's limit is refused (``party_receivable_limit``) when ``enforce_limit``:
    the refund is being decided in this transaction. When the money has already left (the channel
    refunded), refusing would only keep the books from the truth and block the refund's retries, so
    the claw-back is posted, marked ``over_limit`` and audited (``split.receivable_over_limit``); the
    refund flow refuses such refunds up front with ``check_refund``."""
    from finloop.payments.postings import shard_of

    tenant_id, cur = payment.tenant_id, payment.currency
    split = find_split(uow, tenant_id, payment.id, refund.attempt_id or WALLET_CAPTURE)
    if split is None:
        return None
    done = uow.session.scalar(select(SplitClawback).where(SplitClawback.tenant_id == tenant_id,
                                                          SplitClawback.refund_id == refund.id))
    if done is not None and done.entry_id is not None:
        return done.entry_id
    parts = parts_of(uow, split.id)
    if refund.amount > split.amount - split.refunded_amount:
        raise InvalidRequest(f"At most {split.amount - split.refunded_amount} is left to claw back.",
                             code="amount_too_large", param="amount")
    taken = clawback([p.amount for p in parts], split.refunded_amount, refund.amount, split.refund_policy)
    by_party: dict[tuple[PartyKind, str], int] = defaultdict(int)
    postings: list[tuple[str, int]] = list(credits)
    platform = 0
    for part, amount in zip(parts, taken, strict=True):
        part.clawed_amount += amount
        if part.party_kind == PartyRole.PLATFORM.value:
            platform += amount
        elif amount:
            by_party[(PartyKind(part.party_kind), part.party_id)] += amount
    if platform:
        postings.append((_account(uow, tenant_id, commission_code(shard_of(payment.id)), AccountType.INCOME,
                                  BalanceRule.NONE, cur), platform))
    pieces = []
    for (kind, party_id), amount in by_party.items():
        pending_code = party_account_code(kind, party_id, Bucket.PENDING)
        available_code = party_account_code(kind, party_id, Bucket.AVAILABLE)
        taken_from = draw(amount, _balance(uow, tenant_id, pending_code, cur),
                          _balance(uow, tenant_id, available_code, cur))
        if taken_from.from_pending:
            postings.append((_bucket(uow, tenant_id, kind, party_id, Bucket.PENDING, cur), taken_from.from_pending))
        if taken_from.from_available:
            postings.append((_bucket(uow, tenant_id, kind, party_id, Bucket.AVAILABLE, cur),
                             taken_from.from_available))
        over = False
        if taken_from.to_receivable:
            owed = _balance(uow, tenant_id, party_receivable_code(kind, party_id), cur)
            limit = receivable_limit(uow, tenant_id, kind, party_id)
            over = owed + taken_from.to_receivable > limit
            if over and enforce_limit:
                raise InvariantViolation(
                    f"The refund would leave {kind.value} {party_id} owing {owed + taken_from.to_receivable}, above "
                    f"its receivable limit of {limit}.", code="party_receivable_limit", param="amount",
                    details={"party_kind": kind.value, "party_id": party_id, "limit": limit,
                             "owed": owed + taken_from.to_receivable})
            postings.append((_receivable(uow, tenant_id, kind, party_id, cur), taken_from.to_receivable))
            if over:
                audit.record(uow, tenant_id, actor="system", action="split.receivable_over_limit",
                             object_type=kind.value, object_id=party_id, before={"owed": owed, "limit": limit},
                             after={"owed": owed + taken_from.to_receivable, "refund_id": refund.id})
        pieces.append({"party_kind": kind.value, "party_id": party_id, "amount": amount,
                       "from_pending": taken_from.from_pending, "from_available": taken_from.from_available,
                       "to_receivable": taken_from.to_receivable,
                       "over_limit": bool(taken_from.to_receivable and over)})
    if platform:
        pieces.insert(0, {"party_kind": "platform", "party_id": "platform", "amount": platform, "from_pending": 0,
                          "from_available": 0, "to_receivable": 0, "over_limit": False})
    posted = ledger.post_transfer(uow, tenant_id, TransferSpec(
        key=key, postings=_sum_postings(postings, cur), description=description,
        metadata={**metadata, "split_id": split.id}))
    split.refunded_amount += refund.amount
    uow.session.add(SplitClawback(tenant_id=tenant_id, split_id=split.id, refund_id=refund.id, amount=refund.amount,
                                  business_date=posted.business_date, pieces=pieces, entry_id=posted.id,
                                  created_at=uow.clock.now()))
    uow.session.flush()
    return posted.id


def check_refund(uow: UnitOfWork, payment: Payment, amount: int) -> None:
    """Refuse (``party_receivable_limit``) a refund of ``amount`` that would take a party's receivable
    above its limit, before the refund goes to the channel. For the refund flow to call up front."""
    if payment.merchant_id is None:
        return
    splits = list(uow.session.scalars(select(PaymentSplit).where(PaymentSplit.tenant_id == payment.tenant_id,
                                                                 PaymentSplit.payment_id == payment.id)))
    split = next((s for s in splits if s.amount > s.refunded_amount), None)
    if split is None:
        return
    parts = parts_of(uow, split.id)
    left = split.amount - split.refunded_amount
    taken = clawback([p.amount for p in parts], split.refunded_amount, min(amount, left), split.refund_policy)
    by_party: dict[tuple[PartyKind, str], int] = defaultdict(int)
    for part, piece in zip(parts, taken, strict=True):
        if part.party_kind != PartyRole.PLATFORM.value and piece:
            by_party[(PartyKind(part.party_kind), part.party_id)] += piece
    for (kind, party_id), piece in by_party.items():
        short = draw(piece, _balance(uow, payment.tenant_id, party_account_code(kind, party_id, Bucket.PENDING),
                                     payment.currency),
                     _balance(uow, payment.tenant_id, party_account_code(kind, party_id, Bucket.AVAILABLE),
                              payment.currency)).to_receivable
        owed = _balance(uow, payment.tenant_id, party_receivable_code(kind, party_id), payment.currency)
        if short and owed + short > receivable_limit(uow, payment.tenant_id, kind, party_id):
            raise InvariantViolation(f"The refund would take {kind.value} {party_id}'s receivable above its limit.",
                                     code="party_receivable_limit", param="amount")


# ------------------------------------------------------------------------------------------ reads


def get_payment_splits(uow: UnitOfWork, tenant_id: str, payment_id: str) -> list[PaymentSplit]:
    splits = list(uow.session.scalars(select(PaymentSplit).where(
        PaymentSplit.tenant_id == tenant_id, PaymentSplit.payment_id == payment_id).order_by(PaymentSplit.created_at)))
    if not splits:
        from finloop.payments import service as payments

        payments.get_payment(uow, tenant_id, payment_id)  # a 404 for another tenant's or no payment
    return splits


def clawbacks_of(uow: UnitOfWork, split_id: str) -> list[SplitClawback]:
    return list(uow.session.scalars(select(SplitClawback).where(SplitClawback.split_id == split_id)
                                    .order_by(SplitClawback.id)))


@dataclass(frozen=True, slots=True)
class PartyEarnings:
    currency: str
    gross_sales_amount: int
    fee_amount: int
    platform_commission_amount: int
    promoter_commission_amount: int
    clawed_back_amount: int
    net_amount: int


def party_earnings(uow: UnitOfWork, tenant_id: str, *, party_kind: PartyKind, party_id: str, from_on: date,
                   to_on: date) -> list[PartyEarnings]:
    """What the party earned from payments split with a business date in ``[from_on, to_on]``, per currency.

    gross_sales: the order amounts it earned on; platform/promoter commission: what those splits gave the
    platform and the promoters (for a leaf merchant; 0 for a promoter or a hierarchy parent); fee: its
    share of the channel fee; clawed_back: what refunds booked in the range took back from it;
    net = its parts − its fee − its claw-backs (hierarchy shares are inside gross but not listed).
    """
    rows = uow.session.execute(
        select(PaymentSplit, PaymentSplitPart).join(PaymentSplitPart, PaymentSplitPart.split_id == PaymentSplit.id)
        .where(PaymentSplit.tenant_id == tenant_id, PaymentSplitPart.party_kind == party_kind.value,
               PaymentSplitPart.party_id == party_id, PaymentSplit.business_date >= from_on,
               PaymentSplit.business_date <= to_on)).all()
    totals: dict[str, list[int]] = defaultdict(lambda: [0] * 6)
    for split, part in rows:
        t = totals[split.currency]
        t[0] += split.amount
        t[1] += part.fee_amount
        t[5] += part.amount - part.fee_amount
        if party_kind is PartyKind.MERCHANT and part.level == 0:
            for other in parts_of(uow, split.id):
                if other.party_kind == PartyRole.PLATFORM.value:
                    t[2] += other.amount
                elif other.party_kind == PartyRole.PROMOTER.value:
                    t[3] += other.amount
    claws = uow.session.execute(select(SplitClawback, PaymentSplit.currency)
                                .join(PaymentSplit, PaymentSplit.id == SplitClawback.split_id)
                                .where(SplitClawback.tenant_id == tenant_id, SplitClawback.business_date >= from_on,
                                       SplitClawback.business_date <= to_on)).all()
    for claw, cur in claws:
        for piece in claw.pieces:
            if piece["party_kind"] == party_kind.value and piece["party_id"] == party_id:
                totals[cur][4] += piece["amount"]
                totals[cur][5] -= piece["amount"]
    return [PartyEarnings(cur, *t) for cur, t in sorted(totals.items())]


@dataclass(frozen=True, slots=True)
class PartyBalance:
    currency: str
    pending: int
    frozen: int
    reserve: int
    available: int
    receivable: int


def party_balances(uow: UnitOfWork, tenant_id: str, *, party_kind: PartyKind, party_id: str) -> list[PartyBalance]:
    """The party's buckets and what it owes, per currency, straight from the ledger accounts."""
    figures: dict[str, dict[str, int]] = defaultdict(dict)
    prefix = f"liabilities:{party_kind.value}:{party_id}:"
    for account in ledger.list_accounts(uow, tenant_id, code_prefix=prefix, limit=500):
        bucket = account.code[len(prefix):]
        if bucket in {b.value for b in Bucket}:
            figures[account.currency][bucket] = ledger.balances(account).posted
    receivable = party_receivable_code(party_kind, party_id)
    for account in ledger.list_accounts(uow, tenant_id, code_prefix=receivable, limit=500):
        if account.code == receivable:
            figures[account.currency]["receivable"] = ledger.balances(account).posted
    return [PartyBalance(cur, f.get("pending", 0), f.get("frozen", 0), f.get("reserve", 0), f.get("available", 0),
                         f.get("receivable", 0)) for cur, f in sorted(figures.items())]

