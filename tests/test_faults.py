"""Faults, with real processes: the database restarting under load (embedded, and a separate
server the service does not own), the service killed in the middle of an upload, and a graceful
shutdown with an upload in flight. Nothing half-written, no 500, recovery without a restart."""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest

from app.core.embedded import EmbeddedPostgres
from tests.fixtures.service import Service, postgres_pids_for
from tests.ingestion import files

pytestmark = pytest.mark.slow


@pytest.fixture
def workdir() -> Iterator[Path]:
    base = Path(tempfile.mkdtemp(prefix="dis-faults-", dir="/tmp"))
    base.chmod(0o755)  # ours: the unprivileged PostgreSQL user must reach it
    yield base
    for pid in postgres_pids_for(base):  # never leave a server behind, even on failure
        os.kill(pid, signal.SIGKILL)
    shutil.rmtree(base, ignore_errors=True)


class Traffic(threading.Thread):
    """Reads and all-or-nothing bulk writes in a loop, recording every answer."""

    def __init__(self, api: str, headers: dict[str, str], item: int, field: int) -> None:
        super().__init__(daemon=True)
        self.client = httpx.Client(base_url=api, headers=headers, timeout=30)
        self.item, self.field = item, field
        self.stop = threading.Event()
        self.results: list[tuple[str, int, dict[str, Any]]] = []  # (tag, status, body)
        self.n = 0

    def run(self) -> None:
        with self.client:
            self._loop()

    def _loop(self) -> None:
        while not self.stop.is_set():
            self.n += 1
            tag = f"w{self.n}"
            try:
                r = self.client.post(
                    f"/data-items/{self.item}/rows/bulk/",
                    json={"rows": [{str(self.field): tag} for _ in range(25)]},
                )
                self.results.append((tag, r.status_code, r.json()))
                r = self.client.get(f"/data-items/{self.item}/rows/", params={"limit": 1})
                self.results.append(("read", r.status_code, r.json()))
            except httpx.HTTPError as exc:  # the service itself must stay up
                self.results.append((tag, 0, {"error": repr(exc)}))
            time.sleep(0.05)


def _restart_under_traffic(service: Service, db: EmbeddedPostgres, outage: float = 2.0) -> Traffic:
    headers = service.new_key("Faults")
    item = httpx.post(
        f"{service.api}/data-items/", json={"data_name": "kept", "fields": [{"field_label": "tag"}]},
        headers=headers, timeout=10,
    ).json()  # fmt: skip
    traffic = Traffic(service.api, headers, item["id"], item["fields"][0]["id"])
    traffic.start()
    time.sleep(0.5)
    db.halt()
    time.sleep(outage)
    ready = httpx.get(f"{service.base}/readyz", timeout=10)
    assert ready.status_code == 503 and ready.json()["status"] == "unavailable"
    db.resume()
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:  # the service recovers on its own
        if httpx.get(f"{service.base}/readyz", timeout=10).status_code == 200:
            break
        time.sleep(0.2)
    time.sleep(1.0)
    traffic.stop.set()
    traffic.join(timeout=30)

    statuses = [status for _, status, _ in traffic.results]
    assert 0 not in statuses, "the service stopped answering"
    odd = [(t, s, b) for t, s, b in traffic.results if s not in (200, 201, 503)]
    assert not odd, (odd[:3], service.output())
    down = [body for _, status, body in traffic.results if status == 503]
    assert down, "no request met the outage"
    assert all(b["code"] == "DATABASE_UNAVAILABLE" and b["error"] for b in down)
    assert statuses[-1] in (200, 201) and statuses[-2] in (200, 201), "did not recover"

    # nothing half-written: each bulk write is there whole (25 rows) or not at all
    rows: list[dict[str, Any]] = []
    offset = 0
    while True:
        page = httpx.get(
            f"{service.api}/data-items/{item['id']}/rows/", params={"offset": offset, "limit": 500},
            headers=headers, timeout=10,
        ).json()  # fmt: skip
        rows += page["rows"]
        offset += 500
        if offset >= page["total"]:
            break
    counts: dict[str, int] = {}
    for row in rows:
        counts[row[str(item["fields"][0]["id"])]] = (
            counts.get(row[str(item["fields"][0]["id"])], 0) + 1
        )
    written = {tag for tag, status, _ in traffic.results if status == 201}
    assert set(counts) <= {tag for tag, _, _ in traffic.results}
    assert written <= set(counts)
    assert all(n == 25 for n in counts.values()), counts
    return traffic


def test_embedded_database_restart(workdir: Path) -> None:
    service = Service(workdir / "data")
    service.start()
    db = EmbeddedPostgres(workdir / "data")
    db.start()  # the same cluster: this process becomes a second owner of the running server
    try:
        _restart_under_traffic(service, db)
    finally:
        assert service.stop() == 0, service.output()
        db.stop()
    assert postgres_pids_for(workdir) == []


def test_separate_database_server_restart(workdir: Path) -> None:
    """DATABASE_URL set: the service does not own the server; it restarts under it."""
    db = EmbeddedPostgres(workdir / "external", database="items")
    url = db.start()
    service = Service(workdir / "unused", database_url=url)
    service.start()
    try:
        _restart_under_traffic(service, db)
    finally:
        assert service.stop() == 0, service.output()
        db.stop()


def _big_csv(path: Path, rows: int) -> Path:
    header = ["Region", "Customer", "Revenue", "Date"]
    body = [[f"R{i % 5}", f"Customer {i}", f"{i}.25", "2026-01-15"] for i in range(rows)]
    path.write_bytes(files.csv_bytes([header, *body]))
    return path


def _wait_for_copy(dsn: str, timeout: float = 60) -> None:
    """Until the service is in the middle of COPYing rows (its transaction is open)."""

    async def poll() -> None:
        conn = await asyncpg.connect(dsn)
        try:
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline:
                busy = await conn.fetchval(
                    "SELECT count(*) FROM pg_stat_activity WHERE query ILIKE 'COPY %' "
                    "AND state = 'active' AND pid <> pg_backend_pid()"
                )
                if busy:
                    return
                await asyncio.sleep(0.02)
            raise AssertionError("the upload never reached COPY")
        finally:
            await conn.close()

    asyncio.run(poll())


class Uploader(threading.Thread):
    def __init__(self, api: str, headers: dict[str, str], path: Path) -> None:
        super().__init__(daemon=True)
        self.api, self.headers, self.path = api, headers, path
        self.response: httpx.Response | None = None
        self.error: Exception | None = None

    def run(self) -> None:
        try:
            with self.path.open("rb") as f:
                self.response = httpx.post(
                    f"{self.api}/data-items/create-from-file/", headers=self.headers,
                    data={"data_name": "big"}, files={"data_file": (self.path.name, f)}, timeout=120,
                )  # fmt: skip
        except httpx.HTTPError as exc:
            self.error = exc


def _item_state(service: Service, headers: dict[str, str]) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = httpx.get(
        f"{service.api}/data-items/", headers=headers, timeout=10
    ).json()["data_items"]
    return [
        httpx.get(f"{service.api}/data-items/{i['id']}/", headers=headers, timeout=10).json()
        for i in items
    ]


def test_killed_during_upload_leaves_nothing_and_comes_back(workdir: Path) -> None:
    spool = workdir / "spool"
    service = Service(workdir / "data", UPLOAD_DIR=str(spool))
    service.start()
    headers = service.new_key("Kill")
    db = EmbeddedPostgres(workdir / "data")
    db.start()
    try:
        upload = Uploader(service.api, headers, _big_csv(workdir / "big.csv", 400_000))
        upload.start()
        _wait_for_copy(db.dsn("app"))
        service.kill()  # SIGKILL, mid-transaction
        upload.join(timeout=60)
        assert upload.response is None  # the connection died with the process
        assert any(spool.glob("upload-*.part")), "the spooled upload should be left behind"

        service.start()  # same DATA_DIR: takes over the running embedded server
        assert list(spool.glob("upload-*.part")) == [], "leftover spool files were not removed"
        assert _item_state(service, headers) == []  # no half-loaded item

        async def orphans() -> int:
            conn = await asyncpg.connect(db.dsn("app"))
            try:
                return int(
                    await conn.fetchval(
                        "SELECT count(*) FROM pg_tables WHERE schemaname = 'item_rows'"
                    )
                )
            finally:
                await conn.close()

        assert asyncio.run(orphans()) == 0  # the partition was rolled back with the rest
    finally:
        if service.proc is not None and service.proc.poll() is None:
            assert service.stop() == 0, service.output()
        db.stop()
    assert postgres_pids_for(workdir) == []


def test_sigterm_lets_an_upload_in_flight_finish_then_stops_the_database(workdir: Path) -> None:
    service = Service(workdir / "data")
    service.start()
    headers = service.new_key("Term")
    db = EmbeddedPostgres(workdir / "data")
    db.start()
    try:
        upload = Uploader(service.api, headers, _big_csv(workdir / "big.csv", 200_000))
        upload.start()
        _wait_for_copy(db.dsn("app"))
    finally:
        db.stop()  # release our share: the service is now the only owner
    assert service.proc is not None
    service.proc.send_signal(signal.SIGTERM)
    upload.join(timeout=120)
    assert upload.response is not None, upload.error
    assert upload.response.status_code == 201, upload.response.text
    assert upload.response.json()["rows_created"] == 200_000
    assert service.proc.wait(timeout=60) in (0, -signal.SIGTERM)
    assert postgres_pids_for(workdir) == []  # the embedded database stopped with the service

    service.start()
    try:
        (item,) = _item_state(service, headers)
        assert item["row_count"] == 200_000
    finally:
        assert service.stop() == 0
    assert postgres_pids_for(workdir) == []
