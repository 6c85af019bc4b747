"""A deterministic 53,940-row, 10-column CSV shaped like the classic gem-price table (carat, cut,
colour, clarity, depth, table, price, x, y, z): three char columns with a handful of values each,
seven decimals. Used by bench/throughput.py as the item every request reads.

Usage:  python bench/gen_items.py OUT.csv [--rows 53940] [--seed 20261207]
Same seed and row count -> the same bytes.
"""

from __future__ import annotations

import argparse
import random
from pathlib import Path

ROWS = 53_940
CUTS = ["Fair", "Good", "Very Good", "Premium", "Ideal"]
COLORS = ["D", "E", "F", "G", "H", "I", "J"]
CLARITIES = ["I1", "SI2", "SI1", "VS2", "VS1", "VVS2", "VVS1", "IF"]
HEADER = "carat,cut,color,clarity,depth,table,price,x,y,z"


def rows(n: int, seed: int) -> list[str]:
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        carat = round(max(0.2, rng.lognormvariate(-0.35, 0.55)), 2)
        cut = rng.choices(CUTS, weights=[3, 9, 22, 26, 40])[0]
        color = rng.choice(COLORS)
        clarity = rng.choices(CLARITIES, weights=[1, 17, 24, 23, 15, 9, 7, 4])[0]
        depth = round(rng.gauss(61.75, 1.4), 1)
        table = round(rng.gauss(57.4, 2.2))
        price = max(326, round(3900 * carat**1.7 * rng.uniform(0.7, 1.3)))
        x = round(6.5 * carat ** (1 / 3) * rng.uniform(0.97, 1.03), 2)
        y = round(x * rng.uniform(0.98, 1.02), 2)
        z = round(x * depth / 100 * rng.uniform(0.98, 1.02), 2)
        out.append(f"{carat},{cut},{color},{clarity},{depth},{table},{price},{x},{y},{z}")
    return out


def write(path: Path, n: int = ROWS, seed: int = 20261207) -> Path:
    path.write_text("\n".join([HEADER, *rows(n, seed)]) + "\n", encoding="utf-8")
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--rows", type=int, default=ROWS)
    parser.add_argument("--seed", type=int, default=20261207)
    args = parser.parse_args()
    write(args.out, args.rows, args.seed)
    print(f"{args.out}: {args.rows:,} rows")


if __name__ == "__main__":
    main()
