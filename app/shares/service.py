"""Share links: a public, read-only page of one dashboard at `/s/{token}`, made, listed and
revoked by the dashboard's account.

The token is 32 random bytes (43 URL-safe characters): it cannot be guessed, and only its
SHA-256 is stored, so the database alone cannot give a link back (the link is shown once, when it
is made), as for API keys (SHA-256, not a slow hash: the token has 256 bits of entropy). The page
finds its link by that digest and compares it in constant time; a link that is revoked, expired,
unknown or malformed gets the same 404 page. The link names its dashboard and account, and the
page reads nothing else, through the account-scoped services: another account's dashboard cannot
be reached by construction.

Drawing the page costs each widget's data (its aggregation in PostgreSQL) and a render of its
chart, so it is bounded: the renders take the chart renderer's own bounds (the heavy-work slots,
one render at a time per account, a time limit per render), at most PAGE_RENDER_SECONDS of them
per page (a chart over that budget says so in its cell), and a link's page is drawn at most once
every PAGE_CACHE_SECONDS per process: requests for it meanwhile (however many) get that drawing,
after their own check of the link, so a revoked link is a 404 at once."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import re
import secrets
import time
from collections import OrderedDict
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime

import anyio
from sqlalchemy.ext.asyncio import AsyncSession

from app.accounts.service import AuthenticatedAccount
from app.charts import service as charts_service
from app.core.db import end_reads
from app.core.errors import BadRequest, NotFound
from app.models import Dashboard, DashboardShare
from app.shares import page
from app.shares.lookup import live_share
from app.shares.repository import ShareRepository
from app.shares.schemas import ShareCreate, ShareCreated, ShareList, ShareRead

TOKEN_BYTES = 32
_TOKEN = re.compile(r"[A-Za-z0-9_-]{43}")
PAGE_PATH = "/s/"
PAGE_RENDER_SECONDS = 30.0
PAGE_CACHE_SECONDS = 30.0
PAGE_CACHE_ENTRIES = 64
MAX_LIST_LIMIT = 100


@dataclass(frozen=True)
class SharePage:
    status: int
    html: str


def _digest(token: str) -> bytes:
    return hashlib.sha256(token.encode("ascii")).digest()


def _read(share: DashboardShare, active: bool) -> ShareRead:
    return ShareRead(
        id=share.id,
        dashboard_id=share.dashboard_id,
        expires_at=share.expires_at,
        created_at=share.created_at,
        revoked_at=share.revoked_at,
        active=active,
    )


async def create_share(
    session: AsyncSession,
    account: AuthenticatedAccount,
    dashboard: Dashboard,
    payload: ShareCreate,
    *,
    root: str,
) -> ShareCreated:
    """A new link to `dashboard`; `root` is the service's root path as the client reached it
    (a gateway's prefix), which the link's path starts with."""
    if payload.expires_at is not None and payload.expires_at <= datetime.now(UTC):
        raise BadRequest(
            "Invalid share: `expires_at` is not in the future.",
            details=[{"field": "expires_at", "message": "is not in the future"}],
        )
    token = secrets.token_urlsafe(TOKEN_BYTES)
    share = await ShareRepository(session, account.id).add(
        dashboard.id, _digest(token), payload.expires_at
    )
    return ShareCreated(
        id=share.id,
        url=f"{root}{PAGE_PATH}{token}",
        expires_at=share.expires_at,
        created_at=share.created_at,
    )


async def list_shares(
    session: AsyncSession,
    account: AuthenticatedAccount,
    dashboard: Dashboard,
    *,
    offset: int,
    limit: int,
) -> ShareList:
    found, total = await ShareRepository(session, account.id).page(
        dashboard.id, offset=offset, limit=limit
    )
    return ShareList(
        total=total, offset=offset, limit=limit, shares=[_read(s, a) for s, a in found]
    )


async def revoke_share(
    session: AsyncSession, account: AuthenticatedAccount, dashboard: Dashboard, share_id: int
) -> None:
    """The link's page answers 404 from now on (revoking it again changes nothing)."""
    if not await ShareRepository(session, account.id).revoke(dashboard.id, share_id):
        raise NotFound(f"Share {share_id} of dashboard {dashboard.id} not found.")


class PageCache:
    """Pages of links drawn in the last `seconds`, the `entries` most recent, and one drawing at
    a time per link (the others wait for it, then read it here). Used from the event loop."""

    def __init__(self, seconds: float, entries: int) -> None:
        self.seconds = seconds
        self.entries = entries
        self._pages: OrderedDict[int, tuple[float, str]] = OrderedDict()
        self._turns: dict[int, tuple[asyncio.Lock, int]] = {}

    def get(self, share_id: int) -> str | None:
        found = self._pages.get(share_id)
        if found is None or time.monotonic() - found[0] > self.seconds:
            return None
        return found[1]

    def put(self, share_id: int, html: str) -> None:
        self._pages[share_id] = (time.monotonic(), html)
        self._pages.move_to_end(share_id)
        while len(self._pages) > self.entries:
            self._pages.popitem(last=False)

    @asynccontextmanager
    async def turn(self, share_id: int) -> AsyncIterator[None]:
        """One drawing of a link's page at a time (the lock goes once nobody holds or awaits
        it)."""
        lock, users = self._turns.get(share_id, (asyncio.Lock(), 0))
        self._turns[share_id] = (lock, users + 1)
        try:
            async with lock:
                yield
        finally:
            lock, users = self._turns[share_id]
            if users == 1:
                del self._turns[share_id]
            else:
                self._turns[share_id] = (lock, users - 1)


PAGES = PageCache(PAGE_CACHE_SECONDS, PAGE_CACHE_ENTRIES)


def _not_found() -> SharePage:
    return SharePage(404, page.not_found_page())


async def share_page(
    session: AsyncSession, token: str, *, slots: anyio.CapacityLimiter
) -> SharePage:
    """The page of the link whose token is `token`, or the one 404 page for a token that is
    malformed, unknown, revoked or expired (nothing tells them apart)."""
    if not _TOKEN.fullmatch(token):
        return _not_found()
    digest = _digest(token)
    share = await live_share(session, digest)
    if share is None or not hmac.compare_digest(share.token_hash, digest):
        return _not_found()
    await end_reads(session)  # no connection held while waiting for the link's drawing
    async with PAGES.turn(share.id):
        html = PAGES.get(share.id)
        if html is None:
            try:
                dashboard, charts = await charts_service.dashboard_charts(
                    session,
                    account_id=share.account_id,
                    dashboard_id=share.dashboard_id,
                    slots=slots,
                    budget_seconds=PAGE_RENDER_SECONDS,
                )
            except NotFound:  # the dashboard was deleted since the link was found
                return _not_found()
            cells = [
                page.Cell(e.title, e.x, e.y, e.w, e.h, svg)
                for e, svg in zip(dashboard.layout, charts, strict=True)
            ]
            html = page.dashboard_page(
                dashboard.title, dashboard.description, cells, datetime.now(UTC)
            )
            if None not in charts:  # a chart missing now may be drawn on the next visit
                PAGES.put(share.id, html)
    return SharePage(200, html)
