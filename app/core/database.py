"""Which PostgreSQL to use: DATABASE_URL when set, else the embedded one under DATA_DIR."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from app.core.config import Settings
from app.core.embedded import EmbeddedPostgres

log = logging.getLogger("app.database")


@dataclass
class DatabaseHandle:
    url: str
    embedded: EmbeddedPostgres | None = None

    def close(self) -> None:
        """Release the embedded server (it stops when its last user is gone)."""
        if self.embedded is not None:
            self.embedded.stop()
            self.embedded = None


def open_database(settings: Settings) -> DatabaseHandle:
    """Blocking (starting the embedded server takes ~1 s the first time): call from a thread
    when an event loop is running."""
    if settings.database_url:
        return DatabaseHandle(url=settings.database_url)
    embedded = EmbeddedPostgres(
        settings.data_dir,
        run_as=settings.embedded_pg_user,
        runtime_dir=settings.embedded_runtime_dir,
    )
    url = embedded.start()
    log.info("using the embedded PostgreSQL in %s", embedded.pgdata)
    return DatabaseHandle(url=url, embedded=embedded)
