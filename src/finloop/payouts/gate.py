"""The payout gate: who may be paid, how much, and whether the beneficiary is on a watchlist.

Invariants owned here:
- with the tenant's ``payout_gate`` required (the default), a payout to a party whose onboarding is not
  approved (or review-due) is refused with 422 ``party_not_verified`` before anything is written;
- a verified party's risk tier sets its payout limits (per payout and per rolling 24 hours, by currency,
  from the tenant's onboarding policy); a payout above them is refused with 422 ``payout_limit_exceeded``
  (automatic payouts are capped to what is left instead);
- the payout account's holder is screened against the tenant's watchlists once per account and watchlist
  version (the result is kept in ``payout_beneficiary_screenings``), not before every payout: a potential
  match parks the payout until the screening's case is closed; a confirmed match refuses the payout with
  422 ``beneficiary_sanctioned``. The holder's name is unsealed only to be screened, never logged.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import timedelta
from enum import StrEnum

from sqlalchemy import func, select

from finloop.core.errors import LimitExceeded
from finloop.db.uow import UnitOfWork
from finloop.payouts.models import BeneficiaryScreening, Payout, PayoutAccount
from finloop.payouts.state import PayoutStatus
from finloop.settlement.accounts import PartyKind

#: Statuses whose amount counts against the rolling daily limit (everything not given back).
_COUNTED = (PayoutStatus.PENDING_APPROVAL.value, PayoutStatus.APPROVED.value, PayoutStatus.PROCESSING.value,
            PayoutStatus.SUCCEEDED.value)
DAILY_WINDOW = timedelta(hours=24)


class PayoutLimitExceeded(LimitExceeded):
    code = "payout_limit_exceeded"


class BeneficiarySanctioned(LimitExceeded):
    code = "beneficiary_sanctioned"


class Verdict(StrEnum):
    CLEAR = "clear"      # no potential match, or every one dismissed on review
    PENDING = "pending"  # a potential match waits for its review
    HIT = "hit"          # a match confirmed on review


def check_party(uow: UnitOfWork, tenant_id: str, kind: PartyKind, party_id: str) -> str | None:
    """The party's risk tier; raises ``party_not_verified`` when the tenant's gate refuses it."""
    from finloop.onboarding import service as onboarding

    return onboarding.require_verified(uow, tenant_id, party_kind=kind.value, party_id=party_id, action="payout")


@dataclass(frozen=True, slots=True)
class Headroom:
    per_payout: int | None
    #: What is left of the rolling 24 hours' limit (None: no limit).
    daily_left: int | None

    def allows(self, amount: int) -> int:
        """The largest part of ``amount`` the limits allow."""
        allowed = amount
        if self.per_payout is not None:
            allowed = min(allowed, self.per_payout)
        if self.daily_left is not None:
            allowed = min(allowed, self.daily_left)
        return max(allowed, 0)


def headroom(uow: UnitOfWork, tenant_id: str, kind: PartyKind, party_id: str, currency: str,
             tier: str | None) -> Headroom:
    from finloop.onboarding import service as onboarding

    per_payout, daily = onboarding.get_policy(uow, tenant_id).limit(tier, currency)
    if daily is None:
        return Headroom(per_payout, None)
    since = uow.clock.now() - DAILY_WINDOW
    used = uow.session.scalar(select(func.coalesce(func.sum(Payout.amount), 0)).where(
        Payout.tenant_id == tenant_id, Payout.party_kind == kind.value, Payout.party_id == party_id,
        Payout.currency == currency, Payout.created_at >= since, Payout.status.in_(_COUNTED)))
    return Headroom(per_payout, daily - int(used or 0))


def check_limits(uow: UnitOfWork, tenant_id: str, kind: PartyKind, party_id: str, currency: str, amount: int,
                 tier: str | None) -> None:
    room = headroom(uow, tenant_id, kind, party_id, currency, tier)
    if room.per_payout is not None and amount > room.per_payout:
        raise PayoutLimitExceeded(f"A {tier}-risk party is paid at most {room.per_payout} {currency} per payout.",
                                  param="amount", details={"risk_tier": tier, "per_payout": room.per_payout})
    if room.daily_left is not None and amount > room.daily_left:
        raise PayoutLimitExceeded(f"A {tier}-risk party has {max(room.daily_left, 0)} {currency} left of its "
                                  "payout limit for the last 24 hours.", param="amount",
                                  details={"risk_tier": tier, "daily_left": max(room.daily_left, 0)})


def list_version(uow: UnitOfWork, tenant_id: str) -> str:
    """A digest of the tenant's watchlist versions: a new import of any list changes it."""
    from finloop.risk.aml.models import WatchlistEntry

    rows = uow.session.execute(select(WatchlistEntry.source, func.max(WatchlistEntry.list_version)).where(
        WatchlistEntry.tenant_id == tenant_id).group_by(WatchlistEntry.source).order_by(WatchlistEntry.source)).all()
    if not rows:
        return "none"
    return hashlib.sha256(",".join(f"{s}={v}" for s, v in rows).encode()).hexdigest()[:32]


def screen_beneficiary(uow: UnitOfWork, account: PayoutAccount) -> tuple[str, Verdict] | None:
    """(screening id, verdict) of the account holder under the current watchlists, screening it when this
    account has no screening for this version yet; None when the tenant does not screen beneficiaries."""
    from finloop.onboarding import service as onboarding
    from finloop.payouts import service as payouts
    from finloop.risk.aml import service as aml

    tenant_id = account.tenant_id
    if not onboarding.get_policy(uow, tenant_id).screen_beneficiaries:
        return None
    version = list_version(uow, tenant_id)
    cached = uow.session.get(BeneficiaryScreening, (tenant_id, account.id, version))
    if cached is not None:
        return cached.screening_id, verdict(uow, tenant_id, cached.screening_id)
    profile = onboarding.find_party_profile(uow, tenant_id, account.party_kind, account.party_id)
    if profile is not None:
        kind = "entity" if profile.profile_type == "business" else "individual"
    else:
        kind = "entity" if account.party_kind == PartyKind.MERCHANT.value else "individual"
    result = aml.screen(uow, tenant_id, name=payouts.holder_name(uow, account), kind=kind,
                        subject_type="beneficiary", subject_id=account.id, actor="system:payouts.gate")
    uow.session.add(BeneficiaryScreening(tenant_id=tenant_id, payout_account_id=account.id, list_version=version,
                                         screening_id=result.screening.id, created_at=uow.clock.now()))
    uow.session.flush()
    return result.screening.id, Verdict.PENDING if result.hit else Verdict.CLEAR


def verdict(uow: UnitOfWork, tenant_id: str, screening_id: str) -> Verdict:
    from finloop.risk.aml import service as aml

    status = aml.get_screening(uow, tenant_id, screening_id).status
    if status == "confirmed":
        return Verdict.HIT
    if status == "potential_match":
        return Verdict.PENDING
    return Verdict.CLEAR


def refuse_sanctioned(screening_id: str) -> BeneficiarySanctioned:
    return BeneficiarySanctioned("The payout account's holder matches a watchlist entry (confirmed on review).",
                                 param="payout_account_id", details={"screening_id": screening_id})
