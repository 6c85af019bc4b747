"""`GET /api/v1/status`: what an authenticated client may want to check first.

`status` is `ok` or `degraded` (the shape of seed 001's status endpoint). Degraded: the process
answers and the database answered it, but a background worker this process should run is not
running, so part of the service silently stops here: it runs no import jobs, sends no webhooks,
keeps no statistics or search indexes up to date (another replica may still do it). `problems` says which, in words;
`workers` per worker. A database that cannot be reached cannot check the API key, so then the
answer is a 503 DATABASE_UNAVAILABLE, as for every request (and `/readyz`, without a key, 503).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Literal

from fastapi import Request
from pydantic import Field
from sqlalchemy import text

from app import __version__
from app.accounts.dependencies import AccountDep, AuthenticatedRoute
from app.core.db import SessionDep
from app.core.openapi import errors
from app.core.routing import ApiRouter
from app.core.schemas import Schema, Timestamp
from app.data_items.repository import DataItemRepository

router = ApiRouter(tags=["status"], route_class=AuthenticatedRoute)

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


_EFFECTS = {
    "import_jobs": "import job worker is not running: it runs no `?async=true` uploads",
    "webhooks": "webhook dispatcher is not running: it sends no webhook deliveries",
    "row_maintenance": (
        "row maintenance is not running: it keeps no statistics or search indexes up to date"
    ),
}


def _workers(request: Request) -> Workers:
    state = request.app.state
    jobs = state.import_jobs
    if not jobs.running:
        import_jobs: WorkerState = "stopped"
    else:  # with JOB_WORKERS=0 only its reaper runs (it fails jobs whose process died)
        import_jobs = "off" if jobs.settings.job_workers == 0 else "running"
    return Workers(
        import_jobs=import_jobs,
        webhooks="running" if state.webhooks.running else "stopped",
        row_maintenance="running" if state.row_maintenance.running else "stopped",
    )


@router.get(
    "/status/",
    response_model=StatusRead,
    summary="Service status (ok or degraded), version, database, workers and your own counts",
    description=(
        "`status` is `ok`, or `degraded` when a background worker of the process that answered "
        "is not running (`workers`, `problems`). The database answered when this is a 200: "
        "when it cannot be reached the key cannot be checked and the answer is a 503 "
        "`DATABASE_UNAVAILABLE` with `Retry-After`."
    ),
    responses=errors(401, 503),
)
async def get_status(session: SessionDep, account: AccountDep, request: Request) -> StatusRead:
    await session.execute(text("SELECT 1"))
    repo = DataItemRepository(session, account.id)
    workers = _workers(request)
    problems = [
        f"This process's {_EFFECTS[name]}."
        for name, state in workers.model_dump().items()
        if state == "stopped"
    ]
    return StatusRead(
        status="degraded" if problems else "ok",
        timestamp=datetime.now(UTC),
        version=__version__,
        database="ok",
        account=AccountSummary(id=account.id, name=account.name),
        counts=Counts(data_items=await repo.count(), rows=await repo.total_rows()),
        workers=workers,
        problems=problems,
    )
