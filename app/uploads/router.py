"""Uploads: the files your items were created or appended from, across your items."""

from __future__ import annotations

from typing import Annotated

from fastapi import Query

from app.accounts.dependencies import AccountDep, AuthenticatedRoute
from app.core.db import SessionDep
from app.core.openapi import errors
from app.core.routing import ApiRouter
from app.core.schemas import DeletedResult
from app.uploads import service
from app.uploads.dependencies import ApiRootDep, UploadId
from app.uploads.schemas import UploadList, UploadRead

router = ApiRouter(prefix="/uploads", tags=["uploads"], route_class=AuthenticatedRoute)


@router.get(
    "/",
    response_model=UploadList,
    summary="List your uploads (the files your items were loaded from), newest first",
    description=(
        "Every file kept with one of your items, across all of them: the file of each "
        "`create-from-file` and `append-from-file` (with or without `?async=true`), newest "
        "first, each with its item and, for an upload made as an import job, the job. "
        f"`offset` (default 0) and `limit` (1 to {service.MAX_LIST_LIMIT:,}; default "
        f"{service.MAX_LIST_LIMIT:,}) page the list; `total` counts all your uploads, so "
        "`total > offset + len(uploads)` means there are more."
    ),
    responses=errors(400, 401),
)
async def list_uploads(
    session: SessionDep,
    account: AccountDep,
    api_root: ApiRootDep,
    offset: Annotated[int, Query(ge=0, le=2**31, description="Uploads to skip.", examples=[0])] = 0,
    limit: Annotated[
        int,
        Query(
            ge=1,
            le=service.MAX_LIST_LIMIT,
            description=f"Uploads per page, 1 to {service.MAX_LIST_LIMIT:,} (the default).",
            examples=[50],
        ),
    ] = service.MAX_LIST_LIMIT,
) -> UploadList:
    return await service.list_uploads(
        session, account, offset=offset, limit=limit, api_root=api_root
    )


@router.get(
    "/{upload_id}/",
    response_model=UploadRead,
    summary="Get one upload: its file, item, job and download URL",
    description=(
        "The upload as the list shows it. `download_url` gives the file back byte for byte. "
        "Another account's upload is a 404, like one that does not exist."
    ),
    responses=errors(400, 401, 404),
)
async def get_upload(
    upload_id: UploadId, session: SessionDep, account: AccountDep, api_root: ApiRootDep
) -> UploadRead:
    return await service.get_upload(session, account, upload_id, api_root=api_root)


@router.delete(
    "/{upload_id}/",
    response_model=DeletedResult,
    summary="Delete an uploaded file; the rows it brought stay",
    description=(
        "Removes the stored file: it is no longer listed here or in its item's "
        "`reference_files`, its download is a 404, and your usage's `reference_file_bytes` "
        "drops by its size. The rows, fields and statistics it brought to the item stay. "
        "Does not wait for an upload running into the same item."
    ),
    responses=errors(400, 401, 404),
)
async def delete_upload(
    upload_id: UploadId, session: SessionDep, account: AccountDep
) -> DeletedResult:
    await service.delete_upload(session, account, upload_id)
    return DeletedResult(deleted=True)
