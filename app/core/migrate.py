"""Run Alembic migrations from the service (start-up and `python -m app migrate`)."""

from __future__ import annotations

import logging
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import text
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import create_async_engine

log = logging.getLogger("app.migrate")

PROJECT_ROOT = Path(__file__).resolve().parents[2]
# Any constant works; it only has to be the same in every replica.
_MIGRATION_LOCK_KEY = 0x6461_7461_6974  # "datait"


def alembic_config(connection: Connection | None = None) -> Config:
    cfg = Config(str(PROJECT_ROOT / "alembic.ini"))
    cfg.set_main_option("script_location", str(PROJECT_ROOT / "migrations"))
    if connection is not None:
        cfg.attributes["connection"] = connection
    return cfg


def _upgrade(connection: Connection) -> None:
    # Replicas starting together take turns; the second finds nothing left to do.
    connection.execute(text("SELECT pg_advisory_lock(:k)"), {"k": _MIGRATION_LOCK_KEY})
    try:
        command.upgrade(alembic_config(connection), "head")
    finally:
        connection.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": _MIGRATION_LOCK_KEY})


async def migrate(url: str) -> None:
    engine = create_async_engine(url, pool_size=1, max_overflow=0)
    try:
        async with engine.connect() as connection:
            await connection.run_sync(_upgrade)
            await connection.commit()
    finally:
        await engine.dispose()
    log.info("database schema is up to date")
