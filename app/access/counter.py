"""Counting requests per API key, and RATE_LIMIT_PER_MINUTE, without a database write per request.

Each process counts its requests in memory and adds them to the key's row of the minute
(`api_key_usage.requests`) once a second (FLUSH_SECONDS), in one statement for every key. So
`GET /usage/` is exact within a second across replicas (and at once for the requests the
answering process made itself: it adds what it has not flushed yet).

With a limit set, a request is admitted only with a token of its key's minute budget that the
process has reserved in PostgreSQL: `api_key_usage.granted` counts the tokens handed out to all
processes, and a reservation never takes it past the limit (the key's own
`rate_limit_per_minute` when it has one, else RATE_LIMIT_PER_MINUTE) (the row is locked while it is
decided), so the requests admitted in a minute never exceed RATE_LIMIT_PER_MINUTE, whatever the
number of replicas. A process reserves about a second of its own traffic at a time (at least 1,
at most a quarter of what is left, so the last tokens go one by one) and gives back what it did
not use at its next flush: a request can therefore be refused while another replica still holds
unused tokens of the key, for at most a second and at most that replica's last reservation.

The minute is the database's (the process keeps its clock's offset to the server's, measured at
start and every CLOCK_SYNC_SECONDS), so replicas on different hosts agree on it. A process killed
without its shutdown loses at most one second of counts, and its unused tokens stay reserved
until its minute ends.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from dataclasses import dataclass, field

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from app.accounts.service import AuthenticatedAccount

log = logging.getLogger("app.access")

FLUSH_SECONDS = 1.0
CLOCK_SYNC_SECONDS = 30.0
RETENTION = "2 days"  # the usage endpoint reports the last day; keep one more


@dataclass(frozen=True)
class Decision:
    limited: bool
    headers: dict[str, str] = field(default_factory=dict)


NOT_LIMITED = Decision(limited=False)


@dataclass(eq=False)
class _KeyMinute:
    """One key's counts and budget for one minute, in this process."""

    key_id: int
    account_id: int
    minute: int  # epoch seconds, a multiple of 60
    limit: int = 0  # the key's requests per minute (0: not limited)
    pending: int = 0  # requests counted here and not flushed yet
    left: int = 0  # reserved tokens not used yet
    admitted: int = 0  # requests admitted since the last flush (sizes the next reservation)
    demand: int = 0  # requests admitted in the interval before
    granted_seen: int = 0  # the key's `granted` as last read (for X-RateLimit-Remaining)
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)


_RESERVE_LOCK = text(
    """
    INSERT INTO api_key_usage AS u (key_id, account_id, minute, requests, granted)
    VALUES (:key, :account, to_timestamp(:minute), 0, 0)
    ON CONFLICT (key_id, minute) DO UPDATE SET granted = u.granted
    RETURNING u.granted, xmax = 0
    """
)
_RESERVE = text(
    "UPDATE api_key_usage SET granted = granted + :n "
    "WHERE key_id = :key AND minute = to_timestamp(:minute)"
)
_FLUSH = text(
    """
    INSERT INTO api_key_usage AS u (key_id, account_id, minute, requests, granted)
    SELECT t.key, t.account, to_timestamp(t.minute), t.requests, -t.released
    FROM unnest(CAST(:keys AS bigint[]), CAST(:accounts AS bigint[]),
                CAST(:minutes AS bigint[]), CAST(:requests AS int[]),
                CAST(:released AS int[])) AS t(key, account, minute, requests, released)
    ORDER BY t.key, t.minute
    ON CONFLICT (key_id, minute) DO UPDATE
    SET requests = u.requests + excluded.requests, granted = u.granted + excluded.granted
    RETURNING u.key_id, xmax = 0
    """
)
_SWEEP = text(
    "DELETE FROM api_key_usage WHERE key_id = ANY(CAST(:keys AS bigint[])) "
    f"AND minute < now() - interval '{RETENTION}'"
)
_CLOCK = text("SELECT extract(epoch FROM clock_timestamp())::float8")


class UsageCounter:
    """One per process (app.state.usage_counter); see the module's docstring."""

    def __init__(self, engine: AsyncEngine, *, limit: int) -> None:
        self.engine = engine
        self.limit = limit
        self._minutes: dict[tuple[int, int], _KeyMinute] = {}
        self._offset = 0.0  # database clock - local clock, seconds
        self._synced_at = -math.inf
        self._task: asyncio.Task[None] | None = None
        self._flushing = asyncio.Lock()

    # ------------------------------------------------------------------ clock

    def now(self) -> float:
        """The database's clock, as estimated here (epoch seconds)."""
        return time.time() + self._offset

    async def sync_clock(self) -> None:
        async with self.engine.connect() as conn:
            before = time.time()
            server = float((await conn.execute(_CLOCK)).scalar_one())
            after = time.time()
        self._offset = server - (before + after) / 2
        self._synced_at = time.monotonic()

    # ------------------------------------------------------------------ requests

    async def count(self, account: AuthenticatedAccount) -> Decision:
        """Count this request for the caller's key; with a limit, admit it or not and give the
        rate-limit headers."""
        now = self.now()
        minute = int(now // 60) * 60
        limit = self.limit if account.rate_limit is None else account.rate_limit
        state = self._minutes.get((account.key_id, minute))
        if state is None:
            state = _KeyMinute(account.key_id, account.id, minute, limit)
            self._minutes[(account.key_id, minute)] = state
        state.pending += 1
        if limit <= 0:
            return NOT_LIMITED
        if state.left == 0:
            async with state.lock:
                if state.left == 0:
                    await self._reserve(state)
        limited = state.left == 0
        if not limited:
            state.left -= 1
            state.admitted += 1
        remaining = max(0, limit - state.granted_seen + state.left)
        headers = {
            "X-RateLimit-Limit": str(limit),
            "X-RateLimit-Remaining": str(remaining),
            "X-RateLimit-Reset": str(minute + 60),
        }
        if not limited:
            return Decision(limited=False, headers=headers)
        retry_after = max(1, math.ceil(minute + 60 - self.now()))
        return Decision(limited=True, headers={**headers, "Retry-After": str(retry_after)})

    async def _reserve(self, state: _KeyMinute) -> None:
        """Reserve tokens of the key's minute budget: about what this process admitted in the
        last second, at most a quarter of what is left (rounded up), none past the limit."""
        want = max(1, state.admitted, state.demand)
        params = {"key": state.key_id, "account": state.account_id, "minute": state.minute}
        async with self.engine.connect() as conn:
            await conn.execute(text("SET LOCAL synchronous_commit TO off"))
            granted, created = (await conn.execute(_RESERVE_LOCK, params)).one()
            free = max(0, state.limit - int(granted))
            n = min(want, (free + 3) // 4)
            if n:
                await conn.execute(_RESERVE, {**params, "n": n})
            if created:
                await conn.execute(_SWEEP, {"keys": [state.key_id]})
            await conn.commit()
        state.left += n
        state.granted_seen = int(granted) + n

    def unflushed(self, account_id: int) -> int:
        """Requests of the account's keys counted here and not yet in the database."""
        return sum(s.pending for s in self._minutes.values() if s.account_id == account_id)

    # ------------------------------------------------------------------ flushing

    async def flush(self) -> None:
        """Add the requests counted since the last flush to the database and give back the
        unused tokens (one statement). On failure they are kept for the next flush."""
        async with self._flushing:
            current = int(self.now() // 60) * 60
            batch: list[tuple[_KeyMinute, int, int]] = []
            for key, state in list(self._minutes.items()):
                if state.pending or state.left:
                    batch.append((state, state.pending, state.left))
                    state.granted_seen -= state.left
                    state.pending = state.left = 0
                state.demand, state.admitted = state.admitted, 0
                if state.minute < current and not state.lock.locked():
                    del self._minutes[key]  # its counts are in the batch
            if not batch:
                return
            batch.sort(key=lambda b: (b[0].key_id, b[0].minute))
            params = {
                "keys": [s.key_id for s, _, _ in batch],
                "accounts": [s.account_id for s, _, _ in batch],
                "minutes": [s.minute for s, _, _ in batch],
                "requests": [p for _, p, _ in batch],
                "released": [r for _, _, r in batch],
            }
            try:
                async with self.engine.connect() as conn:
                    await conn.execute(text("SET LOCAL synchronous_commit TO off"))
                    written = (await conn.execute(_FLUSH, params)).all()
                    created = sorted({int(k) for k, inserted in written if inserted})
                    if created:  # a key's first row of a minute: drop its rows past retention
                        await conn.execute(_SWEEP, {"keys": created})
                    await conn.commit()
            except Exception:
                for state, pending, left in batch:  # count them next time
                    kept = self._minutes.setdefault((state.key_id, state.minute), state)
                    kept.pending += pending
                    kept.left += left
                    kept.granted_seen += left
                raise

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(FLUSH_SECONDS)
            try:
                if time.monotonic() - self._synced_at > CLOCK_SYNC_SECONDS:
                    await self.sync_clock()
                await self.flush()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the database is away: keep counting, flush later
                log.warning("request counters not flushed: %s", type(exc).__name__)

    async def start(self) -> None:
        with contextlib.suppress(Exception):  # no database yet: the loop syncs later
            await self.sync_clock()
        self._task = asyncio.create_task(self._run(), name="usage-counter")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        try:
            await self.flush()
        except Exception as exc:
            log.warning("request counters lost at shutdown: %s", type(exc).__name__)
