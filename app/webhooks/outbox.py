"""The delivery worker's queue: due deliveries of every account, claimed with SKIP LOCKED.

These queries work across accounts by design (the worker delivers for everyone); nothing here is
reachable from a request.

Claiming a delivery counts the attempt, moves `next_attempt_at` past the attempt's time limit (a
lease) and sets a fresh `lease_token`, all in one short transaction. If the process dies during
the request, the delivery falls due again when the lease runs out and any replica retries it;
only the holder of the token may record the outcome. Delivery is therefore at least once:
receivers drop repeats by X-Delivery-Id.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from app.webhooks.sender import Attempt


@dataclass(frozen=True)
class Claimed:
    id: int
    webhook_id: int
    event: str
    body: str
    attempt: int
    url: str
    secret: str
    token: str


async def claim(
    engine: AsyncEngine, *, limit: int, lease_seconds: float, max_attempts: int, token: str
) -> list[Claimed]:
    async with engine.begin() as conn:
        rows = (
            await conn.execute(
                text(
                    """
                    UPDATE webhook_deliveries d
                       SET attempts = d.attempts + 1,
                           next_attempt_at = now() + make_interval(secs => :lease),
                           lease_token = :token
                      FROM webhooks w
                     WHERE w.id = d.webhook_id
                       AND d.id IN (
                           SELECT id FROM webhook_deliveries
                            WHERE status = 'pending' AND next_attempt_at <= now()
                              AND attempts < :max_attempts
                            ORDER BY next_attempt_at, id
                            LIMIT :limit
                            FOR UPDATE SKIP LOCKED)
                 RETURNING d.id, d.webhook_id, d.event, d.body, d.attempts, w.url, w.secret
                    """
                ),
                {
                    "lease": lease_seconds,
                    "token": token,
                    "max_attempts": max_attempts,
                    "limit": limit,
                },
            )
        ).all()
    return [
        Claimed(
            id=row.id,
            webhook_id=row.webhook_id,
            event=row.event,
            body=row.body,
            attempt=row.attempts,
            url=row.url,
            secret=row.secret,
            token=token,
        )
        for row in rows
    ]


def retry_delay(attempt: int, *, base: float, cap: float) -> float:
    """Exponential backoff after failed attempt number `attempt` (1-based): base, 2 x base,
    4 x base, ... up to `cap`, each shortened by up to a quarter at random so that deliveries that
    failed together do not all retry at the same instant."""
    delay = min(cap, base * float(2 ** min(attempt - 1, 40)))
    return delay * (1 - random.random() / 4)


async def record(
    engine: AsyncEngine,
    claimed: Claimed,
    outcome: Attempt,
    *,
    max_attempts: int,
    base: float,
    cap: float,
) -> bool:
    """Store the attempt's outcome and what happens next. False if the claim was lost (the lease
    ran out and another replica took the delivery over)."""
    if outcome.ok:
        status, delay = "succeeded", None
    elif not outcome.retry or claimed.attempt >= max_attempts:
        status, delay = "failed", None
    else:
        status, delay = "pending", retry_delay(claimed.attempt, base=base, cap=cap)
    entry = {
        "attempt": claimed.attempt,
        "at": datetime.now(UTC).isoformat(timespec="seconds"),
        "response_code": outcome.response_code,
        "error": outcome.error,
        "duration_ms": outcome.duration_ms,
    }
    async with engine.begin() as conn:
        result = await conn.execute(
            text(
                """
                UPDATE webhook_deliveries
                   SET status = :status,
                       -- make_interval is strict: no delay, no next attempt
                       next_attempt_at = now() + make_interval(
                           secs => CAST(:delay AS double precision)),
                       delivered_at = CASE WHEN CAST(:ok AS boolean) THEN now() END,
                       last_status_code = :code,
                       last_error = :error,
                       lease_token = NULL,
                       history = history || jsonb_build_array(CAST(:entry AS jsonb))
                 WHERE id = :id AND lease_token = :token
                """
            ),
            {
                "status": status,
                "delay": delay,
                "ok": outcome.ok,
                "code": outcome.response_code,
                "error": outcome.error,
                "entry": json.dumps(entry),
                "id": claimed.id,
                "token": claimed.token,
            },
        )
    return bool(result.rowcount)


async def give_up_exhausted(engine: AsyncEngine, *, max_attempts: int) -> int:
    """Deliveries whose last allowed attempt never reported (its process died): failed."""
    async with engine.begin() as conn:
        result = await conn.execute(
            text(
                """
                UPDATE webhook_deliveries
                   SET status = 'failed', next_attempt_at = NULL, lease_token = NULL,
                       last_error = 'The last attempt was interrupted (the delivering process '
                                    || 'stopped); no attempts left.'
                 WHERE status = 'pending' AND next_attempt_at <= now() AND attempts >= :max
                """
            ),
            {"max": max_attempts},
        )
    return int(result.rowcount or 0)


async def seconds_until_due(engine: AsyncEngine) -> float | None:
    """Until the next pending delivery falls due (0 if one is due now), None if none is pending."""
    async with engine.connect() as conn:
        value = (
            await conn.execute(
                text(
                    "SELECT EXTRACT(EPOCH FROM min(next_attempt_at) - now()) "
                    "FROM webhook_deliveries WHERE status = 'pending'"
                )
            )
        ).scalar_one()
    return None if value is None else max(0.0, float(value))


async def purge(engine: AsyncEngine, *, days: int) -> int:
    async with engine.begin() as conn:
        result = await conn.execute(
            text(
                "DELETE FROM webhook_deliveries WHERE status <> 'pending' "
                "AND created_at < now() - make_interval(days => :days)"
            ),
            {"days": days},
        )
    return int(result.rowcount or 0)
