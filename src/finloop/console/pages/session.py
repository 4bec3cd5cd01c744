"""Sign-in (password, then TOTP, enrolling at the first sign-in) and sign-out."""

from __future__ import annotations

import io
from typing import Annotated

import segno
from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from markupsafe import Markup

from finloop.audit import service as audit
from finloop.console import auth
from finloop.console.auth import ActingStaff
from finloop.console.web import html
from finloop.core.errors import FinloopError, Unauthenticated
from finloop.tenancy import service as tenancy

router = APIRouter()

_COOKIE = {"httponly": True, "samesite": "strict", "path": "/console"}


def _pre_csrf(request: Request) -> str:
    return request.cookies.get(auth.PRE_CSRF_COOKIE) or auth.new_pre_csrf()


def _page(request: Request, template: str, *, status_code: int = 200, **values: object) -> HTMLResponse:
    token = _pre_csrf(request)
    response = html(request, template, status_code=status_code, pre_csrf=token, **values)
    response.set_cookie(auth.PRE_CSRF_COOKIE, token, secure=request.url.scheme == "https", **_COOKIE)  # type: ignore[arg-type]
    return response


def _check_pre_csrf(request: Request, sent: str) -> None:
    expected = request.cookies.get(auth.PRE_CSRF_COOKIE, "")
    if not expected or sent != expected:
        raise Unauthenticated("The form is stale; reload the page and sign in again.", code="csrf_failed",
                              param="csrf_token")


@router.get("/sign-in")
def sign_in_page(request: Request, tenant: str = "", next: str = "") -> HTMLResponse:
    return _page(request, "sign_in.html", tenant_id=tenant[:40], email="", next_url=auth.safe_next(next), error=None)


@router.post("/sign-in")
def sign_in(request: Request, tenant_id: Annotated[str, Form(max_length=40)],
            email: Annotated[str, Form(max_length=320)], password: Annotated[str, Form(max_length=256)],
            csrf_token: Annotated[str, Form(max_length=200)], next: Annotated[str, Form(max_length=500)] = "",
            ) -> Response:
    _check_pre_csrf(request, csrf_token)
    db = auth.database(request)
    try:
        with db.uow(read_only=True) as uow:
            user = tenancy.check_credentials(uow, tenant_id.strip(), email=email, password=password)
            user_id, user_tenant = user.id, user.tenant_id
    except Unauthenticated as error:
        return _page(request, "sign_in.html", status_code=401, tenant_id=tenant_id, email=email,
                     next_url=auth.safe_next(next), error=error.message)
    response = RedirectResponse("/console/sign-in/second-factor", status_code=303)
    response.set_cookie(auth.PENDING_COOKIE, auth.pending_token(user_tenant, user_id, auth.safe_next(next)),
                        max_age=auth.PENDING_SECONDS, secure=request.url.scheme == "https", **_COOKIE)  # type: ignore[arg-type]
    return response


def _second_factor_page(request: Request, *, error: str | None = None, status_code: int = 200) -> Response:
    """The code form; for a user without a confirmed factor, the enrolment: the secret as a QR code and as
    text. A secret dealt but not yet confirmed is shown again (only ever after the right password)."""
    tenant_id, user_id, _ = auth.read_pending(request.cookies.get(auth.PENDING_COOKIE))
    db = auth.database(request)
    with db.uow() as uow:
        user = tenancy.get_user(uow, tenant_id, user_id)
        if tenancy.has_second_factor(user):
            return _page(request, "second_factor.html", status_code=status_code, enrolling=False, email=user.email,
                         error=error)
        secret = tenancy.open_totp_secret(user) if user.totp_secret else tenancy.begin_totp_enrolment(uow, user)
        uri = tenancy.totp_uri(user, secret, tenancy.get_tenant(uow, tenant_id).name)
        uow.commit()
    buffer = io.BytesIO()
    segno.make(uri, error="m").save(buffer, kind="svg", scale=4, xmldecl=False, svgns=True)
    return _page(request, "second_factor.html", status_code=status_code, enrolling=True, secret=secret,
                 qr=Markup(buffer.getvalue().decode()), error=error)  # noqa: S704 - segno draws only squares


@router.get("/sign-in/second-factor")
def second_factor_page(request: Request) -> Response:
    try:
        return _second_factor_page(request)
    except Unauthenticated:
        return RedirectResponse("/console/sign-in", status_code=303)


@router.post("/sign-in/second-factor")
def second_factor(request: Request, code: Annotated[str, Form(max_length=20)],
                  csrf_token: Annotated[str, Form(max_length=200)]) -> Response:
    _check_pre_csrf(request, csrf_token)
    tenant_id, user_id, next_url = auth.read_pending(request.cookies.get(auth.PENDING_COOKIE))
    settings = request.app.state.settings
    db = auth.database(request)
    try:
        with db.uow() as uow:
            user = tenancy.get_user(uow, tenant_id, user_id)
            if tenancy.has_second_factor(user):
                tenancy.check_totp(uow, user, code)
            else:
                tenancy.confirm_totp(uow, user, code)
            session, token = tenancy.start_session(uow, tenant_id, user_id, ttl_seconds=settings.session_ttl_seconds,
                                                   channel="console")
            audit.record(uow, tenant_id, actor=f"user:{user_id}", action="console.signed_in", object_type="session",
                         object_id=session.id)
            uow.commit()
    except FinloopError as error:
        if isinstance(error, Unauthenticated) and error.code == "invalid_totp":
            return _second_factor_page(request, error=error.message, status_code=401)
        raise
    response = RedirectResponse(next_url, status_code=303)
    response.delete_cookie(auth.PENDING_COOKIE, path="/console")
    response.set_cookie(auth.SESSION_COOKIE, token, max_age=settings.session_ttl_seconds,
                        secure=request.url.scheme == "https", **_COOKIE)  # type: ignore[arg-type]
    return response


@router.post("/sign-out")
def sign_out(request: Request, staff: ActingStaff) -> Response:
    db = auth.database(request)
    with db.uow() as uow:
        tenancy.sign_out(uow, staff.principal)
        audit.record(uow, staff.tenant_id, actor=staff.principal.actor, action="console.signed_out",
                     object_type="session", object_id=staff.principal.session_id)
        uow.commit()
    response = RedirectResponse("/console/sign-in?tenant=" + staff.tenant_id, status_code=303)
    response.delete_cookie(auth.SESSION_COOKIE, path="/console")
    return response
