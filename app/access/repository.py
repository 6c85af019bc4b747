"""Per-key, per-minute request counters (table `api_key_usage`). Every statement is keyed by the
caller's API key and account, as resolved from the key that came with the request."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

RETENTION = "2 days"  # the usage endpoint reports the last day; keep one more


@dataclass(frozen=True)
class Window:
    """This minute's count for a key, when the minute ends, and the database's clock."""

    requests: int
    resets_at: int  # epoch seconds
    now: float  # epoch seconds


class UsageCounterRepository:
    def __init__(self, session: AsyncSession, account_id: int) -> None:
        self.session = session
        self.account_id = account_id

    async def relax_durability(self) -> None:
        """This transaction's commit need not wait for the WAL flush: a counter lost in a crash
        costs nothing, and the row lock is released sooner for the key's next request."""
        await self.session.execute(text("SET LOCAL synchronous_commit TO off"))

    async def count_request(self, key_id: int) -> Window:
        """Add one request to the key's counter for the current minute (database clock, so all
        replicas agree). Concurrent requests of one key serialise on that row only for the
        instant of their upsert (the caller commits at once, without waiting for WAL flush)."""
        result = await self.session.execute(
            text(
                """
                INSERT INTO api_key_usage AS u (key_id, account_id, minute, requests)
                VALUES (:key, :account, date_trunc('minute', now()), 1)
                ON CONFLICT (key_id, minute) DO UPDATE SET requests = u.requests + 1
                RETURNING u.requests,
                          extract(epoch FROM u.minute)::bigint + 60,
                          extract(epoch FROM clock_timestamp())::float8
                """
            ),
            {"key": key_id, "account": self.account_id},
        )
        requests, resets_at, now = result.one()
        if requests == 1:  # a new minute for this key: drop its counters past retention
            await self.session.execute(
                text(
                    "DELETE FROM api_key_usage WHERE key_id = :key AND account_id = :account "
                    f"AND minute < now() - interval '{RETENTION}'"
                ),
                {"key": key_id, "account": self.account_id},
            )
        return Window(int(requests), int(resets_at), float(now))

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
