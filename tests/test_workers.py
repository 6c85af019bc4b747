"""WORKERS > 1: each worker process listens on a socket of its own (app/core/serving.py), so a
burst of client connections is spread across the workers instead of all landing on the first
one to wake; a worker that dies is replaced on its socket; SIGTERM stops them all."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.fixtures.service import Service

pytestmark = pytest.mark.slow


def worker_pids(parent: int) -> list[int]:
    children = Path(f"/proc/{parent}/task/{parent}/children").read_text().split()
    pids = []
    for pid in map(int, children):
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        if b"spawn_main" in cmdline:  # not multiprocessing's resource tracker
            pids.append(pid)
    return pids


def established_on(port: int, pids: list[int]) -> dict[int, int]:
    """Established connections to `port` held by each pid (sockets matched by inode)."""
    inodes: dict[str, int] = {}
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            local_port = int(fields[1].rsplit(":", 1)[1], 16)
            if local_port == port and fields[3] == "01":  # TCP_ESTABLISHED
                inodes[fields[9]] = local_port
    counts = {}
    for pid in pids:
        mine = 0
        for fd in Path(f"/proc/{pid}/fd").iterdir():
            try:
                target = os.readlink(fd)
            except OSError:
                continue
            if target.startswith("socket:[") and target[8:-1] in inodes:
                mine += 1
        counts[pid] = mine
    return counts


@pytest.fixture
def two_workers(database_url: str) -> Iterator[Service]:
    base = Path(tempfile.mkdtemp(prefix="dis-workers-", dir="/tmp"))
    service = Service(
        base / "data", database_url=database_url, WORKERS="2", MIGRATE_ON_START="false"
    )
    service.start()
    try:
        yield service
    finally:
        if service.proc is not None and service.proc.poll() is None:
            service.stop()


def test_connections_are_spread_across_the_workers(two_workers: Service) -> None:
    assert two_workers.proc is not None
    headers = two_workers.new_key("Workers")
    deadline = time.monotonic() + 30
    while len(pids := worker_pids(two_workers.proc.pid)) < 2 and time.monotonic() < deadline:
        time.sleep(0.2)
    assert len(pids) == 2
    # a kept-alive connection answers at once (no Nagle delay waiting for the client's ACK)
    with httpx.Client(base_url=two_workers.api, headers=headers) as client:
        client.get("/status/")
        started = time.monotonic()
        for _ in range(20):
            assert client.get("/status/").status_code == 200
        assert time.monotonic() - started < 20 * 0.02  # it was 40 ms a request

    clients = [httpx.Client(base_url=two_workers.api, headers=headers) for _ in range(32)]
    try:
        for client in clients:  # one keep-alive connection each, opened in a burst
            assert client.get("/status/").status_code == 200
        counts = established_on(two_workers.port, pids)
        assert sum(counts.values()) == 32, counts
        assert min(counts.values()) >= 4, counts  # a hash spread: ~16 each, never all on one
    finally:
        for client in clients:
            client.close()

    # a worker that dies is replaced, on its own socket: every connection is still answered
    os.kill(pids[0], signal.SIGKILL)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        current = worker_pids(two_workers.proc.pid)
        if len(current) == 2 and pids[0] not in current:
            break
        time.sleep(0.2)
    else:
        raise AssertionError("the killed worker was not replaced")
    for _ in range(20):
        with httpx.Client(base_url=two_workers.api, headers=headers, timeout=30) as client:
            assert client.get("/status/").status_code == 200

    assert two_workers.stop() == 0  # SIGTERM: the workers stop with the parent
    for pid in current:
        stat = Path(f"/proc/{pid}/stat")
        assert not stat.exists() or stat.read_text().rsplit(")", 1)[1].split()[0] in ("Z", "X")


def test_a_second_service_on_the_port_is_refused(two_workers: Service) -> None:
    """Each worker's socket has SO_REUSEPORT, which would let another service bind the same
    port and take a share of its connections: it must fail to start instead."""
    base = Path(tempfile.mkdtemp(prefix="dis-workers-", dir="/tmp"))
    env = {**two_workers.env, "DATA_DIR": str(base / "data")}
    second = subprocess.run(
        [sys.executable, "-m", "app", "serve"], env=env, cwd=Path(__file__).resolve().parents[1],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert second.returncode != 0
    assert "address already in use" in (second.stdout + second.stderr).lower()
