from __future__ import annotations

from app.accounts.dependencies import AccountDep, AuthenticatedRoute
from app.core.db import SessionDep
from app.core.deps import SettingsDep, UsageCounterDep
from app.core.openapi import errors
from app.core.routing import ApiRouter
from app.usage import service
from app.usage.schemas import UsageRead

router = ApiRouter(tags=["usage"], route_class=AuthenticatedRoute)


@router.get(
    "/usage/",
    response_model=UsageRead,
    summary="Your counts: items, rows, stored bytes, requests in the last day",
    description=(
        "The figures an operator bills or caps on, for the calling account only. Cheap: no row "
        "is read (row counts are kept per item; sizes come from PostgreSQL's catalog and the "
        "upload records; requests from the per-key counters the rate limit uses, kept whether "
        "or not a limit is set: exact for this process's requests, other replicas' within a "
        "second)."
    ),
    responses=errors(401),
)
async def get_usage(
    session: SessionDep, account: AccountDep, counter: UsageCounterDep, settings: SettingsDep
) -> UsageRead:
    return await service.usage(
        session, account, counter, rate_limit_per_minute=settings.rate_limit_per_minute
    )
