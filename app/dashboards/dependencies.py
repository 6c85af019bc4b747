"""The dashboard in the path, for the calling account: another account's dashboard is a 404."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Path

from app.accounts.dependencies import AccountDep
from app.core.db import SessionDep
from app.core.errors import NotFound
from app.dashboards.repository import DashboardRepository
from app.models import Dashboard

DashboardId = Annotated[int, Path(ge=1, le=2**63 - 1, description="Dashboard id.", examples=[3])]


async def owned_dashboard(
    dashboard_id: DashboardId, session: SessionDep, account: AccountDep
) -> Dashboard:
    dashboard = await DashboardRepository(session, account.id).get(dashboard_id)
    if dashboard is None:
        raise NotFound(f"Dashboard {dashboard_id} not found.")
    return dashboard


DashboardDep = Annotated[Dashboard, Depends(owned_dashboard)]
