"""Pure-ASGI middleware: request id + access log + last-resort error body, the body-size limit,
and HEAD answered as GET without its body."""

from __future__ import annotations

import json
import logging
import re
import time
import uuid
from typing import Any
from urllib.parse import unquote_plus

import anyio
from starlette._utils import get_route_path
from starlette.datastructures import Headers, MutableHeaders
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.core.digits import is_ascii_digits
from app.core.errors import AppError, ErrorCode
from app.core.logging import request_id_var

access_log = logging.getLogger("app.access")
error_log = logging.getLogger("app.error")

_REQUEST_ID_RE = re.compile(r"^[A-Za-z0-9._\-]{1,64}$")
_SECRET_NAMES = {"api_key", "x-api-key"}
# parameters that carry the user's data (a search term, filter values): logged by length only
_DATA_NAMES = {"search", "filter"}


def redact_query(query: str) -> str:
    """The query string with API keys and data (search terms, filter values) replaced, for
    logs. Names are compared as the app reads them (percent-decoded: `api%5Fkey=` is the key
    too), whatever their case."""
    parts = []
    for part in query.split("&"):
        name, eq, value = part.partition("=")
        key = unquote_plus(name).strip().lower()
        if eq and key in _SECRET_NAMES:
            part = f"{name}=[redacted]"
        elif eq and key in _DATA_NAMES and value:
            part = f"{name}=[{len(unquote_plus(value))} chars]"
        parts.append(part)
    return "&".join(parts)


# paths that are secrets themselves: a share page's path is its link's token (app/shares)
_SECRET_PATH_PREFIXES = ("/s/",)


def logged_path(scope: Scope) -> str:
    """The request's path for logs, with a secret path's secret part replaced."""
    path = str(scope.get("root_path", "")) + str(scope["path"])
    route = get_route_path(scope)
    for prefix in _SECRET_PATH_PREFIXES:
        if route.startswith(prefix):
            return path[: len(path) - len(route)] + prefix + "[redacted]"
    return path


def error_envelope(
    status: int, message: str, code: str, request_id: str | None, details: Any = None
) -> dict[str, Any]:
    body: dict[str, Any] = {"error": message, "code": code}
    if details:
        body["details"] = details
    if request_id:
        body["request_id"] = request_id
    return body


async def send_json(send: Send, status: int, body: dict[str, Any], headers: dict[str, str]) -> None:
    payload = json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()
    raw = [(b"content-type", b"application/json"), (b"content-length", str(len(payload)).encode())]
    raw += [(k.lower().encode(), v.encode()) for k, v in headers.items()]
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": payload})


class RequestContextMiddleware:
    """Gives every request an id (X-Request-ID, echoed back), logs one line per request, and turns
    any exception that escapes the app into a JSON 500 without a traceback in the body."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        incoming = Headers(scope=scope).get("x-request-id", "")
        request_id = incoming if _REQUEST_ID_RE.match(incoming) else uuid.uuid4().hex[:16]
        token = request_id_var.set(request_id)
        scope.setdefault("state", {})["request_id"] = request_id
        started = time.perf_counter()
        status = 500
        response_started = False

        async def send_with_id(message: Message) -> None:
            nonlocal status, response_started
            if message["type"] == "http.response.start":
                response_started = True
                status = message["status"]
                MutableHeaders(scope=message)["X-Request-ID"] = request_id
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        except Exception as exc:
            error_log.exception(
                "unhandled error on %s %s",
                scope["method"],
                logged_path(scope),
                extra={"request_id": request_id},
            )
            if not response_started:
                status = 500
                body = error_envelope(
                    500,
                    "Internal server error. Quote the request_id when reporting it.",
                    ErrorCode.INTERNAL_ERROR,
                    request_id,
                )
                if isinstance(exc, AppError):  # raised outside the router (rare)
                    status = exc.status_code
                    body = error_envelope(status, exc.message, exc.code, request_id, exc.details)
                await send_json(send, status, body, {"X-Request-ID": request_id})
        finally:
            level = logging.ERROR if status >= 500 else logging.INFO
            if access_log.isEnabledFor(level):  # (the line is not built when it is not written)
                duration_ms = (time.perf_counter() - started) * 1000
                query = scope.get("query_string", b"").decode("latin-1")
                path = logged_path(scope)
                if query:
                    path += "?" + redact_query(query)
                access_log.log(
                    level,
                    "%s %s %d %.1fms",
                    scope["method"],
                    path,
                    status,
                    duration_ms,
                    extra={
                        "request_id": request_id,
                        "method": scope["method"],
                        "path": path,
                        "status": status,
                        "duration_ms": round(duration_ms, 1),
                        "client": (scope.get("client") or ("", 0))[0],
                    },
                )
            request_id_var.reset(token)


class BodyTooLarge(StarletteHTTPException):
    """Raised from `receive` when a body passes its limit. A Starlette HTTPException so that
    FastAPI's body parsing re-raises it instead of turning it into a generic 400."""

    def __init__(self, limit: int, what: str) -> None:
        super().__init__(413, f"The {what} is larger than the limit of {limit:,} bytes.")


class BodyReadTimeout(StarletteHTTPException):
    """Raised from `receive` when the client sends nothing for BODY_READ_TIMEOUT seconds while
    the body is incomplete (a stalled or deliberately slow client holding a connection)."""

    def __init__(self, seconds: float) -> None:
        super().__init__(
            408, f"The request body was not received in time: nothing arrived for {seconds:g} s."
        )


def _limit_for(scope: Scope, upload_limit: int, json_limit: int) -> tuple[int, str]:
    content_type = Headers(scope=scope).get("content-type", "").lower()
    if content_type.startswith("multipart/form-data"):
        return upload_limit, "upload"
    return json_limit, "request body"


class BodySizeLimitMiddleware:
    """Counts request body bytes as they stream in (Content-Length is only a hint: a larger claim
    is refused at once, a smaller claim does not raise the limit). Uploads (multipart) get
    MAX_UPLOAD_BYTES, other bodies MAX_JSON_BYTES. Over the limit: a JSON 413.

    Also the body read timeout: uvicorn waits for body bytes forever, so each read of an
    incomplete body may take at most `read_timeout` seconds (BODY_READ_TIMEOUT); then a JSON
    408 and the connection is closed. Reads after the body is complete (a streaming response
    listening for a disconnect) are not timed."""

    def __init__(
        self, app: ASGIApp, *, upload_limit: int, json_limit: int, read_timeout: float = 0
    ) -> None:
        self.app = app
        self.upload_limit = upload_limit
        self.json_limit = json_limit
        self.read_timeout = read_timeout

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit, what = _limit_for(scope, self.upload_limit, self.json_limit)
        request_id = scope.get("state", {}).get("request_id")
        declared = Headers(scope=scope).get("content-length")
        if declared is not None and is_ascii_digits(declared) and int(declared) > limit:
            await send_json(send, 413, _too_large(limit, what, request_id), {"Connection": "close"})
            return

        received = 0
        tripped = False
        timed_out = False
        body_done = False
        response_started = False
        replaced = False
        timeout = self.read_timeout

        async def counting_receive() -> Message:
            nonlocal received, tripped, timed_out, body_done
            if body_done or timeout <= 0:
                message = await receive()
            else:
                try:
                    with anyio.fail_after(timeout):
                        message = await receive()
                except TimeoutError:
                    timed_out = True
                    raise BodyReadTimeout(timeout) from None
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                body_done = not message.get("more_body", False)
                if received > limit:
                    tripped = True
                    raise BodyTooLarge(limit, what)
            return message

        def refusal() -> tuple[int, dict[str, Any]]:
            if tripped:
                return 413, _too_large(limit, what, request_id)
            return 408, _timed_out(timeout, request_id)

        async def guarded_send(message: Message) -> None:
            # If the app caught the overflow and answered something else, answer 413 anyway.
            nonlocal response_started, replaced
            if replaced:
                return
            if message["type"] == "http.response.start":
                if tripped or timed_out:
                    status, body = refusal()
                    if message["status"] != status:
                        replaced = True
                        await send_json(send, status, body, {"Connection": "close"})
                        return
                    MutableHeaders(scope=message)["Connection"] = "close"
                response_started = True
            await send(message)

        try:
            await self.app(scope, counting_receive, guarded_send)
        except (BodyTooLarge, BodyReadTimeout):
            if response_started or replaced:
                raise
            status, body = refusal()
            await send_json(send, status, body, {"Connection": "close"})


def _too_large(limit: int, what: str, request_id: str | None) -> dict[str, Any]:
    exc = BodyTooLarge(limit, what)
    return error_envelope(413, exc.detail, ErrorCode.PAYLOAD_TOO_LARGE, request_id)


def _timed_out(seconds: float, request_id: str | None) -> dict[str, Any]:
    exc = BodyReadTimeout(seconds)
    return error_envelope(408, exc.detail, ErrorCode.REQUEST_TIMEOUT, request_id)


class HeadAsGetMiddleware:
    """HEAD is GET without the body (RFC 9110 9.3.2): the route answers as for GET (the same
    status, headers, authentication and limits), and the body is dropped here. The access log,
    outside this middleware, still says HEAD."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "HEAD":
            await self.app(scope, receive, send)
            return
        ended = False

        async def without_body(message: Message) -> None:
            nonlocal ended
            if message["type"] == "http.response.body":
                if not ended:
                    ended = True
                    await send({"type": "http.response.body", "body": b"", "more_body": False})
                return  # the rest of a streamed body is read and dropped
            await send(message)

        await self.app({**scope, "method": "GET"}, receive, without_body)
