"""Rows: one JSONB document per row, keyed by field id, partitioned by data item.

`rows` is declared LIST-partitioned by `data_item_id` (one partition per item, in the schema
`item_rows`), created in the migration with raw SQL; here it is a Core table for queries. Every
row query is keyed by `data_item_id`, never joining rows of two items, so the table can also be
distributed by that column on a sharded PostgreSQL (Citus).
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, Table
from sqlalchemy.dialects.postgresql import JSONB

from app.models.base import Base

rows_table = Table(
    "rows",
    Base.metadata,
    Column("data_item_id", BigInteger, primary_key=True),
    Column("row_ref", BigInteger, primary_key=True),
    Column("values", JSONB, nullable=False),
    info={"partitioned": True},
)
