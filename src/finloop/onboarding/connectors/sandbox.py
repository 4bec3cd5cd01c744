"""The sandbox verification provider: deterministic outcomes from the input, with latency, no network.

Outcomes (``docs/onboarding.md`` has the same table); everything else passes:

| input | check | outcome |
|---|---|---|
| document number ending ``0001`` | document | failed ``document_expired`` |
| document number ending ``0002`` | document | failed ``data_mismatch`` (name or birth date differ) |
| document number ending ``0003`` | liveness | failed ``liveness_failed`` |
| document number ending ``0009`` | document | the call times out (unknown); a query answers passed |
| registration number ending ``404`` | registry | failed ``company_not_found`` |
| registration number ending ``410`` | registry | failed ``company_dissolved`` |
| registration number ending ``409`` | registry | failed ``name_mismatch`` (the registry holds another name) |
| registration number ending ``999`` | registry | the call times out (unknown); a query answers passed |

The provider keeps one answer per reference (our verification id): a repeated call or a query returns it,
so nothing is checked twice. ``outage`` makes every call and query time out (the provider is down) until
it is cleared. Latency is drawn per call from ``latency_ms`` by a generator seeded from the reference, so a
run is repeatable; ``sleep`` is injectable so tests never wait.
"""

from __future__ import annotations

import hashlib
import random
import threading
import time
from collections.abc import Callable

from finloop.onboarding.connectors import registry
from finloop.onboarding.connectors.base import (
    CheckOutcome,
    CheckResult,
    CompanyLookup,
    DocumentCheck,
    LivenessCheck,
)

NAME = "sandbox"
#: The latency of a call, milliseconds (low, high), by default.
DEFAULT_LATENCY_MS = (20, 80)

DOCUMENT_FAILURES = {"0001": "document_expired", "0002": "data_mismatch"}
LIVENESS_FAILURES = {"0003": "liveness_failed"}
DOCUMENT_TIMEOUT = "0009"
REGISTRY_FAILURES = {"404": "company_not_found", "410": "company_dissolved", "409": "name_mismatch"}
REGISTRY_STATUS = {"404": "not_found", "410": "dissolved", "409": "active"}
REGISTRY_TIMEOUT = "999"


class SandboxVerifier:
    name = NAME

    def __init__(self, *, latency_ms: tuple[int, int] = DEFAULT_LATENCY_MS,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self.latency_ms = latency_ms
        self.sleep = sleep
        self.outage = False
        self.calls = 0
        self._answers: dict[str, CheckResult] = {}
        self._lock = threading.Lock()

    def _wait(self, reference: str) -> None:
        low, high = self.latency_ms
        if high <= 0:
            return
        seed = int.from_bytes(hashlib.sha256(reference.encode()).digest()[:8], "big")
        self.sleep(random.Random(seed + self.calls).uniform(low, high) / 1000)

    def _answer(self, reference: str, decide: Callable[[], CheckResult], *, times_out: bool) -> CheckResult:
        with self._lock:
            self.calls += 1
        self._wait(reference)
        if self.outage:
            return CheckResult(CheckOutcome.UNKNOWN, reference, reason_code="provider_unavailable")
        with self._lock:
            stored = self._answers.get(reference)
            if stored is None:
                stored = self._answers[reference] = decide()
                if times_out:  # the provider did the check, but its answer never reached us
                    return CheckResult(CheckOutcome.UNKNOWN, reference, reason_code="timeout")
        return stored

    @staticmethod
    def _ref(reference: str) -> str:
        return "sbx_" + hashlib.sha256(reference.encode()).hexdigest()[:20]

    def verify_document(self, check: DocumentCheck) -> CheckResult:
        number = check.document_number

        def decide() -> CheckResult:
            for suffix, code in DOCUMENT_FAILURES.items():
                if number.endswith(suffix):
                    return CheckResult(CheckOutcome.FAILED, check.reference, reason_code=code,
                                       provider_ref=self._ref(check.reference))
            return CheckResult(CheckOutcome.PASSED, check.reference, provider_ref=self._ref(check.reference))

        return self._answer(check.reference, decide, times_out=number.endswith(DOCUMENT_TIMEOUT))

    def check_liveness(self, check: LivenessCheck) -> CheckResult:
        number = check.document_number

        def decide() -> CheckResult:
            for suffix, code in LIVENESS_FAILURES.items():
                if number.endswith(suffix):
                    return CheckResult(CheckOutcome.FAILED, check.reference, reason_code=code,
                                       provider_ref=self._ref(check.reference))
            return CheckResult(CheckOutcome.PASSED, check.reference, provider_ref=self._ref(check.reference))

        return self._answer(check.reference, decide, times_out=False)

    def lookup_company(self, lookup: CompanyLookup) -> CheckResult:
        number = lookup.registration_number

        def decide() -> CheckResult:
            for suffix, code in REGISTRY_FAILURES.items():
                if number.endswith(suffix):
                    return CheckResult(CheckOutcome.FAILED, lookup.reference, reason_code=code,
                                       provider_ref=self._ref(lookup.reference),
                                       detail={"company_status": REGISTRY_STATUS[suffix]})
            return CheckResult(CheckOutcome.PASSED, lookup.reference, provider_ref=self._ref(lookup.reference),
                               detail={"company_status": "active"})

        return self._answer(lookup.reference, decide, times_out=number.endswith(REGISTRY_TIMEOUT))

    def query(self, reference: str) -> CheckResult:
        with self._lock:
            self.calls += 1
        self._wait(reference)
        if self.outage:
            return CheckResult(CheckOutcome.UNKNOWN, reference, reason_code="provider_unavailable")
        with self._lock:
            stored = self._answers.get(reference)
        return stored if stored is not None else CheckResult(CheckOutcome.NOT_FOUND, reference)


registry.register(NAME, SandboxVerifier)
