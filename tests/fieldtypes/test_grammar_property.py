"""One value at a time (`Kind.parse`, what API writes use) and a column at a time
(`Kind.read_column`, what uploads and appends use) accept the same values and store the same
canonical form, for every typed kind and every date order. No database: fast, so it runs many
examples; tests/fieldtypes/test_upload_api_property.py checks the same through HTTP."""

from __future__ import annotations

from dataclasses import dataclass

import polars as pl
from hypothesis import example, given, settings

from app.fieldtypes import CellError, FieldType, kind_of
from app.fieldtypes.date import date_readings
from app.fieldtypes.grammar import DateOrder
from tests.fieldtypes.values import PROFILE, cell_values

EXAMPLES = PROFILE.max_examples * 5


@dataclass(frozen=True)
class Plan:
    date_order: DateOrder | None = None
    decimal_comma: bool = False
    ambiguous_bad: bool = False


def column(kind: FieldType, value: str, plan: Plan) -> str | None:
    """What an upload stores for the value ('BAD': refused)."""
    read = kind_of(kind).read_column(pl.Series([value], dtype=pl.String), plan)
    return "BAD" if read.bad[0] else read.display[0]


def one(kind: FieldType, value: str, order: DateOrder | None = None) -> str | None:
    """What an API write stores for the value ('BAD': refused)."""
    k = kind_of(kind)
    try:
        stored = k.parse(value, date_order=order)
    except CellError:
        return "BAD"
    return None if stored is None else k.display(stored)


@settings(PROFILE, max_examples=EXAMPLES)
@given(cell_values())
@example("Jan  5 2026")
@example("13/01/2026 10:30:00.5")
@example("0e99999999999999999999")
@example("1e9223372036854775807")
@example("\x1f5")
def test_a_value_reads_the_same_alone_and_in_a_column(value: str) -> None:
    for kind in (FieldType.DECIMAL, FieldType.BOOLEAN):
        assert column(kind, value, Plan()) == one(kind, value), kind
    readings = date_readings(value)
    orders: tuple[DateOrder, ...] = ("ymd", "named", "dmy", "mdy")
    for order in orders:
        in_column = column(FieldType.DATE, value, Plan(date_order=order))
        if order in readings or not readings:
            # (a value of another family is refused by the column, read by its family alone)
            expected = one(FieldType.DATE, value, order) if readings else one(FieldType.DATE, value)
            assert in_column == expected, order
        else:
            assert in_column == "BAD", order
    for kind in (FieldType.CHAR, FieldType.TEXT):
        assert column(kind, value, Plan()) == one(kind, value), kind
