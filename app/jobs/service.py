"""Import job rules: queueing an upload (its bytes stored with the job, so any replica can run
it), reading jobs back. Running them is `runner.py`'s business."""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from app.accounts.service import AuthenticatedAccount
from app.core import wakeup
from app.core.errors import AppError, ErrorCode, NotFound
from app.ingestion.service import UploadOptions
from app.ingestion.upload import SpooledFile
from app.jobs.repository import JobRepository
from app.jobs.schemas import JobKind, JobList, JobRead, JobStatus
from app.models import DataItem, ImportJob

TOPIC = "import_jobs"


class TooManyJobs(AppError):
    status_code = 429
    code = ErrorCode.RATE_LIMITED


def _too_many(max_pending: int) -> TooManyJobs:
    return TooManyJobs(
        f"You have {max_pending} import jobs queued or running, the most allowed "
        "(JOB_MAX_PENDING_PER_ACCOUNT); wait for one to finish.",
        headers={"Retry-After": "10"},
    )


async def _enqueue(
    session: AsyncSession,
    account: AuthenticatedAccount,
    *,
    kind: JobKind,
    upload: SpooledFile,
    params: dict[str, Any],
    data_item_id: int | None,
    request_id: str | None,
    max_pending: int,
) -> ImportJob:
    """Queue the upload as a job, unless the account already has `max_pending` unfinished.

    The cap holds under concurrent requests: after storing the upload (which may take seconds,
    and must not hold up the account's other requests), the account's lock is taken and the
    unfinished jobs counted again, this one included, before the commit. A request refused then
    rolls back with its job. The first count, without the lock, only refuses early, before the
    upload is stored."""
    repo = JobRepository(session, account.id)
    if await repo.count_unfinished() >= max_pending:
        raise _too_many(max_pending)
    job = await repo.add(
        kind=kind,
        data_item_id=data_item_id,
        params=params,
        filename=upload.filename,
        size_bytes=upload.size,
        sha256=upload.sha256,
        request_id=request_id,
    )
    await repo.store_upload(job, upload.path)
    await repo.lock_pending()  # held until the commit
    if await repo.count_unfinished() > max_pending:
        raise _too_many(max_pending)
    wakeup.notify_after_commit(session, TOPIC)
    return job


async def enqueue_create(
    session: AsyncSession,
    account: AuthenticatedAccount,
    *,
    data_name: str,
    data_description: str,
    sheet: str | None,
    upload: SpooledFile,
    request_id: str | None,
    max_pending: int,
    options: UploadOptions | None = None,
) -> ImportJob:
    return await _enqueue(
        session,
        account,
        kind=JobKind.CREATE_FROM_FILE,
        upload=upload,
        params={
            "data_name": data_name,
            "data_description": data_description,
            "sheet": sheet,
            **(options.params() if options is not None else {}),
        },
        data_item_id=None,
        request_id=request_id,
        max_pending=max_pending,
    )


async def enqueue_append(
    session: AsyncSession,
    account: AuthenticatedAccount,
    item: DataItem,
    *,
    add_new_fields: bool,
    sheet: str | None,
    upload: SpooledFile,
    request_id: str | None,
    max_pending: int,
    options: UploadOptions | None = None,
) -> ImportJob:
    return await _enqueue(
        session,
        account,
        kind=JobKind.APPEND_FROM_FILE,
        upload=upload,
        params={
            "data_item_id": item.id,
            "add_new_fields": add_new_fields,
            "sheet": sheet,
            **(options.params() if options is not None else {}),
        },
        data_item_id=item.id,
        request_id=request_id,
        max_pending=max_pending,
    )


async def get_job(session: AsyncSession, account: AuthenticatedAccount, job_id: int) -> JobRead:
    job = await JobRepository(session, account.id).get(job_id)
    if job is None or (
        account.data_items is not None
        and (job.data_item_id is None or not account.sees_item(job.data_item_id))
    ):
        raise NotFound(f"Import job {job_id} not found.")
    return JobRead.model_validate(job)


async def list_jobs(
    session: AsyncSession,
    account: AuthenticatedAccount,
    *,
    offset: int,
    limit: int,
    status: JobStatus | None,
) -> JobList:
    jobs, total = await JobRepository(session, account.id).page(
        offset=offset,
        limit=limit,
        status=None if status is None else str(status),
        only=account.data_items,
    )
    return JobList(
        total=total,
        offset=offset,
        limit=limit,
        jobs=[JobRead.model_validate(j) for j in jobs],
    )
