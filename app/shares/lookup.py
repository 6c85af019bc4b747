"""The one query of share links that no account scopes: the public page finds its link by the
token's SHA-256 before any account is known, as authentication finds an API key by its digest.
What it finds (the link's account and dashboard) is all the page reads afterwards, through the
account-scoped services, so another account's dashboard cannot be reached by construction."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.models import DashboardShare


@dataclass(frozen=True)
class LiveShare:
    id: int
    account_id: int
    dashboard_id: int
    token_hash: bytes


async def live_share(session: AsyncSession, token_hash: bytes) -> LiveShare | None:
    """The link with this token digest if it works now: not revoked, not expired (by the
    database's clock)."""
    stmt = select(
        DashboardShare.id,
        DashboardShare.account_id,
        DashboardShare.dashboard_id,
        DashboardShare.token_hash,
    ).where(
        DashboardShare.token_hash == token_hash,
        DashboardShare.revoked_at.is_(None),
        DashboardShare.expires_at.is_(None) | (DashboardShare.expires_at > func.now()),
    )
    row = (await session.execute(stmt)).one_or_none()
    return None if row is None else LiveShare(*row)
