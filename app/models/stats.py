"""Per-field statistics behind `GET …/summary/` (see app/summary/service.py for how they stay exact)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from sqlalchemy import BigInteger, Boolean, ForeignKey, Integer, Numeric, Text, text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from app.models.base import Base


class FieldStats(Base):
    __tablename__ = "field_stats"

    field_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("fields.id", ondelete="CASCADE"), primary_key=True
    )
    data_item_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("data_items.id", ondelete="CASCADE"), nullable=False, index=True
    )
    non_empty: Mapped[int] = mapped_column(BigInteger, nullable=False, server_default=text("0"))
    num_sum: Mapped[Decimal | None] = mapped_column(Numeric, nullable=True)
    num_min: Mapped[Decimal | None] = mapped_column(Numeric, nullable=True)
    num_max: Mapped[Decimal | None] = mapped_column(Numeric, nullable=True)
    num_scale: Mapped[int | None] = mapped_column(Integer, nullable=True)
    text_min: Mapped[str | None] = mapped_column(Text, nullable=True)
    text_max: Mapped[str | None] = mapped_column(Text, nullable=True)
    true_count: Mapped[int] = mapped_column(BigInteger, nullable=False, server_default=text("0"))
    false_count: Mapped[int] = mapped_column(BigInteger, nullable=False, server_default=text("0"))
    unique_count: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    top_values: Mapped[Any | None] = mapped_column(JSONB, nullable=True)
    # stored values that do not fit the field's type: left out of the rest, named here
    invalid_count: Mapped[int] = mapped_column(BigInteger, nullable=False, server_default=text("0"))
    invalid_cells: Mapped[Any | None] = mapped_column(JSONB, nullable=True)
    stale: Mapped[bool] = mapped_column(Boolean, nullable=False, server_default=text("false"))
    generation: Mapped[int] = mapped_column(BigInteger, nullable=False, server_default=text("0"))
