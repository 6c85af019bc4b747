"""Widget and series bodies, the enums of the contract, and the chart data response."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Any

from pydantic import ConfigDict, Field, field_validator, model_validator

from app.core.jsonexact import dumps
from app.core.schemas import InputSchema, Schema, Timestamp, optional_not_null, text_problem
from app.fieldtypes import Aggregation, DateGrouping
from app.rows.filters import FilterConfig
from app.widgets.colors import is_color

MAX_SERIES = 20
MAX_ROW_LIMIT = 1000
MAX_CHART_OPTIONS_BYTES = 16_384


class ChartType(StrEnum):
    BAR = "bar"
    LINE = "line"
    PIE = "pie"
    DOUGHNUT = "doughnut"
    AREA = "area"
    SCATTER = "scatter"
    NUMBER = "number"


class WidgetSize(StrEnum):
    SM = "sm"
    MD = "md"
    LG = "lg"


class SortDirection(StrEnum):
    NONE = ""
    ASC = "asc"
    DESC = "desc"


FieldRef = Annotated[int, Field(ge=1, le=2**63 - 1, examples=[101])]
Order = Annotated[
    int,
    Field(
        ge=0,
        le=1_000_000,
        description="0-based position; the others shift to make room. Past the end means last.",
    ),
]
Title = Annotated[str, Field(max_length=255, examples=["Revenue by Region"])]
Description = Annotated[str, Field(max_length=10_000, examples=[""])]
SeriesLabel = Annotated[
    str,
    Field(
        max_length=255,
        examples=["Total Revenue"],
        description='Shown in the legend; empty: "<Aggregation> of <field label>".',
    ),
]
Color = Annotated[
    str,
    Field(
        max_length=64,
        examples=["#0052FF"],
        description=(
            "A hex color (`#0052FF`, `#05F`, with alpha `#0052FF80`) or a CSS color name "
            "(`steelblue`). Empty: the data endpoint assigns one from a 10-color palette."
        ),
    ),
]
RowLimit = Annotated[
    int,
    Field(
        ge=1,
        le=MAX_ROW_LIMIT,
        description=(
            f"Groups to keep (1-{MAX_ROW_LIMIT}) after sorting; the rest are left out (no "
            f'"Other" group). null: up to {MAX_ROW_LIMIT}. Scatter: the number of points.'
        ),
    ),
]
_FILTER_DESCRIPTION = (
    "Which rows count: "
    '`{"match": "all"|"any", "conditions": [{"field": <id>, "op": <op>, "value": <value>}]}`. '
    "Ops: eq, ne, in (every type), gt, gte, lt, lte (decimal, date), contains (char, text; "
    "ignoring case), is_empty, not_empty (no value). Values are read with the field's type. "
    "At most 20 conditions. null: every row."
)
_OPTIONS_DESCRIPTION = (
    f"Any JSON object, stored and returned as given (at most {MAX_CHART_OPTIONS_BYTES:,} bytes "
    "as JSON), for the client's chart library."
)


def _check_json_text(value: Any, path: str = "") -> None:
    if isinstance(value, str):
        if problem := text_problem(value):
            raise ValueError(f"text at {path or 'top level'} {problem}")
    elif isinstance(value, dict):
        for k, v in value.items():
            _check_json_text(k, path)
            _check_json_text(v, f"{path}.{k}" if path else str(k))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            _check_json_text(v, f"{path}[{i}]")


def check_chart_options(value: dict[str, Any] | None) -> dict[str, Any] | None:
    if value is None:
        return None
    size = len(dumps(value).encode())
    if size > MAX_CHART_OPTIONS_BYTES:
        raise ValueError(
            f"is {size:,} bytes as JSON; the limit is {MAX_CHART_OPTIONS_BYTES:,} bytes"
        )
    _check_json_text(value)
    return value


def check_color(value: str | None) -> str | None:
    if value is None or value == "" or is_color(value):
        return value
    raise ValueError(
        "must be a hex color such as #0052FF (#RGB, #RGBA, #RRGGBB or #RRGGBBAA) or a CSS color "
        "name such as steelblue"
    )


def _none_means_empty(value: object) -> object:
    """`date_grouping` and `sort_direction`: null is taken as "" (none)."""
    return "" if value is None else value


class SeriesCreate(InputSchema):
    value_field: FieldRef = Field(description="The field aggregated (a field of this item).")
    aggregation: Aggregation = Field(
        default=Aggregation.SUM,
        description=(
            "count, distinct_count: every type; sum, avg: decimal; min, max: decimal and date."
        ),
    )
    label: SeriesLabel = ""
    series_order: Order | None = Field(default=None, description="Default: after the last.")
    color: Color = ""

    _color = field_validator("color")(check_color)

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "value_field": 102,
                    "aggregation": "sum",
                    "label": "Total Revenue",
                    "color": "#0052FF",
                }
            ]
        }
    )


class SeriesUpdate(InputSchema):
    value_field: FieldRef | None = None
    aggregation: Aggregation | None = None
    label: SeriesLabel | None = None
    series_order: Order | None = None
    color: Color | None = None

    _color = field_validator("color")(check_color)

    @field_validator("*", mode="before")
    @classmethod
    def _not_null(cls, value: object) -> object:
        if value is None:
            raise ValueError("must not be null (leave the key out to keep the current value)")
        return value

    model_config = ConfigDict(
        json_schema_extra=optional_not_null(
            "value_field",
            "aggregation",
            "label",
            "series_order",
            "color",
            examples=[{"aggregation": "avg"}],
        )
    )


class WidgetCreate(InputSchema):
    title: Title = ""
    description: Description = ""
    chart_type: ChartType = ChartType.BAR
    widget_size: WidgetSize = WidgetSize.MD
    widget_order: Order | None = Field(default=None, description="Default: after the last.")
    label_field: FieldRef | None = Field(
        default=None,
        description="The field whose values label the groups (scatter: the x values).",
    )
    date_grouping: DateGrouping = Field(
        default=DateGrouping.NONE,
        description="Group a date label field by day, ISO week, month, quarter or year.",
    )
    sort_direction: SortDirection = Field(
        default=SortDirection.NONE,
        description=(
            '"" (default): groups by label, ascending (dates chronologically); asc/desc: by the '
            "first series' value, ties by label."
        ),
    )
    row_limit: RowLimit | None = None
    filter_config: FilterConfig | None = Field(default=None, description=_FILTER_DESCRIPTION)
    chart_options: dict[str, Any] | None = Field(default=None, description=_OPTIONS_DESCRIPTION)
    series: list[SeriesCreate] = Field(
        default_factory=list,
        max_length=MAX_SERIES,
        description=f"Created with the widget, all or nothing (at most {MAX_SERIES}).",
    )

    _options = field_validator("chart_options")(check_chart_options)
    _empty = field_validator("date_grouping", "sort_direction", mode="before")(_none_means_empty)

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "title": "Revenue by Region",
                    "chart_type": "bar",
                    "label_field": 101,
                    "sort_direction": "desc",
                    "series": [
                        {"value_field": 102, "aggregation": "sum", "label": "Total Revenue"}
                    ],
                }
            ]
        }
    )


_NOT_NULL = ("title", "description", "chart_type", "widget_size", "widget_order")


class WidgetUpdate(InputSchema):
    """Only what is sent changes. `label_field`, `row_limit`, `filter_config` and `chart_options`
    may be null (cleared). Series are changed through …/series/."""

    title: Title | None = None
    description: Description | None = None
    chart_type: ChartType | None = None
    widget_size: WidgetSize | None = None
    widget_order: Order | None = None
    label_field: FieldRef | None = None
    date_grouping: DateGrouping | None = None
    sort_direction: SortDirection | None = None
    row_limit: RowLimit | None = None
    filter_config: FilterConfig | None = Field(default=None, description=_FILTER_DESCRIPTION)
    chart_options: dict[str, Any] | None = Field(default=None, description=_OPTIONS_DESCRIPTION)

    _options = field_validator("chart_options")(check_chart_options)
    _empty = field_validator("date_grouping", "sort_direction", mode="before")(_none_means_empty)

    @model_validator(mode="before")
    @classmethod
    def _no_series_no_nulls(cls, data: Any) -> Any:
        if isinstance(data, dict):
            if "series" in data:
                raise ValueError(
                    "series are not changed by PATCH on a widget: use the widget's series/ "
                    "endpoints"
                )
            for key in _NOT_NULL:
                if key in data and data[key] is None:
                    raise ValueError(
                        f"{key} must not be null (leave the key out to keep the current value)"
                    )
        return data

    model_config = ConfigDict(
        json_schema_extra=optional_not_null(*_NOT_NULL, examples=[{"title": "Revenue (Q1)"}])
    )


class SeriesRead(Schema):
    id: int = Field(examples=[1])
    value_field: int = Field(examples=[102])
    aggregation: Aggregation = Field(examples=["sum"])
    label: str = Field(examples=["Total Revenue"])
    series_order: int = Field(examples=[0])
    color: str = Field(examples=["#0052FF"])


class WidgetRead(Schema):
    id: int = Field(examples=[1])
    data_item: int = Field(examples=[42])
    title: str = Field(examples=["Revenue by Region"])
    description: str = Field(examples=[""])
    chart_type: ChartType = Field(examples=["bar"])
    widget_order: int = Field(examples=[0])
    widget_size: WidgetSize = Field(examples=["md"])
    label_field: int | None = Field(examples=[101])
    date_grouping: DateGrouping = Field(examples=[""])
    sort_direction: SortDirection = Field(examples=[""])
    row_limit: int | None = Field(examples=[None])
    filter_config: FilterConfig | None = Field(examples=[None])
    chart_options: dict[str, Any] | None = Field(examples=[None])
    created_at: Timestamp
    updated_at: Timestamp
    series: list[SeriesRead]


class WidgetList(Schema):
    widgets: list[WidgetRead]


class SeriesList(Schema):
    series: list[SeriesRead]


class Dataset(Schema):
    series_id: int = Field(examples=[1])
    label: str = Field(examples=["Total Revenue"])
    data: list[Any] = Field(
        description=(
            "One value per label (number widgets: one value; scatter: points `{x, y}`). Exact "
            "numbers; null where a group has no value to aggregate."
        ),
        examples=[[45200.5, 31500]],
    )
    color: str = Field(examples=["#0052FF"])


class WidgetData(Schema):
    labels: list[str] = Field(
        description=(
            "Group labels, in the widget's order: the label field's values as shown, or date "
            'buckets (`2026-03-05`, `2026-W09`, `2026-03`, `2026-Q1`, `2026`); "(empty)" for '
            'rows without a label; "All" without a label field. Empty for number and scatter.'
        ),
        examples=[["North", "South"]],
    )
    datasets: list[Dataset]
    chart_type: ChartType = Field(examples=["bar"])
    truncated: bool = Field(
        description="Some groups (or scatter points) were left out by row_limit or the caps.",
        examples=[False],
    )


class InsightKind(StrEnum):
    TREND = "trend"
    LARGEST_CHANGE = "largest_change"
    TOP_SHARE = "top_share"
    OUTLIERS = "outliers"


class Insight(Schema):
    kind: InsightKind = Field(examples=["trend"])
    text: str = Field(
        description="One plain-English sentence; numbers rounded for display (2 places, "
        "percentages 1).",
        examples=["Sum of Revenue fell 10.0% from 100 (2026-01) to 90 (2026-03)."],
    )
    values: dict[str, Any] = Field(
        description=(
            "The exact numbers behind the text, and the series they are about (`series_id`, "
            "`series`). trend: first_label, first, last_label, last, change, change_pct, "
            "buckets. largest_change: previous_label, previous_value, label, value, change, "
            "change_pct. top_share: label, value, total, share_pct, groups. outliers: outliers "
            "[{label, value}], q1, q3, iqr, lower_bound, upper_bound, count. Percentages are "
            "rounded half away from zero to 1 place; change_pct is null when the base is 0."
        ),
        examples=[
            {
                "series_id": 3,
                "series": "Sum of Revenue",
                "buckets": 3,
                "first_label": "2026-01",
                "first": 100,
                "last_label": "2026-03",
                "last": 90,
                "change": -10,
                "change_pct": -10.0,
            }
        ],
    )


class InsightList(Schema):
    insights: list[Insight]
