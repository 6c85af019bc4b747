"""What the ad-hoc query speaks: the request body, the table it answers, and the group keys and
aggregations the aggregation engine takes (widget data uses the same engine, app/widgets/data.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Annotated, Any

from pydantic import ConfigDict, Field, Strict, field_validator

from app.core.schemas import InputSchema, Schema
from app.fieldtypes import DateGrouping, FieldType, Measure
from app.rows.filters import FilterConfig

MAX_GROUP_BY = 3
MAX_AGGREGATIONS = 20
MAX_LIMIT = 10_000
DEFAULT_LIMIT = 1_000
FieldId = Annotated[int, Strict(), Field(ge=1, le=2**63 - 1)]  # "5" and true are refused

# ------------------------------------------------------------------------------- the engine


@dataclass(frozen=True)
class Key:
    """A group key: a field's value, or its date bucket."""

    field_id: int
    field_type: FieldType
    grouping: DateGrouping = DateGrouping.NONE


@dataclass(frozen=True)
class Series:
    """An aggregate: which field's cells (none: count the rows), aggregated how."""

    field_id: int | None
    field_type: FieldType | None
    aggregation: Measure


@dataclass(frozen=True)
class Order:
    """Sort by an output column: `position` counts the keys first, then the series."""

    position: int
    descending: bool = False


# ------------------------------------------------------------------------------------ the API


class QueryOp(StrEnum):
    COUNT = "count"
    COUNT_DISTINCT = "count_distinct"
    DISTINCT_COUNT = "distinct_count"  # the widgets' name for count_distinct
    SUM = "sum"
    AVG = "avg"
    MIN = "min"
    MAX = "max"
    MEDIAN = "median"


class QueryAggregation(InputSchema):
    field: int | None = Field(
        default=None,
        ge=1,
        le=2**63 - 1,
        description="The field aggregated; may be left out for `count` (counts the rows).",
        examples=[102],
    )
    op: QueryOp = Field(
        description=(
            "count (non-empty cells; the rows without `field`), count_distinct (distinct_count "
            "is the same), sum, avg, median (decimal), min, max (decimal, date)."
        ),
        examples=["sum"],
    )


class QuerySort(InputSchema):
    column: int | str = Field(
        description="An output column: its 0-based position, or its name.",
        examples=[1],
    )
    desc: bool = Field(default=False, description="Descending.", examples=[True])

    @field_validator("column", mode="before")
    @classmethod
    def _not_a_boolean(cls, value: Any) -> Any:
        if isinstance(value, bool):  # (pydantic would read true as column 1)
            raise ValueError("Input should be a column position (integer) or name (string)")
        return value


class QueryRequest(InputSchema):
    group_by: list[FieldId] = Field(
        default_factory=list,
        max_length=MAX_GROUP_BY,
        description=f"Field ids to group the rows by, at most {MAX_GROUP_BY}.",
        examples=[[101]],
    )
    date_grouping: DateGrouping = Field(
        default=DateGrouping.NONE,
        description=(
            "Buckets for the date fields in `group_by`: day `2026-03-05`, ISO week `2026-W09`, "
            'month `2026-03`, quarter `2026-Q1`, year `2026`; "" groups by the value.'
        ),
        examples=["month"],
    )
    aggregations: list[QueryAggregation] = Field(
        default_factory=list,
        max_length=MAX_AGGREGATIONS,
        description=f"At most {MAX_AGGREGATIONS}, one column each, after the group columns.",
        examples=[[{"field": 102, "op": "sum"}]],
    )
    filter: FilterConfig | None = Field(
        default=None,
        description="Which rows count: the filter language of `GET …/rows/?filter=`.",
    )
    sort: list[QuerySort] = Field(
        default_factory=list,
        max_length=MAX_GROUP_BY + MAX_AGGREGATIONS,
        description=(
            "Sort keys, first key first (empty values last in both directions). The group "
            "columns ascending always follow, so the order is complete."
        ),
        examples=[[{"column": 1, "desc": True}]],
    )
    limit: int = Field(
        default=DEFAULT_LIMIT,
        ge=1,
        le=MAX_LIMIT,
        description=f"At most this many rows (1 to {MAX_LIMIT:,}); `truncated` says when more.",
        examples=[100],
    )

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "group_by": [101, 103],
                    "date_grouping": "month",
                    "aggregations": [{"field": 102, "op": "sum"}, {"op": "count"}],
                    "filter": {"conditions": [{"field": 102, "op": "gt", "value": 0}]},
                    "sort": [{"column": "Sum of Revenue", "desc": True}],
                    "limit": 100,
                }
            ]
        }
    )


class QueryColumn(Schema):
    name: str = Field(
        description='The field label (group columns), or "Sum of Revenue", "Count", ….',
        examples=["Sum of Revenue"],
    )
    field_id: int | None = Field(
        description="The field grouped or aggregated; null for a row count.", examples=[102]
    )
    type: str = Field(
        description=(
            "A group column: its field's type (values are shown as widget labels: text, "
            '"(empty)" for rows without one). An aggregation: integer (counts), decimal (sum, '
            "avg, median), or its field's type (min, max)."
        ),
        examples=["decimal"],
    )


class QueryResult(Schema):
    columns: list[QueryColumn]
    rows: list[list[Any]] = Field(
        description="One list per group, in column order; numbers exact.",
        examples=[[["North", 1250.5, 3], ["South", 980, 2]]],
    )
    truncated: bool = Field(description="More groups than `limit` matched.", examples=[False])
