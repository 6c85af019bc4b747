"""Background upkeep of row storage that must not run inside a request: dropping the partitions
of deleted items. Runs in the service process, coalescing requests, and at start-up."""

from __future__ import annotations

import asyncio
import contextlib
import logging

from sqlalchemy.ext.asyncio import AsyncEngine

from app.rows import partitions

log = logging.getLogger("app.rows.maintenance")


class RowMaintenance:
    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="row-maintenance")
        self._wake.set()  # sweep once at start-up

    def sweep_soon(self) -> None:
        self._wake.set()

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def sweep_now(self) -> int:
        return await partitions.drop_orphan_partitions(self.engine)

    async def _run(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=300)
            self._wake.clear()
            try:
                await self.sweep_now()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.warning("row maintenance failed; will retry", exc_info=True)
