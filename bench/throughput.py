"""Requests per second of the real service next to the floor of its own stack, in one run.

The floor is a bare Starlette + asyncpg app (one uvicorn process, like the service) that answers
the same question from the same PostgreSQL server with the least work this stack allows: look up
the API key (one indexed query), then read the answer and encode JSON:

  rows page of 100  count the item's rows and fetch the page (one query each, one snapshot)
  item detail       the item's stored JSON document (one query)
  summary           the stored per-field statistics (the service's own `field_stats` rows and
                    fields, one query) and the row count, encoded as JSON
  widget data       the GROUP BY the widget asks for (label field, aggregated value field) over
                    the service's own rows of the item, without the service's type checks

Its rows table holds the same rows as the service's item (copied through the public JSON export),
so the data is identical; the summary and widget floors read the service's own tables. wrk
drives both with the same connections and duration, service then floor, alternately `--repeat`
times per endpoint; the medians are compared (this is a shared 2-core machine: single runs move
by 20 % or more).

  make throughput   (= python bench/throughput.py --setup): PostgreSQL on 127.0.0.1:5432 when one
                    answers there (as postgres; a database of its own, dropped afterwards), else
                    the embedded one; the service (`python -m app serve`, one process), an
                    account, a 53,940-row item from bench/gen_items.py, a bar widget (sum of
                    price by cut); then every endpoint (--repeat 3), and item detail with
                    WORKERS=2 next to one process.

  python bench/throughput.py --service http://127.0.0.1:8000 --key dik_... --item 3 \\
      --dsn postgresql://postgres@127.0.0.1:5432/itemsdb [--widget 5] [--connections 32] \\
      [--seconds 10] [--repeat 1]

--dsn must be the server (and database) the service uses, so both read the same disk and cache
(the summary floor reads the service's tables). Without --widget, a bar widget is created for the
run and deleted afterwards. Needs wrk (`apt-get install wrk`), and starlette, uvicorn, asyncpg,
httpx in this Python.
Prints one line per endpoint and a final line `throughput: service/floor = R (target >= 0.5)`;
exit status 1 when an endpoint (or, with --setup, the WORKERS=2 ratio, target >= 1.6) misses.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

TARGET = 0.5
WORKERS_TARGET = 1.6
LOCAL_PG = os.environ.get("THROUGHPUT_PG", "postgresql://postgres@127.0.0.1:5432/postgres")

FLOOR_APP = r"""
import contextlib, hashlib, json, os
import asyncpg
from starlette.applications import Starlette
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

DSN = os.environ["FLOOR_DSN"]
WIDGET_SQL = os.environ["FLOOR_WIDGET_SQL"]
pool = None

@contextlib.asynccontextmanager
async def lifespan(app):
    global pool
    pool = await asyncpg.create_pool(DSN, min_size=4, max_size=10)
    yield
    await pool.close()

async def account(con, request):
    key = request.headers.get("x-api-key", "")
    return await con.fetchval("SELECT account_id FROM floor_keys WHERE key_hash = $1",
                              hashlib.sha256(key.encode()).hexdigest())

def refused():
    return JSONResponse({"error": "Invalid or missing API key."}, status_code=401)

async def rows(request):
    async with pool.acquire() as con:
        if await account(con, request) is None:
            return refused()
        item = int(request.path_params["item"])
        limit = min(int(request.query_params.get("limit", 100)), 500)
        offset = int(request.query_params.get("offset", 0))
        async with con.transaction(isolation="repeatable_read", readonly=True):
            total = await con.fetchval("SELECT count(*) FROM floor_rows WHERE item_id = $1", item)
            docs = await con.fetch("SELECT doc::text FROM floor_rows WHERE item_id = $1 "
                                   "ORDER BY row_ref LIMIT $2 OFFSET $3", item, limit, offset)
    body = ('{"total":%d,"offset":%d,"limit":%d,"rows":[%s]}'
            % (total, offset, limit, ",".join(r[0] for r in docs)))
    return Response(body, media_type="application/json")

async def item(request):
    async with pool.acquire() as con:
        if await account(con, request) is None:
            return refused()
        doc = await con.fetchval("SELECT doc::text FROM floor_items WHERE item_id = $1",
                                 int(request.path_params["item"]))
    return Response(doc, media_type="application/json")

async def summary(request):
    item = int(request.path_params["item"])
    async with pool.acquire() as con:
        if await account(con, request) is None:
            return refused()
        stats = await con.fetch(
            "SELECT f.id, f.field_label, f.field_type, d.row_count, s.non_empty, s.num_sum, "
            "s.num_min, s.num_max, s.text_min, s.text_max, s.true_count, s.false_count, "
            "s.unique_count, s.top_values::text AS top_values "
            "FROM data_items d JOIN fields f ON f.data_item_id = d.id "
            "JOIN field_stats s ON s.field_id = f.id "
            "WHERE d.id = $1 ORDER BY f.field_order, f.id", item)
    out = []
    for s in stats:
        entry = {k: s[k] for k in ("id", "field_label", "field_type", "non_empty", "true_count",
                                   "false_count", "unique_count", "text_min", "text_max")}
        for k in ("num_sum", "num_min", "num_max"):
            entry[k] = None if s[k] is None else float(s[k])
        entry["top_values"] = json.loads(s["top_values"]) if s["top_values"] else None
        out.append(entry)
    row_count = stats[0]["row_count"] if stats else 0
    return JSONResponse({"id": item, "row_count": row_count, "field_summaries": out})

async def widget(request):
    item = int(request.path_params["item"])
    async with pool.acquire() as con:
        if await account(con, request) is None:
            return refused()
        groups = await con.fetch(WIDGET_SQL, item)
    labels = [g[0] if g[0] is not None else "(empty)" for g in groups]
    data = [None if g[1] is None else float(g[1]) for g in groups]
    return JSONResponse({"labels": labels, "datasets": [{"data": data}], "truncated": False})

app = Starlette(routes=[Route("/rows/{item}", rows), Route("/item/{item}", item),
                        Route("/summary/{item}", summary), Route("/widget/{item}", widget)],
                lifespan=lifespan)
"""

SQL_AGGREGATES = {"sum": "sum", "avg": "avg", "min": "min", "max": "max", "count": "count"}


def free_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return int(port)


def wrk(url: str, key: str, connections: int, seconds: int) -> tuple[float, str, str]:
    out = subprocess.run(
        ["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--latency",
         "-H", f"X-Api-Key: {key}", url],
        capture_output=True, text=True, check=False,
    ).stdout  # fmt: skip
    found = re.search(r"Requests/sec:\s+([\d.]+)", out)
    if not found:
        raise SystemExit(f"{url}: wrk printed no rate:\n{out}")
    rps = float(found.group(1))
    p50 = re.search(r"^\s+50%\s+(\S+)", out, re.M)
    p99 = re.search(r"^\s+99%\s+(\S+)", out, re.M)
    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    if bad:
        raise SystemExit(f"{url}: {bad.group(1)} non-2xx answers under load")
    return rps, p50.group(1) if p50 else "?", p99.group(1) if p99 else "?"


def median_run(results: list[tuple[float, str, str]]) -> tuple[float, str, str]:
    """The run with the median rate (with its own latencies)."""
    return sorted(results)[len(results) // 2]


def runs(results: list[tuple[float, str, str]]) -> str:
    return "/".join(f"{r:.0f}" for r, _, _ in results)


def widget_sql(api: str, headers: dict[str, str], item: int, widget: int) -> str:
    """The floor's GROUP BY for a bar/line widget: over the service's own rows of the item (the
    same partition the service reads), the label field's text and the first series' aggregate of
    its value field cast to numeric, without the service's checks (value types, collation)."""
    w = httpx.get(f"{api}/data-items/{item}/widgets/{widget}/", headers=headers, timeout=60)
    w.raise_for_status()
    body = w.json()
    series = body["series"][0]
    agg = SQL_AGGREGATES[series["aggregation"]]
    label, value = int(body["label_field"]), int(series["value_field"])
    return (
        f"""SELECT "values"->>'{label}' AS label, {agg}(("values"->>'{value}')::numeric) """
        "FROM rows WHERE data_item_id = $1 GROUP BY 1 ORDER BY 1"
    )


def create_widget(api: str, headers: dict[str, str], item: int) -> int:
    """A bar chart: the sum of the item's first decimal field by its first char field."""
    detail = httpx.get(f"{api}/data-items/{item}/", headers=headers, timeout=60).json()
    chars = [f["id"] for f in detail["fields"] if f["field_type"] in ("char", "text")]
    decimals = [f["id"] for f in detail["fields"] if f["field_type"] == "decimal"]
    if not chars or not decimals:
        raise SystemExit("the item needs a char and a decimal field for the widget")
    label = next((f["id"] for f in detail["fields"] if f["field_label"] == "cut"), chars[0])
    value = next((f["id"] for f in detail["fields"] if f["field_label"] == "price"), decimals[0])
    r = httpx.post(
        f"{api}/data-items/{item}/widgets/", headers=headers, timeout=60,
        json={"title": "throughput bench", "chart_type": "bar", "label_field": label,
              "series": [{"value_field": value, "aggregation": "sum"}]},
    )  # fmt: skip
    r.raise_for_status()
    return int(r.json()["id"])


def load_floor(dsn: str, key: str, item: int, detail: dict[str, Any], rows: list[Any]) -> None:
    import asyncpg

    async def load() -> None:
        con = await asyncpg.connect(dsn)
        await con.execute("DROP TABLE IF EXISTS floor_rows, floor_keys, floor_items")
        await con.execute("CREATE TABLE floor_keys (key_hash text PRIMARY KEY, account_id int)")
        await con.execute("CREATE TABLE floor_items (item_id int PRIMARY KEY, doc jsonb)")
        await con.execute(
            "CREATE TABLE floor_rows (item_id int, row_ref bigint, doc jsonb, "
            "PRIMARY KEY (item_id, row_ref))"
        )
        await con.execute(
            "INSERT INTO floor_keys VALUES ($1, 1)", hashlib.sha256(key.encode()).hexdigest()
        )
        await con.execute(
            "INSERT INTO floor_items VALUES ($1, $2::jsonb)", item, json.dumps(detail)
        )
        await con.copy_records_to_table(
            "floor_rows",
            columns=["item_id", "row_ref", "doc"],
            records=[(item, i, json.dumps(r)) for i, r in enumerate(rows)],
        )
        await con.execute("ANALYZE floor_rows")
        await con.close()

    asyncio.run(load())


def drop_floor(dsn: str) -> None:
    import asyncpg

    async def drop() -> None:
        con = await asyncpg.connect(dsn)
        await con.execute("DROP TABLE IF EXISTS floor_rows, floor_keys, floor_items")
        await con.close()

    asyncio.run(drop())


FLOOR_SERVER = """
import asyncio, socket, sys
import uvicorn
sys.path.insert(0, sys.argv[1])
from floor_app import app
sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
sock.bind(("127.0.0.1", int(sys.argv[2])))
server = uvicorn.Server(uvicorn.Config(app, log_level="warning"))
asyncio.run(server.serve(sockets=[sock]))
"""


def start_floor(env: dict[str, str], port: int, workers: int = 1) -> list[subprocess.Popen[bytes]]:
    """The floor app: `workers` uvicorn processes, each on a socket of its own on the same port
    (SO_REUSEPORT, TCP_NODELAY: as the service's WORKERS), once they accept connections."""
    app_dir = Path(tempfile.mkdtemp(prefix="dis-floor-"))
    (app_dir / "floor_app.py").write_text(FLOOR_APP)
    procs = [
        subprocess.Popen([sys.executable, "-c", FLOOR_SERVER, str(app_dir), str(port)], env=env)
        for _ in range(workers)
    ]
    for _ in range(100):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            break
        except OSError:
            time.sleep(0.1)
    time.sleep(1.0 if workers > 1 else 0)  # every process up, not only the first
    return procs


def stop_floor(procs: list[subprocess.Popen[bytes]]) -> None:
    for proc in procs:
        proc.terminate()
    for proc in procs:
        proc.wait(10)


def floor_scaling(a: argparse.Namespace, env: dict[str, str], one_url: str) -> None:
    """The floor's item detail with two processes next to one: what two processes can gain on
    this machine, where wrk and PostgreSQL share the same cores (the ceiling of the service's
    WORKERS=2 ratio)."""
    port = free_port()
    procs = start_floor(env, port, workers=2)
    try:
        two_url = f"http://127.0.0.1:{port}/item/{a.item}"
        wrk(two_url, a.key, 4, 2)
        one_runs: list[tuple[float, str, str]] = []
        two_runs: list[tuple[float, str, str]] = []
        for _ in range(a.repeat):
            one_runs.append(wrk(one_url, a.key, a.connections, a.seconds))
            two_runs.append(wrk(two_url, a.key, a.connections, a.seconds))
        one, _, _ = median_run(one_runs)
        two, _, _ = median_run(two_runs)
        print(
            f"floor item detail, two processes: {two:.0f} req/s; one {one:.0f} req/s; "
            f"ratio {two / one:.2f} (what two processes can gain here)"
            + (f"  [two {runs(two_runs)}; one {runs(one_runs)}]" if a.repeat > 1 else ""),
            flush=True,
        )
    finally:
        stop_floor(procs)


def measure(a: argparse.Namespace, scaling: bool = False) -> list[float]:
    """Every endpoint against its floor; returns the ratios. `scaling`: also the floor with two
    processes against one."""
    api = a.service.rstrip("/") + "/api/v1"
    h = {"X-Api-Key": a.key}
    detail = httpx.get(f"{api}/data-items/{a.item}/", headers=h, timeout=60).json()
    export = httpx.get(
        f"{api}/data-items/{a.item}/export/", params={"format": "json"}, headers=h, timeout=600
    )
    export.raise_for_status()
    data = export.json()
    rows = data["rows"] if isinstance(data, dict) else data
    created_widget = a.widget is None
    widget = create_widget(api, h, a.item) if created_widget else a.widget
    load_floor(a.dsn, a.key, a.item, detail, rows)
    port = free_port()
    env = {**os.environ, "FLOOR_DSN": a.dsn, "FLOOR_WIDGET_SQL": widget_sql(api, h, a.item, widget)}
    procs = start_floor(env, port)
    try:
        floor = f"http://127.0.0.1:{port}"
        base = f"{api}/data-items/{a.item}"
        pairs = [
            ("rows page of 100", f"{base}/rows/?limit=100", f"{floor}/rows/{a.item}?limit=100"),
            ("item detail", f"{base}/", f"{floor}/item/{a.item}"),
            ("summary", f"{base}/summary/", f"{floor}/summary/{a.item}"),
            ("widget data", f"{base}/widgets/{widget}/data/", f"{floor}/widget/{a.item}"),
        ]
        ratios = []
        print(
            f"{len(rows)} rows; wrk -c{a.connections} -d{a.seconds}s; one process each; "
            f"service and floor alternately, {a.repeat} time(s) each, medians",
            flush=True,
        )
        for name, svc_url, floor_url in pairs:
            wrk(svc_url, a.key, 4, 2)  # warm both
            wrk(floor_url, a.key, 4, 2)
            service_runs, floor_runs = [], []
            for _ in range(a.repeat):
                service_runs.append(wrk(svc_url, a.key, a.connections, a.seconds))
                floor_runs.append(wrk(floor_url, a.key, a.connections, a.seconds))
            s_rps, s50, s99 = median_run(service_runs)
            f_rps, f50, f99 = median_run(floor_runs)
            ratios.append(s_rps / f_rps)
            detail = f"  [service {runs(service_runs)}; floor {runs(floor_runs)}]"
            print(
                f"{name}: service {s_rps:.0f} req/s (p50 {s50}, p99 {s99}); "
                f"floor {f_rps:.0f} req/s (p50 {f50}, p99 {f99}); ratio {s_rps / f_rps:.2f}"
                + (detail if a.repeat > 1 else ""),
                flush=True,
            )
        worst = min(ratios)
        print(f"throughput: service/floor = {worst:.2f} (worst endpoint; target >= {TARGET})")
        if scaling:
            floor_scaling(a, env, f"{floor}/item/{a.item}")
        return ratios
    finally:
        stop_floor(procs)
        drop_floor(a.dsn)
        if created_widget:
            httpx.delete(f"{api}/data-items/{a.item}/widgets/{widget}/", headers=h, timeout=60)


# ----------------------------------------------------------------------------- --setup


def wait_for_background(dsn: str, item: int, timeout: float = 600) -> None:
    """Until the item's statistics are fresh and its search index is built: background work
    after the upload would otherwise share the CPU with the measurement."""
    import asyncpg

    async def poll() -> None:
        con = await asyncpg.connect(dsn)
        try:
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline:
                stale = await con.fetchval(
                    "SELECT count(*) FROM field_stats WHERE data_item_id = $1 AND stale", item
                )
                valid = await con.fetchval(
                    "SELECT i.indisvalid FROM pg_class c JOIN pg_index i ON i.indexrelid = c.oid "
                    "JOIN pg_namespace n ON n.oid = c.relnamespace "
                    "WHERE n.nspname = 'item_rows' AND c.relname = $1",
                    f"p{item}_search",
                )
                if not stale and valid:
                    await con.execute("VACUUM ANALYZE")
                    return
                await asyncio.sleep(1)
            raise SystemExit(f"background work on item {item} did not finish in {timeout} s")
        finally:
            await con.close()

    asyncio.run(poll())


def local_server_answers() -> bool:
    import asyncpg

    async def probe() -> bool:
        try:
            con = await asyncpg.connect(LOCAL_PG, timeout=3)
        except (OSError, asyncpg.PostgresError):
            return False
        await con.close()
        return True

    return asyncio.run(probe())


def setup_and_measure(a: argparse.Namespace) -> int:
    import asyncpg
    from gen_items import write as write_items
    from run import Service  # bench/run.py

    work = Path(tempfile.mkdtemp(prefix="dis-throughput-", dir="/tmp"))
    work.chmod(0o755)
    server = None
    database = f"dis_throughput_{os.getpid()}"
    admin_dsn = None
    if local_server_answers():
        admin_dsn = LOCAL_PG
        dsn = LOCAL_PG.rsplit("/", 1)[0] + "/" + database

        async def create() -> None:
            con = await asyncpg.connect(LOCAL_PG)
            await con.execute(f'CREATE DATABASE "{database}"')
            await con.close()

        asyncio.run(create())
        where = LOCAL_PG.split("@")[-1].rsplit("/", 1)[0]
    else:
        from app.core.database import embedded_server_settings
        from app.core.embedded import EmbeddedPostgres

        server = EmbeddedPostgres(
            work / "data", database=database, ephemeral=True,
            extra_settings=embedded_server_settings(),
        )  # fmt: skip
        server.start()
        dsn = server.dsn(database)
        where = "the embedded server"
    svc = None
    status = 0
    try:
        print(f"PostgreSQL: {where}; service: one process", flush=True)
        svc = Service(dsn, work)
        key = svc.key
        csv = write_items(work / "gems.csv")
        item = int(svc.upload(csv, data_name="gems")["id"])
        wait_for_background(dsn, item)
        a.service, a.key, a.item, a.dsn = svc.base, key, item, dsn
        ratios = measure(a, scaling=True)
        if min(ratios) < TARGET:
            status = 1
        # the same item detail with two worker processes (the machine's 2 cores), alternating
        # with the one-process service on the same database
        one_runs: list[tuple[float, str, str]] = []
        two_runs: list[tuple[float, str, str]] = []
        double = Service(dsn, work, {"WORKERS": "2"})
        try:
            for target in (svc, double):
                wrk(f"{target.base}/api/v1/data-items/{item}/", key, 4, 2)
            for _ in range(a.repeat):
                for target, results in ((svc, one_runs), (double, two_runs)):
                    url = f"{target.base}/api/v1/data-items/{item}/"
                    results.append(wrk(url, key, a.connections, a.seconds))
        finally:
            double.stop()
        one, o50, o99 = median_run(one_runs)
        two, p50, p99 = median_run(two_runs)
        print(
            f"item detail, WORKERS=2: {two:.0f} req/s (p50 {p50}, p99 {p99}); one process "
            f"{one:.0f} req/s (p50 {o50}, p99 {o99}); ratio {two / one:.2f} "
            f"(target >= {WORKERS_TARGET})"
            + (f"  [two {runs(two_runs)}; one {runs(one_runs)}]" if a.repeat > 1 else "")
        )
        if two / one < WORKERS_TARGET:
            status = 1
    finally:
        if svc is not None:
            svc.stop()
        if server is not None:
            server.stop()
        elif admin_dsn is not None:

            async def drop() -> None:
                con = await asyncpg.connect(admin_dsn)
                await con.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
                await con.close()

            asyncio.run(drop())
        shutil.rmtree(work, ignore_errors=True)
    return status


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument(
        "--setup", action="store_true", help="start everything it needs (make throughput)"
    )
    ap.add_argument("--service")
    ap.add_argument("--key")
    ap.add_argument("--item", type=int)
    ap.add_argument("--dsn")
    ap.add_argument(
        "--widget", type=int, help="a bar/line widget of the item (default: one is made)"
    )
    ap.add_argument("--connections", type=int, default=32)
    ap.add_argument("--seconds", type=int, default=10)
    ap.add_argument(
        "--repeat", type=int, default=1, help="runs of each, alternating; medians (--setup: 3)"
    )
    a = ap.parse_args()
    if not shutil.which("wrk"):
        raise SystemExit("wrk is needed: apt-get install wrk")
    if a.setup:
        if "--repeat" not in sys.argv:
            a.repeat = 3
        return setup_and_measure(a)
    if not (a.service and a.key and a.item and a.dsn):
        ap.error("--service, --key, --item and --dsn are needed (or --setup)")
    ratios = measure(a)
    return 0 if min(ratios) >= TARGET else 1


if __name__ == "__main__":
    sys.exit(main())
