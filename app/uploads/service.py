"""Upload rules: the account's reference files listed across its items, read, and deleted
(the file only: the rows it brought stay)."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from app.accounts.service import AuthenticatedAccount
from app.core.db import long_statements
from app.core.errors import NotFound
from app.jobs.schemas import JobKind, JobStatus
from app.uploads.repository import UploadRecord, UploadRepository
from app.uploads.schemas import UploadJob, UploadList, UploadRead

# The most uploads one page of GET /uploads/ holds, and its size when no `limit` is given (as
# for GET /data-items/).
MAX_LIST_LIMIT = 1000


def _read(record: UploadRecord, api_root: str) -> UploadRead:
    job = None
    if record.job_id is not None and record.job_status and record.job_kind:
        job = UploadJob(
            id=record.job_id, status=JobStatus(record.job_status), kind=JobKind(record.job_kind)
        )
    return UploadRead(
        id=record.id,
        data_item_id=record.data_item_id,
        data_item_name=record.data_item_name,
        filename=record.filename,
        content_type=record.content_type,
        size=record.size_bytes,
        sha256=record.sha256,
        created_at=record.created_at,
        job=job,
        download_url=f"{api_root}/data-items/{record.data_item_id}/reference-files/{record.id}/",
    )


def _not_found(upload_id: int) -> NotFound:
    return NotFound(f"Upload {upload_id} not found.")


async def list_uploads(
    session: AsyncSession,
    account: AuthenticatedAccount,
    *,
    offset: int,
    limit: int,
    api_root: str,
) -> UploadList:
    """`api_root`: the API's path as the client reaches it (a gateway's prefix included), for
    each upload's `download_url`."""
    records, total = await UploadRepository(session, account.id, account.data_items).page(
        offset=offset, limit=limit
    )
    return UploadList(
        total=total, offset=offset, limit=limit, uploads=[_read(r, api_root) for r in records]
    )


async def get_upload(
    session: AsyncSession, account: AuthenticatedAccount, upload_id: int, *, api_root: str
) -> UploadRead:
    record = await UploadRepository(session, account.id, account.data_items).get(upload_id)
    if record is None:
        raise _not_found(upload_id)
    return _read(record, api_root)


async def delete_upload(
    session: AsyncSession, account: AuthenticatedAccount, upload_id: int
) -> None:
    """Delete the stored file (its row and its chunks); the rows it brought, the item's fields
    and statistics stay as they are.

    The item is share-locked first (`hold_item`), not locked as a row write locks it: removing
    a file changes none of what a writer of the item validates against or counts, so a running
    append into the same item (which holds the item's row lock until it commits, maybe for
    minutes) is not waited for, and does not wait for this. The share lock keeps the item from
    being deleted until this commits: an item's delete removes this file too (and clears the
    same job's link), and the two taking those rows in different orders could deadlock. Two
    deletes of one upload: the second finds it gone, a 404."""
    repo = UploadRepository(session, account.id, account.data_items)
    item_id = await repo.hold_item(upload_id)
    if item_id is None:
        raise _not_found(upload_id)
    await long_statements(session)  # a big file is many chunks
    if not await repo.delete(upload_id, item_id=item_id):
        raise _not_found(upload_id)
