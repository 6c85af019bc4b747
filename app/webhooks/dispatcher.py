"""The delivery worker: runs in every service process, started and stopped by the lifespan.

It claims due deliveries (SKIP LOCKED: replicas never take the same one), sends up to
WEBHOOK_CONCURRENCY at once, records each attempt, and sleeps until the next delivery falls due,
the poll interval passes, a slot frees up, or a commit in this process queues new ones.

Fairness: due deliveries are claimed in turns across accounts, and one account has at most
`settings.webhook_account_slots` of this process's slots (WEBHOOK_CONCURRENCY_PER_ACCOUNT, by
default a quarter). So an account whose receivers hang until the timeout can hold only its
share of the slots, and another account's delivery is claimed as soon as it is queued. Deliveries are rows in
PostgreSQL, so nothing is lost when a process stops: another replica, or the next start, carries on.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator

import httpx
from sqlalchemy.ext.asyncio import AsyncEngine

from app.core import wakeup
from app.core.config import Settings
from app.webhooks import outbox, signing, vault
from app.webhooks.sender import Attempt, make_client, send
from app.webhooks.service import TOPIC

log = logging.getLogger("app.webhooks")

_PURGE_EVERY = 3600.0
_LEASE_MARGIN = 30.0


class WebhookDispatcher:
    def __init__(self, engine: AsyncEngine, settings: Settings) -> None:
        self.engine = engine
        self.settings = settings
        self._wake = asyncio.Event()
        self._resumed = asyncio.Event()
        self._resumed.set()
        self._round = asyncio.Lock()
        self._task: asyncio.Task[None] | None = None
        self._in_flight: set[asyncio.Task[None]] = set()
        self._account_of: dict[asyncio.Task[None], int] = {}
        self._busy: Counter[int] = Counter()  # account id: deliveries in flight here
        self._client: httpx.AsyncClient | None = None
        self._box = vault.SecretBox.from_settings(settings)

    # lifecycle ------------------------------------------------------------------------------
    async def prepare(self) -> None:
        """Before `start`: with WEBHOOK_SECRET_KEY set, encrypt the stored secrets not yet
        encrypted with its first key. Never fails (problems are logged)."""
        await vault.seal_at_start(self.engine, self._box)

    def start(self) -> None:
        wakeup.subscribe(TOPIC, self.wake)
        self._client = make_client()
        self._task = asyncio.create_task(self._run(), name="webhook-dispatcher")

    def wake(self) -> None:
        self._wake.set()

    @property
    def running(self) -> bool:
        """Started, and its loop has not ended."""
        return self._task is not None and not self._task.done()

    async def stop(self) -> None:
        """Stop at once. Attempts cut short are retried (by any replica) when their lease ends."""
        wakeup.unsubscribe(TOPIC, self.wake)
        tasks = [t for t in (self._task, *self._in_flight) if t is not None]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._task = None
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    @contextlib.asynccontextmanager
    async def paused(self) -> AsyncIterator[None]:
        """Claim nothing new until the block ends (attempts under way finish first)."""
        async with self._round:
            self._resumed.clear()
        try:
            while self._in_flight:
                await asyncio.wait(set(self._in_flight))
            yield
        finally:
            self._resumed.set()
            self.wake()

    # work -----------------------------------------------------------------------------------
    async def run_once(self) -> int:
        """Claim what fits in the free slots and start sending. Returns how many were claimed."""
        free = self.settings.webhook_concurrency - len(self._in_flight)
        if free <= 0:
            return 0
        max_attempts = self.settings.webhook_max_attempts
        await outbox.give_up_exhausted(self.engine, max_attempts=max_attempts)
        claimed = await outbox.claim(
            self.engine,
            limit=free,
            share=self.settings.webhook_account_slots,
            busy=dict(self._busy),
            lease_seconds=self.settings.webhook_timeout_seconds + _LEASE_MARGIN,
            max_attempts=max_attempts,
            token=uuid.uuid4().hex,
        )
        for delivery in claimed:
            task = asyncio.create_task(self._deliver(delivery), name=f"webhook-{delivery.id}")
            self._in_flight.add(task)
            self._account_of[task] = delivery.account_id
            self._busy[delivery.account_id] += 1
            task.add_done_callback(self._finished)
        return len(claimed)

    def _finished(self, task: asyncio.Task[None]) -> None:
        self._in_flight.discard(task)
        account_id = self._account_of.pop(task, None)
        if account_id is not None:
            self._busy[account_id] -= 1
            if self._busy[account_id] <= 0:
                del self._busy[account_id]
        self._wake.set()  # a slot is free

    async def _deliver(self, delivery: outbox.Claimed) -> None:
        assert self._client is not None
        settings = self.settings
        raw = delivery.body.encode()
        try:
            signed = signing.signature_headers(
                self._box.open(delivery.secret),
                message_id=signing.message_id(delivery.id),
                body=raw,
                legacy=delivery.legacy_signature,
            )
        except (vault.SecretUnavailable, ValueError) as exc:
            # retried as usual: the operator may set the right key before the attempts run out
            log.error(
                "webhook %s: delivery %s (attempt %d) not sent: %s",
                delivery.webhook_id,
                delivery.id,
                delivery.attempt,
                exc,
            )
            outcome = Attempt(False, None, f"Not sent: {exc}.", 0)
        else:
            outcome = await send(
                self._client,
                url=delivery.url,
                body=delivery.body,
                headers={
                    **signed,
                    "X-Delivery-Id": str(delivery.id),
                    "X-Delivery-Attempt": str(delivery.attempt),
                    "X-Event-Type": delivery.event,
                    "X-Webhook-Id": str(delivery.webhook_id),
                },
                time_limit=settings.webhook_timeout_seconds,
                allow_private=settings.webhook_allow_private_addresses,
            )
        try:
            kept = await outbox.record(
                self.engine,
                delivery,
                outcome,
                max_attempts=settings.webhook_max_attempts,
                base=settings.webhook_retry_base_seconds,
                cap=settings.webhook_retry_max_seconds,
            )
        except asyncio.CancelledError:
            raise
        except Exception:
            log.warning("could not record webhook delivery %s", delivery.id, exc_info=True)
            return
        if not kept:
            log.info("webhook delivery %s was taken over by another worker", delivery.id)
        elif not outcome.ok:
            log.info(
                "webhook delivery %s attempt %d failed: %s",
                delivery.id,
                delivery.attempt,
                outcome.error,
            )

    async def _pause_for(self) -> float:
        """After a round that claimed nothing: until the next delivery falls due, at most the
        poll interval. A delivery due now that was not claimed belongs to an account already
        sending its share here (or was just taken by another replica): wait for a slot to free
        up (which wakes the loop) or the poll, rather than asking again at once."""
        poll = self.settings.worker_poll_seconds
        if len(self._in_flight) >= self.settings.webhook_concurrency:
            return poll
        due = await outbox.seconds_until_due(self.engine)
        return poll if due is None or due <= 0 else min(poll, due)

    async def _run(self) -> None:
        last_purge = 0.0
        while True:
            await self._resumed.wait()
            self._wake.clear()
            delay = self.settings.worker_poll_seconds
            try:
                async with self._round:
                    claimed = await self.run_once() if self._resumed.is_set() else 0
                if time.monotonic() - last_purge > _PURGE_EVERY:
                    last_purge = time.monotonic()
                    removed = await outbox.purge(
                        self.engine, days=self.settings.webhook_retention_days
                    )
                    if removed:
                        log.info("removed %d old webhook deliveries", removed)
                if claimed:
                    continue  # there may be more
                delay = await self._pause_for()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.warning("webhook dispatcher round failed; will retry", exc_info=True)
            if delay > 0:
                # asyncio.timeout, not wait_for: on 3.11 wait_for can swallow a cancel
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(delay):
                        await self._wake.wait()
