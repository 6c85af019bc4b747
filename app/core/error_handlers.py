"""Every error the service returns goes through here and comes out as
`{"error": message, "code": CODE, "details"?: [...], "request_id": ...}`.
"""

from __future__ import annotations

import errno
import logging
import math
import re
from collections.abc import Awaitable, Callable
from decimal import Decimal
from typing import Any

import asyncpg
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from starlette._utils import get_route_path
from starlette.exceptions import HTTPException as StarletteHTTPException

from app.core.errors import AppError, ErrorCode
from app.core.jsonexact import ExactJSONResponse
from app.core.middleware import error_envelope
from app.core.routing import API_PREFIX, allowed_methods

log = logging.getLogger("app.error")

_HTTP_METHODS = {"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"}

Authenticator = Callable[[Request], Awaitable[None]]


def _request_id(request: Request) -> str | None:
    rid = request.scope.get("state", {}).get("request_id")
    return rid if isinstance(rid, str) else None


def render(
    request: Request,
    status: int,
    message: str,
    code: str,
    details: Any = None,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    body = error_envelope(
        status, _printable(message), code, _request_id(request), _printable(details)
    )
    return ExactJSONResponse(body, status_code=status, headers=headers)


def _printable(value: Any) -> Any:
    """Error bodies echo client input: text that cannot be encoded (lone surrogates) is escaped,
    numbers stay exact (a Decimal as its digits), anything else becomes its text."""
    if isinstance(value, str):
        return value.encode("utf-8", "backslashreplace").decode("utf-8")
    if isinstance(value, (list, tuple)):
        return [_printable(v) for v in value]
    if isinstance(value, dict):
        return {_printable(str(k)): _printable(v) for k, v in value.items()}
    if value is None or isinstance(value, (bool, int)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if isinstance(value, Decimal):
        return value if value.is_finite() else str(value)
    return _printable(str(value))


async def app_error_handler(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, AppError)
    return render(request, exc.status_code, exc.message, exc.code, exc.details, exc.headers)


def _location(loc: tuple[Any, ...]) -> str:
    parts = [str(p) for p in loc]
    if parts and parts[0] in {"body", "query", "path", "header", "form"}:
        where, rest = parts[0], parts[1:]
        return ".".join(rest) if rest else where
    return ".".join(parts)


def _is_json(content_type: str) -> bool:
    main = content_type.split(";")[0].strip().lower()
    return main == "application/json" or main.endswith("+json")


async def validation_error_handler(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = list(exc.errors())
    content_type = request.headers.get("content-type", "")
    if any(e.get("type") == "json_invalid" for e in errors):
        reason = next(
            (e.get("ctx", {}).get("error") for e in errors if e.get("type") == "json_invalid"), ""
        )
        return render(
            request,
            400,
            f"The request body is not valid JSON: {reason}." if reason else "Malformed JSON body.",
            ErrorCode.MALFORMED_JSON,
        )
    body_errors = [e for e in errors if e.get("loc", ("",))[0] == "body"]
    if body_errors and content_type.lower().startswith("multipart/") is False:
        body_inputs = [e.get("input") for e in body_errors]
        if any(isinstance(i, bytes) for i in body_inputs) or (
            request.method in {"POST", "PATCH", "PUT"}
            and content_type
            and not _is_json(content_type)
            and not content_type.lower().startswith("application/x-www-form-urlencoded")
        ):
            return render(
                request,
                400,
                "Send the request body as JSON with the header Content-Type: application/json.",
                ErrorCode.UNSUPPORTED_MEDIA_TYPE,
            )
    details = []
    for e in errors:
        loc = tuple(e.get("loc", ()))
        message = str(e.get("msg", "invalid"))
        if message.startswith("Value error, "):
            message = message[len("Value error, ") :]
        details.append({"field": _location(loc), "message": message})
    if len(details) == 1:
        summary = f"Invalid request: {details[0]['field']}: {details[0]['message']}"
    else:
        summary = f"Invalid request: {len(details)} problems (see details)."
    return render(request, 400, summary, ErrorCode.VALIDATION_ERROR, details)


def _allowed_methods(request: Request) -> str:
    """Every method routed for this path, by its most specific routes (a fixed segment outranks
    a parameter: `/data-items/create-from-file/` allows POST, not the item route's methods)."""
    methods = {m for m in allowed_methods(request.app, get_route_path(request.scope))}
    if "GET" in methods:
        methods.add("HEAD")  # answered as GET without the body (HeadAsGetMiddleware)
    return ", ".join(sorted(m for m in methods if m in _HTTP_METHODS))


def make_http_error_handler(
    authenticate: Authenticator | None,
) -> Callable[[Request, Exception], Awaitable[JSONResponse]]:
    async def http_error_handler(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, StarletteHTTPException)
        status = exc.status_code
        path = request.url.path
        if (
            status in (404, 405)
            and authenticate is not None
            and path.startswith(request.scope.get("root_path", "") + API_PREFIX)
        ):
            # The API key is checked before anything else, unknown paths included.
            try:
                await authenticate(request)
            except AppError as auth_error:
                return await app_error_handler(request, auth_error)
        headers = dict(exc.headers or {})
        if status == 404:
            return render(request, 404, f"Not found: {path}", ErrorCode.NOT_FOUND, None, headers)
        if status == 405:
            allowed = _allowed_methods(request) or headers.get("allow") or ""
            if allowed:
                headers["Allow"] = allowed
            message = f"Method {request.method} is not allowed on {path}."
            if allowed:
                message += f" Allowed: {allowed}."
            return render(request, 405, message, ErrorCode.METHOD_NOT_ALLOWED, None, headers)
        if status == 413:
            return render(request, 413, str(exc.detail), ErrorCode.PAYLOAD_TOO_LARGE, None, headers)
        if status == 408:
            headers["Connection"] = "close"
            return render(request, 408, str(exc.detail), ErrorCode.REQUEST_TIMEOUT, None, headers)
        if 400 <= status < 500:
            code = ErrorCode.VALIDATION_ERROR if status == 400 else ErrorCode.NOT_FOUND
            detail = exc.detail if isinstance(exc.detail, str) else "Bad request."
            if detail == "There was an error parsing the body":
                detail = "The request body could not be read; check its format and Content-Type."
            return render(request, status, detail, code, None, headers)
        log.error("HTTP %s raised: %s", status, exc.detail)
        return render(request, status, "Internal server error.", ErrorCode.INTERNAL_ERROR)

    return http_error_handler


_CONNECTION_ERRNOS = {
    errno.ENOENT,  # the server's unix socket is gone (it is down)
    errno.ECONNREFUSED,
    errno.ECONNRESET,
    errno.ECONNABORTED,
    errno.EPIPE,
    errno.ETIMEDOUT,
    errno.EHOSTUNREACH,
    errno.ENETUNREACH,
}
_CONNECTION_ERROR_NAMES = {
    "ConnectionDoesNotExistError",
    "CannotConnectNowError",
    "ConnectionFailureError",
    "AdminShutdownError",
    "InterfaceError",
    "InternalClientError",
}


def _chain(exc: BaseException) -> list[BaseException]:
    seen: list[BaseException] = []
    todo: list[BaseException | None] = [exc]
    while todo:
        current = todo.pop()
        if current is None or any(current is s for s in seen) or len(seen) > 20:
            continue
        seen.append(current)
        todo += [current.__cause__, current.__context__, getattr(current, "orig", None)]
    return seen


def is_connection_problem(exc: BaseException) -> bool:
    """The database cannot be reached (down, restarting, network), as opposed to a bug."""
    for item in _chain(exc):
        if isinstance(item, (OperationalError, InterfaceError)):
            return True
        if isinstance(item, DBAPIError) and item.connection_invalidated:
            return True
        if isinstance(item, (ConnectionError, TimeoutError)):
            return True
        if isinstance(item, OSError) and item.errno in _CONNECTION_ERRNOS:
            return True
        if type(item).__name__ in _CONNECTION_ERROR_NAMES:
            return True
    return False


_RETRYABLE_SQLSTATES = {"40001", "40P01", "55P03"}  # serialization failure, deadlock, lock timeout


def _sqlstate(exc: BaseException) -> str | None:
    orig = getattr(exc, "orig", None)
    for candidate in (orig, getattr(orig, "__cause__", None), exc.__cause__, exc):
        state = getattr(candidate, "sqlstate", None) or getattr(candidate, "pgcode", None)
        if isinstance(state, str):
            return state
    return None


_QUOTED = re.compile(r"\"[^\"]*\"|'[^']*'|\([^()]*\)=\([^()]*\)")


def redacted(exc: BaseException) -> str:
    """A database error for the log: its class, SQLSTATE, the database's message with every
    quoted part (where PostgreSQL puts values: `invalid input syntax for type numeric: "abc"`,
    `Key (x)=(…)`) replaced, and the statement without its parameters. Never a cell value, a
    filter value, an API key or a webhook secret."""
    orig = getattr(exc, "orig", None) or exc
    message = (str(orig).strip().splitlines() or [""])[0]
    message = _QUOTED.sub("[…]", message)[:300]
    statement = getattr(exc, "statement", None)
    where = f" in: {' '.join(str(statement).split())[:300]}" if statement else ""
    return f"{type(orig).__name__} [{_sqlstate(exc) or '-'}] {message}{where}"


async def pool_timeout_handler(request: Request, exc: Exception) -> JSONResponse:
    """No pooled connection came free within DB_POOL_TIMEOUT: the service is saturated, not
    broken."""
    log.warning("no database connection free: %s", type(exc).__name__)
    return render(
        request,
        503,
        "The service is busy (no database connection came free in time); retry shortly.",
        ErrorCode.SERVICE_BUSY,
        headers={"Retry-After": "2"},
    )


async def database_error_handler(request: Request, exc: Exception) -> JSONResponse:
    if _sqlstate(exc) == "57014":  # query_canceled: a statement ran past its statement_timeout
        log.warning("statement timed out: %s", redacted(exc))
        return render(
            request,
            503,
            "The request took longer than the database allows for one statement "
            "(STATEMENT_TIMEOUT_SECONDS); nothing was written. Retry it, or narrow it.",
            ErrorCode.SERVICE_BUSY,
            headers={"Retry-After": "5"},
        )
    if _sqlstate(exc) in _RETRYABLE_SQLSTATES:
        log.warning("transient conflict between concurrent writes: %s", redacted(exc))
        return render(
            request,
            503,
            "A concurrent change to the same data conflicted with this request; nothing was "
            "written. Retry it.",
            ErrorCode.CONCURRENT_CONFLICT,
            headers={"Retry-After": "1"},
        )
    if is_connection_problem(exc):
        log.warning("database unavailable: %s", redacted(exc))
        return render(
            request,
            503,
            "The database is unavailable; retry shortly.",
            ErrorCode.DATABASE_UNAVAILABLE,
            headers={"Retry-After": "2"},
        )
    log.error("database error: %s", redacted(exc))
    return render(
        request,
        500,
        "Internal server error. Quote the request_id when reporting it.",
        ErrorCode.INTERNAL_ERROR,
    )


def install(app: FastAPI, *, authenticate: Authenticator | None) -> None:
    app.add_exception_handler(AppError, app_error_handler)
    app.add_exception_handler(RequestValidationError, validation_error_handler)
    app.add_exception_handler(StarletteHTTPException, make_http_error_handler(authenticate))
    app.add_exception_handler(DBAPIError, database_error_handler)
    # the driver's own errors: binary COPY goes to asyncpg directly, past SQLAlchemy
    app.add_exception_handler(asyncpg.PostgresError, database_error_handler)
    app.add_exception_handler(PoolTimeout, pool_timeout_handler)
    app.add_exception_handler(ConnectionError, database_error_handler)
    app.add_exception_handler(OSError, database_error_handler)
