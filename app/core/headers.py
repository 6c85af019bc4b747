"""Response headers that do not belong to any one route: security headers (every response gets
`X-Content-Type-Options: nosniff`; the docs pages, their assets and the OpenAPI document also get
a strict Content-Security-Policy, no framing and no referrer), and headers a request asked for
along the way (`scope["state"]["response_headers"]`, e.g. the rate-limit headers set during
authentication). Pure ASGI, outermost, so error responses get them too."""

from __future__ import annotations

from starlette._utils import get_route_path
from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

DOCS_PATHS = ("/docs", "/redoc", "/docs-static/", "/openapi.json")

DOCS_HEADERS = {
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Content-Security-Policy": (
        "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; "
        "script-src 'self' 'unsafe-inline'; worker-src 'self' blob:; frame-ancestors 'none'"
    ),
}

STATE_KEY = "response_headers"


def add_response_headers(state: dict[str, object], headers: dict[str, str]) -> None:
    """Ask for headers on this request's response (whatever its status)."""
    pending = state.setdefault(STATE_KEY, {})
    assert isinstance(pending, dict)
    pending.update(headers)


class ResponseHeadersMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        state = scope.setdefault("state", {})
        docs = get_route_path(scope).startswith(DOCS_PATHS)

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                headers.setdefault("X-Content-Type-Options", "nosniff")
                if docs:
                    for name, value in DOCS_HEADERS.items():
                        headers.setdefault(name, value)
                for name, value in state.get(STATE_KEY, {}).items():
                    headers[name] = value
            await send(message)

        await self.app(scope, receive, send_with_headers)
