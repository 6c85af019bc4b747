"""Per-field statistics kept for the summary endpoint.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-24 05:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "field_stats",
        sa.Column("field_id", sa.BigInteger(), sa.ForeignKey("fields.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("data_item_id", sa.BigInteger(), sa.ForeignKey("data_items.id", ondelete="CASCADE"), nullable=False),
        sa.Column("non_empty", sa.BigInteger(), server_default=sa.text("0"), nullable=False),
        sa.Column("num_sum", sa.Numeric(), nullable=True),
        sa.Column("num_min", sa.Numeric(), nullable=True),
        sa.Column("num_max", sa.Numeric(), nullable=True),
        sa.Column("num_scale", sa.Integer(), nullable=True),
        sa.Column("text_min", sa.Text(), nullable=True),
        sa.Column("text_max", sa.Text(), nullable=True),
        sa.Column("true_count", sa.BigInteger(), server_default=sa.text("0"), nullable=False),
        sa.Column("false_count", sa.BigInteger(), server_default=sa.text("0"), nullable=False),
        sa.Column("unique_count", sa.BigInteger(), nullable=True),
        sa.Column("top_values", JSONB(), nullable=True),
        sa.Column("stale", sa.Boolean(), server_default=sa.text("false"), nullable=False),
        sa.Column("generation", sa.BigInteger(), server_default=sa.text("0"), nullable=False),
    )
    op.create_index("ix_field_stats_data_item_id", "field_stats", ["data_item_id"])


def downgrade() -> None:
    op.drop_table("field_stats")
