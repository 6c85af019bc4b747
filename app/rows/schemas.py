"""Row request and response bodies. Responses are rendered by PostgreSQL (exact numbers); these
models document them in OpenAPI."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import ConfigDict, Field, RootModel, StrictInt, StrictStr

from app.core.schemas import InputSchema, Schema
from app.rows.filters import FilterConfig

CellValue = str | float | bool | None

_ROW_EXAMPLE: dict[str, Any] = {
    "_row_ref": "0",
    "101": "North",
    "102": 45200.5,
    "103": "2026-01-15",
}


class RowValues(InputSchema):
    values: dict[str, Any] = Field(
        description=(
            "Cell values keyed by field id (as a string). A string that reads as the field's type "
            'is accepted ("31500.00" into a decimal). null empties a cell.'
        ),
        examples=[{"101": "West", "102": 31500.00, "103": "2026-03-01"}],
    )


FieldId = Annotated[int, Field(ge=1, le=2**63 - 1)]


class RowBulkCreate(InputSchema):
    rows: list[Any] = Field(
        description="Rows to create, each keyed by field id. All or nothing.",
        examples=[[{"101": "East", "102": 1200.5}, {"101": "South", "102": 980}]],
    )
    key_fields: list[FieldId] | None = Field(
        default=None,
        min_length=1,
        max_length=32,
        description=(
            "An upsert: a row whose values in these fields match one existing row updates the "
            "cells it gives (null empties one); the others are created. A row without a key "
            "value, a key repeated in `rows`, or one matching several rows is a 400. Text "
            "matches exactly, numbers by value."
        ),
        examples=[[101]],
    )


class Row(RootModel[dict[str, CellValue]]):
    model_config = ConfigDict(json_schema_extra={"examples": [_ROW_EXAMPLE]})


class RowList(Schema):
    total: int = Field(
        examples=[1250], description="Rows matching the search (all rows without one)."
    )
    offset: int = Field(examples=[0])
    limit: int = Field(examples=[50])
    rows: list[Row]


class RowRead(Schema):
    row: Row


class RowCreated(Schema):
    row_ref: str = Field(examples=["1250"])
    cells_created: int = Field(examples=[3])


class BulkCreated(Schema):
    rows_created: int = Field(examples=[2])
    cells_created: int = Field(examples=[6])
    rows_inserted: int = Field(examples=[2], description="The same as rows_created.")
    rows_updated: int = Field(default=0, examples=[0], description="key_fields: rows updated.")
    cells_updated: int = Field(
        default=0, examples=[0], description="Cells of updated rows given a different value."
    )


class RowUpdated(Schema):
    row_ref: str = Field(examples=["0"])
    cells_updated: int = Field(examples=[1])
    cells_created: int = Field(examples=[0])


class RowDeleted(Schema):
    deleted: bool = Field(examples=[True])
    cells_removed: int = Field(examples=[3])


# ------------------------------------------------------- bulk changes: PATCH and DELETE …/rows/


class RowSelection(InputSchema):
    """Which rows a bulk change touches: `row_refs`, or `filter`, or every row (`all`)."""

    row_refs: list[StrictStr | StrictInt] | None = Field(
        default=None,
        description=(
            "The rows' `_row_ref`s (strings as rows show them; integers are accepted), at most "
            "MAX_BULK_ROWS, each once. An unknown ref is a 400 and nothing is written."
        ),
        examples=[["0", "7", "12"]],
    )
    filter: FilterConfig | None = Field(
        default=None,
        description=(
            "The rows a filter matches, in the shape of `GET …/rows/?filter=` (here a JSON "
            "object, not URL-encoded text). A filter that matches every row, or has no "
            'conditions, needs `"all": true` too.'
        ),
    )
    all: bool = Field(
        default=False,
        description=(
            "Alone: every row of the item. With `filter`: confirms that the filter may match "
            "every row (a guard against accidents). Not with `row_refs`."
        ),
        examples=[False],
    )


class RowBulkUpdate(RowSelection):
    values: dict[str, Any] = Field(
        description=(
            "The cells to set on every selected row, keyed by field id, read as a single-row "
            "PATCH reads them; null empties a cell (not of a required field)."
        ),
        examples=[{"101": "West", "104": True}],
    )

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "values": {"101": "West", "104": True},
                    "filter": {
                        "match": "all",
                        "conditions": [{"field": 101, "op": "eq", "value": "North"}],
                    },
                },
                {"values": {"105": None}, "row_refs": ["0", "7", "12"]},
                {"values": {"104": False}, "all": True},
            ]
        }
    )


class RowBulkDelete(RowSelection):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {"row_refs": ["0", "7", "12"]},
                {"filter": {"conditions": [{"field": 104, "op": "eq", "value": True}]}},
                {"all": True},
            ]
        }
    )


class BulkUpdated(Schema):
    rows_matched: int = Field(examples=[1250], description="Rows the selection picked.")
    rows_updated: int = Field(
        examples=[1180], description="Rows with at least one cell changed (the others held it)."
    )
    cells_updated: int = Field(examples=[1180], description="Cells whose value was replaced.")
    cells_created: int = Field(examples=[40], description="Empty cells that got a value.")
    cells_removed: int = Field(examples=[0], description="Cells emptied (null values).")


class BulkDeleted(Schema):
    rows_deleted: int = Field(examples=[1250])
    cells_removed: int = Field(examples=[3750], description="Non-empty cells the rows held.")
