"""The case state machine: every legal move is in the table, anything else is a 409.

open → investigating (assigned) → closed (outcome and action). An investigating case may be re-assigned
(investigating → investigating). Closing an open case first assigns it to the closer (two recorded moves).
A closed case never moves again: a new review opens a new case.
"""

from __future__ import annotations

from enum import StrEnum

from finloop.core.errors import Conflict


class CaseStatus(StrEnum):
    OPEN = "open"
    INVESTIGATING = "investigating"
    CLOSED = "closed"


class CaseSource(StrEnum):
    DECISION = "decision"
    AML_ALERT = "aml_alert"
    SCREENING = "screening"


class CaseOutcome(StrEnum):
    CONFIRMED_FRAUD = "confirmed_fraud"
    FALSE_POSITIVE = "false_positive"
    VALUABLE_ALERT = "valuable_alert"


class CaseAction(StrEnum):
    APPROVE = "approve"
    DECLINE = "decline"
    ADD_TO_LIST = "add_to_list"
    NONE = "none"


S = CaseStatus

CASE_TRANSITIONS: dict[CaseStatus, frozenset[CaseStatus]] = {
    S.OPEN: frozenset({S.INVESTIGATING}),
    S.INVESTIGATING: frozenset({S.INVESTIGATING, S.CLOSED}),
    S.CLOSED: frozenset(),
}


def check_case_transition(current: str, target: CaseStatus) -> None:
    if target not in CASE_TRANSITIONS[CaseStatus(current)]:
        raise Conflict(f"A {current} case cannot become {target.value}.", code="invalid_case_state",
                       param="case_id")
