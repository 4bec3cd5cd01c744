"""Simulated platform applicants: behaviour, declared data, a bureau file, and whether they defaulted.

The simulated world behind ``finloop credit train --dataset platform``: ``generate(rows, seed)`` draws each
applicant from a latent credit quality ``q`` (standard normal, higher is better) and a seeded generator, so
the same seed gives the same applicants. Every feature of ``domain.PLATFORM_FEATURES`` is drawn, with the
direction a lender would expect and plenty of noise:

- behaviour (what ``features.compute`` reads from our records): tenure, order counts over 90 and 365 days,
  average order amount, refund rate, repurchase interval, days since the last order, payment failure rate,
  disputes and logins. About one applicant in eight has never ordered: their order features are missing
  (None), as they are for real applicants without records;
- declared data: monthly income (major units) and employment;
- the bureau file, from the sandbox bureau's own generator (``bureau.sandbox.profile``) at a quality that
  agrees with ``q`` only partly (the bureau sees other lenders, not us);
- the label: default within the observation window with probability
  ``sigmoid(-2.9 - 1.0 q + 0.2 min(enquiries_30d, 4) + 0.35 min(delinquencies, 3) + 0.6 unemployed
  + 0.5 max(0, debt_to_income - 0.5) + ε)``, ε ~ N(0, 0.3): about 13% default.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from datetime import date
from typing import Any

from finloop.credit.bureau.sandbox import profile
from finloop.credit.domain import PLATFORM_FEATURE_NAMES, Employment

AS_OF = date(2026, 1, 1)
_EMPLOYMENT_WEIGHTS = ((Employment.EMPLOYED, 0.58), (Employment.SELF_EMPLOYED, 0.14), (Employment.STUDENT, 0.08),
                       (Employment.RETIRED, 0.07), (Employment.UNEMPLOYED, 0.08), (Employment.OTHER, 0.05))


@dataclass(frozen=True)
class Simulated:
    rows: list[dict[str, Any]]
    defaulted: list[int]

    @property
    def default_rate(self) -> float:
        return sum(self.defaulted) / len(self.defaulted) if self.defaulted else 0.0


def _employment(rng: random.Random, quality: float) -> Employment:
    weights = [w * (math.exp(-0.9 * quality) if kind is Employment.UNEMPLOYED else 1.0)
               for kind, w in _EMPLOYMENT_WEIGHTS]
    return rng.choices([kind for kind, _ in _EMPLOYMENT_WEIGHTS], weights=weights)[0]


def _poisson(rng: random.Random, mean: float) -> int:
    if mean > 30:  # normal approximation: Knuth's loop would underflow
        return max(0, round(rng.gauss(mean, math.sqrt(mean))))
    limit, k, p = math.exp(-mean), 0, 1.0
    while True:
        p *= rng.random()
        if p <= limit:
            return k
        k += 1


def applicant(rng: random.Random) -> tuple[dict[str, Any], int]:
    """One simulated applicant's features and default label (1: defaulted)."""
    q = rng.gauss(0.0, 1.0)
    bad = max(0.0, -q)
    tenure = min(3650, 1 + int(rng.expovariate(1.0 / (420.0 * math.exp(0.3 * q)))))
    dormant = rng.random() < 0.12
    year_orders = 0 if dormant else max(1, _poisson(rng, 9.0 * math.exp(0.2 * q)))
    recent_orders = _poisson(rng, year_orders * 0.25 * (1.0 - 0.15 * min(bad, 2.0))) if year_orders else 0
    ordered = year_orders > 0
    row: dict[str, Any] = {
        "tenure_days": float(tenure),
        "order_count_90d": float(recent_orders),
        "order_count_365d": float(year_orders),
        "order_amount_avg_365d": round(math.exp(rng.gauss(5.0 + 0.1 * q, 0.6)), 2) if ordered else None,
        "refund_rate_365d": round(rng.betavariate(1.0, max(2.0, 12.0 + 4.0 * q)), 4) if ordered else None,
        "repurchase_interval_days": round(365.0 / year_orders * math.exp(rng.gauss(0.0, 0.3)), 1)
        if year_orders >= 2 else None,
        "days_since_last_order": float(min(365, int(rng.expovariate((year_orders + 1) / (365.0 * (1 + 0.3 * bad))))))
        if ordered else None,
        "payment_failure_rate_365d": round(rng.betavariate(1.0, max(3.0, 25.0 + 8.0 * q)), 4) if ordered else None,
        "dispute_count_365d": float(_poisson(rng, 0.03 + 0.15 * bad)) if ordered else 0.0,
        "login_count_30d": float(_poisson(rng, 6.0 * math.exp(0.15 * q))),
    }
    employment = _employment(rng, q)
    income = round(math.exp(rng.gauss(math.log(8000.0) + 0.25 * q - (0.8 if employment in (
        Employment.UNEMPLOYED, Employment.STUDENT) else 0.0), 0.5)), 2)
    bureau = profile(rng, 0.8 * q + 0.6 * rng.gauss(0.0, 1.0), as_of=AS_OF, minor_per_major=1)
    balance = sum(loan.balance_amount for loan in bureau.loans)
    enquiries_30d = sum(1 for e in bureau.enquiries if (AS_OF - e.on).days < 30)
    delinquencies = len(bureau.delinquencies)
    debt_to_income = round(balance / (income * 12.0), 4) if income > 0 else None
    row.update({
        "declared_income": income,
        "employment": employment.value,
        "debt_to_income": debt_to_income,
        "bureau_score": float(bureau.score) if bureau.score is not None else None,
        "bureau_open_loans": None if bureau.is_thin_file else float(len(bureau.loans)),
        "bureau_enquiries_30d": float(enquiries_30d),
        "bureau_enquiries_90d": float(len(bureau.enquiries)),
        "bureau_delinquencies_24m": None if bureau.is_thin_file else float(delinquencies),
        "bureau_thin_file": "yes" if bureau.is_thin_file else "no",
    })
    logit = (-2.9 - 1.0 * q + 0.2 * min(enquiries_30d, 4) + 0.35 * min(delinquencies, 3)
             + (0.6 if employment is Employment.UNEMPLOYED else 0.0)
             + 0.5 * max(0.0, (debt_to_income or 0.0) - 0.5) + rng.gauss(0.0, 0.3))
    label = 1 if rng.random() < 1.0 / (1.0 + math.exp(-logit)) else 0
    return {name: row[name] for name in PLATFORM_FEATURE_NAMES}, label


def generate(rows: int = 5000, seed: int = 1) -> Simulated:
    if not 1 <= rows <= 1_000_000:
        raise ValueError("rows is 1-1000000")
    rng = random.Random(seed)
    drawn = [applicant(rng) for _ in range(rows)]
    return Simulated(rows=[features for features, _ in drawn], defaulted=[label for _, label in drawn])
