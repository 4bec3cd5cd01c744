"""Mounts the console on the application: its pages under ``/console``, its script and style sheet under
``/console/static``, and HTML answers for the errors a console page raises."""

from __future__ import annotations

from importlib import import_module, resources

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException

from finloop.api.errors import describe_validation_error, status_for
from finloop.console.auth import SignInRequired
from finloop.console.web import html, templates
from finloop.core.errors import FinloopError

#: The navigation, in the order staff meet the areas; every entry is a page module's landing page.
NAV: tuple[tuple[str, str], ...] = (
    ("/console", "Overview"),
    ("/console/payments", "Payments"),
    ("/console/channels", "Channels & routing"),
    ("/console/merchants", "Merchants"),
    ("/console/reconciliation", "Reconciliation"),
    ("/console/risk", "Risk"),
    ("/console/credit", "Credit"),
    ("/console/ledger", "Ledger"),
    ("/console/reports", "Reports"),
    ("/console/approvals", "Approvals"),
    ("/console/audit", "Audit log"),
)

#: The page modules under ``finloop.console.pages``; each has a ``router``.
PAGES = ("session", "overview", "payments", "channels", "merchants", "reconciliation", "risk", "credit", "ledger",
         "reports", "approvals", "audit", "checkout", "portal")


def install(app: FastAPI) -> None:
    templates.globals["nav"] = NAV
    static = resources.files("finloop.console").joinpath("static")
    app.mount("/console/static", StaticFiles(directory=str(static)), name="console-static")
    for name in PAGES:
        module = import_module(f"finloop.console.pages.{name}")
        app.include_router(module.router, prefix="/console", include_in_schema=False)
    app.state.console_errors = render_error

    @app.exception_handler(SignInRequired)
    async def _sign_in(request: Request, exc: SignInRequired) -> Response:
        return render_error(request, exc)


def is_console(request: Request) -> bool:
    return request.url.path == "/console" or request.url.path.startswith("/console/")


def render_error(request: Request, error: Exception) -> Response:
    """The console's answer to an error: the sign-in page when nobody is signed in, otherwise a page naming
    the error's code, message and field, with the status the API would give."""
    if isinstance(error, SignInRequired):
        if request.method == "GET":
            return RedirectResponse(f"/console/sign-in?next={request.url.path}", status_code=303)
        return html(request, "error.html", status_code=401, status=401, code="sign_in_required",
                    message="Your session has ended; sign in again.", param=None)
    if isinstance(error, FinloopError):
        status = status_for(error)
        return html(request, "error.html", status_code=status, status=status, code=error.code,
                    message=error.message, param=error.param)
    if isinstance(error, RequestValidationError):
        code, message, param = describe_validation_error(error.errors())
        return html(request, "error.html", status_code=400, status=400, code=code, message=message, param=param)
    assert isinstance(error, StarletteHTTPException)
    return html(request, "error.html", status_code=error.status_code, status=error.status_code,
                code="not_found" if error.status_code == 404 else "http_error", message=str(error.detail), param=None)
