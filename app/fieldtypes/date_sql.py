"""Dates in SQL: comparisons (a day means the whole day), widget buckets (day, ISO week, month,
quarter, year) and the check that decides whether an xlsx export can write a column as Excel
dates. Stored dates are ISO text, so most of this is text arithmetic in code-point order."""

from __future__ import annotations

import operator
from collections.abc import Callable
from typing import Any

from sqlalchemy import ColumnElement, Date, Integer, Text, case, cast, func, literal, or_

from app.fieldtypes.base import DateGrouping, FilterOp
from app.fieldtypes.sql import Cell, by_code_point

_COMPARE: dict[FilterOp, Callable[[Any, Any], ColumnElement[bool]]] = {
    FilterOp.EQ: operator.eq,
    FilterOp.NE: lambda a, b: a.is_distinct_from(b),
    FilterOp.GT: operator.gt,
    FilterOp.GTE: operator.ge,
    FilterOp.LT: operator.lt,
    FilterOp.LTE: operator.le,
}
# a real ISO day at the start of the text (then its day is checked against its month)
_ISO_DAY = "^[0-9]{4}-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])"


def _lit(text: str) -> ColumnElement[str]:
    return literal(text, Text)


def _moment(cell: Cell) -> ColumnElement[str]:
    """A date cell as `YYYY-MM-DDTHH:MM:SS[.f]` text (a day counts as midnight)."""
    t = cell.text
    return case((func.length(t) == 10, t + _lit("T00:00:00")), else_=t)


def compare(cell: Cell, op: FilterOp, value: str) -> ColumnElement[bool]:
    """A date without a time compares whole days (`gt 2026-03-05` starts on the 6th); with a
    time it compares moments, a cell without a time counting as midnight."""
    lhs = func.left(cell.text, 10) if len(value) == 10 else _moment(cell)
    return _COMPARE[op](by_code_point(lhs), _lit(value))


def _week(cell: Cell, still: ColumnElement[bool]) -> ColumnElement[str]:
    """`2026-W09`. The one bucket that casts: only a real date is cast (anything else, stored
    before writes locked the item, is no group rather than a failed statement), and only while
    the field is still a date field (`still`, checked once per statement)."""
    t = cell.text
    iso = func.left(t, 4) != _lit("0000")
    iso = t.regexp_match(_ISO_DAY) & iso
    year = cast(func.left(t, 4), Integer)
    leap = or_((year % 4 == 0) & (year % 100 != 0), year % 400 == 0)
    month = func.substr(t, 6, 2)
    days = case(
        (month == _lit("02"), case((leap, 29), else_=28)),
        (month.in_(["04", "06", "09", "11"]), 30),
        else_=31,
    )
    real = cast(func.substr(t, 9, 2), Integer) <= days
    week = func.to_char(cast(func.left(t, 10), Date), _lit('IYYY-"W"IW'))
    return case((still, case((iso, case((real, week))))))


def _quarter(cell: Cell) -> ColumnElement[str]:
    month = func.substr(cell.text, 6, 2)
    number = case(
        (month.in_(["01", "02", "03"]), _lit("1")),
        (month.in_(["04", "05", "06"]), _lit("2")),
        (month.in_(["07", "08", "09"]), _lit("3")),
        (month.in_(["10", "11", "12"]), _lit("4")),
    )
    return func.left(cell.text, 4) + _lit("-Q") + number


def bucket(cell: Cell, grouping: DateGrouping, still: ColumnElement[bool]) -> ColumnElement[str]:
    """The group of a date cell as ISO-like text (code-point order is chronological)."""
    expr: ColumnElement[str]
    if grouping is DateGrouping.DAY:
        expr = func.left(cell.text, 10)
    elif grouping is DateGrouping.WEEK:
        expr = _week(cell, still)
    elif grouping is DateGrouping.MONTH:
        expr = func.left(cell.text, 7)
    elif grouping is DateGrouping.QUARTER:
        expr = _quarter(cell)
    else:
        expr = func.left(cell.text, 4)
    return by_code_point(expr)


def excel_text_needed(cell: Cell) -> ColumnElement[bool]:
    """Some value an Excel date cell cannot give back exactly: before 1900-03-01 (Excel's
    calendar is wrong before then), a fraction finer than milliseconds, or a time of exactly
    midnight (which reads back as a plain date)."""
    t = cell.text
    return func.bool_or(
        or_(
            by_code_point(t) < _lit("1900-03-01"),
            t.regexp_match(r"\.[0-9]{4}"),
            t.like("%T00:00:00"),
        )
    )
