"""Pure split allocation and refund claw-back. No I/O.

Rounding rule ("shares round down, the merchant takes the remainder"): every share that is not the
leaf merchant's (platform commission, each promoter level, each level of the merchant hierarchy) is the
exact share rounded toward zero (``Rounding.FLOOR`` of ``amount × ratio``; a fixed amount is taken as is)
and capped at what is still left of the order, taken in the order platform → promoters (level 1 first) →
hierarchy (nearest parent first); the leaf merchant takes whatever remains. The parts therefore sum to
the order amount exactly and none is negative, whatever the configuration.

Fee: the channel's fee is borne by the platform (its expense, as without splits), by the leaf merchant
(taken from its part, at most its part; the platform carries any excess), or pro rata (the fee, at most
the order amount, split over the parts in proportion to their amounts by largest remainder,
``finloop.core.money.allocate``; the platform carries any excess).

Claw-back ("cumulative D'Hondt"): a refund takes back from each part ``target(refunded so far) −
target(refunded before)``, where ``target(R)`` apportions ``R`` over the parts in proportion to their
amounts by the D'Hondt (Jefferson) divisor method. D'Hondt is house-monotone — a larger ``R`` never gives
any part less — so every claw-back is non-negative, each refund's pieces sum to the refund, and at
``R = amount`` each part is clawed back exactly its whole amount: any sequence of partial refunds claws
back exactly what one full refund would. The ``merchant_first`` policy takes the refund from the leaf
merchant's part first and only what exceeds it, by the same rule, from the others.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from enum import StrEnum
from fractions import Fraction

from finloop.core.errors import InvalidRequest
from finloop.core.money import MAX_AMOUNT, Rounding, allocate, round_minor

PLATFORM_PARTY_ID = "platform"
MAX_PROMOTER_LEVELS = 5
MAX_TIERS = 20
MAX_CATEGORIES = 50
MAX_HIERARCHY_DEPTH = 5
#: Ratios are exact decimals with at most this many places (0.083333 is fine, a repeating third is not).
RATIO_PLACES = 6


class PartyRole(StrEnum):
    PLATFORM = "platform"
    PROMOTER = "promoter"
    MERCHANT = "merchant"


class PlatformKind(StrEnum):
    NONE = "none"
    RATIO = "ratio"
    FIXED = "fixed"
    TIERED = "tiered"


class TierBasis(StrEnum):
    ORDER_AMOUNT = "order_amount"
    MONTHLY_VOLUME = "monthly_volume"


class RefundPolicy(StrEnum):
    PROPORTIONAL = "proportional"
    MERCHANT_FIRST = "merchant_first"


class Bearer(StrEnum):
    """Mirrors ``finloop.clearing.service.FeeBearer`` (kept here so the domain stays import-free)."""

    PLATFORM = "platform"
    MERCHANT = "merchant"
    PRO_RATA = "pro_rata"


@dataclass(frozen=True, slots=True)
class Tier:
    """From ``min_amount`` (of the basis) upwards the whole order takes ``ratio`` (not marginal)."""

    min_amount: int
    ratio: Decimal


@dataclass(frozen=True, slots=True)
class RuleTerms:
    platform_kind: PlatformKind = PlatformKind.NONE
    platform_ratio: Decimal = Decimal(0)
    platform_amount: int = 0
    tiers: tuple[Tier, ...] = ()
    tier_basis: TierBasis = TierBasis.ORDER_AMOUNT
    #: Category → platform ratio, overriding the platform's ratio for payments of that category.
    category_ratios: tuple[tuple[str, Decimal], ...] = ()
    #: Level 1 (the order's promoter), level 2 (its parent), ... as ratios of the order amount.
    promoter_ratios: tuple[Decimal, ...] = ()
    refund_policy: RefundPolicy = RefundPolicy.PROPORTIONAL

    def max_platform_ratio(self) -> Decimal:
        ratios = [Decimal(0)]
        if self.platform_kind is PlatformKind.RATIO:
            ratios.append(self.platform_ratio)
        if self.platform_kind is PlatformKind.TIERED:
            ratios.extend(t.ratio for t in self.tiers)
        ratios.extend(r for _, r in self.category_ratios)
        return max(ratios)


@dataclass(frozen=True, slots=True)
class SplitContext:
    merchant_id: str
    category: str | None = None
    #: The order's promoter first, then its parent, grandparent, ...
    promoters: tuple[str, ...] = ()
    #: The merchant's ancestors with their shares of the order amount, nearest parent first.
    hierarchy: tuple[tuple[str, Decimal], ...] = ()
    monthly_volume: int = 0


@dataclass(frozen=True, slots=True)
class Part:
    role: PartyRole
    party_id: str
    level: int  # promoters: 1, 2, ...; hierarchy: 1 = the nearest parent; the platform and leaf merchant: 0
    amount: int  # the gross share of the order
    fee: int = 0  # the share of the channel fee this party bears

    @property
    def net(self) -> int:
        return self.amount - self.fee


@dataclass(frozen=True, slots=True)
class Allocation:
    parts: tuple[Part, ...] = field(default_factory=tuple)

    @property
    def platform(self) -> Part:
        return self.parts[0]

    @property
    def leaf(self) -> Part:
        return self.parts[-1]


# ------------------------------------------------------------------------------------------ validation


def check_ratio(value: Decimal, param: str) -> Decimal:
    if not isinstance(value, Decimal) or not value.is_finite():
        raise InvalidRequest("A ratio is a decimal between 0 and 1.", code="invalid_ratio", param=param)
    if value < 0 or value > 1:
        raise InvalidRequest("A ratio is between 0 and 1.", code="invalid_ratio", param=param)
    exponent = value.normalize().as_tuple().exponent
    if isinstance(exponent, int) and -exponent > RATIO_PLACES:
        raise InvalidRequest(f"A ratio has at most {RATIO_PLACES} decimal places.", code="invalid_ratio", param=param)
    return value


def validate_terms(terms: RuleTerms) -> None:
    """Refuse a rule that cannot be applied as written; a 4xx with the offending field."""
    kind = terms.platform_kind
    check_ratio(terms.platform_ratio, "platform.ratio")
    if kind is not PlatformKind.RATIO and terms.platform_ratio:
        raise InvalidRequest("Only a ratio commission has a ratio.", code="invalid_ratio", param="platform.ratio")
    if kind is PlatformKind.RATIO and terms.platform_ratio == 0:
        raise InvalidRequest("A ratio commission needs a ratio above 0.", code="invalid_ratio", param="platform.ratio")
    if kind is PlatformKind.FIXED and not 0 < terms.platform_amount <= MAX_AMOUNT:
        raise InvalidRequest("A fixed commission is a positive amount.", code="invalid_amount",
                             param="platform.amount")
    if kind is not PlatformKind.FIXED and terms.platform_amount:
        raise InvalidRequest("Only a fixed commission has an amount.", code="invalid_amount", param="platform.amount")
    if kind is PlatformKind.TIERED:
        if not terms.tiers:
            raise InvalidRequest("A tiered commission needs tiers.", code="invalid_tiers", param="platform.tiers")
        if terms.tiers[0].min_amount != 0:
            raise InvalidRequest("The first tier starts at 0.", code="invalid_tiers", param="platform.tiers")
        for index, tier in enumerate(terms.tiers):
            check_ratio(tier.ratio, f"platform.tiers.{index}.ratio")
            if index and tier.min_amount <= terms.tiers[index - 1].min_amount:
                raise InvalidRequest("Tiers ascend strictly by min_amount.", code="invalid_tiers",
                                     param="platform.tiers")
    elif terms.tiers:
        raise InvalidRequest("Only a tiered commission has tiers.", code="invalid_tiers", param="platform.tiers")
    if len(terms.tiers) > MAX_TIERS:
        raise InvalidRequest(f"At most {MAX_TIERS} tiers.", code="invalid_tiers", param="platform.tiers")
    if len(terms.category_ratios) > MAX_CATEGORIES:
        raise InvalidRequest(f"At most {MAX_CATEGORIES} categories.", code="invalid_categories",
                             param="platform.category_ratios")
    for category, ratio in terms.category_ratios:
        check_ratio(ratio, f"platform.category_ratios.{category}")
    if len(terms.promoter_ratios) > MAX_PROMOTER_LEVELS:
        raise InvalidRequest(f"At most {MAX_PROMOTER_LEVELS} promoter levels.", code="invalid_promoter_ratios",
                             param="promoter_ratios")
    for index, ratio in enumerate(terms.promoter_ratios):
        check_ratio(ratio, f"promoter_ratios.{index}")
    if terms.max_platform_ratio() + sum(terms.promoter_ratios, Decimal(0)) > 1:
        raise InvalidRequest("The platform's and the promoters' ratios sum to more than 1.",
                             code="ratios_exceed_one", param="promoter_ratios")


# ------------------------------------------------------------------------------------------ allocation


def _share(amount: int, ratio: Decimal) -> int:
    """A non-merchant share: the exact product rounded by ``Rounding.FLOOR``."""
    return round_minor(Fraction(amount) * Fraction(ratio), Rounding.FLOOR)


def platform_ratio(terms: RuleTerms, amount: int, context: SplitContext) -> Decimal | None:
    """The ratio the platform takes, or None for a fixed (or no) commission."""
    categories = dict(terms.category_ratios)
    if context.category is not None and context.category in categories:
        return categories[context.category]
    if terms.platform_kind is PlatformKind.RATIO:
        return terms.platform_ratio
    if terms.platform_kind is PlatformKind.TIERED:
        basis = amount if terms.tier_basis is TierBasis.ORDER_AMOUNT else context.monthly_volume
        chosen = terms.tiers[0].ratio
        for tier in terms.tiers:
            if basis >= tier.min_amount:
                chosen = tier.ratio
        return chosen
    return None


def allocate_split(amount: int, fee: int, bearer: Bearer | str, terms: RuleTerms | None,
                   context: SplitContext) -> Allocation:
    """Split ``amount`` into the platform's, the promoters', the hierarchy's and the leaf merchant's parts.

    Parts, in order: the platform (always, possibly 0), promoters by level, hierarchy merchants nearest
    first, the leaf merchant (always, last). No rule (``terms`` None) gives the merchant everything.
    """
    if amount <= 0:
        raise InvalidRequest("A split needs a positive amount.", code="invalid_amount", param="amount")
    if fee < 0:
        raise InvalidRequest("A fee is not negative.", code="invalid_amount", param="fee")
    left = amount
    pieces: list[tuple[PartyRole, str, int, int]] = []

    def take(share: int) -> int:
        nonlocal left
        taken = min(max(share, 0), left)
        left -= taken
        return taken

    platform = 0
    if terms is not None:
        ratio = platform_ratio(terms, amount, context)
        if ratio is not None:
            platform = take(_share(amount, ratio))
        elif terms.platform_kind is PlatformKind.FIXED:
            platform = take(terms.platform_amount)
        for level, (promoter, promoter_ratio) in enumerate(zip(context.promoters, terms.promoter_ratios,
                                                             strict=False), start=1):
            pieces.append((PartyRole.PROMOTER, promoter, level, take(_share(amount, promoter_ratio))))
    for level, (parent, share) in enumerate(context.hierarchy, start=1):
        pieces.append((PartyRole.MERCHANT, parent, level, take(_share(amount, share))))
    amounts = [platform] + [p[3] for p in pieces] + [left]
    fees = _fee_shares(amount, fee, Bearer(bearer), amounts)
    parts = [Part(PartyRole.PLATFORM, PLATFORM_PARTY_ID, 0, platform, fees[0])]
    parts += [Part(role, pid, level, share, fees[i]) for i, (role, pid, level, share) in enumerate(pieces, start=1)]
    parts.append(Part(PartyRole.MERCHANT, context.merchant_id, 0, left, fees[-1]))
    return Allocation(tuple(parts))


def _fee_shares(amount: int, fee: int, bearer: Bearer, amounts: list[int]) -> list[int]:
    shares = [0] * len(amounts)
    if bearer is Bearer.MERCHANT:
        shares[-1] = min(fee, amounts[-1])
    elif bearer is Bearer.PRO_RATA and fee:
        shares = allocate(min(fee, amount), amounts)
    shares[0] += fee - sum(shares)  # the platform carries the rest
    return shares


# ------------------------------------------------------------------------------------------ claw-back


def dhondt(weights: Sequence[int], house: int) -> list[int]:
    """Apportion ``house`` units over ``weights`` (summing to at least ``house``) by D'Hondt.

    Starts from the lower quotas (which every D'Hondt apportionment meets) and hands out the few
    remaining units by the highest quotient ``weight / (seats + 1)``, ties to the earlier part.
    """
    total = sum(weights)
    if house < 0 or house > total:
        raise InvalidRequest("Cannot claw back more than was split.", code="amount_too_large", param="amount")
    if house == 0:
        return [0] * len(weights)
    seats = [w * house // total for w in weights]
    for _ in range(house - sum(seats)):
        best = max(range(len(weights)), key=lambda i: (Fraction(weights[i], seats[i] + 1), -i))
        seats[best] += 1
    return seats


def clawback_target(amounts: Sequence[int], refunded: int, policy: RefundPolicy | str) -> list[int]:
    """How much of each part a total of ``refunded`` takes back (monotone in ``refunded``)."""
    if RefundPolicy(policy) is RefundPolicy.MERCHANT_FIRST:
        leaf = min(refunded, amounts[-1])
        others = list(amounts[:-1])
        rest = dhondt(others, refunded - leaf) if sum(others) else [0] * len(others)
        return [*rest, leaf]
    return dhondt(amounts, refunded)


def clawback(amounts: Sequence[int], refunded_before: int, refund: int, policy: RefundPolicy | str) -> list[int]:
    """What a refund of ``refund`` takes back from each part, after ``refunded_before`` was refunded."""
    if refund <= 0:
        raise InvalidRequest("A refund is positive.", code="invalid_amount", param="amount")
    after = clawback_target(amounts, refunded_before + refund, policy)
    before = clawback_target(amounts, refunded_before, policy)
    return [a - b for a, b in zip(after, before, strict=True)]


@dataclass(frozen=True, slots=True)
class Draw:
    from_pending: int
    from_available: int
    to_receivable: int


def draw(amount: int, pending: int, available: int) -> Draw:
    """Take a claw-back from the pending balance first, then the available one; the rest is owed."""
    from_pending = min(amount, max(pending, 0))
    from_available = min(amount - from_pending, max(available, 0))
    return Draw(from_pending, from_available, amount - from_pending - from_available)
