"""Per-key, per-minute request counters (table `api_key_usage`), as the usage figures read them.
They are written by app/access/counter.py."""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession


class UsageCounterRepository:
    def __init__(self, session: AsyncSession, account_id: int) -> None:
        self.session = session
        self.account_id = account_id

    async def requests_since(self, seconds: int) -> int:
        """Requests made with any of the account's keys in the last `seconds` (by minute)."""
        result = await self.session.execute(
            text(
                "SELECT coalesce(sum(requests), 0) FROM api_key_usage "
                "WHERE account_id = :account "
                "AND minute > date_trunc('minute', now()) - make_interval(secs => :seconds)"
            ),
            {"account": self.account_id, "seconds": seconds},
        )
        return int(result.scalar_one())
