"""Status: `ok`, or `degraded` when a background worker this process should run is not running
(the router passes the workers' state in; this decides what it means)."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy.ext.asyncio import AsyncSession

from app import __version__
from app.status.repository import StatusRepository
from app.status.schemas import AccountSummary, Counts, StatusRead, Workers, WorkerState

_EFFECTS = {
    "import_jobs": "import job worker is not running: it runs no `?async=true` uploads",
    "webhooks": "webhook dispatcher is not running: it sends no webhook deliveries",
    "row_maintenance": (
        "row maintenance is not running: it keeps no statistics or search indexes up to date"
    ),
}


def workers(
    *, import_jobs: bool, job_workers: int, webhooks: bool, row_maintenance: bool
) -> Workers:
    """Each worker's state from whether it runs (with JOB_WORKERS=0 only the job reaper runs,
    which fails jobs whose process died: the job worker is then `off`, not `stopped`)."""
    jobs: WorkerState = "stopped" if not import_jobs else "off" if job_workers == 0 else "running"
    return Workers(
        import_jobs=jobs,
        webhooks="running" if webhooks else "stopped",
        row_maintenance="running" if row_maintenance else "stopped",
    )


async def get_status(
    session: AsyncSession,
    *,
    account_id: int,
    account_name: str,
    workers: Workers,
    data_items: frozenset[int] | None = None,
) -> StatusRead:
    """`data_items`: the items the caller's key is limited to (the counts are of those)."""
    repo = StatusRepository(session, account_id, data_items)
    await repo.ping()
    problems = [
        f"This process's {_EFFECTS[name]}."
        for name, state in workers.model_dump().items()
        if state == "stopped"
    ]
    items, rows = await repo.counts()
    return StatusRead(
        status="degraded" if problems else "ok",
        timestamp=datetime.now(UTC),
        version=__version__,
        database="ok",
        account=AccountSummary(id=account_id, name=account_name),
        counts=Counts(data_items=items, rows=rows),
        workers=workers,
        problems=problems,
    )
