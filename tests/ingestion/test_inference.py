"""Type inference by elimination, canonical conversion and JSON documents."""

from __future__ import annotations

import datetime as dt
import json
import random
from collections.abc import Sequence
from decimal import Decimal, localcontext
from pathlib import Path
from typing import Any

import polars as pl
import pytest

from app.fieldtypes import FieldType
from app.fieldtypes.grammar import DateOrder
from app.fieldtypes.vector import json_strings
from app.ingestion.documents import build_documents, has_control_chars
from app.ingestion.inference import (
    ColumnPlan,
    convert_column,
    infer_columns,
    plan_columns,
    plan_for_type,
)
from app.ingestion.readers import read_table
from tests.ingestion import files

CHAR, TEXT, DECIMAL, DATE, BOOLEAN = (
    FieldType.CHAR,
    FieldType.TEXT,
    FieldType.DECIMAL,
    FieldType.DATE,
    FieldType.BOOLEAN,
)


def infer(values: Sequence[str | None], delimiter: str | None = ",") -> ColumnPlan:
    frame = pl.DataFrame({"c0": pl.Series(values, dtype=pl.String)})
    return infer_columns(frame, delimiter=delimiter)[0]


def convert(
    values: Sequence[object],
    plan: ColumnPlan,
    dtype: pl.DataType | type[pl.DataType] = pl.String,
) -> tuple[list[Any], ...]:  # (the cells as Polars gives them back)
    out = convert_column(pl.Series("c0", values, dtype=dtype), plan)
    return out.fragments.to_list(), out.bad.to_list(), out.display.to_list()


# ----------------------------------------------------------------------------- inference


@pytest.mark.parametrize(
    ("values", "field_type", "extra"),
    [
        (
            ["1", "2.5", "-0.25", "1e5", "-2.5E-3", "1,234,567.89", "", "NA", "n/a", "-"],
            DECIMAL,
            {},
        ),
        (["0", "0.5", ".5", "+7", "1."], DECIMAL, {}),
        (["1", "0", "1", "0"], DECIMAL, {}),
        (["12345678901234567890", "1234567890123456789"], DECIMAL, {}),
        (["007", "12"], CHAR, {"reasons": "leading zeros (e.g. '007') keep it text"}),
        (["1", "-01"], CHAR, {}),
        (["00.5"], CHAR, {}),
        (["1,23", "4"], CHAR, {}),
        (["inf", "1"], CHAR, {}),
        (["1", "Infinity"], CHAR, {}),
        (["yes", "No", " y ", "N", "TRUE", "f", "t", "", "NULL"], BOOLEAN, {}),
        (["yes", "1", "0"], BOOLEAN, {}),
        (
            ["2026-01-15", "2026-01-15T10:30", "2026/01/16", "2026.01.17", "#N/A"],
            DATE,
            {"date_order": "ymd"},
        ),
        (["13/01/2026", "01/02/2026"], DATE, {"date_order": "dmy"}),
        (["01/13/2026", "02/01/2026 10:30"], DATE, {"date_order": "mdy"}),
        (["01/01/2026", "02/02/2026"], DATE, {"date_order": "mdy"}),
        (
            ["Jan 1 2000", "january 2, 2000", "3 FEB 2000", "04-Mar-2000"],
            DATE,
            {"date_order": "named"},
        ),
        (
            ["03/01/2026", "04/02/2026"],
            CHAR,
            {"reasons": "day/month order is ambiguous (e.g. '03/01/2026')"},
        ),
        (["2026-02-31"], CHAR, {}),
        (["1/2/26"], CHAR, {}),
        (["2026-01-15", "15/01/2026"], CHAR, {}),
        (["North", "NA", "-"], CHAR, {}),
        (["", " ", None, "N/A"], CHAR, {"reasons": "no values"}),
        (["x" * 256], TEXT, {"reasons": "values longer than 255 characters"}),
        (["x" * 255, "é" * 255], CHAR, {}),
        (["line\nbreak", "b"], TEXT, {"reasons": "values with line breaks"}),
        (["1", "x\r"], TEXT, {}),
    ],
)
def test_infer_rules(
    values: list[str | None], field_type: FieldType, extra: dict[str, object]
) -> None:
    plan = infer(values)
    assert plan.field_type == field_type, plan
    for key, value in extra.items():
        assert getattr(plan, key) == value, plan


def test_decimal_comma_only_in_semicolon_files() -> None:
    values = ["1234,56", "1.234,5", "-0,5", "7"]
    assert infer(values, delimiter=";") == ColumnPlan(
        DECIMAL, decimal_comma=True, reasons="every value is a number with a decimal comma"
    )
    assert infer(values, delimiter=",").field_type == CHAR
    assert infer(["12", "7"], delimiter=";").decimal_comma is False
    ambiguous = infer(["1.234", "5"], delimiter=";")
    assert ambiguous.field_type == CHAR
    assert ambiguous.reasons == "'1.234' reads differently with a decimal point or comma"
    assert infer(["1.5", "2.25"], delimiter=";") == ColumnPlan(
        DECIMAL, reasons="every value is a number"
    )


def test_canonical_length_limit() -> None:
    assert infer(["1" * 200]).field_type == DECIMAL
    assert infer(["1" * 201]).field_type == CHAR
    assert infer(["1e199"]).field_type == DECIMAL
    assert infer(["1e200"]).field_type == CHAR
    assert infer(["1e99999999999999999999999"]).field_type == CHAR


def test_bad_value_in_last_row_is_seen() -> None:
    """Inference is staged but never sample-only."""
    values = [str(i) for i in range(50_000)] + ["oops"]
    plan = infer(values)
    assert plan.field_type == CHAR
    assert plan.reasons == "'oops' is not a number"
    dates = ["2026-01-15"] * 30_000 + ["2026-02-30"]
    assert infer(dates).reasons == "'2026-02-30' is not a year-first date"


def test_sample_without_values_still_infers() -> None:
    values = [""] * 20_000 + ["yes", "no"]
    assert infer(values).field_type == BOOLEAN


def test_excel_typed_columns() -> None:
    frame = pl.DataFrame(
        {
            "c0": pl.Series([1.5, None], dtype=pl.Float64),
            "c1": pl.Series([1, 2], dtype=pl.Int64),
            "c2": pl.Series([True, None], dtype=pl.Boolean),
            "c3": pl.Series([dt.datetime(2026, 1, 1), None], dtype=pl.Datetime("ms")),
            "c4": pl.Series([dt.date(2026, 1, 1), None], dtype=pl.Date),
            "c5": pl.Series([None, None], dtype=pl.Null),
            "c6": pl.Series(["02134", "x"], dtype=pl.String),
        }
    )
    types = [p.field_type for p in infer_columns(frame, delimiter=None)]
    assert types == [DECIMAL, DECIMAL, BOOLEAN, DATE, DATE, CHAR, CHAR]


def test_sales_csv_end_to_end(tmp_path: Path) -> None:
    table = read_table(files.write(tmp_path, "s.csv", files.sales_csv()), "s.csv")
    plans = infer_columns(table.frame, delimiter=table.delimiter)
    assert [(p.field_type, p.date_order) for p in plans] == [
        (CHAR, None),
        (CHAR, None),
        (DECIMAL, None),
        (DECIMAL, None),
        (DATE, "ymd"),
        (DATE, "mdy"),
        (BOOLEAN, None),
    ]
    assert plans[1].reasons == "leading zeros (e.g. '02134') keep it text"
    fragments = [
        convert_column(table.frame[c], p).fragments
        for c, p in zip(table.frame.columns, plans, strict=True)
    ]
    documents = build_documents([(101 + i, f) for i, f in enumerate(fragments)])
    first, _, third, fourth = (json.loads(d, parse_float=Decimal) for d in documents)
    assert first == {
        "101": "North",
        "102": "02134",
        "103": Decimal("45200.5"),
        "104": 3,
        "105": "2026-01-15",
        "106": "2026-01-13",
        "107": True,
    }
    assert third["103"] == 1000
    assert "107" not in third  # N/A in a boolean column is missing
    assert fourth == {"101": "West", "102": "94105", "104": 1, "106": "2026-03-04", "107": True}


def test_semicolon_file_with_decimal_comma(tmp_path: Path) -> None:
    rows = [["Item", "Price", "Date"], ["a", "1.234,50", "13.01.2026"], ["b", "0,5", "1.2.2026"]]
    path = files.write(tmp_path, "eu.csv", files.csv_bytes(rows, delimiter=";", encoding="cp1252"))
    table = read_table(path, "eu.csv")
    plans = infer_columns(table.frame, delimiter=table.delimiter)
    assert [(p.field_type, p.decimal_comma, p.date_order) for p in plans] == [
        (CHAR, False, None),
        (DECIMAL, True, None),
        (DATE, False, "dmy"),
    ]
    assert convert_column(table.frame["c1"], plans[1]).display.to_list() == ["1234.5", "0.5"]
    assert convert_column(table.frame["c2"], plans[2]).display.to_list() == [
        "2026-01-13",
        "2026-02-01",
    ]


# ----------------------------------------------------------------------------- conversion


def reference_decimal(text: str) -> str:
    with localcontext() as ctx:
        ctx.prec = 400
        value = Decimal(text.replace(",", "").strip())
        out = format(value.normalize(), "f")
    return "0" if value == 0 else out


@pytest.mark.parametrize(
    ("text", "canonical"),
    [
        ("45200.50", "45200.5"),
        ("1.0", "1"),
        ("100", "100"),
        ("-0.0", "0"),
        ("-0", "0"),
        (".5", "0.5"),
        ("-.5", "-0.5"),
        ("+7", "7"),
        ("1.", "1"),
        ("1e3", "1000"),
        ("1.5E-3", "0.0015"),
        ("-2.5E-3", "-0.0025"),
        ("1,234,567.89", "1234567.89"),
        (" 12 ", "12"),
        ("12345678901234567890", "12345678901234567890"),
        ("0.000", "0"),
        ("120e-1", "12"),
        ("0e7", "0"),
    ],
)
def test_canonical_decimals(text: str, canonical: str) -> None:
    fragments, bad, display = convert([text, "", "NaN"], ColumnPlan(DECIMAL))
    assert fragments == [canonical, None, None]
    assert display == [canonical, None, None]
    assert bad == [False, False, False]
    assert canonical == reference_decimal(text)


def test_canonical_decimals_match_python_decimal() -> None:
    rng = random.Random(7)
    values = []
    for _ in range(3000):
        integer = str(rng.randint(0, 10 ** rng.randint(0, 25)))
        fraction = (
            "." + str(rng.randint(0, 10**6)).zfill(rng.randint(1, 8)) if rng.random() < 0.6 else ""
        )
        exponent = f"e{rng.randint(-30, 30)}" if rng.random() < 0.3 else ""
        values.append(rng.choice(["", "-", "+"]) + integer + fraction + exponent)
    fragments, bad, _ = convert(values, ColumnPlan(DECIMAL))
    assert not any(bad)
    assert fragments == [reference_decimal(v) for v in values]


def test_decimal_comma_conversion_and_bad_values() -> None:
    plan = ColumnPlan(DECIMAL, decimal_comma=True)
    fragments, bad, _ = convert(["1.234.567,80", ",5", "-0,0", "12,5e2", "1,234.5", "x", "-"], plan)
    assert fragments == ["1234567.8", "0.5", "0", "1250", None, None, None]
    assert bad == [False, False, False, False, True, True, False]


@pytest.mark.parametrize(
    ("order", "text", "canonical"),
    [
        ("ymd", "2026-01-15", "2026-01-15"),
        ("ymd", "2026/1/5", "2026-01-05"),
        ("ymd", "2026.01.05", "2026-01-05"),
        ("ymd", "2024-02-29", "2024-02-29"),
        ("ymd", "2026-01-15T10:30", "2026-01-15T10:30:00"),
        ("ymd", "2026-01-15 00:00:00", "2026-01-15T00:00:00"),
        ("ymd", "2026-01-15T10:30:05.120", "2026-01-15T10:30:05.12"),
        ("ymd", "2026-01-15T10:30:05.000", "2026-01-15T10:30:05"),
        ("ymd", "2026-01-15T10:30:00Z", "2026-01-15T10:30:00"),
        ("ymd", "2026-01-15T23:30:00-02:00", "2026-01-16T01:30:00"),
        ("ymd", "2026-01-15T01:00:00+0530", "2026-01-14T19:30:00"),
        ("ymd", "2026-01-15T10:30:00+00:00", "2026-01-15T10:30:00"),
        ("dmy", "13/01/2026", "2026-01-13"),
        ("dmy", "1.2.2026 7:05", "2026-02-01T07:05:00"),
        ("mdy", "01-13-2026 23:59:59", "2026-01-13T23:59:59"),
        ("named", "Jan 1 2000", "2000-01-01"),
        ("named", "January 1, 2000", "2000-01-01"),
        ("named", "1 Jan 2000", "2000-01-01"),
        ("named", "01-JAN-2000", "2000-01-01"),
        ("named", "Sept 30, 2000", "2000-09-30"),
    ],
)
def test_canonical_dates(order: DateOrder, text: str, canonical: str) -> None:
    fragments, bad, display = convert([text, None], ColumnPlan(DATE, date_order=order))
    assert fragments == [f'"{canonical}"', None]
    assert display == [canonical, None]
    assert bad == [False, False]


@pytest.mark.parametrize(
    ("order", "text"),
    [
        ("ymd", "2026-02-29"),
        ("ymd", "2026-13-01"),
        ("ymd", "2026-01-15T24:00"),
        ("ymd", "2026-01/15"),
        ("ymd", "2026-01-15T10:30:05.1234567"),
        ("ymd", "2026-01-15T10:30:00+05"),
        ("ymd", "26-01-15"),
        ("dmy", "31/04/2026"),
        ("dmy", "1/2/26"),
        ("dmy", "1/2-2026"),
        ("mdy", "13/01/2026"),
        ("named", "Feb 30 2000"),
        ("named", "Foo 1 2000"),
    ],
)
def test_invalid_dates_are_bad(order: DateOrder, text: str) -> None:
    fragments, bad, _ = convert([text], ColumnPlan(DATE, date_order=order))
    assert fragments == [None]
    assert bad == [True]


def test_boolean_and_text_conversion() -> None:
    fragments, bad, display = convert(["Yes", " n ", "1", "maybe", "NA", ""], ColumnPlan(BOOLEAN))
    assert fragments == ["true", "false", "true", None, None, None]
    assert bad == [False, False, False, True, False, False]
    assert display == ["true", "false", "true", None, None, None]
    fragments, bad, display = convert([" padded ", "NA", "  ", None, 'q"\\'], ColumnPlan(CHAR))
    assert fragments == ['" padded "', '"NA"', None, None, '"q\\"\\\\"']
    assert display == [" padded ", "NA", None, None, 'q"\\']
    assert not any(bad)


def test_excel_typed_conversion() -> None:
    floats = [0.1, 103.0, 1e-7, 1e20, -0.0, 1.2345678901234567e19, None]
    assert convert(floats, ColumnPlan(DECIMAL), pl.Float64)[0] == [
        "0.1",
        "103",
        "0.0000001",
        "100000000000000000000",
        "0",
        "12345678901234567000",
        None,
    ]
    stamps = [dt.datetime(2026, 1, 15), dt.datetime(2026, 1, 15, 10, 30, 0, 250_000), None]
    assert convert(stamps, ColumnPlan(DATE), pl.Datetime("ms"))[0] == [
        '"2026-01-15"',
        '"2026-01-15T10:30:00.25"',
        None,
    ]
    assert convert([dt.date(2026, 2, 1)], ColumnPlan(DATE), pl.Date)[0] == ['"2026-02-01"']
    assert convert([True, False, None], ColumnPlan(BOOLEAN), pl.Boolean)[0] == [
        "true",
        "false",
        None,
    ]
    # typed cells into a field of another type are read as their text
    assert convert([103.0, None], ColumnPlan(CHAR), pl.Float64)[0] == ['"103"', None]
    assert convert([1.0, 0.0], ColumnPlan(BOOLEAN), pl.Float64)[0] == ["true", "false"]
    assert convert([5.0], ColumnPlan(DATE, date_order="ymd"), pl.Float64)[1] == [True]


def test_plan_for_type_appends() -> None:
    ambiguous = pl.Series(["03/01/2026", "05/05/2026", "2026-01-01"])
    plan = plan_for_type(ambiguous, DATE, delimiter=",")
    assert plan == ColumnPlan(DATE, date_order="dmy", ambiguous_bad=True)
    fragments, bad, _ = convert(ambiguous.to_list(), plan)
    assert fragments == [None, '"2026-05-05"', None]
    assert bad == [True, False, True]
    decided = pl.Series(["03/01/2026", "13/01/2026"])
    assert plan_for_type(decided, DATE, delimiter=",") == ColumnPlan(DATE, date_order="dmy")
    us = pl.Series(["01/13/2026", "02/01/2026", "x"])
    assert plan_for_type(us, DATE, delimiter=",") == ColumnPlan(DATE, date_order="mdy")
    comma = pl.Series(["1,5", "2"])
    assert plan_for_type(comma, DECIMAL, delimiter=";") == ColumnPlan(DECIMAL, decimal_comma=True)
    assert plan_for_type(comma, DECIMAL, delimiter=",") == ColumnPlan(DECIMAL)
    unsure = plan_for_type(pl.Series(["1.234", "5"]), DECIMAL, delimiter=";")
    assert unsure == ColumnPlan(DECIMAL, ambiguous_bad=True)
    assert convert(["1.234", "5"], unsure)[1] == [True, False]
    assert plan_for_type(pl.Series(["x"]), CHAR, delimiter=None) == ColumnPlan(CHAR)


def test_plan_for_type_decided_on_the_sample_still_checks_every_row() -> None:
    # 12,000 ISO dates and one day-first date at the end: the sample (the first 10,000 rows)
    # decides year-first; the conversion then refuses the last value rather than guessing.
    late = pl.Series(["2026-01-15"] * 12_000 + ["13/01/2026"])
    plan = plan_for_type(late, DATE, delimiter=",")
    assert plan == ColumnPlan(DATE, date_order="ymd")
    out = convert_column(late, plan)
    assert out.bad.arg_true().to_list() == [12_000]
    # a day-first sample decides the order even when later rows would read either way
    day_first = pl.Series(["13/01/2026"] + ["03/01/2026"] * 12_000)
    assert plan_for_type(day_first, DATE, delimiter=",") == ColumnPlan(DATE, date_order="dmy")
    assert not convert_column(day_first, ColumnPlan(DATE, date_order="dmy")).bad.any()


def test_plan_columns_plans_each_column_in_order() -> None:
    columns = [
        (pl.Series(["03/01/2026", "13/01/2026"]), DATE),
        (pl.Series(["1,5", "2"]), DECIMAL),
        (pl.Series(["01/13/2026"]), DATE),
        (pl.Series(["x"]), CHAR),
    ]
    assert plan_columns(columns, delimiter=";") == [
        ColumnPlan(DATE, date_order="dmy"),
        ColumnPlan(DECIMAL, decimal_comma=True),
        ColumnPlan(DATE, date_order="mdy"),
        ColumnPlan(CHAR),
    ]


# ----------------------------------------------------------------------------- JSON


@pytest.mark.parametrize("code", range(0x20))
def test_has_control_chars_sees_every_control_character(code: int) -> None:
    text = pl.Series(["plain", None, f"a{chr(code)}b"])
    assert has_control_chars(json_strings(text), text)
    assert not has_control_chars(json_strings(text.head(2)), text.head(2))


def test_has_control_chars_is_not_fooled_by_escaped_backslashes() -> None:
    # their JSON holds "\\n", "\\u0041", "\\t": the substrings it scans for, yet no control character
    text = pl.Series(["x\\nthen", "\\u0041", 'say "hi"\\t', "\u2028\u007f é"])
    assert json_strings(text).str.contains_any(["\\n", "\\u00", "\\t"]).sum() == 3
    assert not has_control_chars(json_strings(text), text)


def test_json_strings_round_trip_every_character() -> None:
    rng = random.Random(11)
    alphabet = [chr(i) for i in range(0x250)] + [
        "\u2028",
        "\u2029",
        "\ufeff",
        "\U0001f600",
        "\ud7ff",
        "\ue000",
    ]
    values = ["".join(rng.choice(alphabet) for _ in range(rng.randint(1, 30))) for _ in range(5000)]
    values = [v for v in values if v.strip()]
    fragments, _, display = convert(values, ColumnPlan(TEXT))
    assert display == values
    assert [json.loads(f) for f in fragments] == values


def test_build_documents_omits_nulls() -> None:
    names = pl.Series(["North", None, 'a "q"'])
    amounts = pl.Series(["45200.5", None, "0.1000000000000000055511151231257827"])
    docs = build_documents(
        [(101, convert_column(names, ColumnPlan(CHAR)).fragments), (102, amounts)]
    )
    parsed = [json.loads(d, parse_float=Decimal) for d in docs]
    assert parsed == [
        {"101": "North", "102": Decimal("45200.5")},
        {},
        {"101": 'a "q"', "102": Decimal("0.1000000000000000055511151231257827")},
    ]
    assert docs[1] == "{}"
    assert docs[0] == '{"101":"North","102":45200.5}'


def test_build_documents_first_column_nullable() -> None:
    docs = build_documents([(7, pl.Series([None, "1"])), (8, pl.Series(["true", "false"]))])
    assert docs.to_list() == ['{"8":true}', '{"7":1,"8":false}']


def test_leading_zero_after_the_sample() -> None:
    values = [str(10_000 + i) for i in range(20_000)] + ["01234"]
    plan = infer(values)
    assert plan.field_type == CHAR
    assert plan.reasons == "leading zeros (e.g. '01234') keep it text"


def test_mixed_dates_and_datetimes_in_one_column() -> None:
    values = ["2026-01-15", None, "2026-01-15 10:30", "x", "2026/2/3", "2026-01-15T23:00:00-01:00"]
    fragments, bad, _ = convert(values, ColumnPlan(DATE, date_order="ymd"))
    assert fragments == [
        '"2026-01-15"',
        None,
        '"2026-01-15T10:30:00"',
        None,
        '"2026-02-03"',
        '"2026-01-16T00:00:00"',
    ]
    assert bad == [False, False, False, True, False, False]
