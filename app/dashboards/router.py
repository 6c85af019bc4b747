"""Dashboards: an account's grids of widgets from any of its data items."""

from __future__ import annotations

from typing import Annotated

from fastapi import Query, status

from app.accounts.dependencies import AccountDep, AuthenticatedRoute
from app.core.db import SessionDep
from app.core.openapi import errors
from app.core.routing import ApiRouter
from app.core.schemas import DeletedResult
from app.dashboards import service
from app.dashboards.dependencies import DashboardDep
from app.dashboards.schemas import DashboardCreate, DashboardList, DashboardRead, DashboardUpdate

router = ApiRouter(prefix="/dashboards", tags=["dashboards"], route_class=AuthenticatedRoute)

_LAYOUT = (
    "`layout` lists widgets of any of your data items, each at most once, on a 12-column grid "
    "(`x + w <= 12`, `y + h <= 1000`, `h` at most 100), at most 100 of them. A widget id that is "
    "not one of your widgets (missing, or another account's) is a 400 naming the entry. "
    "Deleting a widget, or its data item, takes it out of every layout."
)


@router.post(
    "/",
    response_model=DashboardRead,
    status_code=status.HTTP_201_CREATED,
    summary="Create a dashboard",
    description=_LAYOUT,
    responses=errors(400, 401, 413),
)
async def create_dashboard(
    payload: DashboardCreate, session: SessionDep, account: AccountDep
) -> DashboardRead:
    return await service.create_dashboard(session, account, payload)


@router.get(
    "/",
    response_model=DashboardList,
    summary="List your dashboards, a page at a time",
    description=(
        "In id order (oldest first), each with its layout. `offset` (default 0) and `limit` (1 "
        f"to {service.MAX_LIST_LIMIT}, the default) page the list; `total` counts all your "
        "dashboards."
    ),
    responses=errors(400, 401),
)
async def list_dashboards(
    session: SessionDep,
    account: AccountDep,
    offset: Annotated[
        int, Query(ge=0, le=2**31, description="Dashboards to skip.", examples=[0])
    ] = 0,
    limit: Annotated[
        int,
        Query(
            ge=1,
            le=service.MAX_LIST_LIMIT,
            description=f"Dashboards per page, 1 to {service.MAX_LIST_LIMIT} (the default).",
            examples=[20],
        ),
    ] = service.MAX_LIST_LIMIT,
) -> DashboardList:
    return await service.list_dashboards(session, account, offset=offset, limit=limit)


@router.get(
    "/{dashboard_id}/",
    response_model=DashboardRead,
    summary="Get a dashboard with its layout (each widget's item, title and chart type)",
    responses=errors(400, 401, 404),
)
async def get_dashboard(
    dashboard: DashboardDep, session: SessionDep, account: AccountDep
) -> DashboardRead:
    return await service.read_dashboard(session, account_id=account.id, dashboard_id=dashboard.id)


@router.patch(
    "/{dashboard_id}/",
    response_model=DashboardRead,
    summary="Change a dashboard's title, description or layout",
    description="Only what is sent changes; a `layout` sent replaces the whole layout. " + _LAYOUT,
    responses=errors(400, 401, 404, 413),
)
async def update_dashboard(
    payload: DashboardUpdate, dashboard: DashboardDep, session: SessionDep, account: AccountDep
) -> DashboardRead:
    return await service.update_dashboard(session, account, dashboard, payload)


@router.delete(
    "/{dashboard_id}/",
    response_model=DeletedResult,
    summary="Delete a dashboard (its widgets stay)",
    responses=errors(400, 401, 404),
)
async def delete_dashboard(
    dashboard: DashboardDep, session: SessionDep, account: AccountDep
) -> DeletedResult:
    await service.delete_dashboard(session, account, dashboard)
    return DeletedResult(deleted=True)
