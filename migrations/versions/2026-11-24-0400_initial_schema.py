"""Initial schema: accounts, API keys, data items, fields, reference files, partitioned rows.

Revision ID: 0001
Revises:
Create Date: 2026-11-24 04:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _timestamps(*, updated: bool = False) -> list[sa.Column]:
    cols = [sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False)]
    if updated:
        cols.append(sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False))
    return cols


def upgrade() -> None:
    # pg_trgm powers substring search indexes. It is a trusted extension (PG >= 13), so a database
    # owner may create it; where that is not allowed, search still works, by scanning.
    op.execute(
        """
        DO $$ BEGIN
            CREATE EXTENSION IF NOT EXISTS pg_trgm;
        EXCEPTION WHEN insufficient_privilege OR undefined_file THEN
            RAISE NOTICE 'pg_trgm unavailable: search will scan instead of using an index';
        END $$;
        """
    )
    op.create_table(
        "accounts",
        sa.Column("id", sa.BigInteger(), sa.Identity(), primary_key=True),
        sa.Column("name", sa.Text(), nullable=False),
        *_timestamps(),
    )
    op.create_table(
        "api_keys",
        sa.Column("id", sa.BigInteger(), sa.Identity(), primary_key=True),
        sa.Column("account_id", sa.BigInteger(), sa.ForeignKey("accounts.id", ondelete="CASCADE"), nullable=False),
        sa.Column("prefix", sa.String(16), nullable=False),
        sa.Column("key_hash", sa.LargeBinary(32), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        *_timestamps(),
        sa.UniqueConstraint("key_hash", name="uq_api_keys_key_hash"),
    )
    op.create_index("ix_api_keys_account_id", "api_keys", ["account_id"])
    op.create_index("ix_api_keys_prefix", "api_keys", ["prefix"])
    op.create_table(
        "data_items",
        sa.Column("id", sa.BigInteger(), sa.Identity(), primary_key=True),
        sa.Column("account_id", sa.BigInteger(), sa.ForeignKey("accounts.id", ondelete="CASCADE"), nullable=False),
        sa.Column("data_name", sa.Text(), nullable=False),
        sa.Column("data_description", sa.Text(), server_default="", nullable=False),
        sa.Column("next_row_ref", sa.BigInteger(), server_default=sa.text("0"), nullable=False),
        sa.Column("row_count", sa.BigInteger(), server_default=sa.text("0"), nullable=False),
        *_timestamps(updated=True),
    )
    op.create_index("ix_data_items_account_id", "data_items", ["account_id"])
    op.create_table(
        "fields",
        sa.Column("id", sa.BigInteger(), sa.Identity(), primary_key=True),
        sa.Column("data_item_id", sa.BigInteger(), sa.ForeignKey("data_items.id", ondelete="CASCADE"), nullable=False),
        sa.Column("field_label", sa.Text(), nullable=False),
        sa.Column("field_type", sa.Text(), server_default="char", nullable=False),
        sa.Column("field_order", sa.Integer(), nullable=False),
        sa.Column("field_required", sa.Boolean(), server_default=sa.text("false"), nullable=False),
        sa.Column("field_instructions", sa.Text(), server_default="", nullable=False),
        *_timestamps(),
        sa.CheckConstraint("field_type IN ('char', 'text', 'decimal', 'date', 'boolean')", name="field_type"),
    )
    op.create_index("ix_fields_data_item_id", "fields", ["data_item_id"])
    op.create_index("uq_fields_item_label", "fields", ["data_item_id", sa.text("lower(field_label)")], unique=True)
    op.create_table(
        "reference_files",
        sa.Column("id", sa.BigInteger(), sa.Identity(), primary_key=True),
        sa.Column("data_item_id", sa.BigInteger(), sa.ForeignKey("data_items.id", ondelete="CASCADE"), nullable=False),
        sa.Column("filename", sa.Text(), nullable=False),
        sa.Column("content_type", sa.Text(), nullable=False),
        sa.Column("size_bytes", sa.BigInteger(), nullable=False),
        sa.Column("sha256", sa.Text(), nullable=False),
        *_timestamps(),
    )
    op.create_index("ix_reference_files_data_item_id", "reference_files", ["data_item_id"])
    op.create_table(
        "reference_file_chunks",
        sa.Column("file_id", sa.BigInteger(), sa.ForeignKey("reference_files.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("seq", sa.Integer(), primary_key=True),
        sa.Column("data", sa.LargeBinary(), nullable=False),
    )
    # Uploaded files are mostly already compressed (xlsx) or compress poorly against their cost:
    # uncompressed out-of-line storage is ~3x faster to write (research/perf-limits.md).
    op.execute('ALTER TABLE reference_file_chunks ALTER COLUMN "data" SET STORAGE EXTERNAL')

    # One partition per data item, created and dropped by the app (schema item_rows).
    op.execute("CREATE SCHEMA IF NOT EXISTS item_rows")
    op.execute(
        """
        CREATE TABLE rows (
            data_item_id bigint NOT NULL,
            row_ref bigint NOT NULL,
            "values" jsonb NOT NULL,
            CONSTRAINT pk_rows PRIMARY KEY (data_item_id, row_ref)
        ) PARTITION BY LIST (data_item_id)
        """
    )


def downgrade() -> None:
    op.execute("DROP TABLE rows")
    op.execute("DROP SCHEMA IF EXISTS item_rows CASCADE")
    op.drop_table("reference_file_chunks")
    op.drop_table("reference_files")
    op.drop_table("fields")
    op.drop_table("data_items")
    op.drop_table("api_keys")
    op.drop_table("accounts")
