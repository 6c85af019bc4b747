"""Dashboard widgets over a data item, and their series (one aggregated value field each).

Foreign keys keep widgets consistent with the item's fields without application code:
deleting the item deletes its widgets and their series; deleting a field deletes the series that
aggregate it and clears `label_field_id` where it labelled a widget (ON DELETE SET NULL).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy import BigInteger, CheckConstraint, Dialect, ForeignKey, Integer, Text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column
from sqlalchemy.types import TypeDecorator

from app.core.jsonexact import dumps
from app.models.base import Base, CreatedAtMixin, IdMixin, TimestampMixin

CHART_TYPES = ("bar", "line", "pie", "doughnut", "area", "scatter", "number")
WIDGET_SIZES = ("sm", "md", "lg")
DATE_GROUPINGS = ("", "day", "week", "month", "quarter", "year")
SORT_DIRECTIONS = ("", "asc", "desc")
AGGREGATIONS = ("count", "sum", "avg", "min", "max", "distinct_count")


def _in(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


class ExactJSONB(TypeDecorator[Any]):
    """JSONB written with the exact encoder: client JSON is parsed with Decimal for numbers with a
    fraction, which the engine's default serializer (json.dumps) refuses or would round."""

    impl = JSONB
    cache_ok = True

    def bind_processor(self, dialect: Dialect) -> Callable[[Any], Any] | None:
        def process(value: Any) -> str | None:
            return None if value is None else dumps(value)

        return process


class Widget(IdMixin, TimestampMixin, Base):
    __tablename__ = "widgets"
    __table_args__ = (
        CheckConstraint(_in("chart_type", CHART_TYPES), name="chart_type"),
        CheckConstraint(_in("widget_size", WIDGET_SIZES), name="widget_size"),
        CheckConstraint(_in("date_grouping", DATE_GROUPINGS), name="date_grouping"),
        CheckConstraint(_in("sort_direction", SORT_DIRECTIONS), name="sort_direction"),
        CheckConstraint("row_limit BETWEEN 1 AND 1000", name="row_limit"),
    )

    data_item_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("data_items.id", ondelete="CASCADE"), nullable=False, index=True
    )
    title: Mapped[str] = mapped_column(Text, nullable=False, server_default="")
    description: Mapped[str] = mapped_column(Text, nullable=False, server_default="")
    chart_type: Mapped[str] = mapped_column(Text, nullable=False, server_default="bar")
    widget_order: Mapped[int] = mapped_column(Integer, nullable=False)
    widget_size: Mapped[str] = mapped_column(Text, nullable=False, server_default="md")
    label_field_id: Mapped[int | None] = mapped_column(
        BigInteger, ForeignKey("fields.id", ondelete="SET NULL"), nullable=True, index=True
    )
    date_grouping: Mapped[str] = mapped_column(Text, nullable=False, server_default="")
    sort_direction: Mapped[str] = mapped_column(Text, nullable=False, server_default="")
    row_limit: Mapped[int | None] = mapped_column(Integer, nullable=True)
    filter_config: Mapped[Any | None] = mapped_column(ExactJSONB, nullable=True)
    chart_options: Mapped[Any | None] = mapped_column(ExactJSONB, nullable=True)


class WidgetSeries(IdMixin, CreatedAtMixin, Base):
    __tablename__ = "widget_series"
    __table_args__ = (CheckConstraint(_in("aggregation", AGGREGATIONS), name="aggregation"),)

    widget_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("widgets.id", ondelete="CASCADE"), nullable=False, index=True
    )
    value_field_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("fields.id", ondelete="CASCADE"), nullable=False, index=True
    )
    aggregation: Mapped[str] = mapped_column(Text, nullable=False, server_default="sum")
    label: Mapped[str] = mapped_column(Text, nullable=False, server_default="")
    series_order: Mapped[int] = mapped_column(Integer, nullable=False)
    color: Mapped[str] = mapped_column(Text, nullable=False, server_default="")
