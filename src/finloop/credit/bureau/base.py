"""The credit-bureau connector interface: one capability, ``pull``, from a request to a report.

A connector is called outside any database transaction (``credit.flows.pull_report`` records the pull,
calls, then stores the answer). It raises ``ExternalServiceError`` when the bureau cannot answer (with
``retryable``); anything it returns is a complete report. The clear national id travels only inside the
request object, which never prints it (``repr=False``); connectors must not log it either.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any, Protocol, runtime_checkable


@dataclass(frozen=True, slots=True)
class BureauRequest:
    #: Our id of the pull (the bureau report id): a bureau that dedupes requests keys on it.
    reference: str
    #: The keyed blind index of the national id: the subject's stable, non-reversible identity.
    subject_index: str
    currency: str
    requested_at: datetime
    national_id: str = field(repr=False)


@dataclass(frozen=True, slots=True)
class BureauLoan:
    lender: str
    kind: str  # installment | revolving | cash
    balance_amount: int  # minor units of the request's currency
    opened_on: date

    def to_json(self) -> dict[str, Any]:
        return {"lender": self.lender, "kind": self.kind, "balance_amount": self.balance_amount,
                "opened_on": self.opened_on.isoformat()}


@dataclass(frozen=True, slots=True)
class BureauEnquiry:
    lender: str
    on: date

    def to_json(self) -> dict[str, Any]:
        return {"lender": self.lender, "on": self.on.isoformat()}


@dataclass(frozen=True, slots=True)
class Delinquency:
    lender: str
    on: date
    days_past_due: int

    def to_json(self) -> dict[str, Any]:
        return {"lender": self.lender, "on": self.on.isoformat(), "days_past_due": self.days_past_due}


@dataclass(frozen=True, slots=True)
class BureauResult:
    provider_reference: str
    #: True when the bureau knows too little of the subject to score them (``score`` is then None).
    is_thin_file: bool
    score: int | None
    loans: tuple[BureauLoan, ...]
    enquiries: tuple[BureauEnquiry, ...]
    delinquencies: tuple[Delinquency, ...]
    latency_ms: int
    as_of: date

    @property
    def open_loans(self) -> int:
        return len(self.loans)

    @property
    def open_loan_balance_amount(self) -> int:
        return sum(loan.balance_amount for loan in self.loans)

    def enquiries_within(self, days: int) -> int:
        since = self.as_of - timedelta(days=days)
        return sum(1 for e in self.enquiries if e.on > since)

    def delinquencies_within(self, days: int) -> int:
        since = self.as_of - timedelta(days=days)
        return sum(1 for d in self.delinquencies if d.on > since)

    def detail(self) -> dict[str, Any]:
        return {"as_of": self.as_of.isoformat(), "loans": [loan.to_json() for loan in self.loans],
                "enquiries": [e.to_json() for e in self.enquiries],
                "delinquencies": [d.to_json() for d in self.delinquencies]}


@runtime_checkable
class BureauConnector(Protocol):
    name: str

    def pull(self, request: BureauRequest) -> BureauResult: ...
