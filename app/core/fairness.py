"""Per-account bounds on work a request holds a database connection for: one account's
aggregate queries (ad-hoc queries, widget data, insights) may run at most N at once in a
process, so a burst of heavy queries from one tenant cannot take every pooled connection from
the others (their requests would wait for DB_POOL_TIMEOUT and get 503s). Past the bound the
request is a 429 with Retry-After: the account's own excess, refused at once."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from app.core.errors import RateLimited


class AccountSlots:
    def __init__(self, per_account: int, what: str, setting: str) -> None:
        self.per_account = per_account
        self.what = what
        self.setting = setting
        self._running: Counter[int] = Counter()

    def running(self, account_id: int) -> int:
        return self._running[account_id]

    @asynccontextmanager
    async def hold(self, account_id: int) -> AsyncIterator[None]:
        if self.per_account > 0 and self._running[account_id] >= self.per_account:
            raise RateLimited(
                f"This account already runs {self.per_account} {self.what} at once in this "
                f"process ({self.setting}); retry when one has finished.",
                headers={"Retry-After": "1"},
            )
        self._running[account_id] += 1
        try:
            yield
        finally:
            self._running[account_id] -= 1
            if not self._running[account_id]:
                del self._running[account_id]


class AccountTurns:
    """At most `per_account` of one account's requests at a time go on to a shared resource;
    the account's others wait here, behind their own, instead of in the shared queue: with
    INGESTION_CONCURRENCY slots, one account sending several files at once takes one slot and
    leaves the others to other accounts (its next file starts when its previous one ends)."""

    def __init__(self, per_account: int) -> None:
        self.per_account = per_account
        self._turns: dict[int, tuple[asyncio.Semaphore, int]] = {}  # account: (gate, users)

    @asynccontextmanager
    async def hold(self, account_id: int) -> AsyncIterator[None]:
        gate, users = self._turns.get(account_id, (asyncio.Semaphore(self.per_account), 0))
        self._turns[account_id] = (gate, users + 1)
        try:
            async with gate:
                yield
        finally:
            gate, users = self._turns[account_id]
            if users == 1:
                del self._turns[account_id]
            else:
                self._turns[account_id] = (gate, users - 1)
