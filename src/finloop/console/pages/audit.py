"""The audit log: every change, who made it and from where, in the tenant's hash chain, which this page
can verify end to end."""

from __future__ import annotations

import json

from fastapi import APIRouter, Request
from fastapi.responses import Response
from sqlalchemy import or_, select

from finloop.audit import service as audit
from finloop.audit.models import AuditEvent
from finloop.console.auth import CurrentStaff, database
from finloop.console.web import Column, Filter, choice, equals, listing, since, until

router = APIRouter()

COLUMNS = (
    Column("#", lambda e: e.seq, numeric=True),
    Column("At", lambda e: e.at),
    Column("Actor", lambda e: e.actor),
    Column("Action", lambda e: e.action),
    Column("Object", lambda e: e.object_type),
    Column("Object id", lambda e: e.object_id),
    Column("After", lambda e: json.dumps(e.after, sort_keys=True)[:400] if e.after else ""),
    Column("Hash", lambda e: e.hash, show=lambda e: e.hash[:12]),
)


@router.get("/audit")
def audit_log(request: Request, staff: CurrentStaff) -> Response:
    with database(request).uow(read_only=True) as uow:
        types = list(uow.session.scalars(select(AuditEvent.object_type).where(
            AuditEvent.tenant_id == staff.tenant_id).distinct().order_by(AuditEvent.object_type)))
        filters = (
            Filter("object_type", "Object", equals(AuditEvent.object_type), choice(*types)),
            Filter("actor", "Actor", equals(AuditEvent.actor)),
            Filter("from", "From", since(AuditEvent.at), kind="date"),
            Filter("to", "To", until(AuditEvent.at), kind="date"),
        )
        report = audit.verify(uow, staff.tenant_id) if request.query_params.get("verify") else None
        return listing(request, uow.session, select(AuditEvent).where(AuditEvent.tenant_id == staff.tenant_id),
                       title="Audit log", columns=COLUMNS, order_by=(AuditEvent.seq.desc(),), filters=filters,
                       search=lambda q: or_(AuditEvent.object_id == q, AuditEvent.action.startswith(q)),
                       search_label="object id or action prefix", template="audit.html", chain=report)
