"""Database engine and the per-request unit of work.

Each request gets one session. It commits when the endpoint returns and rolls back on any error;
the dependency has `scope="function"`, so the commit happens before the response is sent and a
failed commit becomes an error response instead of a 200 for data that was never saved.
Services never commit; they `flush()` when they need ids.
"""

from __future__ import annotations

import json
import logging
import time
import weakref
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from decimal import Decimal
from typing import Annotated, Any

from fastapi import Depends, Request
from sqlalchemy import Engine, event, text
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.ext.asyncio import (
    AsyncConnection,
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from app.core.config import Settings


def create_engine(url: str, settings: Settings, **overrides: Any) -> AsyncEngine:
    options: dict[str, Any] = {
        # JSONB numbers come back as Decimal, never as binary floats
        "json_deserializer": lambda value: json.loads(value, parse_float=Decimal),
        "pool_size": settings.db_pool_size,
        "max_overflow": settings.db_max_overflow,
        "pool_timeout": settings.db_pool_timeout,
        # stale connections are checked before use, but only those idle for a while: see
        # `_ping_idle_connections` (a ping is three round trips: BEGIN, a query, ROLLBACK)
        "pool_pre_ping": False,
        "pool_recycle": 1800,
        # errors and logs never carry bound values: cell values, filter values, secrets
        "hide_parameters": True,
        "connect_args": {
            "server_settings": {
                "application_name": "data-items-service",
                # rows is partitioned per item: plan each statement for its own item
                "plan_cache_mode": "force_custom_plan",
                # every statement is bounded; bulk work raises it (`long_statements`)
                "statement_timeout": str(int(settings.statement_timeout_seconds * 1000)),
                # Statements stay correct if someone else's query is slow; ours are bounded.
                "idle_in_transaction_session_timeout": "600000",
            },
            "timeout": 10,
        },
    }
    options.update(overrides)
    engine = create_async_engine(url, **options)
    _ENGINE_SETTINGS[engine.sync_engine] = settings
    if not options["pool_pre_ping"]:
        _ping_idle_connections(engine)
    return engine


# A pooled connection back from a request less than this long ago is used without a ping.
PING_IDLE_SECONDS = 1.0


def _ping_idle_connections(engine: AsyncEngine) -> None:
    """Ping a pooled connection before handing it out when it has been idle (in the pool) for
    PING_IDLE_SECONDS or more; a dead one is replaced, transparently. A connection that was in
    use a moment ago is handed out as it is: when the server went away meanwhile, the first
    statement on it fails (503 DATABASE_UNAVAILABLE, as any request during an outage), and
    that failure invalidates every connection the pool holds, so the next checkouts reconnect.
    Under load, this saves three round trips per request (SQLAlchemy's pre-ping is a BEGIN, a
    query and a ROLLBACK)."""
    sync_engine = engine.sync_engine
    dialect = sync_engine.dialect

    @event.listens_for(sync_engine, "checkin")
    def checked_in(dbapi_connection: Any, record: Any) -> None:
        # (a connection kept by reads for a while, app/core/reads.py, has been idle since then)
        record.info["idle_since"] = record.info.pop("idle_since_kept", None) or time.monotonic()

    @event.listens_for(sync_engine, "checkout")
    def checked_out(dbapi_connection: Any, record: Any, proxy: Any) -> None:
        idle_since = record.info.pop("idle_since", None)
        if idle_since is None or time.monotonic() - idle_since < PING_IDLE_SECONDS:
            return  # a new connection, or one in use a moment ago
        try:
            dialect.do_ping(dbapi_connection)
        except Exception as exc:  # SQLAlchemy replaces the connection and checks out again
            raise DisconnectionError("stale pooled connection") from exc


# The settings each engine was made with, for code that has only a session or a connection.
_ENGINE_SETTINGS: weakref.WeakKeyDictionary[Engine, Settings] = weakref.WeakKeyDictionary()


def _long_timeout_ms(target: AsyncSession | AsyncConnection) -> int:
    bind = target.engine if isinstance(target, AsyncConnection) else target.bind
    settings = _ENGINE_SETTINGS.get(bind.sync_engine) if isinstance(bind, AsyncEngine) else None
    if settings is None:
        from app.core.config import get_settings

        settings = get_settings()
    return int(settings.long_statement_timeout_seconds * 1000)


async def long_statements(target: AsyncSession | AsyncConnection) -> None:
    """Raise the statement timeout to LONG_STATEMENT_TIMEOUT_SECONDS for the rest of the
    current transaction: bulk work (a load, a type change, a copy, a download's snapshot)."""
    await target.execute(text(f"SET LOCAL statement_timeout = {_long_timeout_ms(target)}"))


@asynccontextmanager
async def long_session_statements(conn: AsyncConnection) -> AsyncIterator[None]:
    """The same for statements outside a transaction block (autocommit: VACUUM, CREATE INDEX
    CONCURRENTLY), reset before the connection goes back to the pool."""
    await conn.execute(text(f"SET statement_timeout = {_long_timeout_ms(conn)}"))
    try:
        yield
    finally:
        try:
            await conn.execute(text("RESET statement_timeout"))
        except BaseException:  # never pool a connection that keeps the long timeout
            await conn.invalidate()
            raise


def create_sessionmaker(
    engine: AsyncEngine, settings: Settings | None = None
) -> async_sessionmaker[AsyncSession]:
    """Sessions on `engine`; with `settings`, each session carries them in `session.info`
    (for rules applied deep inside a transaction, such as the webhook delivery cap)."""
    info = {} if settings is None else {"settings": settings}
    return async_sessionmaker(engine, expire_on_commit=False, autoflush=False, info=info)


log = logging.getLogger("app.db")


async def read_snapshot(session: AsyncSession) -> None:
    """End the request's current (read-only so far) transaction and start a REPEATABLE READ READ
    ONLY one: the statements that follow see one snapshot, so a count and the page it describes
    agree even while other requests write."""
    await session.commit()
    await session.connection(
        execution_options={"isolation_level": "REPEATABLE READ", "postgresql_readonly": True}
    )


async def end_reads(session: AsyncSession) -> None:
    """End the request's transaction, which has only read so far, so that its connection goes
    back to the pool before slow work that needs no database (drawing a chart). The session
    begins a new transaction if it is used again; the request's commit then has nothing to do."""
    await session.commit()


def after_commit(request: Request, callback: Callable[[], None]) -> None:
    """Run `callback` once this request's transaction has committed (not if it rolls back)."""
    callbacks: list[Callable[[], None]] = request.scope.setdefault("state", {}).setdefault(
        "after_commit", []
    )
    callbacks.append(callback)


async def get_session(request: Request) -> AsyncIterator[AsyncSession]:
    async with request_session(request) as session:
        yield session


@asynccontextmanager
async def request_session(request: Request) -> AsyncIterator[AsyncSession]:
    """The request's unit of work (what `SessionDep` gives), for a handler that opens it only
    on some of its paths: commits when the block ends, rolls back on any error."""
    sessionmaker: async_sessionmaker[AsyncSession] = request.app.state.sessionmaker
    async with sessionmaker() as session:
        try:
            yield session
        except BaseException:
            await session.rollback()
            raise
        else:
            await session.commit()
            for callback in request.scope.get("state", {}).get("after_commit", []):
                try:
                    callback()
                except Exception:  # never fail a committed request on a follow-up
                    log.warning("after-commit callback failed", exc_info=True)


SessionDep = Annotated[AsyncSession, Depends(get_session, scope="function")]
