"""Which PostgreSQL to use: DATABASE_URL when set, else the embedded one under DATA_DIR."""

from __future__ import annotations

import logging
import os
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


def embedded_server_settings() -> dict[str, str]:
    """Sizing for the embedded server (PostgreSQL's defaults are for a tiny machine): an eighth
    of the RAM for shared buffers (at most 1 GB), room for sorts and index builds, fewer
    checkpoints during big loads, no JIT (compilation costs more than it saves here), WAL
    flushed every 20 ms rather than 200 ms during long writes (a load's commit then has little
    left to flush)."""
    try:
        ram_mb = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // 2**20
    except (ValueError, OSError):
        ram_mb = 4096
    return {
        "shared_buffers": f"{max(128, min(1024, ram_mb // 8))}MB",
        "work_mem": "32MB",
        "maintenance_work_mem": f"{max(64, min(512, ram_mb // 16))}MB",
        "max_wal_size": "4GB",
        "checkpoint_timeout": "15min",
        "jit": "off",
        "wal_writer_delay": "20ms",
    }


def open_database(settings: Settings) -> DatabaseHandle:
    """Blocking (starting the embedded server takes ~1 s the first time): call from a thread
    when an event loop is running."""
    if settings.database_url:
        return DatabaseHandle(url=settings.database_url)
    embedded = EmbeddedPostgres(
        settings.data_dir,
        run_as=settings.embedded_pg_user,
        runtime_dir=settings.embedded_runtime_dir,
        extra_settings=embedded_server_settings(),
    )
    url = embedded.start()
    log.info("using the embedded PostgreSQL in %s", embedded.pgdata)
    return DatabaseHandle(url=url, embedded=embedded)
