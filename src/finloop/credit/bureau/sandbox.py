"""The sandbox credit bureau: simulated reports, the same every time for the same subject and seed.

Each subject (the blind index of their national id) has a latent credit quality drawn from a generator
seeded by ``sha256(seed, subject)``; the report follows from it: a bureau score on 300-900 (none for a thin
file, about one subject in eight), open loans with balances, enquiries from other lenders over the last 90
days, and delinquencies (30/60/90+ days past due) over the last 24 months. Worse quality means a lower
score, more loans, more recent enquiries and more delinquencies. ``profile`` is the same generator given a
quality, so the platform simulator (``credit.sim``) draws bureau data from the bureau's own distribution.

Latency is simulated (``latency_ms``, a deterministic 40-160 ms per subject by default) through an injected
``sleep``, so tests pass ``sleep=lambda seconds: None``. A national id starting with ``000000`` makes the
bureau time out (a retryable ``ExternalServiceError``): the hook tests use for the failure path.
"""

from __future__ import annotations

import hashlib
import math
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, timedelta

from finloop.core.errors import ExternalServiceError
from finloop.core.money import currency
from finloop.credit.bureau.base import BureauEnquiry, BureauLoan, BureauRequest, BureauResult, Delinquency

NAME = "sandbox"
TIMEOUT_PREFIX = "000000"
THIN_FILE_SHARE = 0.12
LENDERS = tuple(f"Lender {i:02d}" for i in range(1, 41))
LOAN_KINDS = ("installment", "revolving", "cash")


@dataclass(frozen=True, slots=True)
class Profile:
    is_thin_file: bool
    score: int | None
    loans: tuple[BureauLoan, ...]
    enquiries: tuple[BureauEnquiry, ...]
    delinquencies: tuple[Delinquency, ...]


def _poisson(rng: random.Random, mean: float) -> int:
    # Knuth's method: the means here are small (under 10).
    limit, k, p = math.exp(-max(mean, 0.0)), 0, 1.0
    while True:
        p *= rng.random()
        if p <= limit:
            return k
        k += 1


def profile(rng: random.Random, quality: float, *, as_of: date, minor_per_major: int = 100) -> Profile:
    """A subject's bureau file given their latent ``quality`` (standard normal; higher is better)."""
    bad = max(0.0, -quality)
    enquiries = tuple(sorted((BureauEnquiry(rng.choice(LENDERS), as_of - timedelta(days=rng.randrange(0, 90)))
                              for _ in range(_poisson(rng, 0.6 + 1.6 * bad))), key=lambda e: (e.on, e.lender)))
    if rng.random() < THIN_FILE_SHARE:
        return Profile(True, None, (), enquiries, ())
    score = min(900, max(300, round(640 + 70 * quality + rng.gauss(0, 35))))
    loans = tuple(BureauLoan(rng.choice(LENDERS), rng.choice(LOAN_KINDS),
                             round(math.exp(rng.gauss(9.0 + 0.25 * bad, 0.9))) * minor_per_major,
                             as_of - timedelta(days=rng.randrange(30, 1500)))
                  for _ in range(_poisson(rng, 1.2 + 1.1 * bad)))
    delinquencies = tuple(sorted((Delinquency(rng.choice(LENDERS), as_of - timedelta(days=rng.randrange(0, 730)),
                                              rng.choice((30, 30, 60, 90)))
                                  for _ in range(_poisson(rng, 0.15 + 1.0 * bad * bad))),
                                 key=lambda d: (d.on, d.lender)))
    return Profile(False, score, loans, enquiries, delinquencies)


def subject_rng(seed: int, subject: str) -> random.Random:
    digest = hashlib.sha256(f"finloop.credit.sandbox-bureau\x00{seed}\x00{subject}".encode()).digest()
    return random.Random(int.from_bytes(digest[:16], "big"))


class SandboxBureau:
    """A bureau that answers from ``profile``: deterministic per (seed, subject)."""

    name = NAME

    def __init__(self, *, seed: int = 0, latency_ms: tuple[int, int] = (40, 160),
                 sleep: Callable[[float], None] = time.sleep) -> None:
        if latency_ms[0] < 0 or latency_ms[1] < latency_ms[0]:
            raise ValueError("latency_ms is (low, high) with 0 <= low <= high")
        self.seed = seed
        self.latency_ms = latency_ms
        self._sleep = sleep

    def pull(self, request: BureauRequest) -> BureauResult:
        rng = subject_rng(self.seed, request.subject_index)
        latency = rng.randint(*self.latency_ms)
        if request.national_id.startswith(TIMEOUT_PREFIX):
            self._sleep(latency / 1000)
            raise ExternalServiceError("The sandbox bureau timed out.", retryable=True, code="bureau_timeout")
        quality = rng.gauss(0.0, 1.0)
        as_of = request.requested_at.date()
        found = profile(rng, quality, as_of=as_of, minor_per_major=currency(request.currency).minor_per_major)
        self._sleep(latency / 1000)
        return BureauResult(provider_reference=f"sbx_{request.subject_index[:24]}_{request.reference[-8:]}",
                            is_thin_file=found.is_thin_file, score=found.score, loans=found.loans,
                            enquiries=found.enquiries, delinquencies=found.delinquencies, latency_ms=latency,
                            as_of=as_of)
