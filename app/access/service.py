"""Request counts per API key, and the optional rate limit (RATE_LIMIT_PER_MINUTE).

Every authenticated request is counted for its key and the current minute (by the database
clock); when a limit is set, a request past it in its minute is a 429. A fixed one-minute window:
simple, exact across replicas, and what the `X-RateLimit-*` headers of common gateways describe;
its known edge is that a client may spend two windows' worth around a minute boundary. The
counting itself (in memory, flushed every second; the budget reserved in PostgreSQL) is in
app/access/counter.py.
"""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from app.access.counter import UsageCounter
from app.access.repository import UsageCounterRepository

DAY_SECONDS = 24 * 3600


async def requests_last_day(session: AsyncSession, counter: UsageCounter, account_id: int) -> int:
    """The account's requests of the last 24 hours: the flushed counts of every replica, plus
    this process's requests not flushed yet (other replicas' follow within FLUSH_SECONDS)."""
    stored = await UsageCounterRepository(session, account_id).requests_since(DAY_SECONDS)
    return stored + counter.unflushed(account_id)
