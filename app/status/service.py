"""Status: `ok`, or `degraded` when a background worker this process should run is not running
(the router reads the workers' state from the process; this decides what it means)."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy.ext.asyncio import AsyncSession

from app import __version__
from app.status.repository import StatusRepository
from app.status.schemas import AccountSummary, Counts, StatusRead, Workers

_EFFECTS = {
    "import_jobs": "import job worker is not running: it runs no `?async=true` uploads",
    "webhooks": "webhook dispatcher is not running: it sends no webhook deliveries",
    "row_maintenance": (
        "row maintenance is not running: it keeps no statistics or search indexes up to date"
    ),
}


async def get_status(
    session: AsyncSession, *, account_id: int, account_name: str, workers: Workers
) -> StatusRead:
    repo = StatusRepository(session, account_id)
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
