"""The query parameters that select rows: `search`, `filter` and `sort`, the same on every
endpoint that takes them (rows listing, export)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Query

SearchParam = Annotated[str | None, Query(description="Text to find in any cell.")]
FilterParam = Annotated[
    str | None,
    Query(
        alias="filter",
        description=(
            'Filter as JSON: {"match": "all"|"any", "conditions": [{"field": <id>, "op": '
            'eq|ne|gt|gte|lt|lte|contains|in|is_empty|not_empty, "value": …}]}.'
        ),
        examples=['{"conditions": [{"field": 102, "op": "gt", "value": 1000}]}'],
    ),
]
SortParam = Annotated[
    str | None,
    Query(description="Field ids, `-` for descending, comma-separated.", examples=["102,-103"]),
]
