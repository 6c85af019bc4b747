"""Per-column type inference by elimination, and exact conversion to stored values.

The rules (the project's contract)
==================================

Missing markers
    Empty or whitespace-only cells and ``NA``, ``N/A``, ``NULL``, ``NaN``, ``#N/A`` (any case)
    and ``-`` decide nothing and become null in decimal/date/boolean columns. In char/text
    columns the markers are kept as text; only empty/whitespace-only cells are null there. A
    column with no non-missing value is char.

decimal
    Every value is a number: optional sign, digits, optional fraction, optional exponent
    (``1e5``, ``-2.5E-3``); thousands separators only in proper 3-digit groups
    (``1,234,567.89``). Never a value whose integer part has a leading zero: ``007``,
    ``02134``, ``-01``, ``00.5`` keep the column char (codes and ZIPs keep their zeros), while
    ``0``, ``0.5``, ``-0.25`` are fine. In a ``;``-delimited CSV a decimal comma is possible too
    (``1234,56``, ``1.234,56``); the style ("point" or "comma") is chosen by elimination, and if
    both survive and a value reads differently under them (``1.234``) the column is char, not a
    guess. Plain integers read the same under both: point. ``inf`` is not a number; ``NaN`` is
    missing. A value whose canonical form exceeds 200 characters is not a decimal.
boolean
    Every value is true/false, yes/no, t/f or y/n (any case). ``1``/``0`` count only when mixed
    with those words: a column of only ``0``/``1`` is decimal (decimal wins, see precedence).
date
    One reading must fit every value. Families: year-first (``2026-01-15``,
    ``2026-01-15T10:30``, ``2026-01-15 10:30:05.25+02:00``, ``2026/01/15``, ``2026.01.15``;
    dates and date-times may mix), day-first and month-first (``15/01/2026``, ``1.2.2026``,
    ``01-02-2026 10:30``: separators ``/ . -``, 1-2 digit day and month, 4-digit year, optional
    `` HH:MM[:SS]``), month names in English (``Jan 1 2000``, ``Jan 1, 2000``,
    ``January 1, 2000``, ``1 Jan 2000``, ``01-Jan-2000``, any case). Only real calendar dates
    (no 31 Feb, no 2-digit years). If day-first and month-first both fit every value and read
    one of them differently (``03/01/2026, 04/02/2026``) the column is char: no silent swap. One
    value with a day over 12 (``13/01/2026``) decides it.
text / char
    Otherwise text if a value is longer than 255 characters or contains a line break, else
    char.
Precedence
    decimal, then boolean, then date, then text/char.
Excel typed columns
    numeric cells are decimal, Boolean boolean, Date/Datetime date; String columns follow the
    rules above.

Staged for speed: the first 1,000 non-missing values of a column (within its first 10,000
rows) prune the candidate types cheaply; the survivors are then verified on *every* row, so a
bad value in the last row is always seen. Columns are processed in parallel threads (Polars
releases the GIL). What each value means (the grammar) and its canonical stored form belong to
the field types, ``app/fieldtypes``, which the API's one-value-at-a-time writes use too.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from typing import TypeVar

import polars as pl

from app.fieldtypes import INFERENCE_ORDER, FieldType, kind_of
from app.fieldtypes.base import ColumnRead
from app.fieldtypes.date_vector import DateReading
from app.fieldtypes.decimal import COMMA, POINT
from app.fieldtypes.grammar import DATE_ORDERS, LEADING_ZERO_RE, MAX_CHAR_LENGTH, DateOrder
from app.fieldtypes.vector import is_missing

__all__ = [
    "ColumnPlan",
    "Converted",
    "convert_column",
    "infer_columns",
    "plan_columns",
    "plan_for_type",
    "plan_new_columns",
]

_T = TypeVar("_T")
SAMPLE_ROWS = 10_000
SAMPLE_VALUES = 1_000

_DECIMAL, _DECIMAL_COMMA, _BOOLEAN = POINT, COMMA, "boolean"
_DATE_ORDERS = DATE_ORDERS
_DESCRIBE = {
    _DECIMAL: "a number",
    _DECIMAL_COMMA: "a number with a decimal comma",
    _BOOLEAN: "a yes/no value",
    "ymd": "a year-first date",
    "named": "a date with a month name",
    "dmy": "a day-first date",
    "mdy": "a month-first date",
}
# which type each inference candidate belongs to (e.g. "dmy": date)
_CANDIDATE_TYPE = {
    candidate: field_type
    for field_type in INFERENCE_ORDER
    for candidate in kind_of(field_type).candidates(";")
}
Converted = ColumnRead  # per cell: JSON fragment (or null), bad flag, display text


@dataclass(frozen=True)
class ColumnPlan:
    """How a column's cells become stored values.

    ``ambiguous_bad`` (for appends only): values that the competing day/month order or
    decimal style would read differently are reported as bad instead of guessed.
    """

    field_type: FieldType
    date_order: DateOrder | None = None  # date columns: ymd, dmy, mdy or named (month names)
    decimal_comma: bool = False  # decimal columns: "1.234,5" style (only in ;-files)
    reasons: str = ""  # short explanation, e.g. "leading zeros (e.g. '02134') keep it text"
    ambiguous_bad: bool = False


# ----------------------------------------------------------------------------- inference


def infer_columns(frame: pl.DataFrame, *, delimiter: str | None) -> list[ColumnPlan]:
    """One plan per column of ``frame`` (see the module docstring for the rules)."""
    return _per_column(lambda c: _infer_one(c, delimiter), frame.get_columns())


def plan_columns(
    columns: list[tuple[pl.Series, FieldType]], *, delimiter: str | None
) -> list[ColumnPlan]:
    """`plan_for_type` of each (column, field type), columns in parallel."""
    return _per_column(lambda ct: plan_for_type(ct[0], ct[1], delimiter=delimiter), columns)


def plan_new_columns(
    frame: pl.DataFrame,
    indexes: Sequence[int],
    types: Mapping[int, FieldType],
    *,
    delimiter: str | None,
    reason: str,
) -> list[ColumnPlan]:
    """Plans for new fields from the columns `indexes` of `frame`: inferred, or read as the
    type `types` sets for the column (its plan's `reasons` is `reason`), columns in parallel."""

    def one(index: int) -> ColumnPlan:
        column = frame.get_column(frame.columns[index])
        wanted = types.get(index)
        if wanted is None:
            return _infer_one(column, delimiter)
        return replace(plan_for_type(column, wanted, delimiter=delimiter), reasons=reason)

    return _per_column(one, list(indexes))


def _per_column(work: Callable[[_T], ColumnPlan], columns: list[_T]) -> list[ColumnPlan]:
    """Columns in parallel threads (Polars releases the GIL), results in order."""
    workers = max(1, min(len(columns), os.cpu_count() or 1))
    if workers == 1:
        return [work(c) for c in columns]
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="infer") as pool:
        return list(pool.map(work, columns))


def _infer_one(column: pl.Series, delimiter: str | None) -> ColumnPlan:
    dtype = column.dtype
    if dtype.is_numeric():
        return ColumnPlan(FieldType.DECIMAL, reasons="numeric cells")
    if dtype == pl.Boolean:
        return ColumnPlan(FieldType.BOOLEAN, reasons="boolean cells")
    if dtype in (pl.Date, pl.Datetime):
        return ColumnPlan(FieldType.DATE, reasons="date cells")
    if dtype == pl.Null:
        return ColumnPlan(FieldType.CHAR, reasons="no values")
    if dtype != pl.String:
        column = column.cast(pl.String)
    return _infer_text_column(column, delimiter)


def _check(t: pl.Series, candidate: str) -> pl.Series:
    """Boolean Series: the (trimmed) value fits the candidate; false for nulls."""
    return kind_of(_CANDIDATE_TYPE[candidate]).fits(t, candidate)


def _first_bad(t: pl.Series, ok: pl.Series) -> str | None:
    """The first non-missing value that does not fit (None if every value fits)."""
    failing = t.filter(~ok)
    failing = failing.filter(~is_missing(failing))
    return None if failing.is_empty() else str(failing[0])


def _first_value(t: pl.Series, mask: pl.Series) -> str | None:
    hits = t.filter(mask.fill_null(False))
    hits = hits.filter(~is_missing(hits))
    return None if hits.is_empty() else str(hits[0])


def _candidates(delimiter: str | None) -> list[str]:
    """Every type's readings, in the precedence of types (decimal, boolean, date)."""
    return [c for ft in INFERENCE_ORDER for c in kind_of(ft).candidates(delimiter)]


def _infer_text_column(column: pl.Series, delimiter: str | None) -> ColumnPlan:
    candidates = _candidates(delimiter)
    head = column.head(SAMPLE_ROWS).str.strip_chars()
    sample = head.filter(~is_missing(head)).head(SAMPLE_VALUES)
    failures: dict[str, str] = {}
    if sample.is_empty():
        survivors = candidates
    else:
        survivors = []
        for cand in candidates:
            bad = _first_bad(sample, _check(sample, cand))
            if bad is None:
                survivors.append(cand)
            else:
                failures[cand] = bad
    late: dict[str, str] = {}
    passed: set[str] = set()
    if survivors:
        t = column.str.strip_chars()
        if sample.is_empty() and bool(is_missing(t).all()):
            return ColumnPlan(FieldType.CHAR, reasons="no values")
        for cand in survivors:
            bad = _first_bad(t, _check(t, cand))
            if bad is None:
                passed.add(cand)
            else:
                late[cand] = bad
        decided = _decide_typed(t, passed)
        if isinstance(decided, ColumnPlan):
            return decided
        if decided is not None:  # an ambiguity keeps the column text
            return _text_plan(column, decided)
    return _text_plan(column, _why_not_typed(failures, late))


def _decide_typed(t: pl.Series, passed: set[str]) -> ColumnPlan | str | None:
    """The typed plan by precedence; or why an ambiguity keeps the column text; or None
    when no type fits."""
    point, comma = _DECIMAL in passed, _DECIMAL_COMMA in passed
    if point and comma:
        example = _first_value(t, t.str.contains_any([".", ","]))
        if example is not None:
            return f"'{_short(example)}' reads differently with a decimal point or comma"
        comma = False
    if point or comma:
        style = " with a decimal comma" if comma else ""
        return ColumnPlan(
            FieldType.DECIMAL, decimal_comma=comma, reasons=f"every value is a number{style}"
        )
    if _BOOLEAN in passed:
        return ColumnPlan(FieldType.BOOLEAN, reasons="every value is a yes/no value")
    orders = [o for o in _DATE_ORDERS if o in passed]
    if "dmy" in orders and "mdy" in orders:
        example = _first_value(t, DateReading.differs(t))
        if example is not None:
            return f"day/month order is ambiguous (e.g. '{_short(example)}')"
        orders.remove("dmy")  # every value reads the same either way
    if not orders:
        return None
    order = orders[0]
    return ColumnPlan(
        FieldType.DATE, date_order=order, reasons=f"every value is {_DESCRIBE[order]}"
    )


def _why_not_typed(failures: dict[str, str], late: dict[str, str]) -> str:
    example = late.get(_DECIMAL) or failures.get(_DECIMAL)
    if example is not None and pl.Series([example]).str.contains(LEADING_ZERO_RE).item():
        return f"leading zeros (e.g. '{_short(example)}') keep it text"
    if late:
        cand, bad = next(iter(late.items()))
        return f"'{_short(bad)}' is not {_DESCRIBE[cand]}"
    if example is not None:
        return f"values such as '{_short(example)}' are not numbers, yes/no values or dates"
    return "no values"


def _text_plan(column: pl.Series, why: str) -> ColumnPlan:
    """char, or text when a value is longer than 255 characters or has a line break
    (whitespace-only cells are not values)."""
    long = column.filter(column.str.len_bytes() > MAX_CHAR_LENGTH)
    long = long.filter(long.str.len_chars() > MAX_CHAR_LENGTH)
    if bool((long.str.strip_chars().str.len_bytes() > 0).any()):
        return ColumnPlan(FieldType.TEXT, reasons="values longer than 255 characters")
    broken = column.filter(column.str.contains_any(["\n", "\r"]))
    if bool((broken.str.strip_chars().str.len_bytes() > 0).any()):
        return ColumnPlan(FieldType.TEXT, reasons="values with line breaks")
    return ColumnPlan(FieldType.CHAR, reasons=why)


def _short(value: str | None, limit: int = 40) -> str:
    text = "" if value is None else value
    return text if len(text) <= limit else text[: limit - 1] + "…"


# ----------------------------------------------------------------------------- appends


def plan_for_type(column: pl.Series, field_type: FieldType, *, delimiter: str | None) -> ColumnPlan:
    """A plan for appending ``column`` into an existing field of ``field_type``.

    Picks the date order / decimal style that fits the most values; when the day/month order
    or decimal style is not decided by any value, values the two readings would read
    differently are reported as bad (``ambiguous_bad``) instead of guessed.
    """
    if column.dtype != pl.String or field_type not in (FieldType.DECIMAL, FieldType.DATE):
        return ColumnPlan(field_type)
    t = column.str.strip_chars()
    if field_type == FieldType.DECIMAL:
        if delimiter != ";":
            return ColumnPlan(field_type)
        point = _check(t, _DECIMAL)
        comma = _check(t, _DECIMAL_COMMA)
        only_point, only_comma = int((point & ~comma).sum()), int((comma & ~point).sum())
        if only_point == 0 and only_comma == 0:
            return ColumnPlan(field_type, ambiguous_bad=True)
        use_comma = only_point == 0 or (only_comma > 0 and comma.sum() > point.sum())
        return ColumnPlan(field_type, decimal_comma=use_comma)
    head = t.head(SAMPLE_ROWS)
    sample = head.filter(~is_missing(head)).head(SAMPLE_VALUES)
    fitting = [o for o in _DATE_ORDERS if not sample.is_empty() and bool(_check(sample, o).all())]
    if len(fitting) == 1:
        # The usual case, decided on the sample alone: an order that fits every value fits the
        # sample, so no other order can; if this one misses some value, the conversion names
        # the values it misses (the file is refused either way). A day/month order that alone
        # fits the sample is decided by a sample value the other order does not read.
        return ColumnPlan(field_type, date_order=fitting[0])
    oks = {order: _check(t, order) for order in _DATE_ORDERS}
    order = max(_DATE_ORDERS, key=lambda o: int(oks[o].sum()))  # first of equals wins
    if order in ("dmy", "mdy"):
        other: DateOrder = "mdy" if order == "dmy" else "dmy"
        decided = bool((oks[order] & ~oks[other]).any())
        return ColumnPlan(field_type, date_order=order, ambiguous_bad=not decided)
    return ColumnPlan(field_type, date_order=order)


# ----------------------------------------------------------------------------- conversion


def convert_column(column: pl.Series, plan: ColumnPlan) -> Converted:
    """Cells -> JSON fragments, bad flags and display text, exactly (never via a float for
    text), by the field type's kind. Typed (Excel) cells of the plan's natural type are rendered
    directly; other typed cells are rendered as their canonical text and then read as text."""
    kind = kind_of(plan.field_type)
    dtype = column.dtype
    if dtype == pl.String:
        return kind.read_column(column, plan)
    if dtype == pl.Null:
        nulls = pl.repeat(None, column.len(), dtype=pl.String, eager=True)
        return Converted(nulls, pl.repeat(False, column.len(), eager=True), nulls)
    for natural in INFERENCE_ORDER:
        text = kind_of(natural).typed_cells(column)
        if text is not None:
            break
    else:
        return kind.read_column(column.cast(pl.String), plan)
    if plan.field_type != natural:
        return kind.read_column(text, plan)
    bad = (column.is_not_null() & text.is_null()).fill_null(False)
    return Converted(kind.fragments(text), bad, text)
