"""Row documents from converted columns, vectorised with Polars: one JSON object text per row,
keyed by field id, built from each column's JSON fragments (which the field types write, see
app/fieldtypes), and the check for control characters that search needs to know about."""

from __future__ import annotations

from collections.abc import Sequence

import polars as pl

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
