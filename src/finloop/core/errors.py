"""Typed error hierarchy with stable codes.

Only the web layer maps these to HTTP statuses; services raise them and never know about HTTP.
A code, once published, never changes meaning.
"""

from __future__ import annotations

from typing import Any


class FinloopError(Exception):
    """Base of every error finloop raises on purpose."""

    category = "api_error"
    code = "internal_error"

    def __init__(self, message: str, *, code: str | None = None, param: str | None = None,
                 details: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        self.param = param
        self.details = details or {}


class InvalidRequest(FinloopError):
    category = "invalid_request_error"
    code = "invalid_request"


class NotFound(FinloopError):
    category = "invalid_request_error"
    code = "resource_missing"


class Conflict(FinloopError):
    category = "invalid_request_error"
    code = "conflict"


class Unauthenticated(FinloopError):
    category = "authentication_error"
    code = "unauthenticated"


class PermissionDenied(FinloopError):
    category = "permission_error"
    code = "permission_denied"


class LimitExceeded(FinloopError):
    category = "invalid_request_error"
    code = "limit_exceeded"


class InvariantViolation(FinloopError):
    """A rule of the books would break (unbalanced entry, closed period, frozen account)."""

    category = "invalid_request_error"
    code = "invariant_violation"


class ExternalServiceError(FinloopError):
    category = "api_error"
    code = "external_service_error"

    def __init__(self, message: str, *, retryable: bool, code: str | None = None,
                 param: str | None = None, details: dict[str, Any] | None = None) -> None:
        super().__init__(message, code=code, param=param, details=details)
        self.retryable = retryable
