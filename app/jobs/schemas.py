"""Import job bodies."""

from __future__ import annotations

from enum import StrEnum

from pydantic import Field

from app.core.schemas import ErrorDetail, Schema, Timestamp
from app.ingestion.schemas import AppendFromFileResult, CreateFromFileResult


class JobKind(StrEnum):
    CREATE_FROM_FILE = "create_from_file"
    APPEND_FROM_FILE = "append_from_file"


class JobStatus(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"


class JobErrorCode(StrEnum):
    """Codes of failures that only jobs have (the others are the API's error codes)."""

    INTERRUPTED = "INTERRUPTED"


class JobError(Schema):
    """Why a job failed: the error body the synchronous call would have answered, with its
    HTTP status."""

    status: int = Field(examples=[400], description="The status the synchronous call would give.")
    error: str = Field(examples=["Cannot load the file: row 3, column 'Revenue': 'abc' …"])
    code: str = Field(examples=["INVALID_FILE"])
    details: list[ErrorDetail] | None = None


class JobRead(Schema):
    id: int = Field(examples=[17])
    kind: JobKind
    status: JobStatus = Field(
        description="queued -> running -> succeeded or failed. A failed job wrote nothing."
    )
    data_item_id: int | None = Field(
        examples=[42],
        description="append: the target item; create: the new item, once the job succeeded.",
    )
    filename: str = Field(examples=["sales.csv"])
    size_bytes: int = Field(examples=[14225890])
    rows_processed: int = Field(examples=[300000], description="Rows written so far.")
    rows_total: int | None = Field(
        examples=[1250000], description="Data rows in the file, once it has been read."
    )
    error: JobError | None = None
    result: CreateFromFileResult | AppendFromFileResult | None = Field(
        default=None,
        description="When succeeded: the body the synchronous upload would have answered.",
    )
    created_at: Timestamp
    started_at: Timestamp | None = None
    finished_at: Timestamp | None = None


class JobList(Schema):
    total: int = Field(examples=[3])
    offset: int = Field(examples=[0])
    limit: int = Field(examples=[20])
    jobs: list[JobRead]
