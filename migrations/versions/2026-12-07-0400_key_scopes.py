"""Keys people can hand out: scopes, per-item keys, expiry, per-key rate limits; the audit trail.

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-07 04:00:00

Keys issued before this revision keep every scope, every item, no expiry and the process-wide
rate limit: what they could do before.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("api_keys", sa.Column("name", sa.Text(), server_default="", nullable=False))
    op.add_column(
        "api_keys",
        sa.Column(
            "scopes",
            postgresql.ARRAY(sa.Text()),
            server_default="{read,write,manage,admin}",
            nullable=False,
        ),
    )
    op.add_column(
        "api_keys", sa.Column("data_items", postgresql.ARRAY(sa.BigInteger()), nullable=True)
    )
    op.add_column("api_keys", sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True))
    op.add_column("api_keys", sa.Column("rate_limit_per_minute", sa.Integer(), nullable=True))
    op.add_column("api_keys", sa.Column("created_by_key_id", sa.BigInteger(), nullable=True))
    op.create_foreign_key(
        "fk_api_keys_created_by_key_id_api_keys",
        "api_keys",
        "api_keys",
        ["created_by_key_id"],
        ["id"],
        ondelete="SET NULL",
    )
    op.create_table(
        "audit_events",
        sa.Column("id", sa.BigInteger(), sa.Identity(), primary_key=True),
        sa.Column("account_id", sa.BigInteger(), nullable=False),
        sa.Column("key_id", sa.BigInteger(), nullable=True),
        sa.Column("action", sa.Text(), nullable=False),
        sa.Column(
            "detail", postgresql.JSONB(astext_type=sa.Text()), server_default="{}", nullable=False
        ),
        sa.Column("request_id", sa.Text(), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["accounts.id"],
            name="fk_audit_events_account_id_accounts",
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["key_id"], ["api_keys.id"], name="fk_audit_events_key_id_api_keys", ondelete="SET NULL"
        ),
    )
    op.create_index(
        "ix_audit_events_account_id_id", "audit_events", ["account_id", sa.text("id DESC")]
    )
    op.create_index("ix_audit_events_key_id", "audit_events", ["key_id"])


def downgrade() -> None:
    op.drop_table("audit_events")
    op.drop_constraint("fk_api_keys_created_by_key_id_api_keys", "api_keys", type_="foreignkey")
    for column in (
        "created_by_key_id",
        "rate_limit_per_minute",
        "expires_at",
        "data_items",
        "scopes",
        "name",
    ):
        op.drop_column("api_keys", column)
