"""Share links of dashboards: a public, read-only page of one dashboard at `/s/{token}`.

Only the token's SHA-256 is stored (the token itself is shown once, in the link, when the share
is made), as for API keys. A share ends when it is revoked (`revoked_at`) or at `expires_at`; the
row stays so that the list can say what happened to it. Deleting the dashboard (or the account)
deletes its shares.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, DateTime, ForeignKey, LargeBinary
from sqlalchemy.orm import Mapped, mapped_column

from app.models.base import Base, CreatedAtMixin, IdMixin


class DashboardShare(IdMixin, CreatedAtMixin, Base):
    __tablename__ = "dashboard_shares"

    account_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("accounts.id", ondelete="CASCADE"), nullable=False, index=True
    )
    dashboard_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("dashboards.id", ondelete="CASCADE"), nullable=False, index=True
    )
    token_hash: Mapped[bytes] = mapped_column(LargeBinary(32), nullable=False, unique=True)
    expires_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
