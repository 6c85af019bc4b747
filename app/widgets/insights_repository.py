"""The statistics behind a widget's insights, computed exactly by PostgreSQL (numeric, never
float) over the widget's grouped values: the labels and values the data endpoint returns for one
series, passed in as two arrays (`unnest … WITH ORDINALITY` keeps the chart's order). No table is
read, so there is nothing to scope: the values come from the widget-data engine, which read them
from an item resolved for the caller.

Percentages are `round(100 * x / y, 1)`, half away from zero, computed with the exact integer
quotient `div` (a plain numeric division would round at PostgreSQL's own scale first, and a value
rounded twice can differ from the exact one). Quartiles follow `percentile_cont`'s definition
(position `1 + p * (n - 1)`, linear between its two neighbours), written out over numeric:
PostgreSQL's `percentile_cont` itself works in double precision only."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

_GROUPS = """
    SELECT t.label, t.v, t.pos
    FROM unnest(CAST(:labels AS text[]), CAST(:vals AS numeric[])) WITH ORDINALITY AS t(label, v, pos)
    WHERE t.v IS NOT NULL
"""


def _pct(x: str, y: str) -> str:
    """SQL: 100 * x / |y| rounded half away from zero to 1 place, exactly; NULL when y is 0."""
    return (
        f"CASE WHEN {y} <> 0 THEN sign({x}) * div(abs({x}) * 2000 + abs({y}), 2 * abs({y})) * 0.1"
        " END"
    )


@dataclass(frozen=True)
class Step:
    """One bucket after another: the change from `previous_value` to `value`."""

    previous_label: str
    previous_value: Decimal
    label: str
    value: Decimal
    change: Decimal
    change_pct: Decimal | None


@dataclass(frozen=True)
class TimeSeries:
    """Buckets in chronological order: how many, the first and the last, and the largest step
    (None with a single bucket)."""

    buckets: int
    first_label: str
    first: Decimal
    last_label: str
    last: Decimal
    change_pct: Decimal | None
    largest: Step | None


@dataclass(frozen=True)
class Share:
    groups: int
    total: Decimal
    lowest: Decimal
    top_label: str
    top: Decimal
    share_pct: Decimal | None


@dataclass(frozen=True)
class Spread:
    """Quartiles, the IQR fences and the values outside them (in the chart's order)."""

    count: int
    q1: Decimal
    q3: Decimal
    iqr: Decimal
    lower: Decimal
    upper: Decimal
    outliers: list[tuple[str, Decimal]]


class InsightsRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def time_series(
        self, labels: Sequence[str], values: Sequence[Decimal | None]
    ) -> TimeSeries | None:
        """Over the buckets with a value, in code-point order of their labels (chronological for
        date buckets)."""
        stmt = text(
            f"""
            WITH s AS ({_GROUPS}),
            o AS (
                SELECT label, v,
                       lag(label) OVER w AS prev_label, lag(v) OVER w AS prev_v,
                       first_value(label) OVER w AS first_label, first_value(v) OVER w AS first_v,
                       row_number() OVER w AS i, count(*) OVER () AS n
                FROM s
                WINDOW w AS (ORDER BY label COLLATE "C")
            ),
            step AS (
                SELECT prev_label, prev_v, label, v, v - prev_v AS change
                FROM o WHERE i > 1
                ORDER BY abs(v - prev_v) DESC, i
                LIMIT 1
            )
            SELECT o.n, o.first_label, o.first_v, o.label, o.v, {_pct("o.v - o.first_v", "o.first_v")},
                   step.prev_label, step.prev_v, step.label, step.v, step.change,
                   {_pct("step.change", "step.prev_v")}
            FROM o LEFT JOIN step ON true
            WHERE o.i = o.n
            """
        )
        row = (await self.session.execute(stmt, _arrays(labels, values))).one_or_none()
        if row is None:
            return None
        largest = None if row[6] is None else Step(*row[6:12])
        return TimeSeries(int(row[0]), row[1], row[2], row[3], row[4], row[5], largest)

    async def share(self, labels: Sequence[str], values: Sequence[Decimal | None]) -> Share | None:
        """The largest group (the first in the chart's order on a tie) and its share of the
        total."""
        stmt = text(
            f"""
            WITH s AS ({_GROUPS}),
            a AS (SELECT count(*) AS n, sum(v) AS total, min(v) AS lowest FROM s),
            top AS (SELECT label, v FROM s ORDER BY v DESC, pos LIMIT 1)
            SELECT a.n, a.total, a.lowest, top.label, top.v,
                   CASE WHEN a.total > 0 THEN {_pct("top.v", "a.total")} END
            FROM a JOIN top ON true
            """
        )
        row = (await self.session.execute(stmt, _arrays(labels, values))).one_or_none()
        return None if row is None else Share(int(row[0]), *row[1:])

    async def spread(
        self, labels: Sequence[str], values: Sequence[Decimal | None]
    ) -> Spread | None:
        """Q1 and Q3 (percentile_cont's definition, exact), the fences Q1 - 1.5 IQR and
        Q3 + 1.5 IQR, and the groups whose value lies outside them."""
        stmt = text(
            f"""
            WITH s AS ({_GROUPS}),
            r AS (SELECT v, row_number() OVER (ORDER BY v) AS i, count(*) OVER () AS n FROM s),
            k AS (
                SELECT p, 1 + (n - 1) * p AS h
                FROM (VALUES (0.25::numeric), (0.75::numeric)) AS q(p),
                     (SELECT count(*) AS n FROM s) AS c
                WHERE n > 0
            ),
            quart AS (
                SELECT k.p,
                       min(r.v) FILTER (WHERE r.i = floor(k.h))
                       + (k.h - floor(k.h))
                       * (min(r.v) FILTER (WHERE r.i = ceil(k.h))
                          - min(r.v) FILTER (WHERE r.i = floor(k.h))) AS value
                FROM k JOIN r ON r.i IN (floor(k.h), ceil(k.h))
                GROUP BY k.p, k.h
            ),
            f AS (
                SELECT q1, q3, q3 - q1 AS iqr, q1 - 1.5 * (q3 - q1) AS lower,
                       q3 + 1.5 * (q3 - q1) AS upper
                FROM (SELECT min(value) FILTER (WHERE p = 0.25) AS q1,
                             min(value) FILTER (WHERE p = 0.75) AS q3 FROM quart) AS q
            )
            SELECT (SELECT count(*) FROM s), f.q1, f.q3, f.iqr, f.lower, f.upper,
                   array_agg(s.label ORDER BY s.pos) FILTER (WHERE s.v < f.lower OR s.v > f.upper),
                   array_agg(s.v ORDER BY s.pos) FILTER (WHERE s.v < f.lower OR s.v > f.upper)
            FROM f CROSS JOIN s
            WHERE f.q1 IS NOT NULL
            GROUP BY f.q1, f.q3, f.iqr, f.lower, f.upper
            """
        )
        row = (await self.session.execute(stmt, _arrays(labels, values))).one_or_none()
        if row is None:
            return None
        outliers = list(zip(row[6] or [], row[7] or [], strict=True))
        q1, q3, iqr, lower, upper = row[1:6]
        return Spread(int(row[0]), q1, q3, iqr, lower, upper, outliers)


def _arrays(labels: Sequence[str], values: Sequence[Decimal | None]) -> dict[str, object]:
    return {"labels": list(labels), "vals": list(values)}
