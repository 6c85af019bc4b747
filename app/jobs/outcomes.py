"""How a job ended, as stored in its `error` column and announced in events."""

from __future__ import annotations

from typing import Any

from app.core.errors import AppError, ErrorCode
from app.jobs.schemas import JobError, JobErrorCode, JobRead
from app.models import ImportJob


def interrupted_error(why: str) -> dict[str, Any]:
    return JobError(
        status=503,
        error=(f"The import was interrupted: {why}. Nothing was imported; upload the file again."),
        code=JobErrorCode.INTERRUPTED,
    ).model_dump(mode="json", exclude_none=True)


def app_error(exc: AppError) -> dict[str, Any]:
    return JobError(
        status=exc.status_code,
        error=exc.message,
        code=str(exc.code),
        details=exc.details,
    ).model_dump(mode="json", exclude_none=True)


def unexpected_error(job_id: int) -> dict[str, Any]:
    return JobError(
        status=500,
        error=(
            f"The import failed unexpectedly; nothing was imported. Quote job {job_id} when "
            "reporting it."
        ),
        code=ErrorCode.INTERNAL_ERROR,
    ).model_dump(mode="json", exclude_none=True)


def job_data(job: ImportJob) -> dict[str, Any]:
    """A job as event data."""
    return {"job": JobRead.model_validate(job).model_dump(mode="json")}
