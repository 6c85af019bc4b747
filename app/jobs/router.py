"""Import jobs: poll one, list yours."""

from __future__ import annotations

from typing import Annotated

from fastapi import Path, Query

from app.accounts.dependencies import AccountDep, AuthenticatedRoute
from app.core.db import SessionDep
from app.core.openapi import errors
from app.core.routing import ApiRouter
from app.jobs import service
from app.jobs.schemas import JobList, JobRead, JobStatus

router = ApiRouter(prefix="/jobs", tags=["jobs"], route_class=AuthenticatedRoute)

JobId = Annotated[int, Path(ge=1, le=2**63 - 1, description="Import job id.", examples=[17])]


@router.get(
    "/",
    response_model=JobList,
    summary="Your recent import jobs, newest first",
    responses=errors(400, 401),
)
async def list_jobs(
    session: SessionDep,
    account: AccountDep,
    offset: Annotated[int, Query(ge=0, le=2**31, description="Jobs to skip.")] = 0,
    limit: Annotated[int, Query(ge=1, le=100, description="Jobs per page, 1 to 100.")] = 20,
    status: Annotated[JobStatus | None, Query(description="Only jobs in this state.")] = None,
) -> JobList:
    return await service.list_jobs(session, account, offset=offset, limit=limit, status=status)


@router.get(
    "/{job_id}/",
    response_model=JobRead,
    summary="Poll an import job: status, progress, then its result or error",
    responses=errors(400, 401, 404),
)
async def get_job(job_id: JobId, session: SessionDep, account: AccountDep) -> JobRead:
    return await service.get_job(session, account, job_id)
