"""Field statistics from the values an upload writes, computed with Polars while the rows stream
into PostgreSQL (so the summary of a freshly loaded 1M-row item costs nothing to read).

Accumulated chunk by chunk; the results equal what `app/summary/repository.py` computes in SQL
(exact decimal sums, codepoint order for text, ISO text order for dates).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal, localcontext
from typing import Any

import polars as pl

from app.fields.types import FieldType, is_textual

_DECIMAL_DIGITS = 38  # Polars' Decimal128; beyond it, Python's Decimal does the sum


def _exact_decimals(display: pl.Series) -> tuple[Decimal, Decimal, Decimal, int]:
    """(sum, min, max, scale) of canonical decimal texts, exactly."""
    # canonical texts are ASCII `-?digits(.digits)?`: byte positions are character positions
    length = display.str.len_bytes().cast(pl.Int64)
    point = display.str.find(".", literal=True).cast(pl.Int64)
    scale = int((length - point - 1).fill_null(0).max() or 0)  # type: ignore[arg-type]
    whole = point.fill_null(length) - display.str.starts_with("-").cast(pl.Int64)
    int_digits = int(whole.max() or 1)  # type: ignore[arg-type]
    headroom = len(str(display.len())) + 1
    if int_digits + scale + headroom <= _DECIMAL_DIGITS:
        values = display.cast(pl.Decimal(_DECIMAL_DIGITS, scale))
        total, low, high = values.sum(), values.min(), values.max()
        assert isinstance(total, Decimal)
        assert isinstance(low, Decimal)
        assert isinstance(high, Decimal)
        return total.normalize(), low.normalize(), high.normalize(), scale
    numbers = [Decimal(v) for v in display.to_list()]
    with localcontext() as ctx:
        ctx.prec = 1_000
        return sum(numbers, Decimal(0)), min(numbers), max(numbers), scale


@dataclass
class ColumnStats:
    """Running statistics of one field over the chunks of an upload."""

    field_type: FieldType
    # char/text: count each distinct value (for unique and top values). An append into an
    # existing field does not: those are recounted over the whole item afterwards.
    counts: bool = True
    non_empty: int = 0
    num_sum: Decimal | None = None
    num_min: Decimal | None = None
    num_max: Decimal | None = None
    num_scale: int | None = None
    text_min: str | None = None
    text_max: str | None = None
    true_count: int = 0
    false_count: int = 0
    _counts: list[pl.DataFrame] = field(default_factory=list)

    def add(self, display: pl.Series) -> None:
        """Add a chunk: the display text of each cell (null = empty)."""
        values = display.drop_nulls()
        if values.len() == 0:
            return
        self.non_empty += values.len()
        kind = self.field_type
        if is_textual(kind):
            if self.counts:
                self._counts.append(values.rename("value").value_counts(name="count"))
        elif kind is FieldType.DECIMAL:
            total, low, high, scale = _exact_decimals(values)
            with localcontext() as ctx:
                ctx.prec = 1_000
                self.num_sum = total if self.num_sum is None else self.num_sum + total
            self.num_min = low if self.num_min is None else min(self.num_min, low)
            self.num_max = high if self.num_max is None else max(self.num_max, high)
            self.num_scale = scale if self.num_scale is None else max(self.num_scale, scale)
        elif kind is FieldType.DATE:
            low_text, high_text = values.min(), values.max()
            assert isinstance(low_text, str)
            assert isinstance(high_text, str)
            self.text_min = low_text if self.text_min is None else min(self.text_min, low_text)
            self.text_max = high_text if self.text_max is None else max(self.text_max, high_text)
        else:
            trues = int((values == "true").sum())
            self.true_count += trues
            self.false_count += values.len() - trues

    def result(self) -> dict[str, Any]:
        """The `field_stats` columns."""
        out: dict[str, Any] = {
            "non_empty": self.non_empty,
            "num_sum": self.num_sum, "num_min": self.num_min, "num_max": self.num_max,
            "num_scale": self.num_scale, "text_min": self.text_min, "text_max": self.text_max,
            "true_count": self.true_count, "false_count": self.false_count,
            "unique_count": None, "top_values": None,
        }  # fmt: skip
        if is_textual(self.field_type) and self.counts:
            if self._counts:
                counts = (
                    pl.concat(self._counts).group_by("value").agg(pl.col("count").sum())
                    if len(self._counts) > 1
                    else self._counts[0]
                )
                # the 10 most frequent, ties by value: top_k, not a sort of every distinct value
                # (1M distinct customers: 0.1 s instead of 1.4 s)
                top = counts.top_k(10, by=["count", "value"], reverse=[False, True]).sort(
                    ["count", "value"], descending=[True, False]
                )
                out["unique_count"] = counts.height
                out["top_values"] = [{"value": v, "count": int(c)} for v, c in top.iter_rows()]
            else:
                out["unique_count"], out["top_values"] = 0, []
        return out

    def increments(self) -> dict[str, Any]:
        """What an append adds (for `summary.service`'s incremental update of typed fields)."""
        return {
            "count": self.non_empty, "num_sum": self.num_sum, "num_min": self.num_min,
            "num_max": self.num_max, "num_scale": self.num_scale, "text_min": self.text_min,
            "text_max": self.text_max, "true_count": self.true_count, "false_count": self.false_count,
        }  # fmt: skip
