"""Downloads (exports, bundles, reference files) that a slow client cannot turn into a held
database connection.

A download is produced as fast as the database gives it, into a spool file, on its own pooled
connection; the client reads the file at whatever pace it likes, from the first chunk on. The
connection goes back to the pool when the producing ends, not when the client has read the last
byte. Around that:

- at most DOWNLOAD_CONCURRENCY downloads are produced at once per process (each holds a pooled
  connection while it runs); one that waits more than QUEUE_SECONDS for its turn is a 503 with
  Retry-After;
- at most DOWNLOAD_MAX_PER_ACCOUNT downloads of one account are open at once per process (each
  keeps its spool file until its client has read it): one more is a 429;
- a client that accepts nothing for DOWNLOAD_STALL_SECONDS is disconnected.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Callable
from contextlib import aclosing
from contextvars import ContextVar
from pathlib import Path
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession
from starlette.responses import StreamingResponse
from starlette.types import Message, Receive, Scope, Send

from app.core.errors import RateLimited, ServiceUnavailable

log = logging.getLogger("app.downloads")

QUEUE_SECONDS = 15.0
# What the response sends at once: a client must accept this much per DOWNLOAD_STALL_SECONDS
# (32 KiB in 60 s: about 550 bytes a second) not to count as stalled.
READ_CHUNK = 32 * 1024
# Set when a download was cut off because its client stopped reading (see logging.py: uvicorn's
# "returned without completing response" is then expected, not an error).
stalled_download: ContextVar[bool] = ContextVar("stalled_download", default=False)


class ClientStalled(Exception):
    """The client accepted nothing for DOWNLOAD_STALL_SECONDS."""


class DownloadBudget:
    """One per process: production slots, per-account open downloads, the spool folder."""

    def __init__(
        self, *, concurrency: int, per_account: int, stall_seconds: float, spool_dir: Path
    ) -> None:
        self._slots = asyncio.Semaphore(concurrency)
        self.per_account = per_account
        self.stall_seconds = stall_seconds
        self.spool_dir = spool_dir
        self._open: Counter[int] = Counter()

    def open_count(self, account_id: int) -> int:
        return self._open[account_id]

    async def spool(self, account_id: int, source: AsyncIterator[bytes]) -> SpooledBody:
        """Start producing `source` into a spool file and return its body once the first bytes
        (or the end) are there: an error before any byte (the item is gone, a bad filter) is
        still an error response. Raises 429 / 503 as the module docstring says."""
        if self._open[account_id] >= self.per_account:
            await _close(source)
            raise RateLimited(
                f"This account already has {self.per_account} downloads open "
                "(DOWNLOAD_MAX_PER_ACCOUNT); finish reading one first.",
                headers={"Retry-After": "5"},
            )
        self._open[account_id] += 1
        body: SpooledBody | None = None
        try:
            try:
                await asyncio.wait_for(self._slots.acquire(), QUEUE_SECONDS)
            except TimeoutError:
                await _close(source)
                raise ServiceUnavailable(
                    f"Every download slot is busy (DOWNLOAD_CONCURRENCY); none was free within "
                    f"{QUEUE_SECONDS:.0f} s. Retry shortly.",
                    headers={"Retry-After": "5"},
                ) from None
            body = SpooledBody(self, account_id, source)
            await body.started()
            return body
        except BaseException:
            if body is not None:
                await body.close()
            else:
                self._release(account_id)
            raise

    def _release(self, account_id: int) -> None:
        self._open[account_id] -= 1
        if self._open[account_id] <= 0:
            del self._open[account_id]

    def _slot_done(self) -> None:
        self._slots.release()


async def _close(source: AsyncIterator[bytes]) -> None:
    closer = getattr(source, "aclose", None)
    if closer is not None:
        await closer()


class SpooledBody:
    """The producer task writing the spool file, and the reader the response iterates."""

    def __init__(self, budget: DownloadBudget, account_id: int, source: AsyncIterator[bytes]):
        self._budget = budget
        self._account_id = account_id
        budget.spool_dir.mkdir(parents=True, exist_ok=True)
        self.path = budget.spool_dir / f"download-{os.getpid()}-{uuid.uuid4().hex}.part"
        self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600)
        self._written = 0
        self._done = False
        self._error: BaseException | None = None
        self._changed = asyncio.Event()
        self._closed = False
        self._task = asyncio.create_task(self._produce(source), name="download-producer")

    async def _produce(self, source: AsyncIterator[bytes]) -> None:
        try:
            async with aclosing(source) as chunks:  # type: ignore[type-var]
                async for chunk in chunks:
                    if chunk:
                        os.pwrite(self._fd, chunk, self._written)
                        self._written += len(chunk)
                        self._changed.set()
        except asyncio.CancelledError:
            self._error = ClientStalled("download abandoned")
            raise
        except BaseException as exc:
            self._error = exc
        finally:
            self._done = True
            self._changed.set()
            self._budget._slot_done()

    async def started(self) -> None:
        while not self._written and not self._done:
            self._changed.clear()
            if self._written or self._done:
                break
            await self._changed.wait()
        if self._done and self._error is not None and not self._written:
            raise self._error

    async def chunks(self) -> AsyncIterator[bytes]:
        pos = 0
        try:
            while True:
                if pos < self._written:
                    data = os.pread(self._fd, min(READ_CHUNK, self._written - pos), pos)
                    pos += len(data)
                    yield data
                elif self._done:
                    if self._error is not None:
                        raise self._error
                    return
                else:
                    self._changed.clear()
                    if pos >= self._written and not self._done:
                        await self._changed.wait()
        finally:
            await self.close()

    async def close(self) -> None:
        """Stop producing if it still runs, remove the spool file, give the account's place
        back. Idempotent."""
        if self._closed:
            return
        self._closed = True
        if not self._task.done():
            self._task.cancel()
        with contextlib.suppress(BaseException):
            await asyncio.shield(asyncio.wait({self._task}))
        os.close(self._fd)
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()
        self._budget._release(self._account_id)


class DownloadResponse(StreamingResponse):
    """A streamed file whose client must keep reading: a send that waits more than
    `stall_seconds` (the client stopped reading) ends the response and the connection."""

    def __init__(
        self,
        content: AsyncIterator[bytes],
        *,
        stall_seconds: float,
        on_close: Callable[[], Any] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(content, **kwargs)
        self.stall_seconds = stall_seconds
        self.on_close = on_close

    async def stream_response(self, send: Send) -> None:
        async def timed(message: Message) -> None:
            try:
                await asyncio.wait_for(send(message), self.stall_seconds)
            except TimeoutError:
                raise ClientStalled(
                    f"the client read nothing for {self.stall_seconds:.0f} s"
                ) from None

        await super().stream_response(timed)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        except ClientStalled as exc:
            stalled_download.set(True)
            log.info("download stopped: %s (DOWNLOAD_STALL_SECONDS)", exc)
        finally:
            if self.on_close is not None:
                await self.on_close()


async def download_response(
    budget: DownloadBudget,
    session: AsyncSession,
    account_id: int,
    body: AsyncIterator[bytes],
    *,
    media_type: str,
    headers: dict[str, str],
) -> DownloadResponse:
    """`body`, spooled (see the module docstring), as a response that cuts off stalled clients.
    The request's own transaction ends first: a download waiting for its slot must not hold a
    pooled connection meanwhile (30 waiting downloads emptied the pool)."""
    await session.commit()
    spooled = await budget.spool(account_id, body)
    return DownloadResponse(
        spooled.chunks(),
        stall_seconds=budget.stall_seconds,
        on_close=spooled.close,
        media_type=media_type,
        headers=headers,
    )
