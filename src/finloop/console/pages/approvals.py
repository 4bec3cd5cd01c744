"""Approval queues: the maker-checker actions of every area (refunds and payouts above threshold, rule
publishing, anything a user asked a second person to approve), decided here by another user who holds the
required role. The checks are the API's own (``tenancy.decide_approval``): nobody decides their own request."""

from __future__ import annotations

from collections.abc import Callable

from fastapi import APIRouter, Request
from fastapi.responses import Response
from sqlalchemy import or_, select

from finloop.console.actions import act
from finloop.console.auth import ActingStaff, CurrentStaff, Staff, database, field, form_of
from finloop.console.web import Column, Filter, badge, choice, equals, html, listing
from finloop.credit import limits
from finloop.credit.servicing import service as servicing
from finloop.db.uow import UnitOfWork
from finloop.payments import flows
from finloop.payments.service import REFUND_APPROVAL_ACTION
from finloop.tenancy import service as tenancy
from finloop.tenancy.models import ApprovalRequest

router = APIRouter()

#: Where the object an approval is about is shown.
OBJECT_PAGES = {"refund": "/console/payments/refunds/{id}", "payout": "/console/merchants/payouts/{id}",
                "rule_set_version": "/console/risk/versions/{id}", "loan": "/console/credit/loans/{id}",
                "credit_line": "/console/credit/lines/{id}"}

COLUMNS = (
    Column("Request", lambda a: a.id, link=lambda a: f"/console/approvals/{a.id}"),
    Column("Created", lambda a: a.created_at),
    Column("Action", lambda a: a.action),
    Column("Object", lambda a: f"{a.object_type or ''} {a.object_id or ''}".strip()),
    Column("Needs role", lambda a: a.required_role),
    Column("Requested by", lambda a: a.requested_by),
    Column("Status", lambda a: a.status, show=lambda a: badge(a.status)),
    Column("Decided by", lambda a: a.decided_by),
)


@router.get("/approvals")
def approval_list(request: Request, staff: CurrentStaff) -> Response:
    with database(request).uow(read_only=True) as uow:
        actions = list(uow.session.scalars(select(ApprovalRequest.action).where(
            ApprovalRequest.tenant_id == staff.tenant_id).distinct().order_by(ApprovalRequest.action)))
        filters = (
            Filter("status", "Status", equals(ApprovalRequest.status),
                   choice("pending", "approved", "rejected", "canceled")),
            Filter("action", "Action", equals(ApprovalRequest.action), choice(*actions)),
            Filter("role", "Needs role", equals(ApprovalRequest.required_role),
                   choice(*(role.value for role in tenancy.Role if role is not tenancy.Role.AUDITOR))),
        )
        return listing(request, uow.session,
                       select(ApprovalRequest).where(ApprovalRequest.tenant_id == staff.tenant_id),
                       title="Approvals", columns=COLUMNS, order_by=(ApprovalRequest.id.desc(),), filters=filters,
                       search=lambda q: or_(ApprovalRequest.id == q, ApprovalRequest.object_id == q),
                       search_label="request or object id")


def decidable(staff: CurrentStaff, approval: ApprovalRequest) -> str | None:
    """Why this user cannot decide this request, or None when they can (the server checks again)."""
    if approval.status != "pending":
        return f"Already {approval.status}."
    if not staff.can("approvals.decide"):
        return "Your role may not decide approvals."
    if approval.requested_by == staff.user.id:
        return "You asked for this; another person decides it."
    if approval.required_role not in staff.roles:
        return f"Deciding this needs the {approval.required_role} role."
    return None


@router.get("/approvals/{approval_id}")
def approval_detail(request: Request, staff: CurrentStaff, approval_id: str) -> Response:
    with database(request).uow(read_only=True) as uow:
        approval = tenancy.get_approval(uow, staff.tenant_id, approval_id)
        page = OBJECT_PAGES.get(approval.object_type or "")
        return html(request, "approvals/detail.html", approval=approval, blocked=decidable(staff, approval),
                    object_link=page.format(id=approval.object_id) if page and approval.object_id else None)


#: What the console asks a second person to approve before doing it: each action's executor runs in the
#: transaction that records the approval, as the approver (who must hold the action's own permission too).
WRITE_OFF_ACTION = "credit.write_off"
LIMIT_OVERRIDE_ACTION = "credit.limit_override"


def _write_off(uow: UnitOfWork, staff: Staff, approval: ApprovalRequest) -> None:
    staff.principal.require("credit.write_off")
    servicing.write_off_loan(uow, staff.tenant_id, approval.object_id or "", reason=approval.payload.get("reason"),
                             actor=staff.principal.actor)


def _override_limit(uow: UnitOfWork, staff: Staff, approval: ApprovalRequest) -> None:
    staff.principal.require("credit.configure")
    limits.adjust(uow, staff.tenant_id, approval.object_id or "", limit_amount=approval.payload["limit_amount"],
                  limit_group=approval.payload.get("limit_group"), note=approval.payload.get("note", ""),
                  actor=staff.principal.actor)


EXECUTORS: dict[str, Callable[[UnitOfWork, Staff, ApprovalRequest], None]] = {
    WRITE_OFF_ACTION: _write_off,
    LIMIT_OVERRIDE_ACTION: _override_limit,
}


def _decide(request: Request, staff: ActingStaff, approval_id: str, *, approve: bool) -> Response:
    form = form_of(request)
    reason = field(form, "reason", required=False)

    def work(uow: UnitOfWork) -> ApprovalRequest:
        approval = tenancy.decide_approval(uow, staff.principal, approval_id, approve=approve, reason=reason)
        if approve and approval.action in EXECUTORS:
            EXECUTORS[approval.action](uow, staff, approval)
        return approval

    response = act(request, staff, action="approval.approved" if approve else "approval.rejected",
                   object_type="approval", object_id=approval_id, form=form, work=work,
                   done="Approved." if approve else "Rejected.", back=f"/console/approvals/{approval_id}")
    _release_refund(request, staff, approval_id)
    return response


def _release_refund(request: Request, staff: ActingStaff, approval_id: str) -> None:
    """A refund calls its channel, outside any transaction: it moves on once the decision is committed (at once,
    rather than at the worker's next look)."""
    db = database(request)
    with db.uow(read_only=True) as uow:
        approval = tenancy.get_approval(uow, staff.tenant_id, approval_id)
    if approval.action == REFUND_APPROVAL_ACTION and approval.object_id:
        flows.release_parked_refund(db, staff.tenant_id, approval.object_id)


@router.post("/approvals/{approval_id}/approve")
def approve(request: Request, staff: ActingStaff, approval_id: str) -> Response:
    return _decide(request, staff, approval_id, approve=True)


@router.post("/approvals/{approval_id}/reject")
def reject(request: Request, staff: ActingStaff, approval_id: str) -> Response:
    return _decide(request, staff, approval_id, approve=False)
