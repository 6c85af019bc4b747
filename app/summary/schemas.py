"""Summary response shapes (documentation; the body is rendered with exact decimals)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from app.core.schemas import Schema


class TopValue(Schema):
    value: str = Field(examples=["North"])
    count: int = Field(examples=[412])


class InvalidCell(Schema):
    row_ref: str = Field(examples=["17"])
    value: object = Field(examples=["abc"], description="The value as stored.")


class _Common(Schema):
    field_id: int = Field(examples=[101])
    field_label: str = Field(examples=["Region"])
    total_values: int = Field(examples=[1250], description="Non-empty cells.")
    empty_count: int = Field(examples=[0])
    invalid_count: int | None = Field(
        default=None,
        examples=[None],
        description=(
            "Only when some stored values do not fit the field's type (data written before a "
            "fix): how many. They are left out of the other statistics; change or delete their "
            "rows to repair them."
        ),
    )
    invalid_cells: list[InvalidCell] | None = Field(
        default=None, description="The first 5 such cells, by row."
    )


class TextSummary(_Common):
    field_type: Literal["char", "text"]
    unique_count: int = Field(examples=[4])
    top_values: list[TopValue]


class DecimalSummary(_Common):
    field_type: Literal["decimal"]
    min: float | None = Field(examples=[1200.0])
    max: float | None = Field(examples=[98500.0])
    sum: float | None = Field(examples=[15680432.5], description="Exact decimal arithmetic.")
    avg: float | None = Field(examples=[12544.35])


class DateSummary(_Common):
    field_type: Literal["date"]
    min_date: str | None = Field(examples=["2026-01-02"])
    max_date: str | None = Field(examples=["2026-03-31"])


class BooleanSummary(_Common):
    field_type: Literal["boolean"]
    true_count: int = Field(examples=[800])
    false_count: int = Field(examples=[450])


FieldSummary = Annotated[
    TextSummary | DecimalSummary | DateSummary | BooleanSummary, Field(discriminator="field_type")
]


class SummaryRead(Schema):
    id: int = Field(examples=[42])
    data_name: str = Field(examples=["Q1 Sales Report"])
    row_count: int = Field(examples=[1250])
    field_count: int = Field(examples=[4])
    field_summaries: list[FieldSummary]
