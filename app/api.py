"""The API surface in one place: every domain router, mounted under /api/v1 with key auth."""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.routing import APIRoute

from app.accounts.router import audit_router, keys_router
from app.accounts.scopes import undeclared
from app.ask.router import router as ask_router
from app.charts.router import dashboard_router as dashboard_images_router
from app.charts.router import router as charts_router
from app.core.routing import API_PREFIX
from app.dashboards.router import router as dashboards_router
from app.data_items.router import router as data_items_router
from app.fields.router import router as fields_router
from app.ingestion.router import router as ingestion_router
from app.jobs.router import router as jobs_router
from app.query.router import router as query_router
from app.rows.router import router as rows_router
from app.shares.router import router as shares_router
from app.status.router import router as status_router
from app.summary.router import router as summary_router
from app.transfer.router import router as transfer_router
from app.uploads.router import router as uploads_router
from app.usage.router import router as usage_router
from app.webhooks.router import router as webhooks_router
from app.widgets.router import router as widgets_router

API_ROUTERS = (
    status_router,
    usage_router,
    ingestion_router,
    data_items_router,
    fields_router,
    rows_router,
    summary_router,
    query_router,
    widgets_router,
    charts_router,
    dashboards_router,
    dashboard_images_router,
    shares_router,
    transfer_router,
    jobs_router,
    uploads_router,
    webhooks_router,
    keys_router,
    audit_router,
    ask_router,
)
for router in API_ROUTERS:
    router.mount_at(API_PREFIX)  # one regex turns away the paths it does not serve


def include_api(app: FastAPI) -> None:
    """Every domain router under /api/v1, included in the app itself: FastAPI matches a request
    against the routes of every level of inclusion, twice (once to find the route, once to
    dispatch to it), so one level less is cheaper for every request.

    The key is checked by every route (`AuthenticatedRoute`, before the body is read), so no
    dependency does it again per request; the schema documents it (app/core/openapi.py) as a
    `Security(...)` dependency on the header and the query parameter would."""
    for router in API_ROUTERS:
        app.include_router(router, prefix=API_PREFIX)
    operations = {
        (method, route.path)
        for route in app.routes
        if isinstance(route, APIRoute) and route.path.startswith(API_PREFIX)
        for method in route.methods or ()
        if method != "HEAD"
    }
    missing = undeclared(operations)
    if missing:  # every operation says which scope a key needs for it (app/accounts/scopes.py)
        raise RuntimeError(
            "operations without a scope in app/accounts/scopes.py: "
            + ", ".join(f"{m} {p}" for m, p in missing)
        )
