"""Slow readers against a running service: 30 clients download a large export at 1 KB/s while a
second account keeps making ordinary requests. Reports the second account's latency (p50, p99)
and errors, which must be 0: slow readers must not take what other accounts need.

Usage:  make slow-readers      (or: .venv/bin/python bench/slow_readers.py [--seconds 40])
It starts its own embedded PostgreSQL and the service (`python -m app serve`, one process, the
default pool of 20 connections, no overflow), uploads a 100,000-row item (an export of ~14 MB) for the
readers' account, then runs both sides for --seconds. DOWNLOAD_MAX_PER_ACCOUNT is raised to 32
so that all 30 readers are served at once (the default, 8, would answer 22 of them 429 at once).
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import shutil
import socket
import statistics
import sys
import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from run import CSV_100K, Service, ensure_data  # noqa: E402

from app.core.database import embedded_server_settings  # noqa: E402
from app.core.embedded import EmbeddedPostgres  # noqa: E402

READERS = 30
READ_RATE = 1024  # bytes a second per reader


@dataclass(eq=False)
class Reader(threading.Thread):
    port: int
    path: str
    key: str
    stop: threading.Event
    status: str = ""
    received: int = 0
    outcome: str = "reading"

    def __post_init__(self) -> None:
        super().__init__(daemon=True)

    def run(self) -> None:
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.settimeout(30)
        try:
            sock.connect(("127.0.0.1", self.port))
            sock.sendall(
                f"GET {self.path} HTTP/1.1\r\nHost: bench\r\nX-Api-Key: {self.key}\r\n\r\n".encode()
            )
            while not self.stop.is_set():
                chunk = sock.recv(READ_RATE)
                if not chunk:
                    self.outcome = "closed by the server"
                    return
                if not self.status:
                    self.status = chunk.split(b"\r\n", 1)[0].decode(errors="replace")
                self.received += len(chunk)
                time.sleep(1)
        except OSError as exc:
            self.outcome = f"error: {type(exc).__name__}"
        finally:
            sock.close()


@dataclass(eq=False)
class Bystander(threading.Thread):
    """The other account: list items, read the item, a page of rows, the summary, add a row."""

    base: str
    key: str
    item: int
    field: str
    stop: threading.Event
    # (dataclasses.field: the attribute `field` above shadows the bare name for mypy)
    latencies: list[float] = dataclasses.field(default_factory=list)
    errors: Counter[str] = dataclasses.field(default_factory=Counter)
    # (latency, at, call)
    slowest: list[tuple[float, float, str]] = dataclasses.field(default_factory=list)

    def __post_init__(self) -> None:
        super().__init__(daemon=True)

    def run(self) -> None:
        began = time.perf_counter()
        calls = [
            ("GET", "/data-items/", None),
            ("GET", f"/data-items/{self.item}/", None),
            ("GET", f"/data-items/{self.item}/rows/?limit=50", None),
            ("GET", f"/data-items/{self.item}/summary/", None),
            ("POST", f"/data-items/{self.item}/rows/", {"values": {self.field: "bystander"}}),
        ]
        with httpx.Client(
            base_url=f"{self.base}/api/v1", headers={"X-Api-Key": self.key}, timeout=60
        ) as c:
            i = 0
            while not self.stop.is_set():
                method, path, body = calls[i % len(calls)]
                i += 1
                t0 = time.perf_counter()
                try:
                    r = c.request(method, path, json=body)
                    if r.status_code >= 400:
                        self.errors[str(r.status_code)] += 1
                except httpx.HTTPError as exc:
                    self.errors[type(exc).__name__] += 1
                self.latencies.append(time.perf_counter() - t0)
                self.slowest.append((self.latencies[-1], t0 - began, f"{method} {path}"))
                self.slowest = sorted(self.slowest, reverse=True)[:3]
                time.sleep(0.05)


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=40)
    args = parser.parse_args()
    ensure_data()
    work = Path(tempfile.mkdtemp(prefix="dis-slow-", dir="/tmp"))
    work.chmod(0o755)
    server = EmbeddedPostgres(
        work / "data", database="bench", ephemeral=True, extra_settings=embedded_server_settings()
    )
    url = server.start()
    svc = None
    try:
        svc = Service(
            url, work, {"DOWNLOAD_MAX_PER_ACCOUNT": "32", "UPLOAD_DIR": str(work / "spool")}
        )
        item = svc.upload(CSV_100K)["id"]
        other_key = svc.new_key("bystander")
        with httpx.Client(
            base_url=f"{svc.base}/api/v1", headers={"X-Api-Key": other_key}, timeout=60
        ) as c:
            own = c.post(
                "/data-items/",
                json={"data_name": "everyday", "fields": [{"field_label": "note"}]},
            ).json()
        stop = threading.Event()
        readers = [
            Reader(svc.port, f"/api/v1/data-items/{item}/export/?format=csv", svc.key, stop)
            for _ in range(READERS)
        ]
        for r in readers:
            r.start()
        time.sleep(2)  # every reader has its download open
        bystander = Bystander(svc.base, other_key, own["id"], str(own["fields"][0]["id"]), stop)
        started = dt.datetime.now(dt.UTC)
        bystander.start()
        time.sleep(args.seconds)
        stop.set()
        bystander.join(60)
        for r in readers:
            r.join(5)
        lat = bystander.latencies
        statuses = Counter(r.status or r.outcome for r in readers)
        print(
            f"slow readers, {started:%Y-%m-%d %H:%M} UTC, {args.seconds:.0f} s: {READERS} readers "
            f"of a {CSV_100K.stat().st_size / 1e6:.0f} MB CSV export at {READ_RATE} B/s "
            f"({dict(statuses)}; {sum(r.received for r in readers) / 1e3:.0f} kB read in all)"
        )
        print(
            f"other account: {len(lat)} requests, p50 {statistics.median(lat) * 1000:.1f} ms, "
            f"p99 {percentile(lat, 99) * 1000:.1f} ms, max {max(lat) * 1000:.1f} ms, "
            f"errors {sum(bystander.errors.values())} {dict(bystander.errors) or ''}"
        )
        print(
            "slowest: "
            + "; ".join(
                f"{call} {lat * 1000:.0f} ms at {at:.1f} s" for lat, at, call in bystander.slowest
            )
        )
        if bystander.errors:
            raise SystemExit("the other account saw errors")
    finally:
        if svc is not None:
            svc.proc.terminate()
            svc.proc.wait(60)
        server.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
