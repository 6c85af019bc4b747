"""Access: per-key request counters (rate limits, usage).

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-24 08:00:00

One row per API key per minute, upserted by every authenticated request (PRIMARY KEY (key_id,
minute) is the conflict target). Usage sums an account's rows of the last day through the
(account_id, minute) index. Rows older than two days are deleted as keys write new minutes.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "api_key_usage",
        sa.Column("key_id", sa.BigInteger(), sa.ForeignKey("api_keys.id", ondelete="CASCADE"), nullable=False),
        sa.Column("minute", sa.DateTime(timezone=True), nullable=False),
        sa.Column("account_id", sa.BigInteger(), sa.ForeignKey("accounts.id", ondelete="CASCADE"), nullable=False),
        sa.Column("requests", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.PrimaryKeyConstraint("key_id", "minute", name="pk_api_key_usage"),
    )
    op.create_index("ix_api_key_usage_account_id_minute", "api_key_usage", ["account_id", "minute"])


def downgrade() -> None:
    op.drop_table("api_key_usage")
