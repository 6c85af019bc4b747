"""The service's benchmark: every figure is a ratio to a floor measured in the same run, on the same
PostgreSQL server (absolute times on a shared 2-core machine move 10-20 % between runs).

It starts its own PostgreSQL (the embedded one `make run` uses, same sizing, durable: fsync on)
and the service on it, as `python -m app serve` in a subprocess, then times:

  uploads  create-from-file of the 1M-row CSV vs a raw COPY of the same file into 10 text columns
           (and vs sqlite-utils when installed), 100k CSV, 100k xlsx, an append of 100k rows into
           the 1M-row item (per-row, vs the first load), and the service's peak-RSS growth
  queries  on the 1M-row item, next to the bare SQL answering the same question: page at offset 0
           and 900,000, search (rare / common / absent word), summary
  bulk     POST rows/bulk/ of 10,000 rows through the API (the body encoded beforehand: the
           client's JSON encoding is not the service's work) vs a binary COPY of the same rows
  query    POST …/query/: the sum of a decimal field grouped by a char field on the 1M-row
           item vs the bare GROUP BY over the JSONB rows (target <= 1.5x)
  widgets  bar chart (sum grouped by a char field) and line chart (by month) vs bare GROUP BY
  transfer CSV and JSON export of the 1M-row item vs COPY (SELECT …) TO STDOUT (with the
           service's peak RSS growth), and a copy of the item vs CREATE TABLE AS SELECT
           (bench/bench_export.py)
  data_in  a dry run of the 1M-row CSV vs its real create-from-file (target <= 0.3x); an upsert
           of 100k rows, half of them matching, into a 1M-row item keyed by an Id column vs an
           append of 100k rows into the same item (target <= 2x), alternately
  bulk_change  PATCH rows/ by a filter picking ~200k of the 1M rows vs the bare SQL UPDATE of
           the same JSONB rows (jsonb ||), alternating

Usage:  make bench          (or: .venv/bin/python bench/run.py [--sections uploads,data_in,queries,query,bulk,widgets,transfer,bulk_change])
        --dsn postgresql://postgres@127.0.0.1:5432/postgres: on that server instead, in a database
        of its own (created, then dropped) rather than on the embedded one.
Data:   the files of bench/gen_data.py ($BENCH_DATA, default $TMPDIR/benchdata); generated
        here when missing. Results: printed, and written to bench/results/<timestamp>.md/.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from app.core.database import embedded_server_settings  # noqa: E402
from app.core.embedded import EmbeddedPostgres  # noqa: E402

DATA = Path(os.environ.get("BENCH_DATA", Path(tempfile.gettempdir()) / "benchdata"))
GEN_DATA = ROOT / "bench" / "gen_data.py"
CSV_1M, CSV_100K, XLSX_100K = (
    DATA / "sales_1m.csv",
    DATA / "sales_100k.csv",
    DATA / "sales_100k.xlsx",
)
RARE, COMMON, ABSENT = "goldwasser & sons #78", "north", "zzqx"


# ------------------------------------------------------------------------------------ results


@dataclass
class Figure:
    id: str
    what: str
    runs: list[float]
    floor: str | None = None
    floor_runs: list[float] = field(default_factory=list)
    target: str = ""
    rows: int | None = None

    @property
    def median(self) -> float:
        return statistics.median(self.runs)

    @property
    def floor_median(self) -> float | None:
        return statistics.median(self.floor_runs) if self.floor_runs else None

    @property
    def ratio(self) -> float | None:
        f = self.floor_median
        return self.median / f if f else None


RESULTS: list[Figure] = []
NOTES: list[str] = []


def record(fig: Figure) -> Figure:
    RESULTS.append(fig)
    ratio = (
        f"  ratio {fig.ratio:.2f}x vs {fig.floor} ({fig.floor_median:.3f} s)" if fig.ratio else ""
    )
    rate = f"  {fig.rows / fig.median:,.0f} rows/s" if fig.rows else ""
    print(
        f"{fig.id:<34} median {fig.median:8.3f} s (n={len(fig.runs)}){rate}{ratio}  {fig.target}",
        flush=True,
    )
    return fig


def timed(fn: Callable[[], Any], repeat: int) -> tuple[list[float], Any]:
    runs, result = [], None
    for _ in range(repeat):
        t0 = time.perf_counter()
        result = fn()
        runs.append(time.perf_counter() - t0)
    return runs, result


# ---------------------------------------------------------------------------- infrastructure


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def ensure_data() -> None:
    if CSV_1M.exists() and CSV_100K.exists():
        return
    print(f"generating benchmark data into {DATA} ...", flush=True)
    subprocess.run([sys.executable, str(GEN_DATA), str(DATA), "--no-xlsx"], check=True)


def ensure_xlsx() -> bool:
    if XLSX_100K.exists():
        return True
    try:
        import openpyxl
        import polars as pl
    except ImportError:
        return False
    print("writing the 100k-row xlsx with openpyxl ...", flush=True)
    frame = pl.read_csv(CSV_100K, infer_schema=False)
    wb = openpyxl.Workbook(write_only=True)
    ws = wb.create_sheet("sales")
    ws.append(frame.columns)
    for row in frame.iter_rows():
        ws.append([_typed(v) for v in row])
    wb.save(XLSX_100K)
    return True


def _typed(v: str | None) -> Any:
    if v is None or v == "":
        return None
    if v in ("true", "false"):
        return v == "true"
    try:
        return float(v) if "." in v else int(v) if not v.startswith("0") else v
    except ValueError:
        return v


class Service:
    def __init__(
        self, database_url: str, workdir: Path, settings: dict[str, str] | None = None
    ) -> None:
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        env = {k: v for k, v in os.environ.items() if k not in ("DATA_DIR",)}
        # INFO: the upload log lines (where an upload's time went) are copied into the notes
        env.update(DATABASE_URL=database_url, PORT=str(self.port), LOG_LEVEL="INFO")
        env.update(settings or {})
        self.env = env
        self.log = (workdir / "service.log").open("ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "app", "serve"],
            cwd=ROOT,
            env=env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{self.base}/readyz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.2)
        else:
            raise SystemExit("the service did not start; see " + self.log.name)
        self.key = self.new_key("bench")
        self.http = httpx.Client(
            base_url=f"{self.base}/api/v1", headers={"X-Api-Key": self.key}, timeout=None
        )

    def new_key(self, account: str) -> str:
        """The API key of a new account."""
        out = subprocess.run(
            [sys.executable, "-m", "app", "accounts", "create", account, "--json"],
            cwd=ROOT, env=self.env, capture_output=True, text=True, check=True,
        )  # fmt: skip
        key: str = json.loads(out.stdout)["api_key"]
        return key

    def upload(self, path: Path, **form: str) -> dict[str, Any]:
        with path.open("rb") as f:
            r = self.http.post(
                "/data-items/create-from-file/",
                data={"data_name": path.stem, **form},
                files={"data_file": (path.name, f)},
            )
        r.raise_for_status()
        body: dict[str, Any] = r.json()
        return body

    def append(self, item: int, path: Path) -> dict[str, Any]:
        with path.open("rb") as f:
            r = self.http.post(
                f"/data-items/{item}/append-from-file/", files={"data_file": (path.name, f)}
            )
        r.raise_for_status()
        body: dict[str, Any] = r.json()
        return body

    def get(self, path: str, **params: Any) -> httpx.Response:
        r = self.http.get(path, params=params)
        r.raise_for_status()
        return r

    def rss_kb(self, key: str) -> int:
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1])
        return 0

    def reset_peak(self) -> None:
        Path(f"/proc/{self.proc.pid}/clear_refs").write_text("5")

    def upload_lines(self) -> list[str]:
        """The service's upload log lines: "... created from ...: 1000000 rows, 10 fields in
        5.80 s (read 0.41, ...)"."""
        self.log.flush()
        text = Path(self.log.name).read_text(errors="replace")
        return [
            line.split("app.ingestion", 1)[-1].strip(" -:")
            for line in text.splitlines()
            if "app.ingestion" in line
            and (" created from " in line or " appended from " in line or " updated from " in line)
        ]

    def stop(self) -> None:
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(timeout=60)
        self.log.close()


class SQL:
    """Bare SQL on the service's own server, from this process (one connection)."""

    def __init__(self, dsn: str) -> None:
        self.loop = asyncio.new_event_loop()
        self.conn: asyncpg.Connection = self.loop.run_until_complete(asyncpg.connect(dsn))

    def run(self, coro_fn: Callable[[asyncpg.Connection], Any]) -> Any:
        return self.loop.run_until_complete(coro_fn(self.conn))

    def fetchval(self, query: str, *args: Any) -> Any:
        return self.run(lambda c: c.fetchval(query, *args))

    def fetch(self, query: str, *args: Any) -> Any:
        return self.run(lambda c: c.fetch(query, *args))

    def execute(self, query: str, *args: Any) -> Any:
        return self.run(lambda c: c.execute(query, *args))


def wait_quiet(sql: SQL, timeout: float = 600) -> None:
    """Until the service's background work (vacuum, statistics, index builds, partition drops)
    has finished: timed runs must not share the machine with the previous run's upkeep."""
    deadline = time.monotonic() + timeout
    quiet_since = None
    while time.monotonic() < deadline:
        busy = sql.fetchval(
            "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'data-items-service' "
            "AND state = 'active' AND pid <> pg_backend_pid()"
        )
        now = time.monotonic()
        if busy:
            quiet_since = None
        elif quiet_since is None:
            quiet_since = now
        elif now - quiet_since >= 2:
            return
        time.sleep(0.25)
    raise SystemExit("the service's background work did not finish")


def wait_for_maintenance(sql: SQL, item: int, timeout: float = 600) -> None:
    """Until the item's statistics are fresh and its search index is valid (background work)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        stale = sql.fetchval(
            "SELECT count(*) FROM field_stats WHERE data_item_id = $1 AND stale", item
        )
        valid = sql.fetchval(
            """SELECT i.indisvalid FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
               JOIN pg_index i ON i.indexrelid = c.oid WHERE n.nspname = 'item_rows' AND c.relname = $1""",
            f"p{item}_search",
        )
        if not stale and valid:
            return
        time.sleep(1)
    raise SystemExit(f"background maintenance of item {item} did not finish in {timeout} s")


class ServerDatabase:
    """A database of the run's own on an existing server (--dsn), dropped when the run ends."""

    def __init__(self, admin_dsn: str, name: str, *, keep: bool) -> None:
        self.admin_dsn, self.name, self.keep = admin_dsn, name, keep
        base, _, query = admin_dsn.partition("?")
        self._base = base.rsplit("/", 1)[0]
        self._query = f"?{query}" if query else ""

    def _admin(self, statement: str) -> None:
        async def go() -> None:
            conn = await asyncpg.connect(self.admin_dsn)
            try:
                await conn.execute(statement)
            finally:
                await conn.close()

        asyncio.run(go())

    def start(self) -> str:
        self._admin(f'CREATE DATABASE "{self.name}"')
        return self.dsn()

    def dsn(self, database: str | None = None) -> str:
        return f"{self._base}/{self.name}{self._query}"

    def stop(self) -> None:
        if not self.keep:
            self._admin(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)')


# ---------------------------------------------------------------------------------- sections


def bench_uploads(svc: Service, sql: SQL, repeat: int) -> int:
    sql.execute("DROP TABLE IF EXISTS bench_raw10")
    sql.execute("CREATE TABLE bench_raw10 (" + ", ".join(f"c{i} text" for i in range(10)) + ")")

    def raw_copy(path: Path) -> float:
        sql.execute("TRUNCATE bench_raw10")
        t0 = time.perf_counter()
        sql.run(lambda c: c.copy_to_table("bench_raw10", source=path, format="csv", header=True))
        return time.perf_counter() - t0

    # Each timed upload right after a floor run of its own: on a shared machine the load moves
    # within a run, and the ratio should compare like with like.
    floor_1m: list[float] = []

    def upload_and_delete(path: Path) -> Callable[[], dict[str, Any]]:
        def go() -> dict[str, Any]:
            body = svc.upload(path)
            svc.http.delete(f"/data-items/{body['id']}/")
            return body

        return go

    def quiet_runs(fn: Callable[[], Any], n: int) -> tuple[list[float], list[float], Any]:
        runs, floors, result = [], [], None
        for _ in range(n):
            wait_quiet(sql)
            floors.append(raw_copy(CSV_100K))
            t0 = time.perf_counter()
            result = fn()
            runs.append(time.perf_counter() - t0)
        return runs, floors, result

    runs, floor_100k, body = quiet_runs(upload_and_delete(CSV_100K), repeat)
    first_100k = record(
        Figure(
            "upload_csv_100k",
            "create-from-file, 100k-row CSV",
            runs,
            "raw COPY 100k",
            floor_100k,
            "",
            100_000,
        )
    )
    if ensure_xlsx():
        runs, floor_100k, body = quiet_runs(upload_and_delete(XLSX_100K), repeat)
        record(
            Figure(
                "upload_xlsx_100k",
                "create-from-file, 100k-row xlsx",
                runs,
                "raw COPY 100k CSV",
                floor_100k,
                "",
                100_000,
            )
        )
    else:
        NOTES.append("xlsx upload skipped: openpyxl not installed")

    runs = []
    item = 0
    for i in range(repeat):
        wait_quiet(sql)
        floor_1m.append(raw_copy(CSV_1M))
        svc.reset_peak()
        rss0 = svc.rss_kb("VmRSS")
        t0 = time.perf_counter()
        body = svc.upload(CSV_1M)
        runs.append(time.perf_counter() - t0)
        growth_mb = (svc.rss_kb("VmHWM") - rss0) / 1024
        NOTES.append(
            f"1M upload #{i + 1}: service peak RSS growth {growth_mb:.0f} MB (target <= 880 MB)"
        )
        if i < repeat - 1:
            svc.http.delete(f"/data-items/{body['id']}/")
        item = body["id"]
    sql.execute("DROP TABLE bench_raw10")
    fig = record(
        Figure(
            "upload_csv_1m",
            "create-from-file, 1M-row CSV (142 MB)",
            runs,
            "raw COPY 1M",
            floor_1m,
            "<= 8x (stretch 4x)",
            1_000_000,
        )
    )
    sqlite_utils = shutil.which("sqlite-utils") or shutil.which(
        "sqlite-utils", path=str(Path(sys.executable).parent)
    )
    if sqlite_utils:
        with tempfile.TemporaryDirectory() as tmp:
            peer, _ = timed(
                lambda: subprocess.run(
                    [
                        sqlite_utils,
                        "insert",
                        f"{tmp}/b.db",
                        "t",
                        str(CSV_1M),
                        "--csv",  # sqlite-utils 4 detects types by default
                    ],
                    check=True,
                ),
                1,
            )
        record(
            Figure(
                "upload_vs_sqlite_utils",
                "the same 1M upload vs sqlite-utils insert --csv (types detected)",
                fig.runs,
                "sqlite-utils 1M",
                peer,
                "<= 0.25x",
            )
        )
    else:
        NOTES.append(
            "sqlite-utils not installed (pip install sqlite-utils==4.2.1): peer ratio skipped"
        )
    wait_for_maintenance(sql, item)
    per_row_first = fig.median / 1_000_000
    runs = []
    for _ in range(repeat):
        wait_quiet(sql)
        t0 = time.perf_counter()
        body = svc.append(item, CSV_100K)
        runs.append(time.perf_counter() - t0)
        assert body["rows_appended"] == 100_000
    fig = record(
        Figure(
            "append_100k_into_1m",
            "append-from-file 100k rows into the 1M-row item",
            runs,
            "first load, per 100k rows",
            [per_row_first * 100_000],
            "<= 1x per row",
            100_000,
        )
    )
    record(
        Figure(
            "append_vs_100k_load",
            "the same appends vs creating an item from the same 100k-row file",
            fig.runs,
            "create-from-file 100k",
            first_100k.runs,
            "informative",
            100_000,
        )
    )
    NOTES.extend(f"service log: {line}" for line in svc.upload_lines())
    # back to exactly 1M rows for the query section: a fresh item
    svc.http.delete(f"/data-items/{item}/")
    body = svc.upload(CSV_1M)
    return int(body["id"])


def bench_queries(svc: Service, sql: SQL, item: int, repeat: int) -> None:
    wait_for_maintenance(sql, item)
    wait_quiet(sql)
    fields = svc.get(f"/data-items/{item}/fields/").json()["fields"]
    keys = {f["field_label"]: str(f["id"]) for f in fields}

    def page_sql(offset: int) -> Callable[[], Any]:
        return lambda: (
            sql.fetchval("SELECT count(*) FROM rows WHERE data_item_id = $1", item),
            sql.fetch(
                'SELECT row_ref, "values" FROM rows WHERE data_item_id = $1 ORDER BY row_ref OFFSET $2 LIMIT 100',
                item,
                offset,
            ),
        )

    for offset in (0, 900_000):
        floor, _ = timed(page_sql(offset), repeat)

        def page(o: int = offset) -> httpx.Response:
            return svc.get(f"/data-items/{item}/rows/", offset=o, limit=100)

        runs, _ = timed(page, repeat)
        record(
            Figure(
                f"page_offset_{offset}",
                f"rows page of 100 at offset {offset:,}",
                runs,
                "bare SQL count + OFFSET page",
                floor,
                "<= 2x",
            )
        )

    expr = "jsonb_path_query_array(\"values\", '$.*'::jsonpath)::text"
    for name, term in (("rare", RARE), ("common", COMMON), ("absent", ABSENT)):
        pattern = f"%{term}%"

        def bare_search(p: str = pattern) -> Any:
            return (
                sql.fetchval(
                    f"SELECT count(*) FROM rows WHERE data_item_id = $1 AND {expr} ILIKE $2",
                    item,
                    p,
                ),
                sql.fetch(
                    f"SELECT row_ref FROM rows WHERE data_item_id = $1 AND {expr} ILIKE $2 ORDER BY row_ref LIMIT 100",
                    item,
                    p,
                ),
            )[0]

        def search(t: str = term) -> httpx.Response:
            return svc.get(f"/data-items/{item}/rows/", search=t, limit=100)

        floor, count = timed(bare_search, repeat)
        runs, r = timed(search, repeat)
        assert r.json()["total"] == count, (term, r.json()["total"], count)
        target = {
            "rare": "<= 0.1 s",
            "common": "<= 0.5 s (first page)",
            "absent": "no slower than rare",
        }[name]
        record(
            Figure(
                f"search_{name}",
                f"search {term!r} ({count:,} matches), first page",
                runs,
                "bare SQL count + page (same index)",
                floor,
                target,
            )
        )

    runs, _ = timed(lambda: svc.get(f"/data-items/{item}/summary/"), repeat)
    parts = []
    for f in fields:
        key, kind = str(f["id"]), f["field_type"]
        if kind in ("char", "text"):
            parts.append(
                f"SELECT count(*) FROM (SELECT \"values\"->>'{key}' v, count(*) n FROM rows WHERE data_item_id = {item} AND \"values\" ? '{key}' GROUP BY 1 ORDER BY 2 DESC, 1 LIMIT 10) t"
            )
            parts.append(
                f"SELECT count(DISTINCT \"values\"->>'{key}') FROM rows WHERE data_item_id = {item}"
            )
        elif kind == "decimal":
            parts.append(
                f"SELECT sum((\"values\"->>'{key}')::numeric) + min((\"values\"->>'{key}')::numeric) + max((\"values\"->>'{key}')::numeric) FROM rows WHERE data_item_id = {item}"
            )
        else:
            parts.append(f"SELECT count(\"values\"->'{key}') FROM rows WHERE data_item_id = {item}")
    plain, _ = timed(lambda: [sql.fetchval(p) for p in parts], 1)
    record(
        Figure(
            "summary",
            "summary of the 1M-row item (statistics kept up to date)",
            runs,
            "plain SQL aggregation over JSONB",
            plain,
            "<= 1.5 s",
        )
    )

    # one single-cell patch of a char field makes its unique/top values stale: the next summary
    # recomputes that field from the rows (the worst case a reader can meet right after a write)
    patch_runs = []
    for i in range(max(1, repeat // 2)):
        svc.http.patch(
            f"/data-items/{item}/rows/{i}/", json={"values": {keys["Region"]: f"Patched {i}"}}
        ).raise_for_status()
        t0 = time.perf_counter()
        svc.get(f"/data-items/{item}/summary/")
        patch_runs.append(time.perf_counter() - t0)
    record(
        Figure(
            "summary_after_patch",
            "summary right after patching one char cell (one field recomputed)",
            patch_runs,
            "plain SQL aggregation over JSONB",
            plain,
            "informative",
        )
    )


def bench_bulk(svc: Service, sql: SQL, item: int, repeat: int) -> None:
    """POST rows/bulk/ of 10,000 rows (each timed after the previous write's upkeep has finished,
    one untimed warm-up first) next to a binary COPY of the same rows into a bare table."""
    fields = svc.get(f"/data-items/{item}/fields/").json()["fields"]
    keys = {f["field_label"]: str(f["id"]) for f in fields}
    docs = [
        {
            keys["Region"]: "Bench",
            keys["Revenue"]: f"{i}.25",
            keys["Quantity"]: i % 500,
            keys["Close Date"]: "2026-01-15",
            keys["Closed"]: i % 2 == 0,
            keys["Notes"]: f"bulk row {i}",
            keys["Zip Code"]: f"{i % 100000:05d}",
        }
        for i in range(10_000)
    ]
    body = json.dumps({"rows": docs}).encode()
    headers = {"Content-Type": "application/json"}

    def post() -> None:
        svc.http.post(
            f"/data-items/{item}/rows/bulk/", content=body, headers=headers
        ).raise_for_status()

    post()  # warm: plans, caches
    runs: list[float] = []
    for _ in range(repeat):
        wait_quiet(sql)
        t0 = time.perf_counter()
        post()
        runs.append(time.perf_counter() - t0)
    sql.execute("DROP TABLE IF EXISTS bench_bulk")
    sql.execute(
        'CREATE TABLE bench_bulk (data_item_id bigint, row_ref bigint, "values" jsonb, PRIMARY KEY (data_item_id, row_ref))'
    )
    payload = [(item, i, json.dumps(d)) for i, d in enumerate(docs)]

    def copy_bulk() -> None:
        sql.execute("TRUNCATE bench_bulk")
        sql.run(lambda c: c.copy_records_to_table("bench_bulk", records=payload))

    copy_bulk()  # warm
    floor, _ = timed(copy_bulk, repeat)
    # the same COPY into a table that also has the item's trigram search index (as the item's
    # partition has): what the database alone pays for the rows the service writes
    sql.execute(
        "CREATE INDEX bench_bulk_search ON bench_bulk USING gin "
        "((jsonb_path_query_array(\"values\", '$.*'::jsonpath)::text) gin_trgm_ops)"
    )
    copy_bulk()  # warm
    indexed, _ = timed(copy_bulk, repeat)
    sql.execute("DROP TABLE bench_bulk")
    record(
        Figure(
            "bulk_insert_10k",
            "POST rows/bulk/ with 10,000 rows (JSON, validated)",
            runs,
            "binary COPY of the same 10,000 rows",
            floor,
            "<= 4x",
            10_000,
        )
    )
    record(
        Figure(
            "bulk_insert_10k_indexed",
            "the same POSTs vs a COPY into a table with the search index too",
            runs,
            "binary COPY of the same rows, trigram index maintained",
            indexed,
            "informative",
            10_000,
        )
    )


def bench_bulk_change(svc: Service, sql: SQL, item: int, repeat: int) -> None:
    """PATCH rows/ by a filter that picks a fifth of the 1M rows (Region = North) next to the
    bare SQL UPDATE of the same JSONB rows with the same change. Service and floor alternate,
    each setting a new value (so every picked row is written), each on a vacuumed partition
    with the service's background work finished (the service's recount of the field it
    changed, and its vacuum, are not timed; neither is the floor's). Runs last: the floor
    writes behind the statistics' back, so they are marked stale at the end."""
    wait_for_maintenance(sql, item)
    fields = svc.get(f"/data-items/{item}/fields/").json()["fields"]
    keys = {f["field_label"]: str(f["id"]) for f in fields}
    region, discount = keys["Region"], keys["Discount %"]
    condition = {"field": int(region), "op": "eq", "value": "North"}
    partition = f'item_rows."p{item}"'
    headers = {"Content-Type": "application/json"}

    def settle() -> None:
        sql.execute(f"VACUUM (ANALYZE) {partition}")
        wait_quiet(sql)
        # Each timed write right after a checkpoint: the first change of a page after one writes
        # the whole page to the WAL, so otherwise whichever run follows a checkpoint pays more
        # (200k rows spread over every page of the item, and its search index).
        sql.execute("CHECKPOINT")

    def service(value: str) -> dict[str, Any]:
        body = json.dumps({"values": {discount: value}, "filter": {"conditions": [condition]}})
        r = svc.http.patch(f"/data-items/{item}/rows/", content=body, headers=headers)
        r.raise_for_status()
        result: dict[str, Any] = r.json()
        return result

    def floor(value: str) -> None:
        sql.execute(
            'UPDATE rows SET "values" = "values" || $2::jsonb '
            'WHERE data_item_id = $1 AND "values"->$3 = \'"North"\'::jsonb',
            item,
            f'{{"{discount}": {value}}}',
            region,
        )

    service("31.5")  # warm: plans, caches
    runs: list[float] = []
    floors: list[float] = []
    result: dict[str, Any] = {}
    for i in range(repeat):
        settle()
        t0 = time.perf_counter()
        result = service(f"{40 + 2 * i}.5")
        runs.append(time.perf_counter() - t0)
        settle()
        t0 = time.perf_counter()
        floor(f"{41 + 2 * i}.5")
        floors.append(time.perf_counter() - t0)
    NOTES.append(f"bulk update by filter: the service answered {result}")
    sql.execute(
        "UPDATE field_stats SET stale = true, generation = generation + 1 WHERE data_item_id = $1",
        item,
    )
    svc.get(f"/data-items/{item}/summary/")  # recounted: the item is left exact
    settle()
    record(
        Figure(
            "bulk_update_by_filter_200k_of_1m",
            "PATCH rows/ by filter: one decimal cell of the ~200k North rows of 1M",
            runs,
            "bare SQL UPDATE of the same rows (jsonb ||)",
            floors,
            "<= 2x",
            int(result.get("rows_updated", 0)) or None,
        )
    )


def keyed_csv(source: Path, target: Path, first_id: int, rows: int | None = None) -> Path:
    """`source` with an `Id` column first (first_id, first_id + 1, …): the upsert's key."""
    if not target.exists():
        import polars as pl

        frame = pl.read_csv(source, infer_schema=False, n_rows=rows)
        frame = frame.with_columns(
            pl.int_range(first_id, first_id + frame.height, eager=False).cast(pl.String).alias("Id")
        ).select(["Id", *frame.columns])
        frame.write_csv(target)
    return target


def bench_data_in(svc: Service, sql: SQL, repeat: int) -> None:
    """Issue 17's figures: a dry run of the 1M-row CSV next to the real create-from-file of it,
    and an upsert of 100k rows (half of them matching) into a 1M-row item next to an append of
    100k rows into the same item, alternately."""
    runs, floors = [], []
    for _ in range(repeat):
        wait_quiet(sql)
        t0 = time.perf_counter()
        body = svc.upload(CSV_1M)
        floors.append(time.perf_counter() - t0)
        svc.http.delete(f"/data-items/{body['id']}/")
        wait_quiet(sql)
        t0 = time.perf_counter()
        with CSV_1M.open("rb") as f:
            r = svc.http.post(
                "/data-items/create-from-file/",
                params={"dry_run": "true"},
                files={"data_file": (CSV_1M.name, f)},
            )
        runs.append(time.perf_counter() - t0)
        r.raise_for_status()
        assert r.json()["rows"] == 1_000_000, r.text[:300]
    record(
        Figure(
            "dry_run_1m",
            "create-from-file ?dry_run=true, 1M-row CSV",
            runs,
            "create-from-file 1M",
            floors,
            "<= 0.3x",
            1_000_000,
        )
    )
    base = keyed_csv(CSV_1M, DATA / "keyed_1m.csv", 0)
    # 100k rows: ids 950,000-1,049,999, half of them in the item; appends: ids never used
    item = svc.upload(base)
    key = next(f["id"] for f in item["fields"] if f["field_label"] == "Id")
    wait_for_maintenance(sql, item["id"])
    runs, floors = [], []
    for i in range(repeat):
        upsert_file = keyed_csv(
            CSV_100K, DATA / f"keyed_upsert_{i}.csv", 950_000 + 50_000 * i, 100_000
        )
        wait_for_maintenance(sql, item["id"])
        wait_quiet(sql)
        t0 = time.perf_counter()
        body = svc.append(
            item["id"],
            keyed_csv(CSV_100K, DATA / f"keyed_append_{i}.csv", 10_000_000 + i * 100_000),
        )
        floors.append(time.perf_counter() - t0)
        assert body["rows_appended"] == 100_000
        wait_for_maintenance(sql, item["id"])
        wait_quiet(sql)
        t0 = time.perf_counter()
        with upsert_file.open("rb") as f:
            r = svc.http.post(
                f"/data-items/{item['id']}/append-from-file/",
                data={"key_fields": json.dumps([key])},
                files={"data_file": (upsert_file.name, f)},
            )
        runs.append(time.perf_counter() - t0)
        r.raise_for_status()
        counts = r.json()
        assert counts["rows_updated"] == 50_000, counts
        assert counts["rows_inserted"] == 50_000, counts
    record(
        Figure(
            "upsert_100k_into_1m",
            "append-from-file with key_fields, 100k rows (50k matching) into a 1M-row item",
            runs,
            "append 100k rows into the same item",
            floors,
            "<= 2x",
            100_000,
        )
    )
    NOTES.extend(f"service log: {line}" for line in svc.upload_lines() if "updated" in line)
    svc.http.delete(f"/data-items/{item['id']}/")


def bench_widgets(svc: Service, sql: SQL, item: int, repeat: int, dsn: str) -> None:
    try:
        sys.path.insert(0, str(ROOT / "bench"))
        import bench_widgets
    except ImportError:
        NOTES.append("widgets skipped: bench/bench_widgets.py not present")
        return
    for fig in bench_widgets.run(dsn, svc.base, svc.key, item, repeat=repeat):
        record(Figure(**fig))


def bench_query(svc: Service, sql: SQL, item: int, repeat: int) -> None:
    """POST …/query/: the sum of a decimal field grouped by a char field (issue 19), next to the
    bare GROUP BY over the item's JSONB rows answering the same question. Each warmed once."""
    wait_for_maintenance(sql, item)
    wait_quiet(sql)
    fields = svc.get(f"/data-items/{item}/fields/").json()["fields"]
    keys = {f["field_label"]: int(f["id"]) for f in fields}
    region, revenue = keys["Region"], keys["Revenue"]
    body = {"group_by": [region], "aggregations": [{"field": revenue, "op": "sum"}]}

    def bare() -> Any:
        return sql.fetch(
            'SELECT "values"->>$2, sum(("values"->>$3)::numeric) FROM rows '
            "WHERE data_item_id = $1 GROUP BY 1",
            item,
            str(region),
            str(revenue),
        )

    def query() -> httpx.Response:
        r = svc.http.post(f"/data-items/{item}/query/", json=body)
        r.raise_for_status()
        return r

    bare(), query()
    floor, groups = timed(bare, repeat)
    runs, answer = timed(query, repeat)
    assert len(answer.json()["rows"]) == len(groups), (answer.text[:200], len(groups))
    record(
        Figure(
            "query_sum_by_char",
            "ad-hoc query: sum of a decimal field by a char field (1M rows)",
            runs,
            "bare GROUP BY over the JSONB rows",
            floor,
            "<= 1.5x",
        )
    )


def bench_transfer(svc: Service, item: int, repeat: int, dsn: str) -> None:
    sys.path.insert(0, str(ROOT / "bench"))
    import bench_export  # exports of the item next to COPY … TO STDOUT, and a copy of it

    for fig in bench_export.run(dsn, svc.base, svc.key, item, repeat, pid=svc.proc.pid):
        record(Figure(**fig))


# ------------------------------------------------------------------------------------ report


def machine() -> str:
    load = os.getloadavg()
    cpus = os.cpu_count()
    return f"{platform.node()}, {cpus} CPUs, load {load[0]:.2f}/{load[1]:.2f}/{load[2]:.2f}, Python {platform.python_version()}"


def report(started: datetime, args: argparse.Namespace, pg_version: str) -> str:
    server = (
        "server at " + args.dsn.split("@")[-1].split("/")[0]
        if args.dsn
        else "embedded, fsync on, same sizing as make run"
    )
    lines = [
        f"Benchmark run {started:%Y-%m-%d %H:%M} UTC: `{' '.join(['python', 'bench/run.py', *sys.argv[1:]])}`",
        f"Machine: {machine()}; PostgreSQL {pg_version} ({server}); repeat {args.repeat}.",
        "",
        "| figure | median | floor (same run, same server) | ratio | target |",
        "|---|---:|---|---:|---|",
    ]
    for f in RESULTS:
        floor = f"{f.floor} {f.floor_median:.3f} s" if f.floor_median else ""
        ratio = f"{f.ratio:.2f}x" if f.ratio else ""
        rate = f" ({f.rows / f.median:,.0f} rows/s)" if f.rows else ""
        lines.append(f"| {f.what} | {f.median:.3f} s{rate} | {floor} | {ratio} | {f.target} |")
    lines += ["", *[f"- {n}" for n in NOTES]]
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--sections", default="uploads,data_in,queries,query,bulk,widgets,transfer,bulk_change"
    )
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument(
        "--keep", action="store_true", help="keep the benchmark database afterwards"
    )
    parser.add_argument(
        "--dsn",
        help="an existing PostgreSQL server's DSN (e.g. postgresql://postgres@127.0.0.1:5432/"
        "postgres): the run creates a database of its own there and drops it afterwards",
    )
    args = parser.parse_args()
    # a run stopped with SIGTERM (timeout, kill) still stops its service and drops its database
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    sections = set(args.sections.split(","))
    ensure_data()
    started = datetime.now(UTC)
    work = Path(tempfile.mkdtemp(prefix="dis-bench-", dir="/tmp"))
    work.chmod(0o755)
    server: EmbeddedPostgres | ServerDatabase
    if args.dsn:
        server = ServerDatabase(args.dsn, f"bench_{os.getpid()}", keep=args.keep)
    else:
        server = EmbeddedPostgres(
            work / "data",
            database="bench",
            ephemeral=not args.keep,
            extra_settings=embedded_server_settings(),
        )
    url = server.start()
    svc = None
    try:
        svc = Service(url, work)
        sql = SQL(server.dsn("bench"))
        pg_version = sql.fetchval("SHOW server_version")
        item = (
            bench_uploads(svc, sql, args.repeat)
            if "uploads" in sections
            else svc.upload(CSV_1M)["id"]
        )
        if "data_in" in sections:
            bench_data_in(svc, sql, args.repeat)
        if "queries" in sections:
            bench_queries(svc, sql, item, args.repeat)
        if "bulk" in sections:
            bench_bulk(svc, sql, item, args.repeat)
        if "query" in sections:
            bench_query(svc, sql, item, args.repeat)
        if "widgets" in sections:
            bench_widgets(svc, sql, item, args.repeat, server.dsn("bench"))
        if "transfer" in sections:
            bench_transfer(svc, item, args.repeat, server.dsn("bench"))
        if "bulk_change" in sections:  # last: its floor writes behind the statistics' back
            bench_bulk_change(svc, sql, item, args.repeat)
        text = report(started, args, pg_version)
        print("\n" + text)
        out = ROOT / "bench" / "results"
        out.mkdir(exist_ok=True)
        stamp = started.strftime("%Y%m%d-%H%M")
        (out / f"{stamp}.md").write_text(text + "\n")
        (out / f"{stamp}.json").write_text(
            json.dumps(
                [{**f.__dict__, "median": f.median, "ratio": f.ratio} for f in RESULTS], indent=1
            )
        )
    finally:
        if svc is not None:
            svc.stop()
        server.stop()
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
