"""The sandbox credit bureau: deterministic per subject and seed, plausible reports, the timeout hook and the
provider registry."""

from __future__ import annotations

import random
from datetime import UTC, date, datetime

import pytest

from finloop.core.errors import ExternalServiceError, InvalidRequest
from finloop.credit import bureau
from finloop.credit.bureau.base import BureauConnector, BureauRequest
from finloop.credit.bureau.sandbox import SandboxBureau, profile

AT = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def request(subject: str, national_id: str = "110101199003070011", at: datetime = AT) -> BureauRequest:
    return BureauRequest(reference="bur_TEST0001", subject_index=subject, currency="CNY", requested_at=at,
                         national_id=national_id)


def test_the_same_subject_and_seed_get_the_same_report() -> None:
    slept: list[float] = []
    sandbox = SandboxBureau(seed=3, sleep=slept.append)
    first, again = sandbox.pull(request("a" * 64)), SandboxBureau(seed=3, sleep=slept.append).pull(request("a" * 64))
    assert first == again and 0.04 <= slept[0] <= 0.16 and first.latency_ms == round(slept[0] * 1000)
    others = [SandboxBureau(seed=3, sleep=slept.append).pull(request(f"{i:064x}")) for i in range(40)]
    assert len({(r.score, r.open_loans, len(r.enquiries)) for r in others}) > 10
    reseeded = [SandboxBureau(seed=4, sleep=slept.append).pull(request(f"{i:064x}")) for i in range(40)]
    assert [r.score for r in reseeded] != [r.score for r in others]


def test_reports_are_plausible_and_summarised_consistently() -> None:
    sandbox = SandboxBureau(seed=0, sleep=lambda s: None)
    reports = [sandbox.pull(request(f"{i:064x}")) for i in range(400)]
    thin = [r for r in reports if r.is_thin_file]
    assert 0.05 < len(thin) / len(reports) < 0.25
    assert all(r.score is None and r.loans == () and r.delinquencies == () for r in thin)
    for r in reports:
        assert r.as_of == date(2026, 3, 2)
        assert r.is_thin_file or 300 <= (r.score or 0) <= 900
        assert r.open_loan_balance_amount == sum(loan.balance_amount for loan in r.loans) >= 0
        assert r.enquiries_within(30) <= r.enquiries_within(90) == len(r.enquiries)
        assert all(0 <= (r.as_of - e.on).days < 90 for e in r.enquiries)
        assert all(d.days_past_due in (30, 60, 90) for d in r.delinquencies)
        assert all(loan.balance_amount % 100 == 0 for loan in r.loans)  # whole yuan, in fen
    detail = reports[1].detail()
    assert set(detail) == {"as_of", "loans", "enquiries", "delinquencies"}


def test_worse_quality_means_a_worse_file() -> None:
    def files(quality: float) -> list:  # type: ignore[type-arg]
        rng = random.Random(11)
        return [profile(rng, quality, as_of=date(2026, 1, 1)) for _ in range(500)]

    good, bad = files(1.5), files(-1.5)
    mean = lambda xs: sum(xs) / len(xs)  # noqa: E731
    assert mean([p.score for p in good if p.score]) > mean([p.score for p in bad if p.score]) + 100
    assert mean([len(p.enquiries) for p in bad]) > mean([len(p.enquiries) for p in good]) + 1
    assert mean([len(p.delinquencies) for p in bad]) > mean([len(p.delinquencies) for p in good])


def test_the_timeout_hook_raises_a_retryable_error_and_the_id_stays_out_of_reprs() -> None:
    sandbox = SandboxBureau(seed=0, sleep=lambda s: None)
    with pytest.raises(ExternalServiceError) as caught:
        sandbox.pull(request("b" * 64, national_id="000000123456"))
    assert caught.value.retryable and caught.value.code == "bureau_timeout"
    assert "110101199003070011" not in repr(request("c" * 64))


def test_the_provider_registry() -> None:
    assert "sandbox" in bureau.providers()
    assert isinstance(bureau.connector("sandbox"), BureauConnector)
    with pytest.raises(InvalidRequest) as caught:
        bureau.connector("nope")
    assert caught.value.code == "unknown_bureau_provider"
    with pytest.raises(ValueError):
        SandboxBureau(latency_ms=(5, 1))
