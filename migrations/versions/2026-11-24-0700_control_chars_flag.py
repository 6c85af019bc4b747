"""Remember per data item whether any cell ever held a control character (search fast path).

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-24 07:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # true until proven otherwise for items that already have rows (the safe, exact side)
    op.add_column(
        "data_items",
        sa.Column("has_control_chars", sa.Boolean(), server_default=sa.text("false"), nullable=False),
    )
    op.execute("UPDATE data_items SET has_control_chars = true WHERE row_count > 0")


def downgrade() -> None:
    op.drop_column("data_items", "has_control_chars")
