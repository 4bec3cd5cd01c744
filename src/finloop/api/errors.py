"""One error body for every failure: ``{"error": {"type", "code", "message", "param"}}``.

Domain errors map to a status by their category; request validation errors become 400s whose code
names the problem (``invalid_amount``, ``unknown_currency``, ``malformed_json`` ...) and whose param
is the dotted path of the field. An unexpected exception is logged with its request id and answered
with a 500 in the same shape, without internals.
"""

from __future__ import annotations

from typing import Any

import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from sqlalchemy.exc import IntegrityError, OperationalError
from starlette.exceptions import HTTPException as StarletteHTTPException

from finloop.core.errors import (
    Conflict,
    ExternalServiceError,
    FinloopError,
    InvalidRequest,
    InvariantViolation,
    LimitExceeded,
    NotFound,
    PermissionDenied,
    Unauthenticated,
)

log = structlog.get_logger("finloop.api")

STATUS_BY_ERROR: list[tuple[type[FinloopError], int]] = [
    (Unauthenticated, 401),
    (PermissionDenied, 403),
    (NotFound, 404),
    (Conflict, 409),
    (InvariantViolation, 422),
    (LimitExceeded, 422),
    (InvalidRequest, 400),
    (ExternalServiceError, 502),
]


class ReplayResponse(Exception):
    """Raised to answer with a response stored under an Idempotency-Key."""

    def __init__(self, status_code: int, body: str) -> None:
        super().__init__("idempotent replay")
        self.status_code = status_code
        self.body = body


def error_body(type_: str, code: str, message: str, param: str | None = None,
               details: dict[str, Any] | None = None) -> dict[str, Any]:
    error: dict[str, Any] = {"type": type_, "code": code, "message": message, "param": param}
    if details:
        error["details"] = details
    return {"error": error}


def status_for(error: FinloopError) -> int:
    for kind, status in STATUS_BY_ERROR:
        if isinstance(error, kind):
            return status
    return 500


_CODE_BY_PYDANTIC_TYPE = {
    "json_invalid": "malformed_json",
    "missing": "missing_field",
    "extra_forbidden": "unknown_field",
    "string_too_long": "too_long",
    "string_too_short": "too_short",
    "string_pattern_mismatch": "invalid_format",
    "enum": "invalid_choice",
    "literal_error": "invalid_choice",
    "datetime_from_date_parsing": "invalid_datetime",
    "datetime_parsing": "invalid_datetime",
    "datetime_type": "invalid_datetime",
    "timezone_aware": "invalid_datetime",
    "date_from_datetime_parsing": "invalid_date",
    "date_parsing": "invalid_date",
    "model_attributes_type": "invalid_body",
    "dict_type": "invalid_body",
    "list_type": "invalid_list",
    "too_short": "too_few_items",
    "too_long": "too_many_items",
}


def _param(loc: tuple[Any, ...]) -> str | None:
    parts = [str(p) for p in loc if p not in ("body", "query", "path", "header")]
    text = ""
    for part in parts:
        text += f"[{part}]" if part.isdigit() else (f".{part}" if text else part)
    return text or None


def validation_error_response(exc: RequestValidationError) -> JSONResponse:
    first = exc.errors()[0]
    kind = str(first.get("type", "invalid"))
    code = _CODE_BY_PYDANTIC_TYPE.get(kind, kind if kind.isidentifier() else "invalid_request")
    loc = tuple(first.get("loc", ()))
    param = _param(loc)
    if kind == "json_invalid":
        message, param = "The request body is not valid JSON.", None
    else:
        message = str(first.get("msg", "Invalid request."))
        if message.startswith("Value error, "):
            message = message[len("Value error, "):]
        if param:
            message = f"{param}: {message}"
    return JSONResponse(status_code=400, content=error_body("invalid_request_error", code, message, param))


def install(app: FastAPI) -> None:
    @app.exception_handler(FinloopError)
    async def _finloop_error(_request: Request, exc: FinloopError) -> JSONResponse:
        status = status_for(exc)
        return JSONResponse(status_code=status,
                            content=error_body(exc.category, exc.code, exc.message, exc.param, exc.details))

    @app.exception_handler(RequestValidationError)
    async def _validation_error(_request: Request, exc: RequestValidationError) -> JSONResponse:
        return validation_error_response(exc)

    @app.exception_handler(ReplayResponse)
    async def _replay(_request: Request, exc: ReplayResponse) -> Response:
        return Response(content=exc.body, status_code=exc.status_code, media_type="application/json",
                        headers={"Idempotent-Replayed": "true"})

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(_request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = {404: "not_found", 405: "method_not_allowed", 401: "unauthenticated"}.get(exc.status_code,
                                                                                        "http_error")
        return JSONResponse(status_code=exc.status_code, headers=getattr(exc, "headers", None),
                            content=error_body("invalid_request_error", code, str(exc.detail)))

    @app.exception_handler(IntegrityError)
    async def _integrity(request: Request, exc: IntegrityError) -> JSONResponse:
        # A unique or check constraint caught a race the service checks could not see.
        log.warning("integrity_conflict", path=request.url.path, error=str(exc.orig)[:200])
        return JSONResponse(status_code=409, content=error_body(
            "invalid_request_error", "conflict", "The request conflicts with a concurrent change; retry it."))

    @app.exception_handler(OperationalError)
    async def _operational(request: Request, exc: OperationalError) -> JSONResponse:
        log.error("database_unavailable", path=request.url.path, error=str(exc.orig)[:200])
        return JSONResponse(status_code=503, content=error_body(
            "api_error", "database_unavailable", "The database is busy or unreachable; retry shortly."))

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled_error", path=request.url.path)
        return JSONResponse(status_code=500, content=error_body(
            "api_error", "internal_error", "Something went wrong on our side; it has been logged."))
