"""`make run` for real: the service as a subprocess on an embedded PostgreSQL under DATA_DIR, the
admin CLI working beside it on the same DATA_DIR, data surviving a restart, and no PostgreSQL
process left behind after it stops."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import pytest

ROOT = Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.slow


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def postgres_pids_for(data_dir: Path) -> list[int]:
    """Live (non-zombie) postgres processes whose command line names our data dir."""
    pids = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode()
            state = (proc / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if state not in ("Z", "X") and "postgres" in cmdline and str(data_dir) in cmdline:
            pids.append(int(proc.name))
    return pids


class Service:
    def __init__(self, data_dir: Path) -> None:
        self.port = free_port()
        self.env = {
            **{
                k: v
                for k, v in os.environ.items()
                if k not in {"DATABASE_URL", "TEST_DATABASE_URL"}
            },
            "DATA_DIR": str(data_dir),
            "PORT": str(self.port),
            "HOST": "127.0.0.1",
        }
        self.base = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen[bytes] | None = None
        self.log = data_dir.parent / f"service-{self.port}.log"

    def start(self) -> float:
        started = time.perf_counter()
        with self.log.open("ab") as log:  # a file, not a pipe: a full pipe would block the service
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "app", "serve"], cwd=ROOT, env=self.env,
                stdout=log, stderr=subprocess.STDOUT,
            )  # fmt: skip
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, self.output()
            try:
                if httpx.get(f"{self.base}/readyz", timeout=1).status_code == 200:
                    return time.perf_counter() - started
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise AssertionError("service did not become ready: " + self.output())

    def cli(self, *args: str) -> dict[str, object]:
        result = subprocess.run(
            [sys.executable, "-m", "app", *args, "--json"], cwd=ROOT, env=self.env,
            capture_output=True, text=True, timeout=60, check=False,
        )  # fmt: skip
        assert result.returncode == 0, result.stderr
        data: dict[str, object] = json.loads(result.stdout)
        return data

    def stop(self, sig: int = signal.SIGTERM) -> int:
        assert self.proc is not None
        self.proc.send_signal(sig)
        code = self.proc.wait(timeout=60)
        # uvicorn shuts down gracefully, then re-raises the signal (so the exit status shows it)
        return 0 if code in (0, -sig, 128 + sig) else code

    def output(self) -> str:
        return self.log.read_text(errors="replace")[-4000:] if self.log.exists() else ""


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
