"""Decimals a column at a time (Polars): the grammar's decimal patterns, and canonical text
computed from the digits, never through a float.

Canonical form (as `decimal.canonical_decimal` gives it one value at a time): the exact digits;
`-` only when negative and non-zero; no `+`, thousands separators, leading zeros, trailing
fractional zeros or bare point; decimal comma -> point; exponents expanded. `45200.50` ->
`45200.5`, `-0.0` -> `0`, `.5` -> `0.5`, `1,234.50` -> `1234.5`, `1.5E-3` -> `0.0015`.
"""

from __future__ import annotations

import polars as pl

from app.fieldtypes.grammar import (
    DECIMAL_COMMA_RE,
    DECIMAL_RE,
    EXPONENT_BOUND,
    INFER_DECIMAL_COMMA_RE,
    INFER_DECIMAL_RE,
    MAX_DECIMAL_CHARS,
)
from app.fieldtypes.vector import evaluate, patch


def _decimal_parts(t: pl.Expr) -> tuple[pl.Expr, pl.Expr, pl.Expr]:
    """(negative, significant digits, point position) of a point-style value without
    separators: the value is ``0.<digits> * 10**position``; digits have no leading or trailing
    zeros (empty for zero). An exponent beyond ±EXPONENT_BOUND (or beyond an Int64) counts as
    that bound: a non-zero value with it is far too long either way."""
    neg = t.str.starts_with("-")
    mant_exp = t.str.strip_chars_start("+-").str.replace("E", "e", literal=True)
    mant_exp = mant_exp.str.split_exact("e", 1)
    exp_text = mant_exp.struct.field("field_1")
    huge = pl.when(exp_text.str.starts_with("-")).then(-EXPONENT_BOUND).otherwise(EXPONENT_BOUND)
    exp_value = exp_text.cast(pl.Int64, strict=False).fill_null(huge)
    exp = (
        pl.when(exp_text.is_null())
        .then(pl.lit(0, pl.Int64))
        .otherwise(exp_value.clip(-EXPONENT_BOUND, EXPONENT_BOUND))
    )
    int_frac = mant_exp.struct.field("field_0").str.split_exact(".", 1)
    int_part = int_frac.struct.field("field_0")
    digits = int_part + int_frac.struct.field("field_1").fill_null("")
    stripped = digits.str.strip_chars_start("0")
    lead = (digits.str.len_chars() - stripped.str.len_chars()).cast(pl.Int64)
    position = int_part.str.len_chars().cast(pl.Int64) + exp - lead
    return neg, stripped.str.strip_chars_end("0"), position


def _general_length(t: pl.Expr) -> pl.Expr:
    """Length of the canonical text."""
    neg, digits, pos = _decimal_parts(t)
    n = digits.str.len_chars().cast(pl.Int64)
    body = (
        pl.when(n == 0)
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


def unseparated(v: pl.Series, *, comma: bool) -> pl.Series:
    """Point-style text without thousands separators."""
    if comma:
        if v.str.contains(".", literal=True).any():
            v = v.str.replace_all(".", "", literal=True)
        if v.str.contains(",", literal=True).any():
            v = v.str.replace(",", ".", literal=True)
    elif v.str.contains(",", literal=True).any():
        v = v.str.replace_all(",", "", literal=True)
    return v


def decimal_ok(v: pl.Series, *, comma: bool, leading_zeros: bool = True) -> pl.Series:
    """The value is a decimal in that style whose canonical form is at most 200 characters.
    `leading_zeros=False` (inference): `007` is not a number but a code."""
    if leading_zeros:
        ok = v.str.contains(DECIMAL_COMMA_RE if comma else DECIMAL_RE)
    else:
        ok = v.str.contains(INFER_DECIMAL_COMMA_RE if comma else INFER_DECIMAL_RE)
    # Without an exponent the canonical text is at most one character longer than the value
    # (`.5` -> `0.5`): only exponents and long values need the exact length.
    long = ok & (v.str.contains_any(["e", "E"]) | (v.str.len_bytes() >= MAX_DECIMAL_CHARS))
    return patch(
        ok,
        long,
        v,
        lambda sub: (
            evaluate(unseparated(sub, comma=comma), _general_length(pl.col("v")))
            .le(MAX_DECIMAL_CHARS)
            .fill_null(False)
        ),
    )


def canonical_decimals(v: pl.Series, *, comma: bool) -> pl.Series:
    """Canonical text of values that are ``decimal_ok`` (pass others as null)."""
    s = unseparated(v, comma=comma)
    has_exp = s.str.contains_any(["e", "E"])
    if s.str.starts_with("+").any():
        s = s.str.strip_prefix("+")
    dotted = s.str.contains(".", literal=True)
    if dotted.any():
        trimmed = s.str.strip_chars_end("0").str.strip_chars_end(".")
        s = trimmed if dotted.all() else evaluate(s, pl.when(dotted).then(trimmed).otherwise("v"))
    if s.str.contains(r"^-?0[0-9]").any():
        s = s.str.replace(r"^(-?)0+([0-9])", "${1}${2}")
    if (s.str.starts_with(".") | s.str.starts_with("-.")).any():
        s = s.str.replace(r"^(-?)\.", "${1}0.")
    zero = s.is_in(["", "-", "-0"])
    if zero.any():
        s = evaluate(s, pl.when(zero).then(pl.lit("0")).otherwise("v"))
    return patch(
        s,
        has_exp,
        v,
        lambda sub: evaluate(unseparated(sub, comma=comma), _general_canonical(pl.col("v"))),
    )


def float_texts(column: pl.Series) -> pl.Series:
    """Canonical decimal text of a float column: shortest round-trip digits, plain notation.
    NaN and infinities give null."""
    finite = column.cast(pl.Float64)
    text = evaluate(finite, pl.when(pl.col("v").is_finite()).then(pl.col("v").cast(pl.String)))
    return canonical_decimals(text, comma=False)
