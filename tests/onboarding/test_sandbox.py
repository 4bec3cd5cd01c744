"""The sandbox verification provider: every documented outcome, one answer per reference, timeouts answered
by a query, an outage, and latency drawn through the injected sleep."""

from __future__ import annotations

from datetime import date

import pytest

from finloop.onboarding.connectors import registry
from finloop.onboarding.connectors.base import (
    CheckOutcome,
    CompanyLookup,
    DocumentCheck,
    LivenessCheck,
    Verifier,
)
from finloop.onboarding.connectors.sandbox import SandboxVerifier


def _document(number: str, reference: str = "vrf_1") -> DocumentCheck:
    return DocumentCheck(reference=reference, legal_name="Li Wei", date_of_birth=date(1990, 5, 17),
                         nationality="CN", document_type="passport", document_number=number)


@pytest.mark.parametrize(("number", "outcome", "reason"), [
    ("E12345675", CheckOutcome.PASSED, None),
    ("E12340001", CheckOutcome.FAILED, "document_expired"),
    ("E12340002", CheckOutcome.FAILED, "data_mismatch"),
    ("E12340003", CheckOutcome.PASSED, None),  # the document is fine; its holder fails liveness
])
def test_document_outcomes_follow_the_number(number: str, outcome: CheckOutcome, reason: str | None) -> None:
    result = SandboxVerifier(latency_ms=(0, 0)).verify_document(_document(number))
    assert (result.outcome, result.reason_code) == (outcome, reason)
    assert result.provider_ref and result.provider_ref.startswith("sbx_")


@pytest.mark.parametrize(("number", "outcome", "reason"), [
    ("E12345675", CheckOutcome.PASSED, None),
    ("E12340003", CheckOutcome.FAILED, "liveness_failed"),
])
def test_liveness_outcomes_follow_the_number(number: str, outcome: CheckOutcome, reason: str | None) -> None:
    result = SandboxVerifier(latency_ms=(0, 0)).check_liveness(
        LivenessCheck(reference="vrf_2", legal_name="Li Wei", document_number=number))
    assert (result.outcome, result.reason_code) == (outcome, reason)


@pytest.mark.parametrize(("number", "outcome", "reason", "company"), [
    ("91310000MA1K0000A5", CheckOutcome.PASSED, None, "active"),
    ("91310000MA1K000404", CheckOutcome.FAILED, "company_not_found", "not_found"),
    ("91310000MA1K000410", CheckOutcome.FAILED, "company_dissolved", "dissolved"),
    ("91310000MA1K000409", CheckOutcome.FAILED, "name_mismatch", "active"),
])
def test_registry_outcomes_follow_the_number(number: str, outcome: CheckOutcome, reason: str | None,
                                             company: str) -> None:
    result = SandboxVerifier(latency_ms=(0, 0)).lookup_company(
        CompanyLookup(reference="vrf_3", registered_name="Tea House Ltd", registration_number=number, country="CN"))
    assert (result.outcome, result.reason_code, result.detail["company_status"]) == (outcome, reason, company)


def test_a_timeout_is_unknown_and_a_query_gives_the_answer_kept_for_the_reference() -> None:
    sandbox = SandboxVerifier(latency_ms=(0, 0))
    first = sandbox.verify_document(_document("E12340009", reference="vrf_t"))
    assert (first.outcome, first.reason_code) == (CheckOutcome.UNKNOWN, "timeout")
    assert sandbox.query("vrf_t").outcome is CheckOutcome.PASSED
    assert sandbox.verify_document(_document("E12340009", reference="vrf_t")).outcome is CheckOutcome.PASSED
    registry_timeout = sandbox.lookup_company(CompanyLookup(reference="vrf_r", registered_name="X Ltd",
                                                            registration_number="ABC999", country="CN"))
    assert registry_timeout.outcome is CheckOutcome.UNKNOWN
    assert sandbox.query("vrf_r").outcome is CheckOutcome.PASSED
    assert sandbox.query("vrf_never_sent").outcome is CheckOutcome.NOT_FOUND


def test_an_outage_answers_nothing_and_remembers_nothing() -> None:
    sandbox = SandboxVerifier(latency_ms=(0, 0))
    sandbox.outage = True
    assert sandbox.verify_document(_document("E12345675", reference="vrf_o")).outcome is CheckOutcome.UNKNOWN
    assert sandbox.query("vrf_o").outcome is CheckOutcome.UNKNOWN
    sandbox.outage = False
    assert sandbox.query("vrf_o").outcome is CheckOutcome.NOT_FOUND  # the call never reached it


def test_latency_is_drawn_in_range_through_the_injected_sleep() -> None:
    slept: list[float] = []
    sandbox = SandboxVerifier(latency_ms=(20, 80), sleep=slept.append)
    sandbox.verify_document(_document("E12345675", reference="vrf_a"))
    sandbox.query("vrf_a")
    assert len(slept) == 2 and all(0.020 <= s <= 0.080 for s in slept)


def test_the_registry_builds_the_sandbox_and_a_replacement_wins_meanwhile() -> None:
    assert "sandbox" in registry.providers()
    built = registry.verifier("sandbox")
    assert isinstance(built, Verifier) and registry.verifier("sandbox") is built
    other = SandboxVerifier(latency_ms=(0, 0))
    with registry.use_verifier(other):
        assert registry.verifier("sandbox") is other
    assert registry.verifier("sandbox") is built
    with pytest.raises(KeyError):
        registry.verifier("nobody")


def test_requests_never_print_personal_data() -> None:
    text = repr(_document("E12345675")) + repr(LivenessCheck("vrf_l", "Li Wei", "E12345675")) + repr(
        CompanyLookup("vrf_c", "Tea House Ltd", "R123455", "CN"))
    assert "Li Wei" not in text and "E12345675" not in text and "Tea House" not in text
