"""Question and answer bodies (seed 004's query shapes)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from app.core.schemas import InputSchema, Schema


class AskRequest(InputSchema):
    question: str = Field(
        min_length=1,
        max_length=1000,
        description="A question about this data item, in plain language.",
        examples=["monthly revenue by region in 2025"],
    )


class AskAnswer(Schema):
    type: Literal["table", "visualization", "text"] = Field(examples=["visualization"])
    visualization_type: Literal["bar", "line", "pie"] | None = Field(
        default=None, description="For a visualization: the chart it suits.", examples=["bar"]
    )
    data: Any = Field(
        description=(
            'text: a sentence built from the result; table: {"columns": [names], "rows": '
            '[[…]]}; visualization: {"labels": […], "datasets": [{"label", "data"}]}. Every '
            "number comes from the database, exactly."
        ),
        examples=[
            {
                "labels": ["North", "South"],
                "datasets": [{"label": "Sum of Revenue", "data": [1250.5, 980]}],
            }
        ],
    )
    query: dict[str, Any] = Field(
        description="The query that was run (the body `POST …/query/` takes).",
        examples=[{"group_by": [101], "aggregations": [{"field": 102, "op": "sum"}]}],
    )
