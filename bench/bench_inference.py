"""Time the ingestion building blocks on the 1M-row benchmark CSV (bench/gen_data.py).

Steps timed (median of --repeat runs each): read_table, infer_columns, convert_column for every
column + build_documents (sequential, as a caller would write it, and with one thread per core).
Prints the inferred type of each column next to the expected one, and the process's peak RSS.
For scale, the same run also times a floor, a bare ``pl.read_csv`` (all String), since absolute
times on a shared 2-core machine move 10-20 % between runs.

The CSV comes from bench/gen_data.py (seed 20260115, deterministic); it is generated with
--generate when missing (``gen_data.py OUTDIR --no-xlsx``, about 30 s).

Usage: .venv/bin/python bench/bench_inference.py [--csv PATH] [--generate] [--repeat 3]
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TypeVar

import polars as pl

from app.ingestion.documents import build_documents
from app.ingestion.inference import ColumnPlan, Converted, convert_column, infer_columns
from app.ingestion.readers import RawTable, read_table

GEN_DATA = Path(__file__).resolve().parent / "gen_data.py"
EXPECTED = {
    "Region": "char",
    "Customer": "char",
    "Zip Code": "char",
    "Revenue": "decimal",
    "Quantity": "decimal",
    "Close Date": "date",
    "Signed (US)": "date (mdy)",
    "Closed": "boolean",
    "Notes": "char",
    "Discount %": "decimal",
}
T = TypeVar("T")


def default_csv() -> Path:
    base = os.environ.get("BENCH_DATA") or os.path.join(tempfile.gettempdir(), "benchdata")
    return Path(base) / "sales_1m.csv"


def timed(fn: Callable[[], T], repeat: int) -> tuple[float, T]:
    times, result = [], None
    for _ in range(repeat):
        start = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - start)
    assert result is not None
    return statistics.median(times), result


def convert_all(table: RawTable, plans: list[ColumnPlan], threads: int) -> pl.Series:
    def one(i: int) -> Converted:
        return convert_column(table.frame[table.frame.columns[i]], plans[i])

    if threads > 1:
        with ThreadPoolExecutor(threads) as pool:
            converted = list(pool.map(one, range(len(plans))))
    else:
        converted = [one(i) for i in range(len(plans))]
    return build_documents([(101 + i, c.fragments) for i, c in enumerate(converted)])


def time_floors(path: Path, repeat: int) -> list[tuple[str, float]]:
    t_read, _ = timed(lambda: pl.read_csv(path, infer_schema=False), repeat)
    return [("floor: pl.read_csv, all String", t_read)]


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--csv", type=Path, default=default_csv())
    parser.add_argument("--generate", action="store_true", help="run gen_data.py if missing")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    path: Path = args.csv
    if not path.exists():
        if not args.generate:
            parser.error(f"{path} not found (pass --generate to create it)")
        subprocess.run([sys.executable, str(GEN_DATA), str(path.parent), "--no-xlsx"], check=True)
    size_mb = path.stat().st_size / 1e6
    threads = os.cpu_count() or 1

    t_read, table = timed(lambda: read_table(path, path.name), args.repeat)
    rss_read = peak_rss_mib()
    t_infer, plans = timed(
        lambda: infer_columns(table.frame, delimiter=table.delimiter), args.repeat
    )
    t_conv, docs = timed(lambda: convert_all(table, plans, 1), args.repeat)
    t_conv_mt, docs_mt = timed(lambda: convert_all(table, plans, threads), args.repeat)
    assert docs.equals(docs_mt)

    floors = time_floors(path, args.repeat)

    rows = table.frame.height
    print(f"file: {path} ({size_mb:.1f} MB, {rows:,} rows x {table.frame.width} columns)")
    print(f"median of {args.repeat} runs; {threads} cores\n")
    print(f"{'step':<44}{'seconds':>9}{'rows/s':>14}")
    for name, seconds in [
        ("read_table", t_read),
        ("infer_columns", t_infer),
        ("convert_column x all + build_documents", t_conv),
        (f"  same, columns on {threads} threads", t_conv_mt),
        ("read + infer + convert/documents", t_read + t_infer + t_conv),
        *floors,
    ]:
        print(f"{name:<44}{seconds:>9.3f}{rows / seconds:>14,.0f}")
    print(f"\npeak RSS: {rss_read:,.0f} MiB after reading, {peak_rss_mib():,.0f} MiB overall\n")

    print(f"{'column':<14}{'inferred':<14}{'expected':<14}reasons")
    ok = True
    for label, plan in zip(table.labels, plans, strict=True):
        got = plan.field_type.value + (f" ({plan.date_order})" if plan.date_order == "mdy" else "")
        expected = EXPECTED.get(label, "?")
        ok &= got == expected
        print(f"{label:<14}{got:<14}{expected:<14}{plan.reasons}")
    print(f"\nfirst document: {docs[0]}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
