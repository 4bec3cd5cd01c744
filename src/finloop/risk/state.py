"""The rule-set version state machine: every legal move is in the table, anything else is a 409.

draft → pending_approval (publish requested) → published (approved and published; the live one) →
retired (another version was published) or rolled_back (a rollback replaced it). A rejected approval
sends a pending version back to draft. A rollback re-publishes the latest retired version. Only a draft's
content is ever written, and only at creation: a change is a new draft.
"""

from __future__ import annotations

from enum import StrEnum

from finloop.core.errors import Conflict


class VersionStatus(StrEnum):
    DRAFT = "draft"
    PENDING_APPROVAL = "pending_approval"
    PUBLISHED = "published"
    RETIRED = "retired"
    ROLLED_BACK = "rolled_back"


V = VersionStatus

VERSION_TRANSITIONS: dict[VersionStatus, frozenset[VersionStatus]] = {
    V.DRAFT: frozenset({V.PENDING_APPROVAL}),
    V.PENDING_APPROVAL: frozenset({V.PUBLISHED, V.DRAFT}),
    V.PUBLISHED: frozenset({V.RETIRED, V.ROLLED_BACK}),
    V.RETIRED: frozenset({V.PUBLISHED}),  # a rollback re-publishes it
    V.ROLLED_BACK: frozenset(),
}


def check_version_transition(current: str, target: VersionStatus) -> None:
    if target not in VERSION_TRANSITIONS[VersionStatus(current)]:
        raise Conflict(f"A {current} version cannot become {target.value}.", code="invalid_version_state",
                       param="version_id")
