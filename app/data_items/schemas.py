"""Request and response bodies for data items."""

from __future__ import annotations

from typing import Annotated

from pydantic import ConfigDict, Field, field_validator

from app.core.schemas import InputSchema, Schema, Timestamp, optional_not_null, stripped_not_blank
from app.fields.schemas import FieldCreate, FieldRead

DataName = Annotated[
    str,
    Field(
        min_length=1,
        max_length=255,
        examples=["Q1 Sales Report"],
        description="Shown to users; 1-255 characters.",
    ),
]
Description = Annotated[str, Field(max_length=10_000, examples=["Quarterly sales by region"])]


class DataItemCreate(InputSchema):
    data_name: DataName
    data_description: Description = ""
    fields: list[FieldCreate] = Field(
        default_factory=list,
        max_length=1000,
        description="Fields to create with the item, in order (same shape as POST …/fields/).",
    )

    _name = field_validator("data_name")(stripped_not_blank)

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "data_name": "Inventory Tracker",
                    "data_description": "Weekly inventory levels",
                    "fields": [
                        {"field_label": "SKU", "field_type": "char"},
                        {"field_label": "Quantity", "field_type": "decimal"},
                        {"field_label": "Last Counted", "field_type": "date"},
                    ],
                }
            ]
        }
    )


class DataItemUpdate(InputSchema):
    data_name: DataName | None = None
    data_description: Description | None = None

    _name = field_validator("data_name")(stripped_not_blank)

    @field_validator("data_name", "data_description", mode="before")
    @classmethod
    def _not_null(cls, value: object) -> object:
        if value is None:
            raise ValueError("must not be null (leave the key out to keep the current value)")
        return value

    model_config = ConfigDict(
        json_schema_extra=optional_not_null(
            "data_name", "data_description", examples=[{"data_name": "Q1 Sales (final)"}]
        )
    )


class ReferenceFileRead(Schema):
    id: int = Field(examples=[7])
    filename: str = Field(examples=["sales.csv"])
    created_at: Timestamp


class DataItemListEntry(Schema):
    id: int = Field(examples=[42])
    data_name: str
    data_description: str
    field_count: int = Field(examples=[3])
    created_at: Timestamp
    updated_at: Timestamp


class DataItemList(Schema):
    total: int = Field(examples=[1], description="How many data items you have in all.")
    offset: int = Field(examples=[0])
    limit: int = Field(examples=[1000])
    data_items: list[DataItemListEntry]


class DataItemRead(Schema):
    id: int = Field(examples=[42])
    data_name: str = Field(examples=["Q1 Sales Report"])
    data_description: str = Field(examples=["Quarterly sales by region"])
    created_at: Timestamp
    updated_at: Timestamp
    fields: list[FieldRead]
    reference_files: list[ReferenceFileRead]
    row_count: int = Field(examples=[1250])
