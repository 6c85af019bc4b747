"""Widget and series queries. A `WidgetRepository` is built for one data item already resolved
for the calling account, a `SeriesRepository` for one widget of such an item: every statement is
keyed by that item or widget."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import (
    Select,
    delete,
    func,
    select,
    text,
    update,
)
from sqlalchemy.ext.asyncio import AsyncSession

from app.fieldtypes.sql import Cell
from app.models import Widget, WidgetSeries, rows_table
from app.rows.filters import RowFilter, RowQuery
from app.rows.query import conditions

_ORDER_LOCK_CLASS = 7_304  # advisory lock namespace: widget ordering per item (see core/locks.py)


class WidgetRepository:
    def __init__(self, session: AsyncSession, data_item_id: int) -> None:
        self.session = session
        self.data_item_id = data_item_id

    def _scoped(self) -> Select[Widget]:
        return select(Widget).where(Widget.data_item_id == self.data_item_id)

    async def lock(self) -> None:
        """Serialise changes to this item's widget order until the transaction ends (without
        locking the item row, which row writers hold during long uploads)."""
        await self.session.execute(
            text("SELECT pg_advisory_xact_lock(:c, :o)"),
            {"c": _ORDER_LOCK_CLASS, "o": self.data_item_id % 2**31},
        )

    async def ordered(self) -> list[Widget]:
        stmt = self._scoped().order_by(Widget.widget_order, Widget.id)
        return list((await self.session.scalars(stmt)).all())

    async def get(self, widget_id: int) -> Widget | None:
        stmt = self._scoped().where(Widget.id == widget_id)
        return (await self.session.scalars(stmt)).one_or_none()

    async def count(self) -> int:
        stmt = (
            select(func.count()).select_from(Widget).where(Widget.data_item_id == self.data_item_id)
        )
        return int(await self.session.scalar(stmt) or 0)

    async def shift(self, *, start: int, stop: int | None, delta: int) -> None:
        """Add `delta` to the order of widgets with start <= order (< stop when given)."""
        cond = [Widget.data_item_id == self.data_item_id, Widget.widget_order >= start]
        if stop is not None:
            cond.append(Widget.widget_order < stop)
        await self.session.execute(
            update(Widget).where(*cond).values(widget_order=Widget.widget_order + delta)
        )

    async def add(self, values: dict[str, Any]) -> Widget:
        widget = Widget(data_item_id=self.data_item_id, **values)
        self.session.add(widget)
        await self.session.flush()
        await self.session.refresh(widget)
        return widget

    async def update(self, widget: Widget, values: dict[str, Any]) -> Widget:
        for key, value in values.items():
            setattr(widget, key, value)
        widget.updated_at = func.now()
        await self.session.flush()
        await self.session.refresh(widget)
        return widget

    async def touch(self, widget_id: int) -> None:
        await self.session.execute(
            update(Widget)
            .where(Widget.id == widget_id, Widget.data_item_id == self.data_item_id)
            .values(updated_at=func.now())
        )

    async def delete(self, widget_id: int) -> None:
        await self.session.execute(
            delete(Widget).where(Widget.id == widget_id, Widget.data_item_id == self.data_item_id)
        )

    async def series_of(self, widget_ids: Sequence[int]) -> dict[int, list[WidgetSeries]]:
        """The series of these widgets (of this item), each list in series order."""
        out: dict[int, list[WidgetSeries]] = {wid: [] for wid in widget_ids}
        if not widget_ids:
            return out
        stmt = (
            select(WidgetSeries)
            .join(Widget, Widget.id == WidgetSeries.widget_id)
            .where(Widget.data_item_id == self.data_item_id, Widget.id.in_(list(widget_ids)))
            .order_by(WidgetSeries.widget_id, WidgetSeries.series_order, WidgetSeries.id)
        )
        for s in (await self.session.scalars(stmt)).all():
            out[s.widget_id].append(s)
        return out

    async def with_filters(self) -> list[Widget]:
        stmt = self._scoped().where(Widget.filter_config.is_not(None)).order_by(Widget.id)
        return list((await self.session.scalars(stmt)).all())

    async def after_field_delete(self) -> None:
        """After a field's delete cascaded: series orders dense again (0, 1, …) in every widget
        of the item, and no date grouping left on a widget that lost its label field."""
        await self.session.execute(
            text(
                """
                UPDATE widget_series s SET series_order = r.position
                FROM (
                    SELECT ws.id, row_number() OVER (
                        PARTITION BY ws.widget_id ORDER BY ws.series_order, ws.id) - 1 AS position
                    FROM widget_series ws JOIN widgets w ON w.id = ws.widget_id
                    WHERE w.data_item_id = :item
                ) r
                WHERE s.id = r.id AND s.series_order <> r.position
                """
            ),
            {"item": self.data_item_id},
        )
        await self.session.execute(
            update(Widget)
            .where(
                Widget.data_item_id == self.data_item_id,
                Widget.label_field_id.is_(None),
                Widget.date_grouping != "",
            )
            .values(date_grouping="")
        )


class SeriesRepository:
    def __init__(self, session: AsyncSession, widget_id: int) -> None:
        self.session = session
        self.widget_id = widget_id

    def _scoped(self) -> Select[WidgetSeries]:
        return select(WidgetSeries).where(WidgetSeries.widget_id == self.widget_id)

    async def lock(self) -> None:
        """Serialise changes to this widget's series order (the widget row is locked)."""
        await self.session.execute(
            select(Widget.id).where(Widget.id == self.widget_id).with_for_update()
        )

    async def ordered(self) -> list[WidgetSeries]:
        stmt = self._scoped().order_by(WidgetSeries.series_order, WidgetSeries.id)
        return list((await self.session.scalars(stmt)).all())

    async def get(self, series_id: int) -> WidgetSeries | None:
        stmt = self._scoped().where(WidgetSeries.id == series_id)
        return (await self.session.scalars(stmt)).one_or_none()

    async def count(self) -> int:
        stmt = (
            select(func.count())
            .select_from(WidgetSeries)
            .where(WidgetSeries.widget_id == self.widget_id)
        )
        return int(await self.session.scalar(stmt) or 0)

    async def shift(self, *, start: int, stop: int | None, delta: int) -> None:
        cond = [WidgetSeries.widget_id == self.widget_id, WidgetSeries.series_order >= start]
        if stop is not None:
            cond.append(WidgetSeries.series_order < stop)
        await self.session.execute(
            update(WidgetSeries).where(*cond).values(series_order=WidgetSeries.series_order + delta)
        )

    async def add_many(self, rows: Sequence[dict[str, Any]]) -> list[WidgetSeries]:
        series = [WidgetSeries(widget_id=self.widget_id, **row) for row in rows]
        self.session.add_all(series)
        await self.session.flush()
        return series

    async def update(self, series: WidgetSeries, values: dict[str, Any]) -> WidgetSeries:
        for key, value in values.items():
            setattr(series, key, value)
        await self.session.flush()
        return series

    async def delete(self, series_id: int) -> None:
        await self.session.execute(
            delete(WidgetSeries).where(
                WidgetSeries.id == series_id, WidgetSeries.widget_id == self.widget_id
            )
        )


class ChartDataRepository:
    """Scatter points of one item's rows for the widget data endpoint (aggregates are the query
    engine's: app/query). The item was resolved for the caller; every statement is keyed by it."""

    def __init__(self, session: AsyncSession, data_item_id: int) -> None:
        self.session = session
        self.item = int(data_item_id)

    async def points(
        self, *, x_field: int, y_field: int, row_filter: RowFilter | None, limit: int
    ) -> list[tuple[Any, Any]]:
        """(x, y) cell values of the first `limit` rows (row order) that have both."""
        x, y = Cell(x_field), Cell(y_field)
        stmt = (
            select(x.json, y.json)
            .where(*conditions(self.item, RowQuery(filter=row_filter)), x.present, y.present)
            .order_by(rows_table.c.row_ref)
            .limit(limit)
        )
        return [(px, py) for px, py in await self.session.execute(stmt)]
