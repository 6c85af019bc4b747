"""decimal: exact numbers, never through a float. Stored as a canonical JSON number (`45200.50`
-> 45200.5, `1e3` -> 1000), at most 200 characters in plain notation. Into a decimal field `007`
is 7; only inference reads a leading zero as a code (the column stays text)."""

from __future__ import annotations

import operator
import re
from collections.abc import Mapping, Sequence
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation, localcontext
from typing import Any, ClassVar

import polars as pl
from sqlalchemy import ColumnElement, Numeric, case, cast, func, literal

from app.fieldtypes.base import (
    EVERY_TYPE_OPS,
    ORDERED_OPS,
    Accumulator,
    Aggregation,
    CellError,
    FieldType,
    FilterOp,
    Kind,
    Measure,
    ReadingPlan,
    Statistic,
    Stored,
    XlsxStyles,
    XlsxWrite,
)
from app.fieldtypes.decimal_vector import canonical_decimals, decimal_ok, float_texts
from app.fieldtypes.grammar import (
    DECIMAL_RE,
    EXPONENT_BOUND,
    MAX_DECIMAL_CHARS,
    DateOrder,
    is_missing,
    trim,
)
from app.fieldtypes.sql import Cell
from app.fieldtypes.vector import keep

POINT, COMMA = "decimal", "decimal comma"  # inference's two candidate styles
EXCEL_DIGITS = 15  # Excel's precision
_DECIMAL = re.compile(DECIMAL_RE)
_POLARS_DIGITS = 38  # Polars' Decimal128; beyond it, Python's Decimal does the sum
_ORDER_SQL = {
    FilterOp.GT: operator.gt,
    FilterOp.GTE: operator.ge,
    FilterOp.LT: operator.lt,
    FilterOp.LTE: operator.le,
}


def canonical_decimal(value: Decimal) -> Decimal:
    """The stored form: exact, normalised (no trailing zeros, no exponent in its text)."""
    if not value.is_finite():
        raise CellError("is not a finite number")
    if value.is_zero():
        return Decimal(0)
    if abs(value.adjusted()) > MAX_DECIMAL_CHARS:  # before normalize(): 1e999999999 overflows
        raise CellError(f"has more than {MAX_DECIMAL_CHARS} digits")
    digits = len(value.as_tuple().digits)
    if digits > MAX_DECIMAL_CHARS:
        raise CellError(f"has more than {MAX_DECIMAL_CHARS} digits")
    with localcontext() as ctx:
        ctx.prec = MAX_DECIMAL_CHARS + 10  # normalize() must never round
        value = value.normalize()
    if len(format(value, "f")) > MAX_DECIMAL_CHARS:
        raise CellError(f"has more than {MAX_DECIMAL_CHARS} digits")
    return value


def decimal_text(value: Decimal) -> str:
    """Plain-notation text of a canonical decimal: `45200.5`, `1000`, `0.0015`."""
    return "0" if value.is_zero() else format(value, "f")


def decimal_scale(value: Decimal) -> int:
    exponent = value.as_tuple().exponent
    return -exponent if isinstance(exponent, int) and exponent < 0 else 0


def parse_decimal_text(text: str) -> Decimal:
    s = trim(text)
    if not (m := _DECIMAL.fullmatch(s)):
        raise CellError("is not a number")
    exponent = (m.group("exp") or "").lstrip("+-").lstrip("0")
    if len(exponent) > len(str(EXPONENT_BOUND)):  # past what Decimal() takes: 0, or too long
        if not any(c in "123456789" for c in s[: m.start("exp")]):
            return Decimal(0)
        raise CellError(f"has more than {MAX_DECIMAL_CHARS} digits")
    try:
        return canonical_decimal(Decimal(s.replace(",", "")))
    except InvalidOperation:
        raise CellError("is not a number") from None


def exact_sum(values: Sequence[Decimal]) -> Decimal:
    with localcontext() as ctx:
        ctx.prec = 1_000  # never round: sums of 200-digit values stay exact
        return sum(values, Decimal(0))


def average(total: Decimal, count: int, scale: int | None) -> Decimal:
    """Exact mean rounded half-up to 2 places, or more when the values carry more."""
    places = max(2, scale or 0)
    with localcontext() as ctx:
        ctx.prec = len(total.as_tuple().digits) + places + 30
        return (total / count).quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_UP)


def midpoint(low: Decimal, high: Decimal) -> Decimal:
    """(low + high) / 2, exactly (halving adds at most one digit)."""
    lowest = min(int(low.as_tuple().exponent), int(high.as_tuple().exponent))
    with localcontext() as ctx:
        ctx.prec = max(28, max(low.adjusted(), high.adjusted()) - lowest + 3)
        return (low + high) / 2


def excel_number(text: str) -> float | None:
    """The float to write for a stored decimal, or None when Excel would not give it back."""
    try:
        value = Decimal(text)
    except InvalidOperation:
        return None
    if not value.is_finite() or len(value.normalize().as_tuple().digits) > EXCEL_DIGITS:
        return None
    number = float(value)
    written = float(f"{number:.16G}")  # what XlsxWriter puts in the file
    return number if Decimal(repr(written)) == value else None


def _exact_decimals(display: pl.Series) -> tuple[Decimal, Decimal, Decimal, int]:
    """(sum, min, max, scale) of canonical decimal texts, exactly."""
    # canonical texts are ASCII `-?digits(.digits)?`: byte positions are character positions
    length = display.str.len_bytes().cast(pl.Int64)
    point = display.str.find(".", literal=True).cast(pl.Int64)
    scale = int((length - point - 1).fill_null(0).max() or 0)  # type: ignore[arg-type]
    whole = point.fill_null(length) - display.str.starts_with("-").cast(pl.Int64)
    int_digits = int(whole.max() or 1)  # type: ignore[arg-type]
    headroom = len(str(display.len())) + 1
    if int_digits + scale + headroom <= _POLARS_DIGITS:
        values = display.cast(pl.Decimal(_POLARS_DIGITS, scale))
        total, low, high = values.sum(), values.min(), values.max()
        assert isinstance(total, Decimal)
        assert isinstance(low, Decimal)
        assert isinstance(high, Decimal)
        with localcontext() as ctx:
            ctx.prec = _POLARS_DIGITS  # (the default 28 would round a 30-digit sum)
            return total.normalize(), low.normalize(), high.normalize(), scale
    numbers = [Decimal(v) for v in display.to_list()]
    return exact_sum(numbers), min(numbers), max(numbers), scale


class _Numbers(Accumulator):
    def __init__(self) -> None:
        super().__init__()
        self.num_sum: Decimal | None = None
        self.num_min: Decimal | None = None
        self.num_max: Decimal | None = None
        self.num_scale: int | None = None

    def _add(self, values: pl.Series) -> None:
        total, low, high, scale = _exact_decimals(values)
        self.num_sum = total if self.num_sum is None else exact_sum([self.num_sum, total])
        self.num_min = low if self.num_min is None else min(self.num_min, low)
        self.num_max = high if self.num_max is None else max(self.num_max, high)
        self.num_scale = scale if self.num_scale is None else max(self.num_scale, scale)

    def _numbers(self) -> dict[str, Any]:
        return {
            "num_sum": self.num_sum, "num_min": self.num_min, "num_max": self.num_max,
            "num_scale": self.num_scale,
        }  # fmt: skip

    def result(self) -> dict[str, Any]:
        return {**super().result(), **self._numbers()}

    def increments(self) -> dict[str, Any] | None:
        return {"count": self.non_empty, **self._numbers()}


class DecimalKind(Kind):
    name = FieldType.DECIMAL
    json_name: ClassVar[str] = "number"
    filter_ops: ClassVar[tuple[FilterOp, ...]] = (*EVERY_TYPE_OPS, *ORDERED_OPS)
    aggregations: ClassVar[tuple[Aggregation, ...]] = tuple(Aggregation)
    statistics: ClassVar[tuple[Statistic, ...]] = (Statistic.MEDIAN,)

    def _parse(self, value: Any, date_order: DateOrder | None) -> Stored | None:
        if isinstance(value, bool):
            raise CellError("is a boolean, not a number")
        if isinstance(value, int):
            return canonical_decimal(Decimal(value))
        if isinstance(value, Decimal):
            return canonical_decimal(value)
        if isinstance(value, float):
            return canonical_decimal(Decimal(repr(value)))
        if isinstance(value, str):
            return None if is_missing(value) else parse_decimal_text(value)
        raise CellError("must be a number")

    def display(self, stored: Stored) -> str:
        assert isinstance(stored, Decimal)
        return decimal_text(stored)

    def json_fragment(self, stored: Stored) -> str:
        assert isinstance(stored, Decimal)
        return decimal_text(stored)

    def convert(
        self, old: object, shown: str, *, date_order: DateOrder | None = None
    ) -> Stored | None:
        if isinstance(old, bool):  # from a boolean field: true is 1, false is 0
            return Decimal(int(old))
        return super().convert(old, shown, date_order=date_order)

    def from_stored(self, raw: Any) -> Stored:
        if isinstance(raw, bool) or not isinstance(raw, (int, Decimal)):
            raise CellError("is not a number")
        return canonical_decimal(Decimal(raw))

    # ------------------------------------------------------------------------------ columns

    def candidates(self, delimiter: str | None) -> tuple[str, ...]:
        return (POINT, COMMA) if delimiter == ";" else (POINT,)

    def fits(self, t: pl.Series, candidate: str) -> pl.Series:
        return decimal_ok(t, comma=candidate == COMMA, leading_zeros=False).fill_null(False)

    def read_values(self, v: pl.Series, plan: ReadingPlan) -> tuple[pl.Series, pl.Series]:
        comma = plan.decimal_comma
        ok = decimal_ok(v, comma=comma).fill_null(False)
        if plan.ambiguous_bad:  # a value the other style reads differently is not guessed
            other = decimal_ok(v, comma=not comma).fill_null(False)
            ok = ok & ~(other & v.str.contains_any([".", ","]).fill_null(False))
        return ok, canonical_decimals(keep(v, ok), comma=comma)

    def typed_cells(self, column: pl.Series) -> pl.Series | None:
        if column.dtype.is_float():
            return float_texts(column)
        return column.cast(pl.String) if column.dtype.is_integer() else None

    # ---------------------------------------------------------------------------------- SQL

    def valid(self, cell: Cell) -> ColumnElement[bool]:
        return cell.is_json("number")

    def value(self, cell: Cell) -> ColumnElement[Any]:
        return case((self.valid(cell), cast(cell.json, Numeric)))

    def sort_key(self, cell: Cell) -> ColumnElement[Any]:
        return self.value(cell)

    def condition(self, op: FilterOp, cell: Cell, values: Sequence[Stored]) -> ColumnElement[bool]:
        if op in _ORDER_SQL:
            bound = cast(literal(values[0], Numeric), Numeric)
            result: ColumnElement[bool] = _ORDER_SQL[op](self.value(cell), bound)
            return result
        return super().condition(op, cell, values)

    def aggregate(self, aggregation: Measure, cell: Cell) -> list[ColumnElement[Any]]:
        n = self.value(cell)
        if aggregation is Aggregation.SUM:
            return [func.sum(n)]
        if aggregation is Aggregation.AVG:
            return [func.sum(n), func.count(n), func.max(func.scale(n))]
        if aggregation is Statistic.MEDIAN:
            # The two middle values (the same one for an odd count), exact numerics: the lower
            # median ascending and descending. percentile_cont would work in floats.
            half = literal(0.5)
            return [
                func.percentile_disc(half).within_group(n.asc()),
                func.percentile_disc(half).within_group(n.desc()),
            ]
        return super().aggregate(aggregation, cell)

    def aggregate_order(
        self, aggregation: Measure, columns: Sequence[ColumnElement[Any]]
    ) -> ColumnElement[Any]:
        if aggregation is Aggregation.AVG:
            return columns[0] / func.nullif(columns[1], 0)
        if aggregation is Statistic.MEDIAN:
            return columns[0] + columns[1]  # twice the median
        return columns[0]

    def finish(self, aggregation: Measure, raw: Sequence[Any]) -> Any:
        if aggregation is Aggregation.AVG:
            total, count, scale = raw
            if not count or total is None:
                return None
            return average(Decimal(total), int(count), scale)
        if aggregation is Statistic.MEDIAN:
            low, high = raw
            if low is None or high is None:
                return None
            return midpoint(Decimal(low), Decimal(high))
        return super().finish(aggregation, raw)

    # --------------------------------------------------------------------------- statistics

    def increments(self, values: Sequence[Stored]) -> dict[str, Any] | None:
        numbers = [v for v in values if isinstance(v, Decimal)]
        return {
            "count": len(numbers),
            "num_sum": exact_sum(numbers),
            "num_min": min(numbers),
            "num_max": max(numbers),
            "num_scale": max(decimal_scale(v) for v in numbers),
        }

    def accumulator(self, *, counts: bool = True) -> Accumulator:
        return _Numbers()

    def stats_aggregates(self, v: ColumnElement[Any]) -> dict[str, ColumnElement[Any]]:
        return {
            **super().stats_aggregates(v),
            "num_sum": func.sum(v),
            "num_min": func.min(v),
            "num_max": func.max(v),
            "num_scale": func.max(func.scale(v)),
        }

    def summary(self, stats: Mapping[str, Any], non_empty: int) -> dict[str, Any]:
        has = non_empty > 0 and stats["num_sum"] is not None
        total = Decimal(stats["num_sum"]) if has else None
        return {
            "min": stats["num_min"] if has else None,
            "max": stats["num_max"] if has else None,
            "sum": total,
            "avg": average(total, non_empty, stats["num_scale"]) if total is not None else None,
        }

    # ------------------------------------------------------------------------------- export

    def xlsx_writer(self, sheet: Any, styles: XlsxStyles, *, as_text: bool) -> XlsxWrite:
        def decimal(row: int, col: int, value: str) -> Any:
            number = excel_number(value)
            if number is None:  # past Excel's precision (or not a number): the exact text
                return sheet.write_string(row, col, value)
            return sheet.write_number(row, col, number)

        return decimal
