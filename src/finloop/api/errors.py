"""One error body for every failure: ``{"error": {"type", "code", "message", "param"}}``.

Domain errors map to a status by their category; request validation errors become 400s whose code
names the problem (``invalid_amount``, ``unknown_currency``, ``malformed_json`` ...) and whose param
is the dotted path of the field. An unexpected exception is logged with its request id and answered
with a 500 in the same shape, without internals. The OpenAPI spec documents that body for each error
status of every ``/v1`` operation, so clients (and schemathesis) can hold us to it.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from sqlalchemy.exc import DataError, IntegrityError, OperationalError
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
    # Only the first element says where the value was; a field may itself be called "body" or "path".
    if loc and loc[0] in ("body", "query", "path", "header", "cookie"):
        loc = loc[1:]
    parts = [str(p) for p in loc]
    text = ""
    for part in parts:
        text += f"[{part}]" if part.isdigit() else (f".{part}" if text else part)
    return text or None


def describe_validation_error(errors: Sequence[Any]) -> tuple[str, str, str | None]:
    """(code, message, param) of the first of pydantic's errors, as the API answers them: the one reading of a
    validation error, shared by the API's 400 and the console's error page."""
    first = errors[0] if errors else {}
    kind = str(first.get("type", "invalid"))
    code = _CODE_BY_PYDANTIC_TYPE.get(kind, kind if kind.isidentifier() else "invalid_request")
    loc = tuple(first.get("loc", ()))
    param = _param(loc)
    if kind == "json_invalid":
        message, param = "The request body is not valid JSON.", None
    elif kind == "missing" and loc == ("body",):
        message = "The request body is required."
    else:
        message = str(first.get("msg", "Invalid request."))
        if message.startswith("Value error, "):
            message = message[len("Value error, "):]
        if param:
            message = f"{param}: {message}"
    return code, message, param


def validation_error_response(exc: RequestValidationError) -> JSONResponse:
    code, message, param = describe_validation_error(exc.errors())
    return JSONResponse(status_code=400, content=error_body("invalid_request_error", code, message, param))


ERROR_SCHEMA: dict[str, Any] = {
    "title": "Error",
    "type": "object",
    "required": ["error"],
    "additionalProperties": False,
    "properties": {"error": {
        "type": "object",
        "required": ["type", "code", "message", "param"],
        "additionalProperties": False,
        "properties": {
            "type": {"type": "string", "enum": ["invalid_request_error", "authentication_error", "permission_error",
                                               "api_error"]},
            "code": {"type": "string", "description": "Stable: a code never changes meaning."},
            "message": {"type": "string"},
            "param": {"anyOf": [{"type": "string"}, {"type": "null"}],
                      "description": "The request field at fault, as a dotted path such as transfers[1].amount."},
            "details": {"type": "object"},
        },
    }},
}

ERROR_RESPONSES = {
    "400": "Invalid request: malformed JSON, a missing or unknown field, or a value out of range.",
    "401": "Missing, invalid or revoked credentials.",
    "403": "The caller's role may not do this.",
    "404": "No such object for this tenant (another tenant's objects are not found either).",
    "409": "Conflicts with the current state, such as a hold already posted or an Idempotency-Key in use.",
    "422": "Breaks a rule of the books, such as insufficient funds, a frozen account or a closed period.",
}


def document(app: FastAPI) -> None:
    """Make the OpenAPI spec tell the truth about failures: every ``/v1`` operation answers its errors in
    the one error body, where FastAPI would advertise its own 422 shape and no other error."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        spec = build()
        schemas = spec.setdefault("components", {}).setdefault("schemas", {})
        schemas["Error"] = ERROR_SCHEMA
        for path, item in spec.get("paths", {}).items():
            if not path.startswith("/v1/"):
                continue
            for operation in item.values():
                if not isinstance(operation, dict) or "responses" not in operation:
                    continue
                for status, description in ERROR_RESPONSES.items():
                    operation["responses"][status] = {"description": description, "content": {
                        "application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}
        if "#/components/schemas/HTTPValidationError" not in json.dumps(spec["paths"]):
            schemas.pop("HTTPValidationError", None)
            schemas.pop("ValidationError", None)
        app.openapi_schema = spec
        return spec

    app.openapi = openapi  # type: ignore[method-assign]


def install(app: FastAPI) -> None:
    document(app)

    def console(request: Request, exc: Exception) -> Response | None:
        """The console's pages answer errors in HTML (its ``render_error``), the API in JSON."""
        renderer = getattr(request.app.state, "console_errors", None)
        path = request.url.path
        if renderer is not None and (path == "/console" or path.startswith("/console/")):
            response: Response = renderer(request, exc)
            return response
        return None

    @app.exception_handler(FinloopError)
    async def _finloop_error(request: Request, exc: FinloopError) -> Response:
        if (page := console(request, exc)) is not None:
            return page
        status = status_for(exc)
        return JSONResponse(status_code=status,
                            content=error_body(exc.category, exc.code, exc.message, exc.param, exc.details))

    @app.exception_handler(RequestValidationError)
    async def _validation_error(request: Request, exc: RequestValidationError) -> Response:
        if (page := console(request, exc)) is not None:
            return page
        return validation_error_response(exc)

    @app.exception_handler(ReplayResponse)
    async def _replay(_request: Request, exc: ReplayResponse) -> Response:
        return Response(content=exc.body, status_code=exc.status_code, media_type="application/json",
                        headers={"Idempotent-Replayed": "true"})

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> Response:
        if (page := console(request, exc)) is not None:
            return page
        # FastAPI raises a bare 400 when it cannot decode the body at all (bad UTF-8, a number of
        # thousands of digits, nesting past the parser's depth): to a client that is malformed JSON.
        code = {400: "malformed_json", 404: "not_found", 405: "method_not_allowed",
                401: "unauthenticated"}.get(exc.status_code, "http_error")
        message = "The request body is not valid JSON." if exc.status_code == 400 else str(exc.detail)
        return JSONResponse(status_code=exc.status_code, headers=getattr(exc, "headers", None),
                            content=error_body("invalid_request_error", code, message))

    @app.exception_handler(IntegrityError)
    async def _integrity(request: Request, exc: IntegrityError) -> JSONResponse:
        # A unique or check constraint caught a race the service checks could not see.
        log.warning("integrity_conflict", path=request.url.path, error=str(exc.orig)[:200])
        return JSONResponse(status_code=409, content=error_body(
            "invalid_request_error", "conflict", "The request conflicts with a concurrent change; retry it."))

    @app.exception_handler(DataError)
    async def _data_error(request: Request, exc: DataError) -> JSONResponse:
        # A value the database refuses (a NUL byte, an out-of-range number) that validation let through.
        log.warning("data_error", path=request.url.path, error=type(exc.orig).__name__)
        return JSONResponse(status_code=400, content=error_body(
            "invalid_request_error", "invalid_value", "A value in the request cannot be stored."))

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
