"""Fields: the typed columns of a data item."""

from __future__ import annotations

from sqlalchemy import BigInteger, Boolean, CheckConstraint, ForeignKey, Index, Integer, Text, text
from sqlalchemy.orm import Mapped, mapped_column

from app.models.base import Base, CreatedAtMixin, IdMixin

FIELD_TYPES = ("char", "text", "decimal", "date", "boolean")


class Field(IdMixin, CreatedAtMixin, Base):
    __tablename__ = "fields"
    __table_args__ = (
        CheckConstraint(
            "field_type IN ('char', 'text', 'decimal', 'date', 'boolean')", name="field_type"
        ),
        Index("uq_fields_item_label", "data_item_id", text("lower(field_label)"), unique=True),
    )

    data_item_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("data_items.id", ondelete="CASCADE"), nullable=False, index=True
    )
    field_label: Mapped[str] = mapped_column(Text, nullable=False)
    field_type: Mapped[str] = mapped_column(Text, nullable=False, server_default="char")
    field_order: Mapped[int] = mapped_column(Integer, nullable=False)
    field_required: Mapped[bool] = mapped_column(Boolean, nullable=False, server_default="false")
    field_instructions: Mapped[str] = mapped_column(Text, nullable=False, server_default="")
