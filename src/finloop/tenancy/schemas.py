"""Request and response schemas of tenancy, authority, approvals and the audit log.

No response schema has a field for a password hash or a key digest; a secret (an API key or a
session token) appears only in the one response that creates it.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field
from pydantic_core import PydanticCustomError

from finloop.tenancy.service import Role


def _single_line(value: str) -> str:
    # PostgreSQL refuses NUL in text, and a name with control characters is never intended.
    if any(ord(ch) < 32 or ord(ch) == 127 for ch in value):
        raise PydanticCustomError("invalid_text", "Control characters are not allowed.")
    return value


Name = Annotated[str, Field(min_length=1, max_length=200), AfterValidator(_single_line)]
OptionalName = Annotated[str, Field(max_length=200), AfterValidator(_single_line)]
Email = Annotated[str, Field(min_length=3, max_length=320, examples=["ana@example.com"]),
                  AfterValidator(_single_line)]
Password = Annotated[str, Field(min_length=12, max_length=256)]
Cutoff = Annotated[str, Field(pattern=r"^([01][0-9]|2[0-3]):[0-5][0-9]$", examples=["23:00"],
                              description="Local time HH:MM at which the business day ends.")]
Weekday = Annotated[int, Field(ge=0, le=6, strict=True, description="0 is Monday, 6 is Sunday.")]
GraceSeconds = Annotated[int, Field(ge=0, le=30 * 86400, strict=True)]
Reason = Annotated[str, Field(max_length=1000), AfterValidator(_single_line)]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


# ---------------------------------------------------------------------------------------------- tenant


class TenantRead(BaseModel):
    id: str
    object: str = "tenant"
    name: str
    timezone: str
    cutoff: str
    weekend: list[int]
    business_date: date = Field(description="The business date an event happening now is booked on.")
    created_at: datetime


class BusinessTimeUpdate(Strict):
    timezone: Annotated[str, Field(min_length=1, max_length=64, examples=["Asia/Shanghai"])] | None = None
    cutoff: Cutoff | None = None
    weekend: Annotated[list[Weekday], Field(max_length=6)] | None = None


class HolidaySet(Strict):
    name: OptionalName = ""


class HolidayRead(BaseModel):
    object: str = "holiday"
    day: date
    name: str


class HolidayDeleted(BaseModel):
    object: str = "holiday"
    day: date
    deleted: bool = True


# ---------------------------------------------------------------------------------------------- API keys


class ApiKeyCreate(Strict):
    name: Name
    role: Role


class ApiKeyRotate(Strict):
    grace_seconds: GraceSeconds = Field(0, description="How long the old key keeps working (0: revoked now).")


class ApiKeyRead(BaseModel):
    id: str
    object: str = "api_key"
    name: str
    prefix: str = Field(description="The first characters of the secret, to recognise the key.")
    role: str
    status: Literal["active", "expired", "revoked"]
    created_at: datetime
    expires_at: datetime | None
    revoked_at: datetime | None
    rotated_from_id: str | None


class ApiKeyCreated(ApiKeyRead):
    secret: str | None = Field(description="Shown this once; only its digest is stored. An Idempotency-Key "
                                           "replay returns the key with a null secret.")


# ---------------------------------------------------------------------------------------------- users


class UserCreate(Strict):
    email: Email
    password: Password
    roles: Annotated[list[Role], Field(min_length=1, max_length=len(Role))]
    name: OptionalName = ""


class UserUpdate(Strict):
    roles: Annotated[list[Role], Field(min_length=1, max_length=len(Role))] | None = None
    status: Literal["active", "disabled"] | None = None


class UserRead(BaseModel):
    id: str
    object: str = "user"
    email: str
    name: str
    roles: list[str]
    status: str
    created_at: datetime


# ---------------------------------------------------------------------------------------------- sessions


class SessionCreate(Strict):
    tenant_id: Annotated[str, Field(min_length=1, max_length=40), AfterValidator(_single_line)]
    email: Email
    password: Annotated[str, Field(min_length=1, max_length=256)]
    totp_code: Annotated[str | None, Field(min_length=6, max_length=8, pattern=r"^[0-9 ]+$",
                                           description="The six-digit code of a user with a second factor.")] = None


class SessionRead(BaseModel):
    id: str
    object: str = "session"
    tenant_id: str
    user_id: str
    created_at: datetime
    expires_at: datetime
    revoked_at: datetime | None


class SessionCreated(SessionRead):
    token: str = Field(description="Send as 'Authorization: Bearer <token>'; shown this once.")


# ---------------------------------------------------------------------------------------------- approvals


class ApprovalCreate(Strict):
    action: Annotated[str, Field(min_length=1, max_length=100, examples=["refund.create"]),
                      AfterValidator(_single_line)]
    required_role: Role = Field(description="The role the deciding user must hold (not auditor).")
    payload: dict[str, Any] = Field(default_factory=dict,
                                    description="What the action will do; no floats (amounts are minor units).")
    object_type: Annotated[str, Field(min_length=1, max_length=50), AfterValidator(_single_line)] | None = None
    object_id: Annotated[str, Field(min_length=1, max_length=40), AfterValidator(_single_line)] | None = None


class ApprovalDecision(Strict):
    reason: Reason | None = None


class ApprovalRead(BaseModel):
    id: str
    object: str = "approval"
    action: str
    object_type: str | None
    object_id: str | None
    payload: dict[str, Any]
    required_role: str
    status: str
    requested_by: str
    decided_by: str | None
    reason: str | None
    created_at: datetime
    decided_at: datetime | None


# ---------------------------------------------------------------------------------------------- audit


class AuditEventRead(BaseModel):
    seq: int
    object: str = "audit_event"
    actor: str
    action: str
    object_type: str
    object_id: str | None
    before: dict[str, Any] | None
    after: dict[str, Any] | None
    at: datetime
    prev_hash: str
    hash: str


class ChainReportRead(BaseModel):
    object: str = "audit_chain_report"
    tenant_id: str
    events: int = Field(description="Events checked before the first break (all of them when ok).")
    ok: bool
    broken_at_seq: int | None
    reason: str | None
