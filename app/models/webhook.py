"""Webhooks (an account's URL subscribed to events) and their deliveries (an outbox).

A delivery row is written in the same transaction as the change it announces, so a change that
rolls back never fires; a background worker in any replica claims due deliveries and POSTs them,
recording each attempt. The body is stored as the exact text sent, so a retry sends (and signs)
the same bytes.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    Text,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlalchemy.orm import Mapped, mapped_column

from app.models.base import Base, CreatedAtMixin, IdMixin

DELIVERY_STATUSES = ("pending", "succeeded", "failed")


class Webhook(IdMixin, CreatedAtMixin, Base):
    __tablename__ = "webhooks"

    account_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("accounts.id", ondelete="CASCADE"), nullable=False, index=True
    )
    url: Mapped[str] = mapped_column(Text, nullable=False)
    events: Mapped[list[str]] = mapped_column(ARRAY(Text), nullable=False)
    description: Mapped[str] = mapped_column(Text, nullable=False, server_default="")
    # Signing needs the secret itself (HMAC), so it cannot be hashed: stored as `whsec_…`, or as
    # `fernet:<token>` when WEBHOOK_SECRET_KEY encrypts it (`app.webhooks.vault`). Shown once.
    secret: Mapped[str] = mapped_column(Text, nullable=False)
    # Created before Standard Webhooks signatures (migration 0010): its deliveries also carry the
    # body-only X-Signature its receiver may still check.
    legacy_signature: Mapped[bool] = mapped_column(
        Boolean, nullable=False, server_default=text("false")
    )


class WebhookDelivery(IdMixin, CreatedAtMixin, Base):
    __tablename__ = "webhook_deliveries"
    __table_args__ = (
        CheckConstraint(
            "status IN ('pending', 'succeeded', 'failed')",
            name="status",
        ),
        Index("ix_webhook_deliveries_webhook_id_id", "webhook_id", text("id DESC")),
        Index(
            "ix_webhook_deliveries_due",
            "next_attempt_at",
            postgresql_where=text("status = 'pending'"),
        ),
        Index("ix_webhook_deliveries_created_at", "created_at"),
        # the dispatcher's fair claim (webhooks with pending deliveries, each one's due ones)
        # and the per-account pending count
        Index(
            "ix_webhook_deliveries_pending_by_webhook",
            "webhook_id",
            "next_attempt_at",
            "id",
            postgresql_where=text("status = 'pending'"),
        ),
    )

    webhook_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("webhooks.id", ondelete="CASCADE"), nullable=False
    )
    event: Mapped[str] = mapped_column(Text, nullable=False)
    event_id: Mapped[str] = mapped_column(Text, nullable=False)
    body: Mapped[str] = mapped_column(Text, nullable=False)
    status: Mapped[str] = mapped_column(Text, nullable=False, server_default="pending")
    attempts: Mapped[int] = mapped_column(Integer, nullable=False, server_default="0")
    next_attempt_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    # Claiming a delivery moves next_attempt_at past the attempt's time limit (a lease) and sets
    # lease_token: if the process dies mid-request the delivery falls due again for any replica,
    # and only the claimer may record the attempt's outcome.
    lease_token: Mapped[str | None] = mapped_column(Text, nullable=True)
    last_status_code: Mapped[int | None] = mapped_column(Integer, nullable=True)
    last_error: Mapped[str | None] = mapped_column(Text, nullable=True)
    history: Mapped[list[dict[str, Any]]] = mapped_column(
        JSONB, nullable=False, server_default="[]"
    )
    delivered_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
