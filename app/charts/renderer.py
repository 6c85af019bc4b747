"""Vega-Lite specs drawn as SVG, PNG or PDF by vl-convert, in worker processes of our own.

vl-convert keeps the GIL for the whole of a render (measured: a 3 s PNG stalled the event loop
for 3 s when run in a thread), so it runs in child processes (app/charts/worker.py, started with
this interpreter and kept for the next render), never in the serving process. The serving side
only writes the spec to a pipe and reads the answer, in a worker thread.

Bounds, so that images cannot take the service from anyone else:
- renders at once per process: the limiter the caller passes (the heavy-file-work slots,
  INGESTION_CONCURRENCY), which is also the most child processes there are;
- one render at a time per account: an account's next image waits for its previous one, so
  the slots go round the accounts that want one;
- RENDER_TIMEOUT_SECONDS per render: a child that takes longer is killed (a 503);
- a child idle for IDLE_SECONDS is ended at the next render (its memory goes back).
"""

from __future__ import annotations

import asyncio
import atexit
import logging
import subprocess
import sys
import threading
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from enum import StrEnum
from pathlib import Path
from typing import IO

import anyio

from app.charts.worker import HEADER
from app.core.errors import AppError, ErrorCode, ServiceUnavailable

log = logging.getLogger("app.charts")

WORKER = Path(__file__).with_name("worker.py")
RENDER_TIMEOUT_SECONDS = 60.0
IDLE_SECONDS = 300.0


class ImageFormat(StrEnum):
    SVG = "svg"
    PNG = "png"
    PDF = "pdf"


MEDIA_TYPES = {
    ImageFormat.SVG: "image/svg+xml",
    ImageFormat.PNG: "image/png",
    ImageFormat.PDF: "application/pdf",
}


class RenderBusy(ServiceUnavailable):
    code = ErrorCode.SERVICE_BUSY


class _Died(Exception):
    pass


def _read(stream: IO[bytes], size: int) -> bytes:
    data = stream.read(size)
    if len(data) != size:
        raise _Died
    return data


class _Worker:
    """One child process and its pipes."""

    def __init__(self) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-u", str(WORKER)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            close_fds=True,
        )
        self.idle_since = time.monotonic()
        self.timed_out = False

    def _kill_for_time(self) -> None:
        self.timed_out = True
        self.process.kill()

    def render(self, fmt: str, spec: bytes, timeout: float) -> tuple[bool, bytes]:
        stdin, stdout = self.process.stdin, self.process.stdout
        assert stdin is not None
        assert stdout is not None
        timer = threading.Timer(timeout, self._kill_for_time)
        timer.start()
        try:
            stdin.write(HEADER.pack(f"{fmt:4}".encode(), len(spec)) + spec)
            stdin.flush()
            status, size = HEADER.unpack(_read(stdout, HEADER.size))
            answer = _read(stdout, size)
        except (OSError, ValueError) as exc:
            raise _Died from exc
        finally:
            timer.cancel()
        return status == b"ok  ", answer

    def close(self) -> None:
        """End the child: closing its input ends its loop; kill it if it does not stop."""
        try:
            if self.process.stdin is not None:
                self.process.stdin.close()
            self.process.wait(2)
        except (OSError, subprocess.TimeoutExpired):
            self.process.kill()
            self.process.wait()
        finally:
            if self.process.stdout is not None:
                self.process.stdout.close()


class ChartRenderer:
    """The process's renderer: idle children kept for the next render, and the accounts'
    turns. Used from the event loop (render) and from worker threads (the rest)."""

    def __init__(self, timeout: float = RENDER_TIMEOUT_SECONDS) -> None:
        self.timeout = timeout
        self._idle: list[_Worker] = []
        self._lock = threading.Lock()
        self._turns: dict[int, tuple[asyncio.Lock, int]] = {}

    def _take(self) -> _Worker:
        now = time.monotonic()
        with self._lock:
            stale = [w for w in self._idle if now - w.idle_since > IDLE_SECONDS]
            self._idle = [w for w in self._idle if w not in stale]
            worker = self._idle.pop() if self._idle else None
        for w in stale:
            w.close()
        return worker if worker is not None else _Worker()

    def _give_back(self, worker: _Worker) -> None:
        worker.idle_since = time.monotonic()
        with self._lock:
            self._idle.append(worker)

    def render_blocking(self, fmt: str, spec: bytes) -> bytes:
        worker = self._take()
        try:
            ok, answer = worker.render(fmt, spec, self.timeout)
        except _Died:
            worker.close()
            if worker.timed_out:
                log.warning("chart render took over %.0f s: killed", self.timeout)
                raise RenderBusy(
                    f"The chart took longer than {self.timeout:.0f} s to draw; ask for a smaller "
                    "image (width, height) or fewer groups (the widget's row_limit).",
                    headers={"Retry-After": "10"},
                ) from None
            log.warning("chart renderer exited with %s", worker.process.returncode)
            raise RenderBusy(
                "The chart renderer stopped while drawing; try again.",
                headers={"Retry-After": "1"},
            ) from None
        except BaseException:
            worker.close()
            raise
        self._give_back(worker)
        if not ok:  # a spec of ours that Vega-Lite refused: a bug, logged with its reason
            log.error("chart render failed: %s", answer.decode(errors="replace"))
            raise AppError("The chart could not be drawn.")
        return answer

    @asynccontextmanager
    async def _turn(self, account_id: int) -> AsyncIterator[None]:
        """One render at a time per account (the lock goes once nobody holds or awaits it)."""
        lock, users = self._turns.get(account_id, (asyncio.Lock(), 0))
        self._turns[account_id] = (lock, users + 1)
        try:
            async with lock:
                yield
        finally:
            lock, users = self._turns[account_id]
            if users == 1:
                del self._turns[account_id]
            else:
                self._turns[account_id] = (lock, users - 1)

    async def render(
        self,
        spec: bytes,
        fmt: ImageFormat,
        *,
        account_id: int,
        slots: anyio.CapacityLimiter,
        dashboard: bool = False,
    ) -> bytes:
        """`spec` (Vega-Lite JSON; `dashboard`: a dashboard's composition, see worker.compose)
        drawn as `fmt`, in a child process, within `slots` and the account's turn."""
        code = f"d{fmt.value}" if dashboard else fmt.value
        async with self._turn(account_id):
            return await anyio.to_thread.run_sync(self.render_blocking, code, spec, limiter=slots)

    def close(self) -> None:
        with self._lock:
            idle, self._idle = self._idle, []
        for worker in idle:
            worker.close()


RENDERER = ChartRenderer()
atexit.register(RENDERER.close)
