"""Counting requests per API key, and the optional rate limit (RATE_LIMIT_PER_MINUTE).

Every authenticated request adds one to its key's counter for the current minute, in PostgreSQL,
so replicas share the counts and `GET /usage/` can report them; when a limit is set, a request
past it in its minute is a 429. A fixed one-minute window (by the database clock): simple,
exact across replicas, and what the `X-RateLimit-*` headers of common gateways describe; its known
edge is that a client may spend two windows' worth around a minute boundary.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from sqlalchemy.ext.asyncio import AsyncSession

from app.access.repository import UsageCounterRepository
from app.accounts.service import AuthenticatedAccount

DAY_SECONDS = 24 * 3600


@dataclass(frozen=True)
class Decision:
    limited: bool
    headers: dict[str, str] = field(default_factory=dict)


async def count_request(
    session: AsyncSession, account: AuthenticatedAccount, *, limit: int
) -> Decision:
    """Count this request for the caller's key (the caller commits); with `limit` > 0, say
    whether it is over the limit and give the rate-limit headers."""
    repo = UsageCounterRepository(session, account.id)
    await repo.relax_durability()
    window = await repo.count_request(account.key_id)
    if limit <= 0:
        return Decision(limited=False)
    headers = {
        "X-RateLimit-Limit": str(limit),
        "X-RateLimit-Remaining": str(max(0, limit - window.requests)),
        "X-RateLimit-Reset": str(window.resets_at),
    }
    if window.requests <= limit:
        return Decision(limited=False, headers=headers)
    retry_after = max(1, math.ceil(window.resets_at - window.now))
    return Decision(limited=True, headers={**headers, "Retry-After": str(retry_after)})


async def requests_last_day(session: AsyncSession, account_id: int) -> int:
    return await UsageCounterRepository(session, account_id).requests_since(DAY_SECONDS)
