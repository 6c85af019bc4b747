"""Per-key request counters: one row per API key per minute. They back the rate limit and the
usage figures, and live in PostgreSQL so every replica counts into the same rows."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, DateTime, ForeignKey, Index, Integer, text
from sqlalchemy.orm import Mapped, mapped_column

from app.models.base import Base


class ApiKeyUsage(Base):
    __tablename__ = "api_key_usage"
    __table_args__ = (Index("ix_api_key_usage_account_id_minute", "account_id", "minute"),)

    key_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("api_keys.id", ondelete="CASCADE"), primary_key=True
    )
    minute: Mapped[datetime] = mapped_column(DateTime(timezone=True), primary_key=True)
    account_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("accounts.id", ondelete="CASCADE"), nullable=False
    )
    requests: Mapped[int] = mapped_column(Integer, nullable=False, server_default=text("0"))
    # tokens of the minute's RATE_LIMIT_PER_MINUTE budget reserved by processes (app/access/counter.py)
    granted: Mapped[int] = mapped_column(Integer, nullable=False, server_default=text("0"))
