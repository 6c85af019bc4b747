"""`make run` for real: the service as a subprocess on an embedded PostgreSQL under DATA_DIR, the
admin CLI working beside it on the same DATA_DIR, data surviving a restart, and no PostgreSQL
process left behind after it stops."""

from __future__ import annotations

import os
import signal
import tempfile
from pathlib import Path

import httpx
import pytest

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


def test_killed_service_leaves_a_server_that_the_next_start_takes_over(data_dir: Path) -> None:
    service = Service(data_dir)
    service.start()
    orphans_before = postgres_pids_for(data_dir)
    assert orphans_before
    assert service.proc is not None
    service.proc.kill()
    service.proc.wait(timeout=30)
    assert postgres_pids_for(data_dir)  # the orphan the research note warns about
    service.start()
    assert service.stop() == 0, service.output()
    assert postgres_pids_for(data_dir) == []
