"""Load test: 50 concurrent clients on loopback for a bounded time, mixing reads (pages, item
details), searches, summaries, single and bulk row writes, patches, deletes and file appends.
Reports throughput and p50/p99 latency per operation, counts every error, and afterwards checks
that every item's row count and summary are exactly what the writes imply.

Usage:  make load      (or: .venv/bin/python bench/load.py [--clients 50] [--seconds 60])
It starts its own embedded PostgreSQL and the service (like bench/run.py), or uses a running one:
        .venv/bin/python bench/load.py --url http://127.0.0.1:8000 --key dik_...
Exit status 1 if any request failed or any item does not add up.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import shutil
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

ITEMS = 5
SEED_ROWS = 2_000


@dataclass
class ItemState:
    """What the writes imply for one item."""

    id: int
    region: str = ""
    revenue: str = ""
    rows: int = 0
    revenue_sum: Decimal = Decimal(0)
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)


@dataclass
class Stats:
    latency: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    errors: list[str] = field(default_factory=list)


def csv_rows(n: int, start: int) -> tuple[bytes, Decimal]:
    lines = ["Region,Customer,Revenue,Close Date"]
    total = Decimal(0)
    for i in range(start, start + n):
        value = Decimal(i % 997) + Decimal("0.25")
        total += value
        lines.append(f"R{i % 7},Customer {i},{value},2026-01-{1 + i % 28:02d}")
    return ("\r\n".join(lines) + "\r\n").encode(), total


async def call(stats: Stats, op: str, request: Any) -> httpx.Response | None:
    t0 = time.perf_counter()
    try:
        response: httpx.Response = await request
    except httpx.HTTPError as exc:
        stats.errors.append(f"{op}: {exc!r}")
        return None
    stats.latency[op].append(time.perf_counter() - t0)
    if response.status_code >= 400:
        stats.errors.append(f"{op}: {response.status_code} {response.text[:200]}")
        return None
    return response


async def client_loop(
    n: int, http: httpx.AsyncClient, items: list[ItemState], deadline: float, stats: Stats
) -> None:
    rng = random.Random(n)
    mine: dict[int, dict[str, Decimal]] = defaultdict(dict)  # item -> row ref -> revenue
    counter = 0
    while time.monotonic() < deadline:
        item = rng.choice(items)
        base = f"/data-items/{item.id}"
        roll = rng.random()
        if roll < 0.25:
            offset = rng.randrange(0, max(item.rows, 1))
            await call(
                stats, "page", http.get(f"{base}/rows/", params={"offset": offset, "limit": 50})
            )
        elif roll < 0.37:
            term = rng.choice(["customer 1", "r3", "zzqx", "2026-01-1", "load"])
            await call(
                stats, "search", http.get(f"{base}/rows/", params={"search": term, "limit": 20})
            )
        elif roll < 0.45:
            await call(stats, "summary", http.get(f"{base}/summary/"))
        elif roll < 0.50:
            await call(stats, "item", http.get(f"{base}/"))
        elif roll < 0.65:
            value = Decimal(rng.randrange(1, 10_000)) / 100
            r = await call(
                stats, "create_row",
                http.post(f"{base}/rows/", json={"values": {item.region: f"load{n}", item.revenue: str(value)}}),
            )  # fmt: skip
            if r is not None:
                async with item.lock:
                    item.rows += 1
                    item.revenue_sum += value
                mine[item.id][r.json()["row_ref"]] = value
        elif roll < 0.73:
            values = [Decimal(rng.randrange(1, 10_000)) / 100 for _ in range(20)]
            rows = [{item.region: f"load{n}", item.revenue: str(v)} for v in values]
            r = await call(stats, "bulk_20", http.post(f"{base}/rows/bulk/", json={"rows": rows}))
            if r is not None:
                async with item.lock:
                    item.rows += 20
                    item.revenue_sum += sum(values)
        elif roll < 0.85 and mine[item.id]:
            ref = rng.choice(list(mine[item.id]))
            value = Decimal(rng.randrange(1, 10_000)) / 100
            r = await call(
                stats,
                "patch",
                http.patch(f"{base}/rows/{ref}/", json={"values": {item.revenue: str(value)}}),
            )
            if r is not None:
                async with item.lock:
                    item.revenue_sum += value - mine[item.id][ref]
                mine[item.id][ref] = value
        elif roll < 0.95 and mine[item.id]:
            ref = rng.choice(list(mine[item.id]))
            r = await call(stats, "delete", http.delete(f"{base}/rows/{ref}/"))
            if r is not None:
                async with item.lock:
                    item.rows -= 1
                    item.revenue_sum -= mine[item.id].pop(ref)
        elif roll >= 0.95:
            counter += 1
            data, total = csv_rows(50, n * 100_000 + counter * 50)
            r = await call(
                stats, "append_50",
                http.post(f"{base}/append-from-file/", files={"data_file": ("more.csv", data)}),
            )  # fmt: skip
            if r is not None:
                async with item.lock:
                    item.rows += 50
                    item.revenue_sum += total


async def run(url: str, key: str, clients: int, seconds: float) -> int:
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(
        base_url=f"{url}/api/v1", headers={"X-Api-Key": key}, timeout=120, limits=limits
    ) as http:
        items: list[ItemState] = []
        for i in range(ITEMS):
            data, total = csv_rows(SEED_ROWS, i * SEED_ROWS)
            r = await http.post(
                "/data-items/create-from-file/", data={"data_name": f"load {i}"},
                files={"data_file": (f"seed{i}.csv", data)},
            )  # fmt: skip
            r.raise_for_status()
            body = r.json()
            labels = {f["field_label"]: str(f["id"]) for f in body["fields"]}
            items.append(
                ItemState(body["id"], labels["Region"], labels["Revenue"], SEED_ROWS, total)
            )
        stats = Stats()
        started = time.monotonic()
        deadline = started + seconds
        await asyncio.gather(
            *(client_loop(n, http, items, deadline, stats) for n in range(clients))
        )
        elapsed = time.monotonic() - started

        mismatches = []
        for item in items:
            detail = (await http.get(f"/data-items/{item.id}/")).json()
            summary = json.loads(
                (await http.get(f"/data-items/{item.id}/summary/")).content, parse_float=Decimal
            )
            revenue = next(
                s for s in summary["field_summaries"] if str(s["field_id"]) == item.revenue
            )
            counted = (await http.get(f"/data-items/{item.id}/rows/", params={"limit": 1})).json()[
                "total"
            ]
            if not detail["row_count"] == summary["row_count"] == counted == item.rows:
                mismatches.append(
                    f"item {item.id}: rows {detail['row_count']}/{summary['row_count']}/{counted}, expected {item.rows}"
                )
            if revenue["sum"] != item.revenue_sum or revenue["total_values"] != item.rows:
                mismatches.append(
                    f"item {item.id}: revenue sum {revenue['sum']} ({revenue['total_values']} values), expected {item.revenue_sum} ({item.rows})"
                )

    requests = sum(len(v) for v in stats.latency.values())
    print(
        f"\n{clients} clients, {elapsed:.0f} s: {requests:,} requests, {requests / elapsed:,.0f} req/s, {len(stats.errors)} errors"
    )
    print(f"{'operation':<12} {'count':>8} {'p50 ms':>9} {'p99 ms':>9}")
    everything: list[float] = []
    for op in sorted(stats.latency):
        values = sorted(stats.latency[op])
        everything += values
        print(
            f"{op:<12} {len(values):>8,} {1000 * statistics.median(values):>9.1f} {1000 * values[int(0.99 * (len(values) - 1))]:>9.1f}"
        )
    everything.sort()
    if everything:
        print(
            f"{'all':<12} {len(everything):>8,} {1000 * statistics.median(everything):>9.1f} {1000 * everything[int(0.99 * (len(everything) - 1))]:>9.1f}"
        )
    for error in stats.errors[:20]:
        print("error:", error)
    for problem in mismatches:
        print("MISMATCH:", problem)
    print(
        "every row count and summary adds up"
        if not mismatches
        else f"{len(mismatches)} items do not add up"
    )
    return 1 if stats.errors or mismatches else 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--url", help="a running service (default: start one)")
    parser.add_argument("--key", help="its API key (with --url)")
    args = parser.parse_args()
    if args.url:
        return asyncio.run(run(args.url.rstrip("/"), args.key, args.clients, args.seconds))

    from run import Service  # bench/run.py

    from app.core.database import embedded_server_settings
    from app.core.embedded import EmbeddedPostgres

    work = Path(tempfile.mkdtemp(prefix="dis-load-", dir="/tmp"))
    work.chmod(0o755)
    server = EmbeddedPostgres(
        work / "data", database="load", ephemeral=True, extra_settings=embedded_server_settings()
    )
    svc = None
    try:
        svc = Service(server.start(), work)
        return asyncio.run(run(svc.base, svc.key, args.clients, args.seconds))
    finally:
        if svc is not None:
            svc.stop()
        server.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
