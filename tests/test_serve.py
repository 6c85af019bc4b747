"""`make run` for real: the service as a subprocess on an embedded PostgreSQL under DATA_DIR, the
admin CLI working beside it on the same DATA_DIR, data surviving a restart, and no PostgreSQL
process left behind after it stops, nor for long after it is killed."""

from __future__ import annotations

import asyncio
import os
import signal
import tempfile
import time
from pathlib import Path

import asyncpg
import httpx
import pytest

from app.core.embedded import fallback_cluster_dir
from tests.fixtures.service import Service, postgres_pids_for

pytestmark = pytest.mark.slow


@pytest.fixture
def data_dir() -> object:
    base = Path(tempfile.mkdtemp(prefix="dis-serve-", dir="/tmp"))
    base.chmod(0o755)
    yield base / "data"
    import shutil

    for pid in postgres_pids_for(base):  # never leave a server behind, even on failure
        os.kill(pid, signal.SIGKILL)
    shutil.rmtree(base, ignore_errors=True)


def test_serve_cli_restart_and_clean_stop(data_dir: Path) -> None:
    service = Service(data_dir)
    cold = service.start()
    try:
        # the CLI shares the running service's embedded server
        created = service.cli("accounts", "create", "Demo")
        headers = {"X-Api-Key": str(created["api_key"])}
        status = httpx.get(f"{service.base}/api/v1/status", headers=headers, timeout=5)
        assert status.status_code == 200, status.text
        assert status.json()["database"] == "ok"
        item = httpx.post(
            f"{service.base}/api/v1/data-items/",
            json={"data_name": "Kept"},
            headers=headers,
            timeout=5,
        )
        assert item.status_code == 201
        assert httpx.get(f"{service.base}/docs", timeout=5).status_code == 200
    finally:
        assert service.stop(signal.SIGTERM) == 0, service.output()
    assert postgres_pids_for(data_dir) == []

    warm = service.start()
    try:
        listing = httpx.get(f"{service.base}/api/v1/data-items/", headers=headers, timeout=5)
        assert [i["data_name"] for i in listing.json()["data_items"]] == ["Kept"]
    finally:
        assert service.stop(signal.SIGINT) == 0, service.output()
    assert postgres_pids_for(data_dir) == []
    assert cold < 60 and warm < 60, (cold, warm)


def wait_no_postgres(data_dir: Path, timeout: float = 10) -> list[int]:
    """The postgres processes of `data_dir` still alive after `timeout` seconds ([] when gone)."""
    deadline = time.monotonic() + timeout
    while (pids := postgres_pids_for(data_dir)) and time.monotonic() < deadline:
        time.sleep(0.1)
    return pids


def socket_dir_of(data_dir: Path) -> Path:
    """The running embedded server's socket dir (line 5 of its postmaster.pid)."""
    clusters = [data_dir, fallback_cluster_dir(data_dir)]
    pidfile = next(c / "pgdata" / "postmaster.pid" for c in clusters if (c / "pgdata").exists())
    return Path(pidfile.read_text().split("\n")[4])


def test_killed_service_does_not_leave_its_server_running(data_dir: Path, tmp_path: Path) -> None:
    service = Service(data_dir)
    service.start()
    headers = service.new_key("Kill")  # the CLI, with the password, beside the service
    assert postgres_pids_for(data_dir)

    async def without_password() -> None:
        passfile = tmp_path / "pgpass"
        passfile.write_text("")
        passfile.chmod(0o600)
        host = str(socket_dir_of(data_dir))
        con = await asyncpg.connect(
            host=host, user="postgres", database="app", passfile=str(passfile)
        )
        await con.close()

    with pytest.raises(asyncpg.InvalidPasswordError):
        asyncio.run(without_password())

    service.kill()  # SIGKILL: no lifespan shutdown, no atexit
    assert wait_no_postgres(data_dir) == [], "the embedded server outlived the killed service"

    service.start()  # starts it again; the data are there
    try:
        r = httpx.get(f"{service.api}/data-items/", headers=headers, timeout=10)
        assert r.status_code == 200, r.text
    finally:
        assert service.stop() == 0, service.output()
    assert postgres_pids_for(data_dir) == []
    # the CLI alone starts the server, and stops it when done
    assert service.cli("accounts", "list")["accounts"]
    assert wait_no_postgres(data_dir) == []


def test_a_second_service_keeps_the_server_when_the_first_is_killed(data_dir: Path) -> None:
    first, second = Service(data_dir), Service(data_dir)  # one embedded server, two owners
    first.start()
    second.start()
    try:
        headers = second.new_key("Second")
        first.kill()
        time.sleep(3)  # the watchdog looks every second
        assert postgres_pids_for(data_dir)
        ready = httpx.get(f"{second.base}/readyz", timeout=10)
        assert ready.status_code == 200, ready.text
        r = httpx.post(
            f"{second.api}/data-items/", json={"data_name": "Still here"}, headers=headers,
            timeout=10,
        )  # fmt: skip
        assert r.status_code == 201, r.text
        second.kill()
        assert wait_no_postgres(data_dir) == [], "the server outlived its last service"
    finally:
        for service in (first, second):
            if service.proc is not None and service.proc.poll() is None:
                service.proc.kill()
                service.proc.wait()
