"""Data items (a typed table owned by an account) and the files they were loaded from."""

from __future__ import annotations

from sqlalchemy import BigInteger, Boolean, ForeignKey, Integer, LargeBinary, Text, text
from sqlalchemy.orm import Mapped, mapped_column

from app.models.base import Base, CreatedAtMixin, IdMixin, TimestampMixin


class DataItem(IdMixin, TimestampMixin, Base):
    __tablename__ = "data_items"

    account_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("accounts.id", ondelete="CASCADE"), nullable=False, index=True
    )
    data_name: Mapped[str] = mapped_column(Text, nullable=False)
    data_description: Mapped[str] = mapped_column(Text, nullable=False, server_default="")
    # Row refs are handed out from this counter (never reused after a delete); the UPDATE that
    # advances it also serialises concurrent writers of one item.
    next_row_ref: Mapped[int] = mapped_column(BigInteger, nullable=False, server_default=text("0"))
    row_count: Mapped[int] = mapped_column(BigInteger, nullable=False, server_default=text("0"))
    # Whether a cell ever held a control character (newline, tab, ...): only then can a plain
    # search term falsely match an escape in a row's JSON text (see app/rows/search.py).
    has_control_chars: Mapped[bool] = mapped_column(
        Boolean, nullable=False, server_default=text("false")
    )


class ReferenceFile(IdMixin, CreatedAtMixin, Base):
    """An uploaded file kept with its item. Its bytes live in `reference_file_chunks`, so that
    neither storing nor serving it holds the whole file in memory, and every replica can serve it."""

    __tablename__ = "reference_files"

    data_item_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("data_items.id", ondelete="CASCADE"), nullable=False, index=True
    )
    filename: Mapped[str] = mapped_column(Text, nullable=False)
    content_type: Mapped[str] = mapped_column(Text, nullable=False)
    size_bytes: Mapped[int] = mapped_column(BigInteger, nullable=False)
    sha256: Mapped[str] = mapped_column(Text, nullable=False)


class ReferenceFileChunk(Base):
    __tablename__ = "reference_file_chunks"

    file_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("reference_files.id", ondelete="CASCADE"), primary_key=True
    )
    seq: Mapped[int] = mapped_column(Integer, primary_key=True)
    data: Mapped[bytes] = mapped_column(LargeBinary, nullable=False)
