"""Signing in to the console, and who is signed in.

A staff member signs in with email and password, then with a TOTP code (enrolling an authenticator at
the first sign-in); only then is a session opened. The session token lives in an HttpOnly, SameSite=Strict
cookie; it ends after ``session_ttl_seconds``, after ``console_idle_seconds`` without a request, at sign-out,
or when the user is disabled.

Every form carries a CSRF token: before sign-in a random value also set as a cookie (double submit),
after it an HMAC of the session's id, so a token is worthless outside its session. A POST without the
right token is refused before anything runs.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request
from fastapi.concurrency import run_in_threadpool
from starlette.datastructures import FormData

from finloop.core.errors import InvalidRequest, PermissionDenied, Unauthenticated
from finloop.db.uow import Database
from finloop.tenancy import service as tenancy
from finloop.tenancy.models import Tenant, User
from finloop.tenancy.service import Principal

SESSION_COOKIE = "fl_console"
PRE_CSRF_COOKIE = "fl_csrf"
PENDING_COOKIE = "fl_pending"
#: How long the step between a right password and the second factor may take.
PENDING_SECONDS = 300


class SignInRequired(Exception):
    """The request needs a signed-in user; the console answers with the sign-in page."""


def _key(purpose: str) -> bytes:
    from finloop.vault import crypto

    return crypto.master_key().derive(f"console_{purpose}")


def sign(purpose: str, text: str) -> str:
    """An HMAC of ``text`` under a key of the console's for ``purpose`` (URL-safe): form tokens, pending sign-ins."""
    mac = hmac.new(_key(purpose), text.encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(mac).decode().rstrip("=")


def session_csrf(session_id: str) -> str:
    return sign("csrf", session_id)


def pending_token(tenant_id: str, user_id: str, next_url: str) -> str:
    """Names the user who gave the right password, for ``PENDING_SECONDS``; signed, so it cannot be forged."""
    body = f"{tenant_id}|{user_id}|{int(time.time()) + PENDING_SECONDS}|{next_url}"
    encoded = base64.urlsafe_b64encode(body.encode()).decode()
    return f"{encoded}.{sign('pending', encoded)}"


def read_pending(token: str | None) -> tuple[str, str, str]:
    """(tenant id, user id, where to go next) of a valid pending sign-in."""
    if token and "." in token:
        encoded, mac = token.rsplit(".", 1)
        if hmac.compare_digest(mac, sign("pending", encoded)):
            tenant_id, user_id, expires, next_url = base64.urlsafe_b64decode(encoded).decode().split("|", 3)
            if int(expires) > time.time():
                return tenant_id, user_id, next_url
    raise Unauthenticated("The sign-in took too long or was not started; sign in again.", code="sign_in_expired")


def safe_next(value: str | None) -> str:
    """Only a path inside the console: an open redirect would let a link send a user anywhere."""
    if value and value.startswith("/console") and not value.startswith("//") and "\\" not in value:
        return value
    return "/console"


@dataclass
class Staff:
    """The signed-in user of a console request."""

    principal: Principal
    user: User
    tenant: Tenant
    csrf: str

    def can(self, permission: str) -> bool:
        return self.principal.can(permission)

    @property
    def roles(self) -> list[str]:
        return sorted(role.value for role in self.principal.roles)

    @property
    def tenant_id(self) -> str:
        return self.principal.tenant_id


def database(request: Request) -> Database:
    db: Database = request.app.state.database
    return db


def _load(request: Request) -> Staff:
    token = request.cookies.get(SESSION_COOKIE)
    if not token:
        raise SignInRequired
    db = database(request)
    try:
        with db.uow(read_only=True) as uow:
            principal, user, stale = tenancy.console_principal(
                uow, token, idle_seconds=request.app.state.settings.console_idle_seconds)
            tenant = tenancy.get_tenant(uow, principal.tenant_id)
    except Unauthenticated:
        raise SignInRequired from None
    assert principal.session_id is not None
    if stale:
        with db.uow() as uow:
            tenancy.touch_console_session(uow, principal.session_id)
            uow.commit()
    staff = Staff(principal, user, tenant, session_csrf(principal.session_id))
    request.state.staff = staff
    request.state.tenant_id = principal.tenant_id
    return staff


def current_staff(request: Request) -> Staff:
    """Dependency of every page: the signed-in user, or the sign-in page."""
    return _load(request)


async def acting_staff(request: Request) -> Staff:
    """Dependency of every form post: the signed-in user, whose form carries their session's CSRF token."""
    form = await request.form()
    staff = await run_in_threadpool(_load, request)
    check_csrf(form, staff.csrf)
    request.state.form = form
    return staff


def check_csrf(form: FormData, expected: str) -> None:
    sent = form.get("csrf_token")
    if not isinstance(sent, str) or not expected or not hmac.compare_digest(sent, expected):
        raise PermissionDenied("The form is stale or did not come from this console; reload the page.",
                               code="csrf_failed", param="csrf_token")


def new_pre_csrf() -> str:
    return secrets.token_urlsafe(24)


CurrentStaff = Annotated[Staff, Depends(current_staff)]
ActingStaff = Annotated[Staff, Depends(acting_staff)]


def form_of(request: Request) -> dict[str, str]:
    """The posted form's text fields (the CSRF token left out)."""
    form: FormData = request.state.form
    return {key: value for key, value in form.items() if isinstance(value, str) and key != "csrf_token"}


def field(form: dict[str, str], name: str, *, required: bool = True) -> str | None:
    value = form.get(name, "").strip()
    if required and not value:
        raise InvalidRequest(f"{name.replace('_', ' ').capitalize()} is required.", code="missing_field", param=name)
    return value or None

