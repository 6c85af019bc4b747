"""The HTTP side of queueing an import job: the 202 answer with the job and where to poll it,
and how the endpoints that can run as a job document it."""

from __future__ import annotations

from typing import Any

from fastapi import Request
from fastapi.responses import JSONResponse

from app.core.routing import API_PREFIX
from app.core.schemas import ErrorBody
from app.jobs.schemas import JobRead
from app.models import ImportJob

ACCEPTED_RESPONSES: dict[int | str, dict[str, Any]] = {
    202: {
        "model": JobRead,
        "description": (
            "With `?async=true`: the import job, queued. Poll the `Location` header's URL "
            "(`GET /api/v1/jobs/{id}/`)."
        ),
    },
    429: {
        "model": ErrorBody,
        "description": "With `?async=true`: too many import jobs queued or running for you.",
    },
}


def job_url(request: Request, job_id: int) -> str:
    root = str(request.scope.get("root_path", "")).rstrip("/")
    return f"{root}{API_PREFIX}/jobs/{job_id}/"


def accepted(request: Request, job: ImportJob) -> JSONResponse:
    """202 with the queued job, and where to poll it."""
    return JSONResponse(
        JobRead.model_validate(job).model_dump(mode="json"),
        status_code=202,
        headers={"Location": job_url(request, job.id)},
    )
