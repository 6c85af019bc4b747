"""The API surface in one place: every domain router, mounted under /api/v1 with key auth."""

from __future__ import annotations

from fastapi import APIRouter, Depends

from app.accounts.dependencies import AuthenticatedRoute, current_account
from app.core.routing import API_PREFIX
from app.data_items.router import router as data_items_router
from app.fields.router import router as fields_router
from app.ingestion.router import router as ingestion_router
from app.jobs.router import router as jobs_router
from app.rows.router import router as rows_router
from app.status.router import router as status_router
from app.summary.router import router as summary_router
from app.transfer.router import router as transfer_router
from app.usage.router import router as usage_router
from app.webhooks.router import router as webhooks_router
from app.widgets.router import router as widgets_router

api_router = APIRouter(
    prefix=API_PREFIX,
    route_class=AuthenticatedRoute,
    dependencies=[Depends(current_account)],
)
for router in (
    status_router,
    usage_router,
    ingestion_router,
    data_items_router,
    fields_router,
    rows_router,
    summary_router,
    widgets_router,
    transfer_router,
    jobs_router,
    webhooks_router,
):
    api_router.include_router(router)
