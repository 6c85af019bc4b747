"""Authentication: the API key from the `X-Api-Key` header or the `api_key` query parameter.

The key is checked in `AuthenticatedRoute` before anything else happens to the request (body
parsing, validation, path lookups), so a missing or unknown key is always a 401. The same step
counts the request for the key (and refuses it with a 429 past RATE_LIMIT_PER_MINUTE): once per
request, before the body is read. Neither touches the database on most requests: keys are
answered from a short-lived cache (app/accounts/cache.py), counts are kept in memory and flushed
every second (app/access/counter.py).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import APIKeyHeader, APIKeyQuery
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.access.counter import UsageCounter
from app.accounts import service as accounts_service
from app.accounts.cache import KeyCache
from app.accounts.scopes import ACCOUNT_WIDE, CREATES_ITEM, Scope, required_scope
from app.accounts.service import AuthenticatedAccount
from app.accounts.throttle import AuthFailures
from app.core.digits import ascii_int
from app.core.errors import Forbidden, NotFound, RateLimited, Unauthorized
from app.core.headers import add_response_headers
from app.core.routing import API_PREFIX, ApiRoute

log = logging.getLogger("app.accounts")

UNAUTHORIZED_MESSAGE = "Invalid or missing API key."

api_key_header = APIKeyHeader(
    name="X-Api-Key",
    auto_error=False,
    scheme_name="ApiKeyHeader",
    description="Your API key, e.g. `dik_…`, as issued by `python -m app keys create`.",
)
api_key_query = APIKeyQuery(
    name="api_key",
    auto_error=False,
    scheme_name="ApiKeyQuery",
    description="The same key as a query parameter, for clients that cannot set headers.",
)


def key_lookup(
    sessionmaker: async_sessionmaker[AsyncSession],
) -> Callable[[str], Awaitable[AuthenticatedAccount | None]]:
    """The database lookup behind the key cache (app/accounts/cache.py)."""

    async def lookup(presented: str) -> AuthenticatedAccount | None:
        async with sessionmaker() as session:
            return await accounts_service.resolve_key(session, presented)

    return lookup


async def authenticate(request: Request) -> None:
    if getattr(request.state, "account", None) is not None:
        return
    state = request.app.state
    failures: AuthFailures = state.auth_failures
    address = request.client.host if request.client else ""
    presented = request.headers.get("x-api-key") or request.query_params.get("api_key")
    keys: KeyCache = state.api_keys
    wait = failures.retry_after(address)
    if wait is not None and (not presented or keys.peek(presented) is None):
        # (a valid key this process answers from memory still passes: no lookup either)
        raise RateLimited(
            f"Too many failed authentications from this address; retry in {wait} s.",
            headers={"Retry-After": str(wait)},
        )
    if not presented:
        failures.failed(address)
        raise Unauthorized(UNAUTHORIZED_MESSAGE)
    account = await keys.resolve(presented)
    if account is None:
        failures.failed(address)
        raise Unauthorized(UNAUTHORIZED_MESSAGE)
    if account.expires_at is not None and account.expires_at <= datetime.now(UTC):
        failures.failed(address)
        raise Unauthorized(
            f"This API key expired at {account.expires_at.isoformat()}; ask for a new one."
        )
    counter: UsageCounter = state.usage_counter
    decision = await counter.count(account)
    if decision.headers:
        add_response_headers(request.scope.setdefault("state", {}), decision.headers)
    if decision.limited:
        raise RateLimited(
            f"Rate limit exceeded: {decision.headers['X-RateLimit-Limit']} requests per minute "
            f"for this API key; retry in {decision.headers['Retry-After']} s.",
            headers=decision.headers,
        )
    await authorize(request, account)
    request.state.account = account


async def authorize(request: Request, account: AuthenticatedAccount) -> None:
    """The key may call this operation: a data item it is not limited to is missing (404); an
    operation outside its scopes, or one creating an item or concerning the whole account for a
    key limited to some items, is a 403, written to the audit trail."""
    path = _operation_path(request)
    method = request.method
    if account.data_items is not None:
        raw = request.path_params.get("item_id")
        # The id as the path spells it, before the route reads it: the route's int parsing
        # also takes "+2", " 2", "2.0" and "1_1", so anything but plain ASCII digits naming an
        # item the key sees is missing for this key (never parsed a second, looser way).
        if raw is not None:
            seen = ascii_int(raw)
            if seen is None or str(seen) != raw or not account.sees_item(seen):
                raise NotFound(f"Data item {raw} not found.")
        operation = ("GET" if method == "HEAD" else method, path)
        if operation in CREATES_ITEM or operation in ACCOUNT_WIDE:
            what = "create data items" if operation in CREATES_ITEM else "use account-wide settings"
            await _forbid(
                request,
                account,
                f"This API key is limited to data items "
                f"{', '.join(map(str, sorted(account.data_items)))}: it cannot {what} "
                f"({method} {path}).",
                reason="limited to data items",
            )
    needed = required_scope(method, path) or Scope.ADMIN
    if needed not in account.scopes:
        await _forbid(
            request,
            account,
            f"This API key lacks the `{needed}` scope, which {method} {path} needs (its "
            f"scopes: {', '.join(sorted(account.scopes)) or 'none'}).",
            reason=f"needs scope {needed}",
            scope=needed,
        )


def _operation_path(request: Request) -> str:
    """The operation's path as the OpenAPI names it (`/api/v1/data-items/{item_id}/`)."""
    path = str(getattr(request.scope.get("route"), "path", request.url.path))
    return path if path.startswith(API_PREFIX) else API_PREFIX + path


async def _forbid(
    request: Request,
    account: AuthenticatedAccount,
    message: str,
    *,
    reason: str,
    scope: str | None = None,
) -> None:
    """Write the refusal to the audit trail (in a transaction of its own: the request's fails),
    then refuse."""
    sessionmaker: async_sessionmaker[AsyncSession] = request.app.state.sessionmaker
    request_id = request.scope.get("state", {}).get("request_id")
    path = _operation_path(request)
    try:
        async with sessionmaker() as session, session.begin():
            await accounts_service.record_forbidden(
                session,
                account,
                method=request.method,
                path=path,
                reason=reason,
                request_id=str(request_id) if request_id else None,
            )
    except Exception as exc:  # the refusal stands without its record
        log.warning("audit record of a 403 not written: %s", type(exc).__name__)
    details = [{"scope": scope, "message": reason}] if scope else [{"message": reason}]
    raise Forbidden(message, details=details)


class AuthenticatedRoute(ApiRoute):
    before_body = (authenticate,)


def caller(request: Request) -> AuthenticatedAccount:
    """The caller, for a handler of an `AuthenticatedRoute` (the key was checked before the
    handler ran): what `AccountDep` gives, without a dependency to solve per request."""
    account: AuthenticatedAccount = request.state.account
    return account


async def _caller(request: Request) -> AuthenticatedAccount:
    """The caller, as `authenticate` resolved it before the body was read (every API route is
    an `AuthenticatedRoute`). The schema documents the key on every operation
    (app/core/openapi.py); this adds no sub-dependencies to solve per request."""
    account: AuthenticatedAccount | None = getattr(request.state, "account", None)
    if account is None:
        await authenticate(request)
        account = request.state.account
    return account


AccountDep = Annotated[AuthenticatedAccount, Depends(_caller)]


def _key_cache(request: Request) -> KeyCache:
    cache: KeyCache = request.app.state.api_keys
    return cache


KeyCacheDep = Annotated[KeyCache, Depends(_key_cache)]
