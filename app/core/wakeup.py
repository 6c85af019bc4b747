"""Nudges for background workers in this process, sent when a transaction that gave them work
commits (never when it rolls back).

The work itself is always in the database: a nudge only saves a worker in this process its poll
interval. Workers of other replicas find the same work on their next poll.
"""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict
from collections.abc import Callable
from typing import Any

from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncSession

log = logging.getLogger("app.wakeup")

# topic -> (the subscriber's event loop, its callback); several apps, each on its own loop (and
# thread), can live in one process
_subscribers: defaultdict[str, list[tuple[asyncio.AbstractEventLoop, Callable[[], None]]]] = (
    defaultdict(list)
)


def subscribe(topic: str, callback: Callable[[], None]) -> None:
    """Call from the subscriber's event loop: `callback` always runs on that loop."""
    _subscribers[topic].append((asyncio.get_running_loop(), callback))


def unsubscribe(topic: str, callback: Callable[[], None]) -> None:
    _subscribers[topic] = [(lp, cb) for lp, cb in _subscribers[topic] if cb != callback]


def notify(topic: str) -> None:
    try:
        current: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
    except RuntimeError:
        current = None
    for loop, callback in list(_subscribers[topic]):
        try:
            if loop is current:
                callback()
            elif not loop.is_closed():
                loop.call_soon_threadsafe(callback)
        except Exception:  # a nudge must never fail the caller
            log.warning("wake-up of %s failed", topic, exc_info=True)


def notify_after_commit(session: AsyncSession, topic: str) -> None:
    """Nudge `topic`'s workers once the session's current transaction commits."""
    flag = f"wakeup:{topic}"
    if session.info.get(flag):
        return
    session.info[flag] = True

    def committed(_session: Any) -> None:
        session.info.pop(flag, None)
        notify(topic)

    # After a rollback the listener stays for the session's next commit: at worst a spurious
    # nudge (a worker looks and finds nothing).
    event.listen(session.sync_session, "after_commit", committed, once=True)
