"""Accounts (tenants), their API keys and their audit trail."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
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
    name: Mapped[str] = mapped_column(Text, nullable=False, server_default="")
    # what the key may do (app/accounts/scopes.py); every scope for keys made before scopes
    scopes: Mapped[list[str]] = mapped_column(
        ARRAY(Text), nullable=False, server_default="{read,write,manage,admin}"
    )
    # the data items it is limited to; NULL: every item of the account
    data_items: Mapped[list[int] | None] = mapped_column(ARRAY(BigInteger), nullable=True)
    expires_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    # overrides RATE_LIMIT_PER_MINUTE for this key
    rate_limit_per_minute: Mapped[int | None] = mapped_column(Integer, nullable=True)
    created_by_key_id: Mapped[int | None] = mapped_column(
        BigInteger, ForeignKey("api_keys.id", ondelete="SET NULL"), nullable=True
    )


class AuditEvent(IdMixin, CreatedAtMixin, Base):
    """What an account's administrators may want to know later: keys created and revoked, and
    each request refused for lack of a scope (403)."""

    __tablename__ = "audit_events"
    __table_args__ = (Index("ix_audit_events_account_id_id", "account_id", text("id DESC")),)

    account_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("accounts.id", ondelete="CASCADE"), nullable=False
    )
    key_id: Mapped[int | None] = mapped_column(
        BigInteger, ForeignKey("api_keys.id", ondelete="SET NULL"), nullable=True, index=True
    )
    action: Mapped[str] = mapped_column(Text, nullable=False)
    detail: Mapped[dict[str, Any]] = mapped_column(JSONB, nullable=False, server_default="{}")
    request_id: Mapped[str | None] = mapped_column(Text, nullable=True)
