"""Statistics count the stored values that do not fit their field's type, and name a few.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-06 01:00:00

Such values can only come from before writes locked the item (a type change racing a row
write stored "abc" in a decimal field); recomputed statistics leave them out and report them,
so the summary and widgets answer instead of failing on a cast. Existing statistics are not
marked stale (that would make the first summary of every big item scan it): they are
recomputed at the next write, as always.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "field_stats",
        sa.Column("invalid_count", sa.BigInteger(), nullable=False, server_default=sa.text("0")),
    )
    op.add_column("field_stats", sa.Column("invalid_cells", postgresql.JSONB(), nullable=True))


def downgrade() -> None:
    op.drop_column("field_stats", "invalid_cells")
    op.drop_column("field_stats", "invalid_count")
