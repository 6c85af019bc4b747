"""Share links of dashboards: public read-only pages at /s/{token}.

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-07 06:00:00

Only the token's SHA-256 is stored (unique: the page finds its share by it). A share ends when
revoked or at its expiry; deleting the dashboard or the account deletes its shares.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0015"
down_revision: str | None = "0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "dashboard_shares",
        sa.Column("id", sa.BigInteger(), sa.Identity(), primary_key=True),
        sa.Column("account_id", sa.BigInteger(), sa.ForeignKey("accounts.id", ondelete="CASCADE"), nullable=False),
        sa.Column("dashboard_id", sa.BigInteger(), sa.ForeignKey("dashboards.id", ondelete="CASCADE"), nullable=False),
        sa.Column("token_hash", sa.LargeBinary(32), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.UniqueConstraint("token_hash"),
    )  # fmt: skip
    op.create_index("ix_dashboard_shares_account_id", "dashboard_shares", ["account_id"])
    op.create_index("ix_dashboard_shares_dashboard_id", "dashboard_shares", ["dashboard_id"])


def downgrade() -> None:
    op.drop_table("dashboard_shares")
