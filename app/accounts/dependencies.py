"""Authentication: the API key from the `X-Api-Key` header or the `api_key` query parameter.

The key is checked in `AuthenticatedRoute` before anything else happens to the request (body
parsing, validation, path lookups), so a missing or unknown key is always a 401. The same step
counts the request for the key (and refuses it with a 429 past RATE_LIMIT_PER_MINUTE): once per
request, before the body is read.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request, Security
from fastapi.security import APIKeyHeader, APIKeyQuery
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.access import service as access_service
from app.accounts import service as accounts_service
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


async def authenticate(request: Request) -> None:
    if getattr(request.state, "account", None) is not None:
        return
    presented = request.headers.get("x-api-key") or request.query_params.get("api_key")
    if not presented:
        raise Unauthorized(UNAUTHORIZED_MESSAGE)
    sessionmaker: async_sessionmaker[AsyncSession] = request.app.state.sessionmaker
    limit: int = request.app.state.settings.rate_limit_per_minute
    async with sessionmaker() as session:
        account = await accounts_service.resolve_key(session, presented)
        if account is None:
            raise Unauthorized(UNAUTHORIZED_MESSAGE)
        decision = await access_service.count_request(session, account, limit=limit)
        await session.commit()
    add_response_headers(request.scope.setdefault("state", {}), decision.headers)
    if decision.limited:
        raise RateLimited(
            f"Rate limit exceeded: {limit:,} requests per minute for this API key; "
            f"retry in {decision.headers['Retry-After']} s.",
            headers=decision.headers,
        )
    request.state.account = account


class AuthenticatedRoute(ApiRoute):
    before_body = (authenticate,)


async def current_account(
    request: Request,
    _header: Annotated[str | None, Security(api_key_header)] = None,
    _query: Annotated[str | None, Security(api_key_query)] = None,
) -> AuthenticatedAccount:
    await authenticate(request)
    account: AuthenticatedAccount = request.state.account
    return account


AccountDep = Annotated[AuthenticatedAccount, Depends(current_account)]
