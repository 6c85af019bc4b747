"""The cell grammar, once: what a value is (missing, a number, a yes/no word, a date) for every
path that reads cells: API writes one value at a time (Python `re`), uploads a column at a time
(Polars, whose regex engine is Rust's). Both compile the *same* pattern texts below, so they are
written in the syntax the two engines share: `[0-9]` (never `\\d`, which is every Unicode digit
in Rust), `(?P<name>…)` groups, no back-references, no look-arounds, no flags. What a pattern
cannot say (a real calendar day, an exponent's size) is checked after it, on each side, and the
two sides are held together by tests (tests/fieldtypes).

Rules, with examples:

- Surrounding whitespace is dropped (Unicode White_Space, the set both engines call whitespace).
- Missing: an empty or all-whitespace cell, and in typed fields `NA`, `N/A`, `NULL`, `NaN`,
  `#N/A`, `-` in any case.
- boolean: true/false, yes/no, t/f, y/n in any case, and 1/0.
- decimal: `[+-]digits[.digits][e[+-]digits]`, thousands separators only in 3-digit groups
  (`1,234,567.89`), `.5` and `5.` too; at most 200 characters in canonical plain notation
  (`1e200` is 201 characters: refused; `0e999999999999` is 0).
- date, one of four families:
  - `ymd`: `2026-01-15`, `2026/1/5`, `2026.01.15` (one separator, twice), optionally with a time
    `T`/`t`/space `HH:MM[:SS[.ffffff]]` and then an offset `Z`/`z`/`±HH[:]MM` (hours up to 23,
    minutes up to 59), converted to UTC; the moment must stay within years 1-9999;
  - `dmy`/`mdy`: `13/01/2026`, `1.2.2026`, `01-02-2026` (one separator, twice), optionally a space
    and `HH:MM[:SS[.ffffff]]`;
  - `named`: `Jan 5 2026`, `Jan. 5, 2026`, `January  5,  2026`, `5 Jan 2026`, `05-Jan-2026`,
    `5 January, 2026` (English month names and `Sept`, any case; one or more spaces).
  Only real calendar days and times of day.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable
from typing import Literal

MAX_DECIMAL_CHARS = 200  # canonical plain notation, sign and point included
MAX_CHAR_LENGTH = 255  # longer values (or line breaks) make an uploaded column text, not char

DateOrder = Literal["ymd", "named", "dmy", "mdy"]
DATE_ORDERS: tuple[DateOrder, ...] = ("ymd", "named", "dmy", "mdy")  # inference's precedence

# Unicode White_Space: what Python's str.strip() would use if it did not also strip the
# separators U+001C-U+001F, and exactly what Rust's (Polars') trim uses.
WHITESPACE = (
    "\t\n\x0b\x0c\r \x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008"
    "\u2009\u200a\u2028\u2029\u202f\u205f\u3000"
)

MISSING_MARKERS = ("na", "n/a", "null", "nan", "#n/a", "-")
TRUE_WORDS = ("true", "yes", "t", "y")
FALSE_WORDS = ("false", "no", "f", "n")

MONTHS = (
    "january", "february", "march", "april", "may", "june",
    "july", "august", "september", "october", "november", "december",
)  # fmt: skip
MONTH_NUMBERS: dict[str, int] = {"sept": 9}
for _number, _name in enumerate(MONTHS, start=1):
    MONTH_NUMBERS[_name] = _number
    MONTH_NUMBERS[_name[:3]] = _number


def case_variants(words: Iterable[str]) -> tuple[str, ...]:
    """Every upper/lower-case spelling of each (ASCII) word: `is_in` on these beats lowercasing a
    column, and it never lets a non-ASCII letter lower-case into a word (the Kelvin sign is k)."""
    out: set[str] = set()
    for word in words:
        choices = [sorted({c.lower(), c.upper()}) for c in word]
        out.update("".join(p) for p in itertools.product(*choices))
    return tuple(sorted(out))


MISSING_SPELLINGS = case_variants(MISSING_MARKERS)
TRUE_SPELLINGS = (*case_variants(TRUE_WORDS), "1")
FALSE_SPELLINGS = (*case_variants(FALSE_WORDS), "0")
_MISSING = frozenset(MISSING_SPELLINGS)


def trim(value: str) -> str:
    return value.strip(WHITESPACE)


def is_blank(value: str) -> bool:
    return not value.strip(WHITESPACE)


def is_missing(value: str) -> bool:
    """Missing in a typed field: blank, or a missing marker."""
    t = value.strip(WHITESPACE)
    return not t or t in _MISSING


# ------------------------------------------------------------------------------------ decimals

_EXP = r"(?:[eE](?P<exp>[+-]?[0-9]+))?"
# Into a decimal field a leading zero is just a zero (`007` is 7): the grammar of writes.
_ANY_INT_POINT = r"(?:[0-9]{1,3}(?:,[0-9]{3})+|[0-9]+)"
_ANY_INT_COMMA = r"(?:[0-9]{1,3}(?:\.[0-9]{3})+|[0-9]+)"
DECIMAL_RE = rf"^[+-]?(?:{_ANY_INT_POINT}(?:\.[0-9]*)?|\.[0-9]+){_EXP}$"
DECIMAL_COMMA_RE = rf"^[+-]?(?:{_ANY_INT_COMMA}(?:,[0-9]*)?|,[0-9]+){_EXP}$"
# Inference only: a leading zero in the integer part means a code (`02134`), so the column stays
# text; `0`, `0.5`, `-0.25` are numbers.
_INT_POINT = r"(?:0|[1-9][0-9]{0,2}(?:,[0-9]{3})+|[1-9][0-9]*)"
_INT_COMMA = r"(?:0|[1-9][0-9]{0,2}(?:\.[0-9]{3})+|[1-9][0-9]*)"
INFER_DECIMAL_RE = rf"^[+-]?(?:{_INT_POINT}(?:\.[0-9]*)?|\.[0-9]+){_EXP}$"
INFER_DECIMAL_COMMA_RE = rf"^[+-]?(?:{_INT_COMMA}(?:,[0-9]*)?|,[0-9]+){_EXP}$"
LEADING_ZERO_RE = r"^[+-]?0[0-9]+(?:\.[0-9]*)?$"  # `007`, `-02.5`: why a column stays text
# Exponents beyond this cannot give a value of at most 200 characters from a cell of any
# plausible size; clamping them keeps the arithmetic on positions far from overflowing.
EXPONENT_BOUND = 10**12

# --------------------------------------------------------------------------------------- dates

_FRACTION = r"(?:\.(?P<F>[0-9]{1,6}))?"
_CLOCK = rf"(?P<H>[0-9]{{1,2}}):(?P<M>[0-9]{{2}})(?::(?P<S>[0-9]{{2}}){_FRACTION})?"
_OFFSET = r"(?P<Z>[Zz]|[+-][0-9]{2}:?[0-9]{2})"
# Both separators are captured (`s1`, `s2`) and must be equal: neither engine may use a
# back-reference for it, so each side compares them after the match.
YMD_RE = (
    r"^(?P<y>[0-9]{4})(?P<s1>[-/.])(?P<m>[0-9]{1,2})(?P<s2>[-/.])(?P<d>[0-9]{1,2})"
    rf"(?:[Tt ]{_CLOCK}{_OFFSET}?)?$"
)
DM_RE = (
    r"^(?P<a>[0-9]{1,2})(?P<s1>[-/.])(?P<b>[0-9]{1,2})(?P<s2>[-/.])(?P<y>[0-9]{4})"
    rf"(?: {_CLOCK})?$"
)
NAMED_MF_RE = r"^(?P<n>[A-Za-z]{3,9})\.? +(?P<d>[0-9]{1,2}),? +(?P<y>[0-9]{4})$"
NAMED_DF_RE = r"^(?P<d>[0-9]{1,2})(?: +|-)(?P<n>[A-Za-z]{3,9})\.?,?(?: +|-)(?P<y>[0-9]{4})$"
# Date-only shapes (a subset of the above) that the vectorised path reads with a native date
# parser instead of regex groups: the common case, kept cheap.
YMD_DATE_ONLY_RE = (
    r"^[0-9]{4}(?:-[0-9]{1,2}-[0-9]{1,2}|/[0-9]{1,2}/[0-9]{1,2}|\.[0-9]{1,2}\.[0-9]{1,2})$"
)
DM_DATE_ONLY_RE = r"^[0-9]{1,2}(?:/[0-9]{1,2}/|\.[0-9]{1,2}\.|-[0-9]{1,2}-)[0-9]{4}$"
MAX_OFFSET_HOURS = 23
MAX_OFFSET_MINUTES = 59
MIN_YEAR, MAX_YEAR = 1, 9999
