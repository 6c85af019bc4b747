"""Request counters batched in memory: a per-minute budget handed out to replicas.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-07 02:00:00

Processes no longer write a counter per request: they add their requests to `requests` once a
second (app/access/counter.py). With RATE_LIMIT_PER_MINUTE set, a process admits a request only
with a token of the key's minute budget it has reserved; `granted` is how many tokens of that
minute are reserved (used or not yet used) by all processes, never above the limit. Unused
tokens are given back at the next flush.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "api_key_usage",
        sa.Column("granted", sa.Integer(), server_default=sa.text("0"), nullable=False),
    )


def downgrade() -> None:
    op.drop_column("api_key_usage", "granted")
