"""How a console form changes something: the API's permission check, the service call, and an audit
event naming the user and the console, all in one transaction; then back to a page with a notice."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import Request
from fastapi.responses import RedirectResponse, Response

from finloop.audit import service as audit
from finloop.console.auth import Staff, database
from finloop.console.web import flash
from finloop.db.uow import UnitOfWork

#: Form fields never written to the audit log, whatever page posts them.
_SECRET_FIELDS = {"password", "code", "card_number", "cvc", "secret"}


def act(request: Request, staff: Staff, *, action: str, object_type: str, object_id: str | None,
        work: Callable[[UnitOfWork], Any], done: str, back: str, permission: str | None = None,
        form: dict[str, str] | None = None) -> Response:
    """Run ``work`` as ``staff`` and commit it with the audit event ``console.<action>``.

    A refused or invalid action raises, and the console answers with the error page (a 4xx naming the
    code, message and field); nothing is written, since the transaction is never committed.
    """
    if permission is not None:
        staff.principal.require(permission)
    with database(request).uow() as uow:
        result = work(uow)
        _record(uow, staff, action, object_type, object_id or _id_of(result), form)
        uow.commit()
    target = back.format(id=_id_of(result) or "") if "{id}" in back else back
    return flash(RedirectResponse(target, status_code=303), done)


def _id_of(result: Any) -> str | None:
    value = getattr(result, "id", None)
    return value if isinstance(value, str) else None


def act_flow(request: Request, staff: Staff, *, action: str, object_type: str, flow: Callable[[], str | None],
             done: str, back: str, permission: str | None = None, form: dict[str, str] | None = None) -> Response:
    """For an action that commits its own transactions around a channel call (a refund, a payout): the flow
    runs first, and the audit event is written once it has. ``flow`` returns the id of what it made."""
    if permission is not None:
        staff.principal.require(permission)
    object_id = flow()
    with database(request).uow() as uow:
        _record(uow, staff, action, object_type, object_id, form)
        uow.commit()
    target = back.format(id=object_id or "") if "{id}" in back else back
    return flash(RedirectResponse(target, status_code=303), done)


def _record(uow: UnitOfWork, staff: Staff, action: str, object_type: str, object_id: str | None,
            form: dict[str, str] | None) -> None:
    shown = {key: value for key, value in (form or {}).items() if key not in _SECRET_FIELDS}
    audit.record(uow, staff.tenant_id, actor=staff.principal.actor, action=f"console.{action}",
                 object_type=object_type, object_id=object_id, after={"form": shown, "via": "console"})
