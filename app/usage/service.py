from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from app.access import service as access_service
from app.access.counter import UsageCounter
from app.accounts.service import AuthenticatedAccount
from app.usage.repository import UsageRepository
from app.usage.schemas import UsageRead


async def usage(
    session: AsyncSession,
    account: AuthenticatedAccount,
    counter: UsageCounter,
    *,
    rate_limit_per_minute: int,
) -> UsageRead:
    storage = await UsageRepository(session, account.id).storage()
    return UsageRead(
        data_items=storage.data_items,
        rows=storage.rows,
        stored_bytes=storage.row_bytes + storage.reference_file_bytes,
        row_bytes=storage.row_bytes,
        reference_file_bytes=storage.reference_file_bytes,
        requests_last_day=await access_service.requests_last_day(session, counter, account.id),
        rate_limit_per_minute=rate_limit_per_minute or None,
    )
