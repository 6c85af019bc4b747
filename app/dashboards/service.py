"""Dashboard rules: a layout names only widgets of the caller's account (another account's, or a
missing one, is a 400 naming it: the dashboard is there, the reference is bad input), each at
most once; a PATCH changes only what is sent, and a layout sent replaces the old one whole.

Deleting a widget or a data item takes it out of every layout by itself (a foreign key with ON
DELETE CASCADE, app/models/dashboard.py), in the transaction of that delete.

`read_dashboard` is the one read of a dashboard with its widgets resolved, for the API and for
whatever renders or shares a dashboard."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from app.accounts.service import AuthenticatedAccount
from app.core.errors import BadRequest, NotFound
from app.dashboards.repository import DashboardRepository, PlacedWidget
from app.dashboards.schemas import (
    DashboardCreate,
    DashboardList,
    DashboardRead,
    DashboardUpdate,
    LayoutEntry,
    LayoutEntryRead,
)
from app.models import Dashboard
from app.widgets.schemas import ChartType

# The most dashboards one page of GET /dashboards/ holds, and its size when no `limit` is given.
MAX_LIST_LIMIT = 100


def _entry(p: PlacedWidget) -> LayoutEntryRead:
    return LayoutEntryRead(
        widget_id=p.widget_id,
        data_item_id=p.data_item_id,
        title=p.title,
        chart_type=ChartType(p.chart_type),
        x=p.x,
        y=p.y,
        w=p.w,
        h=p.h,
    )


def _read(dashboard: Dashboard, layout: Sequence[PlacedWidget]) -> DashboardRead:
    return DashboardRead(
        id=dashboard.id,
        title=dashboard.title,
        description=dashboard.description,
        layout=[_entry(p) for p in layout],
        created_at=dashboard.created_at,
        updated_at=dashboard.updated_at,
    )


async def read_dashboard(
    session: AsyncSession, *, account_id: int, dashboard_id: int
) -> DashboardRead:
    """The account's dashboard with its layout resolved: each entry's widget, the data item it
    belongs to, its title and chart type, in layout order. NotFound if the account has no such
    dashboard (another account's included)."""
    repo = DashboardRepository(session, account_id)
    dashboard = await repo.get(dashboard_id)
    if dashboard is None:
        raise NotFound(f"Dashboard {dashboard_id} not found.")
    return _read(dashboard, (await repo.layouts([dashboard.id]))[dashboard.id])


async def list_dashboards(
    session: AsyncSession, account: AuthenticatedAccount, *, offset: int, limit: int
) -> DashboardList:
    repo = DashboardRepository(session, account.id)
    dashboards, total = await repo.page(offset=offset, limit=limit)
    layouts = await repo.layouts([d.id for d in dashboards])
    return DashboardList(
        total=total,
        offset=offset,
        limit=limit,
        dashboards=[_read(d, layouts[d.id]) for d in dashboards],
    )


async def _checked_layout(
    repo: DashboardRepository, layout: Sequence[LayoutEntry]
) -> list[dict[str, int]]:
    """The layout's rows, once every widget it names is one of the account's (locked against a
    concurrent delete until the commit); else a 400 naming each bad reference."""
    found = await repo.widgets([e.widget_id for e in layout])
    problems: list[dict[str, Any]] = [
        {
            "field": f"layout.{i}.widget_id",
            "message": f"widget {e.widget_id} is not a widget of your data items",
            "widget_id": e.widget_id,
        }
        for i, e in enumerate(layout)
        if e.widget_id not in found
    ]
    if len(problems) == 1:
        p = problems[0]
        raise BadRequest(f"Invalid layout: {p['field']}: {p['message']}.", details=problems)
    if problems:
        raise BadRequest(
            f"Invalid layout: {len(problems)} widgets are not widgets of your data items (see "
            "details); nothing was changed.",
            details=problems,
        )
    return [e.model_dump(include={"widget_id", "x", "y", "w", "h"}) for e in layout]


async def create_dashboard(
    session: AsyncSession, account: AuthenticatedAccount, payload: DashboardCreate
) -> DashboardRead:
    repo = DashboardRepository(session, account.id)
    rows = await _checked_layout(repo, payload.layout)
    dashboard = await repo.add(title=payload.title, description=payload.description)
    await repo.replace_layout(dashboard.id, rows)
    return await read_dashboard(session, account_id=account.id, dashboard_id=dashboard.id)


async def update_dashboard(
    session: AsyncSession,
    account: AuthenticatedAccount,
    dashboard: Dashboard,
    payload: DashboardUpdate,
) -> DashboardRead:
    repo = DashboardRepository(session, account.id)
    if not await repo.lock(dashboard.id):  # deleted since the path was resolved
        raise NotFound(f"Dashboard {dashboard.id} not found.")
    sent = payload.model_fields_set
    rows = None if payload.layout is None else await _checked_layout(repo, payload.layout)
    values: dict[str, Any] = {k: getattr(payload, k) for k in ("title", "description") if k in sent}
    if values or rows is not None:
        await repo.update(dashboard, values)
    if rows is not None:
        await repo.replace_layout(dashboard.id, rows)
    return await read_dashboard(session, account_id=account.id, dashboard_id=dashboard.id)


async def delete_dashboard(
    session: AsyncSession, account: AuthenticatedAccount, dashboard: Dashboard
) -> None:
    """The dashboard and its layout; the widgets it showed stay."""
    await DashboardRepository(session, account.id).delete(dashboard.id)
