"""The console's Merchants pages."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from finloop.console.auth import CurrentStaff
from finloop.console.web import html

router = APIRouter()


@router.get("/merchants")
def landing(request: Request, staff: CurrentStaff) -> Response:
    return html(request, "placeholder.html", title="Merchants")
