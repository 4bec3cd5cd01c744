"""What a verification provider can do for us, as small capability interfaces, and the values that cross them.

A connector is the only code that knows a provider's wire. The rules every connector keeps (the same as the
payment connectors'):
- it never touches the database and never opens a transaction: onboarding records the attempt, calls the
  connector, and applies the answer in a second transaction;
- every call carries our verification id as ``reference``; the provider keeps one answer per reference, so
  calling again or querying returns the same answer and nothing is checked twice;
- a call whose outcome it cannot know (timeout, connection reset, 5xx, an answer it cannot parse) returns
  ``CheckOutcome.UNKNOWN``: the caller queries by reference before anything else and never guesses;
- personal data never appears in an answer's ``detail``, in an exception or in a log line.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from enum import StrEnum
from typing import Any, Protocol, runtime_checkable


class CheckOutcome(StrEnum):
    PASSED = "passed"        # the check succeeded
    FAILED = "failed"        # the check answered no; ``reason_code`` says why
    UNKNOWN = "unknown"      # no answer (timeout, 5xx): query before anything else
    NOT_FOUND = "not_found"  # (query only) the provider never received this reference


class CheckKind(StrEnum):
    DOCUMENT = "document"    # an identity document is genuine, valid and matches the person
    LIVENESS = "liveness"    # the person in front of the camera is alive and is the document's holder
    REGISTRY = "registry"    # the company exists in the registry, is active and has the declared name


@dataclass(frozen=True, slots=True)
class DocumentCheck:
    reference: str
    legal_name: str
    date_of_birth: date
    nationality: str
    document_type: str
    document_number: str

    def __repr__(self) -> str:  # never print personal data
        return f"DocumentCheck(reference={self.reference!r})"


@dataclass(frozen=True, slots=True)
class LivenessCheck:
    reference: str
    legal_name: str
    document_number: str

    def __repr__(self) -> str:
        return f"LivenessCheck(reference={self.reference!r})"


@dataclass(frozen=True, slots=True)
class CompanyLookup:
    reference: str
    registered_name: str
    registration_number: str
    country: str

    def __repr__(self) -> str:
        return f"CompanyLookup(reference={self.reference!r})"


@dataclass(frozen=True, slots=True)
class CheckResult:
    outcome: CheckOutcome
    reference: str
    reason_code: str | None = None
    provider_ref: str | None = None
    #: What the provider says beyond the outcome, in our vocabulary and free of personal data
    #: (e.g. ``{"company_status": "dissolved"}``).
    detail: dict[str, Any] = field(default_factory=dict)


@runtime_checkable
class DocumentVerifier(Protocol):
    def verify_document(self, check: DocumentCheck) -> CheckResult: ...


@runtime_checkable
class LivenessChecker(Protocol):
    def check_liveness(self, check: LivenessCheck) -> CheckResult: ...


@runtime_checkable
class CompanyRegistry(Protocol):
    def lookup_company(self, lookup: CompanyLookup) -> CheckResult: ...


@runtime_checkable
class CheckQuery(Protocol):
    def query(self, reference: str) -> CheckResult: ...


@runtime_checkable
class Verifier(DocumentVerifier, LivenessChecker, CompanyRegistry, CheckQuery, Protocol):
    """A provider that does every check (the sandbox does; a real deployment may combine providers)."""

    name: str
