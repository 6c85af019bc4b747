"""Accounts (tenants) and their API keys."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, DateTime, ForeignKey, LargeBinary, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from app.models.base import Base, CreatedAtMixin, IdMixin


class Account(IdMixin, CreatedAtMixin, Base):
    __tablename__ = "accounts"

    name: Mapped[str] = mapped_column(Text, nullable=False)


class ApiKey(IdMixin, CreatedAtMixin, Base):
    """An API key is shown once; only its SHA-256 and a short lookup prefix are stored."""

    __tablename__ = "api_keys"

    account_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("accounts.id", ondelete="CASCADE"), nullable=False, index=True
    )
    prefix: Mapped[str] = mapped_column(String(16), nullable=False, index=True)
    key_hash: Mapped[bytes] = mapped_column(LargeBinary(32), nullable=False, unique=True)
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
