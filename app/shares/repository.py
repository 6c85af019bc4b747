"""Share link queries for one account: every statement is keyed by `self.account_id` (the page's
lookup by token, before any account is known, is app/shares/lookup.py)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.models import DashboardShare


class ShareRepository:
    def __init__(self, session: AsyncSession, account_id: int) -> None:
        self.session = session
        self.account_id = account_id

    async def add(
        self, dashboard_id: int, token_hash: bytes, expires_at: datetime | None
    ) -> DashboardShare:
        share = DashboardShare(
            account_id=self.account_id,
            dashboard_id=dashboard_id,
            token_hash=token_hash,
            expires_at=expires_at,
        )
        self.session.add(share)
        await self.session.flush()
        await self.session.refresh(share)
        return share

    async def page(
        self, dashboard_id: int, *, offset: int, limit: int
    ) -> tuple[list[tuple[DashboardShare, bool]], int]:
        """The dashboard's links, newest first, each with whether it works now (by the
        database's clock), and how many there are."""
        active = (DashboardShare.revoked_at.is_(None)) & (
            DashboardShare.expires_at.is_(None) | (DashboardShare.expires_at > func.now())
        )
        stmt = (
            select(DashboardShare, active, func.count().over())
            .where(
                DashboardShare.account_id == self.account_id,
                DashboardShare.dashboard_id == dashboard_id,
            )
            .order_by(DashboardShare.id.desc())
            .offset(offset)
            .limit(limit)
        )
        rows = (await self.session.execute(stmt)).all()
        if rows:
            return [(s, bool(a)) for s, a, _ in rows], int(rows[0][2])
        total = await self.session.scalar(
            select(func.count())
            .select_from(DashboardShare)
            .where(
                DashboardShare.account_id == self.account_id,
                DashboardShare.dashboard_id == dashboard_id,
            )
        )
        return [], int(total or 0)

    async def revoke(self, dashboard_id: int, share_id: int) -> bool:
        """Revokes the link (a second revoke keeps the first time); False if the dashboard has
        no such link."""
        stmt = (
            update(DashboardShare)
            .where(
                DashboardShare.account_id == self.account_id,
                DashboardShare.dashboard_id == dashboard_id,
                DashboardShare.id == share_id,
            )
            .values(revoked_at=func.coalesce(DashboardShare.revoked_at, func.now()))
            .returning(DashboardShare.id)
        )
        return (await self.session.scalar(stmt)) is not None
