"""Routing helpers.

The contract writes every API path with a trailing slash and requires the slash-less form to work
too, without a redirect (a 307 on a POST breaks many clients). Routes are declared once, with the
slash; `TrailingSlashMiddleware` adds the slash to a request path under the API prefix that lacks
it, before routing. One mechanism for every route, and OpenAPI shows each path once.

A fixed path segment outranks a parameter in the same place: `/data-items/create-from-file/` also
matches `/data-items/{item_id}/`, and Starlette takes the first route that matches path *and*
method, so `GET /data-items/create-from-file/` used to reach the item route (a 400 on `item_id`).
`ApiRoute.matches` declines a path that a more specific route also matches, so the fixed route
answers, with a 405 for a method it does not have; `allowed_methods` names the methods of the
most specific routes only (the `Allow` header).
"""

from __future__ import annotations

import json
import re
import weakref
from collections.abc import Awaitable, Callable, Coroutine, Iterable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import anyio
from fastapi import Request, Response
from fastapi.routing import APIRoute, APIRouter, iter_route_contexts
from starlette._utils import get_route_path
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match, compile_path
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


# Bounds on what a JSON body may hold, so that parsing it stays bounded in memory and everything
# downstream (validation, storage, rendering) stays within Python's recursion limit. A body of
# MAX_JSON_BYTES (32 MiB) of `[1.5,1.5,…]` or `[{},{},…]` would otherwise become ~1 GB of Python
# objects; 2,000,000 items (10,000 bulk rows of 200 cells) cost at most ~250 MB.
MAX_JSON_ITEMS = 2_000_000
MAX_JSON_DEPTH = 64
THREAD_PARSE_BYTES = 256 * 1024
_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"')


class JSONDecimalRequest(Request):
    """Parses JSON bodies with numbers that have a fraction or exponent as `Decimal`, never as a
    binary float (`45200.50` must not become 45200.499999...), and refuses NaN/Infinity, bodies
    nested deeper than MAX_JSON_DEPTH (400) and bodies of more than MAX_JSON_ITEMS items (413)."""

    async def json(self) -> Any:
        if not hasattr(self, "_json"):
            body = await self.body()
            if json_items(body) > MAX_JSON_ITEMS:
                raise StarletteHTTPException(
                    413,
                    f"The JSON body holds more than {MAX_JSON_ITEMS:,} values (array items and "
                    "object members); split it into several requests.",
                )
            if len(body) < THREAD_PARSE_BYTES:
                self._json = parse_json(body)
            else:  # a big body is parsed off the event loop, which keeps serving meanwhile
                self._json = await anyio.to_thread.run_sync(parse_json, body)
        return self._json


def json_items(body: bytes) -> int:
    """How many array elements and object members a JSON text holds, at most: commas and
    brackets outside strings (the exact count is only taken when the quick one, which also
    counts commas inside strings, is over the limit)."""
    quick = body.count(b",") + body.count(b"[") + body.count(b"{")
    if quick <= MAX_JSON_ITEMS:
        return quick
    bare = _STRING.sub(b"", body)
    return bare.count(b",") + bare.count(b"[") + bare.count(b"{")


def _decimal(text: str) -> Decimal:
    """`Decimal`, called through Python code: the json scanner and Decimal are C and never let
    go of the GIL by themselves, so a body of two million decimals parsed in a worker thread
    stalled the event loop for its whole parse (~0.7 s); a Python frame per number lets the
    interpreter hand the GIL over every 5 ms."""
    return Decimal(text)


def _no_constants(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def parse_json(body: bytes) -> Any:
    try:
        value = json.loads(body, parse_float=_decimal, parse_constant=_no_constants)
    except json.JSONDecodeError:
        raise
    except RecursionError:
        raise json.JSONDecodeError(_too_deep(), "", 0) from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise json.JSONDecodeError(str(exc), "", 0) from None
    if json_depth(value) > MAX_JSON_DEPTH:
        raise json.JSONDecodeError(_too_deep(), "", 0)
    return value


def _too_deep() -> str:
    return f"JSON nested more than {MAX_JSON_DEPTH} levels deep"


def json_depth(value: Any) -> int:
    """Nesting depth of a parsed JSON value (a scalar is 0), level by level without recursion;
    stops counting past MAX_JSON_DEPTH. Empty containers end a branch without being visited
    (a million `{}` cost one pass over their list)."""
    level = [value] if isinstance(value, (dict, list)) else []
    depth = 0
    while level and depth <= MAX_JSON_DEPTH:
        depth += 1
        deeper: list[Any] = []
        for node in level:
            children = node.values() if isinstance(node, dict) else node
            deeper += [c for c in children if c and isinstance(c, (dict, list))]
        if not deeper and any(
            isinstance(c, (dict, list))
            for node in level
            for c in (node.values() if isinstance(node, dict) else node)
        ):
            depth += 1  # only empty containers below: one more level
        level = deeper
    return depth


# ------------------------------------------------------------------ fixed segments first

_PARAM = re.compile(r"^\{[^}]+\}$")


def _segments(template: str) -> list[str | None]:
    """A path template's segments, None for a parameter."""
    return [None if _PARAM.match(s) else s for s in template.split("/")]


def outranks(a: str, b: str) -> bool:
    """Template `a` is more specific than `b`: the same number of segments and, at the first
    segment where they differ, fixed text in `a` and a parameter in `b` (the usual rule of
    routers that rank routes: `/items/new` before `/items/{id}`, `/a/b/{x}` before `/a/{y}/c`).
    Only meaningful for a path both templates match."""
    sa, sb = _segments(a), _segments(b)
    if len(sa) != len(sb) or ":path}" in a or ":path}" in b:
        return False
    for x, y in zip(sa, sb, strict=True):
        if x != y:
            return x is not None and y is None
    return False


@dataclass
class _Template:
    path: str
    regex: re.Pattern[str]
    methods: set[str]
    routes: list[object] = field(default_factory=list)
    outranked_by: list[re.Pattern[str]] = field(default_factory=list)


class _RouteTable:
    """Every routed path template of an app (with its methods), and for each route the patterns
    of the templates that outrank it. Built once per app, at its first request: routes are all
    added while the app is created."""

    def __init__(self, contexts: Iterable[Any]) -> None:
        by_path: dict[str, _Template] = {}
        for context in contexts:
            path, regex, methods = (
                getattr(context, "path_format", None),
                getattr(context, "path_regex", None),
                getattr(context, "methods", None),
            )
            if not path or regex is None or not methods:
                continue  # mounts (static files) have no methods
            entry = by_path.setdefault(path, _Template(path, regex, set()))
            entry.methods |= set(methods)
            entry.routes.append(context.original_route)
        self.templates = list(by_path.values())
        self._outranked_by: dict[int, list[re.Pattern[str]]] = {}
        for entry in self.templates:
            entry.outranked_by = [o.regex for o in self.templates if outranks(o.path, entry.path)]
            for route in entry.routes:
                self._outranked_by.setdefault(id(route), []).extend(entry.outranked_by)

    def outranked(self, route: object, path: str) -> bool:
        return any(regex.match(path) for regex in self._outranked_by.get(id(route), ()))

    def allowed_methods(self, path: str) -> set[str]:
        matching = [t for t in self.templates if t.regex.match(path)]
        best = [t for t in matching if not any(outranks(o.path, t.path) for o in matching)]
        return {m for t in best for m in t.methods}


_TABLES: weakref.WeakKeyDictionary[Any, _RouteTable] = weakref.WeakKeyDictionary()


def route_table(app: Any) -> _RouteTable:
    table = _TABLES.get(app)
    if table is None:
        table = _TABLES[app] = _RouteTable(iter_route_contexts(app.routes))
    return table


def allowed_methods(app: Any, path: str) -> set[str]:
    """The methods of the most specific routes that match `path` (for `Allow` on a 405)."""
    return route_table(app).allowed_methods(path)


_NAMED_GROUP = re.compile(r"\(\?P<\w+>")


class ApiRouter(APIRouter):
    """The API's routers: once mounted (`mount_at`, app/api.py), a router turns a request away
    with one regular expression (every path of its routes) when none of them can match it.
    FastAPI otherwise tries every route of every included router in turn, at each level of
    inclusion and again to dispatch: for the API's last routes that cost about 0.25 ms a
    request, more than the rest of a GET answered from one statement. Nothing else changes:
    when the expression matches, FastAPI matches (and ranks, and answers 405) as before."""

    path_filter: re.Pattern[str] | None = None

    def mount_at(self, prefix: str) -> None:
        """Build the filter for routes served under `prefix` (the include prefix)."""
        if not self.routes or not all(isinstance(r, APIRoute) for r in self.routes):
            self.path_filter = None  # only plain routes are understood here
            return
        patterns = [
            _NAMED_GROUP.sub("(?:", compile_path(prefix + route.path)[0].pattern)
            for route in self.routes
            if isinstance(route, APIRoute)
        ]
        self.path_filter = re.compile("|".join(f"(?:{p})" for p in patterns))

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        path_filter = self.path_filter
        if (
            path_filter is not None
            and scope["type"] == "http"
            and not path_filter.match(get_route_path(scope))
        ):
            return Match.NONE, {}
        return super().matches(scope)


class ApiRoute(APIRoute):
    """Route class for every API route: decimal-exact JSON, optional hooks (authentication)
    that run before the body is read, so a missing key is a 401 even when the body is bad, and
    fixed segments before parameters (see the module's docstring)."""

    before_body: tuple[Callable[[Request], Awaitable[None]], ...] = ()

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        match, child_scope = super().matches(scope)
        app = scope.get("app")
        if (
            match is not Match.NONE
            and app is not None
            and route_table(app).outranked(self, get_route_path(scope))
        ):
            return Match.NONE, {}
        return match, child_scope

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()
        hooks = self.before_body

        async def route_handler(request: Request) -> Response:
            request = JSONDecimalRequest(request.scope, request.receive)
            for hook in hooks:
                await hook(request)
            return await handler(request)

        return route_handler
