"""Dates a column at a time (Polars): the grammar's date patterns, read per family.

Canonical form (as `date.date_readings` gives it one value at a time): `YYYY-MM-DD`;
`YYYY-MM-DDTHH:MM:SS` when a time is given, plus `.ffffff` (trailing zeros trimmed) only for a
non-zero fraction; an offset is converted to UTC and dropped.
"""

from __future__ import annotations

from collections.abc import Callable

import polars as pl

from app.fieldtypes.grammar import (
    DATE_ORDERS,
    DM_DATE_ONLY_RE,
    DM_RE,
    MAX_OFFSET_HOURS,
    MAX_OFFSET_MINUTES,
    MAX_YEAR,
    MIN_YEAR,
    MONTH_NUMBERS,
    NAMED_DF_RE,
    NAMED_MF_RE,
    YMD_DATE_ONLY_RE,
    YMD_RE,
)
from app.fieldtypes.vector import evaluate

# Cheap prefilters: only values that start like a date-time go through the full pattern.
_YMD_TIME_SHAPE = r"^[0-9]{4}[-/.][0-9]{1,2}[-/.][0-9]{1,2}[Tt ]"
_DM_TIME_SHAPE = r"^[0-9]{1,2}[-/.][0-9]{1,2}[-/.][0-9]{4} "
_DM_PAIR_RE = r"^(?P<a>[0-9]{1,2})[-/.](?P<b>[0-9]{1,2})[-/.]"


def _calendar_ok(y: pl.Expr, m: pl.Expr, d: pl.Expr) -> pl.Expr:
    leap = ((y % 4 == 0) & (y % 100 != 0)) | (y % 400 == 0)
    february = pl.when(leap).then(29).otherwise(28)
    dim = pl.when(m == 2).then(february).when(m.is_in([4, 6, 9, 11])).then(30).otherwise(31)
    return (y >= MIN_YEAR) & (m >= 1) & (m <= 12) & (d >= 1) & (d <= dim)


def _pad2(e: pl.Expr) -> pl.Expr:
    return e.cast(pl.String).str.pad_start(2, "0")


def _components(sub: pl.Series, pattern: str, with_text: bool) -> pl.DataFrame:
    """ok/text from regex groups y, m (or n, a month name), d and optional s1 s2 (separators,
    equal) H M S F Z."""
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
    if "s1" in names:
        ok = ok & (pl.col("s1") == pl.col("s2"))
    text = pl.concat_str(pl.col("y"), pl.lit("-"), _pad2(m), pl.lit("-"), _pad2(d))
    if "H" in names:
        hh, mi = pl.col("H").cast(pl.Int32), pl.col("M").cast(pl.Int32)
        ss = pl.col("S").cast(pl.Int32).fill_null(0)
        timed = pl.col("H").is_not_null()
        ok = ok & (~timed | ((hh <= 23) & (mi <= 59) & (ss <= 59)))
        frac = pl.col("F").fill_null("").str.strip_chars_end("0")
        frac = pl.when(frac == "").then(pl.lit("")).otherwise("." + frac)
        clock = pl.concat_str(
            pl.lit("T"), _pad2(hh), pl.lit(":"), _pad2(mi), pl.lit(":"), _pad2(ss)
        )
        text = pl.when(timed).then(text + clock + frac).otherwise(text)
        if "Z" in names:
            zone = pl.col("Z").str.replace(":", "", literal=True)
            utc = zone.is_null() | zone.is_in(["Z", "z"])
            zh = zone.str.slice(1, 2).cast(pl.Int64, strict=False)
            zm = zone.str.slice(3, 2).cast(pl.Int64, strict=False)
            ok = ok & (utc | ((zh <= MAX_OFFSET_HOURS) & (zm <= MAX_OFFSET_MINUTES)))
            sign = pl.when(zone.str.starts_with("-")).then(-1).otherwise(1)
            minutes = sign * (zh * 60 + zm)

            def safe(e: pl.Expr, default: int) -> pl.Expr:  # (invalid parts raise in datetime)
                return pl.when(ok).then(e).otherwise(default)

            moment = pl.datetime(
                safe(y, 2000), safe(m, 1), safe(d, 1), safe(hh, 0), safe(mi, 0), safe(ss, 0)
            )
            shifted = moment - pl.duration(minutes=minutes.fill_null(0))
            year = shifted.dt.year()
            ok = ok & (utc | ((year >= MIN_YEAR) & (year <= MAX_YEAR)))
            moved = shifted.dt.to_string("%Y-%m-%dT%H:%M:%S") + frac
            text = pl.when(utc | (minutes == 0)).then(text).otherwise(moved)
    ok = ok.fill_null(False)
    exprs = [ok.alias("ok")]
    if with_text:
        exprs.append(pl.when(ok).then(text).alias("text"))
    return g.lazy().select(exprs).collect()


class DateReading:
    """One date family's reading of a Series of values.

    ``ok``: the value has the family's shape and is a real calendar date (with a valid time of
    day); ``text``: canonical text where ``ok`` (only with ``with_text``).
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
            self._fast(v, YMD_DATE_ONLY_RE, "-", "%Y-%m-%d")
        else:
            fmt = "%d/%m/%Y" if order == "dmy" else "%m/%d/%Y"
            self._fast(v, DM_DATE_ONLY_RE, "/", fmt)

    @staticmethod
    def differs(v: pl.Series) -> pl.Series:
        """For day/month readings: true where day and month would swap to a different date."""
        g = pl.DataFrame({"v": v}).select(pl.col("v").str.extract_groups(_DM_PAIR_RE)).unnest("v")
        return g.select(pl.col("a").cast(pl.Int32) != pl.col("b").cast(pl.Int32)).to_series()

    def _dm_pattern(self) -> str:
        first, second = ("d", "m") if self.order == "dmy" else ("m", "d")
        return DM_RE.replace("(?P<a>", f"(?P<{first}>").replace("(?P<b>", f"(?P<{second}>")

    def _fast(self, v: pl.Series, shape: str, sep: str, fmt: str) -> None:
        """Date-only values of the common shape, through Polars' native strptime; the other
        values (date-times) are read from regex groups."""
        mask = v.str.contains(shape).fill_null(False)
        rest = v.is_not_null() & ~mask
        if mask.any():
            sub = v if mask.all() else evaluate(v, pl.when("m").then("v"), m=mask)
            others = ["/", "."] if sep == "-" else [".", "-"]
            if normalised := bool(sub.str.contains_any(others).any()):
                sub = sub.str.replace_many(others, [sep, sep])
            parsed = sub.str.to_date(fmt, strict=False)
            ok = (parsed.dt.year() >= MIN_YEAR).fill_null(False)
            self.ok = ok
            if self._with_text:
                # an ISO date with two-digit month and day is already canonical
                iso = sep == "-" and not normalised and bool((sub.str.len_bytes() == 10).all())
                text = pl.col("v") if iso else pl.col("p").dt.to_string("%Y-%m-%d")
                self.text = evaluate(sub, pl.when("ok").then(text), ok=ok, p=parsed)
        if rest.any():
            time_shape = _YMD_TIME_SHAPE if self.order == "ymd" else _DM_TIME_SHAPE
            pattern = YMD_RE if self.order == "ymd" else self._dm_pattern()
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
        first = _components(sub, NAMED_MF_RE, self._with_text)
        second = _components(sub, NAMED_DF_RE, self._with_text)
        ok = first["ok"] | second["ok"]
        text = first["text"].fill_null(second["text"]) if self._with_text else None
        return pl.DataFrame({"ok": ok, "text": text})


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
    return evaluate(column, pl.when(midnight).then(e.dt.to_string("%Y-%m-%d")).otherwise(clock))
