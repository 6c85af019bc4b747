"""Pending webhook deliveries by webhook: for the dispatcher's fair claim across accounts and the
per-account pending cap.

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-24 11:00:00

Partial (pending only), so it stays as small as the queue however much history accumulates.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index(
        "ix_webhook_deliveries_pending_by_webhook",
        "webhook_deliveries",
        ["webhook_id", "next_attempt_at", "id"],
        postgresql_where=sa.text("status = 'pending'"),
    )


def downgrade() -> None:
    op.drop_index("ix_webhook_deliveries_pending_by_webhook", table_name="webhook_deliveries")
