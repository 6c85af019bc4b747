"""Field types: the one registry every path (row writes, file ingestion, type conversion, summary,
search) uses to parse, store and render a cell.

Stored forms (inside each row's JSONB document; an empty cell is an absent key):

| type    | stored JSON                               | Python value here                  |
|---------|-------------------------------------------|------------------------------------|
| char    | string, exactly as given                  | str                                |
| text    | string, exactly as given                  | str                                |
| decimal | number, canonical (`45200.50` → 45200.5)  | Decimal (normalised, exact)        |
| date    | string `YYYY-MM-DD[THH:MM:SS[.ffffff]]`   | str (canonical)                    |
| boolean | true / false                              | bool                               |

What each type accepts from a client (a JSON value, or a string that reads as the type):
- decimal: JSON numbers (parsed as Decimal, never a float); strings like `31500.00`, `-1.5e3`,
  `1,234,567.89` (thousands separators only in 3-digit groups). Canonical plain notation may not
  exceed 200 characters.
- date: `YYYY-MM-DD`, `YYYY-MM-DD[T ]HH:MM[:SS[.ffffff]]` with an optional `Z`/`±HH:MM` offset
  (converted to UTC), `YYYY/MM/DD`; `D/M/YYYY` or `M/D/YYYY` (also with `.` or `-`) only when just
  one reading is a real date or both readings are the same day (`13/01/2026`, `1/13/2026`,
  `05/05/2026`); `03/01/2026` is refused as ambiguous; English month names (`Jan 5 2026`,
  `5 January 2026`, `05-Jan-2026`).
- boolean: JSON true/false, 1/0; strings true/false, yes/no, t/f, y/n, 1/0 in any case.
- char/text: strings (numbers and booleans are taken as their text).
- Everywhere: null, an empty or all-blank string, and for typed fields the usual missing markers
  (`NA`, `N/A`, `NULL`, `NaN`, `#N/A`, `-`) mean an empty cell. Text with NUL characters or lone
  UTF-16 surrogates is refused (PostgreSQL cannot store it).
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation, localcontext
from enum import StrEnum
from typing import Any, Literal

from app.core.schemas import text_problem

MAX_CELL_CHARS = 100_000
MAX_DECIMAL_CHARS = 200
MISSING_MARKERS = frozenset({"na", "n/a", "null", "nan", "#n/a", "-"})
TRUE_WORDS = frozenset({"true", "t", "yes", "y", "1"})
FALSE_WORDS = frozenset({"false", "f", "no", "n", "0"})

DateOrder = Literal["dmy", "mdy"]


class FieldType(StrEnum):
    CHAR = "char"
    TEXT = "text"
    DECIMAL = "decimal"
    DATE = "date"
    BOOLEAN = "boolean"


class CellError(ValueError):
    """A value that does not fit its field's type; the message says why, for the API client."""


Stored = str | Decimal | bool


# ----------------------------------------------------------------------------------- decimals

# ASCII digits only (re.ASCII): `\d` alone matches "٣" or a fullwidth "6", which Decimal() and
# int() read as 3 and 6 but a file's reader does not: a value means the same on every path.
_NUMBER_RE = re.compile(r"^[+-]?(?:\d+|\d{1,3}(?:,\d{3})+)?(?:\.\d*)?(?:[eE][+-]?\d+)?$", re.ASCII)


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
    if digits <= 28:  # the default context's precision: normalize() is exact
        value = value.normalize()
    else:
        with localcontext() as ctx:
            ctx.prec = MAX_DECIMAL_CHARS + 10  # normalize() must never round
            value = value.normalize()
    # keep the plain-notation text bounded (1e999999 would be a million characters)
    if (
        abs(value.adjusted()) > MAX_DECIMAL_CHARS
        or len(value.as_tuple().digits) > MAX_DECIMAL_CHARS
    ):
        raise CellError(f"has more than {MAX_DECIMAL_CHARS} digits")
    text = format(value, "f")
    if len(text) > MAX_DECIMAL_CHARS:
        raise CellError(f"has more than {MAX_DECIMAL_CHARS} digits")
    return value


def decimal_text(value: Decimal) -> str:
    """Plain-notation text of a canonical decimal: `45200.5`, `1000`, `0.0015`."""
    return "0" if value.is_zero() else format(value, "f")


def decimal_scale(value: Decimal) -> int:
    exponent = value.as_tuple().exponent
    return -exponent if isinstance(exponent, int) and exponent < 0 else 0


def parse_decimal_text(text: str) -> Decimal:
    s = text.strip()
    if not s or not any(ch.isdigit() for ch in s) or not _NUMBER_RE.match(s):
        raise CellError("is not a number")
    try:
        return canonical_decimal(Decimal(s.replace(",", "")))
    except InvalidOperation:
        raise CellError("is not a number") from None


# --------------------------------------------------------------------------------------- dates

_MONTHS = {
    name: i + 1
    for i, names in enumerate(
        [
            ("jan", "january"),
            ("feb", "february"),
            ("mar", "march"),
            ("apr", "april"),
            ("may",),
            ("jun", "june"),
            ("jul", "july"),
            ("aug", "august"),
            ("sep", "sept", "september"),
            ("oct", "october"),
            ("nov", "november"),
            ("dec", "december"),
        ]
    )
    for name in names
}
_TIME = r"(?:[T ](\d{1,2}):(\d{2})(?::(\d{2})(?:\.(\d{1,6}))?)?)?"
_ISO_RE = re.compile(
    r"^(\d{4})([-/.])(\d{1,2})\2(\d{1,2})" + _TIME + r"(Z|[+-]\d{2}:?\d{2})?$",
    re.IGNORECASE | re.ASCII,
)
_DM_RE = re.compile(
    r"^(\d{1,2})([/.-])(\d{1,2})\2(\d{4})" + _TIME.replace("[T ]", " ") + "$", re.ASCII
)
_NAMED_RE = [
    # Jan 5 2026 / Jan 5, 2026 / January 5, 2026
    (re.compile(r"^([A-Za-z]{3,9})\.? (\d{1,2}),? (\d{4})$", re.ASCII), ("month", "day", "year")),
    # 5 Jan 2026 / 5 January 2026 / 05-Jan-2026
    (
        re.compile(r"^(\d{1,2})[ -]([A-Za-z]{3,9})\.?[ -](\d{4})$", re.ASCII),
        ("day", "month", "year"),
    ),
]


def _make(year: int, month: int, day: int, time: tuple[str | None, ...] = ()) -> str | None:
    """Canonical text of a real calendar date (and time), or None if there is no such date."""
    try:
        date = dt.date(year, month, day)
    except ValueError:
        return None
    hh, mm, ss, frac = ((*time, None, None, None, None))[:4]
    if hh is None:
        return date.isoformat()
    try:
        micro = int((frac or "0").ljust(6, "0"))
        moment = dt.datetime.combine(date, dt.time(int(hh), int(mm or 0), int(ss or 0), micro))
    except ValueError:
        return None
    return datetime_text(moment)


def datetime_text(moment: dt.datetime) -> str:
    """`YYYY-MM-DDTHH:MM:SS` (+ fraction without trailing zeros when there is one)."""
    text = moment.strftime("%Y-%m-%dT%H:%M:%S")
    if moment.microsecond:
        text += "." + f"{moment.microsecond:06d}".rstrip("0")
    return text


def _apply_offset(text: str, offset: str) -> str:
    if offset.upper() == "Z":
        return text
    sign = 1 if offset[0] == "+" else -1
    digits = offset[1:].replace(":", "")
    delta = dt.timedelta(hours=int(digits[:2]), minutes=int(digits[2:]))
    moment = dt.datetime.fromisoformat(text if "T" in text else text + "T00:00:00")
    return datetime_text(moment - sign * delta)


def date_readings(text: str) -> dict[str, str]:
    """Every reading of `text` as a date, by family: `ymd` (ISO and year-first), `dmy`, `mdy`,
    `named` (English month names). Empty when it is not a date in any of them."""
    s = text.strip()
    if m := _ISO_RE.match(s):
        year, _, month, day, hh, mi, ss, frac, offset = m.groups()
        if m.group(2) != "-" and offset:
            return {}
        value = _make(int(year), int(month), int(day), (hh, mi, ss, frac))
        if value is None:
            return {}
        if offset:
            if hh is None:
                return {}
            value = _apply_offset(value, offset)
        return {"ymd": value}
    if m := _DM_RE.match(s):
        first, _, second, year, hh, mi, ss, frac = m.groups()
        time = (hh, mi, ss, frac)
        readings = {
            "dmy": _make(int(year), int(second), int(first), time),
            "mdy": _make(int(year), int(first), int(second), time),
        }
        return {k: v for k, v in readings.items() if v is not None}
    for pattern, order in _NAMED_RE:
        if m := pattern.match(s):
            parts = dict(zip(order, m.groups(), strict=True))
            month = _MONTHS.get(parts["month"].lower())
            if month is None:
                return {}
            value = _make(int(parts["year"]), month, int(parts["day"]))
            return {"named": value} if value else {}
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


# ------------------------------------------------------------------------------------ registry


def _is_blank(value: str) -> bool:
    return not value.strip()


def _is_missing(value: str) -> bool:
    return _is_blank(value) or value.strip().lower() in MISSING_MARKERS


def _check_text(value: str) -> str:
    if problem := text_problem(value):
        raise CellError(problem)
    if len(value) > MAX_CELL_CHARS:
        raise CellError(f"is longer than {MAX_CELL_CHARS:,} characters")
    return value


@dataclass(frozen=True)
class FieldTypeSpec:
    """How one field type parses client values and renders stored ones."""

    name: FieldType
    _parse: Callable[[Any, DateOrder | None], Stored | None]
    json_name: str  # the JSON type clients see, for messages

    def parse(self, value: Any, *, date_order: DateOrder | None = None) -> Stored | None:
        """The stored form of a client value, None for an empty cell; CellError if it does not fit."""
        if value is None:
            return None
        return self._parse(value, date_order)

    def json_fragment(self, stored: Stored) -> str:
        """The stored value as JSON text (for building row documents)."""
        if isinstance(stored, bool):
            return "true" if stored else "false"
        if isinstance(stored, Decimal):
            return decimal_text(stored)
        return json.dumps(stored, ensure_ascii=False)

    def display(self, stored: Stored) -> str:
        """The value as shown to people (and as search and top values see it)."""
        if isinstance(stored, bool):
            return "true" if stored else "false"
        if isinstance(stored, Decimal):
            return decimal_text(stored)
        return stored


def _parse_text(value: Any, _: DateOrder | None) -> Stored | None:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, float):
        return repr(value)
    if not isinstance(value, str):
        raise CellError("must be a string")
    if _is_blank(value):
        return None
    return _check_text(value)


def _parse_decimal(value: Any, _: DateOrder | None) -> Stored | None:
    if isinstance(value, bool):
        raise CellError("is a boolean, not a number")
    if isinstance(value, int):
        return canonical_decimal(Decimal(value))
    if isinstance(value, Decimal):
        return canonical_decimal(value)
    if isinstance(value, float):
        return canonical_decimal(Decimal(repr(value)))
    if isinstance(value, str):
        if _is_missing(value):
            return None
        return parse_decimal_text(value)
    raise CellError("must be a number")


def _parse_date(value: Any, order: DateOrder | None) -> Stored | None:
    if isinstance(value, dt.datetime):
        return datetime_text(value) if value.time() != dt.time() else value.date().isoformat()
    if isinstance(value, dt.date):
        return value.isoformat()
    if not isinstance(value, str):
        raise CellError("must be a date string such as 2026-01-15")
    if _is_missing(value):
        return None
    return parse_date_text(value, order)


def _parse_boolean(value: Any, _: DateOrder | None) -> Stored | None:
    if isinstance(value, bool):
        return value
    if isinstance(value, (int, Decimal)) and not isinstance(value, bool) and value in (0, 1):
        return bool(value)
    if isinstance(value, str):
        if _is_missing(value):
            return None
        word = value.strip().lower()
        if word in TRUE_WORDS:
            return True
        if word in FALSE_WORDS:
            return False
        raise CellError("is not a boolean (use true/false, yes/no, 1/0)")
    raise CellError("must be true or false")


REGISTRY: dict[FieldType, FieldTypeSpec] = {
    FieldType.CHAR: FieldTypeSpec(FieldType.CHAR, _parse_text, "string"),
    FieldType.TEXT: FieldTypeSpec(FieldType.TEXT, _parse_text, "string"),
    FieldType.DECIMAL: FieldTypeSpec(FieldType.DECIMAL, _parse_decimal, "number"),
    FieldType.DATE: FieldTypeSpec(FieldType.DATE, _parse_date, "date string"),
    FieldType.BOOLEAN: FieldTypeSpec(FieldType.BOOLEAN, _parse_boolean, "boolean"),
}


_BY_NAME: dict[str, FieldTypeSpec] = {kind.value: type_spec for kind, type_spec in REGISTRY.items()}


def spec(field_type: FieldType | str) -> FieldTypeSpec:
    found = _BY_NAME.get(field_type)  # a StrEnum member hashes like its value
    return found if found is not None else REGISTRY[FieldType(field_type)]


def from_stored_json(field_type: FieldType | str, value: Any) -> Stored:
    """A value read back from a row document (json.loads with parse_float=Decimal)."""
    kind = FieldType(field_type)
    if kind is FieldType.DECIMAL:
        return canonical_decimal(Decimal(value)) if not isinstance(value, Decimal) else value
    if kind is FieldType.BOOLEAN:
        return bool(value)
    return str(value)


def is_textual(field_type: FieldType | str) -> bool:
    return FieldType(field_type) in (FieldType.CHAR, FieldType.TEXT)
