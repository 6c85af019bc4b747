"""Dashboards: an account's grid of widgets from any of its data items.

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-07 05:00:00

Layout entries are rows of `dashboard_widgets`, so foreign keys do the upkeep: deleting a widget
(or the data item holding it, whose delete cascades to its widgets) removes it from every layout,
and deleting a dashboard or an account removes its entries.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0014"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "dashboards",
        sa.Column("id", sa.BigInteger(), sa.Identity(), primary_key=True),
        sa.Column("account_id", sa.BigInteger(), sa.ForeignKey("accounts.id", ondelete="CASCADE"), nullable=False),
        sa.Column("title", sa.Text(), nullable=False),
        sa.Column("description", sa.Text(), server_default="", nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
    )  # fmt: skip
    op.create_index("ix_dashboards_account_id", "dashboards", ["account_id"])
    op.create_table(
        "dashboard_widgets",
        sa.Column("dashboard_id", sa.BigInteger(), sa.ForeignKey("dashboards.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("position", sa.Integer(), primary_key=True),
        sa.Column("widget_id", sa.BigInteger(), sa.ForeignKey("widgets.id", ondelete="CASCADE"), nullable=False),
        sa.Column("x", sa.Integer(), nullable=False),
        sa.Column("y", sa.Integer(), nullable=False),
        sa.Column("w", sa.Integer(), nullable=False),
        sa.Column("h", sa.Integer(), nullable=False),
        sa.UniqueConstraint("dashboard_id", "widget_id"),
        sa.CheckConstraint("x >= 0 AND w >= 1 AND x + w <= 12", name="columns"),
        sa.CheckConstraint("y >= 0 AND h >= 1 AND h <= 100 AND y + h <= 1000", name="rows"),
    )  # fmt: skip
    # a widget's (or an item's) delete finds the entries to remove without a scan
    op.create_index("ix_dashboard_widgets_widget_id", "dashboard_widgets", ["widget_id"])


def downgrade() -> None:
    op.drop_table("dashboard_widgets")
    op.drop_table("dashboards")
