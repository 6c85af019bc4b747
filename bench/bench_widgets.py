"""Time the widget data endpoint next to the bare SQL GROUP BY answering the same question, on the
same PostgreSQL server, for an existing data item (the 1M-row item of the rows benchmark):

  widget_bar_sum_by_char    bar chart: sum of a decimal field grouped by a char field
  widget_line_sum_by_month  line chart: the same sum grouped by month of a date field

The endpoint is timed over HTTP (client wall time, the response read); the floor is the bare
`SELECT … GROUP BY 1` over the item's rows from one asyncpg connection. Each is warmed once, then
timed `repeat` times; the figures are medians and their ratio (goal: at most 2x). The two widgets
are created for the run and deleted after it.

Fields are picked by label (Region, Revenue, Close Date, as in bench/gen_data.py), else
the first char / decimal / date field; --char-field, --value-field and --date-field override.

Usage: .venv/bin/python bench/bench_widgets.py --dsn postgresql://… --base-url http://127.0.0.1:8000
           --api-key dik_… --item 42 [--repeat 5]
`run(dsn, base_url, api_key, item_id)` returns the figures as dicts (bench/run.py records them).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from collections.abc import Callable
from typing import Any

import asyncpg
import httpx

BAR_SQL = """
SELECT "values"->>$2 AS label, sum(("values"->>$3)::numeric) AS total
FROM rows WHERE data_item_id = $1 GROUP BY 1
"""
LINE_SQL = """
SELECT left("values"->>$2, 7) AS month, sum(("values"->>$3)::numeric) AS total
FROM rows WHERE data_item_id = $1 GROUP BY 1
"""


def _timed(fn: Callable[[], Any], repeat: int) -> list[float]:
    fn()  # warm: caches, plans, connections
    runs = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        runs.append(time.perf_counter() - t0)
    return runs


def _pick(fields: list[dict[str, Any]], field_type: str, label: str, given: int | None) -> int:
    if given is not None:
        return given
    for f in fields:
        if f["field_label"] == label and f["field_type"] == field_type:
            return int(f["id"])
    for f in fields:
        if f["field_type"] == field_type:
            return int(f["id"])
    raise SystemExit(f"the item has no {field_type} field (give one with --{field_type}-field)")


def run(
    dsn: str,
    base_url: str,
    api_key: str,
    item_id: int,
    *,
    repeat: int = 5,
    char_field: int | None = None,
    value_field: int | None = None,
    date_field: int | None = None,
) -> list[dict[str, Any]]:
    """Create the two widgets, time their data next to the bare SQL, delete them; the figures as
    dicts: id, what, runs, floor, floor_runs, target, rows."""
    dsn = dsn.replace("postgresql+asyncpg://", "postgresql://", 1)
    api = httpx.Client(
        base_url=f"{base_url.rstrip('/')}/api/v1", headers={"X-Api-Key": api_key}, timeout=None
    )
    loop = asyncio.new_event_loop()
    conn: asyncpg.Connection = loop.run_until_complete(asyncpg.connect(dsn))
    created: list[int] = []
    try:
        item = api.get(f"/data-items/{item_id}/").raise_for_status().json()
        fields = item["fields"]
        label = _pick(fields, "char", "Region", char_field)
        value = _pick(fields, "decimal", "Revenue", value_field)
        date = _pick(fields, "date", "Close Date", date_field)
        names = {int(f["id"]): f["field_label"] for f in fields}
        series = [{"value_field": value, "aggregation": "sum"}]
        cases = [
            (
                "widget_bar_sum_by_char",
                f"bar chart: sum of {names[value]} by {names[label]} (GET widgets/{{id}}/data/)",
                {"chart_type": "bar", "label_field": label, "series": series},
                BAR_SQL,
                label,
            ),
            (
                "widget_line_sum_by_month",
                f"line chart: sum of {names[value]} by month of {names[date]}",
                {
                    "chart_type": "line",
                    "label_field": date,
                    "date_grouping": "month",
                    "series": series,
                },
                LINE_SQL,
                date,
            ),
        ]
        figures = []
        for figure_id, what, body, query, group_field in cases:
            widget = api.post(f"/data-items/{item_id}/widgets/", json=body)
            widget_id = int(widget.raise_for_status().json()["id"])
            created.append(widget_id)
            url = f"/data-items/{item_id}/widgets/{widget_id}/data/"

            def fetch(url: str = url) -> bytes:
                return api.get(url).raise_for_status().content

            runs = _timed(fetch, repeat)

            def bare(query: str = query, group: int = group_field) -> Any:
                return loop.run_until_complete(conn.fetch(query, item_id, str(group), str(value)))

            floor_runs = _timed(bare, repeat)
            figures.append(
                {
                    "id": figure_id,
                    "what": what,
                    "runs": runs,
                    "floor": "bare SQL GROUP BY on the same server",
                    "floor_runs": floor_runs,
                    "target": "<= 2x",
                    "rows": int(item["row_count"]),
                }
            )
        return figures
    finally:
        for widget_id in created:
            api.delete(f"/data-items/{item_id}/widgets/{widget_id}/")
        loop.run_until_complete(conn.close())
        loop.close()
        api.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dsn", required=True, help="PostgreSQL the service uses")
    parser.add_argument("--base-url", default="http://127.0.0.1:8000")
    parser.add_argument("--api-key", required=True, help="a key of the account owning the item")
    parser.add_argument("--item", type=int, required=True, help="data item id")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--char-field", type=int, help="field id to group the bar chart by")
    parser.add_argument("--value-field", type=int, help="decimal field id to sum")
    parser.add_argument("--date-field", type=int, help="date field id for the monthly line chart")
    args = parser.parse_args()
    figures = run(
        args.dsn,
        args.base_url,
        args.api_key,
        args.item,
        repeat=args.repeat,
        char_field=args.char_field,
        value_field=args.value_field,
        date_field=args.date_field,
    )
    for fig in figures:
        median, floor = statistics.median(fig["runs"]), statistics.median(fig["floor_runs"])
        ratio = median / floor
        verdict = "" if ratio <= 2 else "  OVER the 2x goal"
        print(
            f"{fig['id']:<26} {median:8.3f} s   bare SQL {floor:8.3f} s   ratio {ratio:5.2f}x "
            f"({fig['target']}; {fig['rows']:,} rows){verdict}"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
