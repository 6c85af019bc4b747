"""Authentication: the API key from the `X-Api-Key` header or the `api_key` query parameter.

The key is checked in `AuthenticatedRoute` before anything else happens to the request (body
parsing, validation, path lookups), so a missing or unknown key is always a 401. The same step
counts the request for the key (and refuses it with a 429 past RATE_LIMIT_PER_MINUTE): once per
request, before the body is read. Neither touches the database on most requests: keys are
answered from a short-lived cache (app/accounts/cache.py), counts are kept in memory and flushed
every second (app/access/counter.py).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import APIKeyHeader, APIKeyQuery
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.access.counter import UsageCounter
from app.accounts import service as accounts_service
from app.accounts.cache import KeyCache
from app.accounts.service import AuthenticatedAccount
from app.core.errors import RateLimited, Unauthorized
from app.core.headers import add_response_headers
from app.core.routing import ApiRoute

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
    presented = request.headers.get("x-api-key") or request.query_params.get("api_key")
    if not presented:
        raise Unauthorized(UNAUTHORIZED_MESSAGE)
    state = request.app.state
    keys: KeyCache = state.api_keys
    account = await keys.resolve(presented)
    if account is None:
        raise Unauthorized(UNAUTHORIZED_MESSAGE)
    counter: UsageCounter = state.usage_counter
    decision = await counter.count(account)
    if decision.headers:
        add_response_headers(request.scope.setdefault("state", {}), decision.headers)
    if decision.limited:
        raise RateLimited(
            f"Rate limit exceeded: {counter.limit:,} requests per minute for this API key; "
            f"retry in {decision.headers['Retry-After']} s.",
            headers=decision.headers,
        )
    request.state.account = account


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
