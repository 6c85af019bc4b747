"""Reads answered by one statement, on a pooled connection in autocommit.

The hottest reads (an item's details, a page of rows, the summary) are one SQL statement each:
one statement sees one snapshot, so there is nothing to BEGIN or COMMIT, and the statement goes
to the driver (asyncpg) directly, past the ORM and the session (a session costs a BEGIN and a
COMMIT round trip, and the ORM's statement building and result loading cost more CPU than the
rest of such a request together; see README "Performance", per-request cost).

The connection comes from the engine's pool (same pool, same server settings: statement_timeout,
plan_cache_mode) and goes back to it. When the statement fails because the server went away, the
pool's connections are invalidated as SQLAlchemy does for its own statements, so the next
requests reconnect; a request cancelled mid-statement (its client left) does not return its
connection to the pool.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from asyncpg import PostgresError
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.util import greenlet_spawn


def sql(statement: str) -> str:
    """Marks SQL sent to the driver directly (asyncpg, `$1` parameters), so that the scoping
    check (tests/test_scoping.py) sees it as it sees SQLAlchemy's `text()`: write it inline, in
    the function that binds its account or item."""
    return statement


@asynccontextmanager
async def read_connection(engine: AsyncEngine) -> AsyncIterator[Any]:
    """An asyncpg connection of the pool, in autocommit (no transaction is opened). Checked out
    and back in with one greenlet switch each (an `AsyncConnection` costs twice the CPU: its
    own object, a task to close it, and more switches, each copying the request's deep stack)."""
    from app.core.error_handlers import is_connection_problem

    sync_engine = engine.sync_engine
    try:
        fairy = await greenlet_spawn(sync_engine.raw_connection)
    except sync_engine.dialect.loaded_dbapi.Error as exc:  # no connection to be had: a 503
        raise ConnectionRefusedError("no database connection could be opened") from exc
    try:
        yield fairy.driver_connection
    except BaseException as exc:
        if isinstance(exc, asyncio.CancelledError):
            await greenlet_spawn(fairy.invalidate, exc)  # the driver may be mid-statement
        elif isinstance(exc, Exception) and is_connection_problem(exc):
            # every connection of the pool, as SQLAlchemy does after a disconnect
            sync_engine.pool._invalidate(fairy, exc, _checkin=False)
            await greenlet_spawn(fairy.invalidate, exc)
            if not isinstance(exc, (PostgresError, OSError)):
                # the driver's own (InterfaceError: "connection is closed", ...): SQLAlchemy
                # would wrap them; here they become what the error handlers answer with a 503
                raise ConnectionResetError("the database connection was lost") from exc
        raise
    finally:
        await greenlet_spawn(fairy.close)  # back to the pool (closed, if invalidated)
