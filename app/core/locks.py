"""PostgreSQL advisory locks that make a per-account cap hold under concurrent requests.

A cap is a count and an insert ("fewer than N? then add one"); two transactions that count at
the same time both see room. So each cap's count is taken under a transaction-level advisory
lock keyed on (cap, account), held until the transaction that inserts ends: the next request of
that account counts after the first has committed (or rolled back). Other accounts, and other
caps of the same account, never wait for it. Take it as late as possible in a transaction (the
lock is held until it ends) and take no other lock after it.

Advisory lock classes in use (the first key of `pg_advisory_*lock(int, int)`):
7_301 statistics work per item (`summary/service.py`), 7_302 search index builds per item
(`rows/maintenance.py`), 7_303 running import jobs (`jobs/queue.py`), 7_304 widget ordering per
item (`widgets/repository.py`; it shared 7_303 once, so a running import job N held up widget
changes of data item N), 7_310-7_312 the caps below.
"""

from __future__ import annotations

from enum import IntEnum

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession


class AccountCap(IntEnum):
    IMPORT_JOBS = 7_310  # JOB_MAX_PENDING_PER_ACCOUNT
    WEBHOOKS = 7_311  # MAX_WEBHOOKS_PER_ACCOUNT
    WEBHOOK_DELIVERIES = 7_312  # WEBHOOK_MAX_PENDING_PER_ACCOUNT


async def lock_account_cap(session: AsyncSession, cap: AccountCap, account_id: int) -> None:
    """Wait for, then hold until this transaction ends, the lock of `cap` for `account_id`."""
    await session.execute(
        text("SELECT pg_advisory_xact_lock(:cls, :obj)"),
        {"cls": int(cap), "obj": int(account_id) % 2_147_483_647},
    )
