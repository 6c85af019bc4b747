"""Routing helpers.

The contract writes every API path with a trailing slash and requires the slash-less form to work
too, without a redirect (a 307 on a POST breaks many clients). Routes are declared once, with the
slash; `TrailingSlashMiddleware` adds the slash to a request path under the API prefix that lacks
it, before routing. One mechanism for every route, and OpenAPI shows each path once.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Coroutine
from decimal import Decimal
from typing import Any

from fastapi import Request, Response
from fastapi.routing import APIRoute
from starlette._utils import get_route_path
from starlette.types import ASGIApp, Receive, Scope, Send

API_PREFIX = "/api/v1"


class TrailingSlashMiddleware:
    def __init__(self, app: ASGIApp, prefix: str = API_PREFIX) -> None:
        self.app = app
        self.prefix = prefix

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            route_path = get_route_path(scope)
            if (
                route_path.startswith(self.prefix)
                and not route_path.endswith("/")
                and (len(route_path) == len(self.prefix) or route_path[len(self.prefix)] == "/")
            ):
                scope = dict(scope)
                scope["path"] = scope["path"] + "/"
                raw_path = scope.get("raw_path")
                if raw_path is not None:
                    scope["raw_path"] = raw_path + b"/"
        await self.app(scope, receive, send)


class JSONDecimalRequest(Request):
    """Parses JSON bodies with numbers that have a fraction or exponent as `Decimal`, never as a
    binary float (`45200.50` must not become 45200.499999...), and refuses NaN/Infinity."""

    async def json(self) -> Any:
        if not hasattr(self, "_json"):
            self._json = parse_json(await self.body())
        return self._json


def _no_constants(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def parse_json(body: bytes) -> Any:
    try:
        return json.loads(body, parse_float=Decimal, parse_constant=_no_constants)
    except json.JSONDecodeError:
        raise
    except RecursionError:
        raise json.JSONDecodeError("JSON nested too deeply", "", 0) from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise json.JSONDecodeError(str(exc), "", 0) from None


class ApiRoute(APIRoute):
    """Route class for every API route: decimal-exact JSON, and optional hooks (authentication)
    that run before the body is read, so a missing key is a 401 even when the body is bad."""

    before_body: tuple[Callable[[Request], Awaitable[None]], ...] = ()

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()
        hooks = self.before_body

        async def route_handler(request: Request) -> Response:
            request = JSONDecimalRequest(request.scope, request.receive)
            for hook in hooks:
                await hook(request)
            return await handler(request)

        return route_handler
