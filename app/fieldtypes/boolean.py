"""boolean: true/false, yes/no, t/f, y/n in any case, and 1/0 (JSON true/false, 1/0 through the
API). Inference counts 1/0 only among the words: a column of only 0/1 is decimal."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import Any, ClassVar

import polars as pl
from sqlalchemy import Boolean, ColumnElement, case, cast, func

from app.fieldtypes.base import (
    Accumulator,
    CellError,
    FieldType,
    Kind,
    ReadingPlan,
    Stored,
    XlsxStyles,
    XlsxWrite,
)
from app.fieldtypes.grammar import FALSE_SPELLINGS, TRUE_SPELLINGS, DateOrder, is_missing, trim
from app.fieldtypes.sql import Cell
from app.fieldtypes.vector import evaluate

_TRUE, _FALSE = frozenset(TRUE_SPELLINGS), frozenset(FALSE_SPELLINGS)
CANDIDATE = "boolean"


def boolean_values(v: pl.Series) -> pl.Series:
    """True/False for a boolean word (any case) or 1/0, null otherwise."""
    expr = pl.when(pl.col("v").is_in(TRUE_SPELLINGS)).then(pl.lit(True))
    return evaluate(v, expr.when(pl.col("v").is_in(FALSE_SPELLINGS)).then(pl.lit(False)))


def _texts(values: pl.Series) -> pl.Series:
    return values.replace_strict({True: "true", False: "false"}, return_dtype=pl.String)


class _TrueFalse(Accumulator):
    def __init__(self) -> None:
        super().__init__()
        self.true_count = 0

    def _add(self, values: pl.Series) -> None:
        self.true_count += int((values == "true").sum())

    def result(self) -> dict[str, Any]:
        trues, falses = self.true_count, self.non_empty - self.true_count
        return {**super().result(), "true_count": trues, "false_count": falses}

    def increments(self) -> dict[str, Any] | None:
        trues = self.true_count
        return {"count": self.non_empty, "true_count": trues, "false_count": self.non_empty - trues}


class BooleanKind(Kind):
    name = FieldType.BOOLEAN
    json_name: ClassVar[str] = "boolean"

    def _parse(self, value: Any, date_order: DateOrder | None) -> Stored | None:
        if isinstance(value, bool):
            return value
        if isinstance(value, (int, Decimal)) and value in (0, 1):
            return bool(value)
        if isinstance(value, str):
            if is_missing(value):
                return None
            word = trim(value)
            if word in _TRUE:
                return True
            if word in _FALSE:
                return False
            raise CellError("is not a boolean (use true/false, yes/no, 1/0)")
        raise CellError("must be true or false")

    def display(self, stored: Stored) -> str:
        return "true" if stored else "false"

    def json_fragment(self, stored: Stored) -> str:
        return "true" if stored else "false"

    def from_stored(self, raw: Any) -> Stored:
        if not isinstance(raw, bool):
            raise CellError("is not a boolean")
        return raw

    # ------------------------------------------------------------------------------ columns

    def candidates(self, delimiter: str | None) -> tuple[str, ...]:
        return (CANDIDATE,)

    def fits(self, t: pl.Series, candidate: str) -> pl.Series:
        return boolean_values(t).is_not_null()

    def read_values(self, v: pl.Series, plan: ReadingPlan) -> tuple[pl.Series, pl.Series]:
        values = boolean_values(v)
        return values.is_not_null(), _texts(values)

    def typed_cells(self, column: pl.Series) -> pl.Series | None:
        return _texts(column) if column.dtype == pl.Boolean else None

    # ---------------------------------------------------------------------------------- SQL

    def valid(self, cell: Cell) -> ColumnElement[bool]:
        return cell.is_json("boolean")

    def value(self, cell: Cell) -> ColumnElement[Any]:
        return case((self.valid(cell), cast(cell.json, Boolean)))

    def sort_key(self, cell: Cell) -> ColumnElement[Any]:
        return self.value(cell)

    # --------------------------------------------------------------------------- statistics

    def increments(self, values: Sequence[Stored]) -> dict[str, Any] | None:
        trues = sum(1 for v in values if v is True)
        return {"count": len(values), "true_count": trues, "false_count": len(values) - trues}

    def accumulator(self, *, counts: bool = True) -> Accumulator:
        return _TrueFalse()

    def stats_aggregates(self, v: ColumnElement[Any]) -> dict[str, ColumnElement[Any]]:
        return {
            **super().stats_aggregates(v),
            "true_count": func.count().filter(v.is_(True)),
            "false_count": func.count().filter(v.is_(False)),
        }

    def summary(self, stats: Mapping[str, Any], non_empty: int) -> dict[str, Any]:
        return {"true_count": int(stats["true_count"]), "false_count": int(stats["false_count"])}

    # ------------------------------------------------------------------------------- export

    def xlsx_writer(self, sheet: Any, styles: XlsxStyles, *, as_text: bool) -> XlsxWrite:
        def boolean(row: int, col: int, value: str) -> Any:
            # a stored value that does not fit is exported as the text it is
            if value in ("true", "false"):
                return sheet.write_boolean(row, col, value == "true")
            return sheet.write_string(row, col, value)

        return boolean
