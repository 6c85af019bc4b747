"""`GET /api/v1/status` bodies."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from app import __version__
from app.core.schemas import Schema, Timestamp

WorkerState = Literal["running", "stopped", "off"]


class AccountSummary(Schema):
    id: int
    name: str


class Counts(Schema):
    data_items: int = Field(examples=[3])
    rows: int = Field(examples=[125000])


class Workers(Schema):
    """This process's background workers: `running`, `stopped` (not running although it
    should: the status is then degraded) or `off` (by configuration, e.g. JOB_WORKERS=0)."""

    import_jobs: WorkerState = Field(examples=["running"])
    webhooks: WorkerState = Field(examples=["running"])
    row_maintenance: WorkerState = Field(examples=["running"])


class StatusRead(Schema):
    status: Literal["ok", "degraded"] = Field(
        examples=["ok"],
        description="`ok`, or `degraded` when a background worker is not running (see `problems`).",
    )
    timestamp: Timestamp = Field(description="When the status was taken (the server's clock).")
    version: str = Field(examples=[__version__])
    database: str = Field(examples=["ok"])
    account: AccountSummary
    counts: Counts
    workers: Workers
    problems: list[str] = Field(
        examples=[[]], description="What makes the status degraded, in words; empty when ok."
    )
