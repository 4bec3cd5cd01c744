"""HTTP endpoints of tenancy and authority: the tenant's business time, API keys, staff users and their
sessions, maker-checker approvals, and the audit log.

Every endpoint but ``POST /sessions`` (signing in) is authenticated and scoped to the caller's tenant.
Only POSTs take an Idempotency-Key, except the two that answer with an API key's secret: a stored
response would keep the secret in the database, so those refuse the header instead (a retried rotation
is refused anyway, since a key is rotated once).
"""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Path, Query
from fastapi.responses import JSONResponse

from finloop.api.deps import CurrentPrincipal, CurrentReader, CurrentWriter, Writer, get_database, get_settings
from finloop.api.pagination import Cursor, Limit, Page, page
from finloop.audit import service as audit
from finloop.audit.models import AuditEvent
from finloop.config import Settings
from finloop.core.errors import InvalidRequest, Unauthenticated
from finloop.db.uow import Database, UnitOfWork
from finloop.tenancy import service
from finloop.tenancy.models import ApiKey, ApprovalRequest, Holiday, Tenant, User, UserSession
from finloop.tenancy.schemas import (
    ApiKeyCreate,
    ApiKeyCreated,
    ApiKeyRead,
    ApiKeyRotate,
    ApprovalCreate,
    ApprovalDecision,
    ApprovalRead,
    AuditEventRead,
    BusinessTimeUpdate,
    ChainReportRead,
    HolidayDeleted,
    HolidayRead,
    HolidaySet,
    SessionCreate,
    SessionCreated,
    SessionRead,
    TenantRead,
    UserCreate,
    UserRead,
    UserUpdate,
)

router = APIRouter()
Id = Annotated[str, Path(min_length=1, max_length=40, pattern=r"^[A-Za-z0-9_]+$")]
Day = Annotated[date, Path(description="A calendar date, YYYY-MM-DD.")]
#: The id of the last row of the previous page; the pattern keeps bytes PostgreSQL refuses (NUL) out of queries.
IdCursor = Annotated[str | None, Query(max_length=40, pattern=r"^[A-Za-z0-9_]+$",
                                       description="The next_cursor of the previous page.")]


def _unkeyed_writer(db: Annotated[Database, Depends(get_database)], principal: CurrentPrincipal) -> Writer:
    return Writer(db, principal)


#: The write context of PATCH, PUT and DELETE: same commit and error rules, no Idempotency-Key.
UnkeyedWriter = Annotated[Writer, Depends(_unkeyed_writer)]


def _without_secret(content: dict[str, Any]) -> dict[str, Any]:
    """What an Idempotency-Key replay of a key-issuing request returns: the key, not its secret,
    which is shown once and never stored."""
    return {**content, "secret": None}


# ---------------------------------------------------------------------------------------------- tenant


def read_tenant(uow: UnitOfWork, tenant: Tenant) -> TenantRead:
    return TenantRead(id=tenant.id, name=tenant.name, timezone=tenant.timezone, cutoff=tenant.cutoff,
                      weekend=list(tenant.weekend), business_date=service.current_business_date(uow, tenant.id),
                      created_at=tenant.created_at)


def read_holiday(holiday: Holiday) -> HolidayRead:
    return HolidayRead(day=holiday.day, name=holiday.name)


@router.get("/tenant", response_model=TenantRead, tags=["tenancy"],
            summary="Your tenant, its business time and today's business date")
def get_tenant(reader: CurrentReader) -> TenantRead:
    return reader.run(lambda uow: read_tenant(uow, service.get_tenant(uow, reader.tenant_id)))


@router.patch("/tenant/business-time", response_model=TenantRead, tags=["tenancy"],
              summary="Change the timezone, daily cut-off or weekend")
def update_business_time(body: BusinessTimeUpdate, writer: UnkeyedWriter) -> JSONResponse:
    return writer.run(lambda uow: read_tenant(uow, service.update_business_time(
        uow, writer.principal, timezone=body.timezone, cutoff=body.cutoff, weekend=body.weekend)),
        permission="tenant.configure")


@router.get("/tenant/holidays", response_model=list[HolidayRead], tags=["tenancy"],
            summary="The tenant's holidays, by date")
def list_holidays(reader: CurrentReader) -> list[HolidayRead]:
    return reader.run(lambda uow: [read_holiday(h) for h in service.list_holidays(uow, reader.tenant_id)])


@router.put("/tenant/holidays/{day}", response_model=HolidayRead, tags=["tenancy"],
            summary="Make a day a holiday (or rename it)")
def set_holiday(day: Day, writer: UnkeyedWriter, body: HolidaySet | None = None) -> JSONResponse:
    name = body.name if body else ""
    return writer.run(lambda uow: read_holiday(service.set_holiday(uow, writer.principal, day, name)),
                      permission="tenant.configure")


@router.delete("/tenant/holidays/{day}", response_model=HolidayDeleted, tags=["tenancy"],
               summary="Make a holiday a normal day again")
def remove_holiday(day: Day, writer: UnkeyedWriter) -> JSONResponse:
    return writer.run(lambda uow: HolidayDeleted(day=service.remove_holiday(uow, writer.principal, day).day),
                      permission="tenant.configure")


# ---------------------------------------------------------------------------------------------- API keys


def read_key(key: ApiKey, uow: UnitOfWork) -> ApiKeyRead:
    return ApiKeyRead(id=key.id, name=key.name, prefix=key.prefix, role=key.role,
                      status=service.api_key_status(key, uow.clock.now()),
                      created_at=key.created_at, expires_at=key.expires_at, revoked_at=key.revoked_at,
                      rotated_from_id=key.rotated_from_id)


def read_new_key(key: ApiKey, secret: str, uow: UnitOfWork) -> ApiKeyCreated:
    return ApiKeyCreated(**read_key(key, uow).model_dump(), secret=secret)


@router.get("/api-keys", response_model=Page[ApiKeyRead], tags=["api keys"],
            summary="List API keys (never their secrets)")
def list_api_keys(reader: CurrentReader, limit: Limit = 50, starting_after: IdCursor = None) -> Page[ApiKeyRead]:
    return reader.run(lambda uow: page(service.list_api_keys(uow, reader.tenant_id, after=starting_after,
                                                             limit=limit + 1),
                                       limit, lambda k: read_key(k, uow), lambda k: k.id))


@router.post("/api-keys", status_code=201, response_model=ApiKeyCreated, tags=["api keys"],
             summary="Issue an API key; its secret is shown once")
def create_api_key(body: ApiKeyCreate, writer: CurrentWriter) -> JSONResponse:
    def work(uow: UnitOfWork) -> ApiKeyCreated:
        key, secret = service.issue_api_key(uow, writer.tenant_id, name=body.name, role=body.role,
                                            actor=writer.principal.actor)
        return read_new_key(key, secret, uow)

    return writer.run(work, status_code=201, permission="keys.manage", stored=_without_secret)


@router.post("/api-keys/{key_id}/rotate", status_code=201, response_model=ApiKeyCreated, tags=["api keys"],
             summary="Replace a key; the old one works for the grace period, the new secret is shown once")
def rotate_api_key(key_id: Id, writer: CurrentWriter, body: ApiKeyRotate | None = None) -> JSONResponse:
    grace = body.grace_seconds if body else 0

    def work(uow: UnitOfWork) -> ApiKeyCreated:
        key, secret = service.rotate_api_key(uow, writer.principal, key_id, grace_seconds=grace)
        return read_new_key(key, secret, uow)

    return writer.run(work, status_code=201, permission="keys.manage", stored=_without_secret)


@router.post("/api-keys/{key_id}/revoke", response_model=ApiKeyRead, tags=["api keys"],
             summary="Revoke a key at once")
def revoke_api_key(key_id: Id, writer: CurrentWriter) -> JSONResponse:
    return writer.run(lambda uow: read_key(service.revoke_api_key(uow, writer.principal, key_id), uow),
                      permission="keys.manage")


# ---------------------------------------------------------------------------------------------- users


def read_user(user: User) -> UserRead:
    return UserRead(id=user.id, email=user.email, name=user.name, roles=list(user.roles), status=user.status,
                    created_at=user.created_at)


@router.post("/users", status_code=201, response_model=UserRead, tags=["users"], summary="Create a staff user")
def create_user(body: UserCreate, writer: CurrentWriter) -> JSONResponse:
    return writer.run(lambda uow: read_user(service.create_user(
        uow, writer.tenant_id, email=body.email, password=body.password, roles=[r.value for r in body.roles],
        name=body.name, actor=writer.principal.actor)), status_code=201, permission="users.manage")


@router.get("/users", response_model=Page[UserRead], tags=["users"], summary="List staff users")
def list_users(reader: CurrentReader, limit: Limit = 50, starting_after: IdCursor = None) -> Page[UserRead]:
    return reader.run(lambda uow: page(service.list_users(uow, reader.tenant_id, after=starting_after,
                                                          limit=limit + 1), limit, read_user, lambda u: u.id))


@router.get("/users/{user_id}", response_model=UserRead, tags=["users"], summary="Get a staff user")
def get_user(user_id: Id, reader: CurrentReader) -> UserRead:
    return reader.run(lambda uow: read_user(service.get_user(uow, reader.tenant_id, user_id)))


@router.patch("/users/{user_id}", response_model=UserRead, tags=["users"],
              summary="Change a user's roles or disable them (their sessions stop working)")
def update_user(user_id: Id, body: UserUpdate, writer: UnkeyedWriter) -> JSONResponse:
    roles = [r.value for r in body.roles] if body.roles is not None else None
    return writer.run(lambda uow: read_user(service.update_user(uow, writer.principal, user_id, roles=roles,
                                                                status=body.status)), permission="users.manage")


# ---------------------------------------------------------------------------------------------- sessions


def read_session(session: UserSession) -> SessionRead:
    return SessionRead(id=session.id, tenant_id=session.tenant_id, user_id=session.user_id,
                       created_at=session.created_at, expires_at=session.expires_at, revoked_at=session.revoked_at)


@router.post("/sessions", status_code=201, response_model=SessionCreated, tags=["sessions"],
             summary="Sign in as a staff user; the session token is shown once",
             description="The only endpoint that needs no credentials. A wrong password and an unknown email "
                         "get the same answer. Not replayable by Idempotency-Key: a retry opens another session.")
def sign_in(body: SessionCreate, db: Annotated[Database, Depends(get_database)],
            settings: Annotated[Settings, Depends(get_settings)]) -> SessionCreated:
    # The slow password check reads only, so it runs before the short write transaction opens.
    with db.uow(read_only=True) as uow:
        user_id = service.check_credentials(uow, body.tenant_id, email=body.email, password=body.password).id
    with db.uow() as uow:
        user = service.get_user(uow, body.tenant_id, user_id)
        if service.has_second_factor(user):
            if body.totp_code is None:
                raise Unauthenticated("This user signs in with a second factor: send totp_code.",
                                      code="totp_required", param="totp_code")
            service.check_totp(uow, user, body.totp_code)
        session, token = service.start_session(uow, body.tenant_id, user_id,
                                               ttl_seconds=settings.session_ttl_seconds)
        uow.commit()
    return SessionCreated(**read_session(session).model_dump(), token=token)


@router.delete("/sessions/current", response_model=SessionRead, tags=["sessions"],
               summary="Sign out: end the session this request is made with")
def sign_out(writer: UnkeyedWriter) -> JSONResponse:
    return writer.run(lambda uow: read_session(service.sign_out(uow, writer.principal)))


# ---------------------------------------------------------------------------------------------- approvals


def read_approval(request: ApprovalRequest) -> ApprovalRead:
    return ApprovalRead(id=request.id, action=request.action, object_type=request.object_type,
                        object_id=request.object_id, payload=request.payload, required_role=request.required_role,
                        status=request.status, requested_by=request.requested_by, decided_by=request.decided_by,
                        reason=request.reason, created_at=request.created_at, decided_at=request.decided_at)


@router.post("/approvals", status_code=201, response_model=ApprovalRead, tags=["approvals"],
             summary="Ask another user to approve an action (maker-checker); needs a signed-in user")
def request_approval(body: ApprovalCreate, writer: CurrentWriter) -> JSONResponse:
    return writer.run(lambda uow: read_approval(service.request_approval(
        uow, writer.principal, action=body.action, required_role=body.required_role, payload=body.payload,
        object_type=body.object_type, object_id=body.object_id)), status_code=201)


@router.get("/approvals", response_model=Page[ApprovalRead], tags=["approvals"], summary="List approval requests")
def list_approvals(reader: CurrentReader, limit: Limit = 50, starting_after: IdCursor = None,
                   status: Literal["pending", "approved", "rejected", "canceled"] | None = None,
                   ) -> Page[ApprovalRead]:
    return reader.run(lambda uow: page(service.list_approvals(uow, reader.tenant_id, status=status,
                                                              after=starting_after, limit=limit + 1),
                                       limit, read_approval, lambda a: a.id))


@router.get("/approvals/{approval_id}", response_model=ApprovalRead, tags=["approvals"],
            summary="Get an approval request")
def get_approval(approval_id: Id, reader: CurrentReader) -> ApprovalRead:
    return reader.run(lambda uow: read_approval(service.get_approval(uow, reader.tenant_id, approval_id)))


def _decide(approval_id: str, writer: Writer, body: ApprovalDecision | None, *, approve: bool) -> JSONResponse:
    reason = body.reason if body else None
    return writer.run(lambda uow: read_approval(service.decide_approval(
        uow, writer.principal, approval_id, approve=approve, reason=reason)))


@router.post("/approvals/{approval_id}/approve", response_model=ApprovalRead, tags=["approvals"],
             summary="Approve a request: another user holding the required role")
def approve(approval_id: Id, writer: CurrentWriter, body: ApprovalDecision | None = None) -> JSONResponse:
    return _decide(approval_id, writer, body, approve=True)


@router.post("/approvals/{approval_id}/reject", response_model=ApprovalRead, tags=["approvals"],
             summary="Reject a request, with an optional reason")
def reject(approval_id: Id, writer: CurrentWriter, body: ApprovalDecision | None = None) -> JSONResponse:
    return _decide(approval_id, writer, body, approve=False)


# ---------------------------------------------------------------------------------------------- audit log


def read_event(event: AuditEvent) -> AuditEventRead:
    return AuditEventRead(seq=event.seq, actor=event.actor, action=event.action, object_type=event.object_type,
                          object_id=event.object_id, before=event.before, after=event.after, at=event.at,
                          prev_hash=event.prev_hash, hash=event.hash)


def _seq_cursor(cursor: str | None) -> int | None:
    if cursor is None:
        return None
    if not cursor.isdigit() or len(cursor) > 18:
        raise InvalidRequest("Malformed cursor.", code="invalid_cursor", param="starting_after")
    return int(cursor)


@router.get("/audit-events", response_model=Page[AuditEventRead], tags=["audit"],
            summary="The audit log, oldest first (who, what, when, before and after)")
def list_audit_events(reader: CurrentReader, limit: Limit = 100, starting_after: Cursor = None,
                      object_type: Annotated[str | None, Query(max_length=50, pattern=r"^[A-Za-z0-9_.:-]+$")] = None,
                      object_id: Annotated[str | None, Query(max_length=100, pattern=r"^[A-Za-z0-9_.:-]+$")] = None,
                      ) -> Page[AuditEventRead]:
    after_seq = _seq_cursor(starting_after)
    return reader.run(lambda uow: page(audit.list_events(uow, reader.tenant_id, after_seq=after_seq,
                                                         limit=limit + 1, object_type=object_type,
                                                         object_id=object_id),
                                       limit, read_event, lambda e: str(e.seq)))


@router.get("/audit-events/verify", response_model=ChainReportRead, tags=["audit"],
            summary="Check your tenant's audit chain and report the first break")
def verify_audit_chain(reader: CurrentReader) -> ChainReportRead:
    report = reader.run(lambda uow: audit.verify(uow, reader.tenant_id))
    return ChainReportRead(tenant_id=report.tenant_id, events=report.events, ok=report.ok,
                           broken_at_seq=report.broken_at_seq, reason=report.reason)
