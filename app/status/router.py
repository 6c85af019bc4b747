"""`GET /api/v1/status`: what an authenticated client may want to check first.

`status` is `ok` or `degraded` (the shape of seed 001's status endpoint). Degraded: the process
answers and the database answered it, but a background worker this process should run is not
running, so part of the service silently stops here: it runs no import jobs, sends no webhooks,
keeps no statistics or search indexes up to date (another replica may still do it). `problems` says which, in words;
`workers` per worker. A database that cannot be reached cannot check the API key, so then the
answer is a 503 DATABASE_UNAVAILABLE, as for every request (and `/readyz`, without a key, 503).
"""

from __future__ import annotations

from app.accounts.dependencies import AccountDep, AuthenticatedRoute
from app.core.db import SessionDep
from app.core.deps import ImportJobsDep, RowMaintenanceDep, WebhookDispatcherDep
from app.core.openapi import errors
from app.core.routing import ApiRouter
from app.status import service
from app.status.schemas import StatusRead

router = ApiRouter(tags=["status"], route_class=AuthenticatedRoute)


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
async def get_status(
    session: SessionDep,
    account: AccountDep,
    jobs: ImportJobsDep,
    webhooks: WebhookDispatcherDep,
    maintenance: RowMaintenanceDep,
) -> StatusRead:
    workers = service.workers(
        import_jobs=jobs.running,
        job_workers=jobs.settings.job_workers,
        webhooks=webhooks.running,
        row_maintenance=maintenance.running,
    )
    return await service.get_status(
        session,
        account_id=account.id,
        account_name=account.name,
        workers=workers,
        data_items=account.data_items,
    )
