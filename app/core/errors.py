"""One error type for the whole service; the handler in `error_handlers` renders it as JSON."""

from __future__ import annotations

from enum import StrEnum
from typing import Any


class ErrorCode(StrEnum):
    VALIDATION_ERROR = "VALIDATION_ERROR"
    MALFORMED_JSON = "MALFORMED_JSON"
    UNSUPPORTED_MEDIA_TYPE = "UNSUPPORTED_MEDIA_TYPE"
    UNAUTHORIZED = "UNAUTHORIZED"
    FORBIDDEN = "FORBIDDEN"
    NOT_FOUND = "NOT_FOUND"
    METHOD_NOT_ALLOWED = "METHOD_NOT_ALLOWED"
    DUPLICATE = "DUPLICATE"
    CONVERSION_FAILED = "CONVERSION_FAILED"
    PAYLOAD_TOO_LARGE = "PAYLOAD_TOO_LARGE"
    REQUEST_TIMEOUT = "REQUEST_TIMEOUT"
    RATE_LIMITED = "RATE_LIMITED"
    INVALID_FILE = "INVALID_FILE"
    DATABASE_UNAVAILABLE = "DATABASE_UNAVAILABLE"
    CONCURRENT_CONFLICT = "CONCURRENT_CONFLICT"
    SERVICE_BUSY = "SERVICE_BUSY"
    INTERNAL_ERROR = "INTERNAL_ERROR"
    MODEL_NOT_CONFIGURED = "MODEL_NOT_CONFIGURED"
    MODEL_ERROR = "MODEL_ERROR"
    MODEL_TIMEOUT = "MODEL_TIMEOUT"


class AppError(Exception):
    """An error with a status code, a stable code and a message meant for the API client."""

    status_code = 500
    code = ErrorCode.INTERNAL_ERROR

    def __init__(
        self,
        message: str,
        *,
        details: list[dict[str, Any]] | None = None,
        code: ErrorCode | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.details = details
        self.headers = headers
        if code is not None:
            self.code = code


class BadRequest(AppError):
    status_code = 400
    code = ErrorCode.VALIDATION_ERROR


class Unauthorized(AppError):
    status_code = 401
    code = ErrorCode.UNAUTHORIZED


class Forbidden(AppError):
    """The key is valid but may not do this (a scope it lacks, an item it is not limited to)."""

    status_code = 403
    code = ErrorCode.FORBIDDEN


class NotFound(AppError):
    status_code = 404
    code = ErrorCode.NOT_FOUND


class RateLimited(AppError):
    status_code = 429
    code = ErrorCode.RATE_LIMITED


class ServiceUnavailable(AppError):
    status_code = 503
    code = ErrorCode.DATABASE_UNAVAILABLE


class ModelNotConfigured(AppError):
    """Questions in plain language need a model endpoint the operator has not set (501)."""

    status_code = 501
    code = ErrorCode.MODEL_NOT_CONFIGURED


class ModelError(AppError):
    """The model endpoint failed or answered something unusable (502: the upstream's fault)."""

    status_code = 502
    code = ErrorCode.MODEL_ERROR


class ModelTimeout(AppError):
    """The model did not answer in time (503 with Retry-After)."""

    status_code = 503
    code = ErrorCode.MODEL_TIMEOUT
