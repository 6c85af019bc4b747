"""Upload bodies: one object for the list and the detail."""

from __future__ import annotations

from pydantic import ConfigDict, Field

from app.core.schemas import Schema, Timestamp
from app.jobs.schemas import JobKind, JobStatus


class UploadJob(Schema):
    """The import job that stored the file (an upload made with `?async=true`)."""

    id: int = Field(examples=[17], description="Poll or read it at `GET /api/v1/jobs/{id}/`.")
    status: JobStatus = Field(
        examples=["succeeded"],
        description=(
            "The job's status. A file is only kept by a job that succeeded (a failed job keeps "
            "nothing), so this is `succeeded`."
        ),
    )
    kind: JobKind = Field(examples=["create_from_file"])


class UploadRead(Schema):
    id: int = Field(
        examples=[7],
        description=(
            "The upload's id: the same as the reference file's id in the item's "
            "`reference_files` and in the upload's answer (`reference_file.id`)."
        ),
    )
    data_item_id: int = Field(examples=[42], description="The item the file was loaded into.")
    data_item_name: str = Field(examples=["Q1 Sales Report"], description="That item's name.")
    filename: str = Field(examples=["sales.csv"], description="The file's name, as uploaded.")
    content_type: str = Field(examples=["text/csv"], description="From the file's format.")
    size: int = Field(examples=[1_024_000], description="Bytes, as uploaded.")
    sha256: str = Field(
        examples=["9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"],
        description="SHA-256 of the file's bytes, in hex.",
    )
    created_at: Timestamp
    job: UploadJob | None = Field(
        examples=[None],
        description=(
            "The import job that stored the file, when it was uploaded with `?async=true`; "
            "null for a synchronous upload (and once the job is purged, after "
            "JOB_RETENTION_DAYS)."
        ),
    )
    download_url: str = Field(
        examples=["/api/v1/data-items/42/reference-files/7/"],
        description="Where to download the file, byte for byte (send your key as usual).",
    )

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "id": 7,
                    "data_item_id": 42,
                    "data_item_name": "Q1 Sales Report",
                    "filename": "sales.csv",
                    "content_type": "text/csv",
                    "size": 1_024_000,
                    "sha256": "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
                    "created_at": "2026-02-15T10:30:00+00:00",
                    "job": {"id": 17, "status": "succeeded", "kind": "create_from_file"},
                    "download_url": "/api/v1/data-items/42/reference-files/7/",
                }
            ]
        }
    )


class UploadList(Schema):
    total: int = Field(examples=[1], description="How many uploads you have in all.")
    offset: int = Field(examples=[0])
    limit: int = Field(examples=[1000])
    uploads: list[UploadRead]
