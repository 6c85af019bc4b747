"""The grammar one value at a time (API writes, conversions: `Kind.parse`) and a column at a
time (uploads: `Kind.read_column`) share their patterns (app/fieldtypes/grammar.py) but check
and canonicalise each on its own side; they must store the same value."""

from __future__ import annotations

from decimal import Decimal

import polars as pl
import pytest

from app.fieldtypes import CellError, FieldType, kind_of
from app.fieldtypes.grammar import DateOrder
from app.ingestion.inference import ColumnPlan, convert_column

spec = kind_of

DECIMALS = [
    "45200.50", "0.1", "-0.25", "1e3", "1.5E-3", "12345678901234567890", "-0", "007", "+3",
    "1,234,567.89", ".5", "100", "1.000", "0.000001", "98765432109876543210.123456789",
]  # fmt: skip
DATES = [
    ("2026-01-15", None), ("2026-01-15T09:30:00", None), ("2026-01-15 09:30", None),
    ("2026-01-15T09:30:00.250", None), ("2026-01-15T09:30:00Z", None),
    ("2026-01-15T09:30:00+02:00", None), ("2026/03/01", None), ("13/01/2026", "dmy"),
    ("1/13/2026", "mdy"), ("Jan 5 2026", "named"), ("5 January 2026", "named"),
    ("05-Jan-2026", "named"), ("2024-02-29", None),
]  # fmt: skip
BOOLEANS = ["true", "FALSE", "yes", "No", "t", "F", "y", "n"]


def _vectorised(values: list[str], plan: ColumnPlan) -> list[str | None]:
    converted = convert_column(pl.Series("c", values, dtype=pl.String), plan)
    assert not converted.bad.any()
    out: list[str | None] = converted.display.to_list()
    return out


@pytest.mark.parametrize("value", DECIMALS)
def test_decimal_forms_agree(value: str) -> None:
    stored = spec(FieldType.DECIMAL).parse(value)
    assert isinstance(stored, Decimal)
    assert _vectorised([value], ColumnPlan(FieldType.DECIMAL)) == [
        spec(FieldType.DECIMAL).display(stored)
    ]


@pytest.mark.parametrize(("value", "order"), DATES)
def test_date_forms_agree(value: str, order: DateOrder | None) -> None:
    stored = spec(FieldType.DATE).parse(value)
    plan = ColumnPlan(FieldType.DATE, date_order=order or "ymd")
    assert _vectorised([value], plan) == [stored]


@pytest.mark.parametrize("value", BOOLEANS)
def test_boolean_forms_agree(value: str) -> None:
    stored = spec(FieldType.BOOLEAN).parse(value)
    assert _vectorised([value], ColumnPlan(FieldType.BOOLEAN)) == ["true" if stored else "false"]


@pytest.mark.parametrize("marker", ["", "  ", "NA", "n/a", "NULL", "NaN", "#N/A", "-"])
def test_missing_markers_are_empty_in_typed_fields_both_ways(marker: str) -> None:
    for kind in (FieldType.DECIMAL, FieldType.DATE, FieldType.BOOLEAN):
        assert spec(kind).parse(marker) is None
        assert _vectorised([marker], ColumnPlan(kind)) == [None]


@pytest.mark.parametrize(
    ("kind", "value"),
    [
        (FieldType.DECIMAL, "abc"), (FieldType.DECIMAL, "1,23"), (FieldType.DECIMAL, "inf"),
        (FieldType.DATE, "2026-02-30"), (FieldType.DATE, "03/01/2026"), (FieldType.DATE, "15/01/26"),
        (FieldType.BOOLEAN, "maybe"),
    ],
)  # fmt: skip
def test_refusals(kind: FieldType, value: str) -> None:
    with pytest.raises(CellError):
        spec(kind).parse(value)


def test_json_fragments_are_exact() -> None:
    decimal = spec(FieldType.DECIMAL)
    short, large = decimal.parse("45200.50"), decimal.parse("1e25")
    assert short is not None and large is not None
    assert decimal.json_fragment(short) == "45200.5"
    assert decimal.json_fragment(large) == "10000000000000000000000000"
    text = spec(FieldType.CHAR)
    assert text.json_fragment('say "hi"\n') == '"say \\"hi\\"\\n"'
