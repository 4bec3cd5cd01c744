"""Tenants, API keys, staff users and sessions, and maker-checker approvals.

Invariants owned here:
- a secret (API key or session token) is shown once and stored only as its SHA-256 digest; it is a
  256-bit random value, so a fast digest is safe and checking one costs microseconds;
- passwords are stored as argon2 hashes;
- an approval is decided by a user other than its requester, holding the role it requires;
- every change to keys, users, tenant settings and approvals is written to the audit chain.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import date, timedelta
from enum import StrEnum
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import delete, select

from finloop.audit import service as audit
from finloop.core.calendar import zone
from finloop.core.errors import Conflict, InvalidRequest, NotFound, PermissionDenied, Unauthenticated
from finloop.db.uow import UnitOfWork
from finloop.tenancy import calendar
from finloop.tenancy.models import ApiKey, ApprovalRequest, Holiday, Tenant, User, UserSession


class Role(StrEnum):
    ADMIN = "admin"
    FINANCE = "finance"
    RISK_ANALYST = "risk_analyst"
    SUPPORT = "support"
    AUDITOR = "auditor"


#: What each role may do. Read access is granted to every role; these are the acting permissions.
PERMISSIONS: dict[str, frozenset[Role]] = {
    "ledger.write": frozenset({Role.ADMIN, Role.FINANCE}),
    "ledger.close_period": frozenset({Role.ADMIN, Role.FINANCE}),
    "keys.manage": frozenset({Role.ADMIN}),
    "users.manage": frozenset({Role.ADMIN}),
    "tenant.configure": frozenset({Role.ADMIN}),
    "approvals.request": frozenset({Role.ADMIN, Role.FINANCE, Role.RISK_ANALYST, Role.SUPPORT}),
}

API_KEY_PREFIX = "fl_sk_"
SESSION_PREFIX = "fl_ss_"
_hasher = PasswordHasher()


def digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


@dataclass(frozen=True)
class Principal:
    """Who is calling: a tenant's API key or a signed-in user."""

    tenant_id: str
    actor: str  # "key:<id>" or "user:<id>"
    roles: frozenset[Role]
    user_id: str | None = None

    def can(self, permission: str) -> bool:
        return bool(self.roles & PERMISSIONS[permission])

    def require(self, permission: str) -> None:
        if not self.can(permission):
            raise PermissionDenied(f"Your role may not {permission.replace('.', ' ').replace('_', ' ')}.",
                                   code="role_not_allowed")


# ---------------------------------------------------------------------------------------------- tenants


def tenant_snapshot(tenant: Tenant) -> dict[str, Any]:
    return {"name": tenant.name, "timezone": tenant.timezone, "cutoff": tenant.cutoff, "weekend": tenant.weekend}


def create_tenant(uow: UnitOfWork, *, name: str, timezone: str = "UTC", cutoff: str = "00:00",
                  weekend: list[int] | None = None, is_demo: bool = False, actor: str = "system") -> Tenant:
    if not name.strip() or len(name) > 200:
        raise InvalidRequest("A tenant needs a name of 1 to 200 characters.", code="invalid_name", param="name")
    zone(timezone)
    _check_cutoff(cutoff)
    tenant = Tenant(id=uow.ids.new("tenant"), name=name.strip(), timezone=timezone, cutoff=cutoff,
                    weekend=weekend if weekend is not None else [5, 6], is_demo=is_demo,
                    created_at=uow.clock.now())
    uow.session.add(tenant)
    uow.session.flush()
    audit.record(uow, tenant.id, actor=actor, action="tenant.created", object_type="tenant",
                 object_id=tenant.id, after=tenant_snapshot(tenant))
    return tenant


def _check_cutoff(cutoff: str) -> None:
    try:
        calendar.parse_cutoff(cutoff)
    except ValueError as error:
        raise InvalidRequest("The cut-off is a local time HH:MM.", code="invalid_cutoff", param="cutoff") from error


def get_tenant(uow: UnitOfWork, tenant_id: str) -> Tenant:
    tenant = uow.session.get(Tenant, tenant_id)
    if tenant is None:
        raise NotFound("No such tenant.", code="tenant_not_found")
    return tenant


def list_tenants(uow: UnitOfWork) -> list[Tenant]:
    return list(uow.session.scalars(select(Tenant).order_by(Tenant.id)))


def update_business_time(uow: UnitOfWork, principal: Principal, *, timezone: str | None = None,
                         cutoff: str | None = None, weekend: list[int] | None = None) -> Tenant:
    principal.require("tenant.configure")
    tenant = get_tenant(uow, principal.tenant_id)
    before = tenant_snapshot(tenant)
    if timezone is not None:
        zone(timezone)
        tenant.timezone = timezone
    if cutoff is not None:
        _check_cutoff(cutoff)
        tenant.cutoff = cutoff
    if weekend is not None:
        if any(day not in range(7) for day in weekend) or len(set(weekend)) > 6:
            raise InvalidRequest("Weekend days are 0 (Monday) to 6 (Sunday), at most six of them.",
                                 code="invalid_weekend", param="weekend")
        tenant.weekend = sorted(set(weekend))
    uow.session.flush()
    calendar.forget(tenant.id)
    audit.record(uow, tenant.id, actor=principal.actor, action="tenant.business_time_changed",
                 object_type="tenant", object_id=tenant.id, before=before, after=tenant_snapshot(tenant))
    return tenant


def set_holiday(uow: UnitOfWork, principal: Principal, day: date, name: str = "") -> Holiday:
    principal.require("tenant.configure")
    holiday = uow.session.get(Holiday, (principal.tenant_id, day))
    if holiday is None:
        holiday = Holiday(tenant_id=principal.tenant_id, day=day, name=name)
        uow.session.add(holiday)
    else:
        holiday.name = name
    uow.session.flush()
    calendar.forget(principal.tenant_id)
    audit.record(uow, principal.tenant_id, actor=principal.actor, action="calendar.holiday_set",
                 object_type="holiday", object_id=day.isoformat(), after={"day": day.isoformat(), "name": name})
    return holiday


def remove_holiday(uow: UnitOfWork, principal: Principal, day: date) -> None:
    principal.require("tenant.configure")
    removed = uow.session.execute(delete(Holiday).where(Holiday.tenant_id == principal.tenant_id,
                                                        Holiday.day == day))
    if not getattr(removed, "rowcount", 0):
        raise NotFound("No holiday on that day.", code="holiday_not_found", param="day")
    calendar.forget(principal.tenant_id)
    audit.record(uow, principal.tenant_id, actor=principal.actor, action="calendar.holiday_removed",
                 object_type="holiday", object_id=day.isoformat(), before={"day": day.isoformat()})


def list_holidays(uow: UnitOfWork, tenant_id: str) -> list[Holiday]:
    return list(uow.session.scalars(select(Holiday).where(Holiday.tenant_id == tenant_id).order_by(Holiday.day)))


# ---------------------------------------------------------------------------------------------- API keys


def key_snapshot(key: ApiKey) -> dict[str, Any]:
    return {"name": key.name, "prefix": key.prefix, "role": key.role, "status": key.status,
            "expires_at": key.expires_at.isoformat() if key.expires_at else None}


def issue_api_key(uow: UnitOfWork, tenant_id: str, *, name: str, role: Role = Role.ADMIN, actor: str,
                  rotated_from_id: str | None = None) -> tuple[ApiKey, str]:
    """Create a key; the secret is returned once and never stored."""
    if not name.strip() or len(name) > 200:
        raise InvalidRequest("A key needs a name of 1 to 200 characters.", code="invalid_name", param="name")
    secret = API_KEY_PREFIX + secrets.token_urlsafe(32)
    key = ApiKey(id=uow.ids.new("api_key"), tenant_id=tenant_id, name=name.strip(), prefix=secret[:12],
                 digest=digest(secret), role=role.value, status="active", created_at=uow.clock.now(),
                 rotated_from_id=rotated_from_id)
    uow.session.add(key)
    uow.session.flush()
    audit.record(uow, tenant_id, actor=actor, action="api_key.created", object_type="api_key",
                 object_id=key.id, after=key_snapshot(key))
    return key, secret


def get_api_key(uow: UnitOfWork, tenant_id: str, key_id: str) -> ApiKey:
    key = uow.session.scalar(select(ApiKey).where(ApiKey.tenant_id == tenant_id, ApiKey.id == key_id))
    if key is None:
        raise NotFound(f"No such API key: {key_id}.", code="api_key_not_found", param="key_id")
    return key


def list_api_keys(uow: UnitOfWork, tenant_id: str) -> list[ApiKey]:
    return list(uow.session.scalars(select(ApiKey).where(ApiKey.tenant_id == tenant_id).order_by(ApiKey.id)))


def revoke_api_key(uow: UnitOfWork, principal: Principal, key_id: str) -> ApiKey:
    principal.require("keys.manage")
    key = get_api_key(uow, principal.tenant_id, key_id)
    if key.status == "revoked":
        raise Conflict("The key is already revoked.", code="api_key_revoked", param="key_id")
    before = key_snapshot(key)
    key.status = "revoked"
    key.revoked_at = uow.clock.now()
    uow.session.flush()
    audit.record(uow, principal.tenant_id, actor=principal.actor, action="api_key.revoked",
                 object_type="api_key", object_id=key.id, before=before, after=key_snapshot(key))
    return key


def rotate_api_key(uow: UnitOfWork, principal: Principal, key_id: str, *,
                   grace_seconds: int = 0) -> tuple[ApiKey, str]:
    """Issue a successor; the old key keeps working for ``grace_seconds`` so clients can switch."""
    principal.require("keys.manage")
    old = get_api_key(uow, principal.tenant_id, key_id)
    if old.status == "revoked":
        raise Conflict("A revoked key cannot be rotated.", code="api_key_revoked", param="key_id")
    if not 0 <= grace_seconds <= 30 * 86400:
        raise InvalidRequest("The grace period is 0 to 30 days.", code="invalid_grace", param="grace_seconds")
    before = key_snapshot(old)
    if grace_seconds:
        old.expires_at = uow.clock.now() + timedelta(seconds=grace_seconds)
    else:
        old.status = "revoked"
        old.revoked_at = uow.clock.now()
    uow.session.flush()
    audit.record(uow, principal.tenant_id, actor=principal.actor, action="api_key.rotated",
                 object_type="api_key", object_id=old.id, before=before, after=key_snapshot(old))
    return issue_api_key(uow, principal.tenant_id, name=old.name, role=Role(old.role), actor=principal.actor,
                         rotated_from_id=old.id)


def authenticate(uow: UnitOfWork, token: str) -> Principal:
    """Resolve a bearer token (API key or user session) to a principal, or raise ``unauthenticated``."""
    now = uow.clock.now()
    if token.startswith(API_KEY_PREFIX):
        key = uow.session.scalar(select(ApiKey).where(ApiKey.digest == digest(token)))
        if key is None or key.status != "active" or (key.expires_at is not None and key.expires_at <= now):
            raise Unauthenticated("Invalid or revoked API key.", code="invalid_api_key")
        return Principal(key.tenant_id, f"key:{key.id}", frozenset({Role(key.role)}))
    if token.startswith(SESSION_PREFIX):
        found = uow.session.execute(
            select(UserSession, User).join(User, User.id == UserSession.user_id)
            .where(UserSession.digest == digest(token))).first()
        if found is None:
            raise Unauthenticated("Invalid session.", code="invalid_session")
        session, user = found
        if session.revoked_at is not None or session.expires_at <= now or user.status != "active":
            raise Unauthenticated("The session has expired; sign in again.", code="session_expired")
        return Principal(user.tenant_id, f"user:{user.id}", frozenset(Role(r) for r in user.roles), user.id)
    raise Unauthenticated("Unrecognised credentials.", code="invalid_api_key")


# ---------------------------------------------------------------------------------------------- users


def user_snapshot(user: User) -> dict[str, Any]:
    return {"email": user.email, "name": user.name, "roles": list(user.roles), "status": user.status}


def _roles(values: list[str]) -> list[str]:
    try:
        roles = sorted({Role(value).value for value in values})
    except ValueError as error:
        raise InvalidRequest(f"Roles are {', '.join(r.value for r in Role)}.", code="invalid_role",
                             param="roles") from error
    if not roles:
        raise InvalidRequest("A user needs at least one role.", code="invalid_role", param="roles")
    return roles


def _check_password(password: str) -> None:
    if len(password) < 12 or len(password) > 256:
        raise InvalidRequest("Passwords are 12 to 256 characters.", code="weak_password", param="password")


def create_user(uow: UnitOfWork, tenant_id: str, *, email: str, password: str, roles: list[str],
                name: str = "", actor: str) -> User:
    email = email.strip().lower()
    if "@" not in email or len(email) > 320:
        raise InvalidRequest("A valid email address is required.", code="invalid_email", param="email")
    _check_password(password)
    role_values = _roles(roles)
    if uow.session.scalar(select(User.id).where(User.tenant_id == tenant_id, User.email == email)):
        raise Conflict("A user with that email exists.", code="user_exists", param="email")
    user = User(id=uow.ids.new("user"), tenant_id=tenant_id, email=email, name=name,
                password_hash=_hasher.hash(password), roles=role_values, status="active",
                created_at=uow.clock.now())
    uow.session.add(user)
    uow.session.flush()
    audit.record(uow, tenant_id, actor=actor, action="user.created", object_type="user", object_id=user.id,
                 after=user_snapshot(user))
    return user


def get_user(uow: UnitOfWork, tenant_id: str, user_id: str) -> User:
    user = uow.session.scalar(select(User).where(User.tenant_id == tenant_id, User.id == user_id))
    if user is None:
        raise NotFound(f"No such user: {user_id}.", code="user_not_found", param="user_id")
    return user


def list_users(uow: UnitOfWork, tenant_id: str) -> list[User]:
    return list(uow.session.scalars(select(User).where(User.tenant_id == tenant_id).order_by(User.id)))


def update_user(uow: UnitOfWork, principal: Principal, user_id: str, *, roles: list[str] | None = None,
                status: str | None = None) -> User:
    principal.require("users.manage")
    user = get_user(uow, principal.tenant_id, user_id)
    before = user_snapshot(user)
    if roles is not None:
        user.roles = _roles(roles)
    if status is not None:
        if status not in ("active", "disabled"):
            raise InvalidRequest("Status is active or disabled.", code="invalid_status", param="status")
        user.status = status
    uow.session.flush()
    audit.record(uow, principal.tenant_id, actor=principal.actor, action="user.updated", object_type="user",
                 object_id=user.id, before=before, after=user_snapshot(user))
    return user


def sign_in(uow: UnitOfWork, tenant_id: str, *, email: str, password: str,
            ttl_seconds: int) -> tuple[UserSession, str]:
    user = uow.session.scalar(select(User).where(User.tenant_id == tenant_id, User.email == email.strip().lower()))
    valid = False
    if user is not None and user.status == "active":
        try:
            valid = _hasher.verify(user.password_hash, password)
        except (VerificationError, InvalidHashError):
            valid = False
    if not valid or user is None:
        raise Unauthenticated("Wrong email or password.", code="invalid_credentials")
    token = SESSION_PREFIX + secrets.token_urlsafe(32)
    now = uow.clock.now()
    session = UserSession(id=uow.ids.new("session"), tenant_id=tenant_id, user_id=user.id, digest=digest(token),
                          created_at=now, expires_at=now + timedelta(seconds=ttl_seconds))
    uow.session.add(session)
    uow.session.flush()
    return session, token


def sign_out(uow: UnitOfWork, token: str) -> None:
    session = uow.session.scalar(select(UserSession).where(UserSession.digest == digest(token)))
    if session is not None and session.revoked_at is None:
        session.revoked_at = uow.clock.now()
        uow.session.flush()


# ---------------------------------------------------------------------------------------------- approvals


def approval_snapshot(request: ApprovalRequest) -> dict[str, Any]:
    return {"action": request.action, "status": request.status, "required_role": request.required_role,
            "requested_by": request.requested_by, "decided_by": request.decided_by, "reason": request.reason}


def request_approval(uow: UnitOfWork, principal: Principal, *, action: str, required_role: Role,
                     payload: dict[str, Any] | None = None, object_type: str | None = None,
                     object_id: str | None = None) -> ApprovalRequest:
    """Park an action until a second person approves it (maker-checker)."""
    if principal.user_id is None:
        raise PermissionDenied("Approvals are requested by a signed-in user, not an API key.",
                               code="user_required")
    principal.require("approvals.request")
    if not action or len(action) > 100:
        raise InvalidRequest("An approval names its action (1 to 100 characters).", code="invalid_action",
                             param="action")
    request = ApprovalRequest(id=uow.ids.new("approval"), tenant_id=principal.tenant_id, action=action,
                              object_type=object_type, object_id=object_id, payload=payload or {},
                              required_role=required_role.value, status="pending",
                              requested_by=principal.user_id, created_at=uow.clock.now())
    uow.session.add(request)
    uow.session.flush()
    audit.record(uow, principal.tenant_id, actor=principal.actor, action="approval.requested",
                 object_type="approval", object_id=request.id, after=approval_snapshot(request))
    return request


def get_approval(uow: UnitOfWork, tenant_id: str, approval_id: str, *, lock: bool = False) -> ApprovalRequest:
    query = select(ApprovalRequest).where(ApprovalRequest.tenant_id == tenant_id, ApprovalRequest.id == approval_id)
    if lock:
        query = query.with_for_update()
    request = uow.session.scalar(query)
    if request is None:
        raise NotFound(f"No such approval request: {approval_id}.", code="approval_not_found",
                       param="approval_id")
    return request


def list_approvals(uow: UnitOfWork, tenant_id: str, *, status: str | None = None, after: str | None = None,
                   limit: int = 50) -> list[ApprovalRequest]:
    query = select(ApprovalRequest).where(ApprovalRequest.tenant_id == tenant_id)
    if status:
        query = query.where(ApprovalRequest.status == status)
    if after:
        query = query.where(ApprovalRequest.id > after)
    return list(uow.session.scalars(query.order_by(ApprovalRequest.id).limit(limit)))


def decide_approval(uow: UnitOfWork, principal: Principal, approval_id: str, *, approve: bool,
                    reason: str | None = None) -> ApprovalRequest:
    if principal.user_id is None:
        raise PermissionDenied("Approvals are decided by a signed-in user, not an API key.", code="user_required")
    request = get_approval(uow, principal.tenant_id, approval_id, lock=True)
    if request.status != "pending":
        raise Conflict(f"The request is already {request.status}.", code="approval_already_decided",
                       param="approval_id")
    if request.requested_by == principal.user_id:
        raise PermissionDenied("Nobody approves their own request.", code="self_approval")
    if Role(request.required_role) not in principal.roles:
        raise PermissionDenied(f"Deciding this request needs the {request.required_role} role.",
                               code="role_not_allowed")
    before = approval_snapshot(request)
    request.status = "approved" if approve else "rejected"
    request.decided_by = principal.user_id
    request.decided_at = uow.clock.now()
    request.reason = reason
    uow.session.flush()
    audit.record(uow, principal.tenant_id, actor=principal.actor,
                 action="approval.approved" if approve else "approval.rejected", object_type="approval",
                 object_id=request.id, before=before, after=approval_snapshot(request))
    return request


def is_approved(uow: UnitOfWork, tenant_id: str, approval_id: str, action: str) -> bool:
    """What a later issue checks before executing a parked action."""
    request = get_approval(uow, tenant_id, approval_id)
    return request.status == "approved" and request.action == action

