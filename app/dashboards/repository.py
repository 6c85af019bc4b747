"""Dashboard queries for one account: every statement is keyed by `self.account_id`, the layout
entries through their dashboard, the widgets they name through the widget's data item."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import (
    BigInteger,
    Integer,
    Select,
    bindparam,
    delete,
    func,
    insert,
    select,
    true,
    update,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.ext.asyncio import AsyncSession

from app.models import Dashboard, DashboardWidget, DataItem, Widget


@dataclass(frozen=True)
class PlacedWidget:
    """A layout entry with what the answer shows of its widget."""

    widget_id: int
    data_item_id: int
    title: str
    chart_type: str
    x: int
    y: int
    w: int
    h: int


@dataclass(frozen=True)
class WidgetInfo:
    id: int
    data_item_id: int
    title: str
    chart_type: str


class DashboardRepository:
    def __init__(self, session: AsyncSession, account_id: int) -> None:
        self.session = session
        self.account_id = account_id

    def _scoped(self) -> Select[Dashboard]:
        return select(Dashboard).where(Dashboard.account_id == self.account_id)

    async def get(self, dashboard_id: int) -> Dashboard | None:
        stmt = self._scoped().where(Dashboard.id == dashboard_id)
        return (await self.session.scalars(stmt)).one_or_none()

    async def lock(self, dashboard_id: int) -> bool:
        """Locks the dashboard's row until the transaction ends (writers of one dashboard take
        turns); False if it is gone."""
        stmt = select(Dashboard.id).where(
            Dashboard.id == dashboard_id, Dashboard.account_id == self.account_id
        )
        return await self.session.scalar(stmt.with_for_update()) is not None

    async def page(self, *, offset: int, limit: int) -> tuple[list[Dashboard], int]:
        """The account's dashboards in id order, and how many there are (one query)."""
        stmt = (
            select(Dashboard, func.count().over())
            .where(Dashboard.account_id == self.account_id)
            .order_by(Dashboard.id)
            .offset(offset)
            .limit(limit)
        )
        rows = (await self.session.execute(stmt)).all()
        if rows:
            return [d for d, _ in rows], int(rows[0][1])
        total = await self.session.scalar(
            select(func.count())
            .select_from(Dashboard)
            .where(Dashboard.account_id == self.account_id)
        )
        return [], int(total or 0)

    async def add(self, *, title: str, description: str) -> Dashboard:
        dashboard = Dashboard(account_id=self.account_id, title=title, description=description)
        self.session.add(dashboard)
        await self.session.flush()
        await self.session.refresh(dashboard)
        return dashboard

    async def update(self, dashboard: Dashboard, values: dict[str, Any]) -> Dashboard:
        """Sets `values` (possibly none) and moves `updated_at`: a layout change is a change."""
        stmt = (
            update(Dashboard)
            .where(Dashboard.id == dashboard.id, Dashboard.account_id == self.account_id)
            .values(**values, updated_at=func.now())
        )
        await self.session.execute(stmt)
        await self.session.refresh(dashboard)
        return dashboard

    async def delete(self, dashboard_id: int) -> None:
        await self.session.execute(
            delete(Dashboard).where(
                Dashboard.id == dashboard_id, Dashboard.account_id == self.account_id
            )
        )

    async def widgets(self, widget_ids: Sequence[int]) -> dict[int, WidgetInfo]:
        """The account's widgets among `widget_ids`, locked against deletion (FOR KEY SHARE) until
        the transaction ends, so a layout written next cannot name a widget deleted meanwhile."""
        if not widget_ids:
            return {}
        stmt = (
            select(Widget.id, Widget.data_item_id, Widget.title, Widget.chart_type)
            .join(DataItem, DataItem.id == Widget.data_item_id)
            .where(DataItem.account_id == self.account_id, Widget.id.in_(list(widget_ids)))
            .with_for_update(key_share=True, of=Widget)
        )
        rows = (await self.session.execute(stmt)).all()
        return {r.id: WidgetInfo(r.id, r.data_item_id, r.title, r.chart_type) for r in rows}

    async def replace_layout(self, dashboard_id: int, entries: Sequence[dict[str, int]]) -> None:
        """The dashboard's layout becomes `entries` (each `widget_id, x, y, w, h`), in order."""
        await self.session.execute(
            delete(DashboardWidget).where(
                DashboardWidget.dashboard_id == dashboard_id,
                DashboardWidget.dashboard_id.in_(
                    select(Dashboard.id).where(Dashboard.account_id == self.account_id)
                ),
            )
        )
        if not entries:
            return
        columns = ("widget_id", "x", "y", "w", "h")
        arrays = [
            bindparam(None, list(range(len(entries))), type_=ARRAY(Integer)),
            bindparam(None, [e["widget_id"] for e in entries], type_=ARRAY(BigInteger)),
            *(bindparam(None, [e[c] for e in entries], type_=ARRAY(Integer)) for c in columns[1:]),
        ]
        given = func.unnest(*arrays).table_valued("position", *columns).render_derived("given")
        source = (
            select(Dashboard.id, *(given.c[c] for c in ("position", *columns)))
            .join_from(Dashboard, given, true())
            .where(Dashboard.id == dashboard_id, Dashboard.account_id == self.account_id)
        )
        await self.session.execute(
            insert(DashboardWidget).from_select(["dashboard_id", "position", *columns], source)
        )

    async def layouts(self, dashboard_ids: Sequence[int]) -> dict[int, list[PlacedWidget]]:
        """The layouts of the account's dashboards among `dashboard_ids`, each in order, with
        each widget's item, title and chart type."""
        found: dict[int, list[PlacedWidget]] = {d: [] for d in dashboard_ids}
        if not dashboard_ids:
            return found
        stmt = (
            select(
                DashboardWidget.dashboard_id,
                DashboardWidget.widget_id,
                Widget.data_item_id,
                Widget.title,
                Widget.chart_type,
                DashboardWidget.x,
                DashboardWidget.y,
                DashboardWidget.w,
                DashboardWidget.h,
            )
            .join(Dashboard, Dashboard.id == DashboardWidget.dashboard_id)
            .join(Widget, Widget.id == DashboardWidget.widget_id)
            .where(
                Dashboard.account_id == self.account_id,
                DashboardWidget.dashboard_id.in_(list(dashboard_ids)),
            )
            .order_by(DashboardWidget.dashboard_id, DashboardWidget.position)
        )
        for r in (await self.session.execute(stmt)).all():
            found[r.dashboard_id].append(
                PlacedWidget(r.widget_id, r.data_item_id, r.title, r.chart_type, r.x, r.y, r.w, r.h)
            )
        return found
