"""The import job worker: runs in every service process, started and stopped by the lifespan.

Each of JOB_WORKERS loops claims the oldest queued job (SKIP LOCKED, see `queue.py`), copies its
upload from PostgreSQL to a local spool file, and runs the same service function as the
synchronous endpoint in ONE transaction on the claiming connection. That transaction also marks
the job succeeded (only if it is still running for this worker) and queues `import.succeeded`, so
the data, the job's success and its event become visible together; on any failure it rolls back
and a separate transaction marks the job failed with the error the synchronous call would have
given. Progress and heartbeats are committed on other connections, so polls see them meanwhile.

A reaper loop (in every process, also with JOB_WORKERS=0) fails running jobs whose process is
gone or silent, at start-up and then every poll interval.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

import anyio
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession

from app.accounts.service import AuthenticatedAccount
from app.core import wakeup
from app.core.config import Settings, spool_dir
from app.core.db import create_sessionmaker
from app.core.errors import AppError
from app.data_items.dependencies import owned_item
from app.ingestion import service as ingestion_service
from app.ingestion.results import append_result, create_result
from app.ingestion.upload import SpooledFile, spool_path
from app.jobs import queue
from app.jobs.outcomes import app_error, interrupted_error, job_data, unexpected_error
from app.jobs.schemas import JobKind
from app.jobs.service import TOPIC
from app.rows.maintenance import RowMaintenance
from app.webhooks import service as webhooks_service
from app.webhooks.schemas import WebhookEvent

log = logging.getLogger("app.jobs")

_PURGE_EVERY = 3600.0


class LostJob(Exception):
    """The job stopped being ours (the reaper failed it): roll back."""


class _Beat:
    """Progress and heartbeat of one running job, written on connections of their own."""

    def __init__(self, engine: AsyncEngine, job_id: int, worker: str) -> None:
        self.engine = engine
        self.job_id = job_id
        self.worker = worker
        self.done = 0
        self.total: int | None = None
        self.lost = False
        self._lock = asyncio.Lock()

    async def write(self) -> None:
        async with self._lock:
            if not await queue.beat(
                self.engine, self.job_id, worker=self.worker, done=self.done, total=self.total
            ):
                self.lost = True

    async def progress(self, done: int, total: int) -> None:
        self.done, self.total = done, total
        await self.write()
        if self.lost:
            raise LostJob

    async def run(self, every: float) -> None:
        while not self.lost:
            await asyncio.sleep(every)
            try:
                await self.write()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.warning("heartbeat of job %s failed", self.job_id, exc_info=True)


class ImportJobRunner:
    def __init__(
        self,
        engine: AsyncEngine,
        settings: Settings,
        *,
        slots: anyio.Semaphore,
        maintenance: RowMaintenance,
    ) -> None:
        self.engine = engine
        self.settings = settings
        self.slots = slots
        self.maintenance = maintenance
        self.sessionmaker = create_sessionmaker(engine, settings)
        self.worker_id = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self._wake = asyncio.Event()
        self._resumed = asyncio.Event()
        self._resumed.set()
        self._claiming = asyncio.Lock()
        self._running = 0
        self._idle = asyncio.Event()
        self._idle.set()
        self._tasks: list[asyncio.Task[None]] = []

    # lifecycle ------------------------------------------------------------------------------
    def start(self) -> None:
        wakeup.subscribe(TOPIC, self.wake)
        self._tasks.append(asyncio.create_task(self._reaper(), name="import-job-reaper"))
        for i in range(self.settings.job_workers):
            self._tasks.append(asyncio.create_task(self._worker(), name=f"import-job-worker-{i}"))

    def wake(self) -> None:
        self._wake.set()

    @property
    def running(self) -> bool:
        """Started, and none of its loops (the reaper, each worker) has ended."""
        return bool(self._tasks) and not any(task.done() for task in self._tasks)

    async def stop(self) -> None:
        """Stop now: a running job is rolled back and marked failed (interrupted)."""
        wakeup.unsubscribe(TOPIC, self.wake)
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks = []

    @contextlib.asynccontextmanager
    async def paused(self) -> AsyncIterator[None]:
        """Claim no job until the block ends (a job under way finishes first)."""
        async with self._claiming:
            self._resumed.clear()
        try:
            await self._idle.wait()
            yield
        finally:
            self._resumed.set()
            self.wake()

    # loops ----------------------------------------------------------------------------------
    async def _worker(self) -> None:
        while True:
            await self._resumed.wait()
            self._wake.clear()
            try:
                ran = await self.run_once()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.warning("import job worker round failed; will retry", exc_info=True)
                ran = False
            if ran:
                continue
            # asyncio.timeout, not wait_for: on 3.11 wait_for can swallow a cancel
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.settings.worker_poll_seconds):
                    await self._wake.wait()

    async def _reaper(self) -> None:
        last_purge = 0.0
        while True:
            try:
                await self.reap()
                if time.monotonic() - last_purge > _PURGE_EVERY:
                    last_purge = time.monotonic()
                    removed = await queue.purge(self.engine, days=self.settings.job_retention_days)
                    if removed:
                        log.info("removed %d old import jobs", removed)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.warning("import job reaper failed; will retry", exc_info=True)
            await asyncio.sleep(self.settings.worker_poll_seconds)

    # work -----------------------------------------------------------------------------------
    async def reap(self) -> int:
        """Fail running jobs whose process is gone, or silent for longer than the lease."""
        lease = self.settings.job_lease_seconds
        async with self.sessionmaker() as session, session.begin():
            found = await queue.orphans(session, lease_seconds=lease)
            for orphan in found:
                why = (
                    "the service process running it stopped (a restart or a crash) before it "
                    "finished"
                    if orphan.owner_gone
                    else f"the service process running it stopped responding for over {lease:g} s"
                )
                job = await queue.fail(session, orphan.id, error=interrupted_error(why))
                if job is not None:
                    log.warning("import job %s failed: interrupted (%s)", job.id, why)
                    await webhooks_service.emit(
                        session,
                        account_id=job.account_id,
                        event=WebhookEvent.IMPORT_FAILED,
                        data=job_data(job),
                    )
        return len(found)

    async def run_once(self) -> bool:
        """Claim and run one queued job. False if there was none."""
        async with self.slots:
            async with self._claiming:
                if not self._resumed.is_set():
                    return False
                conn = await self.engine.connect()
                try:
                    job = await queue.claim(conn, worker=self.worker_id)
                except BaseException:
                    await conn.invalidate()
                    await conn.close()
                    raise
                if job is None:
                    await conn.close()
                    return False
                self._running += 1
                self._idle.clear()
            try:
                await self._run(conn, job)
            finally:
                self._running -= 1
                if self._running == 0:
                    self._idle.set()
        return True

    async def _run(self, conn: AsyncConnection, job: queue.ClaimedJob) -> None:
        log.info("import job %s (%s of %s) started", job.id, job.kind, job.filename)
        beat = _Beat(self.engine, job.id, self.worker_id)
        heartbeat = asyncio.create_task(beat.run(self.settings.job_lease_seconds / 3))
        path = spool_path(spool_dir(self.settings))
        error: dict[str, Any] | None = None
        clean = False
        try:
            try:
                await anyio.Path(path.parent).mkdir(parents=True, exist_ok=True)
                await queue.download(conn, job.id, path)
                upload = SpooledFile(path, job.filename, job.size_bytes, job.sha256)
                item_id = await self._import(conn, job, upload, beat)
                clean = True
            except LostJob:
                log.warning("import job %s was failed by a reaper; rolled back", job.id)
                clean = True
                return
            except AppError as exc:
                clean = True
                error = app_error(exc)
            except asyncio.CancelledError:
                error = interrupted_error("the service shut down before it finished")
                raise
            except Exception:
                log.exception("import job %s failed unexpectedly", job.id)
                error = unexpected_error(job.id)
        finally:
            heartbeat.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await heartbeat
            await anyio.to_thread.run_sync(lambda: path.unlink(missing_ok=True))
            if clean:  # mark it failed while still holding its lock: no reaper gets in between
                if error is not None:
                    await self._fail(job.id, error)
                await self._release(conn, job.id)
            else:  # first end the (possibly half-finished) transaction, then mark it failed
                await self._discard(conn, job.id)
                if error is not None:
                    await self._fail(job.id, error)
        if error is None:
            self.maintenance.item_changed(item_id, loaded=True)

    async def _import(
        self, conn: AsyncConnection, job: queue.ClaimedJob, upload: SpooledFile, beat: _Beat
    ) -> int:
        """The upload, in one transaction with the job's success. The new or target item's id."""
        account = AuthenticatedAccount(id=job.account_id, name=job.account_name, key_id=0)
        params = job.params
        async with (
            AsyncSession(
                bind=conn,
                expire_on_commit=False,
                autoflush=False,
                info={"settings": self.settings},
            ) as session,
            session.begin(),
        ):
            result: dict[str, Any]
            if job.kind == JobKind.CREATE_FROM_FILE:
                created = await ingestion_service.create_from_file(
                    session,
                    account,
                    data_name=params["data_name"],
                    data_description=params.get("data_description", ""),
                    upload=upload,
                    sheet=params.get("sheet"),
                    settings=self.settings,
                    options=ingestion_service.UploadOptions.from_params(params),
                    progress=beat.progress,
                )
                item_id, rows, reference = created.item.id, created.rows, created.reference
                result = create_result(created).model_dump(mode="json")
            else:
                target = job.data_item_id or int(params["data_item_id"])
                item = await owned_item(target, session, account)
                appended = await ingestion_service.append_from_file(
                    session,
                    item,
                    upload=upload,
                    add_new_fields=bool(params.get("add_new_fields")),
                    sheet=params.get("sheet"),
                    settings=self.settings,
                    maintenance=self.maintenance,
                    options=ingestion_service.UploadOptions.from_params(params),
                    progress=beat.progress,
                )
                item_id, rows, reference = item.id, appended.rows, appended.reference
                result = append_result(appended).model_dump(mode="json")
            finished = await queue.succeed(
                session,
                job.id,
                worker=self.worker_id,
                result=result,
                data_item_id=item_id,
                reference_file_id=reference.id,
                rows=rows,
            )
            if finished is None:
                raise LostJob
            await webhooks_service.emit(
                session,
                account_id=job.account_id,
                event=WebhookEvent.IMPORT_SUCCEEDED,
                data=job_data(finished),
            )
        log.info("import job %s succeeded: data item %s, %d rows", job.id, item_id, rows)
        return item_id

    async def _release(self, conn: AsyncConnection, job_id: int) -> None:
        """Give the claiming connection back to the pool without the job's lock."""
        try:
            await queue.release(conn, job_id)
        except Exception:
            log.warning("could not unlock job %s; discarding its connection", job_id)
            await self._discard(conn, job_id)
        else:
            await conn.close()

    async def _discard(self, conn: AsyncConnection, job_id: int) -> None:
        """Close the claiming connection for good: PostgreSQL rolls back whatever was open on it
        and drops the job's lock. For when its state is unknown (an interruption)."""
        try:
            await conn.invalidate()
            await conn.close()
        except Exception:
            log.warning("could not discard job %s's connection", job_id, exc_info=True)

    async def _fail(self, job_id: int, error: dict[str, Any]) -> None:
        try:
            with anyio.fail_after(15, shield=True):
                async with self.sessionmaker() as session, session.begin():
                    job = await queue.fail(session, job_id, error=error, worker=self.worker_id)
                    if job is not None:
                        await webhooks_service.emit(
                            session,
                            account_id=job.account_id,
                            event=WebhookEvent.IMPORT_FAILED,
                            data=job_data(job),
                        )
            log.info("import job %s failed: %s", job_id, error["error"])
        except Exception:
            # its lock is gone with the connection: a reaper fails it shortly
            log.warning("could not mark import job %s failed", job_id, exc_info=True)
