"""Dashboards: an account's titled grid of widgets, taken from any of its data items.

A layout entry is a row of `dashboard_widgets` (not a JSON array in the dashboard) so that the
database keeps layouts consistent without application code: deleting a widget, or the item that
holds it, removes its entries from every layout (ON DELETE CASCADE), in the same transaction as
the delete. `position` orders the entries; a cascade may leave gaps in it, which readers ignore.
"""

from __future__ import annotations

from sqlalchemy import BigInteger, CheckConstraint, ForeignKey, Integer, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from app.models.base import Base, IdMixin, TimestampMixin

# The grid: 12 columns (x + w <= 12), rows without a fixed count (y + h <= 1000).
GRID_COLUMNS = 12
GRID_ROWS = 1000
MAX_HEIGHT = 100


class Dashboard(IdMixin, TimestampMixin, Base):
    __tablename__ = "dashboards"

    account_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("accounts.id", ondelete="CASCADE"), nullable=False, index=True
    )
    title: Mapped[str] = mapped_column(Text, nullable=False)
    description: Mapped[str] = mapped_column(Text, nullable=False, server_default="")


class DashboardWidget(Base):
    """One entry of a dashboard's layout: a widget and its place on the grid."""

    __tablename__ = "dashboard_widgets"
    __table_args__ = (
        UniqueConstraint("dashboard_id", "widget_id"),
        CheckConstraint(f"x >= 0 AND w >= 1 AND x + w <= {GRID_COLUMNS}", name="columns"),
        CheckConstraint(
            f"y >= 0 AND h >= 1 AND h <= {MAX_HEIGHT} AND y + h <= {GRID_ROWS}", name="rows"
        ),
    )

    dashboard_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("dashboards.id", ondelete="CASCADE"), primary_key=True
    )
    position: Mapped[int] = mapped_column(Integer, primary_key=True)
    widget_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("widgets.id", ondelete="CASCADE"), nullable=False, index=True
    )
    x: Mapped[int] = mapped_column(Integer, nullable=False)
    y: Mapped[int] = mapped_column(Integer, nullable=False)
    w: Mapped[int] = mapped_column(Integer, nullable=False)
    h: Mapped[int] = mapped_column(Integer, nullable=False)
