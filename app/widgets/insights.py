"""`GET …/widgets/{id}/insights/`: short plain-English statements about a widget's data, each with
the exact numbers behind it, computed without a model.

The values are the data endpoint's own: `data.widget_data` groups and aggregates the rows (one
code path for aggregations: same filter, grouping, sort, row_limit and avg rounding as the chart),
and PostgreSQL computes the statistics over them in numeric (insights_repository.py). Every
series with numeric values (counts, and sum, avg, min, max of a decimal field) gets its own
insights, in series order; min/max of a date field and number or scatter widgets get none.
Groups whose value is null (nothing to aggregate) are left out.

Kinds, and when each applies:
- `trend` (label field grouped by a date bucket, >= 2 buckets with a value; the "(empty)" bucket
  of rows without a date is left out of every insight of such a widget): the first and last bucket in time and `change_pct` = round(100 * (last - first) /
  |first|, 1), null when first is 0.
- `largest_change` (same widgets, >= 3 buckets): the largest absolute change between a bucket and
  the one before it in the chart (buckets without rows are not in the chart), the earliest on a
  tie; `change_pct` relative to the previous bucket, as above.
- `top_share` (label field of type char, text or boolean, not date-grouped; >= 2 groups, no
  negative value, a total above 0): the largest group (the first in the chart on a tie) and
  `share_pct` = round(100 * value / total, 1).
- `outliers` (any grouped widget with >= 4 values): the groups outside [Q1 - 1.5 IQR,
  Q3 + 1.5 IQR], quartiles as percentile_cont defines them; only when there is at least one.
Numbers in `values` are exact; `text` shows them rounded to 2 places at most (percentages to 1).
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from app.fieldtypes import FieldType
from app.fieldtypes.decimal import decimal_text
from app.models import DataItem, Widget
from app.models import Field as FieldModel
from app.widgets import data
from app.widgets.insights_repository import InsightsRepository
from app.widgets.schemas import ChartType

MIN_TREND_BUCKETS = 2
MIN_CHANGE_BUCKETS = 3
MIN_SHARE_GROUPS = 2
MIN_OUTLIER_VALUES = 4
_CATEGORY_TYPES = {FieldType.CHAR, FieldType.TEXT, FieldType.BOOLEAN}
_NO_GROUPS = {ChartType.NUMBER, ChartType.SCATTER}


def shown(value: Decimal) -> str:
    """A number for the text: exact up to 2 places, else rounded half-up to 2."""
    exponent = value.as_tuple().exponent
    if isinstance(exponent, int) and exponent < -2:
        value = value.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)
    text = decimal_text(value)
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return "0" if text == "-0" else text


def _pct(value: Decimal) -> str:
    return f"{abs(value):.1f}%"


def _numbers(points: Sequence[Any]) -> list[Decimal | None] | None:
    """The series' values as Decimals, or None when they are not numbers (min/max of dates)."""
    out: list[Decimal | None] = []
    for p in points:
        if p is None:
            out.append(None)
        elif isinstance(p, Decimal) or (isinstance(p, int) and not isinstance(p, bool)):
            out.append(Decimal(p))
        else:
            return None
    return out


async def widget_insights(
    session: AsyncSession, item: DataItem, fields: Sequence[FieldModel], widget: Widget
) -> dict[str, Any]:
    if ChartType(widget.chart_type) in _NO_GROUPS:
        return {"insights": []}
    result = await data.widget_data(session, item, fields, widget)  # 400 if it cannot be drawn
    by_id = {f.id: f for f in fields}
    label = by_id.get(widget.label_field_id) if widget.label_field_id is not None else None
    over_time = label is not None and bool(widget.date_grouping)
    category = (
        label is not None and not over_time and FieldType(label.field_type) in _CATEGORY_TYPES
    )
    repo = InsightsRepository(session)
    labels: list[str] = result["labels"]
    insights: list[dict[str, Any]] = []
    for dataset in result["datasets"]:
        values = _numbers(dataset["data"])
        if values is None:
            continue
        names = labels
        if over_time:  # rows without a date are no period: left out of every insight
            kept = [i for i, name in enumerate(labels) if name != data.NULL_LABEL]
            names, values = [labels[i] for i in kept], [values[i] for i in kept]
        if not names:
            continue
        series = {"series_id": dataset["series_id"], "series": dataset["label"]}
        if over_time:
            insights += await _over_time(repo, series, names, values)
        if category:
            insights += await _top_share(repo, series, names, values)
        insights += await _outliers(repo, series, names, values)
    return {"insights": insights}


async def _over_time(
    repo: InsightsRepository,
    series: dict[str, Any],
    labels: Sequence[str],
    values: Sequence[Decimal | None],
) -> list[dict[str, Any]]:
    ts = await repo.time_series(labels, values)
    if ts is None or ts.buckets < MIN_TREND_BUCKETS:
        return []
    name = series["series"]
    span = f"from {shown(ts.first)} ({ts.first_label}) to {shown(ts.last)} ({ts.last_label})"
    if ts.change_pct is None:
        said = f"{name} went {span}."
    elif ts.change_pct == 0 and ts.first == ts.last:
        said = f"{name} was {shown(ts.first)} in {ts.first_label} and in {ts.last_label}."
    else:
        way = "rose" if ts.last > ts.first else "fell"
        said = f"{name} {way} {_pct(ts.change_pct)} {span}."
    out = [
        {
            "kind": "trend",
            "text": said,
            "values": {
                **series,
                "buckets": ts.buckets,
                "first_label": ts.first_label,
                "first": ts.first,
                "last_label": ts.last_label,
                "last": ts.last,
                "change": ts.last - ts.first,
                "change_pct": ts.change_pct,
            },
        }
    ]
    step = ts.largest
    if ts.buckets < MIN_CHANGE_BUCKETS or step is None:
        return out
    how = "no change" if step.change == 0 else ("up " if step.change > 0 else "down ")
    if step.change != 0:
        how += shown(abs(step.change))
        if step.change_pct is not None:
            how += f" ({_pct(step.change_pct)})"
    out.append(
        {
            "kind": "largest_change",
            "text": (
                f"The largest change in {name} was from {step.previous_label} to {step.label}: "
                f"{how}, from {shown(step.previous_value)} to {shown(step.value)}."
            ),
            "values": {
                **series,
                "previous_label": step.previous_label,
                "previous_value": step.previous_value,
                "label": step.label,
                "value": step.value,
                "change": step.change,
                "change_pct": step.change_pct,
            },
        }
    )
    return out


async def _top_share(
    repo: InsightsRepository,
    series: dict[str, Any],
    labels: Sequence[str],
    values: Sequence[Decimal | None],
) -> list[dict[str, Any]]:
    share = await repo.share(labels, values)
    if (
        share is None
        or share.groups < MIN_SHARE_GROUPS
        or share.lowest < 0
        or share.share_pct is None
    ):
        return []
    return [
        {
            "kind": "top_share",
            "text": (
                f"{share.top_label} is the largest group of {series['series']}: "
                f"{_pct(share.share_pct)} of the total ({shown(share.top)} of "
                f"{shown(share.total)})."
            ),
            "values": {
                **series,
                "label": share.top_label,
                "value": share.top,
                "total": share.total,
                "share_pct": share.share_pct,
                "groups": share.groups,
            },
        }
    ]


async def _outliers(
    repo: InsightsRepository,
    series: dict[str, Any],
    labels: Sequence[str],
    values: Sequence[Decimal | None],
) -> list[dict[str, Any]]:
    spread = await repo.spread(labels, values)
    if spread is None or spread.count < MIN_OUTLIER_VALUES or not spread.outliers:
        return []
    n = len(spread.outliers)
    listed = ", ".join(f"{label} ({shown(value)})" for label, value in spread.outliers)
    return [
        {
            "kind": "outliers",
            "text": (
                f"{n} {'outlier' if n == 1 else 'outliers'} in {series['series']}: {listed}, "
                f"outside the usual range {shown(spread.lower)} to {shown(spread.upper)}."
            ),
            "values": {
                **series,
                "outliers": [{"label": lb, "value": v} for lb, v in spread.outliers],
                "q1": spread.q1,
                "q3": spread.q3,
                "iqr": spread.iqr,
                "lower_bound": spread.lower,
                "upper_bound": spread.upper,
                "count": spread.count,
            },
        }
    ]
