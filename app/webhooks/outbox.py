"""The delivery worker's queue: due deliveries of every account, claimed with SKIP LOCKED, in
turns across accounts and at most a share of the slots per account (see `_CLAIM`).

These queries work across accounts by design (the worker delivers for everyone); nothing here is
reachable from a request.

Claiming a delivery counts the attempt, moves `next_attempt_at` past the attempt's time limit (a
lease) and sets a fresh `lease_token`, all in one short transaction. If the process dies during
the request, the delivery falls due again when the lease runs out and any replica retries it;
only the holder of the token may record the outcome. Delivery is therefore at least once:
receivers drop repeats by `webhook-id` (or X-Delivery-Id).
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
    account_id: int
    event: str
    body: str
    attempt: int
    url: str
    secret: str  # as stored: `fernet:…` when encrypted (`app.webhooks.vault`)
    legacy_signature: bool
    token: str


# Due deliveries, fairly: each account's due deliveries in due order take turns (its 1st, then
# every account's 2nd, ...), an account gets no more than its free share (`:share` minus what it
# already has in flight in this process, `:busy`), and the `:limit` free slots go to the first
# turns. Found without reading the whole backlog: a skip scan of the pending-by-webhook index
# lists the webhooks with pending deliveries, and each gives at most `:share` due ones. Locked
# with SKIP LOCKED, conditions checked again on the locked row (another replica may have just
# claimed it), so no two dispatchers take the same delivery.
_CLAIM = """
WITH RECURSIVE hooks(webhook_id) AS (
    (SELECT webhook_id FROM webhook_deliveries
      WHERE status = 'pending' ORDER BY webhook_id LIMIT 1)
    UNION ALL
    SELECT (SELECT d.webhook_id FROM webhook_deliveries d
             WHERE d.status = 'pending' AND d.webhook_id > h.webhook_id
             ORDER BY d.webhook_id LIMIT 1)
      FROM hooks h
     WHERE h.webhook_id IS NOT NULL
),
due AS (
    SELECT c.id, c.next_attempt_at, w.account_id,
           row_number() OVER (PARTITION BY w.account_id ORDER BY c.next_attempt_at, c.id) AS turn
      FROM hooks h
      JOIN webhooks w ON w.id = h.webhook_id
     CROSS JOIN LATERAL (
           SELECT d.id, d.next_attempt_at FROM webhook_deliveries d
            WHERE d.webhook_id = h.webhook_id AND d.status = 'pending'
              AND d.next_attempt_at <= now() AND d.attempts < :max_attempts
            ORDER BY d.next_attempt_at, d.id
            LIMIT :share) c
),
chosen AS (
    SELECT id FROM due
     WHERE turn <= :share - coalesce(CAST(CAST(:busy AS jsonb) ->> CAST(account_id AS text)
                                          AS integer), 0)
     ORDER BY turn, next_attempt_at, id
     LIMIT :limit
)
UPDATE webhook_deliveries d
   SET attempts = d.attempts + 1,
       next_attempt_at = now() + make_interval(secs => :lease),
       lease_token = :token
  FROM webhooks w
 WHERE w.id = d.webhook_id
   AND d.id IN (
       SELECT id FROM webhook_deliveries
        WHERE id = ANY(ARRAY(SELECT id FROM chosen))  -- by primary key, not a scan of the due
          AND status = 'pending' AND next_attempt_at <= now() AND attempts < :max_attempts
          FOR UPDATE SKIP LOCKED)
RETURNING d.id, d.webhook_id, w.account_id, d.event, d.body, d.attempts, w.url, w.secret,
          w.legacy_signature
"""


async def claim(
    engine: AsyncEngine,
    *,
    limit: int,
    share: int,
    busy: dict[int, int],
    lease_seconds: float,
    max_attempts: int,
    token: str,
) -> list[Claimed]:
    """Up to `limit` due deliveries, taken in turns across accounts, at most `share` in flight
    per account counting `busy` (account id: deliveries this process is sending now)."""
    async with engine.begin() as conn:
        rows = (
            await conn.execute(
                text(_CLAIM),
                {
                    "lease": lease_seconds,
                    "token": token,
                    "max_attempts": max_attempts,
                    "limit": limit,
                    "share": share,
                    "busy": json.dumps({str(k): v for k, v in busy.items() if v}),
                },
            )
        ).all()
    return [
        Claimed(
            id=row.id,
            webhook_id=row.webhook_id,
            account_id=row.account_id,
            event=row.event,
            body=row.body,
            attempt=row.attempts,
            url=row.url,
            secret=row.secret,
            legacy_signature=row.legacy_signature,
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
