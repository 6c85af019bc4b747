"""The job worker's queue: jobs of every account, claimed with SKIP LOCKED.

These queries work across accounts by design (the worker runs everyone's jobs); nothing here is
reachable from a request.

Ownership of a running job, two ways, so that a job is never left "running":
- The claiming connection takes a *session* advisory lock on the job before the claim commits, and
  keeps it (and that connection) until the job has ended. If the process dies, PostgreSQL ends its
  connections and the lock is gone: a reaper that can take the lock knows the owner is gone.
- The owner heartbeats (`heartbeat_at`) from a separate connection. A job without a heartbeat for
  JOB_LEASE_SECONDS is also failed (a hung process, or a connection PostgreSQL has not yet noticed
  is dead). Its owner then finds the job no longer running when it tries to finish, and rolls back.
Whatever ends a job changes `status` only `WHERE status = 'running'` (and, for the owner, its
worker id): exactly one ending wins.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio
from sqlalchemy import delete, func, text, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession

from app.models import ImportJob, ImportJobChunk

LOCK_CLASS = 7_303  # pg advisory lock namespace for jobs (row maintenance uses 7_302)


def _lock_args(job_id: int) -> dict[str, int]:
    return {"cls": LOCK_CLASS, "obj": int(job_id) % 2_147_483_647}


@dataclass(frozen=True)
class ClaimedJob:
    id: int
    account_id: int
    account_name: str
    kind: str
    data_item_id: int | None
    params: dict[str, Any]
    filename: str
    size_bytes: int
    sha256: str


async def claim(conn: AsyncConnection, *, worker: str) -> ClaimedJob | None:
    """The oldest queued job, now running for `worker`, locked by `conn`'s session (release it
    with `release`). Commits on `conn`."""
    row = (
        await conn.execute(
            text(
                """
                SELECT j.id, j.account_id, a.name, j.kind, j.data_item_id, j.params, j.filename,
                       j.size_bytes, j.sha256
                  FROM import_jobs j JOIN accounts a ON a.id = j.account_id
                 WHERE j.status = 'queued'
                 ORDER BY j.id
                 LIMIT 1
                   FOR UPDATE OF j SKIP LOCKED
                """
            )
        )
    ).one_or_none()
    if row is None:
        await conn.rollback()
        return None
    job = ClaimedJob(*row)
    await conn.execute(text("SELECT pg_advisory_lock(:cls, :obj)"), _lock_args(job.id))
    await conn.execute(
        text(
            """
            UPDATE import_jobs
               SET status = 'running', worker = :worker, started_at = now(), heartbeat_at = now()
             WHERE id = :id
            """
        ),
        {"worker": worker, "id": job.id},
    )
    await conn.commit()
    return job


async def release(conn: AsyncConnection, job_id: int) -> None:
    await conn.execute(text("SELECT pg_advisory_unlock(:cls, :obj)"), _lock_args(job_id))
    await conn.commit()


async def download(conn: AsyncConnection, job_id: int, path: Path) -> None:
    """The job's uploaded file, chunk by chunk, into `path`."""
    out = await anyio.open_file(path, "wb")
    try:
        seq = 0
        while True:
            block = (
                await conn.execute(
                    text("SELECT data FROM import_job_chunks WHERE job_id = :job AND seq = :seq"),
                    {"job": job_id, "seq": seq},
                )
            ).scalar_one_or_none()
            if block is None:
                break
            await out.write(bytes(block))
            seq += 1
    finally:
        await out.aclose()
    await conn.commit()


async def beat(
    engine: AsyncEngine, job_id: int, *, worker: str, done: int, total: int | None
) -> bool:
    """Heartbeat and progress, committed at once on a connection of its own (so polls see it
    while the job's transaction is open). False if the job is no longer running for `worker`."""
    async with engine.begin() as conn:
        result = await conn.execute(
            text(
                """
                UPDATE import_jobs
                   SET heartbeat_at = now(), rows_processed = :done,
                       rows_total = coalesce(:total, rows_total)
                 WHERE id = :id AND status = 'running' AND worker = :worker
                """
            ),
            {"done": done, "total": total, "id": job_id, "worker": worker},
        )
    return bool(result.rowcount)


async def succeed(
    session: AsyncSession,
    job_id: int,
    *,
    worker: str,
    result: dict[str, Any],
    data_item_id: int,
    reference_file_id: int,
    rows: int,
) -> ImportJob | None:
    """In the job's own transaction: succeeded, with its result and the reference file it
    stored, and the upload dropped. None if the job is no longer running for `worker` (then the
    caller must roll back)."""
    return await _finish(
        session,
        job_id,
        worker,
        status="succeeded",
        result=result,
        data_item_id=data_item_id,
        reference_file_id=reference_file_id,
        rows_processed=rows,
    )


async def fail(
    session: AsyncSession, job_id: int, *, error: dict[str, Any], worker: str | None = None
) -> ImportJob | None:
    """Failed with `error`, the upload dropped, nothing else kept. Only a running job (of
    `worker`, when given) changes; None otherwise."""
    return await _finish(session, job_id, worker, status="failed", error=error)


async def _finish(
    session: AsyncSession, job_id: int, worker: str | None, **values: Any
) -> ImportJob | None:
    """A running job (of `worker`, when given) set to `values` and finished, its upload dropped;
    None if it was not running."""
    conditions = [ImportJob.id == job_id, ImportJob.status == "running"]
    if worker is not None:
        conditions.append(ImportJob.worker == worker)
    stmt = (
        update(ImportJob)
        .where(*conditions)
        .values(**values, finished_at=func.now())
        .returning(ImportJob)
        .execution_options(populate_existing=True)
    )
    job = (await session.scalars(stmt)).one_or_none()
    if job is not None:
        await session.execute(delete(ImportJobChunk).where(ImportJobChunk.job_id == job_id))
    return job


@dataclass(frozen=True)
class Orphan:
    id: int
    account_id: int
    owner_gone: bool  # else: its heartbeat is too old


async def orphans(session: AsyncSession, *, lease_seconds: float) -> list[Orphan]:
    """Running jobs whose owner is gone (its lock is free) or silent for longer than the lease,
    row-locked in the session's transaction. The lock probe is transaction-scoped: it is released
    when the caller commits. In account order: failing them emits events, each taking its
    account's webhook delivery lock, and two reapers taking those in one order cannot deadlock."""
    rows = (
        await session.execute(
            text(
                """
                SELECT id, account_id,
                       heartbeat_at < now() - make_interval(secs => :lease) AS stale
                  FROM import_jobs
                 WHERE status = 'running'
                 ORDER BY account_id, id
                 LIMIT 100
                   FOR UPDATE SKIP LOCKED
                """
            ),
            {"lease": lease_seconds},
        )
    ).all()
    found: list[Orphan] = []
    for job_id, account_id, stale in rows:
        free = (
            await session.execute(
                text("SELECT pg_try_advisory_xact_lock(:cls, :obj)"), _lock_args(job_id)
            )
        ).scalar_one()
        if free or stale:
            found.append(Orphan(int(job_id), int(account_id), owner_gone=bool(free)))
    return found


async def purge(engine: AsyncEngine, *, days: int) -> int:
    async with engine.begin() as conn:
        result = await conn.execute(
            text(
                "DELETE FROM import_jobs WHERE status IN ('succeeded', 'failed') "
                "AND finished_at < now() - make_interval(days => :days)"
            ),
            {"days": days},
        )
    return int(result.rowcount or 0)
