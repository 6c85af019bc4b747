"""Dashboard widgets and their series.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-24 06:00:00

Foreign keys do the upkeep: deleting a data item deletes its widgets and their series; deleting a
field deletes the series that aggregate it (CASCADE) and clears the label field of widgets it
labelled (SET NULL).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

CHART_TYPES = ("bar", "line", "pie", "doughnut", "area", "scatter", "number")
WIDGET_SIZES = ("sm", "md", "lg")
DATE_GROUPINGS = ("", "day", "week", "month", "quarter", "year")
SORT_DIRECTIONS = ("", "asc", "desc")
AGGREGATIONS = ("count", "sum", "avg", "min", "max", "distinct_count")


def _in(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


def upgrade() -> None:
    op.create_table(
        "widgets",
        sa.Column("id", sa.BigInteger(), sa.Identity(), primary_key=True),
        sa.Column("data_item_id", sa.BigInteger(), sa.ForeignKey("data_items.id", ondelete="CASCADE"), nullable=False),
        sa.Column("title", sa.Text(), server_default="", nullable=False),
        sa.Column("description", sa.Text(), server_default="", nullable=False),
        sa.Column("chart_type", sa.Text(), server_default="bar", nullable=False),
        sa.Column("widget_order", sa.Integer(), nullable=False),
        sa.Column("widget_size", sa.Text(), server_default="md", nullable=False),
        sa.Column("label_field_id", sa.BigInteger(), sa.ForeignKey("fields.id", ondelete="SET NULL"), nullable=True),
        sa.Column("date_grouping", sa.Text(), server_default="", nullable=False),
        sa.Column("sort_direction", sa.Text(), server_default="", nullable=False),
        sa.Column("row_limit", sa.Integer(), nullable=True),
        sa.Column("filter_config", JSONB(), nullable=True),
        sa.Column("chart_options", JSONB(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.CheckConstraint(_in("chart_type", CHART_TYPES), name="chart_type"),
        sa.CheckConstraint(_in("widget_size", WIDGET_SIZES), name="widget_size"),
        sa.CheckConstraint(_in("date_grouping", DATE_GROUPINGS), name="date_grouping"),
        sa.CheckConstraint(_in("sort_direction", SORT_DIRECTIONS), name="sort_direction"),
        sa.CheckConstraint("row_limit BETWEEN 1 AND 1000", name="row_limit"),
    )
    op.create_index("ix_widgets_data_item_id", "widgets", ["data_item_id"])
    # indexes on the referencing columns keep field deletes from scanning every widget
    op.create_index("ix_widgets_label_field_id", "widgets", ["label_field_id"])
    op.create_table(
        "widget_series",
        sa.Column("id", sa.BigInteger(), sa.Identity(), primary_key=True),
        sa.Column("widget_id", sa.BigInteger(), sa.ForeignKey("widgets.id", ondelete="CASCADE"), nullable=False),
        sa.Column("value_field_id", sa.BigInteger(), sa.ForeignKey("fields.id", ondelete="CASCADE"), nullable=False),
        sa.Column("aggregation", sa.Text(), server_default="sum", nullable=False),
        sa.Column("label", sa.Text(), server_default="", nullable=False),
        sa.Column("series_order", sa.Integer(), nullable=False),
        sa.Column("color", sa.Text(), server_default="", nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.CheckConstraint(_in("aggregation", AGGREGATIONS), name="aggregation"),
    )
    op.create_index("ix_widget_series_widget_id", "widget_series", ["widget_id"])
    op.create_index("ix_widget_series_value_field_id", "widget_series", ["value_field_id"])


def downgrade() -> None:
    op.drop_table("widget_series")
    op.drop_table("widgets")
