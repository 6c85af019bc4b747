"""Deterministic generator of the benchmark's upload files.

Writes, into OUTDIR (default $BENCH_DATA or ${TMPDIR:-/tmp}/benchdata):
  sales_100k.csv, sales_1m.csv   10 mixed-type columns (see COLUMNS), header row, RFC 4180 quoting
  sales_100k.xlsx                the first 100k rows as typed Excel cells
  manifest.json                  row counts, byte sizes and sha256 of the CSVs (to check reruns match)

Same seed -> byte-identical CSVs (Python's random.Random is stable across 3.x for the calls used).
The 100k CSV is the first 100k rows of the 1M CSV.

Usage: python gen_data.py [OUTDIR] [--seed 20260115] [--no-xlsx]
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import json
import os
import random
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import polars as pl

COLUMNS = [
    # header,            what it holds                                         expected inferred type
    ("Region", "5 distinct strings", "char"),
    ("Customer", "~hundreds of thousands of distinct names", "char"),
    (
        "Zip Code",
        "5-digit code, ~10% with a leading zero ('01234')",
        "char (must NOT become a number)",
    ),
    ("Revenue", "decimal, always 2 places ('45200.50')", "decimal"),
    ("Quantity", "integer 1..500", "decimal"),
    ("Close Date", "ISO date YYYY-MM-DD", "date"),
    ("Signed (US)", "US date MM/DD/YYYY", "date"),
    ("Closed", "true/false", "boolean"),
    ("Notes", "free text ~60 chars, some commas/quotes/accents", "char/text"),
    ("Discount %", "decimal 0..30 with 1 place, ~5% empty cells", "decimal (nullable)"),
]

REGIONS = ["North", "South", "East", "West", "Central"]
FIRST = [
    "Ada",
    "Alan",
    "Grace",
    "Linus",
    "Barbara",
    "Ken",
    "Dennis",
    "Margaret",
    "Edsger",
    "Donald",
    "John",
    "Frances",
    "Radia",
    "Guido",
    "Bjarne",
    "Anita",
    "Tim",
    "Vint",
    "Leslie",
    "Shafi",
    "Sophie",
    "Hedy",
    "Katherine",
    "Dorothy",
    "Mary",
    "Niklaus",
    "Yukihiro",
    "Rasmus",
    "Brendan",
    "James",
    "Larry",
    "Sergey",
    "Marissa",
    "Susan",
    "Joan",
    "Jean",
    "Annie",
    "Evelyn",
    "Kathleen",
    "Lois",
]
LAST = [
    "Lovelace",
    "Turing",
    "Hopper",
    "Torvalds",
    "Liskov",
    "Thompson",
    "Ritchie",
    "Hamilton",
    "Dijkstra",
    "Knuth",
    "McCarthy",
    "Allen",
    "Perlman",
    "Rossum",
    "Stroustrup",
    "Borg",
    "Berners-Lee",
    "Cerf",
    "Lamport",
    "Goldwasser",
    "Wilson",
    "Lamarr",
    "Johnson",
    "Vaughan",
    "Jackson",
    "Wirth",
    "Matsumoto",
    "Lerdorf",
    "Eich",
    "Gosling",
    "Page",
    "Brin",
    "Mayer",
    "Wojcicki",
    "Clarke",
    "Sammet",
    "Easley",
    "Boyd",
    "Booth",
    "Müller",
    "O'Brien",
    "Núñez",
]
SUFFIX = ["Ltd", "LLC", "GmbH", "Inc", "& Sons", "Holdings", "Group", "Co", "SA", "plc"]
WORDS = [
    "follow",
    "up",
    "call",
    "scheduled",
    "with",
    "procurement,",
    "awaiting",
    "signed",
    "PO;",
    "renewal",
    "discussed",
    "budget",
    "approved",
    "pending",
    "legal",
    "review",
    '"priority"',
    "customer",
    "asked",
    "for",
    "discount",
    "on",
    "volume",
    "shipment",
    "delayed",
    "warehouse",
    "restock",
    "next",
    "quarter",
    "upsell",
    "opportunity",
    "demo",
    "went",
    "well",
    "café",
    "contract",
    "terms",
    "revised",
    "net-30",
    "invoice",
    "sent",
    "champion",
    "changed",
    "role",
    "escalation",
    "resolved",
]

D0 = dt.date(2019, 1, 1).toordinal()
NDAYS = (dt.date(2026, 12, 31) - dt.date(2019, 1, 1)).days + 1


def gen_columns(n: int, seed: int) -> dict[str, list[str | None]]:
    rng = random.Random(seed)
    r, rr, ch = rng.random, rng.randrange, rng.choice
    cols: dict[str, list[str | None]] = {h: [] for h, _, _ in COLUMNS}
    a_region, a_cust, a_zip, a_rev, a_qty, a_iso, a_us, a_closed, a_notes, a_disc = (
        cols[h] for h, _, _ in COLUMNS
    )
    for _ in range(n):
        a_region.append(REGIONS[rr(5)])
        a_cust.append(f"{ch(FIRST)} {ch(LAST)} {ch(SUFFIX)} #{rr(10000)}")
        # ~10% of codes start with '0'
        a_zip.append(f"0{rr(10000):04d}" if r() < 0.10 else f"{rr(10000, 100000):05d}")
        cents = rr(0, 100_000_000)  # 0.00 .. 999999.99
        a_rev.append(f"{cents // 100}.{cents % 100:02d}")
        a_qty.append(str(rr(1, 501)))
        d = dt.date.fromordinal(D0 + rr(NDAYS))
        a_iso.append(d.isoformat())
        d2 = dt.date.fromordinal(D0 + rr(NDAYS))
        a_us.append(f"{d2.month:02d}/{d2.day:02d}/{d2.year}")
        a_closed.append("true" if r() < 0.4 else "false")
        words, length = [], 0
        while length < 55:
            w = ch(WORDS)
            words.append(w)
            length += len(w) + 1
        a_notes.append(" ".join(words))
        a_disc.append(None if r() < 0.05 else f"{rr(0, 301) / 10:.1f}")
    return cols


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument(
        "outdir",
        nargs="?",
        default=os.environ.get("BENCH_DATA", os.path.join(tempfile.gettempdir(), "benchdata")),
    )
    ap.add_argument("--seed", type=int, default=20260115)
    ap.add_argument("--no-xlsx", action="store_true")
    args = ap.parse_args()
    out = Path(args.outdir)
    out.mkdir(parents=True, exist_ok=True)

    t0 = time.perf_counter()
    cols = gen_columns(1_000_000, args.seed)
    df = pl.DataFrame(cols, schema={h: pl.String for h, _, _ in COLUMNS})
    t1 = time.perf_counter()
    manifest: dict[str, Any] = {"seed": args.seed, "files": {}}
    for name, frame in (("sales_1m.csv", df), ("sales_100k.csv", df.head(100_000))):
        p = out / name
        frame.write_csv(p)  # nulls -> empty cells; quotes only where needed
        manifest["files"][name] = {
            "rows": frame.height,
            "bytes": p.stat().st_size,
            "sha256": sha256(p),
        }
    t2 = time.perf_counter()
    if not args.no_xlsx:
        small = df.head(100_000)
        typed = small.with_columns(
            pl.col("Revenue").cast(pl.Float64),
            pl.col("Quantity").cast(pl.Int64),
            pl.col("Close Date").str.to_date("%Y-%m-%d"),
            # "Signed (US)" stays a text cell, as typed-in dates often are
            pl.col("Closed") == "true",
            pl.col("Discount %").cast(pl.Float64),
        )
        p = out / "sales_100k.xlsx"
        typed.write_excel(
            p, worksheet="Sales", autofit=False, dtype_formats={pl.Date: "yyyy-mm-dd"}
        )
        manifest["files"]["sales_100k.xlsx"] = {
            "rows": typed.height,
            "bytes": p.stat().st_size,
            "sha256": None,
            "note": "xlsx embeds a timestamp",
        }
    t3 = time.perf_counter()
    manifest["columns"] = [{"header": h, "holds": d, "expect": e} for h, d, e in COLUMNS]
    manifest["gen_seconds"] = {
        "rows": round(t1 - t0, 2),
        "csv": round(t2 - t1, 2),
        "xlsx": round(t3 - t2, 2),
    }
    (out / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
    json.dump(manifest["files"], sys.stdout, indent=2)
    print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
