"""Pure rules of loan outcomes: the labels, the labelling policy, and how two models are compared on labelled
loans (the swap set and the recommendation). No I/O.

Invariants owned here:
- a loan's label follows the first rule that applies (``label_for``):
  1. written off: ``recovered`` once recoveries reach ``recovery_share`` of what was written off (and something
     was written off), else ``default``;
  2. worst days past due at or beyond ``default_dpd`` (90 by default): ``default``;
  3. paid off, or still open when its performance window (``window_days`` from disbursement) has ended:
     ``on_time`` when it was never past due beyond the product's grace days, else ``late``;
  4. otherwise the outcome is not known yet (None);
- ``bad`` is true exactly for ``default``: a recovered loan is not bad (``recovery_share`` is what the tenant
  counts as a full recovery, all of it by default);
- a ``default`` label may later become ``recovered`` (recoveries keep arriving after a write-off); no other
  label ever changes;
- a loan is approved by a model when its score reaches the lowest rated band (``reject_below``: the D band's
  minimum); the swap set splits the loans by who approves them, its four cells partition the loans.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum
from typing import Any

from finloop.core.errors import InvalidRequest

PPM = 1_000_000


class OutcomeLabel(StrEnum):
    ON_TIME = "on_time"
    LATE = "late"
    DEFAULT = "default"
    RECOVERED = "recovered"


LABELS = tuple(OutcomeLabel)


@dataclass(frozen=True, slots=True)
class OutcomePolicy:
    #: Worst days past due from which a loan counts as a default.
    default_dpd: int = 90
    #: How long after disbursement a loan still open is observed before it is labelled by its history.
    window_days: int = 365
    #: The share of the written-off amount that recoveries must reach for ``recovered`` (parts per million).
    recovery_ppm: int = PPM

    def to_json(self) -> dict[str, Any]:
        return {"default_dpd": self.default_dpd, "window_days": self.window_days,
                "recovery_share": str(Decimal(self.recovery_ppm) / PPM)}


def _whole(value: Any, param: str, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise InvalidRequest(f"{param} is a whole number from {low} to {high}.", code="invalid_outcome_policy",
                             param=param)
    return value


def _share(value: Any, param: str) -> int:
    if isinstance(value, bool) or not isinstance(value, str | Decimal):
        raise InvalidRequest(f"{param} is a decimal string such as \"0.8\".", code="invalid_rate", param=param)
    try:
        share = Decimal(value)
    except ArithmeticError:
        raise InvalidRequest(f"{param} is a decimal string such as \"0.8\".", code="invalid_rate",
                             param=param) from None
    if not share.is_finite() or not 0 < share <= 1 or share * PPM != (share * PPM).to_integral_value():
        raise InvalidRequest(f"{param} is above 0 and at most 1, with at most six decimals.",
                             code="invalid_outcome_policy", param=param)
    return int(share * PPM)


def check_policy(changes: Mapping[str, Any], base: Mapping[str, Any] | None = None) -> OutcomePolicy:
    """The policy ``base`` (the defaults if None) with ``changes`` applied; every field checked."""
    merged = {**(base or DEFAULT_POLICY.to_json()), **changes}
    unknown = sorted(set(merged) - {"default_dpd", "window_days", "recovery_share"})
    if unknown:
        raise InvalidRequest(f"Unknown field {unknown[0]}.", code="unknown_field", param=unknown[0])
    return OutcomePolicy(default_dpd=_whole(merged["default_dpd"], "default_dpd", 1, 720),
                         window_days=_whole(merged["window_days"], "window_days", 30, 3650),
                         recovery_ppm=_share(merged["recovery_share"], "recovery_share"))


DEFAULT_POLICY = OutcomePolicy()


def is_recovered(written_off_amount: int, recovered_amount: int, policy: OutcomePolicy) -> bool:
    return written_off_amount > 0 and recovered_amount * PPM >= written_off_amount * policy.recovery_ppm


def label_for(*, state: str, max_dpd: int, grace_days: int, written_off_amount: int, recovered_amount: int,
              window_ended: bool, policy: OutcomePolicy) -> OutcomeLabel | None:
    """The loan's label by the module's rules, or None while its outcome is not known."""
    if state == "written_off":
        recovered = is_recovered(written_off_amount, recovered_amount, policy)
        return OutcomeLabel.RECOVERED if recovered else OutcomeLabel.DEFAULT
    if max_dpd >= policy.default_dpd:
        return OutcomeLabel.DEFAULT
    if state == "paid_off" or window_ended:
        return OutcomeLabel.ON_TIME if max_dpd <= grace_days else OutcomeLabel.LATE
    return None


# ---------------------------------------------------------------------------------------------- comparison


class Recommendation(StrEnum):
    PROMOTE = "promote_candidate"
    KEEP = "keep_champion"


#: The held-out AUC the candidate must gain over the model it is compared with to be recommended.
MIN_AUC_GAIN = 0.005
SEGMENTS = ("both_approve", "candidate_only", "champion_only", "both_reject")


def _rate(bad: int, loans: int) -> float | None:
    return round(bad / loans, 4) if loans else None


def swap_set(champion: Sequence[int], candidate: Sequence[int], bad: Sequence[int],
             reject_below: int) -> list[dict[str, Any]]:
    """Loans by who approves them (score ``>= reject_below``): both, the candidate only (swapped in), the champion
    only (swapped out), neither; each cell with its loans, bad loans and bad rate."""
    cells = {name: [0, 0] for name in SEGMENTS}
    for old, new, is_bad in zip(champion, candidate, bad, strict=True):
        old_ok, new_ok = old >= reject_below, new >= reject_below
        name = ("both_approve" if old_ok else "candidate_only") if new_ok else (
            "champion_only" if old_ok else "both_reject")
        cells[name][0] += 1
        cells[name][1] += int(is_bad)
    return [{"segment": name, "loans": loans, "bad": bads, "bad_rate": _rate(bads, loans)}
            for name, (loans, bads) in cells.items()]


def recommend(candidate: Mapping[str, Any], champion: Mapping[str, Any],
              swaps: Sequence[Mapping[str, Any]]) -> tuple[Recommendation, list[str]]:
    """Promote when the candidate ranks the loans better (AUC up by ``MIN_AUC_GAIN`` or more) and the loans it
    would approve in the champion's place are no worse than those it would turn away."""
    reasons: list[str] = []
    gain = float(candidate["auc"]) - float(champion["auc"])
    better = gain >= MIN_AUC_GAIN
    reasons.append("auc_higher" if better else "auc_not_higher")
    cells = {s["segment"]: s for s in swaps}
    swapped_in, swapped_out = cells["candidate_only"], cells["champion_only"]
    worse_swaps = (swapped_in["loans"] > 0 and swapped_out["loans"] > 0
                   and swapped_in["bad_rate"] > swapped_out["bad_rate"])
    if worse_swaps:
        reasons.append("swap_in_worse")
    return (Recommendation.PROMOTE if better and not worse_swaps else Recommendation.KEEP), reasons
