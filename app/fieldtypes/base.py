"""What a field type is: the `Kind` every type of the registry implements, the enums the API
speaks about types with (filter ops, aggregations, date groupings), and the shared pieces.

A kind owns everything about its type, for every path:

| concern | methods | used by |
|---|---|---|
| one value | `parse`, `display`, `json_fragment`, `from_stored`, `convert`, `column_order` | rows, filters, type changes, bundles |
| a column | `candidates`, `fits`, `read_column`, `fragments`, `typed_cells` | ingestion (inference, conversion) |
| SQL | `valid`, `value`, `sort_key`, `group_key`, `condition`, `aggregate`/`finish` | rows, widgets, summary repositories |
| statistics | `increments`, `accumulator`, `stats_value`/`stats_aggregates`, `summary` | summary, ingestion |
| export | `export_text`, `xlsx_writer`, `excel_text_needed` | transfer |

Stored forms (inside each row's JSONB document; an empty cell is an absent key):

| type    | stored JSON                               | Python value                        |
|---------|-------------------------------------------|-------------------------------------|
| char    | string, exactly as given                  | str                                 |
| text    | string, exactly as given                  | str                                 |
| decimal | number, canonical (`45200.50` → 45200.5)  | Decimal (normalised, exact)         |
| date    | string `YYYY-MM-DD[THH:MM:SS[.ffffff]]`   | str (canonical)                     |
| boolean | true / false                              | bool                                |
"""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum
from typing import Any, ClassVar, Protocol

import polars as pl
from sqlalchemy import ColumnElement, Text, cast, func, literal, not_
from sqlalchemy.dialects.postgresql import ARRAY, JSONB

from app.core.schemas import text_problem
from app.fieldtypes.grammar import DateOrder
from app.fieldtypes.sql import Cell, by_code_point
from app.fieldtypes.vector import values_of

MAX_CELL_CHARS = 100_000  # a value written through the API (uploads: MAX_CELL_CHARS setting)

Stored = str | Decimal | bool


class FieldType(StrEnum):
    CHAR = "char"
    TEXT = "text"
    DECIMAL = "decimal"
    DATE = "date"
    BOOLEAN = "boolean"


class FilterOp(StrEnum):
    EQ = "eq"
    NE = "ne"
    GT = "gt"
    GTE = "gte"
    LT = "lt"
    LTE = "lte"
    CONTAINS = "contains"
    IN = "in"
    IS_EMPTY = "is_empty"
    NOT_EMPTY = "not_empty"


class Aggregation(StrEnum):
    COUNT = "count"
    SUM = "sum"
    AVG = "avg"
    MIN = "min"
    MAX = "max"
    DISTINCT_COUNT = "distinct_count"


class Statistic(StrEnum):
    """Aggregates an ad-hoc query computes beyond the widgets' (app/query)."""

    MEDIAN = "median"


Measure = Aggregation | Statistic  # what `Kind.aggregate` computes


class DateGrouping(StrEnum):
    NONE = ""
    DAY = "day"
    WEEK = "week"
    MONTH = "month"
    QUARTER = "quarter"
    YEAR = "year"


EVERY_TYPE_OPS = (FilterOp.EQ, FilterOp.NE, FilterOp.IN, FilterOp.IS_EMPTY, FilterOp.NOT_EMPTY)
ORDERED_OPS = (FilterOp.GT, FilterOp.GTE, FilterOp.LT, FilterOp.LTE)
COUNTS = (Aggregation.COUNT, Aggregation.DISTINCT_COUNT)


class CellError(ValueError):
    """A value that does not fit its field's type; the message says why, for the API client."""


class ReadingPlan(Protocol):
    """How a column is read (ingestion's ColumnPlan): the date order or decimal style the column
    decided, and whether values the competing reading would read differently are bad."""

    @property
    def date_order(self) -> DateOrder | None: ...
    @property
    def decimal_comma(self) -> bool: ...
    @property
    def ambiguous_bad(self) -> bool: ...


@dataclass(frozen=True)
class XlsxStyles:
    """The cell formats an xlsx export has made (XlsxWriter `Format`s)."""

    day: Any
    moment: Any
    moment_ms: Any


XlsxWrite = Callable[[int, int, str], Any]


@dataclass
class ColumnRead:
    """A column read into a field: per cell the JSON fragment (null: empty), whether the value is
    bad (does not fit), and the display text (null: empty)."""

    fragments: pl.Series
    bad: pl.Series
    display: pl.Series


def check_text(value: str) -> str:
    if problem := text_problem(value):
        raise CellError(problem)
    if len(value) > MAX_CELL_CHARS:
        raise CellError(f"is longer than {MAX_CELL_CHARS:,} characters")
    return value


# Every `field_stats` column a computation sets (the base values: nothing counted yet).
EMPTY_STATS: dict[str, Any] = {
    "non_empty": 0, "num_sum": None, "num_min": None, "num_max": None, "num_scale": None,
    "text_min": None, "text_max": None, "true_count": 0, "false_count": 0,
    "unique_count": None, "top_values": None, "invalid_count": 0, "invalid_cells": None,
}  # fmt: skip


class Accumulator:
    """Statistics of one field over the chunks of an upload (Polars), equal to what the SQL
    recomputation gives. The base counts values; kinds add their own."""

    def __init__(self) -> None:
        self.non_empty = 0

    def add(self, display: pl.Series) -> None:
        """Add a chunk: the display text of each cell (null = empty)."""
        values = display.drop_nulls()
        if values.len():
            self.non_empty += values.len()
            self._add(values)

    def _add(self, values: pl.Series) -> None:
        pass

    def result(self) -> dict[str, Any]:
        """Every `field_stats` column."""
        return {**EMPTY_STATS, "non_empty": self.non_empty}

    def increments(self) -> dict[str, Any] | None:
        """What an append adds to an existing field's statistics; None: they need a recount."""
        return {"count": self.non_empty}


class Kind(ABC):
    """One field type. Subclasses set the class attributes and implement the abstract methods;
    the defaults here are what most types share (jsonb equality, counts, text export)."""

    name: ClassVar[FieldType]
    json_name: ClassVar[str]  # the JSON type clients see, for messages
    filter_ops: ClassVar[tuple[FilterOp, ...]] = EVERY_TYPE_OPS
    aggregations: ClassVar[tuple[Aggregation, ...]] = COUNTS
    statistics: ClassVar[tuple[Statistic, ...]] = ()  # beyond `aggregations`, for queries
    textual: ClassVar[bool] = False
    date_groupings: ClassVar[bool] = False  # a widget may group its values by day, week, …

    def __repr__(self) -> str:
        return f"<kind {self.name}>"

    # ------------------------------------------------------------------------- one value

    def parse(self, value: Any, *, date_order: DateOrder | None = None) -> Stored | None:
        """The stored form of a client value, None for an empty cell; CellError if it does not
        fit. `date_order` (dates): the day/month order a column decided."""
        if value is None:
            return None
        return self._parse(value, date_order)

    @abstractmethod
    def _parse(self, value: Any, date_order: DateOrder | None) -> Stored | None: ...

    def display(self, stored: Stored) -> str:
        """The value as shown to people (and as search, top values and CSV see it)."""
        assert isinstance(stored, str)
        return stored

    def json_fragment(self, stored: Stored) -> str:
        """The stored value as JSON text (for building row documents)."""
        return json.dumps(stored, ensure_ascii=False)

    def column_order(self, shown: Sequence[str]) -> DateOrder | None:
        """The reading a whole field's values (as shown) decide for a type change into this
        type (dates: the day/month order that fits every value); None when there is none."""
        return None

    def convert(
        self, old: object, shown: str, *, date_order: DateOrder | None = None
    ) -> Stored | None:
        """A field's stored value (`old`, of its old type; `shown` as text) in this type, for a
        type change; CellError when it does not convert. `date_order`: the order that fits every
        value of the field."""
        return self.parse(shown, date_order=date_order)

    @abstractmethod
    def from_stored(self, raw: Any) -> Stored:
        """A value read back from a row document (json.loads with parse_float=Decimal);
        CellError (or ValueError/TypeError) when it does not fit the type."""

    # -------------------------------------------------------------------------- a column

    def candidates(self, delimiter: str | None) -> tuple[str, ...]:
        """The readings inference tries for this type (e.g. `dmy`), in precedence order."""
        return ()

    def fits(self, t: pl.Series, candidate: str) -> pl.Series:
        """Inference: where each trimmed value reads as the type under `candidate`."""
        raise NotImplementedError

    def read_column(self, column: pl.Series, plan: ReadingPlan) -> ColumnRead:
        """A String column's cells written into a field of this type."""
        v = values_of(column)
        ok, text = self.read_values(v, plan)  # text is null where not ok
        bad = (v.is_not_null() & ~ok).fill_null(False)
        return ColumnRead(self.fragments(text), bad, text)

    def read_values(self, v: pl.Series, plan: ReadingPlan) -> tuple[pl.Series, pl.Series]:
        """(ok, canonical text) of values (``vector.values_of``) written into a field of this
        type; the text is null where not ok."""
        raise NotImplementedError

    def fragments(self, text: pl.Series) -> pl.Series:
        """JSON fragments of canonical texts (numbers and booleans are their own JSON)."""
        return text

    def typed_cells(self, column: pl.Series) -> pl.Series | None:
        """Canonical text of a workbook's typed column when this is its natural type (numbers:
        decimal, booleans: boolean, dates: date); None when it is not."""
        return None

    # -------------------------------------------------------------------------------- SQL

    def valid(self, cell: Cell) -> ColumnElement[bool]:
        """A stored value fits the type (one that does not is left out and counted invalid)."""
        return cell.is_json("string")

    def value(self, cell: Cell) -> ColumnElement[Any]:
        """The cell as a typed SQL value for aggregates, NULL when it does not fit (never an
        error: a statement must not fail on a value left by an old race or a bug)."""
        return by_code_point(cell.text)

    def sort_key(self, cell: Cell) -> ColumnElement[Any]:
        """The cell as a value that orders the way the type does (empty: NULL)."""
        return by_code_point(cell.text)

    def group_key(
        self, cell: Cell, grouping: DateGrouping, still: ColumnElement[bool]
    ) -> ColumnElement[Any]:
        """A widget's group of the cell (its label). `still`: the field still has the type the
        widget was checked against (for casts that a value of another type would fail)."""
        return self.sort_key(cell)

    def condition(self, op: FilterOp, cell: Cell, values: Sequence[Stored]) -> ColumnElement[bool]:
        """The SQL of one filter condition (`op` is one of `filter_ops`; values parsed)."""
        if op is FilterOp.IS_EMPTY:
            return not_(cell.present)
        if op is FilterOp.NOT_EMPTY:
            return cell.present
        if op is FilterOp.IN:
            fragments = literal([self.json_fragment(v) for v in values], ARRAY(Text))
            return cell.json == func.any(cast(fragments, ARRAY(JSONB)))
        fragment = cast(literal(self.json_fragment(values[0]), Text), JSONB)
        if op is FilterOp.EQ:
            return cell.json == fragment
        if op is FilterOp.NE:
            return cell.json.is_distinct_from(fragment)
        raise ValueError(f"{op} does not apply to {self.name}")

    def aggregate(self, aggregation: Measure, cell: Cell) -> list[ColumnElement[Any]]:
        """The SQL aggregates a widget series or a query's aggregation needs (one or more
        columns)."""
        if aggregation is Aggregation.COUNT:
            return [func.count(cell.json)]
        if aggregation is Aggregation.DISTINCT_COUNT:
            return [func.count(cell.json.distinct())]
        if aggregation in (Aggregation.MIN, Aggregation.MAX):
            return [getattr(func, aggregation.value)(self.value(cell))]
        raise ValueError(f"{aggregation} does not apply to {self.name}")

    def aggregate_order(
        self, aggregation: Measure, columns: Sequence[ColumnElement[Any]]
    ) -> ColumnElement[Any]:
        """What groups are sorted by for this series, over its aggregate columns."""
        return columns[0]

    def finish(self, aggregation: Measure, raw: Sequence[Any]) -> Any:
        """The data point from the aggregate columns' values."""
        if aggregation in COUNTS:
            return int(raw[0] or 0)
        return raw[0]

    # ------------------------------------------------------------------------- statistics

    def increments(self, values: Sequence[Stored]) -> dict[str, Any] | None:
        """What added values change in the field's statistics (`StatsRepository.add_values`
        arguments); None when they must be recounted (marked stale) instead."""
        return None

    def accumulator(self, *, counts: bool = True) -> Accumulator:
        """Statistics of an upload's column, chunk by chunk (Polars). `counts`: char/text count
        each distinct value (an append into an existing field recounts afterwards instead)."""
        return Accumulator()

    def stats_value(self, cell: Cell) -> ColumnElement[Any]:
        """The value the SQL recomputation aggregates: typed, NULL where it does not fit."""
        return self.value(cell)

    def stats_aggregates(self, v: ColumnElement[Any]) -> dict[str, ColumnElement[Any]]:
        """`field_stats` columns as aggregates over `stats_value` (`v`) of every present cell;
        `invalid_count` counts the cells whose `v` is NULL."""
        return {"non_empty": func.count(v), "invalid_count": func.count() - func.count(v)}

    def summary(self, stats: Mapping[str, Any], non_empty: int) -> dict[str, Any]:
        """The type's part of a field summary, from its `field_stats` row."""
        return {}

    # ----------------------------------------------------------------------------- export

    def export_text(self, cell: Cell, *, escape_formulas: bool) -> ColumnElement[str]:
        """The cell as CSV text (the stored value as shown)."""
        return cell.text

    def xlsx_writer(self, sheet: Any, styles: XlsxStyles, *, as_text: bool) -> XlsxWrite:
        """How a cell (its stored text) is written into an xlsx sheet: by default as text."""

        def text(row: int, col: int, value: str) -> Any:
            return sheet.write_string(row, col, value)

        return text

    def excel_text_needed(self, cell: Cell) -> ColumnElement[bool] | None:
        """An aggregate: the column holds a value an Excel cell of the type cannot give back
        exactly, so it is written as text whole (None: never)."""
        return None
