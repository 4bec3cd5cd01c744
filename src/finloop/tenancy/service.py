"""Tenants, API keys, staff users and sessions, and maker-checker approvals.

Invariants owned here:
- a secret (API key or session token) is shown once and stored only as its SHA-256 digest; it is a
  256-bit random value, so a fast digest is safe and checking one costs microseconds;
- passwords are stored as argon2 hashes, and a failed sign-in costs one argon2 check whether or not the
  email exists, so neither the answer nor its timing says which emails are users;
- a key is rotated at most once, and its grace period only ever shortens its life;
- a resolved API key is trusted from memory for at most ``KEY_CACHE_SECONDS``: a key revoked or rotated
  by this process is refused by it at once (from its commit on), by other processes within that bound,
  and an expiry is checked against the clock on every request;
- the auditor role reads everything and acts on nothing;
- an approval is decided once, by a user other than its requester, holding the role it requires;
- every change to keys, users, tenant settings and approvals is written to the audit chain.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import hmac
import json
import re
import secrets
import threading
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from enum import StrEnum
from importlib import resources
from time import monotonic
from typing import Any

import pyotp
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import bindparam, delete, event, select, update

from finloop.audit import service as audit
from finloop.core.calendar import zone
from finloop.core.clock import utc
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


#: What each role may do. Read access is granted to every role; these are the acting permissions,
#: and the auditor holds none of them.
PERMISSIONS: dict[str, frozenset[Role]] = {
    "ledger.write": frozenset({Role.ADMIN, Role.FINANCE}),
    "ledger.close_period": frozenset({Role.ADMIN, Role.FINANCE}),
    "keys.manage": frozenset({Role.ADMIN}),
    "users.manage": frozenset({Role.ADMIN}),
    "tenant.configure": frozenset({Role.ADMIN}),
    "approvals.request": frozenset({Role.ADMIN, Role.FINANCE, Role.RISK_ANALYST, Role.SUPPORT}),
    "approvals.decide": frozenset({Role.ADMIN, Role.FINANCE, Role.RISK_ANALYST, Role.SUPPORT}),
    "payments.configure": frozenset({Role.ADMIN}),
    "payments.write": frozenset({Role.ADMIN, Role.FINANCE, Role.SUPPORT}),
    "payments.refund": frozenset({Role.ADMIN, Role.FINANCE, Role.SUPPORT}),
    "clearing.configure": frozenset({Role.ADMIN, Role.FINANCE}),
    "splits.configure": frozenset({Role.ADMIN, Role.FINANCE}),
    "settlement.configure": frozenset({Role.ADMIN, Role.FINANCE}),
    "settlement.run": frozenset({Role.ADMIN, Role.FINANCE}),
    "payouts.request": frozenset({Role.ADMIN, Role.FINANCE, Role.SUPPORT}),
    "payouts.configure": frozenset({Role.ADMIN, Role.FINANCE}),
    "reconciliation.import": frozenset({Role.ADMIN, Role.FINANCE, Role.SUPPORT}),
    "reconciliation.resolve": frozenset({Role.ADMIN, Role.FINANCE}),
    "wealth.configure": frozenset({Role.ADMIN, Role.FINANCE}),
    "wealth.trade": frozenset({Role.ADMIN, Role.FINANCE, Role.SUPPORT}),
    "risk.configure": frozenset({Role.ADMIN, Role.RISK_ANALYST}),
    "risk.decide": frozenset({Role.ADMIN, Role.FINANCE, Role.SUPPORT, Role.RISK_ANALYST}),
    "risk.review": frozenset({Role.ADMIN, Role.RISK_ANALYST}),
    "onboarding.submit": frozenset({Role.ADMIN, Role.RISK_ANALYST, Role.SUPPORT}),
    "onboarding.review": frozenset({Role.ADMIN, Role.RISK_ANALYST}),
    "credit.configure": frozenset({Role.ADMIN, Role.RISK_ANALYST}),
    "credit.score": frozenset({Role.ADMIN, Role.RISK_ANALYST, Role.SUPPORT}),
    "credit.service": frozenset({Role.ADMIN, Role.FINANCE, Role.SUPPORT}),
    "credit.collect": frozenset({Role.ADMIN, Role.RISK_ANALYST, Role.SUPPORT}),
    "credit.write_off": frozenset({Role.ADMIN, Role.FINANCE}),
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
    actor: str  # "key:<id>", "user:<id>", or the name of a command such as "cli"
    roles: frozenset[Role]
    user_id: str | None = None
    session_id: str | None = None

    def can(self, permission: str) -> bool:
        return bool(self.roles & PERMISSIONS[permission])

    def require(self, permission: str) -> None:
        if not self.can(permission):
            raise PermissionDenied(f"Your role may not {permission.replace('.', ' ').replace('_', ' ')}.",
                                   code="role_not_allowed")


def system_principal(tenant_id: str, actor: str) -> Principal:
    """An operator acting from a trusted entry point (the CLI, a job) with admin authority."""
    return Principal(tenant_id, actor, frozenset({Role.ADMIN}))


def _text(value: str, *, param: str, code: str, what: str, max_length: int = 200, required: bool = True) -> str:
    """A single-line name: trimmed, within the column, without control characters (PostgreSQL refuses NUL)."""
    value = value.strip()
    if (required and not value) or len(value) > max_length or any(ord(ch) < 32 or ord(ch) == 127 for ch in value):
        need = "1" if required else "0"
        raise InvalidRequest(f"{what} is {need} to {max_length} characters, without control characters.",
                             code=code, param=param)
    return value


# ---------------------------------------------------------------------------------------------- tenants


def tenant_snapshot(tenant: Tenant) -> dict[str, Any]:
    return {"name": tenant.name, "timezone": tenant.timezone, "cutoff": tenant.cutoff, "weekend": tenant.weekend}


def create_tenant(uow: UnitOfWork, *, name: str, timezone: str = "UTC", cutoff: str = "00:00",
                  weekend: list[int] | None = None, is_demo: bool = False, actor: str = "system") -> Tenant:
    name = _text(name, param="name", code="invalid_name", what="A tenant's name")
    tenant = Tenant(id=uow.ids.new("tenant"), name=name, timezone=_check_timezone(timezone),
                    cutoff=_check_cutoff(cutoff), weekend=_check_weekend(weekend if weekend is not None else [5, 6]),
                    is_demo=is_demo, created_at=uow.clock.now())
    uow.session.add(tenant)
    uow.session.flush()
    audit.record(uow, tenant.id, actor=actor, action="tenant.created", object_type="tenant",
                 object_id=tenant.id, after=tenant_snapshot(tenant))
    return tenant


_CUTOFF = re.compile(r"^([01][0-9]|2[0-3]):[0-5][0-9]$")


def _check_cutoff(cutoff: str) -> str:
    # Strict HH:MM: the column holds five characters, and "9:5" or "+9:05" would parse but read badly.
    if not _CUTOFF.match(cutoff):
        raise InvalidRequest("The cut-off is a local time HH:MM (00:00 to 23:59).", code="invalid_cutoff",
                             param="cutoff")
    return cutoff


@functools.cache
def _iana_zones() -> frozenset[str]:
    """The zone names of the IANA database as shipped by ``tzdata`` (not whatever files the host has)."""
    return frozenset(resources.files("tzdata").joinpath("zones").read_text().split())


def _check_timezone(timezone: str) -> str:
    # Only IANA names: ZoneInfo would also load host files such as "localtime", whose meaning is the server's.
    if timezone not in _iana_zones():
        raise InvalidRequest(f"Unknown timezone {timezone[:64]!r}; use an IANA name such as Asia/Shanghai.",
                             code="unknown_timezone", param="timezone")
    zone(timezone)
    return timezone


def _check_weekend(weekend: list[int]) -> list[int]:
    if any(isinstance(day, bool) or day not in range(7) for day in weekend) or len(set(weekend)) > 6:
        raise InvalidRequest("Weekend days are 0 (Monday) to 6 (Sunday), at most six of them.",
                             code="invalid_weekend", param="weekend")
    return sorted(set(weekend))


def get_tenant(uow: UnitOfWork, tenant_id: str) -> Tenant:
    tenant = uow.session.get(Tenant, tenant_id)
    if tenant is None:
        raise NotFound("No such tenant.", code="tenant_not_found")
    return tenant


def list_tenants(uow: UnitOfWork) -> list[Tenant]:
    return list(uow.session.scalars(select(Tenant).order_by(Tenant.id)))


def current_business_date(uow: UnitOfWork, tenant_id: str) -> date:
    """The business date an event happening now is booked on, by the tenant's calendar."""
    return calendar.get_calendar(uow, tenant_id).business_date(uow.clock.now())


def update_business_time(uow: UnitOfWork, principal: Principal, *, timezone: str | None = None,
                         cutoff: str | None = None, weekend: list[int] | None = None) -> Tenant:
    principal.require("tenant.configure")
    # Validate everything before touching the row, so a bad field leaves the others unchanged too.
    timezone = _check_timezone(timezone) if timezone is not None else None
    cutoff = _check_cutoff(cutoff) if cutoff is not None else None
    weekend = _check_weekend(weekend) if weekend is not None else None
    tenant = get_tenant(uow, principal.tenant_id)
    before = tenant_snapshot(tenant)
    if timezone is not None:
        tenant.timezone = timezone
    if cutoff is not None:
        tenant.cutoff = cutoff
    if weekend is not None:
        tenant.weekend = weekend
    if tenant_snapshot(tenant) == before:
        return tenant
    uow.session.flush()
    calendar.forget(tenant.id)
    audit.record(uow, tenant.id, actor=principal.actor, action="tenant.business_time_changed",
                 object_type="tenant", object_id=tenant.id, before=before, after=tenant_snapshot(tenant))
    return tenant


def set_holiday(uow: UnitOfWork, principal: Principal, day: date, name: str = "") -> Holiday:
    """Make ``day`` a holiday (or rename it); setting the same name again changes nothing."""
    principal.require("tenant.configure")
    name = _text(name, param="name", code="invalid_name", what="A holiday's name", required=False)
    holiday = uow.session.get(Holiday, (principal.tenant_id, day))
    before = None
    if holiday is None:
        holiday = Holiday(tenant_id=principal.tenant_id, day=day, name=name)
        uow.session.add(holiday)
    elif holiday.name == name:
        return holiday
    else:
        before = {"day": day.isoformat(), "name": holiday.name}
        holiday.name = name
    uow.session.flush()
    calendar.forget(principal.tenant_id)
    audit.record(uow, principal.tenant_id, actor=principal.actor, action="calendar.holiday_set",
                 object_type="holiday", object_id=day.isoformat(), before=before,
                 after={"day": day.isoformat(), "name": name})
    return holiday


def remove_holiday(uow: UnitOfWork, principal: Principal, day: date) -> Holiday:
    principal.require("tenant.configure")
    holiday = uow.session.get(Holiday, (principal.tenant_id, day))
    if holiday is None:
        raise NotFound("No holiday on that day.", code="holiday_not_found", param="day")
    uow.session.execute(delete(Holiday).where(Holiday.tenant_id == principal.tenant_id, Holiday.day == day))
    calendar.forget(principal.tenant_id)
    audit.record(uow, principal.tenant_id, actor=principal.actor, action="calendar.holiday_removed",
                 object_type="holiday", object_id=day.isoformat(),
                 before={"day": day.isoformat(), "name": holiday.name})
    return holiday


def list_holidays(uow: UnitOfWork, tenant_id: str) -> list[Holiday]:
    return list(uow.session.scalars(select(Holiday).where(Holiday.tenant_id == tenant_id).order_by(Holiday.day)))


# ---------------------------------------------------------------------------------------------- API keys


def key_snapshot(key: ApiKey) -> dict[str, Any]:
    return {"name": key.name, "prefix": key.prefix, "role": key.role, "status": key.status,
            "expires_at": key.expires_at.isoformat() if key.expires_at else None}


def api_key_status(key: ApiKey, now: datetime) -> str:
    """``active``, ``expired`` (a rotated key past its grace) or ``revoked``."""
    if key.status == "revoked":
        return "revoked"
    if key.expires_at is not None and utc(key.expires_at) <= now:
        return "expired"
    return "active"


def issue_api_key(uow: UnitOfWork, tenant_id: str, *, name: str, role: Role = Role.ADMIN, actor: str,
                  rotated_from_id: str | None = None) -> tuple[ApiKey, str]:
    """Create a key; the secret is returned once and never stored."""
    name = _text(name, param="name", code="invalid_name", what="A key's name")
    secret = API_KEY_PREFIX + secrets.token_urlsafe(32)
    key = ApiKey(id=uow.ids.new("api_key"), tenant_id=tenant_id, name=name, prefix=secret[:12],
                 digest=digest(secret), role=role.value, status="active", created_at=uow.clock.now(),
                 rotated_from_id=rotated_from_id)
    uow.session.add(key)
    uow.session.flush()
    audit.record(uow, tenant_id, actor=actor, action="api_key.created", object_type="api_key",
                 object_id=key.id, after=key_snapshot(key))
    return key, secret


def get_api_key(uow: UnitOfWork, tenant_id: str, key_id: str, *, lock: bool = False) -> ApiKey:
    query = select(ApiKey).where(ApiKey.tenant_id == tenant_id, ApiKey.id == key_id)
    key = uow.session.scalar(query.with_for_update() if lock else query)
    if key is None:
        raise NotFound(f"No such API key: {key_id}.", code="api_key_not_found", param="key_id")
    return key


def list_api_keys(uow: UnitOfWork, tenant_id: str, *, after: str | None = None,
                  limit: int | None = None) -> list[ApiKey]:
    query = select(ApiKey).where(ApiKey.tenant_id == tenant_id)
    if after:
        query = query.where(ApiKey.id > after)
    return list(uow.session.scalars(query.order_by(ApiKey.id).limit(limit)))


def revoke_api_key(uow: UnitOfWork, principal: Principal, key_id: str) -> ApiKey:
    principal.require("keys.manage")
    key = get_api_key(uow, principal.tenant_id, key_id, lock=True)
    if key.status == "revoked":
        raise Conflict("The key is already revoked.", code="api_key_revoked", param="key_id")
    before = key_snapshot(key)
    key.status = "revoked"
    key.revoked_at = uow.clock.now()
    uow.session.flush()
    _forget_key(uow, key.id)
    audit.record(uow, principal.tenant_id, actor=principal.actor, action="api_key.revoked",
                 object_type="api_key", object_id=key.id, before=before, after=key_snapshot(key))
    return key


def rotate_api_key(uow: UnitOfWork, principal: Principal, key_id: str, *,
                   grace_seconds: int = 0) -> tuple[ApiKey, str]:
    """Issue a successor; the old key keeps working for ``grace_seconds`` so clients can switch.

    A key has at most one successor: rotating it again is a conflict, so a retried rotation cannot
    leave a second live key behind, nor push the old key's end further out.
    """
    principal.require("keys.manage")
    if isinstance(grace_seconds, bool) or not 0 <= grace_seconds <= 30 * 86400:
        raise InvalidRequest("The grace period is 0 to 30 days.", code="invalid_grace", param="grace_seconds")
    old = get_api_key(uow, principal.tenant_id, key_id, lock=True)
    now = uow.clock.now()
    status = api_key_status(old, now)
    if status != "active":
        raise Conflict(f"The key is {status}; issue a new one instead.", code=f"api_key_{status}", param="key_id")
    if uow.session.scalar(select(ApiKey.id).where(ApiKey.tenant_id == principal.tenant_id,
                                                  ApiKey.rotated_from_id == old.id)):
        raise Conflict("The key was already rotated; revoke it to end its grace period.",
                       code="api_key_already_rotated", param="key_id")
    before = key_snapshot(old)
    if grace_seconds:
        old.expires_at = now + timedelta(seconds=grace_seconds)
    else:
        old.status = "revoked"
        old.revoked_at = now
    uow.session.flush()
    _forget_key(uow, old.id)
    audit.record(uow, principal.tenant_id, actor=principal.actor, action="api_key.rotated",
                 object_type="api_key", object_id=old.id, before=before, after=key_snapshot(old))
    return issue_api_key(uow, principal.tenant_id, name=old.name, role=Role(old.role), actor=principal.actor,
                         rotated_from_id=old.id)


_KEY_BY_DIGEST = select(ApiKey.id, ApiKey.tenant_id, ApiKey.role, ApiKey.status, ApiKey.expires_at).where(
    ApiKey.digest == bindparam("digest"))


#: How long a resolved API key is trusted without reading it again: the longest a key revoked by another
#: process (another worker, the CLI) keeps working in this one. A revocation through this process
#: applies at once. See docs/adr/0003-api-hot-path.md.
KEY_CACHE_SECONDS = 2.0
_KEY_CACHE_MAX_ENTRIES = 10_000


@dataclass(frozen=True, slots=True)
class _CachedKey:
    principal: Principal
    key_id: str
    expires_at: datetime | None  # the key's own end (a rotated key's grace), checked on every hit
    fresh_until: float  # monotonic() after which the row is read again


class ApiKeyCache:
    """API-key digest → principal, trusted for ``ttl`` seconds.

    Only API keys are cached: they carry every machine-to-machine request, while staff sessions are few
    and change through more paths (sign-out, disabling a user, changing roles). Invalid keys are never
    cached, so a wrong key always costs a read, as before. A generation number closes the race between
    a request that read a key just before a revocation and stores it just after: its entry is dropped.
    """

    def __init__(self, ttl: float = KEY_CACHE_SECONDS, max_entries: int = _KEY_CACHE_MAX_ENTRIES) -> None:
        self.ttl = ttl
        self.max_entries = max_entries
        self._entries: dict[str, _CachedKey] = {}
        self._generation = 0
        self._lock = threading.Lock()

    @property
    def generation(self) -> int:
        return self._generation

    def get(self, key_digest: str, now: datetime) -> Principal | None:
        entry = self._entries.get(key_digest)
        if entry is None:
            return None
        if entry.fresh_until <= monotonic() or (entry.expires_at is not None and entry.expires_at <= now):
            with self._lock:
                if self._entries.get(key_digest) is entry:
                    del self._entries[key_digest]
            return None
        return entry.principal

    def put(self, key_digest: str, entry: _CachedKey, generation: int) -> None:
        with self._lock:
            if generation != self._generation or self.ttl <= 0:
                return  # a key was revoked while this one was being read: it may be that key
            if len(self._entries) >= self.max_entries:
                self._entries.clear()  # rare (more live keys than the bound); a miss costs one read
            self._entries[key_digest] = entry

    def forget(self, key_id: str | None = None) -> None:
        """Drop one key's entries (every entry when ``key_id`` is None)."""
        with self._lock:
            self._generation += 1
            if key_id is None:
                self._entries.clear()
            else:
                for stale in [d for d, e in self._entries.items() if e.key_id == key_id]:
                    del self._entries[stale]


key_cache = ApiKeyCache()


def _forget_key(uow: UnitOfWork, key_id: str) -> None:
    """Forget a key now and again when its change commits: a request that read the key in between
    (before the commit) must not keep it for another ``KEY_CACHE_SECONDS``."""
    key_cache.forget(key_id)
    event.listen(uow.session, "after_commit", lambda _session: key_cache.forget(key_id), once=True)


def cached_principal(token: str, now: datetime) -> Principal | None:
    """The principal of an API key resolved less than ``KEY_CACHE_SECONDS`` ago, else None (read it with
    ``authenticate``). Costs a SHA-256 and a dict lookup: no database, no thread."""
    if not token.startswith(API_KEY_PREFIX):
        return None
    return key_cache.get(digest(token), now)


def authenticate(uow: UnitOfWork, token: str) -> Principal:
    """Resolve a bearer token (API key or user session) to a principal, or raise ``unauthenticated``."""
    now = uow.clock.now()
    if token.startswith(API_KEY_PREFIX):
        key_digest = digest(token)
        cached = key_cache.get(key_digest, now)
        if cached is not None:
            return cached
        generation = key_cache.generation
        # Columns, not the ORM entity: this runs on every request and the identity map buys nothing here.
        key = uow.session.execute(_KEY_BY_DIGEST, {"digest": key_digest}).first()
        expires_at = utc(key.expires_at) if key is not None and key.expires_at is not None else None
        if key is None or key.status == "revoked" or (expires_at is not None and expires_at <= now):
            raise Unauthenticated("Invalid or revoked API key.", code="invalid_api_key")
        principal = Principal(key.tenant_id, f"key:{key.id}", frozenset({Role(key.role)}))
        key_cache.put(key_digest, _CachedKey(principal, key.id, expires_at, monotonic() + key_cache.ttl),
                      generation)
        return principal
    if token.startswith(SESSION_PREFIX):
        found = uow.session.execute(
            select(UserSession, User).join(User, User.id == UserSession.user_id)
            .where(UserSession.digest == digest(token))).first()
        if found is None:
            raise Unauthenticated("Invalid session.", code="invalid_session")
        session, user = found
        if session.revoked_at is not None or session.expires_at <= now or user.status != "active":
            raise Unauthenticated("The session has expired; sign in again.", code="session_expired")
        return Principal(user.tenant_id, f"user:{user.id}", frozenset(Role(r) for r in user.roles), user.id,
                         session.id)
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


_EMAIL = re.compile(r"^[^@\s\x00-\x1f\x7f]+@[^@\s\x00-\x1f\x7f]+$")


def _check_email(email: str) -> str:
    email = email.strip().lower()
    if len(email) > 320 or not _EMAIL.match(email):
        raise InvalidRequest("A valid email address is required.", code="invalid_email", param="email")
    return email


def create_user(uow: UnitOfWork, tenant_id: str, *, email: str, password: str, roles: list[str],
                name: str = "", actor: str) -> User:
    email = _check_email(email)
    name = _text(name, param="name", code="invalid_name", what="A user's name", required=False)
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


def list_users(uow: UnitOfWork, tenant_id: str, *, after: str | None = None,
               limit: int | None = None) -> list[User]:
    query = select(User).where(User.tenant_id == tenant_id)
    if after:
        query = query.where(User.id > after)
    return list(uow.session.scalars(query.order_by(User.id).limit(limit)))


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
    if user_snapshot(user) == before:
        return user
    uow.session.flush()
    audit.record(uow, principal.tenant_id, actor=principal.actor, action="user.updated", object_type="user",
                 object_id=user.id, before=before, after=user_snapshot(user))
    return user


_dummy_hashes: dict[tuple[int, int, int], str] = {}


def _dummy_hash() -> str:
    """A hash made with the current parameters, checked when there is no user, so that costs the same."""
    params = (_hasher.time_cost, _hasher.memory_cost, _hasher.parallelism)
    if params not in _dummy_hashes:
        _dummy_hashes[params] = _hasher.hash(secrets.token_urlsafe(16))
    return _dummy_hashes[params]


def _wrong_credentials() -> Unauthenticated:
    return Unauthenticated("Wrong email or password.", code="invalid_credentials")


def check_credentials(uow: UnitOfWork, tenant_id: str, *, email: str, password: str) -> User:
    """The active user with this email and password, or ``invalid_credentials``.

    Needs only a read: run it outside the write transaction, since an argon2 check takes a while.
    """
    user = uow.session.scalar(select(User).where(User.tenant_id == tenant_id, User.email == email.strip().lower()))
    try:
        valid: bool = _hasher.verify(user.password_hash if user is not None else _dummy_hash(), password)
    except (VerificationError, InvalidHashError):
        valid = False
    if not valid or user is None or user.status != "active":
        raise _wrong_credentials()
    return user


def start_session(uow: UnitOfWork, tenant_id: str, user_id: str, *, ttl_seconds: int,
                  channel: str = "api") -> tuple[UserSession, str]:
    """Open a session for a user whose credentials were just checked; the token is returned once."""
    user = uow.session.scalar(select(User).where(User.tenant_id == tenant_id, User.id == user_id))
    if user is None or user.status != "active":  # disabled between the check and now
        raise _wrong_credentials()
    token = SESSION_PREFIX + secrets.token_urlsafe(32)
    now = uow.clock.now()
    session = UserSession(id=uow.ids.new("session"), tenant_id=tenant_id, user_id=user.id, digest=digest(token),
                          created_at=now, expires_at=now + timedelta(seconds=ttl_seconds), last_seen_at=now,
                          channel=channel)
    uow.session.add(session)
    uow.session.flush()
    return session, token


#: A console session's last use is written at most this often: a page view otherwise only reads.
TOUCH_INTERVAL = timedelta(minutes=1)


def console_principal(uow: UnitOfWork, token: str, *, idle_seconds: int) -> tuple[Principal, User, bool]:
    """The user behind a console session cookie, and whether the session's last use is due to be written
    (``touch_console_session``). Beyond the API's checks, a console session ends after ``idle_seconds`` without
    a request."""
    found = uow.session.execute(
        select(UserSession, User).join(User, User.id == UserSession.user_id)
        .where(UserSession.digest == digest(token), UserSession.channel == "console")).first()
    if found is None:
        raise Unauthenticated("Invalid session.", code="invalid_session")
    session, user = found
    now = uow.clock.now()
    last_seen = utc(session.last_seen_at or session.created_at)
    if (session.revoked_at is not None or utc(session.expires_at) <= now or user.status != "active"
            or last_seen + timedelta(seconds=idle_seconds) <= now):
        raise Unauthenticated("The session has expired; sign in again.", code="session_expired")
    principal = Principal(user.tenant_id, f"user:{user.id}", frozenset(Role(r) for r in user.roles), user.id,
                          session.id)
    return principal, user, now - last_seen >= TOUCH_INTERVAL


def touch_console_session(uow: UnitOfWork, session_id: str) -> None:
    uow.session.execute(update(UserSession).where(UserSession.id == session_id)
                        .values(last_seen_at=uow.clock.now()))


# ------------------------------------------------------------------------------------------ second factor

TOTP_ISSUER = "finloop"


def _totp_key() -> bytes:
    from finloop.vault import crypto

    return crypto.master_key().derive("staff_totp")


def _seal_totp(user_id: str, secret: str) -> str:
    from finloop.vault import crypto

    nonce, sealed = crypto.encrypt(_totp_key(), secret.encode(), user_id.encode())
    return "v1." + base64.b64encode(nonce + sealed).decode()


def open_totp_secret(user: User) -> str:
    from finloop.vault import crypto

    assert user.totp_secret is not None
    raw = base64.b64decode(user.totp_secret.removeprefix("v1."))
    return crypto.decrypt(_totp_key(), raw[:crypto.NONCE_BYTES], raw[crypto.NONCE_BYTES:], user.id.encode(),
                          what="A second-factor secret").decode()


def has_second_factor(user: User) -> bool:
    return user.totp_secret is not None and user.totp_confirmed_at is not None


def begin_totp_enrolment(uow: UnitOfWork, user: User) -> str:
    """A fresh secret for a user without a confirmed second factor; returned to show once (as a QR code)."""
    if has_second_factor(user):
        raise Conflict("This user already has a second factor; an admin resets it.", code="totp_already_enrolled")
    secret = pyotp.random_base32()
    user.totp_secret = _seal_totp(user.id, secret)
    user.totp_last_step = None
    uow.session.flush()
    return secret


def totp_uri(user: User, secret: str, tenant_name: str) -> str:
    return pyotp.TOTP(secret).provisioning_uri(name=user.email, issuer_name=f"{TOTP_ISSUER} ({tenant_name})")


def check_totp(uow: UnitOfWork, user: User, code: str) -> None:
    """Accept a six-digit code for the current 30-second step (or the one either side, for clock drift)
    once: a code already used, or one for an earlier step than the last accepted, is refused."""
    if user.totp_secret is None:
        raise Unauthenticated("This user has no second factor enrolled.", code="totp_not_enrolled")
    code = code.strip().replace(" ", "")
    totp = pyotp.TOTP(open_totp_secret(user))
    now = uow.clock.now()
    step = int(now.timestamp()) // totp.interval
    for candidate in (step, step - 1, step + 1):
        if hmac.compare_digest(totp.at(candidate * totp.interval), code):
            if user.totp_last_step is not None and candidate <= user.totp_last_step:
                break
            user.totp_last_step = candidate
            uow.session.flush()
            return
    raise Unauthenticated("The code is wrong or was already used.", code="invalid_totp", param="code")


def confirm_totp(uow: UnitOfWork, user: User, code: str) -> None:
    """Finish enrolment: the first accepted code proves the user holds the secret."""
    check_totp(uow, user, code)
    user.totp_confirmed_at = uow.clock.now()
    uow.session.flush()
    audit.record(uow, user.tenant_id, actor=f"user:{user.id}", action="user.second_factor_enrolled",
                 object_type="user", object_id=user.id)


def reset_totp(uow: UnitOfWork, principal: Principal, user_id: str) -> User:
    """An admin clears a lost second factor; the user enrols again at their next sign-in."""
    principal.require("users.manage")
    user = get_user(uow, principal.tenant_id, user_id)
    user.totp_secret = None
    user.totp_confirmed_at = None
    user.totp_last_step = None
    uow.session.flush()
    audit.record(uow, principal.tenant_id, actor=principal.actor, action="user.second_factor_reset",
                 object_type="user", object_id=user.id)
    return user


def sign_out(uow: UnitOfWork, principal: Principal) -> UserSession:
    """End the session the principal signed in with."""
    if principal.session_id is None:
        raise InvalidRequest("Signing out ends a user session; this request was made with an API key.",
                             code="session_required")
    session = uow.session.scalar(select(UserSession).where(UserSession.tenant_id == principal.tenant_id,
                                                           UserSession.id == principal.session_id))
    if session is None:
        raise Unauthenticated("Invalid session.", code="invalid_session")
    if session.revoked_at is None:
        session.revoked_at = uow.clock.now()
        uow.session.flush()
    return session


# ---------------------------------------------------------------------------------------------- approvals


def approval_snapshot(request: ApprovalRequest) -> dict[str, Any]:
    return {"action": request.action, "object_type": request.object_type, "object_id": request.object_id,
            "payload": request.payload, "status": request.status, "required_role": request.required_role,
            "requested_by": request.requested_by, "decided_by": request.decided_by, "reason": request.reason}


_MAX_PAYLOAD_BYTES = 16_384
_MAX_PAYLOAD_DEPTH = 8
_INT64 = 2**63


def _check_payload(payload: dict[str, Any]) -> dict[str, Any]:
    """JSON that both databases store and give back as given: no floats (amounts are integer minor
    units), 64-bit integers, no NUL, a bounded size and depth."""
    def plain(value: Any, depth: int) -> bool:
        if depth > _MAX_PAYLOAD_DEPTH:
            return False
        if isinstance(value, dict):
            return all(isinstance(k, str) and plain(k, depth) and plain(v, depth + 1) for k, v in value.items())
        if isinstance(value, list):
            return all(plain(item, depth + 1) for item in value)
        if isinstance(value, str):
            return "\x00" not in value
        if isinstance(value, int) and not isinstance(value, bool):
            return -_INT64 <= value < _INT64
        return value is None or isinstance(value, bool)

    if not plain(payload, 1) or len(json.dumps(payload)) > _MAX_PAYLOAD_BYTES:
        raise InvalidRequest(f"The payload is a JSON object of up to {_MAX_PAYLOAD_BYTES} bytes, nested at most "
                             f"{_MAX_PAYLOAD_DEPTH} deep, holding strings, 64-bit integers, booleans, null, lists "
                             "and objects (no floats).", code="invalid_payload", param="payload")
    return payload


def request_approval(uow: UnitOfWork, principal: Principal, *, action: str, required_role: Role,
                     payload: dict[str, Any] | None = None, object_type: str | None = None,
                     object_id: str | None = None) -> ApprovalRequest:
    """Park an action until a second person approves it (maker-checker)."""
    if principal.user_id is None:
        raise PermissionDenied("Approvals are requested by a signed-in user, not an API key.",
                               code="user_required")
    principal.require("approvals.request")
    return park_for_approval(uow, principal.tenant_id, requested_by=principal.user_id, actor=principal.actor,
                             action=action, required_role=required_role, payload=payload, object_type=object_type,
                             object_id=object_id)


def park_for_approval(uow: UnitOfWork, tenant_id: str, *, requested_by: str, actor: str, action: str,
                      required_role: Role, payload: dict[str, Any] | None = None, object_type: str | None = None,
                      object_id: str | None = None) -> ApprovalRequest:
    """Record an approval request. People ask through ``request_approval``; a domain rule parks an
    integration's action with this (``requested_by`` is then the API key, so every user with the role is
    "another person")."""
    action = _text(action, param="action", code="invalid_action", what="An approval's action", max_length=100)
    if required_role not in PERMISSIONS["approvals.decide"]:
        raise InvalidRequest(f"The {required_role.value} role cannot decide approvals.", code="invalid_role",
                             param="required_role")
    if object_type is not None:
        object_type = _text(object_type, param="object_type", code="invalid_object", what="object_type",
                            max_length=50)
    if object_id is not None:
        object_id = _text(object_id, param="object_id", code="invalid_object", what="object_id", max_length=40)
    request = ApprovalRequest(id=uow.ids.new("approval"), tenant_id=tenant_id, action=action,
                              object_type=object_type, object_id=object_id,
                              payload=_check_payload(payload) if payload else {},
                              required_role=required_role.value, status="pending",
                              requested_by=requested_by[:40], created_at=uow.clock.now())
    uow.session.add(request)
    uow.session.flush()
    audit.record(uow, tenant_id, actor=actor, action="approval.requested",
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
    principal.require("approvals.decide")
    if reason is not None:
        reason = _text(reason, param="reason", code="invalid_reason", what="A reason", max_length=1000,
                       required=False) or None
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

