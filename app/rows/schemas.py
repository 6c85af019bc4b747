"""Row request and response bodies. Responses are rendered by PostgreSQL (exact numbers); these
models document them in OpenAPI."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import ConfigDict, Field, RootModel

from app.core.schemas import InputSchema, Schema

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
