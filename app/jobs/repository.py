"""Import job queries for one account. (The worker's queue, which works across accounts by
design, is in `queue.py`.)"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

from sqlalchemy import Select, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.locks import AccountCap, lock_account_cap
from app.models import ImportJob

CHUNK_BYTES = 1 << 20


def _chunks(path: Path, job_id: int) -> Iterator[tuple[int, int, bytes]]:
    with path.open("rb") as f:
        seq = 0
        while block := f.read(CHUNK_BYTES):
            yield (job_id, seq, block)
            seq += 1


class JobRepository:
    def __init__(self, session: AsyncSession, account_id: int) -> None:
        self.session = session
        self.account_id = account_id

    def _scoped(self) -> Select[ImportJob]:
        return select(ImportJob).where(ImportJob.account_id == self.account_id)

    async def add(
        self,
        *,
        kind: str,
        data_item_id: int | None,
        params: dict[str, Any],
        filename: str,
        size_bytes: int,
        sha256: str,
        request_id: str | None,
    ) -> ImportJob:
        job = ImportJob(
            account_id=self.account_id,
            kind=kind,
            data_item_id=data_item_id,
            params=params,
            filename=filename,
            size_bytes=size_bytes,
            sha256=sha256,
            request_id=request_id,
        )
        self.session.add(job)
        await self.session.flush()
        await self.session.refresh(job)
        return job

    async def store_upload(self, job: ImportJob, path: Path) -> None:
        """The uploaded file's bytes, with the job (COPY, one 1 MiB chunk in memory at a time)."""
        assert job.account_id == self.account_id
        conn = await self.session.connection()
        raw = await conn.get_raw_connection()
        driver = raw.driver_connection
        assert driver is not None
        await driver.copy_records_to_table(
            "import_job_chunks", columns=["job_id", "seq", "data"], records=_chunks(path, job.id)
        )

    async def get(self, job_id: int) -> ImportJob | None:
        return (await self.session.scalars(self._scoped().where(ImportJob.id == job_id))).first()

    async def page(
        self, *, offset: int, limit: int, status: str | None, only: frozenset[int] | None = None
    ) -> tuple[list[ImportJob], int]:
        """The account's jobs (`only`: into these items), newest first, and how many there are."""
        where = [ImportJob.account_id == self.account_id]
        if only is not None:
            where.append(ImportJob.data_item_id.in_(sorted(only)))
        if status is not None:
            where.append(ImportJob.status == status)
        stmt = (
            select(ImportJob, func.count().over())
            .where(*where)
            .order_by(ImportJob.id.desc())
            .offset(offset)
            .limit(limit)
        )
        rows = (await self.session.execute(stmt)).all()
        if rows:
            return [job for job, _ in rows], int(rows[0][1])
        total = await self.session.scalar(select(func.count()).select_from(ImportJob).where(*where))
        return [], int(total or 0)

    async def lock_pending(self) -> None:
        """Until this transaction ends, no other transaction of the account counts or queues
        (behind this lock): a count taken after it stays true until the commit."""
        await lock_account_cap(self.session, AccountCap.IMPORT_JOBS, self.account_id)

    async def count_unfinished(self) -> int:
        stmt = (
            select(func.count())
            .select_from(ImportJob)
            .where(
                ImportJob.account_id == self.account_id,
                ImportJob.status.in_(("queued", "running")),
            )
        )
        return int(await self.session.scalar(stmt) or 0)
