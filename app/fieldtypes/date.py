"""date: a calendar day, or a moment (UTC), stored as ISO text `YYYY-MM-DD[THH:MM:SS[.ffffff]]`
so that text order is chronological. Read in four families (see `grammar`): year-first,
day-first, month-first, month names. One value at a time (the API) a day/month value is taken
only when one reading is a real date or both readings are the same day (`13/01/2026`,
`1/13/2026`, `05/05/2026`); `03/01/2026` is refused as ambiguous. A column (uploads) decides
the order for all its values."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import polars as pl
from sqlalchemy import ColumnElement, and_, case, func, or_

from app.fieldtypes.base import (
    COUNTS,
    EVERY_TYPE_OPS,
    ORDERED_OPS,
    Accumulator,
    Aggregation,
    CellError,
    DateGrouping,
    FieldType,
    FilterOp,
    Kind,
    ReadingPlan,
    Stored,
    XlsxStyles,
    XlsxWrite,
)
from app.fieldtypes.date_sql import bucket, compare, excel_text_needed
from app.fieldtypes.date_vector import DateReading, datetime_texts
from app.fieldtypes.grammar import (
    DATE_ORDERS,
    DM_RE,
    MAX_OFFSET_HOURS,
    MAX_OFFSET_MINUTES,
    MONTH_NUMBERS,
    NAMED_DF_RE,
    NAMED_MF_RE,
    YMD_RE,
    DateOrder,
    is_missing,
    trim,
)
from app.fieldtypes.sql import Cell, by_code_point
from app.fieldtypes.vector import keep, quoted

_YMD, _DM = re.compile(YMD_RE), re.compile(DM_RE)
_NAMED = (re.compile(NAMED_MF_RE), re.compile(NAMED_DF_RE))
# the stored forms (a value that does not match is not a date of this service)
CANONICAL_RE = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}(T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]{1,6})?)?$"
_CANONICAL = re.compile(CANONICAL_RE)


def datetime_text(moment: dt.datetime) -> str:
    """`YYYY-MM-DDTHH:MM:SS` (+ fraction without trailing zeros when there is one)."""
    text = (
        f"{moment.year:04d}-{moment.month:02d}-{moment.day:02d}"
        f"T{moment.hour:02d}:{moment.minute:02d}:{moment.second:02d}"
    )
    if moment.microsecond:
        text += "." + f"{moment.microsecond:06d}".rstrip("0")
    return text


def _moment(year: int, month: int, day: int, m: re.Match[str]) -> dt.datetime | dt.date | None:
    """The date (and time of `m`'s groups H M S F), or None if there is no such day or time."""
    try:
        date = dt.date(year, month, day)
        if m.group("H") is None:
            return date
        micro = int((m.group("F") or "0").ljust(6, "0"))
        clock = dt.time(int(m.group("H")), int(m.group("M")), int(m.group("S") or 0), micro)
    except ValueError:
        return None
    return dt.datetime.combine(date, clock)


def _text(moment: dt.datetime | dt.date | None) -> str | None:
    if moment is None:
        return None
    return datetime_text(moment) if isinstance(moment, dt.datetime) else moment.isoformat()


def _in_utc(moment: dt.datetime, offset: str) -> dt.datetime | None:
    if offset in ("Z", "z"):
        return moment
    digits = offset[1:].replace(":", "")
    hours, minutes = int(digits[:2]), int(digits[2:])
    if hours > MAX_OFFSET_HOURS or minutes > MAX_OFFSET_MINUTES:
        return None
    delta = dt.timedelta(hours=hours, minutes=minutes)
    try:
        return moment - delta if offset[0] == "+" else moment + delta
    except OverflowError:  # before year 1 or after 9999
        return None


def date_readings(text: str) -> dict[DateOrder, str]:
    """Every reading of `text` as a date, by family: `ymd`, `dmy`, `mdy`, `named`. Empty when
    it is not a date in any of them."""
    s = trim(text)
    if m := _YMD.fullmatch(s):
        if m.group("s1") != m.group("s2"):
            return {}
        moment = _moment(int(m.group("y")), int(m.group("m")), int(m.group("d")), m)
        if isinstance(moment, dt.datetime) and m.group("Z"):
            moment = _in_utc(moment, m.group("Z"))
        value = _text(moment)
        return {"ymd": value} if value else {}
    if m := _DM.fullmatch(s):
        if m.group("s1") != m.group("s2"):
            return {}
        first, second, year = int(m.group("a")), int(m.group("b")), int(m.group("y"))
        readings: dict[DateOrder, str | None] = {
            "dmy": _text(_moment(year, second, first, m)),
            "mdy": _text(_moment(year, first, second, m)),
        }
        return {k: v for k, v in readings.items() if v is not None}
    for pattern in _NAMED:
        if m := pattern.fullmatch(s):
            month = MONTH_NUMBERS.get(m.group("n").lower())
            if month is None:
                return {}
            try:
                value = dt.date(int(m.group("y")), month, int(m.group("d"))).isoformat()
            except ValueError:
                return {}
            return {"named": value}
    return {}


def parse_date_text(text: str, order: DateOrder | None = None) -> str:
    readings = date_readings(text)
    if not readings:
        raise CellError("is not a date (use YYYY-MM-DD)")
    if order is not None and order in readings:
        return readings[order]
    values = set(readings.values())
    if len(values) > 1:
        raise CellError("is ambiguous: it reads as both day/month and month/day (use YYYY-MM-DD)")
    return values.pop()


def column_date_order(values: Sequence[str]) -> DateOrder | None:
    """The day/month order that fits every value (None if both or neither do)."""
    orders: set[DateOrder] = {"dmy", "mdy"}
    seen = False
    for value in values:
        readings = date_readings(value)
        if "dmy" in readings or "mdy" in readings:
            seen = True
            orders &= {o for o in ("dmy", "mdy") if o in readings}
    return next(iter(orders)) if seen and len(orders) == 1 else None


class _Span(Accumulator):
    def __init__(self) -> None:
        super().__init__()
        self.text_min: str | None = None
        self.text_max: str | None = None

    def _add(self, values: pl.Series) -> None:
        low, high = values.min(), values.max()
        assert isinstance(low, str)
        assert isinstance(high, str)
        self.text_min = low if self.text_min is None else min(self.text_min, low)
        self.text_max = high if self.text_max is None else max(self.text_max, high)

    def result(self) -> dict[str, Any]:
        return {**super().result(), "text_min": self.text_min, "text_max": self.text_max}

    def increments(self) -> dict[str, Any] | None:
        return {"count": self.non_empty, "text_min": self.text_min, "text_max": self.text_max}


class DateKind(Kind):
    name = FieldType.DATE
    json_name: ClassVar[str] = "date string"
    filter_ops: ClassVar[tuple[FilterOp, ...]] = (*EVERY_TYPE_OPS, *ORDERED_OPS)
    aggregations: ClassVar[tuple[Aggregation, ...]] = (*COUNTS, Aggregation.MIN, Aggregation.MAX)
    date_groupings: ClassVar[bool] = True

    def _parse(self, value: Any, date_order: DateOrder | None) -> Stored | None:
        if isinstance(value, dt.datetime):
            return datetime_text(value) if value.time() != dt.time() else value.date().isoformat()
        if isinstance(value, dt.date):
            return value.isoformat()
        if not isinstance(value, str):
            raise CellError("must be a date string such as 2026-01-15")
        return None if is_missing(value) else parse_date_text(value, date_order)

    def column_order(self, shown: Sequence[str]) -> DateOrder | None:
        return column_date_order(shown)

    def from_stored(self, raw: Any) -> Stored:
        if not isinstance(raw, str) or not _CANONICAL.fullmatch(raw):
            raise CellError("is not a date")
        return raw

    # ------------------------------------------------------------------------------ columns

    def candidates(self, delimiter: str | None) -> tuple[str, ...]:
        return DATE_ORDERS

    def fits(self, t: pl.Series, candidate: str) -> pl.Series:
        return DateReading(t, candidate, with_text=False).ok

    def read_values(self, v: pl.Series, plan: ReadingPlan) -> tuple[pl.Series, pl.Series]:
        order = plan.date_order or "ymd"
        reading = DateReading(v, order)
        if plan.ambiguous_bad and order in ("dmy", "mdy"):
            # a value the other order reads as another day is not guessed
            other = DateReading(v, "mdy" if order == "dmy" else "dmy", with_text=False).ok
            ok = reading.ok & ~(other & DateReading.differs(v).fill_null(False))
            return ok, keep(reading.text, ok)
        return reading.ok, reading.text

    def fragments(self, text: pl.Series) -> pl.Series:
        return quoted(text)

    def typed_cells(self, column: pl.Series) -> pl.Series | None:
        return datetime_texts(column) if column.dtype in (pl.Date, pl.Datetime) else None

    # ---------------------------------------------------------------------------------- SQL

    def valid(self, cell: Cell) -> ColumnElement[bool]:
        return and_(cell.is_json("string"), cell.text.regexp_match(CANONICAL_RE))

    def condition(self, op: FilterOp, cell: Cell, values: Sequence[Stored]) -> ColumnElement[bool]:
        if op is FilterOp.IN:
            return or_(*(compare(cell, FilterOp.EQ, str(v)) for v in values))
        if op in (FilterOp.EQ, FilterOp.NE, *ORDERED_OPS):
            return compare(cell, op, str(values[0]))
        return super().condition(op, cell, values)

    def group_key(
        self, cell: Cell, grouping: DateGrouping, still: ColumnElement[bool]
    ) -> ColumnElement[Any]:
        if grouping is DateGrouping.NONE:
            return self.sort_key(cell)
        return bucket(cell, grouping, still)

    # --------------------------------------------------------------------------- statistics

    def increments(self, values: Sequence[Stored]) -> dict[str, Any] | None:
        texts = [v for v in values if isinstance(v, str)]
        return {"count": len(texts), "text_min": min(texts), "text_max": max(texts)}

    def accumulator(self, *, counts: bool = True) -> Accumulator:
        return _Span()

    def stats_value(self, cell: Cell) -> ColumnElement[Any]:
        return case((self.valid(cell), cell.text))

    def stats_aggregates(self, v: ColumnElement[Any]) -> dict[str, ColumnElement[Any]]:
        return {
            **super().stats_aggregates(v),
            "text_min": func.min(by_code_point(v)),
            "text_max": func.max(by_code_point(v)),
        }

    def summary(self, stats: Mapping[str, Any], non_empty: int) -> dict[str, Any]:
        return {
            "min_date": stats["text_min"] if non_empty else None,
            "max_date": stats["text_max"] if non_empty else None,
        }

    # ------------------------------------------------------------------------------- export

    def xlsx_writer(self, sheet: Any, styles: XlsxStyles, *, as_text: bool) -> XlsxWrite:
        if as_text:
            return super().xlsx_writer(sheet, styles, as_text=True)

        def date(row: int, col: int, value: str) -> Any:
            try:
                if len(value) == 10:
                    day = dt.date.fromisoformat(value)
                    return sheet.write_datetime(row, col, day, styles.day)
                moment = dt.datetime.fromisoformat(value)
            except ValueError:  # a stored value that does not fit: the text it is
                return sheet.write_string(row, col, value)
            fmt = styles.moment_ms if moment.microsecond else styles.moment
            return sheet.write_datetime(row, col, moment, fmt)

        return date

    def excel_text_needed(self, cell: Cell) -> ColumnElement[bool] | None:
        return excel_text_needed(cell)
