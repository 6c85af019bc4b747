"""Reads answered by one statement, on a pooled connection in autocommit.

The hottest reads (an item's details, a page of rows, the summary) are one SQL statement each:
one statement sees one snapshot, so there is nothing to BEGIN or COMMIT, and the statement goes
to the driver (asyncpg) directly, past the ORM and the session (a session costs a BEGIN and a
COMMIT round trip, and the ORM's statement building and result loading cost more CPU than the
rest of such a request together; see docs/performance.md, request throughput).

The connection comes from the engine's pool (same pool, same server settings: statement_timeout,
plan_cache_mode) and goes back to it, or is kept for the next read for up to PING_IDLE_SECONDS.
When the statement fails because the server went away, the pool's connections are invalidated as
SQLAlchemy does for its own statements, so the next requests reconnect; a request cancelled
mid-statement (its client left) does not return its connection to the pool.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import time
import weakref
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from asyncpg import PostgresError
from sqlalchemy import Engine
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.util import greenlet_spawn

from app.core.db import PING_IDLE_SECONDS


def sql(statement: str) -> str:
    """Marks SQL sent to the driver directly (asyncpg, `$1` parameters), so that the scoping
    check (tests/test_scoping.py) sees it as it sees SQLAlchemy's `text()`: write it inline, in
    the function that binds its account or item."""
    return statement


# Reads keep connections between requests, in two lanes of at most a quarter of the pool each
# (the rest of the pool is left to sessions and background work): a read then costs no
# checkout (a greenlet switch each way and the pool's bookkeeping were a fifth of an item
# detail's CPU), and when its lane is busy it waits for the lane's next free connection (handed
# over directly) rather than in the pool (a timed queue read inside a greenlet). A connection
# unused for PING_IDLE_SECONDS goes back to the pool, where it is checked before its next use,
# so a lane's connections are never older than that, and hold none of the pool when reads stop.
#
# The pool's connections plan every statement for its parameters (plan_cache_mode =
# force_custom_plan, app/core/db.py: a statement on `rows` must be planned for its item's
# partition, never generically over all of them). Reads that touch no partition (an item's
# details, its summary) use the other lane, whose connections are switched to
# plan_cache_mode=auto, where a prepared statement's plan is reused: the server's CPU per item
# detail halves (177 us to 87 us a statement, measured). They are switched back before they
# return to the pool.
class _Lane:
    def __init__(self, engine: AsyncEngine, size: int, *, reuse_plans: bool) -> None:
        self.engine = engine
        self.size = size
        self.reuse_plans = reuse_plans
        self.timeout = float(engine.sync_engine.pool._timeout)  # type: ignore[attr-defined]
        self.idle: list[tuple[Any, float]] = []  # (pool connection, when it was last used)
        self.count = 0  # this lane's connections, idle or in use
        self.waiting: collections.deque[asyncio.Future[Any]] = collections.deque()

    async def take(self) -> Any:
        while True:
            now = time.monotonic()
            while self.idle:
                fairy, since = self.idle.pop()
                if now - since < PING_IDLE_SECONDS and fairy.is_valid:
                    return fairy
                await self._to_pool(fairy, since)
            if self.count < self.size or self.size == 0:
                self.count += 1
                try:
                    return await self._checkout()
                except BaseException:
                    self.count -= 1
                    self._wake()
                    raise
            waiter: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
            self.waiting.append(waiter)
            try:
                async with asyncio.timeout(self.timeout):
                    fairy = await waiter
            except BaseException as exc:
                if waiter in self.waiting:
                    self.waiting.remove(waiter)
                handed = waiter.result() if waiter.done() and not waiter.cancelled() else None
                if isinstance(exc, TimeoutError):
                    if handed is not None:  # handed over as the time ran out: use it
                        return handed
                    raise PoolTimeout(
                        f"no connection of the read lane came free in {self.timeout:g} s"
                    ) from None
                if handed is not None:  # (cancelled with a connection in hand: pass it on)
                    await self.give_back(handed)
                raise
            if fairy is not None:
                return fairy
            # (None: a connection of the lane was lost; take or open another)

    async def _checkout(self) -> Any:
        sync_engine = self.engine.sync_engine
        try:
            fairy: Any = await greenlet_spawn(sync_engine.raw_connection)
        except sync_engine.dialect.loaded_dbapi.Error as exc:  # no connection to be had
            raise ConnectionRefusedError("no database connection could be opened") from exc
        if self.reuse_plans:
            try:
                await fairy.driver_connection.execute("SET plan_cache_mode = auto")
            except BaseException as exc:
                if isinstance(exc, Exception) and _lost(exc):
                    await self.lost(fairy, exc)
                    raise ConnectionResetError("the database connection was lost") from exc
                await greenlet_spawn(fairy.invalidate)
                await greenlet_spawn(fairy.close)
                raise
        return fairy

    def _wake(self) -> None:
        """A connection of the lane went away: the first waiter opens another."""
        while self.waiting:
            waiter = self.waiting.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return

    async def give_back(self, fairy: Any) -> None:
        if self.size == 0:
            await self._to_pool(fairy, None)
            return
        while self.waiting:  # handed over directly
            waiter = self.waiting.popleft()
            if not waiter.done():
                waiter.set_result(fairy)
                return
        self.idle.append((fairy, time.monotonic()))

    async def forget(self, fairy: Any) -> None:
        """`fairy` was invalidated instead of given back: closed, its place in the lane freed."""
        self.count -= 1
        await greenlet_spawn(fairy.close)
        self._wake()

    async def lost(self, fairy: Any, exc: Exception) -> None:
        """The server went away under `fairy`: every connection of the pool is invalidated, as
        SQLAlchemy does after a disconnect in a statement, and the lanes' idle ones dropped."""
        self.engine.sync_engine.pool._invalidate(fairy, exc, _checkin=False)
        await greenlet_spawn(fairy.invalidate, exc)
        await self.forget(fairy)
        await _lanes(self.engine).drop_idle()

    async def _to_pool(self, fairy: Any, since: float | None) -> None:
        """Back to the pool as the pool's connections are, idle since `since` as far as its
        check before use goes (app/core/db.py); closed instead if it cannot be switched back."""
        self.count -= 1
        if self.reuse_plans and fairy.is_valid:
            try:
                await fairy.driver_connection.execute("RESET plan_cache_mode")
            except BaseException as exc:
                await greenlet_spawn(fairy.invalidate)
                await greenlet_spawn(fairy.close)
                if not isinstance(exc, Exception):
                    raise
                return
        if since is not None and fairy.is_valid:
            fairy.info["idle_since_kept"] = since
        await greenlet_spawn(fairy.close)

    async def drop_idle(self, older_than: float) -> None:
        cutoff = time.monotonic() - older_than
        stale = [entry for entry in self.idle if entry[1] <= cutoff]
        self.idle = [entry for entry in self.idle if entry[1] > cutoff]
        for fairy, since in stale:
            await self._to_pool(fairy, since)


class _Lanes:
    def __init__(self, engine: AsyncEngine) -> None:
        size = engine.sync_engine.pool.size() // 4  # type: ignore[attr-defined]
        self.plain = _Lane(engine, size, reuse_plans=False)
        # (no lanes in a pool of fewer than 4: switching plans per read would cost 2 statements)
        self.reusing = _Lane(engine, size, reuse_plans=size > 0)
        self.sweeper: asyncio.Task[None] | None = None
        self.size = size

    def lane(self, reuse_plans: bool) -> _Lane:
        if self.sweeper is None and self.size:
            self.sweeper = asyncio.create_task(self._sweep(), name="read-lanes")
        return self.reusing if reuse_plans else self.plain

    async def _sweep(self) -> None:
        while True:
            await asyncio.sleep(PING_IDLE_SECONDS)
            await self.plain.drop_idle(PING_IDLE_SECONDS)
            await self.reusing.drop_idle(PING_IDLE_SECONDS)

    async def drop_idle(self) -> None:
        await self.plain.drop_idle(0.0)
        await self.reusing.drop_idle(0.0)

    async def close(self) -> None:
        if self.sweeper is not None:
            self.sweeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.sweeper
            self.sweeper = None
        await self.drop_idle()


def _lost(exc: Exception) -> bool:
    from app.core.error_handlers import is_connection_problem

    return is_connection_problem(exc)


_LANES: weakref.WeakKeyDictionary[Engine, _Lanes] = weakref.WeakKeyDictionary()


def _lanes(engine: AsyncEngine) -> _Lanes:
    lanes = _LANES.get(engine.sync_engine)
    if lanes is None:
        lanes = _LANES[engine.sync_engine] = _Lanes(engine)
    return lanes


async def release_kept(engine: AsyncEngine) -> None:
    """Give the connections reads keep back to the pool (at shutdown, before disposing it)."""
    lanes = _LANES.pop(engine.sync_engine, None)
    if lanes is not None:
        await lanes.close()


@asynccontextmanager
async def read_connection(engine: AsyncEngine, *, reuse_plans: bool = False) -> AsyncIterator[Any]:
    """An asyncpg connection of the pool, in autocommit (no transaction is opened), from a read
    lane (see `_Lane`). `reuse_plans`: for statements that touch no partition of `rows`."""
    from app.core.error_handlers import is_connection_problem

    lane = _lanes(engine).lane(reuse_plans)
    fairy = await lane.take()
    try:
        yield fairy.driver_connection
    except BaseException as exc:
        if isinstance(exc, asyncio.CancelledError):
            await greenlet_spawn(fairy.invalidate, exc)  # the driver may be mid-statement
            await lane.forget(fairy)
            raise
        if isinstance(exc, Exception) and is_connection_problem(exc):
            await lane.lost(fairy, exc)
            if not isinstance(exc, (PostgresError, OSError)):
                # the driver's own (InterfaceError: "connection is closed", ...): SQLAlchemy
                # would wrap them; here they become what the error handlers answer with a 503
                raise ConnectionResetError("the database connection was lost") from exc
            raise
        await lane.give_back(fairy)  # a statement's error leaves the connection usable
        raise
    else:
        await lane.give_back(fairy)
