"""Time the export endpoint next to PostgreSQL's own `COPY (SELECT …) TO STDOUT` of the same rows
in the same order on the same server, for an existing data item (the 1M-row item of the rows
benchmark), and watch the service's memory while it streams:

  export_csv    GET …/export/?format=csv, the whole body read; floor: COPY … (FORMAT csv) of the
                item's cells (`"values"->>'<field id>'`, row-ref order) from one asyncpg
                connection, the output discarded. The figure's text carries the service's peak
                RSS growth during the export (it must not grow with the row count).
  export_json   GET …/export/?format=json, next to the same floor (target <= 2x).
  copy_item     POST …/copy/ (fields, rows re-keyed, statistics, widgets: one transaction), next
                to `CREATE TABLE … AS SELECT` of the same rows (target <= 1.5x); the copies are
                deleted after the run.

Each is warmed once, then timed `repeat` times; figures are medians and their ratio.

Usage: .venv/bin/python bench/bench_export.py --dsn postgresql://… --base-url http://127.0.0.1:8000
           --api-key dik_… --item 42 [--repeat 3] [--pid <service pid>]
`run(dsn, base_url, api_key, item_id, repeat)` returns the figures as dicts (bench/run.py records
them). The service's pid is found from the port it listens on when not given (Linux /proc).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import asyncpg
import httpx


def _timed(fn: Callable[[], Any], repeat: int, settle: Callable[[], None]) -> list[float]:
    fn()  # warm: caches, plans, connections
    runs = []
    for _ in range(repeat):
        settle()
        t0 = time.perf_counter()
        fn()
        runs.append(time.perf_counter() - t0)
    return runs


IDLE_SQL = """
SELECT count(*) FROM pg_stat_activity
WHERE application_name = 'data-items-service' AND state = 'active' AND pid <> pg_backend_pid()
"""


def _settle(
    loop: asyncio.AbstractEventLoop, conn: asyncpg.Connection, timeout: float = 600
) -> None:
    """Until the service's background upkeep after the last write (statistics, vacuum, search
    index) is done: no statement of the service running for 1.5 s in a row."""
    deadline = time.monotonic() + timeout
    quiet = 0
    while quiet < 3 and time.monotonic() < deadline:
        busy = loop.run_until_complete(conn.fetchval(IDLE_SQL))
        quiet = quiet + 1 if not busy else 0
        time.sleep(0.5)


def listening_pid(port: int) -> int | None:
    """The process listening on a local TCP port (by socket inode, from /proc), if visible."""
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            parts = line.split()
            if int(parts[1].rsplit(":", 1)[1], 16) == port and parts[3] == "0A":  # LISTEN
                inodes.add(f"socket:[{parts[9]}]")
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            for fd in (proc / "fd").iterdir():
                if os.readlink(fd) in inodes:
                    return int(proc.name)
        except OSError:
            continue
    return None


class Memory:
    """Peak RSS growth of a process during a call (VmHWM after resetting it, minus VmRSS)."""

    def __init__(self, pid: int | None) -> None:
        self.pid = pid

    def _kb(self, key: str) -> int:
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1])
        return 0

    def growth_mb(self, fn: Callable[[], Any]) -> float | None:
        if self.pid is None:
            fn()
            return None
        try:
            Path(f"/proc/{self.pid}/clear_refs").write_text("5")
        except OSError:
            fn()
            return None
        before = self._kb("VmRSS")
        fn()
        return (self._kb("VmHWM") - before) / 1024


def run(
    dsn: str,
    base_url: str,
    api_key: str,
    item_id: int,
    repeat: int = 3,
    *,
    pid: int | None = None,
) -> list[dict[str, Any]]:
    """The figures as dicts: id, what, runs, floor, floor_runs, target, rows."""
    dsn = dsn.replace("postgresql+asyncpg://", "postgresql://", 1)
    api = httpx.Client(
        base_url=f"{base_url.rstrip('/')}/api/v1", headers={"X-Api-Key": api_key}, timeout=None
    )
    if pid is None:
        pid = listening_pid(urlparse(base_url).port or 80)
    memory = Memory(pid)
    loop = asyncio.new_event_loop()
    conn: asyncpg.Connection = loop.run_until_complete(asyncpg.connect(dsn))
    copies: list[int] = []
    try:
        item = api.get(f"/data-items/{item_id}/").raise_for_status().json()
        rows = int(item["row_count"])
        cells = ", ".join(f"(\"values\"->>'{int(f['id'])}')" for f in item["fields"])
        query = f"SELECT {cells} FROM rows WHERE data_item_id = {int(item_id)} ORDER BY row_ref"

        async def discard(_: bytes) -> None:
            return None

        def floor() -> None:
            loop.run_until_complete(conn.copy_from_query(query, output=discard, format="csv"))

        def export(fmt: str) -> Callable[[], int]:
            def go() -> int:
                size = 0
                url = f"/data-items/{item_id}/export/"
                with api.stream("GET", url, params={"format": fmt}) as r:
                    r.raise_for_status()
                    for chunk in r.iter_raw(1 << 20):
                        size += len(chunk)
                return size

            return go

        def settle() -> None:
            _settle(loop, conn)

        floor_runs = _timed(floor, repeat, settle)
        settle()
        growth = [memory.growth_mb(export("csv")) for _ in range(max(1, repeat))]
        peak = max((g for g in growth if g is not None), default=None)
        memo = f"service peak RSS growth {peak:.0f} MB" if peak is not None else "memory not seen"
        figures = [
            {
                "id": "export_csv",
                "what": f"CSV export of {rows:,} rows, streamed ({memo})",
                "runs": _timed(export("csv"), repeat, settle),
                "floor": "COPY (SELECT …) TO STDOUT (FORMAT csv), same rows and order",
                "floor_runs": floor_runs,
                "target": "<= 2x, memory flat",
                "rows": rows,
            },
            {
                "id": "export_json",
                "what": f"JSON export of {rows:,} rows, streamed",
                "runs": _timed(export("json"), repeat, settle),
                "floor": "COPY (SELECT …) TO STDOUT (FORMAT csv), same rows and order",
                "floor_runs": floor_runs,
                "target": "<= 2x",
                "rows": rows,
            },
        ]

        def copy_item() -> None:
            r = api.post(f"/data-items/{item_id}/copy/").raise_for_status()
            copies.append(int(r.json()["id"]))

        def bare_copy() -> None:
            loop.run_until_complete(conn.execute("DROP TABLE IF EXISTS bench_copy"))
            loop.run_until_complete(
                conn.execute(
                    "CREATE TABLE bench_copy AS SELECT * FROM rows "
                    f"WHERE data_item_id = {int(item_id)}"
                )
            )

        copy_runs = _timed(copy_item, repeat, settle)
        bare_runs = _timed(bare_copy, repeat, settle)
        loop.run_until_complete(conn.execute("DROP TABLE IF EXISTS bench_copy"))
        figures.append(
            {
                "id": "copy_item",
                "what": f"POST copy/ of the {rows:,}-row item (one transaction)",
                "runs": copy_runs,
                "floor": "CREATE TABLE AS SELECT of the same rows",
                "floor_runs": bare_runs,
                "target": "<= 1.5x",
                "rows": rows,
            }
        )
        return figures
    finally:
        for copy_id in copies:
            api.delete(f"/data-items/{copy_id}/")
        loop.run_until_complete(conn.close())
        loop.close()
        api.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dsn", required=True, help="PostgreSQL the service uses")
    parser.add_argument("--base-url", default="http://127.0.0.1:8000")
    parser.add_argument("--api-key", required=True, help="a key of the account owning the item")
    parser.add_argument("--item", type=int, required=True, help="data item id")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--pid", type=int, help="the service's pid (default: found by port)")
    args = parser.parse_args()
    figures = run(args.dsn, args.base_url, args.api_key, args.item, args.repeat, pid=args.pid)
    for fig in figures:
        median, floor = statistics.median(fig["runs"]), statistics.median(fig["floor_runs"])
        print(
            f"{fig['id']:<12} {median:8.3f} s   floor {floor:8.3f} s   ratio {median / floor:5.2f}x"
            f"   {fig['what']} ({fig['target']})"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
