"""The vectorised side of the grammar's shared parts (Polars): trimming, missing cells, and the
helpers the kinds' column readers are built from.

Functions take a String Series ``v`` of *values*: cells trimmed of surrounding whitespace, with
empty cells and missing markers already null (``values_of``). Results are Series of the same
length, null where ``v`` is null. Rare shapes (exponents, date-times, month names) are computed
on the subset of rows that have them and patched back, so the common shapes stay cheap.
"""

from __future__ import annotations

from collections.abc import Callable

import polars as pl

from app.fieldtypes.grammar import MISSING_SPELLINGS


def evaluate(series: pl.Series, expr: pl.Expr, **others: pl.Series) -> pl.Series:
    """Evaluate an expression over ``pl.col("v")`` = ``series`` and any other named Series of
    the same length (lazily, so Polars shares repeated sub-expressions)."""
    frame = pl.DataFrame({"v": series, **others})
    return frame.lazy().select(expr.alias("v")).collect().to_series()


def patch(
    base: pl.Series, mask: pl.Series, source: pl.Series, fn: Callable[[pl.Series], pl.Series]
) -> pl.Series:
    """``base`` with the rows where ``mask`` is true replaced by ``fn(source[those rows])``."""
    idx = mask.fill_null(False).arg_true()
    if idx.len() == 0:
        return base
    return base.clone().scatter(idx, fn(source.gather(idx)))


def trimmed(column: pl.Series) -> pl.Series:
    """Cell text without surrounding whitespace (grammar.WHITESPACE: Polars' own trim)."""
    return column.str.strip_chars()


def values_of(column: pl.Series) -> pl.Series:
    """Trimmed cell text, null for empty/whitespace-only cells and missing markers."""
    t = pl.col("v").str.strip_chars()
    missing = (t.str.len_bytes() == 0) | t.is_in(MISSING_SPELLINGS)
    return evaluate(column, pl.when(~missing).then(t))


def is_missing(t: pl.Series) -> pl.Series:
    """Null, empty, or a missing marker (``t`` already trimmed)."""
    expr = pl.col("v").is_null() | (pl.col("v").str.len_bytes() == 0)
    return evaluate(t, expr | pl.col("v").is_in(MISSING_SPELLINGS))


def present_text(column: pl.Series) -> pl.Series:
    """The untrimmed cell text, null for empty and whitespace-only cells (char/text rule)."""
    return evaluate(column, pl.when(pl.col("v").str.strip_chars().str.len_bytes() > 0).then("v"))


def keep(text: pl.Series, ok: pl.Series) -> pl.Series:
    """``text`` where ``ok``, null elsewhere."""
    frame = pl.DataFrame({"t": text, "ok": ok})
    return frame.select(pl.when(pl.col("ok")).then(pl.col("t"))).to_series()


def json_strings(text: pl.Series) -> pl.Series:
    """JSON string literal of each value (quotes included); null stays null.

    Polars' JSON encoder escapes quotes, backslashes and control characters and keeps
    non-ASCII text as UTF-8 (checked by round-tripping random strings in the tests).
    """
    encoded = pl.struct(pl.col("v").alias("k")).struct.json_encode()
    stripped = encoded.str.strip_prefix('{"k":').str.strip_suffix("}")
    return evaluate(text, pl.when(pl.col("v").is_not_null()).then(stripped))


def quoted(text: pl.Series) -> pl.Series:
    """``"text"`` for text that needs no escaping (dates); null stays null."""
    return evaluate(text, pl.concat_str(pl.lit('"'), pl.col("v"), pl.lit('"')))
