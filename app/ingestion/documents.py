"""Cell grammar, canonical forms and JSON documents, vectorised with Polars.

This module knows what one cell *is* — missing, a decimal in point or comma style, a boolean
word, a date in one of the date families — and how to write it in its canonical stored form
and as a JSON fragment. It makes no decision about a whole column: that is ``inference.py``,
whose docstring states the rules with examples.

Functions take a String Series ``v`` of *values*: cells trimmed of surrounding whitespace, with
empty cells and missing markers already null (``values_of``). Results are Series of the same
length, null where ``v`` is null. Rare shapes (exponents, date-times, month names) are computed
on the subset of rows that have them and patched back, so the common shapes stay cheap.

Canonical forms (the rest of the service writes the same forms independently):

- decimal: the exact digits of the text, never via a float; ``-`` only when negative and
  non-zero; no ``+``, thousands separators, leading zeros, trailing fractional zeros or bare
  point; decimal comma -> point; exponents expanded. ``45200.50`` -> ``45200.5``,
  ``-0.0`` -> ``0``, ``.5`` -> ``0.5``, ``1,234.50`` -> ``1234.5``, ``1.5E-3`` -> ``0.0015``.
- date: ``YYYY-MM-DD``; ``YYYY-MM-DDTHH:MM:SS`` when a time is given, plus ``.ffffff`` (trailing
  zeros trimmed) only for non-zero fractional seconds; an offset is converted to UTC and dropped.
- boolean: ``true`` / ``false``.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable, Sequence

import polars as pl

# ----------------------------------------------------------------------------- helpers

MISSING_MARKERS = ("na", "n/a", "null", "nan", "#n/a", "-")


def _case_variants(words: Iterable[str]) -> list[str]:
    """Every upper/lower-case spelling of each word (``is_in`` on these beats lowercasing)."""
    out: set[str] = set()
    for word in words:
        choices = [sorted({c.lower(), c.upper()}) for c in word]
        out.update("".join(p) for p in itertools.product(*choices))
    return sorted(out)


_MARKER_SPELLINGS = _case_variants(MISSING_MARKERS)


def _eval(series: pl.Series, expr: pl.Expr, **others: pl.Series) -> pl.Series:
    """Evaluate an expression over ``pl.col("v")`` = ``series`` and any other named Series of
    the same length (lazily, so Polars shares repeated sub-expressions)."""
    frame = pl.DataFrame({"v": series, **others})
    return frame.lazy().select(expr.alias("v")).collect().to_series()


def _patch(
    base: pl.Series, mask: pl.Series, source: pl.Series, fn: Callable[[pl.Series], pl.Series]
) -> pl.Series:
    """``base`` with the rows where ``mask`` is true replaced by ``fn(source[those rows])``."""
    idx = mask.fill_null(False).arg_true()
    if idx.len() == 0:
        return base
    return base.clone().scatter(idx, fn(source.gather(idx)))


def values_of(column: pl.Series) -> pl.Series:
    """Trimmed cell text, null for empty/whitespace-only cells and missing markers."""
    return _eval(column, _values_expr(pl.col("v")))


def _values_expr(e: pl.Expr) -> pl.Expr:
    t = e.str.strip_chars()
    missing = (t.str.len_bytes() == 0) | t.is_in(_MARKER_SPELLINGS)
    return pl.when(~missing).then(t)


def is_missing(t: pl.Series) -> pl.Series:
    """Null, empty, or a missing marker (``t`` already trimmed)."""
    expr = pl.col("v").is_null() | (pl.col("v").str.len_bytes() == 0)
    return _eval(t, expr | pl.col("v").is_in(_MARKER_SPELLINGS))


def present_text(column: pl.Series) -> pl.Series:
    """The untrimmed cell text, null for empty and whitespace-only cells (char/text rule)."""
    return _eval(column, pl.when(pl.col("v").str.strip_chars().str.len_bytes() > 0).then("v"))


# ----------------------------------------------------------------------------- decimals


def _ascii(pattern: str) -> str:
    """`\\d` as `[0-9]`: Polars' regex (Rust) matches every Unicode digit with `\\d` ("٣", "३"),
    which the casts that follow cannot read (a 500); a number or a date is ASCII digits."""
    return pattern.replace(r"\d", "[0-9]")


_EXP = r"(?:[eE][+-]?\d+)?"
_INT_POINT = r"(?:0|[1-9]\d{0,2}(?:,\d{3})+|[1-9]\d*)"
_INT_COMMA = r"(?:0|[1-9]\d{0,2}(?:\.\d{3})+|[1-9]\d*)"
DECIMAL_POINT_RE = _ascii(rf"^[+-]?(?:{_INT_POINT}(?:\.\d*)?|\.\d+){_EXP}$")
DECIMAL_COMMA_RE = _ascii(rf"^[+-]?(?:{_INT_COMMA}(?:,\d*)?|,\d+){_EXP}$")
# Into a field that is already decimal, a leading zero is just a zero ("007" is 7), as in the API;
# only inference treats it as the sign of a code.
_ANY_INT_POINT = r"(?:\d{1,3}(?:,\d{3})+|\d+)"
_ANY_INT_COMMA = r"(?:\d{1,3}(?:\.\d{3})+|\d+)"
ANY_DECIMAL_POINT_RE = _ascii(rf"^[+-]?(?:{_ANY_INT_POINT}(?:\.\d*)?|\.\d+){_EXP}$")
ANY_DECIMAL_COMMA_RE = _ascii(rf"^[+-]?(?:{_ANY_INT_COMMA}(?:,\d*)?|,\d+){_EXP}$")
LEADING_ZERO_RE = _ascii(r"^[+-]?0\d+(?:\.\d*)?$")
MAX_DECIMAL_CHARS = 200


def _decimal_parts(t: pl.Expr) -> tuple[pl.Expr, pl.Expr, pl.Expr]:
    """(negative, significant digits, point position) of a point-style value without
    separators: the value is ``0.<digits> * 10**position``; digits have no leading or trailing
    zeros (empty for zero); position is null when the exponent does not fit an Int64."""
    neg = t.str.starts_with("-")
    mant_exp = t.str.strip_chars_start("+-").str.replace("E", "e", literal=True)
    mant_exp = mant_exp.str.split_exact("e", 1)
    exp_text = mant_exp.struct.field("field_1")
    exp_value = exp_text.cast(pl.Int64, strict=False)
    exp = pl.when(exp_text.is_null()).then(pl.lit(0, pl.Int64)).otherwise(exp_value)
    int_frac = mant_exp.struct.field("field_0").str.split_exact(".", 1)
    int_part = int_frac.struct.field("field_0")
    digits = int_part + int_frac.struct.field("field_1").fill_null("")
    stripped = digits.str.strip_chars_start("0")
    lead = (digits.str.len_chars() - stripped.str.len_chars()).cast(pl.Int64)
    position = int_part.str.len_chars().cast(pl.Int64) + exp - lead
    return neg, stripped.str.strip_chars_end("0"), position


def _general_length(t: pl.Expr) -> pl.Expr:
    neg, digits, pos = _decimal_parts(t)
    n = digits.str.len_chars().cast(pl.Int64)
    body = (
        pl.when(pos.is_null())
        .then(pl.lit(None, pl.Int64))
        .when(n == 0)
        .then(pl.lit(1, pl.Int64))
        .when(pos <= 0)
        .then(2 - pos + n)
        .when(pos >= n)
        .then(pos)
        .otherwise(n + 1)
    )
    return body + (neg & (n > 0)).cast(pl.Int64)


def _general_canonical(t: pl.Expr) -> pl.Expr:
    neg, digits, pos = _decimal_parts(t)
    pos = pos.clip(0 - MAX_DECIMAL_CHARS - 1, MAX_DECIMAL_CHARS + 1)
    n = digits.str.len_chars().cast(pl.Int64)
    lead = (n - pos).clip(lower_bound=0)
    cut = pos.clip(lower_bound=0)
    body = (
        pl.when(n == 0)
        .then(pl.lit("0"))
        .when(pos <= 0)
        .then("0." + digits.str.pad_start(lead, "0"))
        .when(pos >= n)
        .then(digits.str.pad_end(cut, "0"))
        .otherwise(digits.str.head(cut) + "." + digits.str.slice(cut))
    )
    return pl.when(neg & (n > 0)).then("-" + body).otherwise(body)


def _unseparated(v: pl.Series, *, comma: bool) -> pl.Series:
    """Point-style text without thousands separators."""
    if comma:
        if v.str.contains(".", literal=True).any():
            v = v.str.replace_all(".", "", literal=True)
        if v.str.contains(",", literal=True).any():
            v = v.str.replace(",", ".", literal=True)
    elif v.str.contains(",", literal=True).any():
        v = v.str.replace_all(",", "", literal=True)
    return v


def decimal_ok(v: pl.Series, *, comma: bool, leading_zeros: bool = False) -> pl.Series:
    """The value is a decimal in that style whose canonical form is at most 200 characters.
    `leading_zeros`: accept `007` (writing into a decimal field) instead of refusing it (inference)."""
    if leading_zeros:
        ok = v.str.contains(ANY_DECIMAL_COMMA_RE if comma else ANY_DECIMAL_POINT_RE)
    else:
        ok = v.str.contains(DECIMAL_COMMA_RE if comma else DECIMAL_POINT_RE)
    long = ok & (v.str.contains_any(["e", "E"]) | (v.str.len_bytes() > MAX_DECIMAL_CHARS))
    return _patch(
        ok,
        long,
        v,
        lambda sub: (
            _eval(_unseparated(sub, comma=comma), _general_length(pl.col("v")))
            .le(MAX_DECIMAL_CHARS)
            .fill_null(False)
        ),
    )


def canonical_decimals(v: pl.Series, *, comma: bool) -> pl.Series:
    """Canonical text of values that are ``decimal_ok`` (pass others as null)."""
    s = _unseparated(v, comma=comma)
    has_exp = s.str.contains_any(["e", "E"])
    if s.str.starts_with("+").any():
        s = s.str.strip_prefix("+")
    dotted = s.str.contains(".", literal=True)
    if dotted.any():
        trimmed = s.str.strip_chars_end("0").str.strip_chars_end(".")
        s = trimmed if dotted.all() else _eval(s, pl.when(dotted).then(trimmed).otherwise("v"))
    if s.str.contains(r"^-?0[0-9]").any():
        s = s.str.replace(r"^(-?)0+([0-9])", "${1}${2}")
    if (s.str.starts_with(".") | s.str.starts_with("-.")).any():
        s = s.str.replace(r"^(-?)\.", "${1}0.")
    zero = s.is_in(["", "-", "-0"])
    if zero.any():
        s = _eval(s, pl.when(zero).then(pl.lit("0")).otherwise("v"))
    return _patch(
        s,
        has_exp,
        v,
        lambda sub: _eval(_unseparated(sub, comma=comma), _general_canonical(pl.col("v"))),
    )


def float_texts(column: pl.Series) -> pl.Series:
    """Canonical decimal text of a float column: shortest round-trip digits, plain notation.
    NaN and infinities give null."""
    finite = column.cast(pl.Float64)
    text = _eval(finite, pl.when(pl.col("v").is_finite()).then(pl.col("v").cast(pl.String)))
    return canonical_decimals(text, comma=False)


# ----------------------------------------------------------------------------- booleans

TRUE_WORDS = ("true", "yes", "t", "y")
FALSE_WORDS = ("false", "no", "f", "n")
_TRUE_SPELLINGS = [*_case_variants(TRUE_WORDS), "1"]
_FALSE_SPELLINGS = [*_case_variants(FALSE_WORDS), "0"]


def boolean_values(v: pl.Series) -> pl.Series:
    """True/False for a boolean word (any case) or 1/0, null otherwise."""
    expr = pl.when(pl.col("v").is_in(_TRUE_SPELLINGS)).then(pl.lit(True))
    return _eval(v, expr.when(pl.col("v").is_in(_FALSE_SPELLINGS)).then(pl.lit(False)))


# ----------------------------------------------------------------------------- dates

DATE_ORDERS = ("ymd", "dmy", "mdy", "named")

_YMD_DATE = _ascii(r"^\d{4}(?:-\d{1,2}-\d{1,2}|/\d{1,2}/\d{1,2}|\.\d{1,2}\.\d{1,2})$")
_YMD_TIME_SHAPE = _ascii(r"^\d{4}(?:-\d{1,2}-\d{1,2}|/\d{1,2}/\d{1,2}|\.\d{1,2}\.\d{1,2})[T ]")
_YMD_TIME_RE = _ascii(
    r"^(?<y>\d{4})[-/.](?<m>\d{1,2})[-/.](?<d>\d{1,2})[T ](?<H>\d{1,2}):(?<M>\d{2})"
    r"(?::(?<S>\d{2})(?:\.(?<F>\d{1,6}))?)?(?<Z>Z|[+-]\d{2}:?\d{2})?$"
)
_DM_DATE = _ascii(r"^\d{1,2}(?:/\d{1,2}/|\.\d{1,2}\.|-\d{1,2}-)\d{4}$")
_DM_TIME_SHAPE = _ascii(r"^\d{1,2}(?:/\d{1,2}/|\.\d{1,2}\.|-\d{1,2}-)\d{4} ")
_DM_TIME_RE = _ascii(
    r"^(?<a>\d{1,2})[-/.](?<b>\d{1,2})[-/.](?<y>\d{4}) (?<H>\d{1,2}):(?<M>\d{2})(?::(?<S>\d{2}))?$"
)
_DM_PAIR_RE = _ascii(r"^(?<a>\d{1,2})[-/.](?<b>\d{1,2})[-/.]")
_NAMED_MF_RE = _ascii(r"^(?<n>[A-Za-z]{3,9})\.? +(?<d>\d{1,2}),? +(?<y>\d{4})$")
_NAMED_DF_RE = _ascii(r"^(?<d>\d{1,2})(?: +|-)(?<n>[A-Za-z]{3,9})\.?,?(?: +|-)(?<y>\d{4})$")

_MONTHS = [
    *("january", "february", "march", "april", "may", "june"),
    *("july", "august", "september", "october", "november", "december"),
]
MONTH_NUMBERS: dict[str, int] = {"sept": 9}
for _number, _name in enumerate(_MONTHS, start=1):
    MONTH_NUMBERS[_name] = _number
    MONTH_NUMBERS[_name[:3]] = _number


def _calendar_ok(y: pl.Expr, m: pl.Expr, d: pl.Expr) -> pl.Expr:
    leap = ((y % 4 == 0) & (y % 100 != 0)) | (y % 400 == 0)
    february = pl.when(leap).then(29).otherwise(28)
    dim = pl.when(m == 2).then(february).when(m.is_in([4, 6, 9, 11])).then(30).otherwise(31)
    return (y >= 1) & (m >= 1) & (m <= 12) & (d >= 1) & (d <= dim)


def _pad2(e: pl.Expr) -> pl.Expr:
    return e.cast(pl.String).str.pad_start(2, "0")


def _components(sub: pl.Series, pattern: str, with_text: bool) -> pl.DataFrame:
    """ok/text from regex groups y, m (or n, a month name), d and optional H M S F Z."""
    g = pl.DataFrame({"v": sub}).select(pl.col("v").str.extract_groups(pattern)).unnest("v")
    names = set(g.columns)
    y = pl.col("y").cast(pl.Int32)
    if "n" in names:
        name = pl.col("n").str.to_lowercase()
        m = name.replace_strict(MONTH_NUMBERS, default=None, return_dtype=pl.Int32)
    else:
        m = pl.col("m").cast(pl.Int32)
    d = pl.col("d").cast(pl.Int32)
    ok = _calendar_ok(y, m, d)
    text = pl.concat_str(pl.col("y"), pl.lit("-"), _pad2(m), pl.lit("-"), _pad2(d))
    if "H" in names:
        hh, mi = pl.col("H").cast(pl.Int32), pl.col("M").cast(pl.Int32)
        ss = pl.col("S").cast(pl.Int32).fill_null(0)
        ok = ok & (hh <= 23) & (mi <= 59) & (ss <= 59)
        frac = pl.col("F").fill_null("") if "F" in names else pl.lit("")
        frac = frac.str.strip_chars_end("0")
        frac = pl.when(frac == "").then(pl.lit("")).otherwise("." + frac)
        clock = pl.concat_str(
            pl.lit("T"), _pad2(hh), pl.lit(":"), _pad2(mi), pl.lit(":"), _pad2(ss)
        )
        text = text + clock + frac
        if "Z" in names:
            zone = pl.col("Z").str.replace(":", "", literal=True)
            sign = pl.when(zone.str.starts_with("-")).then(-1).otherwise(1)
            minutes = sign * (
                zone.str.slice(1, 2).cast(pl.Int64, strict=False) * 60
                + zone.str.slice(3, 2).cast(pl.Int64, strict=False)
            )
            ok = ok & ((zone == "Z") | zone.is_null() | (minutes.abs() < 24 * 60))
            shifted = pl.datetime(y, m, d, hh, mi, ss) - pl.duration(minutes=minutes)
            utc = shifted.dt.to_string("%Y-%m-%dT%H:%M:%S") + frac
            text = pl.when(minutes.fill_null(0) == 0).then(text).otherwise(utc)
    ok = ok.fill_null(False)
    exprs = [ok.alias("ok")]
    if with_text:
        exprs.append(pl.when(ok).then(text).alias("text"))
    return g.lazy().select(exprs).collect()


class DateReading:
    """One date family's reading of a Series of values.

    ``ok``: the value has the family's shape and is a real calendar date (with a valid time of
    day); ``text``: canonical text where ``ok`` (only with ``with_text``); ``differs``: for
    dmy/mdy, the first two numbers differ (the two orders read the value differently).
    """

    def __init__(self, v: pl.Series, order: str, *, with_text: bool = True) -> None:
        if order not in DATE_ORDERS:
            raise ValueError(f"unknown date order {order!r}")
        self.order = order
        self.ok = pl.repeat(False, v.len(), dtype=pl.Boolean, eager=True)
        self.text = pl.repeat(None, v.len(), dtype=pl.String, eager=True)
        self._with_text = with_text
        if order == "named":
            self._part(v, v.is_not_null(), self._named)
        elif order == "ymd":
            self._fast(v, _YMD_DATE, "-", "%Y-%m-%d")
        else:
            fmt = "%d/%m/%Y" if order == "dmy" else "%m/%d/%Y"
            self._fast(v, _DM_DATE, "/", fmt)

    def differs(self, v: pl.Series) -> pl.Series:
        """For day/month readings: true where day and month would swap to a different date."""
        g = pl.DataFrame({"v": v}).select(pl.col("v").str.extract_groups(_DM_PAIR_RE)).unnest("v")
        return g.select(pl.col("a").cast(pl.Int32) != pl.col("b").cast(pl.Int32)).to_series()

    def _dm_pattern(self) -> str:
        first, second = ("d", "m") if self.order == "dmy" else ("m", "d")
        return _DM_TIME_RE.replace("<a>", f"<{first}>").replace("<b>", f"<{second}>")

    def _fast(self, v: pl.Series, shape: str, sep: str, fmt: str) -> None:
        """Date-only values of the common shape, through Polars' native strptime; the other
        values (date-times) are read from regex groups."""
        mask = v.str.contains(shape).fill_null(False)
        rest = v.is_not_null() & ~mask
        if mask.any():
            sub = v if mask.all() else _eval(v, pl.when("m").then("v"), m=mask)
            others = ["/", "."] if sep == "-" else [".", "-"]
            if normalised := bool(sub.str.contains_any(others).any()):
                sub = sub.str.replace_many(others, [sep, sep])
            parsed = sub.str.to_date(fmt, strict=False)
            ok = (parsed.dt.year() >= 1).fill_null(False)
            self.ok = ok
            if self._with_text:
                # an ISO date with two-digit month and day is already canonical
                iso = sep == "-" and not normalised and bool((sub.str.len_bytes() == 10).all())
                text = pl.col("v") if iso else pl.col("p").dt.to_string("%Y-%m-%d")
                self.text = _eval(sub, pl.when("ok").then(text), ok=ok, p=parsed)
        if rest.any():
            time_shape = _YMD_TIME_SHAPE if self.order == "ymd" else _DM_TIME_SHAPE
            pattern = _YMD_TIME_RE if self.order == "ymd" else self._dm_pattern()
            self._part(v, rest & v.str.contains(time_shape), self._regex(pattern))

    def _part(
        self, v: pl.Series, mask: pl.Series, read: Callable[[pl.Series], pl.DataFrame]
    ) -> None:
        """Rows in ``mask`` read by ``read`` (a rare shape: computed on the subset only)."""
        idx = mask.fill_null(False).arg_true()
        if idx.len() == 0:
            return
        result = read(v.gather(idx))
        self.ok = self.ok.clone().scatter(idx, result["ok"])
        if self._with_text:
            self.text = self.text.clone().scatter(idx, result["text"])

    def _regex(self, pattern: str) -> Callable[[pl.Series], pl.DataFrame]:
        return lambda sub: _components(sub, pattern, self._with_text)

    def _named(self, sub: pl.Series) -> pl.DataFrame:
        first = _components(sub, _NAMED_MF_RE, self._with_text)
        second = _components(sub, _NAMED_DF_RE, self._with_text)
        ok = first["ok"] | second["ok"]
        text = first["text"].fill_null(second["text"]) if self._with_text else None
        return pl.DataFrame({"ok": ok, "text": text})


# ----------------------------------------------------------------------------- typed cells


def datetime_texts(column: pl.Series) -> pl.Series:
    """Date/Datetime cells: ``YYYY-MM-DD`` at exactly midnight (or for a Date), else the
    date-time form with fractional seconds only when non-zero."""
    if column.dtype == pl.Date:
        return column.dt.to_string("%Y-%m-%d")
    e = pl.col("v")
    micros = e.dt.microsecond()
    frac = micros.cast(pl.String).str.pad_start(6, "0").str.strip_chars_end("0")
    clock = e.dt.to_string("%Y-%m-%dT%H:%M:%S") + pl.when(micros == 0).then(pl.lit("")).otherwise(
        "." + frac
    )
    midnight = (e.dt.hour() == 0) & (e.dt.minute() == 0) & (e.dt.second() == 0) & (micros == 0)
    return _eval(column, pl.when(midnight).then(e.dt.to_string("%Y-%m-%d")).otherwise(clock))


# ----------------------------------------------------------------------------- JSON


def json_strings(text: pl.Series) -> pl.Series:
    """JSON string literal of each value (quotes included); null stays null.

    Polars' JSON encoder escapes quotes, backslashes and control characters and keeps
    non-ASCII text as UTF-8 (checked by round-tripping random strings in the tests).
    """
    encoded = pl.struct(pl.col("v").alias("k")).struct.json_encode()
    stripped = encoded.str.strip_prefix('{"k":').str.strip_suffix("}")
    return _eval(text, pl.when(pl.col("v").is_not_null()).then(stripped))


# How json_strings writes the control characters U+0000-U+001F (short escapes or \u00XX).
_CONTROL_ESCAPES = ["\\u00", "\\n", "\\r", "\\t", "\\b", "\\f"]


def has_control_chars(fragments: pl.Series, text: pl.Series) -> bool:
    """Whether any value of ``text`` holds a control character, given its ``json_strings``.
    A substring scan of the escapes (which an escaped backslash can also produce) picks the
    candidates; the exact check runs on those only (a regex over every value costs 5x more)."""
    candidates = fragments.str.contains_any(_CONTROL_ESCAPES).fill_null(False)
    if not candidates.any():
        return False
    return bool(text.filter(candidates).str.contains(r"[\x00-\x1f]").any())


def quoted(text: pl.Series) -> pl.Series:
    """``"text"`` for text that needs no escaping (dates); null stays null."""
    return _eval(text, pl.concat_str(pl.lit('"'), pl.col("v"), pl.lit('"')))


def build_documents(columns: Sequence[tuple[int, pl.Series]]) -> pl.Series:
    """One JSON object text per row from ``(field_id, fragments)`` pairs.

    Keys are the field ids as strings, in the order given; null fragments are omitted, so an
    all-null row gives ``{}``: ``{"101":"North","102":45200.5}``.
    """
    if not columns:
        raise ValueError("build_documents needs at least one column")
    heights = {series.len() for _, series in columns}
    if len(heights) != 1:
        raise ValueError(f"fragment series differ in length: {sorted(heights)}")
    frame = pl.DataFrame([s.cast(pl.String).alias(f"f{i}") for i, (_, s) in enumerate(columns)])
    # One flat concat_str: a column without nulls contributes its key and value directly, a
    # nullable one a `,"key":value` piece that is "" where the value is null.
    parts: list[pl.Expr] = [pl.lit("{")]
    for i, (fid, series) in enumerate(columns):
        key = pl.lit(f'{"," if i else ""}"{int(fid)}":')
        col = pl.col(f"f{i}")
        parts.extend([key, col] if series.null_count() == 0 else [(key + col).fill_null("")])
    body = pl.concat_str(parts)
    if columns[0][1].null_count():
        body = pl.concat_str(pl.lit("{"), body.str.strip_prefix("{").str.strip_prefix(","))
    return frame.lazy().select((body + pl.lit("}")).alias("values")).collect().to_series()
