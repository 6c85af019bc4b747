"""Slow readers cannot take what other requests need: a download is spooled and its database
connection released before the client has read it, downloads have their own bounded budget, a
stalled reader is cut off, and a saturated pool or a statement past its time is a 503 with
Retry-After, never a 500. Over a real socket: an ASGI transport cannot be slow."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Iterator

import asyncpg
import httpx
import pytest
import sqlalchemy.exc
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from tests.fixtures.live import LiveServer, live_server
from tests.helpers import assert_error

ROWS = 20_000  # an export of ~12 MB: far more than the socket buffers hold


@pytest.fixture(scope="module")
def live(database_url: str) -> Iterator[LiveServer]:
    with live_server(
        database_url,
        db_pool_size=3,
        db_max_overflow=0,
        db_pool_timeout=2,
        download_concurrency=2,
        download_max_per_account=6,
        download_stall_seconds=3,
    ) as server:
        yield server


def _item(base: str, key: str) -> int:
    headers = {"X-Api-Key": key}
    lines = ["Region,Notes"] + [f"R{i % 9},{'x' * 600} {i}" for i in range(ROWS)]
    r = httpx.post(
        f"{base}/api/v1/data-items/create-from-file/",
        data={"data_name": "big"},
        files={"data_file": ("big.csv", ("\r\n".join(lines) + "\r\n").encode())},
        headers=headers,
        timeout=60,
    )
    assert r.status_code == 201, r.text
    return int(r.json()["id"])


class SlowReader:
    """A client that asks for a download, reads its first kilobyte, then stops reading."""

    def __init__(self, port: int, path: str, key: str) -> None:
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # before connecting
        self.sock.settimeout(10)
        self.sock.connect(("127.0.0.1", port))
        request = f"GET {path} HTTP/1.1\r\nHost: test\r\nX-Api-Key: {key}\r\n\r\n"
        self.sock.sendall(request.encode())
        self.head = self.sock.recv(1024)

    def drain(self, within: float = 20) -> tuple[int, bool]:
        """Read what is left: (bytes, whether the server closed the connection)."""
        self.sock.settimeout(within)
        total = 0
        try:
            while chunk := self.sock.recv(1 << 16):
                total += len(chunk)
        except (TimeoutError, ConnectionResetError):
            return total, False
        return total, True

    def close(self) -> None:
        self.sock.close()


def test_slow_readers_leave_the_pool_to_everyone_else(live: LiveServer) -> None:
    _, _, reader_key = live.new_account("Slow reader")
    _, _, other_key = live.new_account("Bystander")
    item = _item(live.url, reader_key)
    path = f"/api/v1/data-items/{item}/export/?format=csv"
    readers = [SlowReader(live.port, path, reader_key) for _ in range(6)]
    try:
        assert all(r.head.startswith(b"HTTP/1.1 200") for r in readers), readers[0].head
        with httpx.Client(base_url=live.url, headers={"X-Api-Key": other_key}, timeout=30) as c:
            latencies = []
            for _ in range(20):  # the pool has 3 connections; 6 downloads are open
                started = time.perf_counter()
                r = c.get("/api/v1/data-items/")
                latencies.append(time.perf_counter() - started)
                assert r.status_code == 200, r.text
            assert max(latencies) < 1.5, latencies
            assert c.get("/readyz").status_code == 200
            # one more download of the reading account is over its cap: 429
            r = httpx.get(f"{live.url}{path}", headers={"X-Api-Key": reader_key}, timeout=30)
            assert assert_error(r, 429, "RATE_LIMITED")["error"].startswith("This account")
            assert r.headers["retry-after"]
        # a reader that stopped reading for DOWNLOAD_STALL_SECONDS (3) has been cut off
        time.sleep(4)
        received, closed = readers[0].drain()
        assert closed, "the stalled download was not closed"
        full = httpx.get(f"{live.url}{path}", headers={"X-Api-Key": reader_key}, timeout=60)
        assert full.status_code == 200 and received + 1024 < len(full.content)
    finally:
        for reader in readers:
            reader.close()


def test_a_download_that_is_read_arrives_whole_and_leaves_no_spool_file(
    live: LiveServer,
) -> None:
    _, _, key = live.new_account("Reader")
    item = _item(live.url, key)
    spool = live.app.state.downloads.spool_dir
    r = httpx.get(
        f"{live.url}/api/v1/data-items/{item}/export/", params={"format": "json"},
        headers={"X-Api-Key": key}, timeout=60,
    )  # fmt: skip
    assert r.status_code == 200 and len(r.json()) == ROWS
    assert not list(spool.glob("download-*.part"))
    bundle = httpx.get(
        f"{live.url}/api/v1/data-items/{item}/bundle/", headers={"X-Api-Key": key}, timeout=60
    )
    assert bundle.status_code == 200 and len(bundle.json()["rows"]) == ROWS
    assert live.app.state.downloads.open_count(live.new_account("x")[0]) == 0


def test_a_saturated_pool_is_a_503_with_retry_after(live: LiveServer) -> None:
    _, _, key = live.new_account("Waiting")

    async def hold_all() -> list[AsyncConnection]:
        """Every pooled connection; the earlier tests' downloads and the process's background
        work (counter flush, job polls) may still hold one for a while, so wait for each."""
        engine: AsyncEngine = live.app.state.engine
        held: list[AsyncConnection] = []
        deadline = time.monotonic() + 60
        while len(held) < 3:
            try:
                held.append(await engine.connect().start())
            except sqlalchemy.exc.TimeoutError:
                if time.monotonic() > deadline:
                    raise
        return held

    held = live.run(hold_all())
    try:
        started = time.perf_counter()
        r = httpx.get(f"{live.url}/api/v1/data-items/", headers={"X-Api-Key": key}, timeout=30)
        body = assert_error(r, 503, "SERVICE_BUSY")
        assert r.headers["retry-after"] and "busy" in body["error"]
        assert time.perf_counter() - started < 10
    finally:

        async def release() -> None:
            for conn in held:
                await conn.close()

        live.run(release())


@pytest.mark.asyncio
async def test_a_statement_past_its_time_is_a_503_with_retry_after(database_url: str) -> None:
    """A write waits for an item a transaction holds: past STATEMENT_TIMEOUT_SECONDS, a 503."""
    dsn = make_url(database_url).set(drivername="postgresql").render_as_string(hide_password=False)
    with live_server(database_url, statement_timeout_seconds=0.5) as server:
        _, _, key = server.new_account("Patient")
        async with httpx.AsyncClient(
            base_url=f"{server.url}/api/v1", headers={"X-Api-Key": key}, timeout=30
        ) as c:
            r = await c.post(
                "/data-items/", json={"data_name": "held", "fields": [{"field_label": "a"}]}
            )
            item, field = r.json()["id"], r.json()["fields"][0]["id"]
            holder = await asyncpg.connect(dsn)
            try:
                async with holder.transaction():
                    await holder.execute("SELECT 1 FROM data_items WHERE id = $1 FOR UPDATE", item)
                    r = await c.post(
                        f"/data-items/{item}/rows/", json={"values": {str(field): "x"}}
                    )
                    body = assert_error(r, 503, "SERVICE_BUSY")
                    assert "STATEMENT_TIMEOUT_SECONDS" in body["error"] and r.headers["retry-after"]
            finally:
                await holder.close()
            r = await c.post(f"/data-items/{item}/rows/", json={"values": {str(field): "x"}})
            assert r.status_code == 201
        await asyncio.sleep(0)


def test_downloads_waiting_for_a_slot_hold_no_connection(live: LiveServer) -> None:
    """Every production slot is taken: further downloads wait in the queue, and must not keep
    their request's pooled connection while they do (six did, and emptied a pool of three)."""
    _, _, reader_key = live.new_account("Queued reader")
    _, _, other_key = live.new_account("Bystander 2")
    item = _item(live.url, reader_key)
    slots = live.app.state.downloads._slots

    async def take_all() -> None:
        for _ in range(2):  # DOWNLOAD_CONCURRENCY of this server
            await slots.acquire()

    async def give_back() -> None:
        for _ in range(2):
            slots.release()

    live.run(take_all())
    results: list[int] = []

    def download() -> None:
        r = httpx.get(
            f"{live.url}/api/v1/data-items/{item}/export/",
            headers={"X-Api-Key": reader_key}, timeout=60,
        )  # fmt: skip
        results.append(r.status_code)

    waiting = [threading.Thread(target=download) for _ in range(5)]
    try:
        for t in waiting:
            t.start()
        time.sleep(1)  # all five are in the queue
        with httpx.Client(base_url=live.url, headers={"X-Api-Key": other_key}, timeout=30) as c:
            for _ in range(5):
                started = time.perf_counter()
                assert c.get("/api/v1/data-items/").status_code == 200
                assert time.perf_counter() - started < 1.5
    finally:
        live.run(give_back())
        for t in waiting:
            t.join(60)
    assert results == [200] * 5
