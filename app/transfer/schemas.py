"""Bodies of the transfer endpoints: export formats, the copy request, and the bundle document."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import ConfigDict, Field, field_validator, model_validator

from app.core.schemas import InputSchema, stripped_not_blank
from app.data_items.schemas import DataName, Description
from app.fields.schemas import FieldCreate
from app.widgets.schemas import WidgetCreate

BUNDLE_FORMAT = "data-items-bundle"
BUNDLE_VERSION = 1
MAX_BUNDLE_FIELDS = 10_000
MAX_BUNDLE_WIDGETS = 1_000


class ExportFormat(StrEnum):
    CSV = "csv"
    XLSX = "xlsx"
    JSON = "json"


class CopyRequest(InputSchema):
    data_name: DataName | None = Field(
        default=None, description="The copy's name; default: the original's + \" (copy)\"."
    )
    data_description: Description | None = Field(
        default=None, description="Default: the original's description."
    )
    include_reference_files: bool = Field(
        default=False,
        description=(
            "Also copy the files the original was loaded from (their bytes are duplicated). "
            "Default: the copy starts without reference files."
        ),
    )

    _name = field_validator("data_name")(stripped_not_blank)

    @model_validator(mode="before")
    @classmethod
    def _an_object(cls, data: Any) -> Any:
        # every field has a default: without this, any object (a number) would read as "{}"
        if not isinstance(data, dict):
            raise ValueError("must be a JSON object (or no body at all)")
        return data

    model_config = ConfigDict(json_schema_extra={"examples": [{"data_name": "Q1 Sales (what-if)"}]})


# --------------------------------------------------------------------------------- bundles

BundleFieldId = Annotated[
    int,
    Field(
        ge=1,
        le=2**63 - 1,
        description="The field's id in the bundle: rows and widgets refer to fields by it.",
        examples=[101],
    ),
]


class BundleItem(InputSchema):
    id: int | None = Field(
        default=None, description="The item's id where it was exported (not reused).", examples=[42]
    )
    data_name: DataName
    data_description: Description = ""
    row_count: int | None = Field(
        default=None,
        ge=0,
        description="How many rows `rows` holds; checked on import (a truncated bundle is a 400).",
        examples=[1250],
    )
    next_row_ref: int | None = Field(
        default=None,
        ge=0,
        le=10**18,
        description=(
            "The row ref the next new row gets (refs are never reused); at least the highest "
            "row ref + 1. Default: the highest row ref + 1."
        ),
        examples=[1250],
    )
    created_at: datetime | None = Field(default=None, description="Informational.")
    updated_at: datetime | None = Field(default=None, description="Informational.")

    _name = field_validator("data_name")(stripped_not_blank)


class BundleField(FieldCreate):
    """A field definition as in `POST …/fields/`, with the id rows and widgets use for it."""

    id: BundleFieldId


class BundleHead(InputSchema):
    """Everything of a bundle but its rows (which are read as a stream)."""

    format: Literal["data-items-bundle"] = Field(examples=[BUNDLE_FORMAT])
    version: Literal[1] = Field(examples=[BUNDLE_VERSION])
    exported_at: datetime | None = Field(default=None, description="Informational.")
    item: BundleItem
    fields: list[BundleField] = Field(max_length=MAX_BUNDLE_FIELDS)
    widgets: list[WidgetCreate] = Field(
        default_factory=list,
        max_length=MAX_BUNDLE_WIDGETS,
        description=(
            "Widgets in the shape of `POST …/widgets/` (with their series); `label_field`, "
            "`value_field` and filter conditions name bundle field ids."
        ),
    )


class Bundle(BundleHead):
    rows: list[dict[str, Any]] = Field(
        description=(
            "Rows in row-ref order, keyed by bundle field id as in `GET …/rows/`: "
            '`{"_row_ref": "0", "101": "North", "102": 45200.5}`. An absent key or null is an '
            "empty cell. Values are read with their field's type, as row writes read them. "
            "`_row_ref` (a string of digits) may be left out: the row then gets the ref after "
            "the previous row's (the first row: 0). Refs must increase."
        ),
        examples=[[{"_row_ref": "0", "101": "North", "102": 45200.5}]],
    )

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "format": BUNDLE_FORMAT,
                    "version": BUNDLE_VERSION,
                    "exported_at": "2026-03-01T12:00:00+00:00",
                    "item": {
                        "id": 42,
                        "data_name": "Q1 Sales Report",
                        "data_description": "",
                        "row_count": 1,
                        "next_row_ref": 1,
                    },
                    "fields": [
                        {"id": 101, "field_label": "Region", "field_type": "char"},
                        {"id": 102, "field_label": "Revenue", "field_type": "decimal"},
                    ],
                    "widgets": [
                        {
                            "title": "Revenue by Region",
                            "chart_type": "bar",
                            "label_field": 101,
                            "series": [{"value_field": 102, "aggregation": "sum"}],
                        }
                    ],
                    "rows": [{"_row_ref": "0", "101": "North", "102": 45200.5}],
                }
            ]
        }
    )
